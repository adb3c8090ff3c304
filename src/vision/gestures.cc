// Gesture rules on the 21 hand landmarks (MediaPipe's layout: 0 wrist; thumb 1-4; index 5-8;
// middle 9-12; ring 13-16; pinky 17-20, each from base to tip) and hysteresis over frames.
// The rules use only ratios of distances and angles, so they hold at any scale and in-plane
// rotation; "thumbs up" alone also looks at the image's up direction.
#include <algorithm>
#include <array>
#include <cmath>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

constexpr int kWrist = 0;
constexpr std::array<int, 4> kThumb = {1, 2, 3, 4};
constexpr std::array<std::array<int, 4>, 4> kFingers = {
    {{5, 6, 7, 8}, {9, 10, 11, 12}, {13, 14, 15, 16}, {17, 18, 19, 20}}};

double Dist(const cv::Point2f& a, const cv::Point2f& b) { return cv::norm(a - b); }

// Angle at b (degrees) between b->a and b->c; 180 is straight.
double AngleAt(const cv::Point2f& a, const cv::Point2f& b, const cv::Point2f& c) {
  const cv::Point2f u = a - b;
  const cv::Point2f v = c - b;
  const double nu = cv::norm(u);
  const double nv = cv::norm(v);
  if (nu < 1e-6 || nv < 1e-6) return 180;
  const double cosang = std::clamp((u.x * v.x + u.y * v.y) / (nu * nv), -1.0, 1.0);
  return std::acos(cosang) * 180.0 / M_PI;
}

// A finger is extended when it is nearly straight and its tip is farther from the wrist
// than its middle joint; curled when the tip comes back closer to the wrist than that joint.
bool Extended(const std::vector<cv::Point2f>& p, const std::array<int, 4>& f) {
  const bool straight =
      AngleAt(p[f[0]], p[f[1]], p[f[2]]) > 150 && AngleAt(p[f[1]], p[f[2]], p[f[3]]) > 150;
  return straight && Dist(p[kWrist], p[f[3]]) > Dist(p[kWrist], p[f[1]]) * 1.1;
}

bool Curled(const std::vector<cv::Point2f>& p, const std::array<int, 4>& f) {
  return Dist(p[kWrist], p[f[3]]) < Dist(p[kWrist], p[f[1]]);
}

// The thumb is extended when both its joints are nearly straight and it reaches well away
// from the wrist (a thumb folded over the fingers bends at its joints).
bool ThumbExtended(const std::vector<cv::Point2f>& p, double palm) {
  const bool straight = AngleAt(p[kThumb[0]], p[kThumb[1]], p[kThumb[2]]) > 150 &&
                        AngleAt(p[kThumb[1]], p[kThumb[2]], p[kThumb[3]]) > 150;
  return straight && Dist(p[kWrist], p[kThumb[3]]) > Dist(p[kWrist], p[kThumb[1]]) * 1.2 &&
         Dist(p[kThumb[1]], p[kThumb[3]]) > 0.4 * palm;
}

}  // namespace

std::string_view GestureName(Gesture g) {
  switch (g) {
    case Gesture::kNone:
      return "none";
    case Gesture::kOpenPalm:
      return "open_palm";
    case Gesture::kFist:
      return "fist";
    case Gesture::kThumbsUp:
      return "thumbs_up";
    case Gesture::kPointing:
      return "pointing";
    case Gesture::kOk:
      return "ok";
  }
  return "?";
}

Result<Gesture> ClassifyGesture(const std::vector<cv::Point2f>& p) {
  if (p.size() != 21) {
    return Error(ErrorCode::kInvalidArgument,
                 "hand landmarks: need 21 points, got " + std::to_string(p.size()));
  }
  for (const auto& q : p) {
    if (!std::isfinite(q.x) || !std::isfinite(q.y)) {
      return Error(ErrorCode::kInvalidArgument, "hand landmarks: non-finite coordinate");
    }
  }
  const double palm = Dist(p[kWrist], p[9]);  // wrist to middle-finger base: the hand's scale
  if (palm < 1e-3) return Gesture::kNone;
  std::array<bool, 4> ext{};
  std::array<bool, 4> curl{};
  for (size_t i = 0; i < 4; ++i) {
    ext[i] = Extended(p, kFingers[i]);
    curl[i] = Curled(p, kFingers[i]);
  }
  const bool thumb = ThumbExtended(p, palm);
  const bool others_extended = ext[1] && ext[2] && ext[3];
  const bool others_curled = curl[1] && curl[2] && curl[3];
  if (Dist(p[kThumb[3]], p[8]) < 0.25 * palm && others_extended) return Gesture::kOk;
  if (ext[0] && others_curled) return Gesture::kPointing;
  if (thumb && curl[0] && others_curled) {
    // Up in the image: the thumb tip well above the thumb's base.
    if (p[kThumb[0]].y - p[kThumb[3]].y > 0.5 * palm) return Gesture::kThumbsUp;
    return Gesture::kNone;
  }
  if (curl[0] && others_curled && !thumb) return Gesture::kFist;
  if (thumb && ext[0] && others_extended) return Gesture::kOpenPalm;
  return Gesture::kNone;
}

std::optional<Gesture> GestureTracker::Update(Gesture observed) {
  if (observed == current_) {
    candidate_count_ = 0;
    return std::nullopt;
  }
  if (observed == candidate_) {
    candidate_count_++;
  } else {
    candidate_ = observed;
    candidate_count_ = 1;
  }
  // Entering a gesture needs enter_frames in a row; leaving one (to none) exit_frames.
  const int needed = observed == Gesture::kNone ? exit_frames_ : enter_frames_;
  if (candidate_count_ < needed) return std::nullopt;
  current_ = observed;
  candidate_count_ = 0;
  return current_;
}

}  // namespace storevisor::vision
