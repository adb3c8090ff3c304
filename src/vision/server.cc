// The HTTP service: KServe v2 (health, metadata, infer with JSON and binary tensors), a plain
// POST /detect for JPEG/PNG bodies, and Prometheus /metrics. Handlers only translate HTTP to
// calls on DetectorSet; every request body goes through the checked parsers in kserve.cc.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <sstream>

#include "vision/vision.h"

namespace storevisor::vision {
namespace {

using nlohmann::json;
constexpr const char* kHeaderLength = "Inference-Header-Content-Length";

void SendError(httplib::Response& res, const Error& e) {
  res.status = HttpStatusFor(e.code());
  res.set_content(json{{"error", e.message()}}.dump(), "application/json");
}

void SendJson(httplib::Response& res, const json& j) {
  res.status = 200;
  res.set_content(j.dump(), "application/json");
}

constexpr const char* kAttributeModel = "face_attributes";

json ModelMetadata(const std::string& name) {
  json outputs = {{{"name", "boxes"}, {"datatype", "FP32"}, {"shape", {-1, 4}}},
                  {{"name", "scores"}, {"datatype", "FP32"}, {"shape", {-1}}},
                  {{"name", "labels"}, {"datatype", "BYTES"}, {"shape", {-1}}}};
  if (name == kAttributeModel) {
    for (const auto& t : kserve::AttributesToTensors({})) {
      outputs.push_back({{"name", t.name},
                         {"datatype", std::string(kserve::DataTypeName(t.datatype))},
                         {"shape", {-1}}});
    }
  }
  return {{"name", name},
          {"versions", {"1"}},
          {"platform", "storevisor-opencv"},
          {"inputs",
           {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {1}}},
            {{"name", "image"}, {"datatype", "UINT8"}, {"shape", {-1, -1, 3}}}}},
          {"outputs", outputs}};
}

class HttpServer : public Server {
 public:
  HttpServer(std::shared_ptr<DetectorSet> detectors, std::shared_ptr<Metrics> metrics,
             std::shared_ptr<Pipelines> pipelines, std::shared_ptr<EventLog> events)
      : detectors_(std::move(detectors)),
        metrics_(std::move(metrics)),
        pipelines_(std::move(pipelines)),
        events_(events ? std::move(events) : std::make_shared<EventLog>()) {}

  Status Bind(const ServerOptions& options) {
    const int threads = std::max(1, options.threads);
    // httplib owns the queue it gets from this factory and deletes it itself.
    svr_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };  // NOLINT
    svr_.set_payload_max_length(limits_.max_body);
    svr_.set_read_timeout(10, 0);
    svr_.set_write_timeout(10, 0);
    Routes();
    port_ = options.port == 0 ? svr_.bind_to_any_port(options.host)
                              : (svr_.bind_to_port(options.host, options.port) ? options.port : -1);
    if (port_ < 0) {
      return Error(ErrorCode::kUnavailable, "cannot listen on " + options.host + ":" +
                                                std::to_string(options.port) +
                                                ": address in use or not local");
    }
    return Ok();
  }

  int port() const override { return port_; }
  Status Run() override {
    if (!svr_.listen_after_bind()) return Error(ErrorCode::kIo, "HTTP server stopped with error");
    return Ok();
  }
  void Stop() override {
    stopping_ = true;  // ends MJPEG streams, which otherwise run until the viewer leaves
    svr_.stop();
  }

 private:
  void Routes() {
    svr_.Get("/v2", [](const httplib::Request&, httplib::Response& res) {
      SendJson(res, {{"name", "storevisor-vision"},
                     {"version", "0.1.0"},
                     {"extensions", {"binary_tensor_data"}}});
    });
    svr_.Get("/v2/health/live",
             [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    svr_.Get("/v2/health/ready", [](const httplib::Request&, httplib::Response& res) {
      res.status = 200;  // detectors are loaded before the port is bound
    });
    const std::string model = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";
    svr_.Get(model, [this](const httplib::Request& req, httplib::Response& res) {
      if (auto e = CheckModel(req); !e) return SendError(res, e.error());
      SendJson(res, ModelMetadata(req.matches[1]));
    });
    svr_.Get(model + "/ready", [this](const httplib::Request& req, httplib::Response& res) {
      if (auto e = CheckModel(req); !e) return SendError(res, e.error());
      res.status = 200;
    });
    svr_.Post(model + "/infer",
              [this](const httplib::Request& req, httplib::Response& res) { Infer(req, res); });
    svr_.Post("/detect",
              [this](const httplib::Request& req, httplib::Response& res) { Detect(req, res); });
    svr_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_->Render(), "text/plain; version=0.0.4");
    });
    svr_.Get("/events", [this](const httplib::Request& req, httplib::Response& res) {
      uint64_t since = 0;
      if (req.has_param("since")) {
        const std::string v = req.get_param_value("since");
        const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), since);
        if (ec != std::errc() || p != v.data() + v.size()) {
          return SendError(
              res, Error(ErrorCode::kInvalidArgument, "since: must be a non-negative integer"));
        }
      }
      SendJson(res, {{"events", events_->ToJson(since)}});
    });
    svr_.Get("/pipelines", [this](const httplib::Request&, httplib::Response& res) {
      SendJson(res, pipelines_ ? pipelines_->Status() : json{{"pipelines", json::array()}});
    });
    svr_.Get(R"(/streams/([^/]+)/frame\.jpg)",
             [this](const httplib::Request& req, httplib::Response& res) { Snapshot(req, res); });
    svr_.Get(R"(/streams/([^/]+)/mjpeg)",
             [this](const httplib::Request& req, httplib::Response& res) { Mjpeg(req, res); });
  }

  Status CheckStream(const std::string& name) const {
    if (pipelines_) {
      for (const auto& n : pipelines_->Names()) {
        if (n == name) return Ok();
      }
    }
    return Error(ErrorCode::kNotFound, "stream '" + name + "' not found (see GET /pipelines)");
  }

  void Snapshot(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    if (auto s = CheckStream(name); !s) return SendError(res, s.error());
    auto frame = pipelines_->WaitJpeg(name, 0, std::chrono::seconds(5));
    if (!frame) {
      return SendError(res,
                       Error(ErrorCode::kUnavailable, "stream '" + name +
                                                          "' has no frame yet (source starting or "
                                                          "failing: see GET /pipelines)"));
    }
    res.set_content(frame->second, "image/jpeg");
  }

  // multipart/x-mixed-replace: each part is the newest annotated frame. ?frames=N ends the
  // stream after N frames (for tests and thumbnails).
  void Mjpeg(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    if (auto s = CheckStream(name); !s) return SendError(res, s.error());
    uint64_t limit = UINT64_MAX;
    if (req.has_param("frames")) {
      const std::string v = req.get_param_value("frames");
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
      if (ec != std::errc() || p != v.data() + v.size() || limit == 0) {
        return SendError(res,
                         Error(ErrorCode::kInvalidArgument, "frames: must be a positive integer"));
      }
    }
    auto state = std::make_shared<std::pair<uint64_t, uint64_t>>(0, 0);  // last seq, sent
    std::shared_ptr<Pipelines> pipelines = pipelines_;
    res.set_chunked_content_provider(
        "multipart/x-mixed-replace; boundary=svframe",
        [this, pipelines, name, limit, state](size_t, httplib::DataSink& sink) {
          while (!stopping_ && state->second < limit) {
            auto frame = pipelines->WaitJpeg(name, state->first, std::chrono::seconds(1));
            if (!frame) continue;
            state->first = frame->first;
            state->second++;
            const std::string head = "--svframe\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                                     std::to_string(frame->second.size()) + "\r\n\r\n";
            if (!sink.write(head.data(), head.size()) ||
                !sink.write(frame->second.data(), frame->second.size()) || !sink.write("\r\n", 2)) {
              return false;  // the viewer left
            }
            return true;
          }
          sink.done();
          return true;
        });
  }

  Status CheckModel(const httplib::Request& req) const {
    const std::string name = req.matches[1];
    if (!detectors_->Has(name)) {
      std::string known;
      for (const auto& n : detectors_->Names()) known += (known.empty() ? "" : ", ") + n;
      return Error(ErrorCode::kNotFound, "model '" + name + "' not found (models: " + known + ")");
    }
    const std::string version = req.matches.size() > 2 ? std::string(req.matches[2]) : "";
    if (!version.empty() && version != "1") {
      return Error(ErrorCode::kNotFound,
                   "model '" + name + "' has no version '" + version + "' (versions: 1)");
    }
    return Ok();
  }

  Result<std::vector<Detection>> Timed(const std::string& subject, const std::string& name,
                                       const cv::Mat& img) {
    const auto start = std::chrono::steady_clock::now();
    auto ds = detectors_->Run(name, img);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    metrics_->Observe(subject, name, took.count(), ds.has_value());
    return ds;
  }

  static Result<const kserve::Tensor*> ImageInput(const kserve::InferRequest& r) {
    for (const auto& t : r.inputs) {
      if (t.name == "image" || t.name == "image_rgb") return &t;
    }
    if (r.inputs.size() == 1) return &r.inputs.front();
    return Error(ErrorCode::kInvalidArgument,
                 "inputs: no tensor named 'image' (BYTES [1] JPEG/PNG or UINT8 [H,W,3] BGR) or "
                 "'image_rgb'");
  }

  static Status CheckOutputs(const kserve::InferRequest& r, const std::string& model) {
    const bool attributes = model == kAttributeModel;
    for (const auto& o : r.outputs) {
      const bool attribute =
          std::find(kserve::kAttributeOutputs.begin(), kserve::kAttributeOutputs.end(), o.name) !=
          kserve::kAttributeOutputs.end();
      if (o.name != "boxes" && o.name != "scores" && o.name != "labels" &&
          !(attributes && attribute)) {
        return Error(ErrorCode::kInvalidArgument,
                     "outputs: unknown output '" + o.name + "' (outputs: boxes, scores, labels" +
                         (attributes ? ", gender, gender_score, emotion, emotion_score, age" : "") +
                         ")");
      }
    }
    return Ok();
  }

  Status InferInto(const httplib::Request& req, httplib::Response& res) {
    SV_TRY(CheckModel(req));
    std::optional<size_t> header_length;
    if (req.has_header(kHeaderLength)) {
      SV_ASSIGN_OR_RETURN(header_length,
                          kserve::ParseHeaderLength(req.get_header_value(kHeaderLength)));
    }
    SV_ASSIGN_OR_RETURN(kserve::InferRequest r,
                        kserve::ParseInferRequest(req.body, header_length, limits_));
    const std::string name = req.matches[1];
    SV_TRY(CheckOutputs(r, name));
    SV_ASSIGN_OR_RETURN(const kserve::Tensor* input, ImageInput(r));
    SV_ASSIGN_OR_RETURN(cv::Mat img, kserve::ImageFromTensor(*input));
    SV_ASSIGN_OR_RETURN(auto ds, Timed("model", name, img));
    std::vector<kserve::Tensor> tensors = kserve::DetectionsToTensors(ds);
    if (name == kAttributeModel) {
      for (auto& t : kserve::AttributesToTensors(ds)) tensors.push_back(std::move(t));
    }
    kserve::EncodedResponse out =
        kserve::EncodeInferResponse(name, r.id, tensors, r.outputs, r.all_binary);
    if (out.header_length) res.set_header(kHeaderLength, std::to_string(*out.header_length));
    res.status = 200;
    res.set_content(out.body, out.content_type);
    return Ok();
  }

  void Infer(const httplib::Request& req, httplib::Response& res) {
    if (auto s = InferInto(req, res); !s) SendError(res, s.error());
  }

  void Detect(const httplib::Request& req, httplib::Response& res) {
    std::vector<std::string> names = {"faces", "barcodes"};
    if (req.has_param("detectors")) {
      names.clear();
      std::stringstream ss(req.get_param_value("detectors"));
      for (std::string n; std::getline(ss, n, ',');) {
        if (!detectors_->Has(n)) {
          return SendError(res,
                           Error(ErrorCode::kInvalidArgument, "detectors: unknown '" + n + "'"));
        }
        names.push_back(n);
      }
    }
    auto img = DecodeImage({reinterpret_cast<const uint8_t*>(req.body.data()), req.body.size()});
    if (!img) return SendError(res, img.error());
    json out = {{"width", img->cols}, {"height", img->rows}, {"detections", json::array()}};
    for (const auto& n : names) {
      auto ds = Timed("model", n, *img);
      if (!ds) return SendError(res, ds.error());
      for (const auto& d : *ds) out["detections"].push_back(DetectionToJson(d));
    }
    SendJson(res, out);
  }

  std::shared_ptr<DetectorSet> detectors_;
  std::shared_ptr<Metrics> metrics_;
  std::shared_ptr<Pipelines> pipelines_;
  std::shared_ptr<EventLog> events_;
  std::atomic<bool> stopping_{false};
  kserve::Limits limits_;
  httplib::Server svr_;
  int port_ = -1;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Create(std::shared_ptr<DetectorSet> detectors,
                                               std::shared_ptr<Metrics> metrics,
                                               const ServerOptions& options,
                                               std::shared_ptr<Pipelines> pipelines,
                                               std::shared_ptr<EventLog> events) {
  auto s = std::make_unique<HttpServer>(std::move(detectors), std::move(metrics),
                                        std::move(pipelines), std::move(events));
  SV_TRY(s->Bind(options));
  return std::unique_ptr<Server>(std::move(s));
}

}  // namespace storevisor::vision
