// storevisor-vision: the vision service's command line (thin: all work is in sv_vision).
//   storevisor-vision detect [options] IMAGE...   detections as JSON on stdout
//   storevisor-vision serve [options]             the HTTP service (KServe v2, /detect, /metrics)
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "vision/vision.h"

namespace sv = storevisor;
namespace vis = storevisor::vision;

namespace {

int Fail(const sv::Error& e) {
  std::fprintf(stderr, "storevisor-vision: %s\n", e.message().c_str());
  return sv::ExitCodeFor(e.code());
}

struct DetectArgs {
  std::vector<std::string> images;
  std::vector<std::string> detectors = {"faces", "barcodes"};
};

int RunDetect(const vis::DetectorSetOptions& options, const DetectArgs& args) {
  auto set = vis::DetectorSet::Create(options);
  if (!set) return Fail(set.error());
  nlohmann::json out = nlohmann::json::array();
  int status = 0;
  for (const auto& path : args.images) {
    nlohmann::json entry = {{"image", path}};
    auto img = vis::ReadImageFile(path);
    if (!img) {
      entry["error"] = img.error().message();
      status = sv::ExitCodeFor(img.error().code());
      out.push_back(entry);
      continue;
    }
    std::vector<vis::Detection> all;
    for (const auto& name : args.detectors) {
      auto ds = (*set)->Run(name, *img);
      if (!ds) return Fail(ds.error());
      all.insert(all.end(), ds->begin(), ds->end());
    }
    entry["detections"] = vis::DetectionsToJson(all);
    out.push_back(entry);
  }
  std::cout << out.dump(2) << "\n";
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"storevisor-vision: faces, codes and products on camera frames"};
  app.require_subcommand(1);
  vis::DetectorSetOptions options;
  bool haar = false;
  bool no_tiles = false;
  auto common = [&](CLI::App* cmd) {
    cmd->add_option("--models", options.models_dir, "model directory (npm node_modules)");
    cmd->add_option("--catalog", options.catalog_path, "product catalog JSON");
    cmd->add_option("--features", options.product.features, "product features: sift|orb|akaze");
    cmd->add_flag("--haar", haar, "Haar cascade instead of BlazeFace");
    cmd->add_flag("--no-tiles", no_tiles, "BlazeFace on the whole frame only");
  };
  DetectArgs detect;
  CLI::App* detect_cmd = app.add_subcommand("detect", "run detectors on image files");
  common(detect_cmd);
  detect_cmd->add_option("--detectors", detect.detectors, "faces, barcodes, products")
      ->delimiter(',');
  detect_cmd->add_option("images", detect.images, "image files")->required();
  CLI11_PARSE(app, argc, argv);
  if (haar) options.face.backend = vis::FaceBackend::kHaar;
  options.face.tiles = !no_tiles;
  if (detect_cmd->parsed()) return RunDetect(options, detect);
  return 2;
}
