// The real HTTP service on loopback: KServe v2 endpoints as the spec describes them, /detect,
// /metrics, and hostile requests that must get a 4xx with {"error": ...} and leave it serving.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <thread>

#include "common/child_process.h"
#include "common/files.h"
#include "vision/test_images.h"
#include "vision/vision.h"

namespace storevisor::vision {
namespace {

using nlohmann::json;

std::string Le32(uint32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto set = DetectorSet::Create({});
    ASSERT_TRUE(set.has_value()) << set.error().message();
    metrics_ = std::make_shared<Metrics>();
    ServerOptions options;
    options.port = 0;
    options.threads = 2;
    auto server = Server::Create(std::move(*set), metrics_, options);
    ASSERT_TRUE(server.has_value()) << server.error().message();
    server_ = std::move(*server);
    thread_ = std::make_unique<std::thread>([] { (void)server_->Run(); });
  }
  static void TearDownTestSuite() {
    server_->Stop();
    thread_->join();
    thread_.reset();
    server_.reset();
  }

  httplib::Client Client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(30, 0);
    return c;
  }

  static std::string FileBytes(const std::string& path) {
    auto b = ReadFile(path);
    EXPECT_TRUE(b.has_value());
    return b ? *b : "";
  }

  static json ErrorJson(const httplib::Result& r, int status) {
    EXPECT_TRUE(r) << "no response";
    if (!r) return {};
    EXPECT_EQ(r->status, status) << r->body;
    json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << r->body;
    return j;
  }

  // One server for the suite (gtest's static hooks), released in TearDownTestSuite.
  static inline std::unique_ptr<Server> server_;       // NOLINT
  static inline std::unique_ptr<std::thread> thread_;  // NOLINT
  static inline std::shared_ptr<Metrics> metrics_;     // NOLINT
};

TEST_F(ServerTest, ServerMetadataAndHealth) {
  auto c = Client();
  auto meta = c.Get("/v2");
  ASSERT_TRUE(meta);
  EXPECT_EQ(meta->status, 200);
  json j = json::parse(meta->body);
  EXPECT_EQ(j["name"], "storevisor-vision");
  EXPECT_TRUE(j["version"].is_string());
  EXPECT_EQ(j["extensions"], json({"binary_tensor_data"}));
  EXPECT_EQ(c.Get("/v2/health/live")->status, 200);
  EXPECT_EQ(c.Get("/v2/health/ready")->status, 200);
}

TEST_F(ServerTest, ModelMetadataReadyAndUnknownModels) {
  auto c = Client();
  for (const char* name : {"faces", "barcodes"}) {
    auto r = c.Get(std::string("/v2/models/") + name);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    json j = json::parse(r->body);
    EXPECT_EQ(j["name"], name);
    EXPECT_TRUE(j["versions"].is_array());
    EXPECT_TRUE(j["platform"].is_string());
    EXPECT_TRUE(j["inputs"].is_array());
    EXPECT_EQ(j["outputs"].size(), 3U);
    EXPECT_EQ(c.Get(std::string("/v2/models/") + name + "/ready")->status, 200);
    EXPECT_EQ(c.Get(std::string("/v2/models/") + name + "/versions/1")->status, 200);
  }
  ErrorJson(c.Get("/v2/models/nope"), 404);
  ErrorJson(c.Get("/v2/models/nope/ready"), 404);
  ErrorJson(c.Get("/v2/models/faces/versions/7"), 404);
  ErrorJson(c.Post("/v2/models/nope/infer", "{}", "application/json"), 404);
}

TEST_F(ServerTest, InferJsonUint8Tensor) {
  cv::Mat img = cv::imread(testdata::kGraceHopper);
  cv::resize(img, img, {128, 128});
  json data = json::array();
  for (int i = 0; i < static_cast<int>(img.total() * 3); ++i) data.push_back(img.data[i]);
  json req = {
      {"id", "r1"},
      {"inputs",
       {{{"name", "image"}, {"datatype", "UINT8"}, {"shape", {128, 128, 3}}, {"data", data}}}}};
  auto c = Client();
  auto r = c.Post("/v2/models/faces/infer", req.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["model_name"], "faces");
  EXPECT_EQ(j["id"], "r1");
  auto tensors = kserve::ParseInferResponse(r->body, std::nullopt);
  ASSERT_TRUE(tensors.has_value()) << tensors.error().message();
  auto ds = kserve::DetectionsFromTensors(*tensors);
  ASSERT_TRUE(ds.has_value());
  ASSERT_EQ(ds->size(), 1U);
  EXPECT_EQ(ds->front().kind, "face");
}

TEST_F(ServerTest, InferBinaryJpegGivesTheFourCodes) {
  const std::string jpeg = FileBytes(testdata::kFourBarcodes);
  const std::string header = json{
      {"inputs",
       {{{"name", "image"},
         {"datatype", "BYTES"},
         {"shape", {1}},
         {"parameters", {{"binary_data_size", jpeg.size() + 4}}}}}},
      {"outputs",
       {{{"name", "labels"}, {"parameters", {{"binary_data", true}}}},
        {{"name", "boxes"}, {"parameters", {{"binary_data", true}}}},
        {{"name", "scores"}}}}}.dump();
  httplib::Headers h = {{"Inference-Header-Content-Length", std::to_string(header.size())}};
  auto c = Client();
  auto r = c.Post("/v2/models/barcodes/infer", h, header + Le32(jpeg.size()) + jpeg,
                  "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body.substr(0, 300);
  ASSERT_TRUE(r->has_header("Inference-Header-Content-Length"));
  auto hl = kserve::ParseHeaderLength(r->get_header_value("Inference-Header-Content-Length"));
  ASSERT_TRUE(hl.has_value());
  json head = json::parse(r->body.substr(0, *hl));
  EXPECT_TRUE(head["outputs"][0]["parameters"].contains("binary_data_size"));
  auto tensors = kserve::ParseInferResponse(r->body, *hl);
  ASSERT_TRUE(tensors.has_value()) << tensors.error().message();
  auto ds = kserve::DetectionsFromTensors(*tensors);
  ASSERT_TRUE(ds.has_value());
  std::multiset<std::string> got;
  for (const auto& d : *ds) got.insert(d.label);
  EXPECT_EQ(got, (std::multiset<std::string>{"9787564350840", "9783319200064", "9787118081473",
                                             "9787122276124"}));
}

TEST_F(ServerTest, FaceAttributesModelHasAttributeOutputs) {
  auto c = Client();
  auto meta = c.Get("/v2/models/face_attributes");
  ASSERT_TRUE(meta);
  ASSERT_EQ(meta->status, 200) << meta->body;
  std::set<std::string> names;
  const json meta_json = json::parse(meta->body);  // the loop must not outlive it
  for (const auto& o : meta_json["outputs"]) names.insert(o["name"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"boxes", "scores", "labels", "gender", "gender_score",
                                          "emotion", "emotion_score", "age"}));
  const std::string jpeg = FileBytes(testdata::kGraceHopper);
  auto request = [&](const std::string& model, const json& outputs) {
    const std::string header = json{
        {"inputs",
         {{{"name", "image"},
           {"datatype", "BYTES"},
           {"shape", {1}},
           {"parameters", {{"binary_data_size", jpeg.size() + 4}}}}}},
        {"outputs", outputs}}.dump();
    return c.Post("/v2/models/" + model + "/infer",
                  {{"Inference-Header-Content-Length", std::to_string(header.size())}},
                  header + Le32(jpeg.size()) + jpeg, "application/octet-stream");
  };
  const json wanted = {{{"name", "labels"}},        {{"name", "boxes"}},
                       {{"name", "scores"}},        {{"name", "gender"}},
                       {{"name", "age"}},           {{"name", "emotion"}},
                       {{"name", "emotion_score"}}, {{"name", "gender_score"}}};
  auto r = request("face_attributes", wanted);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body.substr(0, 300);
  auto tensors = kserve::ParseInferResponse(r->body, std::nullopt);
  ASSERT_TRUE(tensors.has_value()) << tensors.error().message();
  EXPECT_EQ(tensors->size(), 8U);
  auto ds = kserve::DetectionsFromTensors(*tensors);
  ASSERT_TRUE(ds.has_value()) << ds.error().message();
  ASSERT_EQ(ds->size(), 1U);
  // What the edge computes for the same pixels (the JPEG decoded the same way).
  auto set = DetectorSet::Create({});
  ASSERT_TRUE(set.has_value());
  auto local = (*set)->Run("face_attributes", *ReadImageFile(testdata::kGraceHopper));
  ASSERT_TRUE(local.has_value() && local->size() == 1U);
  EXPECT_EQ((*ds)[0].attributes, (*local)[0].attributes);
  EXPECT_EQ((*ds)[0].attributes.count("age"), 1U);
  // Other models have no attribute outputs, and say which they have.
  auto bad = request("faces", wanted);
  const json err = ErrorJson(bad, 400);
  EXPECT_NE(err.value("error", "").find("unknown output 'gender'"), std::string::npos) << err;
}

TEST_F(ServerTest, BadRequestsGet400WithAnErrorAndTheServerKeepsServing) {
  auto c = Client();
  const std::string infer = "/v2/models/faces/infer";
  EXPECT_NE(ErrorJson(c.Post(infer, "{\"inputs\": [", "application/json"), 400)["error"]
                .get<std::string>()
                .find("JSON"),
            std::string::npos);
  ErrorJson(c.Post(infer, R"({"inputs":[{"name":"image","datatype":"UINT8","shape":[2,2,3],
                              "data":[1,2,3]}]})",
                   "application/json"),
            400);
  ErrorJson(c.Post(infer, R"({"inputs":[{"name":"image","datatype":"UINT8",
                              "shape":[4294967296,4294967296,3],"data":[1]}]})",
                   "application/json"),
            400);
  const std::string h = R"({"inputs":[{"name":"image","datatype":"BYTES","shape":[1],
                           "parameters":{"binary_data_size":5000}}]})";
  ErrorJson(c.Post(infer, {{"Inference-Header-Content-Length", std::to_string(h.size())}},
                   h + Le32(4996) + "truncated", "application/octet-stream"),
            400);
  ErrorJson(c.Post(infer, {{"Inference-Header-Content-Length", "lots"}}, h, "application/json"),
            400);
  ErrorJson(c.Post(infer, {{"Inference-Header-Content-Length", "999999"}}, h, "application/json"),
            400);
  // A corrupt JPEG: the first 300 bytes of a real one.
  const std::string cut = FileBytes(testdata::kGraceHopper).substr(0, 300);
  const std::string h2 = json{{"inputs",
                               {{{"name", "image"},
                                 {"datatype", "BYTES"},
                                 {"shape", {1}},
                                 {"data", {"not a picture"}}}}}}
                             .dump();
  EXPECT_NE(ErrorJson(c.Post(infer, h2, "application/json"), 400)["error"].get<std::string>().find(
                "cannot be decoded"),
            std::string::npos);
  ErrorJson(c.Post(infer, R"({"inputs":[{"name":"image","datatype":"BYTES","shape":[1],
                              "data":["x"]}],"outputs":[{"name":"nope"}]})",
                   "application/json"),
            400);
  ErrorJson(c.Post("/detect", cut, "image/jpeg"), 400);
  ErrorJson(c.Post("/detect", "", "image/png"), 400);
  ErrorJson(c.Post("/detect?detectors=teleport", FileBytes(testdata::kGraceHopper), "image/jpeg"),
            400);
  EXPECT_EQ(c.Get("/v2/health/ready")->status, 200);
}

TEST_F(ServerTest, DetectEndpointAndMetrics) {
  auto c = Client();
  auto r = c.Post("/detect?detectors=faces",
                  FileBytes(std::string(testdata::kSkimage) + "astronaut.png"), "image/png");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["width"], 512);
  ASSERT_EQ(j["detections"].size(), 1U);
  EXPECT_EQ(j["detections"][0]["kind"], "face");
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_NE(m->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  EXPECT_NE(m->body.find("storevisor_vision_frames_total{model=\"faces\"}"), std::string::npos);
  EXPECT_NE(m->body.find("storevisor_vision_latency_seconds{model=\"faces\",quantile=\"0.99\"}"),
            std::string::npos);
  EXPECT_GE(metrics_->Frames("model", "faces"), 1U);
  EXPECT_GT(metrics_->Quantile("model", "faces", 0.5), 0.0);
}

// One multipart/x-mixed-replace part: "--svframe", its headers, a blank line, Content-Length
// bytes of JPEG, CRLF. Returns the JPEG bytes of each complete part in `body`; fails the test
// on anything malformed.
std::vector<std::string> MjpegParts(const std::string& body) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < body.size()) {
    const std::string boundary = "--svframe\r\n";
    EXPECT_EQ(body.compare(pos, boundary.size(), boundary), 0)
        << "part " << parts.size() << " does not start with the boundary";
    if (body.compare(pos, boundary.size(), boundary) != 0) break;
    const size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) break;  // an incomplete part at the end of what was read
    const std::string head = body.substr(pos + boundary.size(), head_end - pos - boundary.size());
    EXPECT_NE(head.find("Content-Type: image/jpeg"), std::string::npos) << head;
    const std::string key = "Content-Length: ";
    const size_t k = head.find(key);
    EXPECT_NE(k, std::string::npos) << head;
    if (k == std::string::npos) break;
    const size_t length = std::stoul(head.substr(k + key.size()));
    const size_t data = head_end + 4;
    if (data + length + 2 > body.size()) break;  // incomplete
    parts.push_back(body.substr(data, length));
    EXPECT_EQ(body.compare(data + length, 2, "\r\n"), 0) << "part " << parts.size();
    pos = data + length + 2;
  }
  return parts;
}

// Each stream's annotated frames: the MJPEG parts and frame.jpg are JPEGs of that stream's
// frame size (two streams of different sizes, so one cannot pass for the other).
class StreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto config = ParseServiceConfig(
        json{{"pipelines",
              {{{"name", "hopper"},
                {"source", {{"type", "images"}, {"path", testdata::kGraceHopper}, {"loop", true}}},
                {"detectors", {"faces"}},
                {"fps", 10}},
               {{"name", "messi"},
                {"source",
                 {{"type", "images"},
                  {"path", std::string(testdata::kOpencvData) + "messi5.jpg"},
                  {"loop", true}}},
                {"detectors", {"faces"}},
                {"fps", 10}}}}},
        "test");
    ASSERT_TRUE(config.has_value()) << config.error().message();
    auto set = DetectorSet::Create({});
    ASSERT_TRUE(set.has_value()) << set.error().message();
    std::shared_ptr<DetectorSet> detectors = std::move(*set);
    auto metrics = std::make_shared<Metrics>();
    auto p = Pipelines::Start(*config, detectors, metrics, std::make_shared<EventLog>());
    ASSERT_TRUE(p.has_value()) << p.error().message();
    pipelines_ = std::move(*p);
    ServerOptions options;
    options.port = 0;
    options.threads = 4;
    auto server = Server::Create(detectors, metrics, options, pipelines_);
    ASSERT_TRUE(server.has_value()) << server.error().message();
    server_ = std::move(*server);
    thread_ = std::make_unique<std::thread>([] { (void)server_->Run(); });
  }
  static void TearDownTestSuite() {
    if (server_) server_->Stop();
    if (thread_) thread_->join();
    if (pipelines_) pipelines_->Stop();
    thread_.reset();
    server_.reset();
    pipelines_.reset();
  }
  static httplib::Client Client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(30, 0);
    return c;
  }
  static void ExpectJpegOfSize(const std::string& bytes, cv::Size size, const std::string& what) {
    ASSERT_GE(bytes.size(), 2U) << what;
    EXPECT_EQ(bytes.substr(0, 2), "\xFF\xD8") << what << ": no JPEG SOI marker";
    const std::vector<uint8_t> buf(bytes.begin(), bytes.end());
    const cv::Mat img = cv::imdecode(buf, cv::IMREAD_COLOR);
    ASSERT_FALSE(img.empty()) << what << ": does not decode as an image";
    EXPECT_EQ(img.size(), size) << what;
  }

  static inline std::shared_ptr<Pipelines> pipelines_;  // NOLINT
  static inline std::unique_ptr<Server> server_;        // NOLINT
  static inline std::unique_ptr<std::thread> thread_;   // NOLINT
};

const cv::Size kHopperSize(512, 512);
const cv::Size kMessiSize(548, 342);

TEST_F(StreamTest, MjpegPartsAreJpegsOfTheStreamsSize) {
  auto c = Client();
  for (const auto& [name, size] : {std::pair{"hopper", kHopperSize}, {"messi", kMessiSize}}) {
    auto r = c.Get(std::string("/streams/") + name + "/mjpeg?frames=4");
    ASSERT_TRUE(r) << name;
    ASSERT_EQ(r->status, 200) << r->body.substr(0, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "multipart/x-mixed-replace; boundary=svframe");
    const auto parts = MjpegParts(r->body);
    ASSERT_EQ(parts.size(), 4U) << name;
    for (size_t i = 0; i < parts.size(); ++i) {
      ExpectJpegOfSize(parts[i], size, std::string(name) + " part " + std::to_string(i));
    }
  }
}

TEST_F(StreamTest, AnOpenEndedStreamKeepsSendingFramesUntilTheViewerLeaves) {
  auto c = Client();
  std::string body;
  size_t parts = 0;
  auto r = c.Get("/streams/messi/mjpeg", [&](const char* data, size_t n) {
    body.append(data, n);
    parts = MjpegParts(body).size();
    return parts < 3;  // leave after three whole frames
  });
  EXPECT_FALSE(r);  // we cancelled it: the server did not end the stream by itself
  const auto got = MjpegParts(body);
  ASSERT_GE(got.size(), 3U);
  for (const auto& part : got) ExpectJpegOfSize(part, kMessiSize, "messi open-ended part");
  // The server is still serving (the stream's writer noticed the viewer leaving).
  auto again = c.Get("/streams/hopper/frame.jpg");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST_F(StreamTest, FrameJpgIsTheStreamsNewestFrame) {
  auto c = Client();
  for (const auto& [name, size] : {std::pair{"hopper", kHopperSize}, {"messi", kMessiSize}}) {
    auto r = c.Get(std::string("/streams/") + name + "/frame.jpg");
    ASSERT_TRUE(r) << name;
    ASSERT_EQ(r->status, 200) << r->body.substr(0, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "image/jpeg");
    ExpectJpegOfSize(r->body, size, std::string(name) + "/frame.jpg");
  }
}

TEST_F(StreamTest, UnknownStreamsAndBadFrameCountsAreRefused) {
  auto c = Client();
  for (const char* path : {"/streams/nope/mjpeg", "/streams/nope/frame.jpg",
                           "/streams/nope/mjpeg?frames=2", "/streams/hopperx/frame.jpg"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << path << ": " << r->body;
    EXPECT_NE(j["error"].get<std::string>().find("not found"), std::string::npos) << r->body;
  }
  for (const char* path : {"/streams/hopper/mjpeg?frames=0", "/streams/hopper/mjpeg?frames=x",
                           "/streams/hopper/mjpeg?frames=-1"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path;
  }
}

TEST(ServeBinaryTest, StandaloneBinaryServesAndStopsOnSigterm) {
  const std::string bin = std::string(SV_BINARY_DIR) + "/bin/storevisor-vision";
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  SpawnOptions opts;
  opts.argv = {bin, "serve", "--port", "0"};
  opts.stdout_fd = write_end.get();
  opts.die_with_parent = true;
  auto child = ChildProcess::Spawn(opts);
  ASSERT_TRUE(child.has_value()) << child.error().message();
  write_end = UniqueFd();
  std::string line;
  char ch = 0;
  while (read(read_end.get(), &ch, 1) == 1 && ch != '\n') line += ch;
  ASSERT_FALSE(line.empty()) << "the server printed no port";
  httplib::Client c("127.0.0.1", std::stoi(line));
  auto r = c.Get("/v2/health/live");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // It re-executed itself (same pid) with OpenMP limited to one thread (Tesseract's loops).
  auto environ = ReadFile("/proc/" + std::to_string(child->pid()) + "/environ");
  ASSERT_TRUE(environ.has_value());
  EXPECT_NE(environ->find(std::string("OMP_THREAD_LIMIT=1\0", 19)), std::string::npos);
  ASSERT_TRUE(child->Kill(SIGTERM).has_value());
  auto st = child->Wait(std::chrono::seconds(10));
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->success()) << st->ToString();
}

}  // namespace
}  // namespace storevisor::vision
