// What the VM's screen shows: PPM screendumps from QMP, a "blank" test, and OCR through
// tesseract for the `screen` health check.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <string>

#include "common/child_process.h"
#include "legacy/legacy.h"

namespace storevisor::legacy {
namespace {

// Largest screen we accept: QEMU's VGA devices top out well below 16384 x 16384.
constexpr int kMaxSide = 16384;

void SkipSpaceAndComments(std::string_view data, size_t& pos) {
  while (pos < data.size()) {
    if (std::isspace(static_cast<unsigned char>(data[pos]))) {
      ++pos;
    } else if (data[pos] == '#') {
      while (pos < data.size() && data[pos] != '\n') ++pos;
    } else {
      break;
    }
  }
}

Result<int> ReadHeaderNumber(std::string_view data, size_t& pos, const char* what) {
  SkipSpaceAndComments(data, pos);
  size_t start = pos;
  while (pos < data.size() && pos - start < 6 &&
         std::isdigit(static_cast<unsigned char>(data[pos])))
    ++pos;
  int value = 0;
  auto [ptr, ec] = std::from_chars(data.data() + start, data.data() + pos, value);
  if (start == pos || ec != std::errc() || ptr != data.data() + pos) {
    return Error(ErrorCode::kGuestFault, std::string("PPM: bad ") + what + " in header");
  }
  return value;
}

int Luma(const uint8_t* px) { return (px[0] * 299 + px[1] * 587 + px[2] * 114) / 1000; }

}  // namespace

Result<Image> ParsePpm(std::string_view data) {
  if (data.size() < 2 || data[0] != 'P' || data[1] != '6') {
    return Error(ErrorCode::kGuestFault, "PPM: not a binary PPM (no P6 magic)");
  }
  size_t pos = 2;
  SV_ASSIGN_OR_RETURN(int width, ReadHeaderNumber(data, pos, "width"));
  SV_ASSIGN_OR_RETURN(int height, ReadHeaderNumber(data, pos, "height"));
  SV_ASSIGN_OR_RETURN(int maxval, ReadHeaderNumber(data, pos, "maxval"));
  if (width < 1 || height < 1 || width > kMaxSide || height > kMaxSide) {
    return Error(ErrorCode::kGuestFault, "PPM: size " + std::to_string(width) + "x" +
                                             std::to_string(height) + " outside 1.." +
                                             std::to_string(kMaxSide));
  }
  if (maxval != 255)
    return Error(ErrorCode::kGuestFault, "PPM: maxval " + std::to_string(maxval) + " (only 255)");
  if (pos >= data.size() || !std::isspace(static_cast<unsigned char>(data[pos]))) {
    return Error(ErrorCode::kGuestFault, "PPM: header not followed by one whitespace byte");
  }
  ++pos;
  size_t need = static_cast<size_t>(width) * static_cast<size_t>(height) * 3;
  if (data.size() - pos < need) {
    return Error(ErrorCode::kGuestFault, "PPM: truncated pixel data (" +
                                             std::to_string(data.size() - pos) + " of " +
                                             std::to_string(need) + " bytes)");
  }
  Image img;
  img.width = width;
  img.height = height;
  img.rgb.assign(data.begin() + static_cast<std::ptrdiff_t>(pos),
                 data.begin() + static_cast<std::ptrdiff_t>(pos + need));
  return img;
}

std::string EncodePgm(int width, int height, const std::vector<uint8_t>& gray) {
  std::string out = "P5\n" + std::to_string(width) + " " + std::to_string(height) + "\n255\n";
  out.append(gray.begin(), gray.end());
  return out;
}

bool IsBlank(const Image& image) {
  size_t pixels = static_cast<size_t>(image.width) * static_cast<size_t>(image.height);
  if (pixels == 0 || image.rgb.size() < pixels * 3) return true;
  // Luminance histogram: the peak is the background; count what is far from it.
  std::array<size_t, 256> histogram{};
  for (size_t i = 0; i < pixels; ++i) ++histogram[Luma(image.rgb.data() + i * 3)];
  int peak =
      static_cast<int>(std::max_element(histogram.begin(), histogram.end()) - histogram.begin());
  size_t near = 0;
  for (int l = std::max(0, peak - 8); l <= std::min(255, peak + 8); ++l) near += histogram[l];
  size_t differing = pixels - near;
  // A blinking cursor alone is about 0.01% of a 720x400 text screen: not content.
  return differing * 2000 < pixels;
}

std::string PrepareForOcr(const Image& image, int scale) {
  scale = std::clamp(scale, 1, 4);
  const int w = image.width;
  const int h = image.height;
  std::vector<uint8_t> gray(static_cast<size_t>(w) * scale * h * scale);
  std::vector<int> luma(static_cast<size_t>(w));
  for (int y = 0; y < h; ++y) {
    std::array<int, 256> histogram{};
    for (int x = 0; x < w; ++x) {
      luma[x] = Luma(image.rgb.data() + (static_cast<size_t>(y) * w + x) * 3);
      ++histogram[luma[x]];
    }
    // The row's most common luminance is its background: text is what differs from it,
    // whether it is white on blue (a title bar) or black on grey (the receipt).
    int background =
        static_cast<int>(std::max_element(histogram.begin(), histogram.end()) - histogram.begin());
    for (int x = 0; x < w; ++x) {
      int ink = std::min(255, std::abs(luma[x] - background) * 2);
      auto value = static_cast<uint8_t>(255 - ink);
      for (int dy = 0; dy < scale; ++dy) {
        size_t row = (static_cast<size_t>(y) * scale + dy) * w * scale;
        std::fill_n(
            gray.begin() + static_cast<std::ptrdiff_t>(row + static_cast<size_t>(x) * scale), scale,
            value);
      }
    }
  }
  return EncodePgm(w * scale, h * scale, gray);
}

Result<std::string> RecognizeText(const std::string& image_path) {
  // --psm 6 (one uniform block of text) suits a text-mode screen: automatic segmentation
  // (--psm 3) dropped whole receipt lines of the OVMF framebuffer console in our tests.
  auto run = RunCommand({"tesseract", image_path, "-", "--psm", "6", "-l", "eng"},
                        std::chrono::seconds(60));
  if (!run) {
    if (run.error().code() == ErrorCode::kNotFound) {
      return Error(ErrorCode::kFailedPrecondition,
                   "tesseract not found: install tesseract-ocr and tesseract-ocr-eng");
    }
    return std::move(run).error().Context("tesseract");
  }
  if (!run->status.success()) {
    return Error(ErrorCode::kIo, "tesseract " + image_path + " failed (" + run->status.ToString() +
                                     "): " + run->err);
  }
  return run->out;
}

bool TextContains(std::string_view haystack, std::string_view needle) {
  auto squash = [](std::string_view s) {
    std::string out;
    for (char ch : s) {
      if (!std::isspace(static_cast<unsigned char>(ch)))
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    return out;
  };
  std::string n = squash(needle);
  return !n.empty() && squash(haystack).find(n) != std::string::npos;
}

}  // namespace storevisor::legacy
