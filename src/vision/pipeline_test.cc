// Pipelines without a network: config parsing, the placement policy, metrics and events,
// and real streams from packaged files, including a corrupt image and a missing camera.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <set>
#include <thread>

#include "common/files.h"
#include "vision/pipeline_internal.h"
#include "vision/test_images.h"

namespace storevisor::vision {
namespace {

using internal::DecidePlacement;
using internal::PlacementInput;
using internal::PlacementReason;
using nlohmann::json;

std::string TempDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/vision-" + name + "-" + std::to_string(::getpid());
  EXPECT_TRUE(MakeDirs(dir).has_value());
  return dir;
}

TEST(ConfigTest, YamlConfigParses) {
  const std::string dir = TempDir("cfg");
  ASSERT_TRUE(WriteFileAtomic(dir + "/s.yaml", R"(listen: {host: 127.0.0.1, port: 0}
cloud: {url: "http://127.0.0.1:9", timeout_ms: 200, failures_to_open: 2, open_ms: 100}
edge_workers: 2
pipelines:
  - name: till-1
    source: {type: images, path: /tmp, loop: true}
    detectors: [faces, barcodes]
    fps: 12.5
    roi: [10, 20, 300, 200]
    placement: auto
    latency_target_ms: 80
)")
                  .has_value());
  auto c = LoadServiceConfig(dir + "/s.yaml");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->server.port, 0);
  EXPECT_EQ(c->edge_workers, 2);
  EXPECT_EQ(c->cloud.failures_to_open, 2);
  ASSERT_EQ(c->pipelines.size(), 1U);
  const auto& p = c->pipelines[0];
  EXPECT_EQ(p.name, "till-1");
  EXPECT_DOUBLE_EQ(p.fps, 12.5);
  EXPECT_EQ(p.placement, Placement::kAuto);
  EXPECT_EQ(*p.roi, cv::Rect(10, 20, 300, 200));
  EXPECT_EQ(p.detectors, (std::vector<std::string>{"faces", "barcodes"}));
}

TEST(ConfigTest, ErrorsNameFileLineAndField) {
  const std::string dir = TempDir("cfgerr");
  ASSERT_TRUE(WriteFileAtomic(dir + "/bad.yaml",
                              "pipelines:\n  - name: a\n    source: {type: "
                              "images, path: /x}\n    fps: -3\n")
                  .has_value());
  auto c = LoadServiceConfig(dir + "/bad.yaml");
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message().find("bad.yaml:4: .pipelines[0].fps"), std::string::npos)
      << c.error().message();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"pipelines":[{"name":"a","source":{"type":"fax","path":"x"}}]})", "fax"},
      {R"({"pipelines":[{"name":"a","source":{"type":"images","path":"x"},"roi":[1,2,3]}]})",
       "roi"},
      {R"({"pipelines":[{"name":"a","source":{"type":"images","path":"x"},"placement":"auto"}]})",
       "needs cloud.url"},
      {R"({"pipelines":[{"name":"a/b","source":{"type":"images","path":"x"}}]})", "name"},
      {R"({"pipelines":[{"name":"a","source":{"type":"images","path":"x"}},
                        {"name":"a","source":{"type":"images","path":"x"}}]})",
       "two pipelines"},
      {R"({"cloud":{"url":"ftp://x"}})", "http://"},
      {R"({"listen":{"port":70000}})", "port"},
      {R"({"edge_workers":"many"})", "integer"},
  };
  for (const auto& [text, want] : cases) {
    auto r = ParseServiceConfig(json::parse(text), "cfg");
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_NE(r.error().message().find(want), std::string::npos) << r.error().message();
  }
  ASSERT_TRUE(WriteFileAtomic(dir + "/broken.yaml", "pipelines: [\n").has_value());
  auto broken = LoadServiceConfig(dir + "/broken.yaml");
  ASSERT_FALSE(broken.has_value());
  EXPECT_NE(broken.error().message().find("not valid YAML"), std::string::npos);
}

// Config files come from outside: hostile ones get an error naming the file, never a crash,
// a hang, a wrapped number or a config the service would misuse. (The same seeds feed
// vision_config_fuzz.)
TEST(ConfigTest, NastyConfigsAreRefusedWithAnError) {
  struct Case {
    std::string text;
    bool yaml;
    std::string want;  // in the error message
  };
  std::string deep_yaml(5000, '[');
  deep_yaml += std::string(5000, ']');
  std::string deep_json =
      "{\"pipelines\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  std::string many = "{\"pipelines\":[";
  for (size_t i = 0; i <= kMaxPipelines; ++i) {
    many += (i == 0 ? "" : ",") + std::string(R"({"name":"p)") + std::to_string(i) +
            R"(","source":{"type":"images","path":"x"}})";
  }
  many += "]}";
  const std::vector<Case> cases = {
      // A billion laughs: 10^6 nodes from six lines of anchors and aliases.
      {"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, "
       "*c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, "
       "*e, *e]\n",
       true, "values (aliases expanded)"},
      {deep_yaml, true, "nasty.yaml"},
      {deep_json, false, "pipelines"},
      // Integers that a plain get<int>() would wrap to 80 and 1.
      {R"({"listen":{"port":4294967376}})", false, ".listen.port: out of range"},
      {R"({"edge_workers":4294967297})", false, ".edge_workers: out of range"},
      {R"({"cloud":{"url":"http://x:1","failures_to_open":-4294967295}})", false, "out of range"},
      // Numbers that overflow when turned into microseconds, or are not finite.
      {R"({"cloud":{"url":"http://x:1","timeout_ms":1e300}})", false, "timeout_ms in (0"},
      {R"({"cloud":{"url":"http://x:1","open_ms":1e300}})", false, "open_ms in [0"},
      {"cloud: {url: 'http://x:1', timeout_ms: 1e999}\n", true, "timeout_ms"},
      {R"({"pipelines":[{"name":"a","source":{"type":"images","path":"x"},
           "latency_target_ms":1e308}]})",
       false, "latency_target_ms: must be in (0, 3600000]"},
      {"pipelines:\n  - {name: a, source: {type: images, path: x}, fps: .nan}\n", true,
       "nasty.yaml:2: .pipelines[0].fps: must be a number"},
      {R"({"pipelines":[{"name":"a","source":{"type":"images","path":"/x\u0000y"}}]})", false,
       "NUL"},
      {"? [1, 2]\n: 3\n", true, "nasty.yaml"},  // a key that is not a string
      {many, false, "more than 256 pipelines"},
      {R"({"pipelines":[{"name":"a","source":{"type":"images","path":"x"},
           "detectors":["faces","faces","faces","faces","faces","faces","faces","faces","faces",
           "faces","faces","faces","faces","faces","faces","faces","faces"]}]})",
       false, "at most 16 detectors"},
      {std::string(1 << 20, ' ') + "{}", false, "larger than 1 MiB"},
      {"\xff\xfe\x00\x01", true, "nasty.yaml"},
      {"\xff\xfe\x00\x01", false, "not valid JSON"},
  };
  for (const auto& c : cases) {
    auto r = ParseServiceConfigText(c.text, c.yaml, "nasty.yaml");
    ASSERT_FALSE(r.has_value()) << c.text.substr(0, 200);
    EXPECT_EQ(r.error().message().rfind("nasty.yaml", 0), 0U)
        << r.error().message() << " for " << c.text.substr(0, 100);
    EXPECT_NE(r.error().message().find(c.want), std::string::npos)
        << "want '" << c.want << "' in: " << r.error().message();
  }
  // What still parses: the limits are not off by one.
  auto ok = ParseServiceConfigText(
      R"({"listen":{"port":65535},"edge_workers":64,"cloud":{"url":"http://x:1",
          "timeout_ms":3600000,"open_ms":0},"pipelines":[{"name":"a","source":{"type":"images",
          "path":"x"},"latency_target_ms":3600000,"fps":240}]})",
      false, "ok.json");
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->server.port, 65535);
}

// The product catalog is a file from outside too.
TEST(CatalogTest, NastyCatalogsAreRefusedWithAnError) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"items":[{"name":"a","image":"x.png"},{"name":"a","image":"y.png"}]})",
       "items[1]: a second item named 'a'"},
      {R"({"items":[{"name":"","image":"x.png"}]})", "items[0]: name and image must be non-empty"},
      {R"({"items":[{"name":"a","image":""}]})", "items[0]: name and image must be non-empty"},
      {R"({"items":[{"name":"\u0007bell","image":"x.png"}]})", "without control characters"},
      {R"({"items":[{"name":"a","image":"x\u0000.png"}]})", "without control characters"},
      {R"({"items":[{"name":"a","image":"x\n.png"}]})", "without control characters"},
      {R"({"items":[{"name":1,"image":[]}]})", "needs string fields name and image"},
      {R"({"items":[null]})", "needs string fields"},
      {R"({"items":{"name":"x"}})", "expected a JSON object"},
      {R"([])", "expected a JSON object"},
      {"\xff\xfe", "expected a JSON object"},
      {"", "expected a JSON object"},
  };
  for (const auto& [text, want] : cases) {
    auto r = ParseCatalog(text, "/srv/catalog/catalog.json");
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_NE(r.error().message().find("/srv/catalog/catalog.json: "), std::string::npos);
    EXPECT_NE(r.error().message().find(want), std::string::npos)
        << "want '" << want << "' in: " << r.error().message();
  }
  std::string many = R"({"items":[)";
  for (int i = 0; i <= 10000; ++i) {
    many += (i == 0 ? "" : ",") + std::string(R"({"name":"n)") + std::to_string(i) +
            R"(","image":"i.png"})";
  }
  many += "]}";
  auto r = ParseCatalog(many, "c.json");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("more than 10000 items"), std::string::npos);
  // Relative images start at the catalog's directory; absolute ones stay.
  auto ok = ParseCatalog(R"({"items":[{"name":"box","image":"img/box.png"},
                                      {"name":"tea","image":"/data/tea.jpg"}]})",
                         "/srv/catalog/catalog.json");
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  ASSERT_EQ(ok->size(), 2U);
  EXPECT_EQ((*ok)[0].image_path, "/srv/catalog/img/box.png");
  EXPECT_EQ((*ok)[1].image_path, "/data/tea.jpg");
}

TEST(PlacementTest, AutoOffloadsWithHysteresisAndFallsBack) {
  PlacementInput in{Placement::kAuto, Placement::kEdge, 50, 100, true, "closed"};
  EXPECT_EQ(DecidePlacement(in).where, Placement::kEdge);
  in.edge_estimate_ms = 150;
  auto d = DecidePlacement(in);
  EXPECT_EQ(d.where, Placement::kCloud);
  EXPECT_EQ(d.reason, PlacementReason::kEdgeOverTarget);
  EXPECT_EQ(d.detail, "edge estimate 150ms over target 100ms");
  in.current = Placement::kCloud;
  in.edge_estimate_ms = 90;  // under the target but not under 70%: stay (hysteresis)
  EXPECT_EQ(DecidePlacement(in).where, Placement::kCloud);
  EXPECT_EQ(DecidePlacement(in).reason, PlacementReason::kEdgeStillBusy);
  in.edge_estimate_ms = 60;
  EXPECT_EQ(DecidePlacement(in).where, Placement::kEdge);
  EXPECT_EQ(DecidePlacement(in).reason, PlacementReason::kEdgeRecovered);
  in.edge_estimate_ms = 500;
  in.cloud_available = false;
  in.cloud_state = "open after 3 failures";
  d = DecidePlacement(in);
  EXPECT_EQ(d.where, Placement::kEdge);
  EXPECT_EQ(d.reason, PlacementReason::kCloudUnavailable);
  EXPECT_NE(d.detail.find("open after 3 failures"), std::string::npos) << d.detail;
  EXPECT_EQ(DecidePlacement({Placement::kCloud, Placement::kCloud, 0, 1, false, "open"}).where,
            Placement::kEdge);
  EXPECT_EQ(DecidePlacement({Placement::kEdge, Placement::kEdge, 1e9, 1, true, "closed"}).where,
            Placement::kEdge);
}

// A cloud that answers, but slower than the target: auto leaves it when the edge promises
// better, and comes back only when the cloud is clearly better or its latency is unknown.
TEST(PlacementTest, AutoLeavesASlowCloudWithHysteresis) {
  PlacementInput in{Placement::kAuto, Placement::kCloud, 60, 100, true, "closed", 150};
  auto d = DecidePlacement(in);
  EXPECT_EQ(d.where, Placement::kEdge);  // cloud 150 > target 100, edge 60 better
  EXPECT_EQ(d.reason, PlacementReason::kCloudSlow);
  EXPECT_EQ(d.detail, "cloud latency 150ms over target 100ms, edge estimate 60ms");
  in.edge_estimate_ms = 200;  // the edge would be worse still: stay
  EXPECT_EQ(DecidePlacement(in).where, Placement::kCloud);
  in.edge_estimate_ms = 80;  // over 70% of the target, cloud 95 within it: stay
  in.cloud_latency_ms = 95;
  EXPECT_EQ(DecidePlacement(in).where, Placement::kCloud);
  in.cloud_latency_ms = 101;  // just over: the edge's 80 is better
  EXPECT_EQ(DecidePlacement(in).where, Placement::kEdge);

  // On the edge, over target: offload only to a cloud that is clearly better or not known.
  in.current = Placement::kEdge;
  in.edge_estimate_ms = 150;
  in.cloud_latency_ms = 120;  // measured recently, not better than the edge: stay
  d = DecidePlacement(in);
  EXPECT_EQ(d.where, Placement::kEdge);
  EXPECT_EQ(d.reason, PlacementReason::kCloudNoBetter);
  EXPECT_NE(d.detail.find("cloud latency 120ms is no better"), std::string::npos) << d.detail;
  in.cloud_latency_ms = 106;  // inside the band (>= 70% of the target and of the edge): stay
  EXPECT_EQ(DecidePlacement(in).where, Placement::kEdge);
  in.cloud_latency_ms = 104;  // under 70% of the edge's 150
  EXPECT_EQ(DecidePlacement(in).where, Placement::kCloud);
  in.edge_estimate_ms = 101;
  in.cloud_latency_ms = 69;  // under 70% of the target
  EXPECT_EQ(DecidePlacement(in).where, Placement::kCloud);
  in.cloud_latency_ms = 71;
  EXPECT_EQ(DecidePlacement(in).where, Placement::kEdge);
  in.edge_estimate_ms = 500;
  in.cloud_latency_ms = 300;  // over the target, but well under the edge (60%)
  EXPECT_EQ(DecidePlacement(in).where, Placement::kCloud);
  in.edge_estimate_ms = 150;
  in.cloud_latency_ms = 0;  // not known (none recent): probe it
  EXPECT_EQ(DecidePlacement(in).where, Placement::kCloud);
  // The cloud's latency never beats "unavailable" or a configured placement.
  in.cloud_latency_ms = 10;
  in.cloud_available = false;
  EXPECT_EQ(DecidePlacement(in).where, Placement::kEdge);
  EXPECT_EQ(
      DecidePlacement({Placement::kCloud, Placement::kCloud, 1, 100, true, "closed", 900}).where,
      Placement::kCloud);
}

// The metrics label values: a fixed small set of codes, distinct, without numbers, whatever
// the measured values are.
TEST(PlacementTest, ReasonsAreAFixedSetOfCodesWithTheNumbersInTheDetail) {
  std::set<std::string> codes;
  for (auto r : internal::kPlacementReasons) {
    const std::string code(internal::PlacementReasonCode(r));
    EXPECT_TRUE(std::all_of(code.begin(), code.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || c == '_';
    })) << code;
    codes.insert(code);
  }
  EXPECT_EQ(codes.size(), internal::kPlacementReasons.size());
  std::set<std::string> seen;
  for (Placement configured : {Placement::kEdge, Placement::kCloud, Placement::kAuto}) {
    for (Placement current : {Placement::kEdge, Placement::kCloud}) {
      for (double edge : {0.0, 1.0, 47.3, 69.0, 99.0, 101.0, 150.0, 1e6}) {
        for (double cloud : {0.0, 10.0, 69.0, 120.0, 1e6}) {
          for (bool available : {true, false}) {
            const auto d = DecidePlacement(
                {configured, current, edge, 100, available, "open after 3 failures", cloud});
            const std::string code(internal::PlacementReasonCode(d.reason));
            EXPECT_EQ(codes.count(code), 1U) << code;
            seen.insert(code);
            EXPECT_FALSE(d.detail.empty());
          }
        }
      }
    }
  }
  EXPECT_EQ(seen, codes);  // every code is reachable
}

TEST(MetricsTest, QuantilesAndExposition) {
  Metrics m;
  for (int i = 1; i <= 100; ++i) m.Observe("pipeline", "p\"1", i / 1000.0, i != 50);
  m.Drop("p\"1", 3);
  m.SetPlacement("p\"1", "cloud", "edge_over_target");
  EXPECT_NEAR(m.Quantile("pipeline", "p\"1", 0.5), 0.051, 0.0015);
  EXPECT_NEAR(m.Quantile("pipeline", "p\"1", 0.99), 0.100, 0.0015);
  EXPECT_EQ(m.Frames("pipeline", "p\"1"), 100U);
  const std::string text = m.Render();
  EXPECT_NE(text.find("storevisor_vision_frames_total{pipeline=\"p\\\"1\"} 100"), std::string::npos)
      << text;
  EXPECT_NE(text.find("storevisor_vision_errors_total{pipeline=\"p\\\"1\"} 1"), std::string::npos);
  EXPECT_NE(text.find("storevisor_vision_dropped_frames_total{pipeline=\"p\\\"1\"} 3"),
            std::string::npos);
  EXPECT_NE(text.find("storevisor_vision_placement{pipeline=\"p\\\"1\",placement=\"cloud\","
                      "reason=\"edge_over_target\"} 1"),
            std::string::npos)
      << text;
}

TEST(EventLogTest, BoundedAndOrdered) {
  EventLog log(3);
  for (int i = 0; i < 5; ++i) log.Add("p", "t" + std::to_string(i), json::object());
  auto all = log.Since(0);
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all.front().type, "t2");
  EXPECT_EQ(log.Since(4).size(), 1U);
}

// Polls until pred holds or 20 s pass.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 200; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// The value of the exposition line that starts with `series` (name and labels); -1 when
// there is no such line.
double MetricValue(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + 1 + series.size() + 1));
}

std::vector<StreamEvent> EventsOf(const EventLog& log, const std::string& pipeline,
                                  const std::string& type) {
  std::vector<StreamEvent> out;
  for (const auto& e : log.Since(0)) {
    if (e.pipeline == pipeline && e.type == type) out.push_back(e);
  }
  return out;
}

bool HasEvent(const EventLog& log, const std::string& pipeline, const std::string& type) {
  for (const auto& e : log.Since(0)) {
    if (e.pipeline == pipeline && e.type == type) return true;
  }
  return false;
}

TEST(PipelinesTest, StreamsRunAndBadSourcesDoNotStopTheOthers) {
  const std::string dir = TempDir("streams");
  auto jpeg = ReadFile(testdata::kGraceHopper);
  ASSERT_TRUE(jpeg.has_value());
  ASSERT_TRUE(WriteFileAtomic(dir + "/1.jpg", *jpeg).has_value());
  ASSERT_TRUE(WriteFileAtomic(dir + "/2-corrupt.jpg", jpeg->substr(0, 700)).has_value());
  ASSERT_TRUE(WriteFileAtomic(dir + "/3.png", "PNG? no").has_value());
  auto config = ParseServiceConfig(
      json{{"pipelines",
            {{{"name", "till"},
              {"source", {{"type", "images"}, {"path", dir}, {"loop", true}}},
              {"detectors", {"faces"}},
              {"fps", 20}},
             {{"name", "door"},
              {"source",
               {{"type", "video"},
                {"path", std::string(testdata::kOpencvData) + "Megamind.avi"},
                {"loop", true}}},
              {"detectors", {"faces"}},
              {"roi", {0, 0, 360, 280}},
              {"fps", 20}},
             {{"name", "gone"}, {"source", {{"type", "v4l2"}, {"path", "/dev/video97"}}}},
             {{"name", "deleted"},
              {"source", {{"type", "images"}, {"path", dir + "/nothing-here"}}}}}}},
      "test");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  auto detectors = DetectorSet::Create({});
  ASSERT_TRUE(detectors.has_value());
  auto metrics = std::make_shared<Metrics>();
  auto events = std::make_shared<EventLog>();
  auto p = Pipelines::Start(*config, std::move(*detectors), metrics, events);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_TRUE(Eventually([&] {
    return metrics->Frames("pipeline", "till") >= 6 && metrics->Frames("pipeline", "door") >= 6;
  }));
  EXPECT_TRUE(HasEvent(*events, "till", "face_seen"));
  EXPECT_TRUE(HasEvent(*events, "till", "frame_error"));   // the corrupt JPEG and the non-PNG
  EXPECT_TRUE(HasEvent(*events, "gone", "source_error"));  // no such camera
  EXPECT_TRUE(HasEvent(*events, "deleted", "source_error"));
  auto frame = (*p)->WaitJpeg("door", 0, std::chrono::seconds(10));
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->second.substr(0, 2), "\xFF\xD8");  // a JPEG
  // The published frame is the whole video frame, not the ROI the detectors saw.
  cv::VideoCapture video(std::string(testdata::kOpencvData) + "Megamind.avi");
  ASSERT_TRUE(video.isOpened());
  const cv::Size video_size(static_cast<int>(video.get(cv::CAP_PROP_FRAME_WIDTH)),
                            static_cast<int>(video.get(cv::CAP_PROP_FRAME_HEIGHT)));
  ASSERT_GT(video_size.width, 360);
  const cv::Mat door = cv::imdecode(
      std::vector<uint8_t>(frame->second.begin(), frame->second.end()), cv::IMREAD_COLOR);
  EXPECT_EQ(door.size(), video_size);
  const json status = (*p)->Status();
  for (const auto& s : status["pipelines"]) {
    if (s["name"] == "gone") {
      EXPECT_EQ(s["state"], "reconnecting");
      EXPECT_NE(s["last_error"].get<std::string>().find("/dev/video97"), std::string::npos);
    }
    if (s["name"] == "till") {
      EXPECT_EQ(s["state"], "running");
    }
  }
  (*p)->Stop();
  // Frames of the corrupt files count as errors (two a pass over the directory), good ones
  // as frames: the exposition's numbers, not just its lines.
  const std::string m = metrics->Render();
  const double errors = MetricValue(m, "storevisor_vision_errors_total{pipeline=\"till\"}");
  const double frames = MetricValue(m, "storevisor_vision_frames_total{pipeline=\"till\"}");
  EXPECT_GE(errors, 2) << m;
  EXPECT_GT(frames, errors) << m;
  // Each pass reads one good photo and two bad files: about twice as many errors as good.
  EXPECT_NEAR(errors / frames, 2.0 / 3.0, 0.2) << m;
  EXPECT_EQ(MetricValue(m, "storevisor_vision_errors_total{pipeline=\"door\"}"), 0) << m;
}

// The ROI: detectors see only the crop, results come back in frame coordinates. The ROI does
// not start at the origin, so a missing shift would put the face ~120 px off.
TEST(PipelinesTest, RoiCropsTheDetectorsViewAndResultsAreInFrameCoordinates) {
  auto set = DetectorSet::Create({});
  ASSERT_TRUE(set.has_value());
  std::shared_ptr<DetectorSet> detectors = std::move(*set);
  auto whole = detectors->Run("faces", *ReadImageFile(testdata::kGraceHopper));
  ASSERT_TRUE(whole.has_value() && whole->size() == 1U);
  const cv::Rect2f face = whole->front().box;  // about [166, 126, 204, 204]
  const cv::Rect roi(120, 90, 300, 300);       // holds the face
  ASSERT_EQ((cv::Rect(face) & roi), cv::Rect(face));
  auto config = ParseServiceConfig(
      json{{"pipelines",
            {{{"name", "inside"},
              {"source", {{"type", "images"}, {"path", testdata::kGraceHopper}, {"loop", true}}},
              {"detectors", {"faces"}},
              {"roi", {roi.x, roi.y, roi.width, roi.height}},
              {"fps", 10}},
             {{"name", "outside"},  // the bottom strip, below the face
              {"source", {{"type", "images"}, {"path", testdata::kGraceHopper}, {"loop", true}}},
              {"detectors", {"faces"}},
              {"roi", {0, 380, 512, 132}},
              {"fps", 10}}}}},
      "test");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  auto metrics = std::make_shared<Metrics>();
  auto events = std::make_shared<EventLog>();
  auto p = Pipelines::Start(*config, detectors, metrics, events);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  ASSERT_TRUE(Eventually([&] {
    return HasEvent(*events, "inside", "face_seen") && metrics->Frames("pipeline", "outside") >= 5;
  }));
  auto frame = (*p)->WaitJpeg("inside", 0, std::chrono::seconds(10));
  (*p)->Stop();
  const auto seen = EventsOf(*events, "inside", "face_seen");
  ASSERT_EQ(seen.size(), 1U) << events->ToJson(0).dump();
  const json box = seen[0].detail["people"][0]["box"];
  ASSERT_EQ(box.size(), 4U);
  // BlazeFace sees a different letterbox of the crop, so allow a few pixels.
  EXPECT_NEAR(box[0].get<double>(), face.x, 12) << box;
  EXPECT_NEAR(box[1].get<double>(), face.y, 12) << box;
  EXPECT_NEAR(box[2].get<double>(), face.width, 16) << box;
  EXPECT_NEAR(box[3].get<double>(), face.height, 16) << box;
  // No face below it: the detectors saw only the strip.
  EXPECT_TRUE(EventsOf(*events, "outside", "face_seen").empty()) << events->ToJson(0).dump();
  // The annotated frame is the whole frame.
  ASSERT_TRUE(frame.has_value());
  const cv::Mat img =
      cv::imdecode(std::vector<uint8_t>(frame->second.begin(), frame->second.end()), 1);
  EXPECT_EQ(img.size(), cv::Size(512, 512));
}

// The frame-rate cap: a stream that keeps up runs at its fps, not faster; one that cannot
// keep up counts the frames it skips as drops.
TEST(PipelinesTest, FpsCapIsHeldAndFallingBehindCountsDrops) {
  auto config = ParseServiceConfig(
      json{{"edge_workers", 2},
           {"pipelines",
            {{{"name", "capped"},
              {"source", {{"type", "images"}, {"path", testdata::kFourBarcodes}, {"loop", true}}},
              {"detectors", {"barcodes"}},
              {"fps", 2}},
             {{"name", "behind"},  // 200 fps of Grace Hopper's face (tens of ms a frame)
              {"source", {{"type", "images"}, {"path", testdata::kGraceHopper}, {"loop", true}}},
              {"detectors", {"faces"}},
              {"fps", 200}}}}},
      "test");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  auto detectors = DetectorSet::Create({});
  ASSERT_TRUE(detectors.has_value());
  auto metrics = std::make_shared<Metrics>();
  auto p = Pipelines::Start(*config, std::move(*detectors), metrics, std::make_shared<EventLog>());
  ASSERT_TRUE(p.has_value()) << p.error().message();
  ASSERT_TRUE(Eventually([&] { return metrics->Frames("pipeline", "capped") >= 1; }));
  const auto start = std::chrono::steady_clock::now();
  const uint64_t first = metrics->Frames("pipeline", "capped");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const uint64_t frames = metrics->Frames("pipeline", "capped") - first;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const json status = (*p)->Status();
  const std::string m = metrics->Render();
  (*p)->Stop();
  // 2 fps over ~3 s: 6 frames, one more at most for the window's edges; never a burst.
  EXPECT_LE(static_cast<double>(frames), 2 * secs + 1) << frames << " frames in " << secs << " s";
  EXPECT_GE(frames, 4U) << "a 2 fps stream of a light detector ran at " << frames / secs;
  for (const auto& s : status["pipelines"]) {
    if (s["name"] == "capped") {
      EXPECT_EQ(s["dropped"], 0) << s;
    } else {
      EXPECT_GT(s["dropped"].get<uint64_t>(), 0U) << s;
    }
  }
  EXPECT_GT(MetricValue(m, "storevisor_vision_dropped_frames_total{pipeline=\"behind\"}"), 0) << m;
}

// item_scanned from a real photo of barcodes (opencv-doc's 4_barcodes.jpg): each of the four
// EAN-13 codes once, not once per frame it stays in view.
TEST(PipelinesTest, BarcodesInARealFrameAreEachScannedOnce) {
  auto config = ParseServiceConfig(
      json{{"pipelines",
            {{{"name", "till"},
              {"source", {{"type", "images"}, {"path", testdata::kFourBarcodes}, {"loop", true}}},
              {"detectors", {"barcodes"}},
              {"fps", 10}}}}},
      "test");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  auto detectors = DetectorSet::Create({});
  ASSERT_TRUE(detectors.has_value());
  auto metrics = std::make_shared<Metrics>();
  auto events = std::make_shared<EventLog>();
  auto p = Pipelines::Start(*config, std::move(*detectors), metrics, events);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  ASSERT_TRUE(Eventually([&] { return metrics->Frames("pipeline", "till") >= 5; }));
  (*p)->Stop();
  std::multiset<std::string> codes;
  for (const auto& e : EventsOf(*events, "till", "item_scanned")) {
    EXPECT_EQ(e.detail.value("kind", ""), "barcode") << e.detail;
    EXPECT_EQ(e.detail.value("format", ""), "EAN_13") << e.detail;
    codes.insert(e.detail.value("label", ""));
  }
  EXPECT_EQ(codes, (std::multiset<std::string>{"9787564350840", "9783319200064", "9787118081473",
                                               "9787122276124"}))
      << events->ToJson(0).dump();
}

// Faces on streams: each pipeline scans the whole frame and one tile per frame and carries
// what its tiles found. Messi's 32-pixel face (only tiles find it) is reported on every frame
// of his stream (one face_seen, never faces_gone), and the other stream, with the same frame
// size on the same DetectorSet, never sees a face.
TEST(PipelinesTest, EachFaceStreamCarriesItsOwnTiles) {
  const std::string dir = TempDir("facestreams");
  const std::string messi = std::string(testdata::kOpencvData) + "messi5.jpg";
  const cv::Mat photo = *ReadImageFile(messi);
  cv::Mat empty;
  cv::resize(*ReadImageFile(std::string(testdata::kOpencvData) + "box.png"), empty, photo.size());
  ASSERT_TRUE(cv::imwrite(dir + "/empty.png", empty));
  auto stream = [](const std::string& name, const std::string& path) {
    return json{{"name", name},
                {"source", {{"type", "images"}, {"path", path}, {"loop", true}}},
                {"detectors", {"faces"}},
                {"fps", 50}};
  };
  auto config = ParseServiceConfig(
      json{{"pipelines", {stream("door", messi), stream("shelf", dir + "/empty.png")}}}, "test");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  auto detectors = DetectorSet::Create({});
  ASSERT_TRUE(detectors.has_value());
  auto metrics = std::make_shared<Metrics>();
  auto events = std::make_shared<EventLog>();
  auto p = Pipelines::Start(*config, std::move(*detectors), metrics, events);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  // 26 frames each: the first (every square) and two cycles of 12 (6 tiles, the whole frame
  // between them).
  ASSERT_TRUE(Eventually([&] {
    return metrics->Frames("pipeline", "door") >= 26 && metrics->Frames("pipeline", "shelf") >= 26;
  }));
  (*p)->Stop();
  const auto seen = EventsOf(*events, "door", "face_seen");
  ASSERT_EQ(seen.size(), 1U) << events->ToJson(0).dump();
  EXPECT_TRUE(EventsOf(*events, "door", "faces_gone").empty()) << events->ToJson(0).dump();
  const json box = seen[0].detail["people"][0]["box"];
  const cv::Point2f centre(box[0].get<float>() + box[2].get<float>() / 2,
                           box[1].get<float>() + box[3].get<float>() / 2);
  EXPECT_LT(cv::norm(centre - cv::Point2f(240, 116)), 20) << box;
  EXPECT_TRUE(EventsOf(*events, "shelf", "face_seen").empty()) << events->ToJson(0).dump();
}

TEST(PipelinesTest, ASourceThatDisappearsIsReportedAndTheStreamRecovers) {
  const std::string dir = TempDir("vanish");
  const std::string spool = dir + "/spool";
  auto jpeg = ReadFile(testdata::kGraceHopper);
  ASSERT_TRUE(jpeg.has_value());
  ASSERT_TRUE(MakeDirs(spool).has_value());
  ASSERT_TRUE(WriteFileAtomic(spool + "/1.jpg", *jpeg).has_value());
  auto config =
      ParseServiceConfig(json{{"pipelines",
                               {{{"name", "cam"},
                                 {"source", {{"type", "images"}, {"path", spool}, {"loop", true}}},
                                 {"fps", 20}}}}},
                         "test");
  ASSERT_TRUE(config.has_value());
  auto detectors = DetectorSet::Create({});
  ASSERT_TRUE(detectors.has_value());
  auto events = std::make_shared<EventLog>();
  auto p = Pipelines::Start(*config, std::move(*detectors), std::make_shared<Metrics>(), events);
  ASSERT_TRUE(p.has_value());
  ASSERT_TRUE(Eventually([&] { return HasEvent(*events, "cam", "face_seen"); }));
  ASSERT_TRUE(RemoveAll(spool).has_value());
  EXPECT_TRUE(Eventually([&] { return HasEvent(*events, "cam", "source_lost"); }));
  EXPECT_TRUE(Eventually([&] { return HasEvent(*events, "cam", "source_error"); }));
  EXPECT_EQ((*p)->Status()["pipelines"][0]["state"], "reconnecting");
  // It comes back: the stream resumes by itself.
  ASSERT_TRUE(MakeDirs(spool).has_value());
  ASSERT_TRUE(WriteFileAtomic(spool + "/2.jpg", *jpeg).has_value());
  EXPECT_TRUE(Eventually([&] { return (*p)->Status()["pipelines"][0]["state"] == "running"; }));
  size_t opens = 0;
  for (const auto& e : events->Since(0)) opens += e.type == "source_open" ? 1 : 0;
  EXPECT_EQ(opens, 2U);
  (*p)->Stop();
}

}  // namespace
}  // namespace storevisor::vision

namespace storevisor::vision {
namespace {

// Camera frames -> palm detector -> landmarks -> gesture rules -> hysteresis -> one event.
TEST(PipelinesTest, AHandOnCameraBecomesOneGestureEvent) {
  auto config = ParseServiceConfig(
      json{{"pipelines",
            {{{"name", "kiosk"},
              {"source", {{"type", "images"}, {"path", testdata::kHand}, {"loop", true}}},
              {"detectors", {"hands", "text"}},  // the item pipeline's label reader alongside
              {"fps", 10}}}}},
      "test");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  auto detectors = DetectorSet::Create({});
  ASSERT_TRUE(detectors.has_value());
  ASSERT_TRUE((*detectors)->Has("hands")) << "converted hand models missing: run setup";
  auto events = std::make_shared<EventLog>();
  auto metrics = std::make_shared<Metrics>();
  auto p = Pipelines::Start(*config, std::move(*detectors), metrics, events);
  ASSERT_TRUE(p.has_value());
  ASSERT_TRUE(Eventually([&] { return metrics->Frames("pipeline", "kiosk") >= 8; }));
  (*p)->Stop();
  int gestures = 0;
  for (const auto& e : events->Since(0)) {
    if (e.type != "gesture") continue;
    gestures++;
    EXPECT_EQ(e.detail.value("gesture", ""), "open_palm");
  }
  EXPECT_EQ(gestures, 1) << events->ToJson(0).dump();  // held, not repeated every frame
}

}  // namespace
}  // namespace storevisor::vision

namespace storevisor::vision {
namespace {

// A KServe v2 "cloud" on loopback that answers every infer correctly (no detections) but
// only after `delay`: slow, yet well inside the client's timeout.
class SlowCloud {
 public:
  explicit SlowCloud(std::chrono::milliseconds delay) {
    svr_.Post(R"(/v2/models/([^/]+)/infer)",
              [delay, this](const httplib::Request& req, httplib::Response& res) {
                calls_++;
                std::this_thread::sleep_for(delay);
                const auto out = kserve::EncodeInferResponse(
                    req.matches[1], "", kserve::DetectionsToTensors({}), {}, false);
                res.set_content(out.body, out.content_type);
              });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
  }
  ~SlowCloud() {
    svr_.stop();
    thread_.join();
  }
  SlowCloud(const SlowCloud&) = delete;
  SlowCloud& operator=(const SlowCloud&) = delete;
  int port() const { return port_; }
  int calls() const { return calls_; }

 private:
  httplib::Server svr_;
  int port_ = -1;
  std::atomic<int> calls_{0};
  std::thread thread_;
};

TEST(CloudClientTest, RecentLatencyIsThatOfAnswersAndExpires) {
  SlowCloud cloud(std::chrono::milliseconds(150));
  CloudConfig config;
  config.url = "http://127.0.0.1:" + std::to_string(cloud.port());
  config.timeout_ms = 3000;
  internal::CloudClient client(config);
  EXPECT_EQ(client.RecentLatencyMs(std::chrono::hours(1)), 0);  // nothing measured yet
  auto img = ReadImageFile(testdata::kGraceHopper);
  ASSERT_TRUE(img.has_value());
  auto ds = client.Detect("faces", *img);
  ASSERT_TRUE(ds.has_value()) << ds.error().message();
  EXPECT_TRUE(ds->empty());
  EXPECT_GE(client.RecentLatencyMs(std::chrono::hours(1)), 150);
  EXPECT_LT(client.RecentLatencyMs(std::chrono::hours(1)), 3000);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(client.RecentLatencyMs(std::chrono::milliseconds(10)), 0);  // too old to count
  // A failure is not a latency: the breaker counts it, the mean keeps the answers' figure.
  CloudConfig dead = config;
  dead.url = "http://127.0.0.1:1";
  internal::CloudClient refused(dead);
  EXPECT_FALSE(refused.Detect("faces", *img).has_value());
  EXPECT_EQ(refused.RecentLatencyMs(std::chrono::hours(1)), 0);
}

// End to end: an auto pipeline whose edge is over its target offloads; the cloud answers
// every frame but far over the target, so the pipeline comes back to the edge, says why in
// an event and in /metrics, and (hysteresis) does not bounce back while that is recent.
TEST(PipelinesTest, AutoComesBackFromACloudThatAnswersSlowly) {
  SlowCloud cloud(std::chrono::milliseconds(400));
  auto config = ParseServiceConfig(
      json{{"edge_workers", 1},
           {"cloud",
            {{"url", "http://127.0.0.1:" + std::to_string(cloud.port())},
             {"timeout_ms", 3000},
             {"failures_to_open", 2},
             {"open_ms", 1000}}},
           {"pipelines",
            {{{"name", "cam"},
              {"source", {{"type", "images"}, {"path", testdata::kGraceHopper}, {"loop", true}}},
              {"detectors", {"faces"}},
              {"fps", 10},
              {"placement", "auto"},
              // No local run keeps 1 ms (so it offloads), and 400 ms is far over it.
              {"latency_target_ms", 1}}}}},
      "test");
  ASSERT_TRUE(config.has_value()) << config.error().message();
  auto detectors = DetectorSet::Create({});
  ASSERT_TRUE(detectors.has_value());
  auto metrics = std::make_shared<Metrics>();
  auto events = std::make_shared<EventLog>();
  auto p = Pipelines::Start(*config, std::move(*detectors), metrics, events);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  auto placements = [&](const std::string& to, const std::string& reason) {
    size_t n = 0;
    for (const auto& e : events->Since(0)) {
      if (e.type == "placement" && e.detail.value("to", "") == to &&
          (reason.empty() || e.detail.value("reason", "") == reason)) {
        n++;
      }
    }
    return n;
  };
  ASSERT_TRUE(Eventually([&] { return placements("cloud", "edge_over_target") > 0; }))
      << events->ToJson(0).dump();
  ASSERT_TRUE(Eventually([&] { return placements("edge", "cloud_slow") > 0; }))
      << events->ToJson(0).dump();
  EXPECT_GT(cloud.calls(), 0);
  for (const auto& e : EventsOf(*events, "cam", "placement")) {
    if (e.detail.value("reason", "") != "cloud_slow") continue;
    // The numbers are in the event's detail, not in the reason code.
    EXPECT_NE(e.detail.value("detail", "").find("cloud latency"), std::string::npos) << e.detail;
    EXPECT_NE(e.detail.value("detail", "").find("over target 1ms"), std::string::npos) << e.detail;
  }
  const std::string m = metrics->Render();
  EXPECT_NE(
      m.find("storevisor_vision_placement{pipeline=\"cam\",placement=\"edge\",reason=\"cloud_"),
      std::string::npos)
      << m;  // cloud_slow, or cloud_no_better once it has settled at the edge
  // Hysteresis: while the slow latency is recent (kCloudLatencyFresh), it stays at the edge
  // although the edge is over its target too; frames go on.
  const uint64_t frames = metrics->Frames("pipeline", "cam");
  const size_t to_cloud = placements("cloud", "");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(placements("cloud", ""), to_cloud) << events->ToJson(0).dump();
  EXPECT_GE(metrics->Frames("pipeline", "cam"), frames + 5);
  EXPECT_EQ((*p)->Status()["pipelines"][0]["placement"], "edge");
  // Nothing failed: a slow answer is not a cloud error.
  for (const auto& e : events->Since(0)) EXPECT_NE(e.type, "cloud_error") << e.detail.dump();
  (*p)->Stop();
}

}  // namespace
}  // namespace storevisor::vision
