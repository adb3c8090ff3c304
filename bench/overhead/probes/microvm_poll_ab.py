#!/usr/bin/python3
# Probe (root; run alone): QEMU CPU of the same pixz through `storevisor exec` (10 ms poll)
# and through a qemu-ga client that backs off to 0.5 s, alternating. Arg: MiB of input (2).
import sys, time, re; sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
import overhead as o
from pathlib import Path
W = Path(__file__).resolve().parents[3]
rd = W / "build/overhead/run"; rd.mkdir(parents=True, exist_ok=True)
bench = W / "build/overhead"; guest = W / "build/guest"
d = o.Storevisord(W / "build/bin", rd, bench)
try:
    d.start()
    o.make_volume_image(rd / "vol.img")
    d.apply([{"name": "bench-vm", "kind": "microvm", "kernel": str(guest / "vmlinux"),
              "initrd": str(guest / "initrd.img"), "cmdline": "sv.root=/dev/vda sv.rootmode=ro",
              "disks": [{"path": str(bench / "rootfs.ext4"), "readOnly": True},
                        {"path": str(rd / "vol.img")}],
              "cpus": 2, "memory": "1024Mi", "restart": "never"}])
    mv = o.SvMicroVm(d, "tcg", "vm"); mv.start()
    pid = mv.info()["pid"]
    time.sleep(5)
    c0 = o.proc_cpu_s(pid); time.sleep(20); c1 = o.proc_cpu_s(pid)
    print(f"idle QEMU CPU: {(c1 - c0) / 20 * 100:.1f}% of a CPU  load {o.loadavg()}", flush=True)
    s = o.Sizes(400, int(sys.argv[1]) if len(sys.argv) > 1 else 2, 32, 1, 900)
    script = mv.prefix() + o.xz_script(s, 2)
    q = o.Qga(str(d.dir / "state/vms/bench-vm/run/agent.sock"))
    for i in range(3):
        for how in ("storevisor exec (10 ms poll)", "qemu-ga client (backoff to 0.5 s)"):
            c0 = o.proc_cpu_s(pid); t0 = time.time()
            if how.startswith("storevisor"):
                out = mv.sh(o.xz_script(s, 2), 900)
            else:
                q.connect(30); out = q.exec(["/bin/sh", "-c", script], 900); q.sock.close(); q.sock = None
            cpu = o.proc_cpu_s(pid) - c0
            print(f"{how:36s} pixz {o.parse_xz(out)['pixz']:.3f} MB/s  wall {time.time()-t0:5.1f} s  QEMU CPU {cpu:5.1f} s  load {o.loadavg():.2f}", flush=True)
finally:
    d.stop()
    import shutil; shutil.rmtree(rd, ignore_errors=True)
