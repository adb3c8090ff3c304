// bench-vision: frames per second and p50/p99 latency per 640x480 frame of
//   - the face pipeline: BlazeFace (one pass) + gender, emotion and age of every face found,
//   - face detection alone (BlazeFace through cv::dnn, one pass; and with tiles),
//   - the peer: OpenCV's Haar frontal-face cascade (opencv-data) on the same frames,
// with 1 and 2 threads (each thread owns its detectors), the item pipeline (barcodes +
// catalog products, and Tesseract label text) and the hand pipeline (palms + landmarks +
// gesture). Prints medians and ratios against the peer from the same run.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <opencv2/imgproc.hpp>
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
};

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
Figures Run(const MakeFn& make, const std::vector<cv::Mat>& frames, int threads,
            int frames_per_thread) {
  std::vector<std::vector<double>> lat(threads);
  std::vector<std::function<size_t(const cv::Mat&)>> dets;
  dets.reserve(threads);
  for (int t = 0; t < threads; ++t) dets.push_back(make());
  for (auto& d : dets) d(frames[0]);  // warm-up
  const auto start = Clock::now();
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      lat[t].reserve(frames_per_thread);
      for (int i = 0; i < frames_per_thread; ++i) {
        const auto s = Clock::now();
        dets[t](frames[(i + t) % frames.size()]);
        lat[t].push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
      }
    });
  }
  for (auto& th : pool) th.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  return {static_cast<double>(all.size()) / secs, all[all.size() / 2],
          all[std::min(all.size() - 1, all.size() * 99 / 100)]};
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

// The face pipeline: detection + classification of each face (what `face_attributes` runs).
MakeFn FacePipeline() {
  return [] {
    auto paths = vis::FindModels("");
    vis::FaceDetectorOptions o;
    o.tiles = false;  // the fast path; attributes need faces big enough to classify anyway
    std::shared_ptr<vis::FaceDetector> d = std::move(*vis::FaceDetector::Create(*paths, o));
    auto c = vis::FaceClassifier::Create("");
    if (!c) {
      std::fprintf(stderr, "bench-vision: %s\n", c.error().message().c_str());
      std::exit(8);
    }
    std::shared_ptr<vis::FaceClassifier> classifier = std::move(*c);
    return std::function<size_t(const cv::Mat&)>([d, classifier](const cv::Mat& m) {
      auto faces = d->Detect(m);
      for (auto& f : *faces) (void)classifier->Classify(m, &f);
      return faces->size();
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
  std::printf("%-34s threads=%d  fps=%8.1f  p50=%7.2f ms  p99=%7.2f ms", name, threads, f.fps,
              f.p50_ms, f.p99_ms);
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

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::max(10, static_cast<int>(std::strtol(argv[1], nullptr, 10))) : 200;
  const std::string sk = vis::testdata::kSkimage;
  const std::string cv = vis::testdata::kOpencvData;
  const auto face_frames =
      Frames({vis::testdata::kGraceHopper, sk + "astronaut.png", sk + "camera.png",
              cv + "messi5.jpg", cv + "fruits.jpg", sk + "coffee.png"});
  const auto item_frames = Frames({vis::testdata::kFourBarcodes, cv + "box_in_scene.png"});
  std::printf("bench-vision: %d frames per thread, 640x480, %u hardware threads\n", n,
              std::thread::hardware_concurrency());
  PrintLoad("load average at the start");
  for (int threads : {1, 2}) {
    const Figures haar = Run(Faces(vis::FaceBackend::kHaar, false), face_frames, threads, n / 4);
    const Figures pipeline = Run(FacePipeline(), face_frames, threads, n / 2);
    const Figures one = Run(Faces(vis::FaceBackend::kBlazeFace, false), face_frames, threads, n);
    const Figures tiled =
        Run(Faces(vis::FaceBackend::kBlazeFace, true), face_frames, threads, n / 4);
    Print("peer: Haar cascade (opencv-data)", threads, haar, nullptr);
    Print("face pipeline: detect + classify", threads, pipeline, &haar);
    Print("detection: BlazeFace, one pass", threads, one, &haar);
    Print("detection: BlazeFace + tiles", threads, tiled, &haar);
    std::printf("%-34s threads=%d  %.1f frames/s per core\n", "detection one pass", threads,
                one.fps / threads);
  }
  for (const char* f : {"orb", "sift"}) {
    const Figures items = Run(Items(f), item_frames, 1, n / 10);
    Print((std::string("items: barcodes + products/") + f).c_str(), 1, items, nullptr);
  }
  const auto text_frames = Frames({vis::testdata::kSignText, cv + "box_in_scene.png"});
  Print("items: label text (tesseract)", 1, Run(Text(), text_frames, 1, std::max(4, n / 20)),
        nullptr);
  const auto hand_frames = Frames({vis::testdata::kHand, cv + "messi5.jpg"});
  Print("hands: palms + landmarks + gesture", 1, Run(Hands(), hand_frames, 1, n / 4), nullptr);
  PrintLoad("load average at the end");
  return 0;
}
