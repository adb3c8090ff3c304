// Placement across two real instances on loopback: this process is the edge, a spawned
// storevisor-vision is the "cloud". auto moves to the cloud when the edge queue cannot keep
// the latency target, back to the edge when the cloud dies, and to the cloud again when it
// returns; a cloud that answers garbage costs no frame.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <map>
#include <thread>

#include "common/child_process.h"
#include "common/files.h"
#include "vision/pipeline_internal.h"
#include "vision/test_images.h"
#include "vision/test_instances.h"
#include "vision/vision.h"

namespace storevisor::vision {
namespace {

using nlohmann::json;

using testing::Eventually;
using testing::Instance;

Result<Instance> StartCloud(int port) {
  return testing::StartInstance({}, {"--port", std::to_string(port), "--threads", "4"});
}

// Events of a type after a sequence number, optionally with a given reason code.
size_t CountEvents(const EventLog& log, uint64_t after, const std::string& type,
                   const std::string& to = "", const std::string& reason = "") {
  size_t n = 0;
  for (const auto& e : log.Since(after)) {
    if (e.type != type) continue;
    if (!to.empty() && e.detail.value("to", "") != to) continue;
    if (!reason.empty() && e.detail.value("reason", "") != reason) continue;
    n++;
  }
  return n;
}

uint64_t LastSeq(const EventLog& log) {
  auto all = log.Since(0);
  return all.empty() ? 0 : all.back().seq;
}

// What one frame of a stream costs the edge: a pipeline's frame (one square a frame, see
// FaceStream), not a still image's (the whole frame and every tile, 5 passes here).
double SingleFrameMs() {
  auto set = DetectorSet::Create({});
  auto img = ReadImageFile(testdata::kGraceHopper);
  StreamState stream;
  (void)(*set)->Run("faces", *img, &stream);  // a stream's first frame scans every square
  std::vector<double> ms;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    (void)(*set)->Run("faces", *img, &stream);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[2];
}

TEST(OffloadTest, AutoMovesToCloudUnderOverloadBackWhenItFailsAndAgainWhenItReturns) {
  auto cloud = StartCloud(0);
  ASSERT_TRUE(cloud.has_value()) << cloud.error().message();
  const int port = cloud->port;
  // The target: 2.5 frames' worth of edge work. Four streams sharing one edge worker queue
  // up to 4 frames, so the edge cannot keep it and some streams must go to the cloud.
  const double frame_ms = SingleFrameMs();
  json pipelines = json::array();
  for (int i = 0; i < 4; ++i) {
    pipelines.push_back(
        {{"name", "cam" + std::to_string(i)},
         {"source", {{"type", "images"}, {"path", testdata::kGraceHopper}, {"loop", true}}},
         {"fps", 30},
         {"placement", "auto"},
         {"latency_target_ms", 2.5 * frame_ms}});
  }
  auto config = ParseServiceConfig({{"edge_workers", 1},
                                    {"cloud",
                                     {{"url", "http://127.0.0.1:" + std::to_string(port)},
                                      {"timeout_ms", 3000},
                                      {"failures_to_open", 2},
                                      {"open_ms", 500}}},
                                    {"pipelines", pipelines}},
                                   "test");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  auto detectors = DetectorSet::Create({});
  ASSERT_TRUE(detectors.has_value());
  auto metrics = std::make_shared<Metrics>();
  auto events = std::make_shared<EventLog>(100000);
  auto p = Pipelines::Start(*config, std::move(*detectors), metrics, events);
  ASSERT_TRUE(p.has_value()) << p.error().message();

  // 1. Overload: streams move to the cloud, saying why.
  ASSERT_TRUE(Eventually([&] {
    return CountEvents(*events, 0, "placement", "cloud", "edge_over_target") > 0;
  })) << "frame "
      << frame_ms << " ms; " << (*p)->Status().dump();
  EXPECT_NE(metrics->Render().find("placement=\"cloud\""), std::string::npos);
  httplib::Client probe("127.0.0.1", port);
  ASSERT_TRUE(Eventually([&] {
    auto m = probe.Get("/metrics");
    return m &&
           m->body.find("storevisor_vision_frames_total{model=\"faces\"}") != std::string::npos;
  })) << "the cloud instance served no frame";

  // 2. The cloud dies: errors are events, frames go on at the edge, placement falls back.
  const uint64_t before_kill = LastSeq(*events);
  std::vector<uint64_t> frames_at_kill;
  frames_at_kill.reserve(4);
  for (int i = 0; i < 4; ++i)
    frames_at_kill.push_back(metrics->Frames("pipeline", "cam" + std::to_string(i)));
  ASSERT_TRUE(cloud->process.Kill(SIGKILL).has_value());
  (void)cloud->process.Wait(std::chrono::seconds(10));
  EXPECT_TRUE(Eventually([&] { return CountEvents(*events, before_kill, "cloud_error") > 0; }));
  EXPECT_TRUE(Eventually([&] {
    return CountEvents(*events, before_kill, "placement", "edge", "cloud_unavailable") > 0;
  })) << (*p)->Status().dump();
  EXPECT_TRUE(Eventually([&] {
    for (int i = 0; i < 4; ++i) {
      if (metrics->Frames("pipeline", "cam" + std::to_string(i)) < frames_at_kill[i] + 5) {
        return false;
      }
    }
    return true;
  })) << "a stream stopped while the cloud was down";

  // 3. The cloud returns on the same port: after the breaker's open time, back to the cloud.
  const uint64_t before_return = LastSeq(*events);
  auto again = StartCloud(port);
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_TRUE(Eventually([&] {
    return CountEvents(*events, before_return, "placement", "cloud") > 0;
  })) << (*p)->Status().dump();
  (*p)->Stop();
}

// Runs each photo through an edge-placed and a cloud-placed face_attributes pipeline (the
// cloud: a spawned storevisor-vision) and returns the first face each reported, by pipeline
// name ("edge0", "cloud0", ...). Also checks the cloud really ran the attribute model.
std::map<std::string, json> FacesEdgeAndCloud(const std::vector<std::string>& photos,
                                              const std::string& frame_format) {
  std::map<std::string, json> faces;
  auto cloud = StartCloud(0);
  EXPECT_TRUE(cloud.has_value()) << cloud.error().message();
  if (!cloud) return faces;
  json pipelines = json::array();
  for (size_t i = 0; i < photos.size(); ++i) {
    for (const char* where : {"edge", "cloud"}) {
      pipelines.push_back({{"name", std::string(where) + std::to_string(i)},
                           {"source", {{"type", "images"}, {"path", photos[i]}, {"loop", true}}},
                           {"detectors", {"face_attributes"}},
                           {"fps", 2},
                           {"placement", where}});
    }
  }
  auto config = ParseServiceConfig({{"cloud",
                                     {{"url", "http://127.0.0.1:" + std::to_string(cloud->port)},
                                      {"timeout_ms", 5000},
                                      {"frame_format", frame_format}}},
                                    {"pipelines", pipelines}},
                                   "test");
  EXPECT_TRUE(config.has_value()) << config.error().message();
  auto detectors = DetectorSet::Create({});
  EXPECT_TRUE(detectors.has_value()) << detectors.error().message();
  if (!config || !detectors) return faces;
  auto events = std::make_shared<EventLog>();
  auto p = Pipelines::Start(*config, std::move(*detectors), std::make_shared<Metrics>(), events);
  EXPECT_TRUE(p.has_value()) << p.error().message();
  if (!p) return faces;
  const bool all = Eventually([&] {
    for (const auto& e : events->Since(0)) {
      if (e.type == "face_seen" && !e.detail["people"].empty()) {
        faces.try_emplace(e.pipeline, e.detail["people"][0]);
      }
    }
    return faces.size() == 2 * photos.size();
  });
  (*p)->Stop();
  EXPECT_TRUE(all) << "not every pipeline saw its face";
  EXPECT_EQ(CountEvents(*events, 0, "cloud_error"), 0U);
  httplib::Client probe("127.0.0.1", cloud->port);
  auto m = probe.Get("/metrics");
  EXPECT_TRUE(m && m->body.find("storevisor_vision_frames_total{model=\"face_attributes\"}") !=
                       std::string::npos)
      << "the cloud instance did not run face_attributes";
  return faces;
}

double Number(const json& attrs, const std::string& key) {
  return std::stod(attrs.value(key, std::string("nan")));
}

// Every classified face has these; gender and gender_score only when the reading is at least
// 0.55 (docs/vision.md: astronaut.png reads 0.51), and then on both sides alike.
constexpr std::array<const char*, 3> kAttributeKeys = {"emotion", "emotion_score", "age"};

TEST(OffloadTest, FaceAttributesTravelOverKserveExactlyWithLosslessFrames) {
  const std::vector<std::string> photos = {testdata::kGraceHopper,
                                           std::string(testdata::kSkimage) + "astronaut.png",
                                           std::string(testdata::kOpencvData) + "messi5.jpg"};
  auto faces = FacesEdgeAndCloud(photos, "png");
  for (size_t i = 0; i < photos.size(); ++i) {
    const json& edge = faces["edge" + std::to_string(i)];
    const json& remote = faces["cloud" + std::to_string(i)];
    SCOPED_TRACE(photos[i] + ": edge " + edge.dump() + "\ncloud " + remote.dump());
    if (edge.is_null() || remote.is_null()) continue;  // reported above
    for (const char* key : kAttributeKeys) EXPECT_TRUE(edge["attributes"].contains(key)) << key;
    // Same pixels, same models: the same text, to the last digit.
    EXPECT_EQ(edge["attributes"], remote["attributes"]);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_NEAR(edge["box"][k].get<double>(), remote["box"][k].get<double>(), 0.01);
    }
  }
}

TEST(OffloadTest, FaceAttributesSurviveJpegFramesWithinTolerance) {
  // JPEG (quality 85) changes the pixels a little; on faces of ~200 px the attributes hold.
  // (Messi's 32-pixel face is left out: there JPEG flips its weak emotion, sad 0.66 vs angry.)
  const std::vector<std::string> photos = {testdata::kGraceHopper,
                                           std::string(testdata::kSkimage) + "astronaut.png"};
  auto faces = FacesEdgeAndCloud(photos, "jpeg");
  for (size_t i = 0; i < photos.size(); ++i) {
    const json& edge = faces["edge" + std::to_string(i)];
    const json& remote = faces["cloud" + std::to_string(i)];
    SCOPED_TRACE(photos[i] + ": edge " + edge.dump() + "\ncloud " + remote.dump());
    if (edge.is_null() || remote.is_null()) continue;
    const json& a = edge["attributes"];
    const json& b = remote["attributes"];
    for (const char* key : kAttributeKeys) EXPECT_TRUE(a.contains(key) && b.contains(key)) << key;
    EXPECT_EQ(a.value("gender", ""), b.value("gender", ""));
    if (a.contains("gender_score")) {
      EXPECT_NEAR(Number(a, "gender_score"), Number(b, "gender_score"), 0.1);
    }
    EXPECT_NEAR(Number(a, "age"), Number(b, "age"), 3.0);
    EXPECT_EQ(a.value("emotion", ""), b.value("emotion", ""));
    EXPECT_NEAR(Number(a, "emotion_score"), Number(b, "emotion_score"), 0.15);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_NEAR(edge["box"][k].get<double>(), remote["box"][k].get<double>(), 4.0);
    }
  }
}

TEST(OffloadTest, ACloudWithoutAttributeOutputsIsAnErrorNotAFaceWithoutAttributes) {
  // A KServe server whose face_attributes answers with valid boxes/scores/labels only.
  httplib::Server peer;
  peer.Post(R"(/v2/models/.*/infer)", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"model_name":"face_attributes","outputs":[
        {"name":"boxes","datatype":"FP32","shape":[1,4],"data":[1,2,30,30]},
        {"name":"scores","datatype":"FP32","shape":[1],"data":[0.9]},
        {"name":"labels","datatype":"BYTES","shape":[1],"data":["face:face"]}]})",
                    "application/json");
  });
  const int port = peer.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { peer.listen_after_bind(); });
  CloudConfig config;
  config.url = "http://127.0.0.1:" + std::to_string(port);
  internal::CloudClient client(config);
  auto img = ReadImageFile(testdata::kGraceHopper);
  ASSERT_TRUE(img.has_value());
  auto faces = client.Detect("faces", *img);  // plain detections are fine
  ASSERT_TRUE(faces.has_value()) << faces.error().message();
  EXPECT_EQ(faces->size(), 1U);
  auto attrs = client.Detect("face_attributes", *img);
  ASSERT_FALSE(attrs.has_value());
  EXPECT_NE(attrs.error().message().find("returned no face attribute outputs"), std::string::npos)
      << attrs.error().message();
  peer.stop();
  t.join();
}

TEST(OffloadTest, ACloudThatAnswersGarbageCostsNoFrame) {
  // A "KServe server" that answers 200 with nonsense.
  httplib::Server liar;
  liar.Post(R"(/v2/models/.*/infer)", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Inference-Header-Content-Length", "5");
    res.set_content("{\"ou\xff\xfe garbage", "application/octet-stream");
  });
  const int port = liar.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { liar.listen_after_bind(); });
  auto config = ParseServiceConfig(
      {{"cloud",
        {{"url", "http://127.0.0.1:" + std::to_string(port)},
         {"failures_to_open", 1000},
         {"timeout_ms", 2000}}},
       {"pipelines",
        {{{"name", "till"},
          {"source", {{"type", "images"}, {"path", testdata::kGraceHopper}, {"loop", true}}},
          {"fps", 20},
          {"placement", "cloud"}}}}},
      "test");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  auto detectors = DetectorSet::Create({});
  ASSERT_TRUE(detectors.has_value());
  auto metrics = std::make_shared<Metrics>();
  auto events = std::make_shared<EventLog>();
  auto p = Pipelines::Start(*config, std::move(*detectors), metrics, events);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(Eventually([&] { return metrics->Frames("pipeline", "till") >= 5; }));
  bool garbage_reported = false;
  for (const auto& e : events->Since(0)) {
    if (e.type == "cloud_error" &&
        e.detail.value("error", "").find("cloud answer") != std::string::npos) {
      garbage_reported = true;
    }
  }
  EXPECT_TRUE(garbage_reported);
  EXPECT_GT(CountEvents(*events, 0, "face_seen"), 0U);  // the frames were still analysed
  (*p)->Stop();
  liar.stop();
  t.join();
}

}  // namespace
}  // namespace storevisor::vision
