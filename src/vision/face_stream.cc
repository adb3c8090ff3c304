// Faces on streams: the whole frame every frame, one tile per frame in turn, and each tile's
// faces carried forward until that tile is scanned again (see FaceStream in vision.h and
// docs/vision.md, "Faces on streams").
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
  const size_t tiles = static_cast<size_t>(std::max(0, tile_count));
  if (!started_ || size != size_ || tiles != carried_.size()) {
    // Nothing carried yet (or carried for another tile layout): scan every tile now, so a
    // small face is reported from the stream's first frame on.
    Reset();
    started_ = true;
    size_ = size;
    carried_.resize(tiles);
    planned_.resize(tiles);
    std::iota(planned_.begin(), planned_.end(), 0);
    refresh_ = true;
    return planned_;
  }
  planned_.clear();
  refresh_ = tiles == 0 || next_ == 0;  // a cycle starts: classify every face again
  if (tiles == 0) return planned_;
  planned_.push_back(next_);
  next_ = (next_ + 1) % static_cast<int>(tiles);
  return planned_;
}

bool FaceStream::SameFace(const cv::Rect2f& a, const cv::Rect2f& b) const {
  // Centre containment too: a carried box is up to cycle() frames old, so a face that moved
  // overlaps its fresh box less than NMS would want but still holds its centre.
  return Iou(a, b) >= same_face_iou_ || CentreInside(a, b) || CentreInside(b, a);
}

std::vector<Detection> FaceStream::Merge(FaceScan scan) {
  SV_CHECK(scan.tile_boxes.size() == planned_.size());
  std::vector<Detection> out = std::move(scan.faces);
  // A scanned tile now carries the faces of this frame that its own pass found (as merged
  // and, for face_attributes, classified), and nothing else: what it carried is replaced.
  for (size_t i = 0; i < planned_.size(); ++i) {
    std::vector<Detection>& carried = carried_[static_cast<size_t>(planned_[i])];
    carried.clear();
    for (const Detection& face : out) {
      const auto& boxes = scan.tile_boxes[i];
      if (std::any_of(boxes.begin(), boxes.end(),
                      [&](const cv::Rect2f& b) { return SameFace(face.box, b); })) {
        carried.push_back(face);
      }
    }
  }
  // The tiles not scanned now add what they carry, fresh faces first and the best carried
  // box of a face that several tiles hold.
  std::vector<const Detection*> held;
  for (size_t t = 0; t < carried_.size(); ++t) {
    if (std::find(planned_.begin(), planned_.end(), static_cast<int>(t)) != planned_.end()) {
      continue;
    }
    for (const Detection& face : carried_[t]) held.push_back(&face);
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
  return out;
}

bool FaceStream::TakeOverAttributes(Detection* face) const {
  if (!reuse_attributes_ || refresh_) return false;
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
  next_ = 0;
  planned_.clear();
  carried_.clear();
}

FaceStream* StreamState::Faces(std::string_view detector) {
  auto it = faces_.find(detector);
  if (it == faces_.end()) {
    it = faces_.emplace(std::string(detector), FaceStream(0.3F, reuse_attributes_)).first;
  }
  return &it->second;
}

void StreamState::Reset() {
  for (auto& [name, stream] : faces_) stream.Reset();
}

}  // namespace storevisor::vision
