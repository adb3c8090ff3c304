// Faces on streams: one square a frame (the whole frame every other frame, the tiles in turn
// in between), each square's faces carried forward until it is scanned again (see FaceStream
// in vision.h and docs/vision.md, "Faces on streams").
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

bool CentreInside(const cv::Rect2f& a, const cv::Rect2f& b) {
  return b.contains(cv::Point2f(a.x + a.width / 2, a.y + a.height / 2));
}

float Iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0;
}

}  // namespace

std::vector<int> FaceStream::Plan(cv::Size size, int tile_count) {
  const int tiles = std::max(0, tile_count);
  if (!started_ || size != size_ || tiles != this->tiles()) {
    // Nothing carried yet (or carried for another tile layout): scan every square now, so a
    // small face is reported from the stream's first frame on.
    Reset();
    started_ = true;
    size_ = size;
    carried_.resize(static_cast<size_t>(tiles) + 1);
    planned_.resize(static_cast<size_t>(tiles) + 1);
    std::iota(planned_.begin(), planned_.end(), kWholeFrame);
    refresh_ = true;
    return planned_;
  }
  const int slot = slot_;
  slot_ = (slot_ + 1) % cycle();
  refresh_ = slot == 0;  // a cycle starts: classify every face again
  if (tiles == 0) {
    planned_ = {kWholeFrame};
  } else if (options_.whole_every_frame) {
    planned_ = {kWholeFrame, slot};
  } else {
    planned_ = {slot % 2 == 0 ? kWholeFrame : slot / 2};
  }
  return planned_;
}

int FaceStream::cycle() const {
  const int tiles = std::max(0, this->tiles());
  if (tiles == 0) return 1;
  return options_.whole_every_frame ? tiles : 2 * tiles;
}

std::vector<Detection>& FaceStream::CarriedBy(int square) {
  return carried_[static_cast<size_t>(square == kWholeFrame ? tiles() : square)];
}

bool FaceStream::SameFace(const cv::Rect2f& a, const cv::Rect2f& b) const {
  // Centre containment too: a carried box is up to cycle() frames old, so a face that moved
  // overlaps its fresh box less than NMS would want but still holds its centre.
  return Iou(a, b) >= options_.same_face_iou || CentreInside(a, b) || CentreInside(b, a);
}

std::vector<Detection> FaceStream::Merge(FaceScan scan) {
  SV_CHECK(scan.square_boxes.size() == planned_.size());
  std::vector<Detection> out = std::move(scan.faces);
  // A scanned square now carries the faces of this frame that its own pass found (as merged
  // and, for face_attributes, classified), and nothing else: what it carried is replaced.
  for (size_t i = 0; i < planned_.size(); ++i) {
    std::vector<Detection>& carried = CarriedBy(planned_[i]);
    carried.clear();
    const auto& boxes = scan.square_boxes[i];
    for (const Detection& face : out) {
      if (std::any_of(boxes.begin(), boxes.end(),
                      [&](const cv::Rect2f& b) { return SameFace(face.box, b); })) {
        carried.push_back(face);
      }
    }
  }
  // The squares not scanned now add what they carry, fresh faces first and the best carried
  // box of a face that several squares hold.
  std::vector<const Detection*> held;
  for (int square = kWholeFrame; square < tiles(); ++square) {
    if (std::find(planned_.begin(), planned_.end(), square) != planned_.end()) continue;
    for (const Detection& face : CarriedBy(square)) held.push_back(&face);
  }
  std::stable_sort(held.begin(), held.end(),
                   [](const Detection* a, const Detection* b) { return a->score > b->score; });
  for (const Detection* face : held) {
    const bool known = std::any_of(out.begin(), out.end(),
                                   [&](const Detection& d) { return SameFace(d.box, face->box); });
    if (!known) out.push_back(*face);
  }
  planned_.clear();
  previous_ = out;
  FollowTracks(out);
  return out;
}

void FaceStream::FollowTracks(const std::vector<Detection>& faces) {
  ++frame_;
  for (const Detection& face : faces) {
    for (Track& t : tracks_) {
      if (SameFace(t.box, face.box)) {
        t.box = face.box;
        t.last_frame = frame_;
        break;
      }
    }
  }
  // A face gone for two cycles is a new person if it comes back.
  const int keep = 2 * cycle() + 2;
  std::erase_if(tracks_, [&](const Track& t) { return frame_ - t.last_frame > keep; });
}

void FaceStream::SmoothAttributes(Detection* face) {
  if (!options_.smooth_attributes) return;
  auto& a = face->attributes;
  if (a.find("emotion") == a.end()) return;  // too small to classify: nothing to vote with
  Track* track = nullptr;
  float best = -1;
  for (Track& t : tracks_) {
    const float overlap = Iou(t.box, face->box);
    if (SameFace(t.box, face->box) && overlap > best) {
      best = overlap;
      track = &t;
    }
  }
  if (track == nullptr) {
    track = &tracks_.emplace_back();
    track->box = face->box;
    track->last_frame = frame_;
  }
  const auto number = [&](const char* key, double fallback) {
    auto it = a.find(key);
    if (it == a.end()) return fallback;
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    return end != it->second.c_str() && std::isfinite(v) ? v : fallback;
  };
  // Gender: the sum of margins over the whole track (a reading too unsure to be stated adds
  // nothing but still gets the track's answer).
  if (a.count("gender") != 0) {
    const double gender_score = std::clamp(number("gender_score", 0.5), 0.5, 1.0);
    track->female_margin += (a["gender"] == "female" ? 1 : -1) * (gender_score - 0.5);
    ++track->gender_votes;
  }
  if (track->female_margin != 0 && track->gender_votes > 0) {
    a["gender"] = track->female_margin > 0 ? "female" : "male";
    a["gender_score"] = kserve::FormatScore(static_cast<float>(
        0.5 + std::abs(track->female_margin) / static_cast<double>(track->gender_votes)));
  }
  // Emotion: votes that fade (an expression changes; one odd frame should not).
  constexpr double kFade = 0.8;
  for (double& v : track->emotion) v *= kFade;
  track->emotion_weight = track->emotion_weight * kFade + 1;
  const auto label = std::find(kserve::kEmotionLabels.begin(), kserve::kEmotionLabels.end(),
                               a.count("emotion") != 0 ? a["emotion"] : "");
  if (label != kserve::kEmotionLabels.end()) {
    track->emotion[static_cast<size_t>(label - kserve::kEmotionLabels.begin())] +=
        std::clamp(number("emotion_score", 1.0), 0.0, 1.0);
    const auto top = std::max_element(track->emotion.begin(), track->emotion.end());
    a["emotion"] =
        std::string(kserve::kEmotionLabels[static_cast<size_t>(top - track->emotion.begin())]);
    a["emotion_score"] = kserve::FormatScore(static_cast<float>(*top / track->emotion_weight));
  }
  // Age: the track's mean.
  const double age = number("age", -1);
  if (age >= 0) {
    track->age_sum += age;
    ++track->ages;
    a["age"] = kserve::FormatAge(static_cast<float>(track->age_sum / track->ages));
  }
}

bool FaceStream::TakeOverAttributes(Detection* face) const {
  if (!options_.reuse_attributes || refresh_) return false;
  for (const Detection& known : previous_) {
    if (SameFace(known.box, face->box)) {
      face->attributes = known.attributes;
      return true;
    }
  }
  return false;  // a new face
}

void FaceStream::Reset() {
  refresh_ = true;
  previous_.clear();
  started_ = false;
  size_ = cv::Size();
  slot_ = 0;
  planned_.clear();
  carried_.clear();
  tracks_.clear();
  frame_ = 0;
}

FaceStream* StreamState::Faces(std::string_view detector) {
  auto it = faces_.find(detector);
  if (it == faces_.end()) {
    it = faces_.emplace(std::string(detector), FaceStream(options_)).first;
  }
  return &it->second;
}

void StreamState::Reset() {
  for (auto& [name, stream] : faces_) stream.Reset();
}

}  // namespace storevisor::vision
