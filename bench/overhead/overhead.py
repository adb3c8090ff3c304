#!/usr/bin/python3
"""What consolidation costs: the same workloads natively, in a Storevisor container and a
Storevisor microVM (both placed by a store profile through a private storevisord), and, as
peers in the same run, in a podman container and a plain QEMU `pc` guest.

Workloads (Debian packages, the same files in every environment: bench/overhead/image.sh):
hpcc (HPL, STREAM, RandomAccess; Open MPI), pixz on a fixed 24 MiB input, sockperf (TCP and
UDP round trip), iperf3 (throughput and CPU cycles per byte, sender + receiver), fio (4k random
read, 1 MiB sequential write, direct I/O) on a volume (containers) or a virtio disk (VMs).

Each figure is the mean of --runs runs (environments interleaved within a run), with its
standard deviation and its departure from native in percent. Writes results.csv,
samples.csv, table.md and plots/<metric>.{png,svg} into --out. See docs/overhead.md.
Run through bench/overhead/run.sh (builds what it needs); root only.
"""
import argparse
import base64
import csv
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Names, addresses and ports distinct from the e2e tests' and the demo's.
NET_NAME = "ovh"  # bridge sv-ovh
NET_SUBNET = "10.89.93.0/24"
NFT_TABLE = "sv-ovh-bench"
PC_BRIDGE = "svovh-pc"
PC_TAP = "svovh-pct0"
PC_HOST_ADDR = "10.89.94.1"
PC_GUEST_ADDR = "10.89.94.2"
PORT_TCP_RTT, PORT_UDP_RTT, PORT_IPERF = 11111, 11112, 15201
PODMAN_NAME = "ovh-bench-podman"
PODMAN_NET = "ovh-bench"
PODMAN_SUBNET = "10.89.95.0/24"

MPI_ENV = ("export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
           "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 "
           "HOME=/tmp PATH=/usr/sbin:/usr/bin:/sbin:/bin\n")

# metric -> (unit, higher is better)
METRICS = {
    "HPL": ("GFLOPS", True),
    "STREAM Copy": ("GB/s", True),
    "STREAM Scale": ("GB/s", True),
    "STREAM Add": ("GB/s", True),
    "STREAM Triad": ("GB/s", True),
    "RandomAccess": ("GUPS", True),
    "pixz": ("MB/s", True),
    "TCP round trip (host)": ("us", False),
    "UDP round trip (host)": ("us", False),
    "TCP bulk (host)": ("Gbit/s", True),
    "TCP cycles/byte (host)": ("cycles/B", False),
    "TCP round trip (w2w)": ("us", False),
    "UDP round trip (w2w)": ("us", False),
    "TCP bulk (w2w)": ("Gbit/s", True),
    "TCP cycles/byte (w2w)": ("cycles/B", False),
    "fio 4k randread": ("kIOPS", True),
    "fio 1M seq write": ("MB/s", True),
}
WORKLOAD_METRICS = {
    "hpcc": ["HPL", "STREAM Copy", "STREAM Scale", "STREAM Add", "STREAM Triad", "RandomAccess"],
    "xz": ["pixz"],
    "net": ["TCP round trip (host)", "UDP round trip (host)", "TCP bulk (host)",
            "TCP cycles/byte (host)"],
    "w2w": ["TCP round trip (w2w)", "UDP round trip (w2w)", "TCP bulk (w2w)",
            "TCP cycles/byte (w2w)"],
    "fio": ["fio 4k randread", "fio 1M seq write"],
}


class BenchError(Exception):
    pass


@dataclass
class Sizes:
    hpl_n: int
    xz_mib: int
    fio_mib: int
    seconds: int  # each network and fio test
    timeout: int  # each command in the environment
    mpi_procs: int = 1  # hpcc's MPI processes

    def label(self):
        return f"HPL N={self.hpl_n} ({self.mpi_procs} MPI process(es)), xz {self.xz_mib} MiB"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg():
    return float(Path("/proc/loadavg").read_text().split()[0])


def run(argv, timeout=120, check=True, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise BenchError(f"{' '.join(map(str, argv))[:200]}: status {p.returncode}: "
                         f"{(p.stderr or p.stdout)[-800:]}")
    return p


def cpu_hz():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) * 1e6
    return 1e9


def proc_cpu_s(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def detect_accel():
    """The rule of src/vm/accel.cc: KVM only with VT-x/AMD-V, no kvm_pvm, /dev/kvm rw."""
    flags = Path("/proc/cpuinfo").read_text()
    if not re.search(r"\b(vmx|svm)\b", flags):
        return "tcg", "the CPU has no VT-x/AMD-V"
    if Path("/sys/module/kvm_pvm").exists():
        return "tcg", "/dev/kvm is kvm_pvm (runs only PVM guests)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "/dev/kvm cannot be opened read-write"
    return "kvm", "VT-x/AMD-V and /dev/kvm"


# ---- the workloads, as shell scripts run inside an environment --------------------------

def hpccinf(n, np_):
    nb = 64 if n >= 256 else 32
    return (
        "HPLinpack benchmark input file\nstorevisor bench/overhead\nHPL.out output\n"
        "8 device out\n1 # of problems sizes (N)\n"
        f"{n} Ns\n1 # of NBs\n{nb} NBs\n0 PMAP\n1 # of process grids\n1 Ps\n{np_} Qs\n"
        "16.0 threshold\n1 # of panel fact\n2 PFACTs\n1 # of recursive stopping criterium\n"
        "4 NBMINs\n1 # of panels in recursion\n2 NDIVs\n1 # of recursive panel fact.\n"
        "1 RFACTs\n1 # of broadcast\n1 BCASTs\n1 # of lookahead depth\n1 DEPTHs\n2 SWAP\n"
        "64 swapping threshold\n0 L1\n0 U\n1 Equilibration\n8 memory alignment\n"
        "##### This line (no. 32) is ignored (it serves as a separator). ######\n"
        "0 Number of additional problem sizes for PTRANS\n1200 values of N\n"
        "0 number of additional blocking sizes for PTRANS\n40 values of NB\n")


def hpcc_script(s: Sizes, np_):
    return (MPI_ENV + 'd="$W/hpcc.$$"; mkdir -p "$d" && cd "$d" || exit 1\n'
            f"cat > hpccinf.txt <<'EOF'\n{hpccinf(s.hpl_n, np_)}EOF\n"
            f"mpirun --bind-to none -np {np_} --mca btl self,vader --mca mpi_yield_when_idle 1 "
            "hpcc >/dev/null 2>mpi.err "
            "|| { tail -5 mpi.err >&2; exit 1; }\n"
            "grep -E '^(HPL_Tflops|StarSTREAM_(Copy|Scale|Add|Triad)|MPIRandomAccess_GUPs)=' "
            'hpccoutf.txt; cd /; rm -rf "$d"\n')


def parse_hpcc(out):
    kv = dict(re.findall(r"^(\w+)=([-0-9.eE+]+)\s*$", out, re.M))
    try:
        return {
            "HPL": float(kv["HPL_Tflops"]) * 1000,
            "STREAM Copy": float(kv["StarSTREAM_Copy"]),
            "STREAM Scale": float(kv["StarSTREAM_Scale"]),
            "STREAM Add": float(kv["StarSTREAM_Add"]),
            "STREAM Triad": float(kv["StarSTREAM_Triad"]),
            "RandomAccess": float(kv["MPIRandomAccess_GUPs"]),
        }
    except (KeyError, ValueError) as e:
        raise BenchError(f"hpcc output without {e}: {out[-500:]}") from None


def xz_script(s: Sizes, np_):
    # The input is copied first (page cache, not the disk, in every environment); the clock
    # is read inside the environment, so starting the command is not counted.
    return (f'head -c {s.xz_mib << 20} "$IN" > "$W/xz-in.$$" && cat "$W/xz-in.$$" >/dev/null\n'
            's=$(date +%s%N)\n'
            f'pixz -t -p {np_} < "$W/xz-in.$$" > /dev/null || exit 1\n'
            'e=$(date +%s%N)\nrm -f "$W/xz-in.$$"\n'
            f'echo "xz_bytes={s.xz_mib << 20} xz_ns=$((e - s))"\n')


def parse_xz(out):
    m = re.search(r"xz_bytes=(\d+) xz_ns=(\d+)", out)
    if not m:
        raise BenchError(f"pixz output: {out[-300:]}")
    return {"pixz": int(m.group(1)) / 1e6 / (int(m.group(2)) / 1e9)}


def fio_script(s: Sizes):
    common = (f'--directory="$V" --filename=fio.dat --size={s.fio_mib}M --direct=1 '
              f"--ioengine=libaio --runtime={s.seconds} --time_based --output-format=json")
    return (f"fio --name=randread --rw=randread --bs=4k --iodepth=16 {common} > \"$W/fio-r.$$\" "
            "|| exit 1\n"
            f"fio --name=seqwrite --rw=write --bs=1M --iodepth=4 {common} > \"$W/fio-w.$$\" "
            "|| exit 1\n"
            'echo "FIO_R"; cat "$W/fio-r.$$"; echo "FIO_W"; cat "$W/fio-w.$$"\n'
            'rm -f "$W/fio-r.$$" "$W/fio-w.$$" "$V/fio.dat"\n')


def parse_fio(out):
    try:
        r_text, w_text = out.split("FIO_R", 1)[1].split("FIO_W", 1)
        r = json.loads(r_text[r_text.index("{"):])["jobs"][0]["read"]
        w = json.loads(w_text[w_text.index("{"):])["jobs"][0]["write"]
        return {"fio 4k randread": r["iops"] / 1000, "fio 1M seq write": w["bw_bytes"] / 1e6}
    except (ValueError, KeyError, IndexError) as e:
        raise BenchError(f"fio output: {e}: {out[-300:]}") from None


SERVERS_SCRIPT = (
    "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
    f"sockperf sr --tcp -p {PORT_TCP_RTT} --daemonize >/dev/null 2>&1 </dev/null\n"
    f"sockperf sr -p {PORT_UDP_RTT} --daemonize >/dev/null 2>&1 </dev/null\n"
    f"iperf3 -s -D -p {PORT_IPERF} >/dev/null 2>&1 </dev/null\n"
    "sleep 0.5\n")


# Inside a container or guest only (its own PID namespace or kernel): never on the host.
KILL_LEFTOVERS_SCRIPT = ("for p in mpirun orterun orted hpcc pixz fio; do pkill -KILL -x $p; done; "
                         "true\n")


def client_script(addr, seconds):
    return ("export PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
            f"sockperf pp --tcp -i {addr} -p {PORT_TCP_RTT} -t {seconds} --full-rtt 2>&1 "
            "| grep 'Summary' | sed 's/^/TCP /' || exit 1\n"
            f"sockperf pp -i {addr} -p {PORT_UDP_RTT} -t {seconds} --full-rtt 2>&1 "
            "| grep 'Summary' | sed 's/^/UDP /' || exit 1\n"
            "echo IPERF\n"
            f"iperf3 -c {addr} -p {PORT_IPERF} -t {seconds} -J || exit 1\n")


def parse_client(out, suffix, server_cpu_s=None):
    """Round trips in us; bulk in Gbit/s; cycles per byte from both ends' CPU time (the
    receiving end's from iperf3's own rusage, or, for a VM, its whole QEMU process)."""
    res = {}
    for proto in ("TCP", "UDP"):
        m = re.search(rf"^{proto} .*Round trip is ([0-9.]+) usec", out, re.M)
        if not m:
            raise BenchError(f"sockperf {proto} output: {out[:400]}")
        res[f"{proto} round trip ({suffix})"] = float(m.group(1))
    try:
        j = json.loads(out.split("IPERF", 1)[1])
        end = j["end"]
        got = end["sum_received"]
        secs = got["seconds"]
        cpu = end["cpu_utilization_percent"]
    except (ValueError, KeyError, IndexError) as e:
        raise BenchError(f"iperf3 output: {e}: {out[-400:]}") from None
    res[f"TCP bulk ({suffix})"] = got["bytes"] * 8 / secs / 1e9
    client_s = cpu["host_total"] / 100 * secs
    srv_s = server_cpu_s if server_cpu_s is not None else cpu["remote_total"] / 100 * secs
    res[f"TCP cycles/byte ({suffix})"] = (client_s + srv_s) * cpu_hz() / got["bytes"]
    return res


# ---- environments ----------------------------------------------------------------------

class Env:
    key = ""
    label = ""
    accel = ""
    size_class = "full"
    work, vol, input = "/tmp", "/vol", "/bench/input.tar"
    np = 2

    def start(self):
        pass

    def stop(self):
        pass

    def prefix(self):
        return f'export W="{self.work}" V="{self.vol}" IN="{self.input}"\n'

    def sh(self, script, timeout):
        raise NotImplementedError

    def addr(self):
        return None

    def server_cpu_s(self):
        return None  # iperf3's own figure for the receiving end

    def cleanup(self):
        """After a failed or timed-out command: what it left running inside this environment
        (the exec timed out, not the guest's processes) would eat the next figures' CPU."""
        try:
            self.sh(KILL_LEFTOVERS_SCRIPT, 120)
        except (BenchError, subprocess.TimeoutExpired, OSError) as e:
            log(f"  {self.key}: cleanup after a failure: {e}")


class Native(Env):
    def __init__(self, run_dir, bench_dir, key="native", size_class="full"):
        self.key, self.label, self.size_class = key, key, size_class
        self.work = str(run_dir / f"{key}-work")
        self.vol = str(run_dir / f"vol-{key}")
        self.input = str(bench_dir / "rootfs/bench/input.tar")

    def start(self):
        for d in (self.work, self.vol):
            Path(d).mkdir(parents=True, exist_ok=True)
        for b in ("hpcc", "mpirun", "pixz", "sockperf", "iperf3", "fio"):
            if not shutil.which(b):
                raise BenchError(f"{b} is not installed on the host (scripts/deps/bench.txt)")

    def sh(self, script, timeout):
        # A session of its own: on a timeout the whole group (mpirun's ranks too) is killed.
        p = subprocess.Popen(["/bin/sh", "-c", self.prefix() + script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except BaseException:  # a timeout, or the run interrupted (SIGTERM, Ctrl-C)
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise
        if p.returncode != 0:
            raise BenchError(f"native: status {p.returncode}: {(err or out)[-800:]}")
        return out

    def cleanup(self):
        pass  # sh() killed its own process group

    def addr(self):
        return "127.0.0.1"

    def start_servers(self):
        # Our own children, stopped by their pids (no daemonizing, no pkill by name).
        self.servers = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL) for argv in (
            ["sockperf", "sr", "--tcp", "-i", "127.0.0.1", "-p", str(PORT_TCP_RTT)],
            ["sockperf", "sr", "-i", "127.0.0.1", "-p", str(PORT_UDP_RTT)],
            ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(PORT_IPERF)])]
        time.sleep(0.5)

    def stop(self):
        for p in getattr(self, "servers", []):
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Storevisord:
    """A private storevisord: own state dir, socket, nft table, bridge and subnet."""

    def __init__(self, bin_dir, run_dir, bench_dir):
        self.bin = bin_dir
        self.dir = run_dir / "storevisord"
        self.sock = str(self.dir / "sock")
        self.bench_dir = bench_dir
        self.proc = None
        self.workloads = []

    def cli(self, *args, timeout=120, check=True):
        return run([str(self.bin / "storevisor"), "--socket", self.sock, *args],
                   timeout=timeout, check=check)

    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        logf = open(self.dir / "daemon.log", "ab")
        self.proc = subprocess.Popen(
            [str(self.bin / "storevisord"), "--state-dir", str(self.dir / "state"), "--socket",
             self.sock, "--image-dir", str(self.bench_dir / "images"), "--nft-table", NFT_TABLE,
             "--log-format", "human"], stdout=logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        logf.close()
        for _ in range(100):
            if Path(self.sock).exists() and self.cli("version", check=False).returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise BenchError(f"storevisord did not start: see {self.dir}/daemon.log")

    def apply(self, workloads):
        self.workloads = workloads
        doc = {"apiVersion": "storevisor.io/v1", "kind": "StoreProfile",
               "metadata": {"name": "overhead"},
               "spec": {"networks": [{"name": NET_NAME, "subnet": NET_SUBNET}] if workloads
                        else [], "workloads": workloads}}
        path = self.dir / "profile.yaml"
        path.write_text(json.dumps(doc, indent=1))  # JSON is YAML
        self.cli("apply", "-f", str(path), "--timeout", "600", timeout=660)

    def ps(self):
        return json.loads(self.cli("ps", "-o", "json").stdout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.apply([])
            except (BenchError, subprocess.TimeoutExpired) as e:
                log(f"cleanup: empty profile: {e}")
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["ip", "link", "delete", f"sv-{NET_NAME}"], capture_output=True)
        for fam in ("inet", "ip", "bridge"):
            subprocess.run(["nft", "delete", "table", fam, NFT_TABLE], capture_output=True)


class SvWorkload(Env):
    """A workload of the profile, reached through `storevisor exec` as an operator would."""

    def __init__(self, daemon, key, name, label):
        self.d, self.key, self.name, self.label = daemon, key, name, label

    def sh(self, script, timeout):
        return self.d.cli("exec", "--timeout", str(timeout), self.name, "--", "/bin/sh", "-c",
                          self.prefix() + script, timeout=timeout + 30).stdout

    def info(self):
        for w in self.d.ps():
            if w.get("name") == self.name:
                return w
        raise BenchError(f"{self.name} is not in storevisor ps")

    def addr(self):
        a = self.info().get("address", "")
        return a.split("/")[0] or None


class SvMicroVm(SvWorkload):
    def __init__(self, daemon, accel, size_class):
        super().__init__(daemon, "sv-microvm", "bench-vm", f"Storevisor microVM ({accel})")
        self.accel, self.size_class = accel, size_class

    def start(self):
        # Open MPI refuses the hostname "(none)" and its launcher talks over loopback;
        # sv-init sets neither.
        self.sh("hostname ovh-microvm && ip link set lo up && mkdir -p /vol && mount /dev/vdb /vol", 120)

    def server_cpu_s(self):
        return proc_cpu_s(self.info()["pid"])

    def cmdline(self):
        return self.sh("cat /proc/cmdline", 60).strip()

    def tcg_counters(self):
        """QEMU's translation-cache counters (storevisor-vm status), {} when unknown."""
        p = run([str(self.d.bin / "storevisor-vm"), "status", "--state-dir",
                 str(self.d.dir / "state/vms/bench-vm/run"), "-o", "json"], check=False)
        try:
            return json.loads(p.stdout).get("counters", {}).get("tcg", {}) or {}
        except ValueError:
            return {}


class Podman(Env):
    def __init__(self, run_dir, bench_dir):
        self.key, self.label = "podman", "podman"
        self.base = ["podman", "--root", str(bench_dir / "podman/root"), "--runroot",
                     str(bench_dir / "podman/run"), "--cgroup-manager=cgroupfs",
                     "--events-backend=file", "--runtime", "runc"]
        self.vol_host = run_dir / "vol-podman"
        self.net = True
        self.ip = None

    def pm(self, *args, timeout=120, check=True):
        return run(self.base + list(args), timeout=timeout, check=check)

    def start(self):
        self.vol_host.mkdir(parents=True, exist_ok=True)
        self.pm("rm", "-f", PODMAN_NAME, check=False)
        if self.pm("network", "exists", PODMAN_NET, check=False).returncode != 0:
            self.pm("network", "create", "--subnet", PODMAN_SUBNET, PODMAN_NET, check=False)
        args = ["run", "-d", "--name", PODMAN_NAME, "--ulimit", "nofile=1024:1024", "--ulimit",
                "nproc=4096:4096", "-v", f"{self.vol_host}:/vol", "--shm-size", "256m",
                "--memory", "2g"]
        image = ["localhost/storevisor-bench:1", "/bin/sleep", "infinity"]
        p = self.pm(*args, "--network", PODMAN_NET, *image, check=False)
        if p.returncode != 0:
            log(f"podman: no bridge network here ({p.stderr.strip()[-200:]}); "
                "its network rows are left out")
            self.pm("rm", "-f", PODMAN_NAME, check=False)
            self.pm(*args, "--network", "none", *image)
            self.net = False
        else:
            ins = json.loads(self.pm("inspect", PODMAN_NAME).stdout)
            nets = ins[0]["NetworkSettings"].get("Networks", {})
            self.ip = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")),
                           None)
            self.net = bool(self.ip)

    def sh(self, script, timeout):
        return self.pm("exec", PODMAN_NAME, "/bin/sh", "-c", self.prefix() + script,
                       timeout=timeout).stdout

    def addr(self):
        return self.ip if self.net else None

    def stop(self):
        self.pm("rm", "-f", "-t", "2", PODMAN_NAME, check=False)
        self.pm("network", "rm", "-f", PODMAN_NET, check=False)


class Qga:
    """The qemu-ga protocol over the unix socket: sync, guest-exec, guest-exec-status."""

    def __init__(self, path):
        self.path, self.sock, self.buf = path, None, b""

    def _send(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def _reply(self, deadline):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i].strip(b"\xff \r"), self.buf[i + 1:]
                if line:
                    try:
                        return json.loads(line)
                    except ValueError:
                        continue
                continue
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError("guest agent closed its socket")
            self.buf += chunk

    def connect(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.sock is None:
                    self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self.sock.connect(self.path)
                token = random.randrange(1, 1 << 30)
                self._send({"execute": "guest-sync", "arguments": {"id": token}})
                end = min(deadline, time.time() + 1.0)
                while True:
                    r = self._reply(end)
                    if r.get("return") == token:
                        return
            except TimeoutError:
                continue
            except OSError:
                if self.sock:
                    self.sock.close()
                self.sock = None
                time.sleep(0.2)
        raise BenchError(f"guest agent at {self.path} did not answer in {timeout} s")

    def call(self, cmd, args, timeout=30):
        self._send({"execute": cmd, "arguments": args})
        r = self._reply(time.time() + timeout)
        if "error" in r:
            raise BenchError(f"{cmd}: {r['error']}")
        return r.get("return")

    def exec(self, argv, timeout):
        pid = self.call("guest-exec", {"path": argv[0], "arg": argv[1:],
                                       "capture-output": True})["pid"]
        deadline, delay = time.time() + timeout, 0.01
        while time.time() < deadline:
            st = self.call("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
                err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
                code = st.get("exitcode", st.get("signal", -1))
                if code != 0:
                    raise BenchError(f"{argv[-1][:120]!r}: status {code}: {err[-600:]}")
                return out
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise BenchError(f"guest command timed out after {timeout} s")


class QemuPc(Env):
    """The peer: QEMU's default `pc` machine as a plain libvirt domain starts it (SeaBIOS,
    virtio-pci disk and NIC with QEMU's default cache and queues, a tap on a plain bridge),
    with the same kernel, initrd, root disk, kernel arguments, vCPUs, memory and accelerator."""

    def __init__(self, run_dir, guest_dir, bench_dir, accel, size_class, memory_mib, cpus):
        self.key, self.label = "qemu-pc", f"QEMU pc ({accel})"
        self.accel, self.size_class = accel, size_class
        self.dir = run_dir / "qemu-pc"
        self.guest, self.bench = guest_dir, bench_dir
        self.memory_mib, self.cpus = memory_mib, cpus
        self.proc = None
        self.qga = None
        self.cmdline = ""
        self.tb_size = 0  # MiB; 0: QEMU's default

    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        vol = self.dir / "vol.img"
        make_volume_image(vol)
        run(["ip", "link", "add", PC_BRIDGE, "type", "bridge"], check=False)
        run(["ip", "addr", "replace", f"{PC_HOST_ADDR}/24", "dev", PC_BRIDGE])
        run(["ip", "link", "set", PC_BRIDGE, "up"])
        run(["ip", "tuntap", "add", "dev", PC_TAP, "mode", "tap"], check=False)
        run(["ip", "link", "set", PC_TAP, "master", PC_BRIDGE, "up"])
        agent = self.dir / "agent.sock"
        accel = "kvm" if self.accel == "kvm" else "tcg"
        argv = ["qemu-system-x86_64", "-name", "guest=ovh-pc-peer", "-machine", f"pc,accel={accel}",
                "-m", str(self.memory_mib), "-smp", str(self.cpus),
                "-kernel", str(self.guest / "vmlinuz"), "-initrd", str(self.guest / "initrd.img"),
                "-append", self.cmdline, "-display", "none",
                "-serial", f"file:{self.dir}/console.log", "-usb",
                "-drive", f"file={self.bench}/rootfs.ext4,if=virtio,format=raw,readonly=on",
                "-drive", f"file={vol},if=virtio,format=raw",
                "-netdev", f"tap,id=net0,ifname={PC_TAP},script=no,downscript=no",
                "-device", "virtio-net-pci,netdev=net0",
                "-chardev", f"socket,id=charchannel0,path={agent},server=on,wait=off",
                "-device", "virtio-serial-pci,id=virtio-serial0",
                "-device", "virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,"
                "id=channel0,name=org.qemu.guest_agent.0",
                "-device", "virtio-balloon-pci,id=balloon0"]
        if accel == "kvm":
            argv[argv.index("-m"):argv.index("-m")] = ["-cpu", "host"]
        elif self.tb_size:
            argv[argv.index("-m"):argv.index("-m")] = ["-accel",
                                                       f"tcg,thread=multi,tb-size={self.tb_size}"]
            argv[argv.index("-machine") + 1] = "pc"
            self.label += f" tb-size {self.tb_size} MiB"
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "qemu.err", "wb"))
        self.qga = Qga(str(agent))
        self.qga.connect(180)
        self.sh(f"hostname ovh-pc && ip link set lo up && ip link set eth0 up && ip addr replace {PC_GUEST_ADDR}/24 dev eth0 && "
                "mkdir -p /vol && mount /dev/vdb /vol", 120)

    def sh(self, script, timeout):
        if self.proc.poll() is not None:
            raise BenchError(f"the pc peer's QEMU exited ({self.dir}/qemu.err)")
        return self.qga.exec(["/bin/sh", "-c", self.prefix() + script], timeout)

    def addr(self):
        return PC_GUEST_ADDR

    def server_cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        run(["ip", "link", "delete", PC_TAP], check=False)
        run(["ip", "link", "delete", PC_BRIDGE], check=False)


def make_volume_image(path, mib=1024):
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    run(["mkfs.ext4", "-q", "-F", "-L", "sv-vol", str(path)])


# ---- the run ---------------------------------------------------------------------------

@dataclass
class Sample:
    env: str
    metric: str
    value: float
    load1: float
    run: int


@dataclass
class Results:
    samples: list = field(default_factory=list)
    failures: list = field(default_factory=list)


def measure(env, workload, sizes, res, run_i, peer_client=None):
    s = sizes[env.size_class]
    load = loadavg()
    t0 = time.time()
    try:
        if workload == "hpcc":
            vals = parse_hpcc(env.sh(hpcc_script(s, s.mpi_procs), s.timeout))
        elif workload == "xz":
            vals = parse_xz(env.sh(xz_script(s, env.np), s.timeout))
        elif workload == "fio":
            vals = parse_fio(env.sh(fio_script(s), s.timeout))
        elif workload == "net":
            addr = env.addr()
            if not addr:
                return
            before = env.server_cpu_s()
            out = run(["/bin/sh", "-c", client_script(addr, s.seconds)],
                      timeout=s.timeout).stdout
            after = env.server_cpu_s()
            vals = parse_client(out, "host", None if before is None else after - before)
        elif workload == "w2w":
            # From one workload to another on the same network (native: loopback).
            client = peer_client or env
            addr = env.addr()
            if not addr:
                return
            vals = parse_client(client.sh(client_script(addr, s.seconds), s.timeout), "w2w")
        else:
            raise BenchError(workload)
    except (BenchError, subprocess.TimeoutExpired, OSError) as e:
        log(f"  {env.key} {workload}: FAILED: {e}")
        res.failures.append((env.key, workload, str(e)[:300]))
        env.cleanup()
        if peer_client:
            peer_client.cleanup()
        return
    load = (load + loadavg()) / 2
    shown = ", ".join(f"{k} {v:.4g}" for k, v in vals.items())
    log(f"  {env.key:12s} {workload:5s} {time.time() - t0:6.1f} s  load {load:.2f}  {shown}")
    for k, v in vals.items():
        res.samples.append(Sample(env.key, k, v, load, run_i))


def summarise(res, envs, ref_of):
    """Rows of (metric, env) -> mean, stddev, departure from the env's native reference."""
    by = {}
    for s in res.samples:
        by.setdefault((s.metric, s.env), []).append(s)
    rows = []
    for metric in METRICS:
        for env in envs:
            ss = by.get((metric, env.key))
            if not ss:
                continue
            vals = [s.value for s in ss]
            mean = statistics.fmean(vals)
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            ref_key = ref_of(env, metric)
            ref = by.get((metric, ref_key))
            dep = None
            if ref and env.key != ref_key:
                rmean = statistics.fmean(s.value for s in ref)
                dep = (mean - rmean) / rmean * 100 if rmean else None
            rows.append({"metric": metric, "unit": METRICS[metric][0],
                         "higher_is_better": METRICS[metric][1], "env": env.key,
                         "label": env.label, "accel": env.accel or "none",
                         "runs": len(vals), "mean": mean, "stddev": sd,
                         "departure_pct": dep, "reference": ref_key,
                         "load1_mean": statistics.fmean(s.load1 for s in ss)})
    return rows


def fmt(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.4g}"


def write_table(rows, envs, out, header_lines):
    cols = [e for e in envs if any(r["env"] == e.key for r in rows)]
    lines = list(header_lines) + [""]
    lines.append("| metric | " + " | ".join(e.label for e in cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for metric, (unit, hib) in METRICS.items():
        cells, seen = [], False
        for e in cols:
            r = next((r for r in rows if r["metric"] == metric and r["env"] == e.key), None)
            if not r:
                cells.append("")
                continue
            seen = True
            c = f"{fmt(r['mean'])} ± {fmt(r['stddev'])}"
            if r["departure_pct"] is not None:
                c += f" ({r['departure_pct']:+.0f}%)"
            cells.append(c)
        if seen:
            arrow = "higher is better" if hib else "lower is better"
            lines.append(f"| {metric} ({unit}, {arrow}) | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    return text


def write_csv(rows, res, out):
    keys = ["metric", "unit", "higher_is_better", "env", "label", "accel", "runs", "mean",
            "stddev", "departure_pct", "reference", "load1_mean"]
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in keys})
    with open(out / "samples.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "env", "metric", "value", "load1"])
        for s in res.samples:
            w.writerow([s.run, s.env, s.metric, s.value, s.load1])


def write_plots(rows, envs, out, note):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("python3-matplotlib is missing: no plots (scripts/deps/bench.txt)")
        return
    pdir = out / "plots"
    pdir.mkdir(exist_ok=True)
    for metric, (unit, hib) in METRICS.items():
        rs = [r for e in envs for r in rows if r["metric"] == metric and r["env"] == e.key]
        if not rs:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        labels = [r["label"].replace(" (", "\n(") for r in rs]
        ax.bar(range(len(rs)), [r["mean"] for r in rs], yerr=[r["stddev"] for r in rs],
               capsize=4, color=["#777777" if r["env"].startswith("native") else
                                 "#2a7ab0" if r["env"].startswith("sv-") else "#d08c2c"
                                 for r in rs])
        for i, r in enumerate(rs):
            if r["departure_pct"] is not None:
                ax.annotate(f"{r['departure_pct']:+.0f}%", (i, r["mean"]), ha="center",
                            va="bottom", fontsize=8, xytext=(0, 3), textcoords="offset points")
        ax.set_xticks(range(len(rs)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel(f"{unit} ({'higher' if hib else 'lower'} is better)")
        ax.set_title(f"{metric}: mean of {rs[0]['runs']} runs, ± stddev", fontsize=10)
        fig.text(0.01, 0.01, note, fontsize=6)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        slug = re.sub(r"[^a-z0-9]+", "-", metric.lower()).strip("-")
        for ext in ("png", "svg"):
            fig.savefig(pdir / f"{slug}.{ext}")
        plt.close(fig)


def check_csv(out, envs, workloads):
    """--check: every (metric, env) the run was asked for has a row whose numbers parse."""
    with open(out / "results.csv") as f:
        got = {(r["metric"], r["env"]): r for r in csv.DictReader(f)}
    missing = []
    for e in envs:
        for wl in workloads:
            if wl == "w2w" and e.key not in ("native", "sv-container"):
                continue
            if wl in ("net", "w2w") and e.key == "podman" and not e.addr():
                continue
            if wl not in ("hpcc", "xz") and e.key.startswith("native@"):
                continue
            for m in WORKLOAD_METRICS[wl]:
                r = got.get((m, e.key))
                if r is None:
                    missing.append(f"{m} / {e.key}: no row")
                    continue
                try:
                    float(r["mean"]), float(r["stddev"]), float(r["load1_mean"])
                    if r["departure_pct"]:
                        float(r["departure_pct"])
                except ValueError:
                    missing.append(f"{m} / {e.key}: numbers do not parse: {r}")
    return missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--skip", default="", help="environments or workloads to leave out, "
                    "comma-separated: container,podman,microvm,pc,hpcc,xz,net,w2w,fio")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (smoke test, development)")
    ap.add_argument("--hpl-n", type=int, default=6000)
    ap.add_argument("--xz-mib", type=int, default=24)
    ap.add_argument("--vm-hpl-n", type=int, default=0, help="under TCG (default 800)")
    ap.add_argument("--vm-xz-mib", type=int, default=0, help="under TCG (default 2)")
    ap.add_argument("--mpi-procs", type=int, default=1,
                    help="hpcc's MPI processes (default 1: two ranks that poll for each other "
                    "on a 2-CPU box shared with other load measure the scheduler, not the CPU)")
    ap.add_argument("--pc-tb-size", type=int, default=0,
                    help="the pc peer's TCG translation cache in MiB (default: QEMU's own)")
    ap.add_argument("--fio-mib", type=int, default=256)
    ap.add_argument("--seconds", type=int, default=5, help="each network and fio test")
    ap.add_argument("--vm-memory-mib", type=int, default=1024)
    ap.add_argument("--out", default="")
    ap.add_argument("--bin", default=str(ROOT / "build/bin"))
    ap.add_argument("--bench-dir", default=str(ROOT / "build/overhead"))
    ap.add_argument("--guest-dir", default=str(ROOT / "build/guest"))
    ap.add_argument("--check", action="store_true", help="exit 1 unless every row is there")
    a = ap.parse_args()
    skip = {s for s in a.skip.split(",") if s}
    bench, bin_dir, guest = Path(a.bench_dir), Path(a.bin), Path(a.guest_dir)
    out = Path(a.out or ROOT / "build/overhead/results" / time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    run_dir = bench / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    accel, accel_why = detect_accel()
    tcg = accel == "tcg"
    full = Sizes(a.hpl_n, a.xz_mib, a.fio_mib, a.seconds, 900)
    if a.tiny:
        full = Sizes(400, 2, 32, 1, 600)
    full.mpi_procs = a.mpi_procs
    vm = Sizes(a.vm_hpl_n or (min(full.hpl_n, 800) if tcg else full.hpl_n),
               a.vm_xz_mib or (min(full.xz_mib, 2) if tcg else full.xz_mib),
               full.fio_mib, full.seconds, 3600 if tcg else full.timeout, a.mpi_procs)
    sizes = {"full": full, "vm": vm}
    vm_class = "vm" if (vm.hpl_n, vm.xz_mib) != (full.hpl_n, full.xz_mib) else "full"
    workloads = [w for w in ("hpcc", "xz", "net", "w2w", "fio") if w not in skip]
    want_vm = "microvm" not in skip or "pc" not in skip

    envs, daemon = [], None
    native = Native(run_dir, bench)
    envs.append(native)
    if vm_class == "vm" and want_vm and {"hpcc", "xz"} & set(workloads):
        envs.append(Native(run_dir, bench, "native@vm", "vm"))
    stop_list = []

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    res = Results()
    tcg_note = ""
    load_start = Path("/proc/loadavg").read_text().split()[:3]
    try:
        for e in envs:
            e.start()
            stop_list.append(e)
        wl_profile = []
        if not {"container", "microvm"} <= skip:
            daemon = Storevisord(bin_dir, run_dir, bench)
            daemon.start()
            stop_list.append(daemon)
            if "container" not in skip:
                (run_dir / "vol-sv-container").mkdir()
                for name, vol in (("bench-a", True), ("bench-b", False)):
                    w = {"name": name, "kind": "container", "image": "storevisor/bench:1",
                         "command": ["/bin/sleep", "infinity"], "networks": [NET_NAME],
                         "cpus": 2, "memory": "2Gi", "restart": "never",
                         "mounts": [{"target": "/tmp"}]}
                    if vol:
                        w["mounts"].append({"source": str(run_dir / "vol-sv-container"),
                                            "target": "/vol"})
                    wl_profile.append(w)
            if "microvm" not in skip:
                make_volume_image(run_dir / "vol-sv-microvm.img")
                wl_profile.append({
                    "name": "bench-vm", "kind": "microvm", "kernel": str(guest / "vmlinux"),
                    "initrd": str(guest / "initrd.img"), "cmdline": "sv.root=/dev/vda sv.rootmode=ro",
                    "disks": [{"path": str(bench / "rootfs.ext4"), "readOnly": True},
                              {"path": str(run_dir / "vol-sv-microvm.img")}],
                    "cpus": 2, "memory": f"{a.vm_memory_mib}Mi", "networks": [NET_NAME],
                    "restart": "never"})
            log(f"storevisord: applying the profile ({len(wl_profile)} workloads)")
            t0 = time.time()
            daemon.apply(wl_profile)
            log(f"storevisord: converged in {time.time() - t0:.1f} s")
        client_b = None
        if daemon and "container" not in skip:
            c = SvWorkload(daemon, "sv-container", "bench-a", "Storevisor container")
            client_b = SvWorkload(daemon, "sv-container-b", "bench-b", "")
            envs.append(c)
        if "podman" not in skip:
            p = Podman(run_dir, bench)
            stop_list.append(p)
            p.start()
            envs.append(p)
        mv = None
        if daemon and "microvm" not in skip:
            mv = SvMicroVm(daemon, accel, vm_class)
            mv.start()
            envs.append(mv)
        if "pc" not in skip:
            pc = QemuPc(run_dir, guest, bench, accel, vm_class, a.vm_memory_mib, 2)
            pc.tb_size = a.pc_tb_size
            pc.cmdline = mv.cmdline() if mv else \
                "console=ttyS0 panic=-1 sv.root=/dev/vda sv.rootmode=ro"
            pc.cmdline = pc.cmdline.replace("noreplace-smp", "").strip()
            stop_list.append(pc)
            log("QEMU pc peer: booting")
            pc.start()
            envs.append(pc)
        if {"net", "w2w"} & set(workloads):
            for e in envs:
                if e.addr() and not e.key.startswith("native@"):
                    if e.key == "native":
                        e.start_servers()
                    else:
                        e.sh(SERVERS_SCRIPT, 120)
        tcg_before = mv.tcg_counters() if mv else {}
        for i in range(1, a.runs + 1):
            log(f"run {i}/{a.runs} (load average {Path('/proc/loadavg').read_text().split()[0]})")
            for e in envs:
                for wl in workloads:
                    if e.key.startswith("native@") and wl not in ("hpcc", "xz"):
                        continue
                    if wl == "w2w" and e.key not in ("native", "sv-container"):
                        continue
                    measure(e, wl, sizes, res, i,
                            client_b if wl == "w2w" and e.key == "sv-container" else None)
        if mv:
            tcg_after = mv.tcg_counters()
            if tcg_after.get("code_capacity_bytes"):
                tcg_note = (f"microVM TCG translation cache: {round(tcg_after['code_capacity_bytes'] / (1 << 20))}"
                            f" MiB, flushed {tcg_after.get('tb_flushes', 0) - tcg_before.get('tb_flushes', 0)}"
                            " times during the runs (each flush retranslates all the code the "
                            "guest runs next)")
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}): cleaning up")
        raise SystemExit(130)
    finally:
        for e in reversed(stop_list):
            try:
                e.stop()
            except Exception as ex:  # noqa: BLE001 - cleanup goes on whatever failed
                log(f"cleanup of {getattr(e, 'key', e)}: {ex}")
        shutil.rmtree(run_dir, ignore_errors=True)

    def ref_of(env, metric):
        if env.size_class == "vm" and any(metric in WORKLOAD_METRICS[w] for w in ("hpcc", "xz")):
            return "native@vm"
        return "native"
    rows = summarise(res, envs, ref_of)
    load_end = Path("/proc/loadavg").read_text().split()[:3]
    acc_note = (f"VM accelerator: {accel} ({accel_why})." +
                (" TCG figures do not show what KVM would: TCG translates every guest "
                 "instruction (~10-50x slower on CPU work); on a box with VT-x the VMs use KVM."
                 if tcg else ""))
    header = [
        f"# bench/overhead: mean ± stddev of {a.runs} runs (departure from native)",
        "",
        f"Host: {os.cpu_count()} CPUs at {cpu_hz() / 1e6:.0f} MHz; load average at start "
        f"{' '.join(load_start)}, at end {' '.join(load_end)} (each row's mean load is in "
        "results.csv; figures taken under other processes' load are not a quiet machine's).",
        acc_note,
        f"Sizes: native, containers: {full.label()}"
        + (f"; VMs: {vm.label()}" if want_vm else "")
        + (" (smaller under TCG so they finish; their departure is from `native@vm`, native "
           "at the VMs' size)" if vm_class == "vm" and want_vm else "") +
        f"; fio {full.fio_mib} MiB file, {full.seconds} s per network and fio test.",
        "Network 'host': client on the host, server in the environment (native: loopback); "
        "'w2w': between two Storevisor containers on one profile network (native: loopback). "
        "Cycles/byte: CPU time of both ends (a VM's end: its whole QEMU process) x clock / bytes.",
    ]
    if tcg_note:
        header.append(tcg_note + ".")
    if res.failures:
        header.append("Failed measurements: " + "; ".join(f"{e} {w}: {m[:120]}"
                                                          for e, w, m in res.failures[:8]))
    write_csv(rows, res, out)
    text = write_table(rows, envs, out, header)
    plot_note = (f"VMs: {accel}" + (" (TCG figures do not show what KVM would)" if tcg else "") +
                 f"; load average {' '.join(load_start)} at start, {' '.join(load_end)} at end")
    write_plots(rows, envs, out, plot_note)
    print()
    print(text)
    log(f"results in {out} (table.md, results.csv, samples.csv, plots/)")
    if a.check:
        missing = check_csv(out, envs, workloads)
        if missing:
            print("CHECK FAILED:\n  " + "\n  ".join(missing))
            return 1
        print(f"CHECK OK: {len(rows)} rows, every number parses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
