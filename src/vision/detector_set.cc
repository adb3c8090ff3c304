// DetectorSet: every detector the service offers, each behind its own mutex (cv::dnn::Net
// and the feature matchers keep per-call state and are not safe for concurrent use).
#include "vision/vision.h"

namespace storevisor::vision {
namespace {

// Faces of a still image (stream null: every tile) or of a stream frame (the whole frame and
// one tile in turn, plus what the other tiles carry). On a stream only fresh faces are
// classified, and only when new or at the start of a cycle (FaceStream::TakeOverAttributes):
// a carried face keeps the attributes it got when its tile found it.
Result<std::vector<Detection>> RunFaces(std::string_view name, FaceDetector* faces,
                                        FaceClassifier* classifier, const cv::Mat& m,
                                        StreamState* stream) {
  if (stream == nullptr) {
    SV_ASSIGN_OR_RETURN(auto ds, faces->Detect(m));
    if (classifier != nullptr) {
      for (auto& d : ds) SV_TRY(classifier->Classify(m, &d));
    }
    return ds;
  }
  FaceStream* state = stream->Faces(name);
  SV_ASSIGN_OR_RETURN(FaceScan scan, faces->ScanStream(m, state));
  if (classifier != nullptr) {
    for (auto& d : scan.faces) {
      if (state->TakeOverAttributes(&d)) continue;
      SV_TRY(classifier->Classify(m, &d));
      state->SmoothAttributes(&d);
    }
  }
  return state->Merge(std::move(scan));
}

}  // namespace

Result<std::unique_ptr<DetectorSet>> DetectorSet::Create(const DetectorSetOptions& options) {
  auto set = std::make_unique<DetectorSet>();
  SV_ASSIGN_OR_RETURN(ModelPaths paths, FindModels(options.models_dir));
  SV_ASSIGN_OR_RETURN(set->faces_, FaceDetector::Create(paths, options.face));
  SV_ASSIGN_OR_RETURN(set->barcodes_, BarcodeReader::Create());
  auto add = [&](const std::string& name, auto* detector) {
    auto slot = std::make_unique<Slot>();
    slot->run = [detector](const cv::Mat& m, StreamState*) { return detector->Detect(m); };
    set->slots_[name] = std::move(slot);
  };
  auto faces_slot = std::make_unique<Slot>();
  faces_slot->run = [faces = set->faces_.get()](const cv::Mat& m, StreamState* stream) {
    return RunFaces("faces", faces, nullptr, m, stream);
  };
  set->slots_["faces"] = std::move(faces_slot);
  // Face attributes only where set-up converted the models; the rest works without them.
  if (auto classifier = FaceClassifier::Create(options.models_dir)) {
    set->classifier_ = std::move(*classifier);
    SV_ASSIGN_OR_RETURN(set->attr_faces_, FaceDetector::Create(paths, options.face));
    auto slot = std::make_unique<Slot>();
    slot->run = [faces = set->attr_faces_.get(), classifier = set->classifier_.get()](
                    const cv::Mat& m, StreamState* stream) {
      return RunFaces("face_attributes", faces, classifier, m, stream);
    };
    set->slots_["face_attributes"] = std::move(slot);
  }
  if (auto hands = HandDetector::Create(paths)) {
    set->hands_ = std::move(*hands);
    add("hands", set->hands_.get());
  }
  add("barcodes", set->barcodes_.get());
  if (auto text = TextReader::Create()) {  // without tesseract-ocr-eng: no "text" detector
    set->text_ = std::move(*text);
    add("text", set->text_.get());
  }
  if (!options.catalog_path.empty()) {
    SV_ASSIGN_OR_RETURN(auto catalog, LoadCatalog(options.catalog_path));
    SV_ASSIGN_OR_RETURN(set->products_, ProductMatcher::Create(catalog, options.product));
    add("products", set->products_.get());
  }
  return set;
}

std::vector<std::string> DetectorSet::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, slot] : slots_) names.push_back(name);
  return names;
}

bool DetectorSet::Has(std::string_view name) const { return slots_.find(name) != slots_.end(); }

Result<std::vector<Detection>> DetectorSet::Run(std::string_view name, const cv::Mat& bgr,
                                                StreamState* stream) {
  auto it = slots_.find(name);
  if (it == slots_.end()) {
    std::string known;
    for (const auto& n : Names()) known += (known.empty() ? "" : ", ") + n;
    return Error(ErrorCode::kNotFound,
                 "detector '" + std::string(name) + "' unknown (known: " + known + ")");
  }
  std::lock_guard<std::mutex> lock(it->second->mu);
  return it->second->run(bgr, stream);
}

}  // namespace storevisor::vision
