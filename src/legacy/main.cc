// storevisor-legacy: start, inspect, control and stop legacy VMs (docs/legacy-vm.md).
// Mirrors storevisor-vm's detached contract so storevisord can drive both the same way.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/files.h"
#include "legacy/legacy.h"

namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using storevisor::Error;
using storevisor::ErrorCode;
using storevisor::legacy::LegacyVm;

// Statuses of our own, beyond docs/exit-codes.md (same numbers as storevisor-vm's fates).
constexpr int kExitKilled = 21;       // stop: the guest ignored the power button; killed
constexpr int kExitScreenBlank = 30;  // check-screen: nothing on the screen
constexpr int kExitTextMissing = 31;  // check-screen: the expected text was not read

struct Options {
  std::string config, state_dir, output, file, text, device_id, usb_id;
  bool detach = false;
  int timeout_s = 30;
  int wait_s = 0;
};

int Fail(const Error& e) {
  std::fprintf(stderr, "storevisor-legacy: error: %s\n", e.message().c_str());
  return storevisor::ExitCodeFor(e.code());
}

void Say(const std::string& msg) { std::fprintf(stderr, "storevisor-legacy: %s\n", msg.c_str()); }

void Print(const Options& o, const json& j, const std::string& human) {
  if (o.output == "json") {
    std::cout << j.dump() << std::endl;
  } else {
    std::cout << human << std::endl;
  }
}

storevisor::Result<storevisor::legacy::LegacyVmConfig> LoadConfig(const std::string& path) {
  auto text = storevisor::ReadFile(path, 1 << 20);
  if (!text) return std::move(text).error().Context("config");
  SV_ASSIGN_OR_RETURN(auto config, storevisor::legacy::ParseConfig(*text, path));
  SV_TRY_CTX(storevisor::legacy::Validate(config, storevisor::legacy::HostLimitsNow()), path);
  return config;
}

json StartedJson(const LegacyVm& vm, const std::optional<int64_t>& screen_ms) {
  return json{{"pid", vm.pid()},
              {"name", vm.config().name},
              {"qmp", vm.paths().qmp_socket},
              {"vnc", vm.meta().vnc},
              {"serial", vm.paths().serial_log},
              {"accel", storevisor::legacy::AccelName(vm.meta().accel)},
              {"accel_reason", vm.meta().accel_reason},
              {"screen_ms", screen_ms ? json(*screen_ms) : json(nullptr)}};
}

// Foreground run: wait for QEMU to end; SIGTERM/SIGINT become a clean stop.
int Supervise(LegacyVm& vm, int timeout_s) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  storevisor::UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  while (vm.Alive()) {
    signalfd_siginfo si{};
    if (sfd.valid() && ::read(sfd.get(), &si, sizeof si) == sizeof si) {
      Say("signal " + std::to_string(si.ssi_signo) + ": powering the guest down");
      auto r = vm.Stop(milliseconds(timeout_s * 1000));
      if (!r) return Fail(r.error());
      return r->killed ? kExitKilled : 0;
    }
    ::usleep(100 * 1000);
  }
  (void)storevisor::legacy::CleanupStateDir(vm.paths().state_dir);
  Say("guest ended");
  return 0;
}

int CmdRun(const Options& o) {
  auto config = LoadConfig(o.config);
  if (!config) return Fail(config.error());
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, s);
  if (!o.detach) ::sigprocmask(SIG_BLOCK, &set, nullptr);
  auto start = std::chrono::steady_clock::now();
  auto vm = LegacyVm::Start(*config, o.state_dir);
  if (!vm) return Fail(vm.error());
  Say("vm " + config->name + " started: pid " + std::to_string(vm->pid()) + ", accelerator " +
      std::string(storevisor::legacy::AccelName(vm->meta().accel)) + " (" +
      vm->meta().accel_reason + ")");
  std::optional<int64_t> screen_ms;
  if (!o.text.empty()) {
    auto seen = vm->WaitForScreenText(o.text, milliseconds(o.timeout_s * 1000));
    if (!seen) {
      (void)vm->Stop(milliseconds(0));
      return Fail(seen.error());
    }
    screen_ms =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
    Say("\"" + o.text + "\" on the screen after " + std::to_string(*screen_ms) + " ms");
  }
  if (o.detach) {
    Print(o, StartedJson(*vm, screen_ms),
          "VM " + config->name + " running: pid " + std::to_string(vm->pid()) + ", state in " +
              o.state_dir);
    return 0;
  }
  return Supervise(*vm, o.timeout_s);
}

int CmdStatus(const Options& o) {
  auto vm = LegacyVm::Attach(o.state_dir);
  if (!vm) {
    if (vm.error().code() != ErrorCode::kNotFound) return Fail(vm.error());
    Print(o, json{{"status", "shutdown"}, {"pid", nullptr}}, "shutdown");
    return 0;
  }
  auto status = vm->QueryStatus();
  if (!status) return Fail(status.error());
  json j{{"status", *status},
         {"pid", vm->pid()},
         {"name", vm->config().name},
         {"accel", storevisor::legacy::AccelName(vm->meta().accel)},
         {"accel_reason", vm->meta().accel_reason},
         {"vnc", vm->meta().vnc}};
  Print(
      o, j,
      *status + " (pid " + std::to_string(vm->pid()) + ", " + j["accel"].get<std::string>() + ")");
  return 0;
}

int CmdStop(const Options& o) {
  auto vm = LegacyVm::Attach(o.state_dir);
  if (!vm) {
    if (vm.error().code() != ErrorCode::kNotFound) return Fail(vm.error());
    auto cleaned = storevisor::legacy::CleanupStateDir(o.state_dir);
    if (!cleaned) return Fail(cleaned.error());
    Print(o, json{{"was_running", false}}, "not running");
    return 0;
  }
  auto r = vm->Stop(milliseconds(o.timeout_s * 1000));
  if (!r) return Fail(r.error());
  json j{{"was_running", r->was_running},
         {"clean", r->clean},
         {"killed", r->killed},
         {"took_ms", r->took.count()}};
  Print(o, j,
        r->killed ? "guest did not power off in " + std::to_string(o.timeout_s) + " s: killed"
                  : "guest powered off in " + std::to_string(r->took.count()) + " ms");
  return r->killed ? kExitKilled : 0;
}

// Attach, run one control action, report.
template <typename F>
int WithVm(const Options& o, F action) {
  auto vm = LegacyVm::Attach(o.state_dir);
  if (!vm) return Fail(vm.error());
  return action(*vm);
}

int CmdCheckScreen(const Options& o) {
  return WithVm(o, [&o](LegacyVm& vm) {
    storevisor::Result<storevisor::legacy::ScreenCheck> check =
        o.wait_s > 0 && !o.text.empty()
            ? vm.WaitForScreenText(o.text, milliseconds(o.wait_s * 1000))
            : vm.CheckScreen(o.text);
    if (!check)
      return check.error().code() == ErrorCode::kTimeout ? (Fail(check.error()), kExitTextMissing)
                                                         : Fail(check.error());
    json j{{"blank", check->blank}, {"matched", check->matched}, {"text", check->text}};
    std::string human = check->blank     ? "screen is blank"
                        : check->matched ? "screen OK"
                                         : "text not found on the screen";
    Print(o, j, human);
    if (check->blank) return kExitScreenBlank;
    return check->matched ? 0 : kExitTextMissing;
  });
}

int CmdEvents(const Options& o) {
  return WithVm(o, [&o](LegacyVm& vm) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      auto event = vm.NextEvent(milliseconds(200));
      if (!event) {
        // The socket closes when QEMU ends: that is the end of the stream, not an error.
        if (!vm.Alive()) return 0;
        return Fail(event.error());
      }
      if (*event) {
        std::cout << json{{"event", (*event)->name},
                          {"data", json::parse((*event)->data_json, nullptr, false)}}
                         .dump()
                  << std::endl;
      }
    }
    return 0;
  });
}

int Simple(const Options& o, const char* done, storevisor::Status (LegacyVm::*action)()) {
  return WithVm(o, [&](LegacyVm& vm) {
    auto s = (vm.*action)();
    if (!s) return Fail(s.error());
    Say(done);
    return 0;
  });
}

int CmdValidate(const Options& o) {
  auto config = LoadConfig(o.config);
  if (!config) return Fail(config.error());
  auto paths = storevisor::legacy::PathsFor(o.state_dir.empty() ? "STATE" : o.state_dir, *config);
  auto argv = storevisor::legacy::BuildCommandLine(*config, paths, storevisor::legacy::Accel::kTcg);
  Print(o, json{{"valid", true}, {"argv_tcg", argv}}, o.config + ": valid");
  return 0;
}

void Define(CLI::App& app, Options* o) {
  app.require_subcommand(1);
  auto* run = app.add_subcommand("run", "start a legacy VM");
  run->add_option("--config", o->config, "VM config (JSON)")->required();
  run->add_option("--state-dir", o->state_dir, "the VM's directory (sockets, overlays, OVMF vars)")
      ->required();
  run->add_flag("--detach", o->detach, "return once QEMU runs (it outlives this command)");
  run->add_option("--wait-text", o->text, "wait until OCR reads this text on the screen");
  run->add_option("--timeout", o->timeout_s,
                  "seconds for --wait-text, or per stop in the foreground");
  run->add_option("-o,--output", o->output, "json for machine-readable output");
  auto* validate = app.add_subcommand("validate", "check a config and print the QEMU command line");
  validate->add_option("--config", o->config)->required();
  validate->add_option("--state-dir", o->state_dir);
  validate->add_option("-o,--output", o->output);
  auto* status = app.add_subcommand("status", "state of a legacy VM");
  status->add_option("--state-dir", o->state_dir)->required();
  status->add_option("-o,--output", o->output);
  auto* stop = app.add_subcommand("stop", "ACPI power-down, kill after the timeout");
  stop->add_option("--state-dir", o->state_dir)->required();
  stop->add_option("--timeout", o->timeout_s, "seconds to wait for the guest to power off");
  stop->add_option("-o,--output", o->output);
  auto* shot = app.add_subcommand("screenshot", "save what the screen shows as PNG");
  shot->add_option("--state-dir", o->state_dir)->required();
  shot->add_option("file", o->file, "FILE.png")->required();
  auto* check = app.add_subcommand("check-screen", "screen health: not blank, and contains --text");
  check->add_option("--state-dir", o->state_dir)->required();
  check->add_option("--text", o->text, "text OCR must find");
  check->add_option("--wait", o->wait_s, "keep trying this many seconds");
  check->add_option("-o,--output", o->output);
  for (const char* name : {"reset", "pause", "resume"}) {
    app.add_subcommand(name, std::string(name) + " the VM")
        ->add_option("--state-dir", o->state_dir)
        ->required();
  }
  auto* attach = app.add_subcommand("usb-attach", "hot-plug a host USB device");
  attach->add_option("--state-dir", o->state_dir)->required();
  attach->add_option("--id", o->device_id, "QEMU device id (for usb-detach)")->required();
  attach->add_option("--usb", o->usb_id, "vendor:product, bus-port, or bus:address")->required();
  auto* detach = app.add_subcommand("usb-detach", "unplug a hot-plugged USB device");
  detach->add_option("--state-dir", o->state_dir)->required();
  detach->add_option("--id", o->device_id)->required();
  auto* events = app.add_subcommand("events", "print QMP events as JSON lines");
  events->add_option("--state-dir", o->state_dir)->required();
  events->add_option("--timeout", o->timeout_s, "seconds to listen");
}

int Dispatch(const CLI::App& app, const Options& o) {
  auto is = [&app](const char* name) { return app.got_subcommand(name); };
  if (is("run")) return CmdRun(o);
  if (is("validate")) return CmdValidate(o);
  if (is("status")) return CmdStatus(o);
  if (is("stop")) return CmdStop(o);
  if (is("check-screen")) return CmdCheckScreen(o);
  if (is("events")) return CmdEvents(o);
  if (is("reset")) return Simple(o, "reset", &LegacyVm::Reset);
  if (is("pause")) return Simple(o, "paused", &LegacyVm::Pause);
  if (is("resume")) return Simple(o, "resumed", &LegacyVm::Resume);
  if (is("screenshot")) {
    return WithVm(o, [&o](LegacyVm& vm) {
      auto s = vm.Screenshot(o.file);
      if (!s) return Fail(s.error());
      Say("screenshot saved to " + o.file);
      return 0;
    });
  }
  if (is("usb-attach")) {
    return WithVm(o, [&o](LegacyVm& vm) {
      auto s = vm.UsbAttach(o.device_id, o.usb_id);
      return s ? 0 : Fail(s.error());
    });
  }
  if (is("usb-detach")) {
    return WithVm(o, [&o](LegacyVm& vm) {
      auto s = vm.UsbDetach(o.device_id);
      return s ? 0 : Fail(s.error());
    });
  }
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"storevisor-legacy: legacy VMs (pc/q35, SeaBIOS/OVMF, VNC, USB pass-through)"};
  Options o;
  app.set_version_flag("--version", "storevisor-legacy " SV_VERSION);
  Define(app, &o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return Dispatch(app, o);
}
