// bench-vision: frames per second and p50/p99 latency per 640x480 frame of
//   - the face pipeline as the service runs it (the `face_attributes` detector of a
//     DetectorSet: BlazeFace + gender, emotion and age of every face found), with the
//     service's default detector configuration (tiles on) on a stream (a pipeline: the whole
//     frame every other frame and one tile in turn between, each square's faces carried, a
//     tracked face's attributes taken over within a cycle; each worker is one stream; and,
//     beside it, the whole frame and a tile on every frame, and every fresh face classified
//     on every frame),
//     on still images (/detect, KServe, the CLI: the whole frame and every tile), and with
//     --no-tiles,
//   - face detection alone (BlazeFace through cv::dnn: stream, all tiles, one pass),
//   - the peer: OpenCV's Haar frontal-face cascade (opencv-data) called as a user would call
//     it (grey + equalizeHist + detectMultiScale with its default parameters) on the same
//     frames, and for reference the service's own Haar fallback (--haar),
// with 1 and 2 worker threads (each owns its detectors), the item pipeline (barcodes +
// catalog products, as the service runs it; and Tesseract label text) and the hand pipeline
// (palms + landmarks + gesture). Prints medians and ratios against the peer from the same run.
//
// Threads: OpenCV's own pool (TBB here) is set to one thread (cv::setNumThreads(1)) and the
// process re-executes itself with OMP_THREAD_LIMIT=1 (Tesseract uses OpenMP), so a worker is
// one thread and "1 thread" means one core. Each figure also prints the CPU time the process
// used divided by the wall time ("cpu N.NN cores"), which shows it.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <optional>
#include <string_view>
#include <thread>

#include "vision/test_images.h"
#include "vision/vision.h"

namespace vis = storevisor::vision;
using Clock = std::chrono::steady_clock;

namespace {

struct Figures {
  double fps = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double cpu_cores = 0;  // process CPU time / wall time over the timed part
};

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Letterboxes a photo into 640x480, as a camera frame would be.
cv::Mat To640x480(const cv::Mat& img) {
  const double s = std::min(640.0 / img.cols, 480.0 / img.rows);
  cv::Mat resized;
  cv::resize(img, resized, cv::Size(), s, s, cv::INTER_AREA);
  cv::Mat frame(480, 640, CV_8UC3, cv::Scalar(0, 0, 0));
  resized.copyTo(frame(
      cv::Rect((640 - resized.cols) / 2, (480 - resized.rows) / 2, resized.cols, resized.rows)));
  return frame;
}

std::vector<cv::Mat> Frames(const std::vector<std::string>& paths) {
  std::vector<cv::Mat> out;
  out.reserve(paths.size());
  for (const auto& p : paths) {
    auto img = vis::ReadImageFile(p);
    if (!img) {
      std::fprintf(stderr, "bench-vision: %s\n", img.error().message().c_str());
      std::exit(8);
    }
    out.push_back(To640x480(*img));
  }
  return out;
}

using MakeFn = std::function<std::function<size_t(const cv::Mat&)>()>;

// Runs `frames_per_thread` frames on each of `threads` threads, each with its own detector.
// scene_frames: how many consecutive frames show the same photo (1: a new photo every frame;
// a stream holds each for a while, as a camera's scene changes now and then).
Figures Run(const MakeFn& make, const std::vector<cv::Mat>& frames, int threads,
            int frames_per_thread, int scene_frames = 1) {
  std::vector<std::vector<double>> lat(threads);
  std::vector<std::function<size_t(const cv::Mat&)>> dets;
  dets.reserve(threads);
  for (int t = 0; t < threads; ++t) dets.push_back(make());
  for (auto& d : dets) d(frames[0]);  // warm-up
  const double cpu_start = CpuSeconds();
  const auto start = Clock::now();
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      lat[t].reserve(frames_per_thread);
      for (int i = 0; i < frames_per_thread; ++i) {
        const auto s = Clock::now();
        dets[t](frames[(i / scene_frames + t) % frames.size()]);
        lat[t].push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
      }
    });
  }
  for (auto& th : pool) th.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu_start;
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  return {static_cast<double>(all.size()) / secs, all[all.size() / 2],
          all[std::min(all.size() - 1, all.size() * 99 / 100)], cpu / secs};
}

MakeFn Faces(vis::FaceBackend backend, bool tiles) {
  return [backend, tiles] {
    auto paths = vis::FindModels("");
    vis::FaceDetectorOptions o;
    o.backend = backend;
    o.tiles = tiles;
    std::shared_ptr<vis::FaceDetector> d = std::move(*vis::FaceDetector::Create(*paths, o));
    return std::function<size_t(const cv::Mat&)>(
        [d](const cv::Mat& m) { return d->Detect(m)->size(); });
  };
}

// Face detection on a stream: one square a frame (or the whole frame and a tile), carried.
MakeFn FacesStream(vis::FaceStreamOptions options) {
  return [options] {
    auto paths = vis::FindModels("");
    std::shared_ptr<vis::FaceDetector> d =
        std::move(*vis::FaceDetector::Create(*paths, vis::FaceDetectorOptions()));
    auto stream = std::make_shared<vis::FaceStream>(options);
    return std::function<size_t(const cv::Mat&)>([d, stream](const cv::Mat& m) {
      return stream->Merge(std::move(*d->ScanStream(m, stream.get()))).size();
    });
  };
}

// The peer: OpenCV's Haar frontal-face cascade as its tutorial (objectDetection.cpp) calls
// it: grey, equalizeHist, detectMultiScale with the default scale factor 1.1, 3 neighbours,
// no flags, no size limits. (The service's own --haar fallback asks for reject levels to get
// a score, which makes OpenCV keep and group far more candidates: it is measured separately.)
MakeFn PlainHaar() {
  return [] {
    auto paths = vis::FindModels("");
    auto cascade = std::make_shared<cv::CascadeClassifier>();
    if (!paths || !cascade->load(paths->haar_cascade)) {
      std::fprintf(stderr, "bench-vision: cannot load the Haar cascade\n");
      std::exit(8);
    }
    return std::function<size_t(const cv::Mat&)>([cascade](const cv::Mat& m) {
      cv::Mat gray;
      cv::cvtColor(m, gray, cv::COLOR_BGR2GRAY);
      cv::equalizeHist(gray, gray);
      std::vector<cv::Rect> faces;
      cascade->detectMultiScale(gray, faces);
      return faces.size();
    });
  };
}

// A detector of a DetectorSet, exactly as the service runs it (`face_attributes` is the face
// pipeline: BlazeFace + gender, emotion and age of each face; `barcodes`, `products`).
// tiles: the service's default (FaceDetectorOptions::tiles, on) or --no-tiles. stream: none
// for still images (/detect, KServe infer, the CLI), else as a pipeline runs a stream (its own
// StreamState, one per worker: each worker is one camera) with these options (the service's
// default, or the alternatives measured beside it).
MakeFn Service(const std::vector<std::string>& detectors, bool tiles,
               const std::string& catalog = "",
               std::optional<vis::FaceStreamOptions> stream = std::nullopt) {
  return [detectors, tiles, catalog, stream] {
    vis::DetectorSetOptions o;
    o.face.tiles = tiles;
    o.catalog_path = catalog;
    auto set = vis::DetectorSet::Create(o);
    if (!set) {
      std::fprintf(stderr, "bench-vision: %s\n", set.error().message().c_str());
      std::exit(8);
    }
    for (const auto& d : detectors) {
      if (!(*set)->Has(d)) {
        std::fprintf(stderr, "bench-vision: detector %s missing (run scripts/setup.sh)\n",
                     d.c_str());
        std::exit(8);
      }
    }
    std::shared_ptr<vis::DetectorSet> shared = std::move(*set);
    auto state = stream ? std::make_shared<vis::StreamState>(*stream) : nullptr;
    return std::function<size_t(const cv::Mat&)>([shared, detectors, state](const cv::Mat& m) {
      size_t n = 0;
      for (const auto& d : detectors) n += shared->Run(d, m, state.get())->size();
      return n;
    });
  };
}

MakeFn Hands() {
  return [] {
    auto paths = vis::FindModels("");
    std::shared_ptr<vis::HandDetector> h = std::move(*vis::HandDetector::Create(*paths));
    return std::function<size_t(const cv::Mat&)>(
        [h](const cv::Mat& m) { return h->Detect(m)->size(); });
  };
}

MakeFn Text() {
  return [] {
    std::shared_ptr<vis::TextReader> t = std::move(*vis::TextReader::Create());
    return std::function<size_t(const cv::Mat&)>(
        [t](const cv::Mat& m) { return t->Detect(m)->size(); });
  };
}

MakeFn Items(const std::string& features) {
  return [features] {
    std::shared_ptr<vis::BarcodeReader> codes = std::move(*vis::BarcodeReader::Create());
    vis::ProductMatcherOptions o;
    o.features = features;
    std::shared_ptr<vis::ProductMatcher> products = std::move(*vis::ProductMatcher::Create(
        {{"cookie-box", std::string(vis::testdata::kOpencvData) + "box.png"}}, o));
    return std::function<size_t(const cv::Mat&)>([codes, products](const cv::Mat& m) {
      return codes->Detect(m)->size() + products->Detect(m)->size();
    });
  };
}

void Print(const char* name, int threads, const Figures& f, const Figures* peer) {
  std::printf("%-60s threads=%d  fps=%8.1f  p50=%7.2f ms  p99=%7.2f ms  cpu %.2f cores", name,
              threads, f.fps, f.p50_ms, f.p99_ms, f.cpu_cores);
  if (peer != nullptr) {
    std::printf("  throughput x%.1f  p50 x%.2f vs haar", f.fps / peer->fps,
                f.p50_ms / peer->p50_ms);
  }
  std::printf("\n");
}

// The box is shared: figures are only comparable with the load they were taken under.
void PrintLoad(const char* when) {
  std::array<double, 3> load{};
  if (getloadavg(load.data(), 3) == 3) {
    std::printf("%s: %.2f %.2f %.2f (1, 5, 15 min)\n", when, load[0], load[1], load[2]);
  }
}

// The face rows: the target (the face pipeline against Haar, same run) at 1 and 2 threads.
void FaceRows(int n, const std::vector<cv::Mat>& face_frames) {
  // A stream holds each photo for 24 frames (two cycles of the default schedule at 640x480:
  // 6 tiles, the whole frame between them) before the next, as a camera's scene changes now
  // and then; the work per frame is the same either way, only which faces are new changes.
  constexpr int kSceneFrames = 24;
  const vis::FaceStreamOptions service_default;
  const vis::FaceStreamOptions whole_every_frame{.whole_every_frame = true};
  const vis::FaceStreamOptions classify_every_frame{.reuse_attributes = false};
  for (int threads : {1, 2}) {
    const Figures haar = Run(PlainHaar(), face_frames, threads, n / 4);
    auto stream_run = [&](const vis::FaceStreamOptions& o) {
      return Run(Service({"face_attributes"}, true, "", o), face_frames, threads, n / 2,
                 kSceneFrames);
    };
    const Figures stream_pipeline = stream_run(service_default);
    const Figures stream_both = stream_run(whole_every_frame);
    const Figures classify_all = stream_run(classify_every_frame);
    const Figures tiled_pipeline =
        Run(Service({"face_attributes"}, true), face_frames, threads, std::max(10, n / 8));
    const Figures pipeline = Run(Service({"face_attributes"}, false), face_frames, threads, n / 2);
    const Figures stream = Run(FacesStream(service_default), face_frames, threads, n, kSceneFrames);
    const Figures stream2 =
        Run(FacesStream(whole_every_frame), face_frames, threads, n / 2, kSceneFrames);
    const Figures one = Run(Faces(vis::FaceBackend::kBlazeFace, false), face_frames, threads, n);
    const Figures tiled =
        Run(Faces(vis::FaceBackend::kBlazeFace, true), face_frames, threads, n / 4);
    Print("peer: Haar cascade, plain detectMultiScale", threads, haar, nullptr);
    Print("face pipeline, service default (stream: round-robin tiles)", threads, stream_pipeline,
          &haar);
    Print("  stream, whole frame + a tile every frame", threads, stream_both, &haar);
    Print("  stream, every fresh face classified every frame", threads, classify_all, &haar);
    Print("face pipeline, still image (whole + all tiles)", threads, tiled_pipeline, &haar);
    Print("face pipeline, --no-tiles (one pass)", threads, pipeline, &haar);
    Print("detection: BlazeFace stream (one square a frame)", threads, stream, &haar);
    Print("detection: BlazeFace stream (whole + a tile)", threads, stream2, &haar);
    Print("detection: BlazeFace still image (all tiles)", threads, tiled, &haar);
    Print("detection: BlazeFace one pass (--no-tiles)", threads, one, &haar);
    std::printf("%-60s threads=%d  %.1f frames/s per core (stream: %.1f, all tiles: %.1f)\n",
                "detection one pass", threads, one.fps / threads, stream.fps / threads,
                tiled.fps / threads);
  }
}

// Everything else: the service's Haar fallback, items, label text, hands.
void OtherRows(int n, const std::vector<cv::Mat>& face_frames, const std::string& catalog) {
  const std::string cv = vis::testdata::kOpencvData;
  const auto item_frames = Frames({vis::testdata::kFourBarcodes, cv + "box_in_scene.png"});
  Print("service's Haar fallback (--haar)", 1,
        Run(Faces(vis::FaceBackend::kHaar, false), face_frames, 1, std::max(4, n / 16)), nullptr);
  for (int threads : {1, 2}) {
    Print("items: barcodes + products (sift, default)", threads,
          Run(Service({"barcodes", "products"}, true, catalog), item_frames, threads, n / 10),
          nullptr);
  }
  Print("items: barcodes + products (orb)", 1, Run(Items("orb"), item_frames, 1, n / 10), nullptr);
  const auto text_frames = Frames({vis::testdata::kSignText, cv + "box_in_scene.png"});
  Print("items: label text (tesseract)", 1, Run(Text(), text_frames, 1, std::max(4, n / 20)),
        nullptr);
  const auto hand_frames = Frames({vis::testdata::kHand, cv + "messi5.jpg"});
  Print("hands: palms + landmarks + gesture", 1, Run(Hands(), hand_frames, 1, n / 4), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  // OpenMP (Tesseract) reads its limits when the library loads, before main: set them and
  // start again, so that no library runs a pool of its own behind a "1 thread" figure.
  if (std::getenv("SV_BENCH_VISION_SINGLE") == nullptr) {  // NOLINT(concurrency-mt-unsafe)
    setenv("OMP_THREAD_LIMIT", "1", 1);                    // NOLINT(concurrency-mt-unsafe)
    setenv("OMP_NUM_THREADS", "1", 1);                     // NOLINT(concurrency-mt-unsafe)
    setenv("OPENBLAS_NUM_THREADS", "1", 1);                // NOLINT(concurrency-mt-unsafe)
    setenv("SV_BENCH_VISION_SINGLE", "1", 1);              // NOLINT(concurrency-mt-unsafe)
    execv("/proc/self/exe", argv);
    std::perror("bench-vision: re-exec with OMP_THREAD_LIMIT=1");
    return 1;
  }
  // OpenCV's parallel_for_ pool (TBB in Debian's build): one thread, so each worker thread
  // runs its detectors serially and N workers use at most N cores.
  cv::setNumThreads(1);
  // bench-vision [--faces] [frames-per-thread]: --faces runs only the face rows (the target).
  bool faces_only = false;
  int n = 200;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--faces") {
      faces_only = true;
    } else {
      n = std::max(10, static_cast<int>(std::strtol(argv[i], nullptr, 10)));
    }
  }
  const std::string sk = vis::testdata::kSkimage;
  const std::string cv = vis::testdata::kOpencvData;
  const auto face_frames =
      Frames({vis::testdata::kGraceHopper, sk + "astronaut.png", sk + "camera.png",
              cv + "messi5.jpg", cv + "fruits.jpg", sk + "coffee.png"});
  // The item pipeline's catalog, as a service config would name it.
  char dir_template[] = "/tmp/bench-vision-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (dir == nullptr) {
    std::perror("bench-vision: mkdtemp");
    return 1;
  }
  const std::string catalog = std::string(dir) + "/catalog.json";
  if (FILE* f = std::fopen(catalog.c_str(), "w"); f != nullptr) {
    std::fprintf(f, "{\"items\":[{\"name\":\"cookie-box\",\"image\":\"%sbox.png\"}]}\n",
                 cv.c_str());
    std::fclose(f);
  }
  std::printf(
      "bench-vision: %d frames per thread, 640x480, %u hardware threads, OpenCV threads %d, "
      "OMP_THREAD_LIMIT=%s\n",
      n, std::thread::hardware_concurrency(), cv::getNumThreads(),
      std::getenv("OMP_THREAD_LIMIT"));  // NOLINT(concurrency-mt-unsafe)
  PrintLoad("load average at the start");
  FaceRows(n, face_frames);
  if (!faces_only) OtherRows(n, face_frames, catalog);
  PrintLoad("load average at the end");
  std::remove(catalog.c_str());
  rmdir(dir);
  return 0;
}
