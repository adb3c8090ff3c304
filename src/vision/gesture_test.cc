// Gesture rules on landmark fixtures and the hysteresis over frames. The fixtures are made by a
// small planar hand model (MediaPipe's 21-point layout: joint angles per finger), placed at
// several scales, positions and in-plane rotations. Real photos of hands are tested elsewhere:
// opencv-doc's handSrc.jpg (an open hand) and messi5.jpg (two players' hands) in
// vision_detect_test, and handSrc.jpg through a pipeline to one `open_palm` gesture event in
// vision_pipeline_test. No packaged photo shows a fist, thumbs-up, pointing or OK hand, so those
// four gestures are tested on the fixtures here only (see docs/vision.md).
#include <gtest/gtest.h>

#include <cmath>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

struct Pose {
  std::array<double, 4> finger_curl;  // index..pinky: bend per joint in degrees (0 = straight)
  double thumb_curl;                  // bend per thumb joint
  double thumb_spread;                // thumb direction from the palm's up axis, degrees
  bool thumb_to_index = false;        // put the thumb tip on the index tip (the OK ring)
};

// 21 landmarks of a right hand seen from the palm, wrist at the origin, fingers up (y down).
std::vector<cv::Point2f> MakeHand(const Pose& pose, double scale, double rotate_deg,
                                  cv::Point2f at) {
  std::vector<cv::Point2d> p(21);
  p[0] = {0, 0};
  const std::array<double, 4> base_x = {-0.35, -0.1, 0.15, 0.38};
  const std::array<double, 4> seg = {0.42, 0.46, 0.43, 0.35};  // finger lengths (palm = 1)
  for (int f = 0; f < 4; ++f) {
    const int b = 5 + 4 * f;
    p[b] = {base_x[f], -0.95 + 0.05 * std::abs(f - 1.5)};
    double dir = -M_PI / 2 + (f - 1.5) * 0.08;  // pointing up, slightly fanned
    for (int j = 1; j <= 3; ++j) {
      dir += pose.finger_curl[f] * M_PI / 180;  // bend towards the palm (clockwise on screen)
      const double len = seg[f] * (j == 1 ? 1.0 : j == 2 ? 0.65 : 0.55);
      p[b + j] = p[b + j - 1] + cv::Point2d(std::cos(dir), std::sin(dir)) * len;
    }
  }
  p[1] = {-0.25, -0.2};
  double dir = -M_PI / 2 - pose.thumb_spread * M_PI / 180;
  for (int j = 2; j <= 4; ++j) {
    const double len = j == 2 ? 0.4 : 0.32;
    p[j] = p[j - 1] + cv::Point2d(std::cos(dir), std::sin(dir)) * len;
    dir += pose.thumb_curl * M_PI / 180;
  }
  if (pose.thumb_to_index) {
    p[4] = p[8] + cv::Point2d(0.03, 0.02);
    p[3] = (p[2] + p[4]) / 2;
  }
  const double r = rotate_deg * M_PI / 180;
  std::vector<cv::Point2f> out;
  for (const auto& q : p) {
    out.emplace_back(at.x + scale * (q.x * std::cos(r) - q.y * std::sin(r)),
                     at.y + scale * (q.x * std::sin(r) + q.y * std::cos(r)));
  }
  return out;
}

const Pose kOpen{{0, 0, 0, 0}, 5, 45};
const Pose kFist{{75, 75, 75, 75}, 50, 20};
const Pose kThumbsUp{{75, 75, 75, 75}, 0, 5};
const Pose kPointing{{0, 75, 75, 75}, 50, 20};
const Pose kOk{{35, 0, 0, 0}, 10, 40, true};

TEST(GestureTest, FixturesAtManyScalesPositionsAndRotations) {
  const std::vector<std::pair<Pose, Gesture>> cases = {{kOpen, Gesture::kOpenPalm},
                                                       {kFist, Gesture::kFist},
                                                       {kPointing, Gesture::kPointing},
                                                       {kOk, Gesture::kOk}};
  for (const auto& [pose, want] : cases) {
    for (double scale : {40.0, 120.0, 300.0}) {
      for (double rot : {-25.0, 0.0, 25.0}) {
        auto g = ClassifyGesture(MakeHand(pose, scale, rot, {320, 300}));
        ASSERT_TRUE(g.has_value());
        EXPECT_EQ(GestureName(*g), GestureName(want)) << "scale " << scale << " rot " << rot;
      }
    }
  }
}

TEST(GestureTest, ThumbsUpNeedsTheThumbUp) {
  for (double rot : {-20.0, 0.0, 20.0}) {
    auto up = ClassifyGesture(MakeHand(kThumbsUp, 100, rot, {300, 300}));
    ASSERT_TRUE(up.has_value());
    EXPECT_EQ(GestureName(*up), "thumbs_up") << rot;
  }
  // The same hand upside down is not "thumbs up".
  auto down = ClassifyGesture(MakeHand(kThumbsUp, 100, 180, {300, 300}));
  ASSERT_TRUE(down.has_value());
  EXPECT_NE(*down, Gesture::kThumbsUp);
}

TEST(GestureTest, HalfwayPosesAreNoGesture) {
  auto g = ClassifyGesture(MakeHand({{30, 30, 30, 30}, 20, 30}, 100, 0, {300, 300}));
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(*g, Gesture::kNone);
}

TEST(GestureTest, RejectsBadLandmarks) {
  EXPECT_FALSE(ClassifyGesture(std::vector<cv::Point2f>(20)).has_value());
  std::vector<cv::Point2f> nan(21, cv::Point2f(1, 1));
  nan[7].x = std::nanf("");
  EXPECT_FALSE(ClassifyGesture(nan).has_value());
  auto degenerate = ClassifyGesture(std::vector<cv::Point2f>(21, cv::Point2f(5, 5)));
  ASSERT_TRUE(degenerate.has_value());
  EXPECT_EQ(*degenerate, Gesture::kNone);
}

TEST(GestureTrackerTest, HysteresisIgnoresFlickerAndHoldsThroughDropouts) {
  GestureTracker t(3, 5);
  // One-frame flickers never become a gesture.
  for (Gesture g : {Gesture::kFist, Gesture::kNone, Gesture::kOk, Gesture::kNone}) {
    EXPECT_FALSE(t.Update(g).has_value());
  }
  EXPECT_EQ(t.current(), Gesture::kNone);
  // Three frames in a row do.
  EXPECT_FALSE(t.Update(Gesture::kOpenPalm).has_value());
  EXPECT_FALSE(t.Update(Gesture::kOpenPalm).has_value());
  auto changed = t.Update(Gesture::kOpenPalm);
  ASSERT_TRUE(changed.has_value());
  EXPECT_EQ(*changed, Gesture::kOpenPalm);
  // Short dropouts (fewer than 5 frames of none) keep it.
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(t.Update(Gesture::kNone).has_value());
  EXPECT_FALSE(t.Update(Gesture::kOpenPalm).has_value());
  EXPECT_EQ(t.current(), Gesture::kOpenPalm);
  // Five frames of none end it; a new gesture then needs its three frames.
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(t.Update(Gesture::kNone).has_value());
  auto ended = t.Update(Gesture::kNone);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(*ended, Gesture::kNone);
}

}  // namespace
}  // namespace storevisor::vision
