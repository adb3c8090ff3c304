#include <gtest/gtest.h>

#include <string>

#include "legacy/legacy.h"

namespace storevisor::legacy {
namespace {

std::string Ppm(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  std::string s = "P6\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
  for (int i = 0; i < w * h; ++i)
    s += {static_cast<char>(r), static_cast<char>(g), static_cast<char>(b)};
  return s;
}

TEST(PpmTest, ParsesWhatScreendumpWrites) {
  auto img = ParsePpm(Ppm(3, 2, 1, 2, 3));
  ASSERT_TRUE(img.has_value()) << img.error().message();
  EXPECT_EQ(img->width, 3);
  EXPECT_EQ(img->height, 2);
  ASSERT_EQ(img->rgb.size(), 18u);
  EXPECT_EQ(img->rgb[3], 1);
  EXPECT_EQ(img->rgb[5], 3);
}

TEST(PpmTest, RefusesNastyInput) {
  for (const std::string& bad :
       {std::string(""), std::string("P5\n1 1\n255\n\0", 12), std::string("P6"),
        std::string("P6\n"), std::string("P6\n-1 1\n255\n"), std::string("P6\n0 1\n255\n"),
        std::string("P6\n99999 99999\n255\n"), std::string("P6\n1 1\n65535\n123456"),
        std::string("P6\n2 2\n255\nabc"), std::string("P6\n1 1\n255"),
        std::string("P6\n1 1 # c\n255\n"), std::string("P6\n1 1\n255xabc"),
        std::string("P6\n4294967297 1\n255\n")}) {
    auto r = ParsePpm(bad);
    EXPECT_FALSE(r.has_value()) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code(), ErrorCode::kGuestFault);
    }
  }
  EXPECT_TRUE(ParsePpm("P6 # made by hand\n1 1\n255\nabc").has_value());
}

TEST(ScreenTest, BlankMeansOneColour) {
  auto black = ParsePpm(Ppm(100, 50, 0, 0, 0));
  ASSERT_TRUE(black.has_value());
  EXPECT_TRUE(IsBlank(*black));
  auto drawn = *black;
  for (int x = 10; x < 60; ++x) {
    for (int c = 0; c < 3; ++c) drawn.rgb[(20 * 100 + x) * 3 + c] = 200;
  }
  EXPECT_FALSE(IsBlank(drawn));
  auto dot = *black;
  dot.rgb[0] = 255;  // one pixel (a cursor) is not content
  EXPECT_TRUE(IsBlank(dot));
}

TEST(ScreenTest, OcrPreparationMakesTextDarkOnWhite) {
  // Row 0: blue background with one white "text" pixel; row 1: grey with one black pixel.
  Image img{
      .width = 4, .height = 2, .rgb = {0,   0,   170, 0, 0, 170, 255, 255, 255, 0,   0,   170,  //
                                       170, 170, 170, 0, 0, 0,   170, 170, 170, 170, 170, 170}};
  std::string pgm = PrepareForOcr(img, 2);
  std::string header = "P5\n8 4\n255\n";
  ASSERT_EQ(pgm.substr(0, header.size()), header);
  std::string px = pgm.substr(header.size());
  ASSERT_EQ(px.size(), 32u);
  auto at = [&](int x, int y) { return static_cast<uint8_t>(px[y * 8 + x]); };
  EXPECT_EQ(at(0, 0), 255);  // background -> white
  EXPECT_LT(at(4, 0), 100);  // white text on blue -> dark
  EXPECT_LT(at(5, 1), 100);  // scaled 2x
  EXPECT_EQ(at(0, 2), 255);
  EXPECT_LT(at(2, 3), 100);  // black text on grey -> dark
}

TEST(ScreenTest, TextContainsIgnoresCaseAndSpacing) {
  EXPECT_TRUE(TextContains("foo\nSTOREVISOR  POS\nbar", "storevisor pos"));
  EXPECT_TRUE(TextContains("STOREVISORPOS", "Storevisor POS"));
  EXPECT_FALSE(TextContains("STOREUISOR POS", "storevisor pos"));
  EXPECT_FALSE(TextContains("anything", "  "));
}

}  // namespace
}  // namespace storevisor::legacy
