#!/usr/bin/python3
"""bench/update's driver (run.sh sets up the daemon, the images and podman, and cleans up).

Each round, in this order (interleaved, so the load of the box weighs on every scenario alike),
with load.py sending GETs at 200/s to the published port:
  recreate     inventory's image changed to the other tag (1 <-> 2): apply --wait, committed
  rollback-exit    a new tag whose httpd exits at once (no /srv/www): rolled back by itself
  rollback-health  a new tag whose health check never passes (no inventory.json): rolled back
  start-first  the same update as `recreate` with `update: start-first`: measured if the
               daemon accepts it; today it refuses the profile, and the row says so
  podman       the peer: podman stop + rm of the old container, podman run of the new tag
Figures per round: requests failed, the longest gap between two answered requests, apply to
the new version answering, apply to committed / rolled back (the generation's decidedAtMs -
appliedAtMs), and for rollbacks the rolled-back event to the first answered request after it.
"""
import argparse
import csv
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def now_ms():
    return time.time() * 1000


class Bench:
    def __init__(self, a):
        self.a = a
        self.sock = os.path.join(a.work, "sock")
        self.tag = 1  # the inventory tag the daemon's committed generation runs
        self.peer_tag = 1
        self.round_name = "r0"

    # ---- helpers ------------------------------------------------------------------------
    def sv(self, *args, timeout=180):
        return subprocess.run([self.a.bin + "/storevisor", "--socket", self.sock, *args],
                              capture_output=True, text=True, timeout=timeout)

    def podman(self, *args, check=True):
        r = subprocess.run(self.a.podman.split() + list(args), capture_output=True, text=True,
                           timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError("podman %s: %s" % (" ".join(args), r.stderr.strip()))
        return r

    def profile(self, tag, update=None):
        """The demo's inventory (image, command, health check as in examples/store-demo.yaml)
        under its own workload, network and port names."""
        text = f"""apiVersion: storevisor.io/v1
kind: StoreProfile
metadata: {{name: bench-update}}
spec:
  commitAfter: {self.a.commit_after}
  networks:
    - {{name: {self.a.network}, subnet: {self.a.subnet}}}
  workloads:
    - name: {self.a.workload}
      kind: container
      image: storevisor/inventory:{tag}
      command: [/bin/busybox, httpd, -f, -p, "8080", -h, /srv/www]
      env:
        STORE: store-0042
      networks: [{self.a.network}]
      ports:
        - {{host: {self.a.port}, container: 8080}}
      cpus: 0.5
      memory: 32Mi
      restart: on-failure
      health:
        http: {{port: 8080, path: /inventory.json}}
        interval: 1s
        timeout: 500ms
"""
        if update:
            text += f"      update: {update}\n"
        path = os.path.join(self.a.work, f"inventory-{tag}{'-' + update if update else ''}.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_load(self, port):
        out = os.path.join(self.a.keep, "load-%s.csv" % self.round_name)
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "load.py"), "--port", str(port),
                              "--rate", str(self.a.rate), "--timeout", str(self.a.timeout),
                              "--out", out])
        time.sleep(1.0)  # a second of the steady state before the update
        return p, out

    @staticmethod
    def stop_load(p, out):
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        with open(out) as f:
            rows = list(csv.DictReader(f))
        return [(float(r["send_ms"]), float(r["answer_ms"]), r["ok"] == "1", int(r["version"]),
                 r["error"]) for r in rows]

    @staticmethod
    def wait_answer(out, version, after_ms, limit_s=60):
        """Polls the load client's file for an answer of `version` after after_ms."""
        deadline = time.time() + limit_s
        while time.time() < deadline:
            with open(out) as f:
                for r in csv.DictReader(f):
                    try:
                        if (r["ok"] == "1" and int(r["version"]) == version and
                                float(r["answer_ms"]) > after_ms):
                            return True
                    except (TypeError, ValueError):
                        pass  # a line being written
            time.sleep(0.2)
        return False

    @staticmethod
    def figures(rows, t0, version, restore_from=None):
        """Failed requests sent from t0 on; the longest gap between two answered requests
        (answer times, from the last answer before t0); first answer of `version` after t0;
        first answer after restore_from."""
        rows = sorted(rows, key=lambda r: r[0])
        window = [r for r in rows if r[0] >= t0]
        failed = sum(1 for r in window if not r[2])
        errors = {}
        for r in window:
            if not r[2]:
                errors[r[4]] = errors.get(r[4], 0) + 1
        answered = sorted(r[1] for r in rows if r[2])
        before = [t for t in answered if t < t0]
        times = ([before[-1]] if before else []) + [t for t in answered if t >= t0]
        gap = max((b - a for a, b in zip(times, times[1:])), default=float("nan"))
        first_new = min((r[1] for r in window if r[2] and r[3] == version), default=None)
        restored = None
        if restore_from is not None:
            restored = min((r[1] for r in rows if r[2] and r[1] > restore_from), default=None)
        return {
            "requests": len(window),
            "errors": " ".join("%s:%d" % (k.replace(" ", "-"), v) for k, v in sorted(errors.items())),
            "failed": failed,
            "gap_ms": gap,
            "new_serving_ms": (first_new - t0) if first_new is not None else float("nan"),
            "restored_ms": (restored - restore_from) if restored is not None else float("nan"),
        }

    def generation(self, n):
        r = self.sv("generation", str(n), "-o", "json")
        return json.loads(r.stdout) if r.returncode == 0 else {}

    def events(self):
        r = self.sv("events", "-o", "json")
        return json.loads(r.stdout) if r.returncode == 0 else []

    def failure_times(self, gen, t0):
        """The rolled-back event of generation gen, and the first sign of the failure after
        t0: the new instance's first `exited`/`failed`/`unhealthy` event (the trial waits for
        a second exit), or the rolled-back event when there is none (failed health checks)."""
        evs = self.events()
        rb = [e["time_ms"] for e in evs if e.get("type") == "rolled-back" and
              ("generation %d rolled back" % gen) in e.get("message", "")]
        if not rb:
            return None, None
        first = [e["time_ms"] for e in evs
                 if e.get("workload") == self.a.workload and t0 <= e.get("time_ms", 0) <= rb[-1]
                 and e.get("type") in ("exited", "failed", "unhealthy")]
        return rb[-1], min(first, default=rb[-1])

    def wait_healthy(self, limit_s=60):
        deadline = time.time() + limit_s
        while time.time() < deadline:
            r = self.sv("ps", "-o", "json")
            if r.returncode == 0:
                for w in json.loads(r.stdout):
                    if w.get("name") == self.a.workload and w.get("health") == "healthy":
                        return True
            time.sleep(0.2)
        return False

    # ---- scenarios ----------------------------------------------------------------------
    def setup(self):
        r = self.sv("apply", "-f", self.profile(1), "--wait", "--timeout", "120")
        if r.returncode != 0:
            raise RuntimeError("first apply: %d: %s" % (r.returncode, r.stderr.strip()))
        self.tag = 1
        self.podman_run(1)
        self.peer_tag = 1

    def update(self, update=None):
        new = 3 - self.tag
        path = self.profile(new, update)
        load, out = self.start_load(self.a.port)
        t0 = now_ms()
        r = self.sv("apply", "-f", path, "--wait", "--timeout", "120")
        if update and r.returncode == 2:
            self.stop_load(load, out)
            said = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "status 2"
            return {"refused": said[said.find("spec."):] if "spec." in said else said}
        m = re.search(r"generation (\d+) committed", r.stderr)
        if r.returncode != 0 or not m:
            self.stop_load(load, out)
            raise RuntimeError("apply of tag %d: status %d: %s" % (new, r.returncode, r.stderr))
        self.wait_answer(out, new, t0)
        time.sleep(1.0)
        rows = self.stop_load(load, out)
        self.tag = new
        g = self.generation(int(m.group(1)))
        f = self.figures(rows, t0, new)
        f["decided_ms"] = g.get("decidedAtMs", 0) - g.get("appliedAtMs", 0)
        f["from_failure_ms"] = float("nan")
        return f

    def rollback(self, bad_tag):
        load, out = self.start_load(self.a.port)
        t0 = now_ms()
        r = self.sv("apply", "-f", self.profile(bad_tag), "--wait", "--timeout", "120")
        m = re.search(r"generation (\d+) was rolled back", r.stderr)
        if r.returncode != 30 or not m:
            self.stop_load(load, out)
            raise RuntimeError("apply of bad tag %d: status %d (want 30): %s" %
                               (bad_tag, r.returncode, r.stderr))
        gen = int(m.group(1))
        event, first_failure = self.failure_times(gen, t0)
        self.wait_answer(out, self.tag, event or t0)
        self.wait_healthy()
        time.sleep(1.0)
        rows = self.stop_load(load, out)
        g = self.generation(gen)
        f = self.figures(rows, t0, self.tag, restore_from=event)
        f["from_failure_ms"] = self.figures(rows, t0, self.tag,
                                            restore_from=first_failure)["restored_ms"]
        f["decided_ms"] = g.get("decidedAtMs", 0) - g.get("appliedAtMs", 0)
        f["reason"] = g.get("reason", "")
        return f

    def podman_run(self, tag):
        self.podman("run", "-d", "--name", self.a.peer_name, "--network", self.a.peer_network,
                    "-p", "127.0.0.1:%d:8080" % self.a.peer_port, "--ulimit", "nofile=1024:1024",
                    "--ulimit", "nproc=4096:4096", "localhost/storevisor/inventory:%d" % tag,
                    "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/srv/www")

    def peer(self):
        new = 3 - self.peer_tag
        load, out = self.start_load(self.a.peer_port)
        t0 = now_ms()
        # What a podman user does without systemd (no `podman auto-update`): stop with the
        # same grace as storevisord's (5 s; podman's default is 10 s), rm, run the new tag.
        self.podman("stop", "-t", str(self.a.stop_grace), self.a.peer_name)
        self.podman("rm", self.a.peer_name)
        self.podman_run(new)
        done = now_ms()
        self.wait_answer(out, new, t0)
        time.sleep(1.0)
        rows = self.stop_load(load, out)
        self.peer_tag = new
        f = self.figures(rows, t0, new)
        f["decided_ms"] = float("nan")
        f["from_failure_ms"] = float("nan")
        f["commands_ms"] = done - t0
        return f


COLUMNS = ["failed", "gap_ms", "new_serving_ms", "decided_ms", "restored_ms", "from_failure_ms"]
TITLES = {
    "recreate": "update, recreate (storevisor)",
    "start-first": "update, start-first (storevisor)",
    "rollback-exit": "rolled back: new tag exits at once",
    "rollback-health": "rolled back: new tag's health check fails",
    "podman": "peer: podman stop+rm+run",
}


def fmt(v):
    if isinstance(v, str):
        return v
    return "-" if v != v else "%.0f" % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--peer-port", type=int, required=True)
    ap.add_argument("--podman", required=True, help="podman with its global flags")
    ap.add_argument("--peer-name", required=True)
    ap.add_argument("--peer-network", required=True)
    ap.add_argument("--workload", required=True)
    ap.add_argument("--network", required=True)
    ap.add_argument("--subnet", required=True)
    ap.add_argument("--commit-after", default="5s")
    ap.add_argument("--stop-grace", type=int, default=5)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--keep", required=True, help="folder for the CSVs and the events")
    a = ap.parse_args()
    b = Bench(a)
    b.setup()
    results = {k: [] for k in TITLES}
    refused = None
    loads = []
    a.csv = os.path.join(a.keep, "results.csv")
    with open(a.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["round", "scenario", "requests", "failed", "longest_gap_ms",
                    "apply_to_new_version_ms", "apply_to_decided_ms",
                    "rolled_back_event_to_restored_ms", "first_failure_event_to_restored_ms",
                    "load_1min", "errors", "note"])
        for rnd in range(1, a.rounds + 1):
            plan = [("recreate", b.update), ("rollback-exit", lambda: b.rollback(3)),
                    ("rollback-health", lambda: b.rollback(4)), ("podman", b.peer)]
            if refused is None:
                plan.insert(1, ("start-first", lambda: b.update("start-first")))
            for name, run in plan:
                b.round_name = "r%d-%s" % (rnd, name)
                res = run()
                load1 = open("/proc/loadavg").read().split()[0]
                loads.append(float(load1))
                if "refused" in res:
                    refused = res["refused"]
                    w.writerow([rnd, name, "", "", "", "", "", "", "", load1, "",
                                "not implemented: " + refused])
                    print("round %d %-16s not implemented (apply refuses it: %s)" %
                          (rnd, name, refused), flush=True)
                    continue
                results[name].append(res)
                w.writerow([rnd, name, res["requests"], res["failed"], "%.1f" % res["gap_ms"],
                            "%.1f" % res["new_serving_ms"], "%.1f" % res["decided_ms"],
                            "%.1f" % res["restored_ms"], "%.1f" % res["from_failure_ms"], load1,
                            res["errors"],
                            res.get("reason", "")])
                f.flush()
                if name.startswith("rollback"):
                    what = ("rolled back after %s ms, answered %s ms after the rolled-back event "
                            "(%s ms after the first failure event)" %
                            (fmt(res["decided_ms"]), fmt(res["restored_ms"]),
                             fmt(res["from_failure_ms"])))
                elif name == "podman":
                    what = "new version answered after %s ms (stop+rm+run took %s ms)" % (
                        fmt(res["new_serving_ms"]), fmt(res["commands_ms"]))
                else:
                    what = "new version answered after %s ms, committed after %s ms" % (
                        fmt(res["new_serving_ms"]), fmt(res["decided_ms"]))
                print("round %d %-15s %4d requests, %4d failed (%s), longest gap %s ms; %s "
                      "(load %s)" % (rnd, name, res["requests"], res["failed"],
                                     res["errors"] or "-", fmt(res["gap_ms"]), what, load1),
                      flush=True)
    with open(os.path.join(a.keep, "events.json"), "w") as f:
        f.write(b.sv("events", "-o", "json").stdout)
    print_table(a, results, refused, loads)


def print_table(a, results, refused, loads):
    fmt_row = "%-46s %12s %14s %13s %14s %13s %13s"
    head = fmt_row % ("scenario (median / max of %d rounds)" % a.rounds, "failed req.",
                      "longest gap", "apply->new", "apply->decided", "rb event->up",
                      "1st fail->up")
    print("\n" + head + "   (times in ms)\n" + "-" * len(head))
    for key, title in TITLES.items():
        rs = results[key]
        if not rs:
            why = ("not implemented (apply refuses `update: start-first`: %s)" % refused
                   if key == "start-first" else "no round")
            print("%-46s %s" % (title, why))
            continue
        cells = []
        for col in COLUMNS:
            vals = [r[col] for r in rs if r[col] == r[col]]
            if col == "new_serving_ms" and key.startswith("rollback"):
                vals = []  # the old version answers again: nothing new to serve
            cells.append("%s / %s" % (fmt(statistics.median(vals)), fmt(max(vals)))
                         if vals else "-")
        print(fmt_row % (title, *cells))
    load = open("/proc/loadavg").read().split()[:3]
    print("\n1-minute load average %s-%s during the rounds, %s (1/5/15 min) at the end, on %d "
          "cores shared with other agents building; commitAfter %s (the default is 60 s); "
          "%g requests/s, %g s timeout each; podman stop -t %d (storevisord's fixed stop "
          "grace)." % (min(loads, default="?"), max(loads, default="?"), " ".join(load),
                       os.cpu_count(), a.commit_after, a.rate, a.timeout, a.stop_grace))
    print("CSV: %s" % a.csv)


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print("bench/update: %s" % e, file=sys.stderr)
        sys.exit(1)
