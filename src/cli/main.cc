// storevisor: the operator's CLI, a thin REST client of storevisord (docs/daemon.md).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/client.h"
#include "cli/console_top.h"
#include "cli/display.h"
#include "common/files.h"
#ifdef SV_HAVE_IMAGE_CLI
#include "image/image_cli.h"
#endif

namespace storevisor::cli {

namespace {

using nlohmann::json;

int Fail(const Error& e) {
  std::fprintf(stderr, "storevisor: %s\n", e.message().c_str());
  return ExitCodeFor(e.code());
}

std::string Human(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ULL << 30))
    std::snprintf(buf, sizeof buf, "%.1fGi", bytes / 1073741824.0);
  else if (bytes >= (1ULL << 20))
    std::snprintf(buf, sizeof buf, "%.1fMi", bytes / 1048576.0);
  else if (bytes > 0)
    std::snprintf(buf, sizeof buf, "%.0fKi", bytes / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "-");
  return buf;
}

std::string Duration(int64_t ms) {
  if (ms <= 0) return "-";
  int64_t s = ms / 1000;
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lldh%lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s / 60) % 60));
  return buf;
}

void PrintTable(const json& list) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "KIND", "STATE", "HEALTH", "UPTIME", "RESTARTS", "CPU", "MEMORY", "ADDRESS"}};
  for (const auto& w : list) {
    char cpu[16];
    std::snprintf(cpu, sizeof cpu, "%.1f%%", w.value("cpuPercent", 0.0));
    std::string addr = w.value("address", "");
    // A container with a role shows the role (`vision`), as the profile names its kind.
    const std::string role = w.contains("role") && w["role"].is_string() ? w.value("role", "") : "";
    rows.push_back(
        {w.value("name", ""), role.empty() ? w.value("kind", "") : role, w.value("state", ""),
         w.value("health", ""), Duration(w.value("uptimeMs", int64_t{0})),
         std::to_string(w.value("restarts", 0)), w.value("state", "") == "running" ? cpu : "-",
         Human(w.value("memoryBytes", uint64_t{0})), addr.empty() ? "-" : addr});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

void PrintPlan(const json& plan) {
  if (plan["steps"].empty()) std::printf("no changes: the box matches the profile\n");
  for (const auto& s : plan["steps"]) {
    std::string a = s.value("action", "");
    const char* mark = a == "create" ? "+" : a == "delete" ? "-" : a == "replace" ? "-/+" : "~";
    std::printf("%-3s %-8s %s (%s)\n", mark, a.c_str(), s.value("name", "").c_str(),
                s.value("reason", "").c_str());
  }
  for (const auto& h : plan["held"]) std::printf("    held     %s\n", h.get<std::string>().c_str());
}

Result<std::string> ProfileBody(const std::string& file, bool dry_run) {
  SV_ASSIGN_OR_RETURN(std::string text, ReadFile(file, 1u << 20));
  std::error_code ec;
  std::string abs = std::filesystem::absolute(file, ec).lexically_normal().string();
  return json{{"profile", text}, {"file", ec ? file : abs}, {"dryRun", dry_run}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

// Waits until every workload runs and is healthy (or has no check); prints changes.
int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `expected` workloads must have (re)started after since_ms: a replaced workload's old
// instance does not count as converged.
int WaitConverged(Client& client, const std::vector<std::string>& expected,
                  const std::vector<std::string>& gone, int64_t since_ms, int timeout_s,
                  bool quiet) {
  std::map<std::string, std::string> seen;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = client.Call("GET", "/v1/workloads");
    if (!r) return Fail(r.error());
    if (int rc = ReportReply(*r); rc != 0) return rc;
    auto list = json::parse(r->body, nullptr, false);
    bool done = list.is_array();
    for (const auto& name : expected) {
      bool found = false;
      for (const auto& w : list) {
        found = found ||
                (w.value("name", "") == name && w.value("startedAtMs", int64_t{0}) >= since_ms);
      }
      done = done && found;
    }
    for (const auto& w : list) {
      for (const auto& name : gone) done = done && w.value("name", "") != name;
    }
    for (const auto& w : list) {
      const std::string state = w.value("state", "");
      const std::string health = w.value("health", "");
      std::string line = state;
      if (health != "none") line += ", " + health;
      if (!w.value("lastError", "").empty() && state != "running")
        line += ": " + w.value("lastError", "");
      if (!quiet && seen[w.value("name", "")] != line) {
        std::fprintf(stderr, "  %-14s %s\n", w.value("name", "").c_str(), line.c_str());
        seen[w.value("name", "")] = line;
      }
      if (w.value("desired", "running") == "running" &&
          (state != "running" || (health != "none" && health != "healthy"))) {
        done = false;
      }
    }
    if (done) return 0;
    // A poll is one small request to the daemon; 20 ms keeps the wait's own latency small.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::fprintf(
      stderr,
      "storevisor: not converged after %d s (see `storevisor ps` and `storevisor events`)\n",
      timeout_s);
  return ExitCodeFor(ErrorCode::kTimeout);
}

struct Opts {
  std::string endpoint;
  std::string token_file;
  std::string file;
  std::string output = "table";
  std::string name;
  std::vector<std::string> cmd;
  bool follow = false;
  bool no_wait = false;
  int tail = -1;
  int timeout_s = 300;
  int64_t since = 0;
  int interval_ms = 2000;
  int linger_ms = 1000;    // console without a terminal
  std::string usb_action;  // usb: attach | detach
  std::string usb_device;  // usb: vendor:product, bus-port or bus:address
  int iterations = 0;
  std::string display_token_file;  // display
  int port = 5900;                 // display
  bool once = false;               // display
};

// `storevisor display`: the token comes from a file or the environment, never argv
// (which any local user can read in /proc).
int Display(const Opts& o, const std::string& bearer) {
  DisplayOptions d{o.endpoint, bearer, o.name, "", o.port, o.once};
  if (!o.display_token_file.empty()) {
    auto t = ReadFile(o.display_token_file, 4096);
    if (!t) return Fail(t.error());
    d.display_token = *t;
  } else if (const char* env = std::getenv("STOREVISOR_DISPLAY_TOKEN")) {
    d.display_token = env;
  }
  while (!d.display_token.empty() &&
         (d.display_token.back() == '\n' || d.display_token.back() == ' ')) {
    d.display_token.pop_back();
  }
  return RunDisplay(d);
}

// Percent-encodes all but letters, digits and "-._:" for a query value.
std::string QueryValue(const std::string& v) {
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == ':') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// `storevisor usb attach|detach NAME DEVICE` (legacy-vm hot-plug through the daemon).
int Usb(Client& client, const Opts& o) {
  const std::string path = "/v1/workloads/" + o.name + "/usb";
  const bool attach = o.usb_action == "attach";
  auto r = attach ? client.Call("POST", path, json{{"device", o.usb_device}}.dump())
                  : client.Call("DELETE", path + "?device=" + QueryValue(o.usb_device));
  if (!r) return Fail(r.error());
  if (int rc = ReportReply(*r); rc != 0) return rc;
  if (attach) {
    const auto j = json::parse(r->body, nullptr, false);
    const std::string id = j.is_object() && j["id"].is_string() ? j["id"].get<std::string>() : "";
    std::printf("%s: %s attached (QEMU device %s)\n", o.name.c_str(), o.usb_device.c_str(),
                id.c_str());
  } else {
    std::printf("%s: %s detached\n", o.name.c_str(), o.usb_device.c_str());
  }
  return 0;
}

int Run(CLI::App& app, Opts& o) {
  std::string token;
  if (!o.token_file.empty()) {
    auto t = ReadFile(o.token_file, 4096);
    if (!t) return Fail(t.error());
    token = *t;
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
  }
  Client client(o.endpoint, token);
  auto sub = app.get_subcommands();
  if (sub.empty()) {
    std::cout << app.help();
    return 2;
  }
  const std::string cmd = sub[0]->get_name();
  if (cmd == "version") {
    std::printf("storevisor 0.1.0\n");
    auto r = client.Call("GET", "/v1/version");
    if (!r) return Fail(r.error());
    if (int rc = ReportReply(*r); rc != 0) return rc;
    std::printf("storevisord %s\n", json::parse(r->body).value("version", "?").c_str());
    return 0;
  }
  if (cmd == "apply" || cmd == "diff") {
    auto body = ProfileBody(o.file, cmd == "diff");
    if (!body) return Fail(body.error());
    const int64_t t0 = WallMs();
    auto r = client.Call("POST", cmd == "diff" ? "/v1/diff" : "/v1/apply", *body);
    if (!r) return Fail(r.error());
    if (int rc = ReportReply(*r); rc != 0) return rc;
    auto plan = json::parse(r->body);
    if (o.output == "json") {
      std::printf("%s\n", plan.dump(2).c_str());
    } else {
      PrintPlan(plan);
    }
    if (cmd == "diff" || o.no_wait) return 0;
    std::fprintf(stderr, "waiting for the workloads to run and be healthy...\n");
    std::vector<std::string> expected;
    std::vector<std::string> gone;
    for (const auto& s : plan["steps"]) {
      const std::string a = s.value("action", "");
      if (a == "create" || a == "replace") expected.push_back(s.value("name", ""));
      if (a == "delete") gone.push_back(s.value("name", ""));
    }
    return WaitConverged(client, expected, gone, t0, o.timeout_s, o.output == "json");
  }
  if (cmd == "ps") {
    auto r = client.Call("GET", "/v1/workloads");
    if (!r) return Fail(r.error());
    if (int rc = ReportReply(*r); rc != 0) return rc;
    auto list = json::parse(r->body);
    if (o.output == "json")
      std::printf("%s\n", list.dump(2).c_str());
    else
      PrintTable(list);
    return 0;
  }
  if (cmd == "logs") {
    std::string path = "/v1/workloads/" + o.name + "/logs?tail=" + std::to_string(o.tail) +
                       (o.follow ? "&follow=1" : "");
    auto st = client.Stream(path, [](std::string_view d) {
      std::fwrite(d.data(), 1, d.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    if (!st) return Fail(st.error());
    return ReportReply(*st);
  }
  if (cmd == "events") {
    if (!o.follow) {
      auto r = client.Call("GET", "/v1/events?since=" + std::to_string(o.since));
      if (!r) return Fail(r.error());
      if (int rc = ReportReply(*r); rc != 0) return rc;
      auto list = json::parse(r->body);
      if (o.output == "json") {
        std::printf("%s\n", list.dump(2).c_str());
        return 0;
      }
      for (const auto& e : list) {
        // Events from other services (POST /v1/events) show who sent them and their data.
        std::string who = e.contains("source") ? e.value("source", "") : e.value("workload", "");
        std::string text = e.value("message", "");
        if (e.contains("data")) text = e.value("time", "") + " " + e["data"].dump();
        std::printf("%-6lld %-10s %-12s %s\n", static_cast<long long>(e.value("id", int64_t{0})),
                    e.value("type", "").c_str(), who.c_str(), text.c_str());
      }
      return 0;
    }
    auto st = client.Stream("/v1/events?follow=1&since=" + std::to_string(o.since),
                            [](std::string_view d) {
                              std::fwrite(d.data(), 1, d.size(), stdout);
                              std::fflush(stdout);
                              return true;
                            });
    return st ? ReportReply(*st) : Fail(st.error());
  }
  if (cmd == "console") return Console(client, o.name, o.tail < 0 ? 20 : o.tail, o.linger_ms);
  if (cmd == "top") return Top(client, o.interval_ms, o.iterations);
  if (cmd == "exec") {
    json body = {{"cmd", o.cmd}, {"timeoutMs", o.timeout_s * 1000}};
    auto r = client.Call("POST", "/v1/workloads/" + o.name + "/exec", body.dump());
    if (!r) return Fail(r.error());
    if (int rc = ReportReply(*r); rc != 0) return rc;
    auto j = json::parse(r->body);
    std::fputs(j.value("stdout", "").c_str(), stdout);
    std::fputs(j.value("stderr", "").c_str(), stderr);
    return j.value("exitCode", 1);
  }
  if (cmd == "screenshot") return RunScreenshot(client, o.name, o.file);
  if (cmd == "usb") return Usb(client, o);
  if (cmd == "display") return Display(o, token);
  // start, stop, restart, rm
  const std::string method = cmd == "rm" ? "DELETE" : "POST";
  const std::string path = "/v1/workloads/" + o.name + (cmd == "rm" ? "" : "/" + cmd);
  auto r = client.Call(method, path);
  if (!r) return Fail(r.error());
  if (int rc = ReportReply(*r); rc != 0) return rc;
  std::printf("%s: %s\n", o.name.c_str(), cmd == "rm" ? "removed" : (cmd + "ed").c_str());
  return 0;
}

}  // namespace

int Main(int argc, char** argv) {
#ifdef SV_HAVE_IMAGE_CLI
  if (argc > 1 && std::string(argv[1]) == "image") {
    return storevisor::image::RunImageCli(std::vector<std::string>(argv + 2, argv + argc));
  }
#endif
  Opts o;
  const char* env = std::getenv("STOREVISOR_SOCKET");
  o.endpoint = env != nullptr ? env : "/run/storevisor/storevisord.sock";
  CLI::App app{"storevisor: apply store profiles and manage their workloads"};
  app.add_option("--socket,--endpoint", o.endpoint, "unix socket path, or tcp:HOST:PORT")
      ->capture_default_str();
  app.add_option("--token-file", o.token_file, "bearer token for a TCP endpoint");
  app.require_subcommand(1);
  app.set_version_flag("--version", "storevisor " SV_VERSION);
  auto* apply = app.add_subcommand("apply", "apply a store profile and wait until it converges");
  apply->add_option("-f,--file", o.file, "profile YAML")->required();
  apply->add_flag("--no-wait", o.no_wait, "return after the plan is accepted");
  apply->add_option("--timeout", o.timeout_s, "seconds to wait for convergence");
  apply->add_option("-o,--output", o.output, "table or json");
  auto* diff = app.add_subcommand("diff", "show what applying a profile would change");
  diff->add_option("-f,--file", o.file, "profile YAML")->required();
  diff->add_option("-o,--output", o.output, "table or json");
  auto* ps = app.add_subcommand("ps", "list workloads");
  ps->add_option("-o,--output", o.output, "table or json");
  auto* logs = app.add_subcommand("logs", "print a workload's log");
  logs->add_option("name", o.name)->required();
  logs->add_flag("-f,--follow", o.follow, "keep printing new lines");
  logs->add_option("--tail", o.tail, "only the last N lines");
  auto* exec = app.add_subcommand("exec", "run a command in a workload");
  exec->add_option("name", o.name)->required();
  exec->add_option("cmd", o.cmd, "command (after --)")->required();
  exec->add_option("--timeout", o.timeout_s, "seconds");
  for (const char* c : {"start", "stop", "restart", "rm"}) {
    app.add_subcommand(c, std::string(c) + " a workload")->add_option("name", o.name)->required();
  }
  auto* events = app.add_subcommand("events", "print the event log");
  events->add_flag("-f,--follow", o.follow, "stream new events (Server-Sent Events)");
  events->add_option("--since", o.since, "after this event id");
  events->add_option("-o,--output", o.output, "table or json");
  auto* console =
      app.add_subcommand("console", "attach to a VM's serial console (Ctrl-] detaches)");
  console->add_option("name", o.name)->required();
  console->add_option("--tail", o.tail, "lines of earlier output to show first (default 20)");
  console
      ->add_option("--linger", o.linger_ms,
                   "without a terminal: after stdin ends, exit once the console is quiet "
                   "for this many ms")
      ->capture_default_str()
      ->check(CLI::Range(0, 600000));
  auto* usb = app.add_subcommand("usb", "hot-plug a host USB device into a legacy VM, or out");
  usb->add_option("action", o.usb_action, "attach or detach")
      ->required()
      ->check(CLI::IsMember({"attach", "detach"}));
  usb->add_option("name", o.name)->required();
  usb->add_option("device", o.usb_device, "VENDOR:PRODUCT (0c2e:0b61), BUS-PORT or BUS:ADDR")
      ->required();
  auto* top = app.add_subcommand("top", "CPU and memory per workload, refreshed");
  top->add_option("--interval", o.interval_ms, "milliseconds between refreshes")
      ->check(CLI::Range(100, 3600000));
  top->add_option("-n,--iterations", o.iterations,
                  "refresh this many times, then exit (0: forever)")
      ->check(CLI::Range(0, 1000000));
  app.add_subcommand("version", "print client and daemon versions");
  auto* shot = app.add_subcommand("screenshot", "save what a legacy VM's screen shows (PNG)");
  shot->add_option("name", o.name)->required();
  shot->add_option("file", o.file, "FILE.png")->required();
  auto* display = app.add_subcommand("display", "show a legacy VM's display to a local VNC viewer");
  display->add_option("name", o.name)->required();
  display->add_option("--port", o.port, "listen on 127.0.0.1:PORT")->capture_default_str();
  display->add_option("--display-token-file", o.display_token_file,
                      "file with the workload's vnc.token (or STOREVISOR_DISPLAY_TOKEN)");
  display->add_flag("--once", o.once, "end when the first viewer disconnects");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return Run(app, o);
}

}  // namespace storevisor::cli

int main(int argc, char** argv) { return storevisor::cli::Main(argc, argv); }
