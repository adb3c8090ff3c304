#!/usr/bin/python3
# Probe (root; run alone: it uses build/overhead/run and storevisord's default names):
# the idle QEMU CPU of one microVM placed by storevisord, with the daemon running and stopped.
import sys, time, signal; sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
import overhead as o
from pathlib import Path
W = Path(__file__).resolve().parents[3]
rd = W / "build/overhead/run"; rd.mkdir(parents=True, exist_ok=True)
bench = W / "build/overhead"; guest = W / "build/guest"
d = o.Storevisord(W / "build/bin", rd, bench)
try:
    d.start()
    d.apply([{"name": "bench-vm", "kind": "microvm", "kernel": str(guest / "vmlinux"),
              "initrd": str(guest / "initrd.img"), "cmdline": "sv.root=/dev/vda sv.rootmode=ro",
              "disks": [{"path": str(bench / "rootfs.ext4"), "readOnly": True}],
              "cpus": 2, "memory": "1024Mi", "restart": "never"}])
    mv = o.SvMicroVm(d, "tcg", "vm")
    pid = mv.info()["pid"]
    time.sleep(10)
    for label in ("daemon running", "daemon stopped (SIGSTOP)"):
        if "stopped" in label:
            d.proc.send_signal(signal.SIGSTOP); time.sleep(2)
        tasks = {t.name: o.proc_cpu_s(f"{pid}/task/{t.name}") for t in Path(f"/proc/{pid}/task").iterdir()}
        c0 = o.proc_cpu_s(pid); time.sleep(20); c1 = o.proc_cpu_s(pid)
        per = {}
        for k, v in tasks.items():
            try:
                per[Path(f"/proc/{pid}/task/{k}/comm").read_text().strip()] = round(o.proc_cpu_s(f"{pid}/task/{k}") - v, 2)
            except OSError:
                pass
        print(f"idle QEMU CPU, {label}: {(c1 - c0) / 20 * 100:.1f}% of a CPU  {per}  load {o.loadavg()}", flush=True)
    d.proc.send_signal(signal.SIGCONT)
    print(mv.sh("top -bn1 | head -12", 60))
finally:
    d.proc.send_signal(signal.SIGCONT)
    d.stop()
    import shutil; shutil.rmtree(rd, ignore_errors=True)
