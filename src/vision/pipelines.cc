// Pipelines: one thread per stream reads frames, paces them to the fps cap, crops the ROI,
// chooses edge or cloud per frame (auto placement), runs the detectors, and publishes
// metrics, events and an annotated JPEG. A failing stream never stops the others.
#include <opencv2/imgcodecs.hpp>

#include "vision/pipeline_internal.h"

namespace storevisor::vision {
namespace {

using internal::Clock;
using nlohmann::json;

constexpr auto kMinDwell = std::chrono::seconds(2);  // placement changes at most this often

class Runner {
 public:
  Runner(PipelineConfig config, std::shared_ptr<DetectorSet> detectors,
         std::shared_ptr<Metrics> metrics, std::shared_ptr<EventLog> events,
         internal::EdgeExecutor* edge, internal::CloudClient* cloud)
      : config_(std::move(config)),
        detectors_(std::move(detectors)),
        metrics_(std::move(metrics)),
        events_(std::move(events)),
        edge_(edge),
        cloud_(cloud) {}

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void RequestStop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  const std::string& name() const { return config_.name; }

  std::optional<std::pair<uint64_t, std::string>> Latest() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (jpeg_seq_ == 0) return std::nullopt;
    return std::make_pair(jpeg_seq_, jpeg_);
  }
  std::optional<std::pair<uint64_t, std::string>> Wait(uint64_t after,
                                                       std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    frame_cv_.wait_for(lock, timeout, [&] { return stop_ || jpeg_seq_ > after; });
    if (jpeg_seq_ <= after) return std::nullopt;
    return std::make_pair(jpeg_seq_, jpeg_);
  }
  json Status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {{"name", config_.name},
            {"state", state_},
            {"last_error", last_error_},
            {"placement", std::string(PlacementName(current_))},
            {"placement_reason", reason_},
            {"placement_detail", reason_detail_},
            {"configured_placement", std::string(PlacementName(config_.placement))},
            {"frames", frames_},
            {"dropped", dropped_}};
  }

 private:
  void SetState(const std::string& state, const std::string& error) {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = state;
    if (!error.empty()) last_error_ = error;
  }
  // Sleeps until t or a stop request; false when stopping.
  bool SleepUntil(Clock::time_point t) {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_until(lock, t, [this] { return stop_; });
  }
  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  void Loop();
  bool EnsureSource(std::chrono::milliseconds* backoff);
  void Process(cv::Mat frame);
  Result<std::vector<Detection>> RunEdge(const std::string& detector, const cv::Mat& img);
  Result<std::vector<Detection>> RunOne(const std::string& detector, const cv::Mat& img);
  void ChoosePlacement();
  void Publish(cv::Mat frame, const std::vector<Detection>& ds, double ms);
  void EmitDetectionEvents(const std::vector<Detection>& ds);

  PipelineConfig config_;
  std::shared_ptr<DetectorSet> detectors_;
  std::shared_ptr<Metrics> metrics_;
  std::shared_ptr<EventLog> events_;
  internal::EdgeExecutor* edge_;
  internal::CloudClient* cloud_;
  std::unique_ptr<internal::FrameSource> source_;
  std::thread thread_;

  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  mutable std::condition_variable frame_cv_;
  bool stop_ = false;
  std::string state_ = "starting";
  std::string last_error_;
  Placement current_ = Placement::kEdge;
  std::string reason_;         // a PlacementReason code
  std::string reason_detail_;  // with the numbers
  Clock::time_point last_switch_{};
  uint64_t frames_ = 0;
  uint64_t dropped_ = 0;
  uint64_t jpeg_seq_ = 0;
  std::string jpeg_;

  // Only the pipeline thread touches these.
  bool faces_present_ = false;
  StreamState stream_;  // round-robin face tiles and what they carry (used by RunEdge's job)
  GestureTracker gestures_;
  bool open_error_reported_ = false;
  std::map<std::string, Clock::time_point> recent_items_;
};

bool Runner::EnsureSource(std::chrono::milliseconds* backoff) {
  if (source_) return true;
  auto src = internal::FrameSource::Open(config_.source);
  if (src) {
    source_ = std::move(*src);
    open_error_reported_ = false;
    SetState("running", "");
    events_->Add(config_.name, "source_open", {{"source", config_.source.path}});
    *backoff = std::chrono::milliseconds(250);
    return true;
  }
  if (!open_error_reported_) {  // once per outage, not once per retry
    events_->Add(config_.name, "source_error", {{"error", src.error().message()}});
    open_error_reported_ = true;
  }
  SetState("reconnecting", src.error().message());
  SleepUntil(Clock::now() + *backoff);
  *backoff = std::min(*backoff * 2, std::chrono::milliseconds(5000));
  return false;
}

void Runner::Loop() {
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / config_.fps));
  auto due = Clock::now();
  auto backoff = std::chrono::milliseconds(250);
  while (!Stopping()) {
    if (!EnsureSource(&backoff)) continue;
    auto next = source_->Next();
    if (!next && next.error().code() == ErrorCode::kInvalidArgument) {
      // One bad frame (a corrupt file): say so and go on with the next.
      events_->Add(config_.name, "frame_error", {{"error", next.error().message()}});
      metrics_->Observe("pipeline", config_.name, 0, false);
      SetState("running", next.error().message());
      continue;
    }
    if (!next) {
      events_->Add(config_.name, "source_lost", {{"error", next.error().message()}});
      source_.reset();
      SetState("reconnecting", next.error().message());
      continue;
    }
    if (!next->has_value()) {
      SetState("finished", "");
      events_->Add(config_.name, "source_finished", json::object());
      return;
    }
    // Frame-rate cap: wait for the frame's slot; when behind by whole periods, the
    // frames of those periods are dropped (and counted) so a stream stays real-time.
    const auto now = Clock::now();
    if (now < due) {
      if (!SleepUntil(due)) return;
    } else if (now - due >= period) {
      const auto behind = static_cast<uint64_t>((now - due) / period);
      metrics_->Drop(config_.name, behind);
      std::lock_guard<std::mutex> lock(mu_);
      dropped_ += behind;
      due = now;
    }
    due += period;
    Process(std::move(**next));
  }
}

void Runner::ChoosePlacement() {
  internal::PlacementInput in{
      config_.placement,
      current_,
      edge_->EstimatedLatencyMs(),
      config_.latency_target_ms,
      cloud_ != nullptr && cloud_->Available(),
      cloud_ != nullptr ? cloud_->BreakerState() : "none",
      cloud_ != nullptr ? cloud_->RecentLatencyMs(internal::kCloudLatencyFresh) : 0};
  const internal::PlacementDecision d = internal::DecidePlacement(in);
  const auto now = Clock::now();
  const bool forced = d.where == Placement::kEdge && !in.cloud_available;
  if (d.where != current_ && !forced && now - last_switch_ < kMinDwell) return;
  const std::string code(internal::PlacementReasonCode(d.reason));
  if (d.where != current_ || reason_.empty()) {
    events_->Add(config_.name, "placement",
                 {{"from", std::string(PlacementName(current_))},
                  {"to", std::string(PlacementName(d.where))},
                  {"reason", code},
                  {"detail", d.detail}});
    std::lock_guard<std::mutex> lock(mu_);
    current_ = d.where;
    last_switch_ = now;
  }
  std::lock_guard<std::mutex> lock(mu_);
  reason_ = code;
  reason_detail_ = d.detail;
  // The code only: the label must keep a small fixed set of values.
  metrics_->SetPlacement(config_.name, std::string(PlacementName(current_)), reason_);
}

Result<std::vector<Detection>> Runner::RunEdge(const std::string& detector, const cv::Mat& img) {
  auto detectors = detectors_;
  // The stream's state travels with its frame: this thread waits for the job, so the state is
  // used by one frame at a time and outlives it.
  StreamState* stream = &stream_;
  return edge_
      ->Submit([detectors, detector, img, stream] { return detectors->Run(detector, img, stream); })
      .get();
}

Result<std::vector<Detection>> Runner::RunOne(const std::string& detector, const cv::Mat& img) {
  if (current_ != Placement::kCloud) return RunEdge(detector, img);
  auto ds = cloud_->Detect(detector, img);
  if (ds) {
    // The cloud scans each frame as a still image; what the edge carried is getting old, so the
    // next edge frame starts again with a full scan.
    stream_.Reset();
    return ds;
  }
  // Never drop the frame: run it here and say why.
  events_->Add(config_.name, "cloud_error",
               {{"error", ds.error().message()}, {"fallback", "edge"}});
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = ds.error().message();
  }
  if (!cloud_->Available()) ChoosePlacement();
  return RunEdge(detector, img);
}

void Runner::Process(cv::Mat frame) {
  const auto start = Clock::now();
  cv::Mat img = frame;
  cv::Point offset(0, 0);
  if (config_.roi) {
    const cv::Rect roi = *config_.roi & cv::Rect(0, 0, frame.cols, frame.rows);
    if (roi.area() == 0) {
      events_->Add(config_.name, "frame_error", {{"error", "roi lies outside the frame"}});
      metrics_->Observe("pipeline", config_.name, 0, false);
      return;
    }
    img = frame(roi);
    offset = roi.tl();
  }
  ChoosePlacement();
  std::vector<Detection> all;
  bool ok = true;
  for (const auto& det : config_.detectors) {
    auto ds = RunOne(det, img);
    if (!ds) {
      ok = false;
      events_->Add(config_.name, "detector_error",
                   {{"detector", det}, {"error", ds.error().message()}});
      continue;
    }
    for (auto& d : *ds) {
      d.box.x += static_cast<float>(offset.x);
      d.box.y += static_cast<float>(offset.y);
      for (auto& p : d.points) p += cv::Point2f(offset);
      all.push_back(std::move(d));
    }
  }
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  metrics_->Observe("pipeline", config_.name, ms / 1000.0, ok);
  EmitDetectionEvents(all);
  Publish(std::move(frame), all, ms);
}

void Runner::EmitDetectionEvents(const std::vector<Detection>& ds) {
  size_t faces = 0;
  json people = json::array();  // what a face_seen event says of each face
  const auto now = Clock::now();
  Gesture seen = Gesture::kNone;
  for (const auto& d : ds) {
    if (d.kind == "face") {
      faces++;
      people.push_back({{"box", {d.box.x, d.box.y, d.box.width, d.box.height}},
                        {"score", d.score},
                        {"attributes", d.attributes}});
      continue;
    }
    if (d.kind == "hand") {  // gestures: hysteresis over frames, an event when one starts
      if (auto g = ClassifyGesture(d.points); g && *g != Gesture::kNone) seen = *g;
      continue;
    }
    // An item counts as scanned once per 10 s, not once per frame it stays in view.
    auto [it, fresh] = recent_items_.try_emplace(d.kind + ":" + d.label, now);
    if (fresh || now - it->second > std::chrono::seconds(10)) {
      events_->Add(config_.name, d.kind == "product" ? "product_seen" : "item_scanned",
                   DetectionToJson(d));
    }
    it->second = now;
  }
  if (auto changed = gestures_.Update(seen); changed && *changed != Gesture::kNone) {
    events_->Add(config_.name, "gesture", {{"gesture", std::string(GestureName(*changed))}});
  }
  if (faces > 0 && !faces_present_) {
    events_->Add(config_.name, "face_seen", {{"faces", faces}, {"people", std::move(people)}});
  }
  if (faces == 0 && faces_present_) events_->Add(config_.name, "faces_gone", json::object());
  faces_present_ = faces > 0;
}

void Runner::Publish(cv::Mat frame, const std::vector<Detection>& ds, double ms) {
  std::string caption;
  {
    std::lock_guard<std::mutex> lock(mu_);
    caption = config_.name + " " + std::string(PlacementName(current_)) + " " +
              std::to_string(static_cast<int>(ms)) + " ms";
  }
  internal::Annotate(&frame, ds, caption);
  std::vector<uint8_t> jpeg;
  cv::imencode(".jpg", frame, jpeg, {cv::IMWRITE_JPEG_QUALITY, 75});
  {
    std::lock_guard<std::mutex> lock(mu_);
    jpeg_.assign(jpeg.begin(), jpeg.end());
    jpeg_seq_++;
    frames_++;
  }
  frame_cv_.notify_all();
}

class PipelinesImpl : public Pipelines {
 public:
  PipelinesImpl(const ServiceConfig& config)
      : edge_(config.edge_workers),
        cloud_(config.cloud.url.empty() ? nullptr
                                        : std::make_unique<internal::CloudClient>(config.cloud)) {}

  ~PipelinesImpl() override { Stop(); }

  void Add(std::unique_ptr<Runner> r) { runners_.push_back(std::move(r)); }
  void StartAll() {
    for (auto& r : runners_) r->Start();
  }
  internal::EdgeExecutor* edge() { return &edge_; }
  internal::CloudClient* cloud() { return cloud_.get(); }

  std::vector<std::string> Names() const override {
    std::vector<std::string> names;
    for (const auto& r : runners_) names.push_back(r->name());
    return names;
  }
  std::optional<std::pair<uint64_t, std::string>> LatestJpeg(
      const std::string& name) const override {
    const Runner* r = Find(name);
    return r == nullptr ? std::nullopt : r->Latest();
  }
  std::optional<std::pair<uint64_t, std::string>> WaitJpeg(
      const std::string& name, uint64_t after, std::chrono::milliseconds timeout) const override {
    const Runner* r = Find(name);
    return r == nullptr ? std::nullopt : r->Wait(after, timeout);
  }
  json Status() const override {
    json arr = json::array();
    for (const auto& r : runners_) arr.push_back(r->Status());
    return {{"pipelines", arr},
            {"edge_queue", edge_.QueueLength()},
            {"edge_estimate_ms", edge_.EstimatedLatencyMs()},
            {"cloud", cloud_ ? cloud_->BreakerState() : "none"}};
  }
  void Stop() override {
    for (auto& r : runners_) r->RequestStop();
    for (auto& r : runners_) r->Join();
  }

 private:
  const Runner* Find(const std::string& name) const {
    for (const auto& r : runners_) {
      if (r->name() == name) return r.get();
    }
    return nullptr;
  }

  internal::EdgeExecutor edge_;
  std::unique_ptr<internal::CloudClient> cloud_;
  std::vector<std::unique_ptr<Runner>> runners_;
};

}  // namespace

Result<std::unique_ptr<Pipelines>> Pipelines::Start(const ServiceConfig& config,
                                                    const std::shared_ptr<DetectorSet>& detectors,
                                                    const std::shared_ptr<Metrics>& metrics,
                                                    const std::shared_ptr<EventLog>& events) {
  auto impl = std::make_unique<PipelinesImpl>(config);
  for (size_t i = 0; i < config.pipelines.size(); ++i) {
    const PipelineConfig& p = config.pipelines[i];
    for (const auto& d : p.detectors) {
      if (!detectors->Has(d)) {
        return Error(ErrorCode::kInvalidArgument, "pipelines[" + std::to_string(i) +
                                                      "].detectors: '" + d +
                                                      "' unknown (products needs a catalog)");
      }
    }
    impl->Add(std::make_unique<Runner>(p, detectors, metrics, events, impl->edge(), impl->cloud()));
  }
  impl->StartAll();
  return std::unique_ptr<Pipelines>(std::move(impl));
}

}  // namespace storevisor::vision
