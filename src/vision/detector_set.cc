// DetectorSet: every detector the service offers, each behind its own mutex (cv::dnn::Net
// and the feature matchers keep per-call state and are not safe for concurrent use).
#include "vision/vision.h"

namespace storevisor::vision {

Result<std::unique_ptr<DetectorSet>> DetectorSet::Create(const DetectorSetOptions& options) {
  auto set = std::make_unique<DetectorSet>();
  SV_ASSIGN_OR_RETURN(ModelPaths paths, FindModels(options.models_dir));
  SV_ASSIGN_OR_RETURN(set->faces_, FaceDetector::Create(paths, options.face));
  SV_ASSIGN_OR_RETURN(set->barcodes_, BarcodeReader::Create());
  auto add = [&](const std::string& name, auto* detector) {
    auto slot = std::make_unique<Slot>();
    slot->run = [detector](const cv::Mat& m) { return detector->Detect(m); };
    set->slots_[name] = std::move(slot);
  };
  add("faces", set->faces_.get());
  // Face attributes only where set-up converted the models; the rest works without them.
  if (auto classifier = FaceClassifier::Create(options.models_dir)) {
    set->classifier_ = std::move(*classifier);
    SV_ASSIGN_OR_RETURN(set->attr_faces_, FaceDetector::Create(paths, options.face));
    auto slot = std::make_unique<Slot>();
    slot->run = [faces = set->attr_faces_.get(), classifier = set->classifier_.get()](
                    const cv::Mat& m) -> Result<std::vector<Detection>> {
      SV_ASSIGN_OR_RETURN(auto ds, faces->Detect(m));
      for (auto& d : ds) SV_TRY(classifier->Classify(m, &d));
      return ds;
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

Result<std::vector<Detection>> DetectorSet::Run(std::string_view name, const cv::Mat& bgr) {
  auto it = slots_.find(name);
  if (it == slots_.end()) {
    std::string known;
    for (const auto& n : Names()) known += (known.empty() ? "" : ", ") + n;
    return Error(ErrorCode::kNotFound,
                 "detector '" + std::string(name) + "' unknown (known: " + known + ")");
  }
  std::lock_guard<std::mutex> lock(it->second->mu);
  return it->second->run(bgr);
}

}  // namespace storevisor::vision
