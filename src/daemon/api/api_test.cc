#include "daemon/api/api.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace storevisor::daemon {
namespace {

Result<ApiCommand> Parse(const std::string& raw) {
  auto req = ParseHttpRequest(raw);
  if (!req) return std::move(req).error();
  if (!req->has_value()) return Error(ErrorCode::kInternal, "incomplete");
  return ParseApiRequest(**req);
}

std::string Post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

TEST(ApiHttpTest, ParsesARequestWithBodyAndQuery) {
  auto req = ParseHttpRequest(
      "POST /v1/work%6Coads?a=1&b=x+y HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}");
  ASSERT_TRUE(req.has_value() && req->has_value());
  EXPECT_EQ((*req)->path, "/v1/workloads");
  EXPECT_EQ((*req)->Query("b"), "x y");
  EXPECT_EQ((*req)->Header("host"), "h");
  EXPECT_EQ((*req)->body, "{}");
}

TEST(ApiHttpTest, WaitsForTheWholeBody) {
  auto req = ParseHttpRequest("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab");
  ASSERT_TRUE(req.has_value());
  EXPECT_FALSE(req->has_value());
}

TEST(ApiHttpTest, NastyRequestsAreRefused) {
  for (const char* raw : {
           "GET  / HTTP/1.1\r\n\r\n",
           "GET / HTTP/2\r\n\r\n",
           "GET nope HTTP/1.1\r\n\r\n",
           "GET /%zz HTTP/1.1\r\n\r\n",
           "GET /%00 HTTP/1.1\r\n\r\n",
           "GET /% HTTP/1.1\r\n\r\n",
           "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
           "POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
           "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
           "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
           "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n",
           "G\xff / HTTP/1.1\r\n\r\n",
       }) {
    auto req = ParseHttpRequest(raw);
    EXPECT_FALSE(req.has_value()) << raw;
  }
  std::string huge = "GET / HTTP/1.1\r\nX: " + std::string(20000, 'a');
  EXPECT_EQ(ParseHttpRequest(huge).error().code(), ErrorCode::kResourceExhausted);
  std::string big_body = "POST / HTTP/1.1\r\nContent-Length: 3000000\r\n\r\n";
  EXPECT_EQ(ParseHttpRequest(big_body).error().code(), ErrorCode::kResourceExhausted);
}

TEST(ApiTest, RoutesBecomeTypedCommands) {
  auto apply = Parse(Post("/v1/diff", "{\"profile\":\"x\",\"file\":\"/p.yaml\"}"));
  ASSERT_TRUE(apply.has_value()) << apply.error().message();
  EXPECT_EQ(apply->op, ApiOp::kApply);
  EXPECT_TRUE(apply->dry_run);
  EXPECT_EQ(apply->profile_file, "/p.yaml");
  auto logs = Parse("GET /v1/workloads/kv/logs?follow=1&tail=5 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(logs.has_value());
  EXPECT_EQ(logs->op, ApiOp::kLogs);
  EXPECT_TRUE(logs->follow);
  EXPECT_EQ(logs->tail, 5);
  auto exec =
      Parse(Post("/v1/workloads/kv/exec", "{\"cmd\":[\"redis-cli\",\"ping\"],\"timeoutMs\":9}"));
  ASSERT_TRUE(exec.has_value()) << exec.error().message();
  EXPECT_EQ(exec->argv, (std::vector<std::string>{"redis-cli", "ping"}));
  EXPECT_EQ(exec->timeout_ms, 9);
  auto console = Parse(Post("/v1/workloads/pos/console", ""));
  ASSERT_TRUE(console.has_value()) << console.error().message();
  EXPECT_EQ(console->op, ApiOp::kConsole);
  EXPECT_EQ(console->name, "pos");
  EXPECT_EQ(Parse("GET /v1/workloads/pos/console HTTP/1.1\r\n\r\n").error().code(),
            ErrorCode::kUnsupported);
  auto attach = Parse(Post("/v1/workloads/pos/usb", "{\"device\":\"0c2e:0b61\"}"));
  ASSERT_TRUE(attach.has_value()) << attach.error().message();
  EXPECT_EQ(attach->op, ApiOp::kUsbAttach);
  EXPECT_EQ(attach->usb_device, "0c2e:0b61");
  auto detach = Parse("DELETE /v1/workloads/pos/usb?device=3:7 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(detach.has_value()) << detach.error().message();
  EXPECT_EQ(detach->op, ApiOp::kUsbDetach);
  EXPECT_EQ(detach->usb_device, "3:7");
  EXPECT_EQ(UsbDeviceId("0c2e:0b61"), "usb-0c2e-0b61");
  EXPECT_EQ(UsbDeviceId("1-2.3"), "usb-1-2-3");
}

TEST(ApiTest, BadUsbRequestsSayWhatIsWrong) {
  EXPECT_EQ(Parse(Post("/v1/workloads/pos/usb", "{}"))
                .error()
                .message()
                .rfind("body.device: expected", 0),
            0u);
  EXPECT_EQ(Parse(Post("/v1/workloads/pos/usb", "{\"device\":\"x\",\"id\":1}")).error().message(),
            "body.id: unknown field; expected device");
  auto bad = Parse(Post("/v1/workloads/pos/usb", "{\"device\":\"0c2e:b61\"}"));
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message().rfind("body.device: ", 0), 0u) << bad.error().message();
  EXPECT_FALSE(Parse("DELETE /v1/workloads/pos/usb HTTP/1.1\r\n\r\n").has_value());
  EXPECT_FALSE(Parse("DELETE /v1/workloads/pos/usb?device=999:1 HTTP/1.1\r\n\r\n").has_value());
  EXPECT_FALSE(
      Parse(Post("/v1/workloads/pos/usb", "{\"device\":\"" + std::string(100, '1') + "\"}"))
          .has_value());
  EXPECT_EQ(Parse("PUT /v1/workloads/pos/usb HTTP/1.1\r\n\r\n").error().code(),
            ErrorCode::kUnsupported);
}

TEST(ApiTest, BadApiRequestsSayWhatIsWrong) {
  EXPECT_EQ(Parse(Post("/v1/apply", "[]")).error().message(), "body: expected a JSON object");
  EXPECT_EQ(Parse(Post("/v1/apply", "{\"profile\": 1}")).error().message(),
            "body.profile: expected the profile's YAML text as a string");
  EXPECT_EQ(Parse(Post("/v1/apply", "{\"zz\":true}")).error().message(),
            "body.zz: unknown field; expected profile, file, dryRun");
  EXPECT_EQ(Parse("GET /v1/workloads/..%2Fetc HTTP/1.1\r\n\r\n").error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(Parse("GET /v1/nothing HTTP/1.1\r\n\r\n").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(Parse("DELETE /v1/apply HTTP/1.1\r\n\r\n").error().code(), ErrorCode::kUnsupported);
  EXPECT_EQ(Parse(Post("/v1/workloads/kv/exec", "{\"cmd\":[]}")).error().message(),
            "body.cmd: expected a non-empty list of strings");
  EXPECT_FALSE(Parse("GET /v1/events?since=abc HTTP/1.1\r\n\r\n").has_value());
  EXPECT_FALSE(Parse(Post("/v1/apply", "{\"profile\":\"\xff\"}")).has_value());
}

TEST(ApiTest, ApplyTakesAValidatedIdempotencyKey) {
  const std::string body = "{\"profile\":\"x\"}";
  auto ok = Parse("POST /v1/apply HTTP/1.1\r\nIdempotency-Key: cli-1.a_b\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->idempotency_key, "cli-1.a_b");
  for (const std::string& key : std::vector<std::string>{"", "a b", "a/b", std::string(129, 'k')}) {
    auto bad = Parse("POST /v1/apply HTTP/1.1\r\nIdempotency-Key: " + key +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_FALSE(bad.has_value()) << key;
  }
  auto none = Parse(Post("/v1/apply", body));
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->idempotency_key, "");
}

TEST(ApiTest, GenerationsAreAskedByKeyOrDigest) {
  auto g = Parse("GET /v1/generations/cli-abc HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(g.has_value()) << g.error().message();
  EXPECT_EQ(g->op, ApiOp::kGeneration);
  EXPECT_EQ(g->generation, "cli-abc");
  auto d = Parse("GET /v1/generations/sha256:0af3 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->generation, "sha256:0af3");
  EXPECT_FALSE(Parse("GET /v1/generations/ HTTP/1.1\r\n\r\n").has_value());
  EXPECT_FALSE(Parse("GET /v1/generations/a%20b HTTP/1.1\r\n\r\n").has_value());
  EXPECT_EQ(Parse("POST /v1/generations/k HTTP/1.1\r\nContent-Length: 0\r\n\r\n").error().code(),
            ErrorCode::kUnsupported);
}

TEST(ApiTest, HistoryAndRollbackRequests) {
  auto h = Parse("GET /v1/generations?limit=5 HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(h.has_value()) << h.error().message();
  EXPECT_EQ(h->op, ApiOp::kGenerations);
  EXPECT_EQ(h->limit, 5);
  EXPECT_EQ(Parse("GET /v1/generations HTTP/1.1\r\n\r\n")->limit, 50);
  for (const char* bad : {"0", "1001", "-1", "x", "99999999999999999999"}) {
    EXPECT_FALSE(
        Parse(std::string("GET /v1/generations?limit=") + bad + " HTTP/1.1\r\n\r\n").has_value())
        << bad;
  }
  EXPECT_EQ(Parse("POST /v1/generations HTTP/1.1\r\nContent-Length: 0\r\n\r\n").error().code(),
            ErrorCode::kUnsupported);
  // A number is a generation's (the daemon looks it up before keys and digests).
  EXPECT_EQ(Parse("GET /v1/generations/12 HTTP/1.1\r\n\r\n")->generation, "12");

  auto last = Parse("POST /v1/rollback HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(last.has_value()) << last.error().message();
  EXPECT_EQ(last->op, ApiOp::kRollback);
  EXPECT_EQ(last->rollback_to, 0);
  auto to3 = Parse(
      "POST /v1/rollback HTTP/1.1\r\nIdempotency-Key: cli-9\r\nContent-Length: "
      "16\r\n\r\n{\"generation\":3}");
  ASSERT_TRUE(to3.has_value()) << to3.error().message();
  EXPECT_EQ(to3->rollback_to, 3);
  EXPECT_EQ(to3->idempotency_key, "cli-9");
  for (const std::string body :
       {"{\"generation\":-1}", "{\"generation\":\"3\"}", "{\"generation\":1.5}", "{\"gen\":3}",
        "[3]", "{", "{\"generation\":3,\"x\":1}"}) {
    auto bad = Parse(Post("/v1/rollback", body));
    ASSERT_FALSE(bad.has_value()) << body;
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument) << body;
  }
  EXPECT_FALSE(Parse("POST /v1/rollback HTTP/1.1\r\nIdempotency-Key: a b\r\nContent-Length: "
                     "0\r\n\r\n")
                   .has_value());
  EXPECT_EQ(Parse("GET /v1/rollback HTTP/1.1\r\n\r\n").error().code(), ErrorCode::kUnsupported);
}

TEST(ApiTest, ImagesInUseIsAGet) {
  auto r = Parse("GET /v1/images/in-use HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->op, ApiOp::kImagesInUse);
  EXPECT_EQ(Parse("DELETE /v1/images/in-use HTTP/1.1\r\n\r\n").error().code(),
            ErrorCode::kUnsupported);
  EXPECT_EQ(Parse("GET /v1/images HTTP/1.1\r\n\r\n").error().code(), ErrorCode::kNotFound);
}

TEST(ApiTest, LongRequestsAndTokens) {
  auto req = [](const std::string& raw) { return **ParseHttpRequest(raw); };
  EXPECT_TRUE(IsLongRequest(req("GET /v1/events?follow=1 HTTP/1.1\r\n\r\n")));
  EXPECT_FALSE(IsLongRequest(req("GET /v1/events HTTP/1.1\r\n\r\n")));
  EXPECT_TRUE(IsLongRequest(req("GET /v1/workloads/kv/logs?follow=true HTTP/1.1\r\n\r\n")));
  EXPECT_FALSE(IsLongRequest(req("GET /v1/workloads/kv/logs HTTP/1.1\r\n\r\n")));
  EXPECT_TRUE(IsLongRequest(req("POST /v1/workloads/vm/console HTTP/1.1\r\n\r\n")));
  EXPECT_TRUE(IsLongRequest(req("POST /v1/workloads/vm/exec HTTP/1.1\r\n\r\n")));
  EXPECT_FALSE(IsLongRequest(req("GET /v1/workloads HTTP/1.1\r\n\r\n")));
  EXPECT_TRUE(TokenMatches("s3", req("GET / HTTP/1.1\r\nAuthorization: Bearer s3\r\n\r\n")));
  EXPECT_FALSE(TokenMatches("s3", req("GET / HTTP/1.1\r\nAuthorization: Bearer s4\r\n\r\n")));
  EXPECT_FALSE(TokenMatches("s3", req("GET / HTTP/1.1\r\n\r\n")));
  EXPECT_FALSE(TokenMatches("", req("GET / HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n")));
}

TEST(ApiTest, PostedEventsAreValidated) {
  auto ok = Parse(Post("/v1/events",
                       R"({"source":"vision","type":"shelf.empty","time":"2026-11-25T12:00:00Z",)"
                       R"("data":{"shelf":"A3","score":0.9}})"));
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->op, ApiOp::kPostEvent);
  EXPECT_EQ(ok->event_source, "vision");
  EXPECT_EQ(ok->event_type, "shelf.empty");
  EXPECT_EQ(ok->event_data, R"({"score":0.9,"shelf":"A3"})");
  const std::string good_rest = R"("time":"2026-11-25T12:00:00Z","data":{}})";
  struct Case {
    std::string body;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"source":"vision","type":"a b",)" + good_rest, "body.type: expected 1-64"},
      {R"({"type":"t",)" + good_rest, "body.source: expected"},
      {R"({"source":"v","type":"t","time":"2026-11-25 12:00:00Z","data":{}})", "body.time"},
      {R"({"source":"v","type":"t","time":"2026-02-30T25:00:00Z","data":{}})", "body.time"},
      {R"({"source":"v","type":"t","time":"2026-11-25T12:00:00Z","data":[1]})",
       "body.data: expected a JSON object"},
      {R"({"source":"v","type":"t","time":"2026-11-25T12:00:00Z"})", "body.data"},
      {R"({"source":"v","type":"t","extra":1,)" + good_rest, "body.extra: unknown field"},
      {R"({"source":"v\nevent: x","type":"t",)" + good_rest, "body.source"},
      {R"({"source":"v","type":"t","time":"2026-11-25T12:00:00Z","data":)" + std::string(40, '[') +
           std::string(40, ']') + "}",
       "nested deeper than 16"},
      {R"({"source":"v","type":"t","time":"2026-11-25T12:00:00Z","data":{"x":")" +
           std::string(70000, 'a') + R"("}})",
       "an event is at most 65536"},
      {"[]", "expected a JSON object"},
  };
  for (const auto& c : cases) {
    auto r = Parse(Post("/v1/events", c.body));
    ASSERT_FALSE(r.has_value()) << c.body.substr(0, 120);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find(c.message), std::string::npos) << r.error().message();
  }
}

TEST(ApiTest, Rfc3339) {
  for (const char* t : {"2026-11-25T12:00:00Z", "2026-11-25t12:00:00.123456789z",
                        "2026-11-25T23:59:60+14:00", "1999-01-01T00:00:00.1-05:30"}) {
    EXPECT_TRUE(IsRfc3339(t)) << t;
  }
  for (const char* t :
       {"", "2026-11-25", "2026-11-25T12:00:00", "2026-11-25T12:00:00+1:00", "2026-00-25T12:00:00Z",
        "2026-11-25T12:00:00.Z", "2026-11-25T12:00:00.1234567890Z", "2026-11-25T12:00:00Zjunk",
        "2026-11-25T12:61:00Z", "2026-11-25T12:00:00+01:00x"}) {
    EXPECT_FALSE(IsRfc3339(t)) << t;
  }
}

}  // namespace
}  // namespace storevisor::daemon
