// sv-init: PID 1 of Storevisor's guests. In the initramfs it mounts the kernel file
// systems, loads the modules listed in /etc/sv-modules (dependencies first, as computed
// at image build time; a virtio driver only when its device is there), names the
// virtio-serial ports under
// /dev/virtio-ports/ (there is no udev), then either starts the built-in agent or,
// with `sv.root=DEV` on the kernel command line, mounts DEV and moves into it to run
// Debian's qemu-guest-agent there. It reaps orphans, restarts the agent if it dies, keeps
// a root shell on the serial console ttyS0 (as a getty would; only the host's root reaches
// that console, through the VM's console socket), and powers off on SIGUSR2, on the ACPI
// power button, or reboots on SIGTERM. `sv.console=off` on the kernel command line leaves
// ttyS0 without a shell.
#include <dirent.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "guest/agent.h"

namespace {

void Log(const std::string& msg) {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  char line[512];
  int n = snprintf(line, sizeof line, "storevisor-init[%ld.%03ld]: %s\n",
                   static_cast<long>(ts.tv_sec), ts.tv_nsec / 1000000, msg.c_str());
  int fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!write(fd, line, std::min<int>(n, sizeof line - 1));
    close(fd);
  }
}

void MountFs(const char* type, const char* target, const char* opts = nullptr) {
  mkdir(target, 0755);
  if (mount(type, target, type, MS_NOSUID, opts) != 0 && errno != EBUSY) {
    Log(std::string("mount ") + target + ": " + strerror(errno));
  }
}

std::string ReadSmall(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Value of key=VALUE on the kernel command line, or "".
std::string CmdlineValue(const std::string& cmdline, const std::string& key) {
  std::istringstream in(cmdline);
  std::string tok;
  while (in >> tok) {
    if (tok.rfind(key + "=", 0) == 0) return tok.substr(key.size() + 1);
  }
  return "";
}

// True when the guest has PCI devices: pc/q35, and microvm with its PCIe bus (the agent's
// virtio-serial is there); a machine without a PCI bus has none.
bool HasPci() {
  DIR* d = opendir("/sys/bus/pci/devices");
  if (d == nullptr) return false;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n > 0;
}

// Device IDs of the virtio devices the transports found (/sys/bus/virtio/devices/*/device
// holds e.g. "0x0003"). The transport modules probe synchronously, so after they are
// loaded the set is complete.
std::set<long> VirtioDeviceIds() {
  std::set<long> ids;
  DIR* d = opendir("/sys/bus/virtio/devices");
  if (d == nullptr) return ids;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string id = ReadSmall(std::string("/sys/bus/virtio/devices/") + e->d_name + "/device");
    if (!id.empty()) ids.insert(std::strtol(id.c_str(), nullptr, 16));
  }
  closedir(d);
  return ids;
}

// Which lines of /etc/sv-modules a LoadModules call takes.
enum class ModulePhase { kBeforeAgent, kAfterAgent, kAll };

// Lines of /etc/sv-modules: PATH (always), pci:PATH (only on a PCI machine) and
// virtio:ID:PATH (only when a virtio device with that ID exists: a VM without a disk or
// a NIC does not pay for loading and initialising their drivers, ~20-40 ms each under
// TCG). What udev does with modaliases, without udev. A late: prefix puts a line in the
// phase after the agent has started (drivers that readiness does not need).
void LoadModules(ModulePhase phase) {
  std::ifstream list("/etc/sv-modules");
  std::string path;
  int loaded = 0;
  int skipped = 0;
  bool pci = HasPci();
  bool have_ids = false;
  std::set<long> present;
  while (std::getline(list, path)) {
    bool late = path.rfind("late:", 0) == 0;
    if (late) path = path.substr(5);
    if (phase != ModulePhase::kAll && late != (phase == ModulePhase::kAfterAgent)) continue;
    if (path.rfind("pci:", 0) == 0) {  // only needed on a PCI machine: skip the load time
      path = path.substr(4);
      if (!pci) {
        unlink(path.c_str());
        continue;
      }
    }
    if (path.rfind("virtio:", 0) == 0) {
      size_t colon = path.find(':', 7);
      if (colon == std::string::npos) continue;
      long id = std::strtol(path.substr(7, colon - 7).c_str(), nullptr, 10);
      if (!have_ids) {
        present = VirtioDeviceIds();
        have_ids = true;
      }
      path = path.substr(colon + 1);
      if (present.count(id) == 0) {
        ++skipped;
        unlink(path.c_str());
        continue;
      }
    }
    if (path.empty()) continue;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      Log("module " + path + ": " + strerror(errno));
      continue;
    }
    if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) {
      Log("module " + path + ": " + strerror(errno));
    } else {
      ++loaded;
    }
    close(fd);
    // Loaded (or failed): the file only holds guest memory from now on (the initramfs is
    // tmpfs, and virtio-mmio has no hot-plug that could want it again).
    unlink(path.c_str());
  }
  Log("loaded " + std::to_string(loaded) + " modules (" + std::to_string(skipped) +
      " skipped: no such virtio device)");
}

bool WriteSmall(const char* path, const std::string& value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  close(fd);
  return ok;
}

// sv.reporting=off (snapshots: see KernelCmdline): no free page reporting from now on. An
// order above the largest (MAX_ORDER 10) is never reached, so nothing is reported again.
void DisableReporting() {
  if (!WriteSmall("/sys/module/page_reporting/parameters/page_reporting_order", "11")) {
    Log("cannot switch free page reporting off");
  }
}

// Hands the memory the boot used and freed back to the host, once the agent runs. The
// balloon's free page reporting (QEMU then discards the pages) reports only free blocks
// of page_reporting_order (9: 2 MiB), and what the boot freed is scattered in smaller
// pieces: so, for this one pass, report every order, drop the boot's dentry/inode caches
// and compact, then put the order back (reporting 4 KiB pieces for ever would turn a busy
// guest's churn into host traffic). Measured: the host's RSS of an idle guest drops by
// ~11 MiB (docs/vm.md). A child process, so PID 1 keeps reaping; a no-op without a
// reporting balloon.
void TrimAfterBoot() {
  const char* order_file = "/sys/module/page_reporting/parameters/page_reporting_order";
  std::string order = ReadSmall(order_file);
  if (order.empty() || access("/sys/bus/virtio/drivers/virtio_balloon", F_OK) != 0) return;
  if (fork() != 0) return;
  usleep(200000);  // the host's first agent requests go first
  WriteSmall(order_file, "0");
  WriteSmall("/proc/sys/vm/drop_caches", "3");
  WriteSmall("/proc/sys/vm/compact_memory", "1");
  sleep(6);  // reporting runs 2 s after the frees (PAGE_REPORTING_DELAY), maybe twice
  WriteSmall(order_file, order);
  _exit(0);
}

// The late drivers, in a child at low priority so that the agent's first replies are not
// kept waiting for them. When it exits PID 1 opens the input devices (evdev, the power
// button) and starts the trim. -1 if fork fails (the drivers are then loaded here).
pid_t StartLateDrivers() {
  pid_t pid = fork();
  if (pid > 0) return pid;
  if (pid == 0) setpriority(PRIO_PROCESS, 0, 10);
  LoadModules(ModulePhase::kAfterAgent);
  if (pid == 0) _exit(0);
  return -1;
}

// Creates /dev/virtio-ports/NAME -> ../vportXpY for every named port (udev's job elsewhere).
int NamePorts() {
  mkdir("/dev/virtio-ports", 0755);
  int named = 0;
  DIR* d = opendir("/sys/class/virtio-ports");
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string name = ReadSmall(std::string("/sys/class/virtio-ports/") + e->d_name + "/name");
    if (name.empty() || name.find('/') != std::string::npos) continue;
    std::string link = "/dev/virtio-ports/" + name;
    if (symlink((std::string("../") + e->d_name).c_str(), link.c_str()) == 0 || errno == EEXIST) {
      ++named;
    }
  }
  closedir(d);
  return named;
}

// The guest agent's virtio-serial port, as NamePorts names it.
constexpr const char* kAgentPort = "/dev/virtio-ports/org.qemu.guest_agent.0";
constexpr const char* kBuiltinAgent = "/sbin/sv-agent";

void WaitForAgentPort() {
  for (int i = 0; i < 300; ++i) {  // up to 3 s: modules bind asynchronously
    NamePorts();
    if (access(kAgentPort, F_OK) == 0) return;
    usleep(10000);
  }
  Log("no org.qemu.guest_agent.0 port: the agent will wait for it");
}

bool WaitForDevice(const std::string& dev) {
  for (int i = 0; i < 500; ++i) {
    if (access(dev.c_str(), F_OK) == 0) return true;
    usleep(10000);
  }
  return false;
}

// Mounts the root disk and makes it / (what switch_root does; the initramfs stays
// allocated, a few MiB).
bool EnterRoot(const std::string& dev, bool ro) {
  if (!WaitForDevice(dev)) {
    Log("root device " + dev + " did not appear");
    return false;
  }
  mkdir("/newroot", 0755);
  if (mount(dev.c_str(), "/newroot", "ext4", ro ? MS_RDONLY : 0, nullptr) != 0) {
    Log("mount " + dev + ": " + strerror(errno));
    return false;
  }
  for (const char* m : {"/dev", "/proc", "/sys"}) {
    std::string target = std::string("/newroot") + m;
    mkdir(target.c_str(), 0755);
    if (mount(m, target.c_str(), nullptr, MS_MOVE, nullptr) != 0) {
      Log(std::string("move ") + m + ": " + strerror(errno));
    }
  }
  if (chdir("/newroot") != 0 || mount(".", "/", nullptr, MS_MOVE, nullptr) != 0 ||
      chroot(".") != 0 || chdir("/") != 0) {
    Log(std::string("switch root: ") + strerror(errno));
    return false;
  }
  mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, nullptr);
  return true;
}

pid_t StartAgent(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setsid();
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    char env0[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    char* envp[] = {env0, nullptr};
    if (argv[0] == kBuiltinAgent) {
      // Our own agent is this very binary: run it in the forked child, without an exec
      // that would map, fault in and start the same program again (~30 ms of the boot
      // under TCG, all of it before the first reply).
      environ = envp;
      prctl(PR_SET_NAME, "sv-agent");  // what ps and pidof show, as with the exec
      _exit(storevisor::guest::AgentMain(static_cast<int>(argv.size()), args.data()));
    }
    execve(args[0], args.data(), envp);
    _exit(127);
  }
  Log("agent " + argv[0] + " started as pid " + std::to_string(pid));
  return pid;
}

// /bin/sh on the serial console, in its own session with ttyS0 as its controlling terminal
// (so Ctrl-C reaches what runs in it); -1 when the guest has no ttyS0 or no shell.
pid_t StartConsoleShell() {
  if (access("/dev/ttyS0", F_OK) != 0 || access("/bin/sh", X_OK) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setsid();
    int fd = open("/dev/ttyS0", O_RDWR);  // the session leader's first tty: its ctty
    if (fd < 0) _exit(127);
    ioctl(fd, TIOCSCTTY, 0);
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2) close(fd);
    char sh[] = "/bin/sh";
    char* args[] = {sh, nullptr};
    char env0[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    char env1[] = "HOME=/";
    char env2[] = "TERM=vt100";
    char* envp[] = {env0, env1, env2, nullptr};
    execve(sh, args, envp);
    _exit(127);
  }
  return pid;
}

[[noreturn]] void PowerOff(int how) {
  Log(how == RB_AUTOBOOT ? "rebooting" : "powering off");
  kill(-1, SIGTERM);
  usleep(200000);
  kill(-1, SIGKILL);
  sync();
  mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY, nullptr);
  reboot(how);
  for (;;) pause();
}

// Opens /dev/input/event* so a press of the ACPI power button can power off.
std::vector<int> OpenInputs() {
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i) {
    std::string p = "/dev/input/event" + std::to_string(i);
    int fd = open(p.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) fds.push_back(fd);
  }
  return fds;
}

bool PowerKeyPressed(int fd) {
  input_event ev[16];
  ssize_t n = read(fd, ev, sizeof ev);
  for (ssize_t i = 0; n > 0 && i < n / static_cast<ssize_t>(sizeof(input_event)); ++i) {
    if (ev[i].type == EV_KEY && ev[i].code == KEY_POWER && ev[i].value == 1) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // One binary for both (see agent_main.cc): /sbin/sv-agent links to it.
  std::string_view self = argc > 0 ? argv[0] : "";
  if (self.substr(self.rfind('/') + 1) == "sv-agent") {
    return storevisor::guest::AgentMain(argc, argv);
  }
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGUSR1, SIGUSR2, SIGINT}) sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  MountFs("proc", "/proc");
  MountFs("sysfs", "/sys");
  MountFs("devtmpfs", "/dev");
  Log("started");
  std::string cmdline = ReadSmall("/proc/cmdline");
  // sv.reporting=off (a snapshot's VM): every driver before the agent, because loading
  // virtio_balloon resets page_reporting_order (DisableReporting must come after it) and
  // the snapshot is taken as soon as the agent answers.
  bool reporting = CmdlineValue(cmdline, "sv.reporting") != "off";
  LoadModules(reporting ? ModulePhase::kBeforeAgent : ModulePhase::kAll);
  std::string root = CmdlineValue(cmdline, "sv.root");
  if (!root.empty()) {
    if (!EnterRoot(root, CmdlineValue(cmdline, "sv.rootmode") == "ro")) PowerOff(RB_POWER_OFF);
  }
  WaitForAgentPort();
  std::vector<std::string> agent = {kBuiltinAgent, kAgentPort};
  if (!root.empty()) {
    agent = {"/usr/sbin/qemu-ga", "--method=virtio-serial", std::string("--path=") + kAgentPort};
  }
  if (!reporting) DisableReporting();
  pid_t agent_pid = StartAgent(agent);
  Log("ready for the agent");
  std::vector<int> inputs;  // opened once the late drivers (evdev, button) are in
  auto after_late_drivers = [&] {
    inputs = OpenInputs();
    if (reporting) TrimAfterBoot();
  };
  pid_t late_pid = reporting ? StartLateDrivers() : -1;
  if (late_pid < 0) after_late_drivers();
  const bool console_shell = CmdlineValue(cmdline, "sv.console") != "off";
  pid_t shell_pid = console_shell ? StartConsoleShell() : -1;
  for (;;) {
    std::vector<pollfd> fds{{sfd, POLLIN, 0}};
    for (int fd : inputs) fds.push_back({fd, POLLIN, 0});
    poll(fds.data(), fds.size(), -1);
    for (size_t i = 1; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLIN) && PowerKeyPressed(fds[i].fd)) PowerOff(RB_POWER_OFF);
    }
    signalfd_siginfo si{};
    if (!(fds[0].revents & POLLIN) || read(sfd, &si, sizeof si) != sizeof si) continue;
    if (si.ssi_signo == SIGUSR2 || si.ssi_signo == SIGUSR1) PowerOff(RB_POWER_OFF);
    if (si.ssi_signo == SIGTERM) PowerOff(RB_AUTOBOOT);
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid == agent_pid) {
        Log("agent exited (status " + std::to_string(status) + "), restarting");
        sleep(1);
        agent_pid = StartAgent(agent);
      } else if (pid == late_pid) {
        late_pid = -1;
        after_late_drivers();
      } else if (pid == shell_pid) {
        sleep(1);  // `exit` in the console shell: a new one, as a getty respawns
        shell_pid = StartConsoleShell();
      }
    }
  }
}
