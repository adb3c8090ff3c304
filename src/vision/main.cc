// storevisor-vision: the vision service's command line (thin: all work is in sv_vision).
//   storevisor-vision detect [options] IMAGE...   detections as JSON on stdout
//   storevisor-vision serve [options]             the HTTP service (KServe v2, /detect, /metrics)
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

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
    const auto start = std::chrono::steady_clock::now();
    for (const auto& name : args.detectors) {
      auto ds = (*set)->Run(name, *img);
      if (!ds) return Fail(ds.error());
      all.insert(all.end(), ds->begin(), ds->end());
    }
    entry["detections"] = vis::DetectionsToJson(all);
    entry["ms"] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();  // per image, for bench/vision-eval
    out.push_back(entry);
  }
  std::cout << out.dump(2) << "\n";
  return status;
}

int RunServe(const vis::ServiceConfig& config) {
  // SIGINT/SIGTERM are taken by sigwait in a thread (no handler, no global state): block them
  // before any thread starts so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto set = vis::DetectorSet::Create(config.detectors);
  if (!set) return Fail(set.error());
  std::shared_ptr<vis::DetectorSet> detectors = std::move(*set);
  auto metrics = std::make_shared<vis::Metrics>();
  auto events = std::make_shared<vis::EventLog>();
  std::unique_ptr<vis::EventSink> sink;  // destroyed after the pipelines stop (declared first)
  if (!config.events_url.empty()) {
    auto started = vis::EventSink::Start({.url = config.events_url}, metrics);
    if (!started) return Fail(started.error());
    sink = std::move(*started);
    events->Subscribe([s = sink.get()](const vis::StreamEvent& e) { s->Push(e); });
  }
  auto pipelines = vis::Pipelines::Start(config, detectors, metrics, events);
  if (!pipelines) return Fail(pipelines.error());
  std::shared_ptr<vis::Pipelines> running = std::move(*pipelines);
  auto server = vis::Server::Create(detectors, metrics, config.server, running, events);
  if (!server) return Fail(server.error());
  std::fprintf(stderr, "storevisor-vision: serving on http://%s:%d (%zu pipelines)\n",
               config.server.host.c_str(), (*server)->port(), config.pipelines.size());
  std::printf("%d\n", (*server)->port());  // the bound port, for whoever started us
  std::fflush(stdout);
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    (*server)->Stop();
  });
  auto status = (*server)->Run();
  kill(getpid(), SIGTERM);  // wake the waiter if Run ended by itself (the signal is blocked)
  stopper.join();
  running->Stop();
  if (!status) return Fail(status.error());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Tesseract (label text) runs its loops on OpenMP threads with explicit thread counts, which
  // only OpenMP's thread limit bounds, and the limit is read from the environment when libgomp
  // loads, before main. On a shared 2-core box those threads made a frame ~5x slower (bench:
  // 293 ms against 59 ms) and took cores from the other detectors; the service parallelises
  // across frames and streams itself. So start again with OMP_THREAD_LIMIT=1 unless the
  // caller chose a limit. execv keeps the pid, the fds and the parent's death signal.
  if (std::getenv("OMP_THREAD_LIMIT") == nullptr) {  // NOLINT(concurrency-mt-unsafe)
    setenv("OMP_THREAD_LIMIT", "1", 1);              // NOLINT(concurrency-mt-unsafe)
    execv("/proc/self/exe", argv);
    // Not fatal: the service works, only label text is slower.
    std::perror("storevisor-vision: re-exec with OMP_THREAD_LIMIT=1");
  }
  CLI::App app{"storevisor-vision: faces, codes and products on camera frames"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "storevisor-vision " SV_VERSION);
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
  vis::ServerOptions server_options;
  std::string config_path;
  CLI::App* serve_cmd = app.add_subcommand("serve", "serve KServe v2, /detect and /metrics");
  common(serve_cmd);
  serve_cmd->add_option("--config", config_path, "service config (JSON or YAML): pipelines...");
  auto* host_opt =
      serve_cmd->add_option("--host", server_options.host, "address to listen on (loopback)");
  auto* port_opt =
      serve_cmd->add_option("--port", server_options.port, "TCP port (0: any free port)");
  serve_cmd->add_option("--threads", server_options.threads, "HTTP worker threads");
  std::string events_url;
  serve_cmd->add_option("--events-url", events_url,
                        "push events to storevisord: unix:/path.sock or http://host:port");
  CLI11_PARSE(app, argc, argv);
  if (haar) options.face.backend = vis::FaceBackend::kHaar;
  options.face.tiles = !no_tiles;
  if (detect_cmd->parsed()) return RunDetect(options, detect);
  if (serve_cmd->parsed()) {
    vis::ServiceConfig config;
    if (!config_path.empty()) {
      auto loaded = vis::LoadServiceConfig(config_path);
      if (!loaded) return Fail(loaded.error());
      config = std::move(*loaded);
      // Flags given on the command line win over the file (a container image passes
      // --models where it keeps them, whatever the mounted config says).
      if (host_opt->count() > 0) config.server.host = server_options.host;
      if (port_opt->count() > 0) config.server.port = server_options.port;
      if (serve_cmd->count("--models") > 0) config.detectors.models_dir = options.models_dir;
      if (serve_cmd->count("--catalog") > 0) config.detectors.catalog_path = options.catalog_path;
      if (serve_cmd->count("--features") > 0) {
        config.detectors.product.features = options.product.features;
      }
      if (no_tiles) config.detectors.face.tiles = false;
    } else {
      config.server = server_options;
      config.detectors = options;
      config.detectors.face.tiles = !no_tiles;
    }
    if (haar) config.detectors.face.backend = vis::FaceBackend::kHaar;
    if (!events_url.empty()) config.events_url = events_url;
    return RunServe(config);
  }
  return 2;
}
