// The dashboard's pure parts and its session rules: cookies and form bodies from outside
// (nasty inputs too), asset paths that must not leave the web directory, sessions that are
// bounded and expire, login and the cross-site checks, answered on a socketpair.
#include "daemon/api/dashboard.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/files.h"
#include "daemon/api/api.h"
#include "daemon/api/dashboard_history.h"

namespace storevisor::daemon {
namespace {

TEST(CookieValue, FindsTheNamedCookie) {
  EXPECT_EQ(CookieValue("a=1; sv_session=ab12; b=2", "sv_session"), "ab12");
  EXPECT_EQ(CookieValue("sv_session=\"ab12\"", "sv_session"), "ab12");
  EXPECT_EQ(CookieValue("  sv_session = x ;", "sv_session"), "x");
  EXPECT_EQ(CookieValue("xsv_session=1; sv_sessionx=2", "sv_session"), std::nullopt);
  EXPECT_EQ(CookieValue("", "sv_session"), std::nullopt);
  EXPECT_EQ(CookieValue("sv_session", "sv_session"), std::nullopt);
}

TEST(CookieValue, RefusesNastyValues) {
  EXPECT_EQ(CookieValue("sv_session=a b", "sv_session"), std::nullopt);
  EXPECT_EQ(CookieValue("sv_session=a\"b", "sv_session"), std::nullopt);
  EXPECT_EQ(CookieValue(std::string("sv_session=a\0b", 14), "sv_session"), std::nullopt);
  EXPECT_EQ(CookieValue("sv_session=a\x80", "sv_session"), std::nullopt);
  EXPECT_EQ(CookieValue("sv_session=" + std::string(9000, 'a'), "sv_session"), std::nullopt);
  EXPECT_EQ(CookieValue(std::string(5000, ';') + "sv_session=ok", "sv_session"), "ok");
}

TEST(FormField, DecodesAndRefuses) {
  EXPECT_EQ(FormField("token=abc", "token"), "abc");
  EXPECT_EQ(FormField("x=1&token=a%2Bb+c", "token"), "a+b c");
  EXPECT_EQ(FormField("token", "token"), "");
  EXPECT_EQ(FormField("tok=1", "token"), std::nullopt);
  EXPECT_EQ(FormField("token=%", "token"), std::nullopt);
  EXPECT_EQ(FormField("token=%4", "token"), std::nullopt);
  EXPECT_EQ(FormField("token=%zz", "token"), std::nullopt);
  EXPECT_EQ(FormField("token=a%00b", "token"), std::nullopt);
  EXPECT_EQ(FormField("token=" + std::string(5000, 'a'), "token"), std::nullopt);
  std::string many;
  for (int i = 0; i < 20; ++i) many += "a=1&";
  EXPECT_EQ(FormField(many + "token=x", "token"), std::nullopt);
}

TEST(AssetPath, MapsPagesAndVendorsOnly) {
  EXPECT_EQ(AssetPath("/w", "/ui/app.js"), "/w/app.js");
  EXPECT_EQ(AssetPath("/w", "/ui/vendor/xterm/lib/xterm.js"),
            "/w/node_modules/@xterm/xterm/lib/xterm.js");
  EXPECT_EQ(AssetPath("/w", "/ui/vendor/novnc/core/rfb.js"),
            "/w/node_modules/@novnc/novnc/core/rfb.js");
  EXPECT_EQ(AssetPath("/w", "/ui/vendor/uplot/dist/uPlot.esm.js"),
            "/w/node_modules/uplot/dist/uPlot.esm.js");
  for (const char* bad :
       {"/ui/../etc/passwd.js", "/ui/vendor/xterm/../../../x.js", "/ui/.hidden.js", "/ui/",
        "/ui//app.js", "/ui/node_modules/x/y.js", "/ui/package.json", "/ui/package-lock.json",
        "/ui/app", "/ui/a\\b.js", "/ui/vendor/other/x.js", "/x/app.js", "/ui/app.js\x01.js",
        "/ui/vendor/xterm/./lib/xterm.js", "/ui/README.md"}) {
    EXPECT_EQ(AssetPath("/w", bad), std::nullopt) << bad;
  }
}

TEST(SessionStore, BoundedAndExpiring) {
  SessionStore store(2, 1000, 5000);
  auto a = store.Create(0);
  auto b = store.Create(10);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->id.size(), 64u);
  EXPECT_NE(a->id, b->id);
  EXPECT_NE(a->csrf, a->id);
  EXPECT_TRUE(store.Find(a->id, 20));  // a is now the most recently used
  auto c = store.Create(30);           // b goes
  ASSERT_TRUE(c);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_FALSE(store.Find(b->id, 40));
  EXPECT_TRUE(store.Find(a->id, 40));
  EXPECT_FALSE(store.Find(a->id, 1100));  // idle for more than a second
  EXPECT_FALSE(store.Find("", 40));
  EXPECT_FALSE(store.Find(c->id.substr(1), 40));
  SessionStore aged(4, 100000, 5000);
  auto d = aged.Create(0);
  for (int64_t t = 0; t < 5000; t += 500) EXPECT_TRUE(aged.Find(d->id, t));
  EXPECT_FALSE(aged.Find(d->id, 5000));  // past its whole life, however used
}

// A dashboard over a temporary web directory, its answers read from a socketpair.
class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sv-dashboard-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    Write("index.html", "<html>dashboard</html>");
    Write("login.html", "<html><form><!--error--></form></html>");
    Write("app.js", std::string(4000, 'x'));
    Write("login.css", "body{}");
    DashboardOptions o;
    o.web_dir = dir_;
    o.token = "s3cret";
    o.max_failed_logins_per_minute = 3;
    o.clock = [this] { return now_; };
    dash_ = std::make_unique<Dashboard>(o);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  static HttpRequest Request(const std::string& method, const std::string& path,
                             std::map<std::string, std::string> headers = {},
                             const std::string& body = "") {
    HttpRequest r;
    r.method = method;
    r.target = path;
    r.path = path;
    r.headers = std::move(headers);
    r.headers.emplace("host", "127.0.0.1:7700");
    r.body = body;
    return r;
  }
  // The whole answer to one request.
  std::string Answer(const HttpRequest& request, const std::string& client = "") {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd mine(sv[0]);
    {
      HttpConnection conn{UniqueFd(sv[1])};
      dash_->Serve(request, conn, client);
    }
    return ReadAll(mine.get(), 1u << 20).value_or("");
  }
  // Logs in; the session cookie's value.
  std::string LogIn() {
    const std::string a =
        Answer(Request("POST", "/login", {{"origin", "http://127.0.0.1:7700"}}, "token=s3cret"));
    EXPECT_NE(a.find("HTTP/1.1 303"), std::string::npos) << a;
    EXPECT_NE(a.find("HttpOnly; SameSite=Strict"), std::string::npos) << a;
    const size_t at = a.find("sv_session=");
    return a.substr(at + 11, 64);
  }

  std::string dir_;
  int64_t now_ = 1000000;
  std::unique_ptr<Dashboard> dash_;
};

TEST_F(DashboardTest, WithoutSessionOnlyTheLoginPage) {
  EXPECT_TRUE(dash_->Admits(Request("GET", "/login")));
  EXPECT_TRUE(dash_->Admits(Request("GET", "/ui/login.css")));
  EXPECT_FALSE(dash_->Admits(Request("GET", "/ui/app.js")));
  EXPECT_FALSE(dash_->Admits(Request("GET", "/v1/workloads")));
  EXPECT_FALSE(dash_->Admits(Request("GET", "/ui/app.js", {{"cookie", "sv_session=00"}})));
  EXPECT_NE(Answer(Request("GET", "/")).find("Location: /login"), std::string::npos);
  EXPECT_NE(Answer(Request("GET", "/login")).find("<form>"), std::string::npos);
  EXPECT_NE(Answer(Request("GET", "/ui/app.js")).find("HTTP/1.1 401"), std::string::npos);
  EXPECT_NE(Answer(Request("GET", "/ui/session")).find("HTTP/1.1 401"), std::string::npos);
}

TEST_F(DashboardTest, WrongTokenRefusedAndRateLimited) {
  for (const char* body : {"token=wrong", "token=", "nothing=1", "token=%zz"}) {
    const std::string a = Answer(Request("POST", "/login", {}, body));
    if (std::string(body) == "token=%zz") {
      EXPECT_NE(a.find("HTTP/1.1 429"), std::string::npos) << a;  // the fourth failure
      continue;
    }
    EXPECT_NE(a.find("HTTP/1.1 401"), std::string::npos) << body;
    EXPECT_NE(a.find("Wrong token."), std::string::npos);
    EXPECT_EQ(a.find("Set-Cookie"), std::string::npos);
  }
  // Another client is not held back by the first one's failures.
  EXPECT_NE(Answer(Request("POST", "/login", {}, "token=wrong"), "10.0.0.9").find("HTTP/1.1 401"),
            std::string::npos);
  now_ += 60000;
  LogIn();  // a minute later
}

TEST_F(DashboardTest, CrossSiteLoginRefused) {
  const std::string a =
      Answer(Request("POST", "/login", {{"origin", "http://evil.example"}}, "token=s3cret"));
  EXPECT_NE(a.find("HTTP/1.1 403"), std::string::npos) << a;
  EXPECT_EQ(a.find("Set-Cookie"), std::string::npos);
}

TEST_F(DashboardTest, SessionServesPagesAndNeedsCsrfToChange) {
  const std::string id = LogIn();
  const std::string cookie = "sv_session=" + id;
  EXPECT_TRUE(dash_->Admits(Request("GET", "/ui/app.js", {{"cookie", cookie}})));
  const std::string js =
      Answer(Request("GET", "/ui/app.js", {{"cookie", cookie}, {"accept-encoding", "gzip, br"}}));
  EXPECT_NE(js.find("Content-Encoding: gzip"), std::string::npos);
  EXPECT_NE(js.find("Content-Security-Policy"), std::string::npos);
  const std::string session = Answer(Request("GET", "/ui/session", {{"cookie", cookie}}));
  const size_t at = session.find("\"csrf\":\"");
  ASSERT_NE(at, std::string::npos) << session;
  const std::string csrf = session.substr(at + 8, 64);

  EXPECT_TRUE(dash_->CheckSessionRequest(Request("GET", "/v1/workloads", {{"cookie", cookie}})));
  EXPECT_FALSE(
      dash_->CheckSessionRequest(Request("POST", "/v1/workloads/a/restart", {{"cookie", cookie}})));
  EXPECT_FALSE(dash_->CheckSessionRequest(Request(
      "POST", "/v1/workloads/a/restart", {{"cookie", cookie}, {"x-csrf-token", csrf + "0"}})));
  EXPECT_FALSE(dash_->CheckSessionRequest(
      Request("POST", "/v1/workloads/a/restart",
              {{"cookie", cookie}, {"x-csrf-token", csrf}, {"origin", "http://evil.example"}})));
  EXPECT_FALSE(dash_->CheckSessionRequest(
      Request("POST", "/v1/workloads/a/restart",
              {{"cookie", cookie}, {"x-csrf-token", csrf}, {"sec-fetch-site", "cross-site"}})));
  EXPECT_TRUE(dash_->CheckSessionRequest(
      Request("POST", "/v1/workloads/a/restart",
              {{"cookie", cookie}, {"x-csrf-token", csrf}, {"origin", "http://127.0.0.1:7700"}})));

  // Logged out: the session is gone.
  const std::string out =
      Answer(Request("POST", "/logout", {{"cookie", cookie}, {"x-csrf-token", csrf}}));
  EXPECT_NE(out.find("Max-Age=0"), std::string::npos) << out;
  EXPECT_FALSE(dash_->Admits(Request("GET", "/ui/app.js", {{"cookie", cookie}})));
}

TEST_F(DashboardTest, SessionsExpire) {
  const std::string cookie = "sv_session=" + LogIn();
  now_ += 60LL * 60 * 1000;
  EXPECT_FALSE(dash_->Admits(Request("GET", "/ui/app.js", {{"cookie", cookie}})));
}

TEST(UsageHistory, BoundedPerWorkloadAndForgetsTheGone) {
  UsageHistory h([] { return std::vector<api::WorkloadStatus>{}; }, 1000, 3, 2);
  auto w = [](const std::string& name, const std::string& state, double cpu) {
    api::WorkloadStatus s;
    s.name = name;
    s.state = state;
    s.cpu_percent = cpu;
    s.memory_bytes = 100;
    return s;
  };
  for (int i = 0; i < 5; ++i) {
    h.Record(i * 1000, {w("a", "running", i), w("b", "stopped", 9), w("c", "running", 1)});
  }
  auto a = h.Json("a");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(
      *a,
      R"({"intervalMs":1000,"name":"a","points":[[2000,2.0,100],[3000,3.0,100],[4000,4.0,100]]})");
  auto b = h.Json("b");
  ASSERT_TRUE(b.has_value());
  EXPECT_NE(b->find("[4000,0.0,0]"), std::string::npos) << *b;  // not running: nothing used
  EXPECT_FALSE(h.Json("c").has_value());                        // beyond the bound of two series
  h.Record(5000, {w("b", "running", 1)});
  EXPECT_FALSE(h.Json("a").has_value());  // gone from the list: forgotten
}

TEST(UsageHistory, SamplesOnItsThreadUntilStopped) {
  std::atomic<int> calls{0};
  UsageHistory h(
      [&calls] {
        ++calls;
        api::WorkloadStatus s;
        s.name = "a";
        s.state = "running";
        return Result<std::vector<api::WorkloadStatus>>(std::vector<api::WorkloadStatus>{s});
      },
      1);
  h.Start();
  while (calls.load() < 3) std::this_thread::yield();
  h.Stop();
  const int after = calls.load();
  EXPECT_TRUE(h.Json("a").has_value());
  EXPECT_EQ(calls.load(), after);  // stopped: no more samples
}

TEST(BoxRoute, GetOnly) {
  HttpRequest get;
  get.method = "GET";
  get.path = get.target = "/v1/box";
  auto cmd = ParseApiRequest(get);
  ASSERT_TRUE(cmd.has_value());
  EXPECT_EQ(cmd->op, ApiOp::kBox);
  HttpRequest post = get;
  post.method = "POST";
  auto refused = ParseApiRequest(post);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnsupported);
}

TEST(DashboardPaths, WhatTheDashboardAnswers) {
  for (const char* p :
       {"/", "/login", "/logout", "/favicon.ico", "/ui/app.js", "/ui/ws/console/x"}) {
    EXPECT_TRUE(Dashboard::IsDashboardPath(p)) << p;
  }
  for (const char* p : {"/v1/workloads", "/metrics", "/uix", "/login/x", ""}) {
    EXPECT_FALSE(Dashboard::IsDashboardPath(p)) << p;
  }
}

}  // namespace
}  // namespace storevisor::daemon
