// storevisor: the operator's CLI, a thin client of storevisord's REST API through src/api's
// client (docs/daemon.md). One function per command, found in a table.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "api/client.h"
#include "api/json.h"
#include "cli/console_top.h"
#include "cli/display.h"
#include "cli/output.h"
#include "common/files.h"
#ifdef SV_HAVE_IMAGE_CLI
#include "cli/image_rm.h"
#include "image/image_cli.h"
#endif

namespace storevisor::cli {

namespace {

struct Opts {
  std::string endpoint;
  std::string token_file;
  std::string file;
  std::string output = "table";
  std::string name;
  std::vector<std::string> cmd;
  bool follow = false;
  bool no_wait = false;
  bool wait_trial = false;  // apply --wait: until the generation is committed or rolled back
  int64_t generation = 0;   // rollback GEN
  int limit = 20;           // history -n
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
  std::string verb;                // the command's name (start, stop, ...)
  std::string bearer;              // from --token-file
};

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Whether every desired workload runs and is healthy, the expected ones (re)started after
// since_ms and the gone ones gone; prints each workload's changes to stderr.
bool Converged(const std::vector<api::WorkloadStatus>& list,
               const std::vector<std::string>& expected, const std::vector<std::string>& gone,
               int64_t since_ms, bool quiet, std::map<std::string, std::string>* seen) {
  bool done = true;
  for (const auto& name : expected) {
    bool found = false;
    for (const auto& w : list) found = found || (w.name == name && w.started_at_ms >= since_ms);
    done = done && found;
  }
  for (const auto& w : list) {
    for (const auto& name : gone) done = done && w.name != name;
    std::string line = w.state;
    if (w.health != "none") line += ", " + w.health;
    if (!w.last_error.empty() && w.state != "running") line += ": " + w.last_error;
    if (!quiet && (*seen)[w.name] != line) {
      std::fprintf(stderr, "  %-14s %s\n", w.name.c_str(), line.c_str());
      (*seen)[w.name] = line;
    }
    const std::string desired = w.desired.empty() ? "running" : w.desired;
    if (desired == "running" &&
        (w.state != "running" || (w.health != "none" && w.health != "healthy"))) {
      done = false;
    }
  }
  return done;
}

// Exit statuses of a trial's end (docs/exit-codes.md).
constexpr int kExitRolledBack = 30;
constexpr int kExitTrialFailed = 31;

// What became of a generation's trial: nullopt while it lasts, else the exit status to
// end with (after saying why on stderr). A generation that failed with nothing to roll back
// to stays: only `apply --wait` (final) ends on it.
std::optional<int> TrialEnd(const api::GenerationInfo& g, bool final) {
  const auto gen = static_cast<long long>(g.generation);
  if (g.outcome == "committed") return 0;
  if (g.outcome == "rolled-back") {
    std::fprintf(stderr, "storevisor: generation %lld was rolled back: %s\n", gen,
                 g.reason.c_str());
    return kExitRolledBack;
  }
  if (g.outcome == "superseded") {
    std::fprintf(stderr, "storevisor: generation %lld was superseded by a newer apply\n", gen);
    return ExitCodeFor(ErrorCode::kConflict);
  }
  if (g.outcome == "failed" && final) {
    std::fprintf(stderr, "storevisor: generation %lld failed its trial: %s\n", gen,
                 g.reason.c_str());
    return kExitTrialFailed;
  }
  return std::nullopt;
}

// Asks what became of the generation; nullopt while it is on trial (or could not be asked:
// the caller's next poll asks again).
std::optional<int> AskTrialEnd(api::Client& client, int64_t generation, bool final) {
  auto g = client.Generation(std::to_string(generation));
  if (!g) return std::nullopt;
  if (!final && g->outcome == "committed") return std::nullopt;  // converged decides
  return TrialEnd(*g, final);
}

int WaitConverged(api::Client& client, const api::ApplyResponse& plan, int64_t since_ms,
                  int timeout_s, bool quiet) {
  std::vector<std::string> expected;
  std::vector<std::string> gone;
  for (const auto& s : plan.steps) {
    if (s.action == "create" || s.action == "replace") expected.push_back(s.name);
    if (s.action == "delete") gone.push_back(s.name);
  }
  std::map<std::string, std::string> seen;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (int poll = 0; std::chrono::steady_clock::now() < deadline; ++poll) {
    auto list = client.Workloads();
    if (!list) return Fail(list.error());
    const bool converged = Converged(*list, expected, gone, since_ms, quiet, &seen);
    // A rolled-back generation converges too (to the one before): its outcome is asked
    // before success is claimed, and every 100 ms on the way.
    if ((converged || poll % 5 == 0) && plan.generation > 0) {
      if (auto end = AskTrialEnd(client, plan.generation, false)) return *end;
    }
    if (converged) return 0;
    // A poll is one small request to the daemon; 20 ms keeps the wait's own latency small.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::fprintf(
      stderr,
      "storevisor: not converged after %d s (see `storevisor ps` and `storevisor events`)\n",
      timeout_s);
  return ExitCodeFor(ErrorCode::kTimeout);
}

// A fresh random key per invocation: a retried request with the same key is answered once.
std::string NewIdempotencyKey() {
  unsigned char raw[16] = {};
  UniqueFd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  // Without /dev/urandom the time and pid below still make the key unique enough.
  if (fd.valid() && ::read(fd.get(), raw, sizeof raw) != static_cast<ssize_t>(sizeof raw)) {
    std::memset(raw, 0, sizeof raw);
  }
  std::string key = "cli-";
  char hex[3];
  for (unsigned char c : raw) {
    std::snprintf(hex, sizeof hex, "%02x", c);
    key += hex;
  }
  return key + "-" + std::to_string(WallMs()) + "-" + std::to_string(::getpid());
}

// The connection broke after the apply was sent: ask the daemon whether it stored it.
int ReportBrokenApply(api::Client& client, const std::string& key, const Error& broken) {
  std::fprintf(stderr, "storevisor: %s; asking storevisord whether the apply was stored...\n",
               broken.message().c_str());
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto g = client.Generation(key);
    if (g) {
      std::printf("stored as generation %lld\n", static_cast<long long>(g->generation));
      return 0;
    }
    if (g.error().code() == ErrorCode::kNotFound) {
      std::fprintf(stderr, "storevisor: not stored: apply the profile again\n");
      return ExitCodeFor(ErrorCode::kGuestFault);
    }
  }
  std::fprintf(stderr,
               "storevisor: storevisord does not answer: unknown whether the apply (key %s) "
               "was stored; ask with `storevisor generation %s` or apply again\n",
               key.c_str(), key.c_str());
  return ExitCodeFor(ErrorCode::kGuestFault);
}

Result<api::ApplyRequest> ApplyRequestFor(const Opts& o, bool dry_run) {
  api::ApplyRequest req;
  SV_ASSIGN_OR_RETURN(req.yaml, ReadFile(o.file, 1u << 20));
  std::error_code ec;
  std::string abs = std::filesystem::absolute(o.file, ec).lexically_normal().string();
  req.file = ec ? o.file : abs;
  req.dry_run = dry_run;
  if (!dry_run) req.idempotency_key = NewIdempotencyKey();
  return req;
}

std::string LocalTime(int64_t ms) {
  if (ms <= 0) return "-";
  const time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm = {};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

void PrintApplied(const api::ApplyResponse& plan, const Opts& o) {
  if (o.output == "json") {
    std::printf("%s\n", api::Dump(api::ToJson(plan), 2).c_str());
  } else {
    PrintPlan(plan);
  }
}

// After an accepted apply (or rollback): wait until its workloads run and are healthy, and
// with --wait until its trial ends.
int FinishApply(api::Client& client, const Opts& o, const api::ApplyResponse& plan, int64_t t0) {
  std::fprintf(stderr, "waiting for the workloads to run and be healthy...\n");
  const auto start = std::chrono::steady_clock::now();
  if (int rc = WaitConverged(client, plan, t0, o.timeout_s, o.output == "json"); rc != 0) {
    return rc;
  }
  if (!o.wait_trial || plan.generation == 0) return 0;
  std::fprintf(stderr, "waiting for generation %lld's trial to end...\n",
               static_cast<long long>(plan.generation));
  const auto deadline = start + std::chrono::seconds(o.timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto end = AskTrialEnd(client, plan.generation, true)) {
      if (*end == 0) {
        std::fprintf(stderr, "generation %lld committed\n",
                     static_cast<long long>(plan.generation));
      }
      return *end;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::fprintf(stderr,
               "storevisor: generation %lld is still on trial after %d s (storevisor history)\n",
               static_cast<long long>(plan.generation), o.timeout_s);
  return ExitCodeFor(ErrorCode::kTimeout);
}

int CmdApply(api::Client& client, const Opts& o) {
  const bool diff = o.verb == "diff";
  auto req = ApplyRequestFor(o, diff);
  if (!req) return Fail(req.error());
  const int64_t t0 = WallMs();
  auto plan = client.Apply(*req);
  if (!plan && !diff && api::IsBrokenConnection(plan.error())) {
    return ReportBrokenApply(client, req->idempotency_key, plan.error());
  }
  if (!plan) return Fail(plan.error());
  PrintApplied(*plan, o);
  if (diff || o.no_wait) return 0;
  return FinishApply(client, o, *plan, t0);
}

int CmdRollback(api::Client& client, const Opts& o) {
  api::RollbackRequest req{o.generation, NewIdempotencyKey()};
  const int64_t t0 = WallMs();
  auto plan = client.Rollback(req);
  if (!plan && api::IsBrokenConnection(plan.error())) {
    return ReportBrokenApply(client, req.idempotency_key, plan.error());
  }
  if (!plan) return Fail(plan.error());
  PrintApplied(*plan, o);
  if (o.no_wait) return 0;
  return FinishApply(client, o, *plan, t0);
}

int CmdHistory(api::Client& client, const Opts& o) {
  auto list = client.Generations(o.limit);
  if (!list) return Fail(list.error());
  if (o.output == "json") {
    std::printf("%s\n", api::Dump(api::ToJson(*list), 2).c_str());
    return 0;
  }
  std::printf("%-6s %-19s %-14s %-16s %-12s %s\n", "GEN", "APPLIED", "BY", "PROFILE", "OUTCOME",
              "REASON");
  for (const auto& g : *list) {
    std::string gen = std::to_string(g.generation) + (g.current ? "*" : "");
    std::string reason = g.reason;
    if (g.restores != 0) {
      std::string restored = "rollback to " + std::to_string(g.restores);
      if (!reason.empty()) restored += "; " + reason;
      reason = std::move(restored);
    }
    std::printf("%-6s %-19s %-14s %-16s %-12s %s\n", gen.c_str(),
                LocalTime(g.applied_at_ms).c_str(), g.identity.c_str(), g.profile.c_str(),
                g.outcome.c_str(), reason.c_str());
  }
  return 0;
}

int CmdGeneration(api::Client& client, const Opts& o) {
  auto g = client.Generation(o.name);
  if (!g) return Fail(g.error());
  if (o.output == "json") {
    std::printf("%s\n", api::Dump(api::ToJson(*g), 2).c_str());
  } else {
    std::printf("generation %lld: profile %s, digest %s, applied by %s at %s; %s%s%s\n",
                static_cast<long long>(g->generation), g->profile.c_str(), g->digest.c_str(),
                g->identity.c_str(), LocalTime(g->applied_at_ms).c_str(), g->outcome.c_str(),
                g->reason.empty() ? "" : ": ", g->reason.c_str());
  }
  return 0;
}

int CmdVersion(api::Client& client, const Opts& /*o*/) {
  std::printf("storevisor 0.1.0\n");
  auto v = client.Version();
  if (!v) return Fail(v.error());
  std::printf("storevisord %s\n", v->version.c_str());
  return 0;
}

// ps's last line: the generation enforced and what its trial says, and a newer one that was
// rolled back (with why). Nothing when the daemon keeps no generations yet.
void PrintGenerationLine(api::Client& client) {
  auto list = client.Generations(5);
  if (!list || list->empty()) return;
  std::string line;
  for (const auto& g : *list) {
    if (!g.current) continue;
    line = "generation " + std::to_string(g.generation) + ": " +
           (g.outcome == "trial" ? std::string("on trial") : g.outcome) +
           (g.outcome == "failed" ? " its trial: " + g.reason : "");
  }
  const api::GenerationInfo& newest = list->front();
  if (!newest.current && newest.outcome == "rolled-back") {
    line += std::string(line.empty() ? "" : "; ") + "generation " +
            std::to_string(newest.generation) + " rolled back: " + newest.reason;
  }
  if (!line.empty()) std::printf("\n%s\n", line.c_str());
}

int CmdPs(api::Client& client, const Opts& o) {
  auto list = client.Workloads();
  if (!list) return Fail(list.error());
  if (o.output == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& w : *list) out.push_back(api::ToJson(w));
    std::printf("%s\n", api::Dump(out, 2).c_str());
  } else {
    PrintTable(*list, o.output == "wide");
    PrintGenerationLine(client);
  }
  return 0;
}

bool PrintData(std::string_view d) {
  std::fwrite(d.data(), 1, d.size(), stdout);
  std::fflush(stdout);
  return true;
}

int CmdLogs(api::Client& client, const Opts& o) {
  auto st = client.Logs(o.name, o.tail, o.follow, PrintData);
  return st ? 0 : Fail(st.error());
}

int CmdEvents(api::Client& client, const Opts& o) {
  if (o.follow) {
    // The Server-Sent Events as they come (id:, event:, data: lines), as scripts read them.
    auto st = client.Stream("/v1/events?follow=1&since=" + std::to_string(o.since), PrintData);
    return st ? 0 : Fail(st.error());
  }
  auto list = client.Events(o.since);
  if (!list) return Fail(list.error());
  if (o.output == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *list) out.push_back(api::ToJson(e));
    std::printf("%s\n", api::Dump(out, 2).c_str());
    return 0;
  }
  for (const auto& e : *list) PrintEvent(e);
  return 0;
}

int CmdExec(api::Client& client, const Opts& o) {
  auto out = client.Exec(o.name, api::ExecRequest{o.cmd, o.timeout_s * 1000});
  if (!out) return Fail(out.error());
  std::fputs(out->out.c_str(), stdout);
  std::fputs(out->err.c_str(), stderr);
  return out->exit_code;
}

int CmdOperate(api::Client& client, const Opts& o) {
  if (auto st = client.Operate(o.name, o.verb); !st) return Fail(st.error());
  static const std::map<std::string, std::string> kDone = {
      {"start", "started"}, {"stop", "stopped"}, {"restart", "restarted"}, {"rm", "removed"}};
  std::printf("%s: %s\n", o.name.c_str(), kDone.at(o.verb).c_str());
  return 0;
}

int CmdConsole(api::Client& client, const Opts& o) {
  return Console(client, o.name, o.tail < 0 ? 20 : o.tail, o.linger_ms);
}

int CmdTop(api::Client& client, const Opts& o) { return Top(client, o.interval_ms, o.iterations); }

int CmdScreenshot(api::Client& client, const Opts& o) {
  return RunScreenshot(client, o.name, o.file);
}

// `storevisor usb attach|detach NAME DEVICE` (legacy-vm hot-plug through the daemon).
int CmdUsb(api::Client& client, const Opts& o) {
  if (o.usb_action == "attach") {
    auto id = client.UsbAttach(o.name, o.usb_device);
    if (!id) return Fail(id.error());
    std::printf("%s: %s attached (QEMU device %s)\n", o.name.c_str(), o.usb_device.c_str(),
                id->c_str());
    return 0;
  }
  if (auto st = client.UsbDetach(o.name, o.usb_device); !st) return Fail(st.error());
  std::printf("%s: %s detached\n", o.name.c_str(), o.usb_device.c_str());
  return 0;
}

// `storevisor display`: the token comes from a file or the environment, never argv
// (which any local user can read in /proc).
int CmdDisplay(api::Client& client, const Opts& o) {
  DisplayOptions d{o.name, "", o.port, o.once};
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
  return RunDisplay(client, d);
}

using CommandFn = int (*)(api::Client&, const Opts&);
const std::map<std::string, CommandFn>& Commands() {
  static const std::map<std::string, CommandFn> kCommands = {
      {"apply", CmdApply},
      {"diff", CmdApply},
      {"generation", CmdGeneration},
      {"ps", CmdPs},
      {"logs", CmdLogs},
      {"events", CmdEvents},
      {"exec", CmdExec},
      {"start", CmdOperate},
      {"stop", CmdOperate},
      {"restart", CmdOperate},
      {"rm", CmdOperate},
      {"console", CmdConsole},
      {"top", CmdTop},
      {"version", CmdVersion},
      {"screenshot", CmdScreenshot},
      {"usb", CmdUsb},
      {"display", CmdDisplay},
      {"history", CmdHistory},
      {"rollback", CmdRollback},
  };
  return kCommands;
}

// The bearer token from --token-file, without its trailing newline.
Status LoadBearer(Opts& o) {
  if (o.token_file.empty()) return Ok();
  SV_ASSIGN_OR_RETURN(o.bearer, ReadFile(o.token_file, 4096));
  while (!o.bearer.empty() && (o.bearer.back() == '\n' || o.bearer.back() == ' ')) {
    o.bearer.pop_back();
  }
  return Ok();
}

int Run(CLI::App& app, Opts& o) {
  if (auto st = LoadBearer(o); !st) return Fail(st.error());
  auto sub = app.get_subcommands();
  if (sub.empty()) {
    std::cout << app.help();
    return 2;
  }
  o.verb = sub[0]->get_name();
  auto client = api::Client::Create(o.endpoint, api::ClientOptions{o.bearer, 0});
  if (!client) return Fail(client.error());
  auto it = Commands().find(o.verb);
  if (it == Commands().end()) return Fail(Error(ErrorCode::kInternal, "no command " + o.verb));
  return it->second(*client, o);
}

CLI::Option* AddOutput(CLI::App* cmd, Opts& o, bool wide) {
  return cmd->add_option("-o,--output", o.output, wide ? "table, wide or json" : "table or json")
      ->check(CLI::IsMember(wide ? std::vector<std::string>{"table", "wide", "json"}
                                 : std::vector<std::string>{"table", "json"}));
}

void AddCommands(CLI::App& app, Opts& o) {
  auto* apply = app.add_subcommand("apply", "apply a store profile and wait until it converges");
  apply->add_option("-f,--file", o.file, "profile YAML")->required();
  apply->add_flag("--no-wait", o.no_wait, "return after the plan is accepted");
  apply->add_option("--timeout", o.timeout_s, "seconds to wait (convergence and trial)");
  apply->add_flag("--wait", o.wait_trial,
                  "also wait until the generation is committed (exit 0) or rolled back (30)");
  AddOutput(apply, o, false);
  auto* rollback = app.add_subcommand(
      "rollback", "apply an earlier generation again (default: the last committed one)");
  rollback->add_option("generation", o.generation, "its number (storevisor history)")
      ->check(CLI::Range(int64_t{1}, INT64_MAX));
  rollback->add_flag("--no-wait", o.no_wait, "return after the plan is accepted");
  rollback->add_flag("--wait", o.wait_trial, "also wait until it is committed or rolled back");
  rollback->add_option("--timeout", o.timeout_s, "seconds to wait");
  AddOutput(rollback, o, false);
  auto* history = app.add_subcommand("history", "list the profile's generations, newest first");
  history->add_option("-n,--limit", o.limit, "at most this many")->check(CLI::Range(1, 1000));
  AddOutput(history, o, false);
  auto* diff = app.add_subcommand("diff", "show what applying a profile would change");
  diff->add_option("-f,--file", o.file, "profile YAML")->required();
  AddOutput(diff, o, false);
  auto* gen =
      app.add_subcommand("generation", "what became of an apply (by number, key or digest)");
  gen->add_option("key", o.name, "its number, the apply's Idempotency-Key or the profile's digest")
      ->required();
  AddOutput(gen, o, false);
  AddOutput(app.add_subcommand("ps", "list workloads"), o, true);
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
  events->add_flag("-f,--follow", o.follow, "stream new events as they happen");
  events->add_option("--since", o.since, "after this event id");
  AddOutput(events, o, false);
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
#ifdef SV_HAVE_IMAGE_CLI
  // Parsed by the image store's own CLI before this app sees it (see Main); listed for --help.
  app.add_subcommand("image", "manage the image store (storevisor image --help)");
#endif
}

#ifdef SV_HAVE_IMAGE_CLI
// `storevisor [--socket S] [--token-file F] image ...`: the image store's own CLI; its rm
// asks the daemon first (image_rm.h). -1 when argv is not an image command.
int MaybeImageCommand(int argc, char** argv, Opts& o) {
  int i = 1;
  while (i + 1 < argc) {
    const std::string a = argv[i];
    if (a == "--socket" || a == "--endpoint") {
      o.endpoint = argv[i + 1];
    } else if (a == "--token-file") {
      o.token_file = argv[i + 1];
    } else {
      break;
    }
    i += 2;
  }
  if (i >= argc || std::string(argv[i]) != "image") return -1;
  std::vector<std::string> args(argv + i + 1, argv + argc);
  if (!IsImageRm(args)) return storevisor::image::RunImageCli(args);
  if (auto st = LoadBearer(o); !st) return Fail(st.error());
  return ImageRm(o.endpoint, o.bearer, args);
}
#endif

}  // namespace

int Main(int argc, char** argv) {
  Opts o;
  const char* env = std::getenv("STOREVISOR_SOCKET");
  o.endpoint = env != nullptr ? env : "/run/storevisor/storevisord.sock";
#ifdef SV_HAVE_IMAGE_CLI
  if (int rc = MaybeImageCommand(argc, argv, o); rc >= 0) return rc;
#endif
  CLI::App app{"storevisor: apply store profiles and manage their workloads"};
  app.add_option("--socket,--endpoint", o.endpoint, "unix socket path, or tcp:HOST:PORT")
      ->capture_default_str();
  app.add_option("--token-file", o.token_file, "bearer token for a TCP endpoint");
  app.require_subcommand(1);
  app.set_version_flag("--version", "storevisor " SV_VERSION);
  AddCommands(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return Run(app, o);
}

}  // namespace storevisor::cli

int main(int argc, char** argv) { return storevisor::cli::Main(argc, argv); }
