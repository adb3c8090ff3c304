// Storevisor's VM engine: the one public header of src/vm.
//
// It starts, controls and supervises QEMU `-M microvm` guests: a validated VM config
// (VmConfig, from JSON), the accelerator choice (KVM only where it can run a stock
// kernel, else multi-threaded TCG), a pure QEMU command-line builder, our own QMP and
// guest-agent clients, and the lifecycle of a QEMU process that runs detached in its
// own session so that whoever started it can exit and re-attach later through the
// sockets in its state directory (qemu.pid, qmp.sock, agent.sock, console.log).
// Snapshots save a guest booted to readiness and restore it much faster than a boot.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/json_stream.h"
#include "common/unique_fd.h"

namespace storevisor::vm {

using Millis = std::chrono::milliseconds;

// ---------------------------------------------------------------------------------
// Configuration

enum class AccelMode { kAuto, kKvm, kTcg };
enum class Accel { kKvm, kTcg };
std::string_view AccelName(Accel a);

struct DiskConfig {
  std::string path;
  bool readonly = false;
  std::string format = "raw";  // raw | qcow2
};

struct NetConfig {
  std::string tap;  // an existing tap device (created by storevisord's network layer)
  std::string mac;  // empty: QEMU picks one
};

struct SerialConfig {
  enum class Kind { kStdout, kFile, kNone } kind = Kind::kStdout;
  std::string path;  // for kFile
};

struct VmConfig {
  std::string name = "vm";
  std::string kernel;   // bzImage or PVH ELF vmlinux
  std::string initrd;   // optional
  std::string cmdline;  // appended to the engine's own kernel arguments
  int cpus = 1;
  uint64_t memory_mib = 256;
  std::vector<DiskConfig> disks;
  std::optional<int> root_disk;  // index into disks: the guest's root (runs qemu-ga there)
  std::vector<NetConfig> nets;
  SerialConfig serial;
  // Optional: the serial port is also a unix socket (QEMU server, no wait) that one client at
  // a time attaches to for input and output; the console file still gets all output (QEMU's
  // chardev logfile), attached or not. Empty: the serial port goes to the file only.
  std::string console_socket;
  std::string qmp_path;  // extra place for the QMP socket (foreground runs); optional
  AccelMode accel = AccelMode::kAuto;
  uint64_t tcg_tb_size_mib = 16;  // TCG translation cache: most of QEMU's RSS under TCG
  // Guest RAM mergeable by KSM (MADV_MERGEABLE); on request only, because a mergeable VM
  // switches the host's ksmd on (a host-wide change).
  bool mem_merge = false;
  bool balloon = true;  // virtio-balloon with free page reporting
  bool rng = true;      // virtio-rng
  // The guest kernel's tracefs (/sys/kernel/tracing: ftrace, kprobe and trace events). Off
  // by default: building its ~10000 files costs ~0.2 s of boot and ~9 MiB of guest slab
  // under TCG (docs/vm.md); on for a guest that is to be traced from inside.
  bool guest_tracing = false;
  int ready_timeout_s = 30;  // boot watchdog: the agent must answer by then
  int stop_timeout_s = 10;   // per shutdown stage
  std::string qemu = "qemu-system-x86_64";
  std::string ram_file;  // when set, guest RAM is a shared file (snapshots)

  nlohmann::json ToJson() const;
};

// Parses and validates a VM config. `source` names it in errors
// ("vm.json: disks[1].path: ..."). Relative paths resolve against base_dir.
Result<VmConfig> ParseVmConfig(std::string_view text, const std::string& source,
                               const std::string& base_dir = "");
// Checks a config against the host (files exist, memory fits); errors name the field.
Status ValidateForHost(const VmConfig& config, uint64_t host_mem_mib);
// MemTotal from /proc/meminfo (or the given file), in MiB.
Result<uint64_t> HostMemoryMib(const std::string& meminfo = "/proc/meminfo");

// ---------------------------------------------------------------------------------
// Accelerator

struct AccelChoice {
  Accel accel = Accel::kTcg;
  std::string reason;
  // Under TCG the guest's TSC ticks at the host's rate; passing it (tsc_early_khz=)
  // spares the guest's PIT calibration, which fails on a loaded host and then hangs
  // the boot. 0 when unknown (or under KVM, where kvm-clock does this).
  uint64_t tsc_khz = 0;
};

// Where detection looks; tests point it at fake trees.
struct HostPaths {
  std::string cpuinfo = "/proc/cpuinfo";
  std::string dev_kvm = "/dev/kvm";
  std::string kvm_pvm_module = "/sys/module/kvm_pvm";
};

// KVM only when the CPU has vmx/svm, /dev/kvm opens read-write, and kvm_pvm (which
// runs only PVM-built kernels) is not the provider. A forced mode is honoured and
// said so in the reason.
AccelChoice ChooseAccel(AccelMode mode, const HostPaths& paths = {});

// ---------------------------------------------------------------------------------
// QEMU command line (pure: no I/O)

struct RuntimePaths {
  std::string qmp_socket;
  std::string agent_socket;
  std::string pidfile;
  std::string console_log;  // where the serial console goes
  bool incoming = false;    // -incoming defer (restore from a snapshot)
};

// The engine's own kernel arguments (console, panic, clock, root for root_disk).
std::string KernelCmdline(const VmConfig& config, const AccelChoice& accel);
// The host's TSC rate from cpuinfo's "cpu MHz" (0 when absent).
uint64_t HostTscKhz(const std::string& cpuinfo = "/proc/cpuinfo");
std::vector<std::string> BuildQemuArgv(const VmConfig& config, const AccelChoice& accel,
                                       const RuntimePaths& paths);

// ---------------------------------------------------------------------------------
// Untrusted JSON stream (QMP and agent input): common/json_stream.h, shared with the
// guest agent.

using storevisor::JsonLimits;
using storevisor::JsonStream;

// ---------------------------------------------------------------------------------
// QMP client

struct QmpEvent {
  std::string name;
  nlohmann::json data;
};

class QmpClient {
 public:
  // Connects, reads the greeting and negotiates capabilities (qmp_capabilities).
  static Result<QmpClient> Connect(const std::string& socket_path, Millis timeout);
  // Takes an already connected socket (tests use a socketpair).
  static Result<QmpClient> FromFd(UniqueFd fd, Millis timeout);

  // Runs a command; returns its "return" value. A QMP error becomes kFailedPrecondition
  // with QEMU's class and description; no answer in time is kTimeout; a closed socket
  // is kUnavailable. Events that arrive meanwhile are queued.
  Result<nlohmann::json> Execute(const std::string& command,
                                 const nlohmann::json& arguments = nlohmann::json::object(),
                                 Millis timeout = Millis(5000));
  // Like Execute, passing fd with SCM_RIGHTS (for getfd).
  Result<nlohmann::json> ExecuteWithFd(const std::string& command, const nlohmann::json& arguments,
                                       int fd, Millis timeout);
  // The next event (queued or read within timeout), or nullopt on timeout.
  Result<std::optional<QmpEvent>> WaitEvent(Millis timeout);
  // Waits for an event with this name, keeping others queued.
  Result<QmpEvent> WaitForEvent(const std::string& name, Millis timeout);
  const nlohmann::json& greeting() const { return greeting_; }
  int fd() const { return fd_.get(); }

 private:
  explicit QmpClient(UniqueFd fd) : fd_(std::move(fd)) {}
  Status Send(const nlohmann::json& msg, int pass_fd);
  // Reads one message (within deadline); kTimeout when none came.
  Result<nlohmann::json> ReadMessage(std::chrono::steady_clock::time_point deadline);
  UniqueFd fd_;
  JsonStream stream_;
  std::deque<QmpEvent> events_;
  nlohmann::json greeting_;
  uint64_t next_id_ = 1;
};

// ---------------------------------------------------------------------------------
// Guest agent client (qemu-ga protocol over the virtio-serial chardev socket)

struct ExecResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

class AgentClient {
 public:
  static Result<AgentClient> Connect(const std::string& socket_path, Millis timeout);
  static AgentClient FromFd(UniqueFd fd);

  // guest-sync-delimited: sends 0xFF and a random id, drops everything until the reply
  // with that id. Success means the agent is alive and the stream is in step.
  Status Sync(Millis timeout);
  Result<nlohmann::json> Execute(const std::string& command,
                                 const nlohmann::json& arguments = nlohmann::json::object(),
                                 Millis timeout = Millis(5000));
  // guest-shutdown: there is no reply on success (as with qemu-ga).
  Status Shutdown(const std::string& mode = "powerdown");
  // guest-exec + polling guest-exec-status until the command ends or timeout. The poll
  // delay starts at 10 ms and doubles up to max_poll.
  Result<ExecResult> Exec(const std::vector<std::string>& argv, Millis timeout,
                          const std::string& input = "", Millis max_poll = Millis(200));

 private:
  explicit AgentClient(UniqueFd fd) : fd_(std::move(fd)) {}
  Status SendRaw(std::string_view bytes);
  Result<nlohmann::json> ReadMessage(std::chrono::steady_clock::time_point deadline);
  UniqueFd fd_;
  JsonStream stream_{JsonLimits{.max_message = 48u << 20, .max_depth = 32, .max_queued = 64}};
  uint64_t sync_seed_ = 0;
};

// Base64 for guest-exec payloads; nullopt on invalid input.
std::optional<std::string> DecodeBase64(std::string_view in);
std::string EncodeBase64(std::string_view in);

// ---------------------------------------------------------------------------------
// QEMU processes: start, readiness, stop, re-attach

// How a guest ended; the CLI maps it to its exit status (docs/vm.md).
enum class GuestFate {
  kPoweredOff,  // clean shutdown (guest-initiated or ours)   -> 0
  kReset,       // the guest rebooted (QEMU runs -no-reboot)   -> 20
  kKilled,      // did not stop in time: killed by us          -> 21
  kQemuDied,    // QEMU ended on its own without a clean stop  -> 22
  kPanicked,    // the guest kernel panicked (pvpanic)          -> 23
};
int ExitStatusFor(GuestFate fate);
std::string_view GuestFateName(GuestFate fate);

struct StateDir {
  std::string dir;
  std::string pidfile() const { return dir + "/qemu.pid"; }
  std::string qmp() const { return dir + "/qmp.sock"; }
  std::string agent() const { return dir + "/agent.sock"; }
  std::string console() const { return dir + "/console.log"; }
  std::string info() const { return dir + "/vm.json"; }  // config + accel, for status
};

struct StartOptions {
  StateDir state;
  bool detach = false;                  // own session, survives us; else dies with us
  std::string snapshot_dir;             // restore from this snapshot instead of booting
  std::vector<std::string> qemu_extra;  // appended (tests, bench)
  bool leave_host_ksm = false;          // bench: keep the host's ksmd as it is for both sides
};

struct StartedVm {
  pid_t pid = -1;
  AccelChoice accel;
  std::optional<int64_t> ready_ms;  // from spawn to the agent answering
};

class Machine {
 public:
  // Spawns QEMU for config. Fails cleanly (nothing left behind) on bad input or if
  // QEMU exits early, with QEMU's own message in the error.
  static Result<Machine> Start(const VmConfig& config, const StartOptions& options);
  // Re-attaches to a running QEMU from its state directory.
  static Result<Machine> Attach(const StateDir& state);

  Machine(Machine&&) noexcept;
  Machine& operator=(Machine&&) noexcept;
  ~Machine();

  // Waits until the agent answers (boot watchdog: kTimeout after timeout, kUnavailable
  // if QEMU died, with the console's last lines).
  // `cancelled`, if given, is polled: true aborts with kCancelled (a stop signal).
  Result<int64_t> WaitReady(Millis timeout, const std::function<bool()>& cancelled = {});
  // Clean stop: agent guest-shutdown, then ACPI power button, then SIGKILL; each stage
  // waits stage_timeout. Removes the sockets and the pidfile.
  Result<GuestFate> Stop(Millis stage_timeout);
  // Waits for QEMU to end by itself (or until timeout); returns its fate.
  Result<std::optional<GuestFate>> WaitExit(std::optional<Millis> timeout);
  // Leaves QEMU running when this object goes away.
  void Release();

  pid_t pid() const { return pid_; }
  const AccelChoice& accel() const { return accel_; }
  QmpClient* qmp() { return qmp_ ? &*qmp_ : nullptr; }
  Result<AgentClient*> agent(Millis timeout);
  // Closes our agent connection: QEMU's chardev takes one client at a time, so a
  // supervising `run` lets go once ready and `storevisor-vm exec` can connect.
  void DropAgent() { agent_.reset(); }
  const StateDir& state() const { return state_; }
  int64_t spawn_ms() const { return spawn_ms_; }
  // What Start did to the host's KSM ("" when nothing): e.g. "switched on (was 0)".
  const std::string& host_ksm() const { return host_ksm_; }
  // Bytes of QEMU's boot-only file copies handed back after readiness (TrimBootCopies).
  uint64_t trimmed_bytes() const { return trimmed_bytes_; }

 private:
  Machine() = default;
  void KillAndClean();
  Result<GuestFate> FateAfterExit();
  void NoteEvent(const QmpEvent& ev);  // SHUTDOWN reason, GUEST_PANICKED
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool owned_ = false;     // kill on destruction unless released
  bool is_child_ = false;  // we can reap it
  AccelChoice accel_;
  StateDir state_;
  std::optional<QmpClient> qmp_;
  std::optional<AgentClient> agent_;
  std::optional<std::string> shutdown_reason_;
  std::chrono::steady_clock::time_point spawned_at_;
  int64_t spawn_ms_ = 0;
  std::vector<std::string> boot_files_;  // kernel and initrd: trimmed once ready
  std::string host_ksm_;
  uint64_t trimmed_bytes_ = 0;
  bool panicked_ = false;  // GUEST_PANICKED seen
};

// ---------------------------------------------------------------------------------
// Host integration

struct KsmChange {
  std::string previous;  // the run file's value before ("0", "1", "2")
  bool switched_on = false;
};
// KSM only merges what ksmd scans: a VM that asks for mergeable memory (mem_merge)
// needs ksmd running. Writes 1 to run_file when it holds 0; leaves 1 and 2 (unmerge in
// progress: an operator's decision) alone. kPermissionDenied/kNotFound when it cannot.
Result<KsmChange> EnsureHostKsm(const std::string& run_file = "/sys/kernel/mm/ksm/run");

// QEMU keeps a private file-backed copy of the kernel's ELF segments and of the initrd
// only to reload them on a guest reset, which -no-reboot turns into an exit. Once the
// guest is ready, asks the kernel to reclaim those pages from QEMU (process_madvise
// MADV_PAGEOUT on the mappings of `files`; clean file pages, so nothing is lost: a
// later access reads them back). Returns the bytes of the ranges handed over.
Result<uint64_t> TrimBootCopies(pid_t pid, const std::vector<std::string>& files);

// Counters for metrics (storevisor-vm status -o json): QMP query-stats (KVM's
// counters; empty under TCG), vCPU threads with their CPU time, balloon and memory
// sizes, and QEMU's RSS from /proc. Fields QEMU lacks are left out.
Result<nlohmann::json> QemuCounters(QmpClient& qmp, pid_t pid);

// Reads the last `lines` lines of a console log (for error messages).
std::string ConsoleTail(const std::string& path, int lines = 8);

// ---------------------------------------------------------------------------------
// Snapshots

// The machine a snapshot restores into (devices, buses, kernel arguments) as this build
// makes it. A restore needs the very same machine, so the number goes up with every change
// to it; snapshots of another number are refused as stale (storevisord, which caches
// snapshots, keys them by storevisor-vm's file stamp instead). 2: the agent's
// virtio-serial on PCIe, noreplace-smp.
inline constexpr int kSnapshotMachine = 2;

struct SnapshotInfo {
  std::string dir;
  nlohmann::json manifest;  // digests of kernel, initrd, disks, config; sizes; times
};

// Boots config to readiness in a scratch state dir, pauses it, saves its state with
// x-ignore-shared migration (guest RAM stays in DIR/ram, mapped at restore) and writes
// DIR/manifest.json. The VM is stopped afterwards.
Result<SnapshotInfo> CreateSnapshot(const VmConfig& config, const std::string& dir,
                                    const StateDir& scratch);
// Checks that the snapshot was made from exactly these inputs; kFailedPrecondition
// naming what changed otherwise.
Status CheckSnapshot(const VmConfig& config, const std::string& dir);
// The config to restore with: config plus the snapshot's RAM file.
Result<VmConfig> SnapshotConfig(const VmConfig& config, const std::string& dir);

// sha256 of a file, hex (streamed; used for snapshot manifests).
Result<std::string> FileSha256(const std::string& path);

}  // namespace storevisor::vm
