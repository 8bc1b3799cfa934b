"""Section 3, latency: drop -> last thumbnail latency for small cut-outs (no removal), daemon running
on a quiet machine.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from pathlib import Path

import corpus
from harness import Daemon, SystemLoad, fresh, link_into, log, log_durations, pct, prom, stage_delta, wait_quiet


# --- 3. latency ---------------------------------------------------------------------------------

class OutputWatcher(threading.Thread):
    """Records when each final name appears in a folder (IN_MOVED_TO / IN_CLOSE_WRITE)."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        from inotify_simple import INotify, flags
        self.ino = INotify()
        self.ino.add_watch(str(folder), flags.MOVED_TO | flags.CLOSE_WRITE | flags.Q_OVERFLOW)
        self.seen = {}
        self.overflow = False
        self.running = True

    def run(self):
        while self.running:
            for ev in self.ino.read(timeout=200):
                now = time.perf_counter()
                if ev.mask & 0x4000:  # IN_Q_OVERFLOW
                    self.overflow = True
                if ev.name and not ev.name.startswith("."):
                    self.seen.setdefault(ev.name, now)

    def stop(self):
        self.running = False
        self.join(2)
        self.ino.close()


def section_latency(cfg, ctx):
    k = cfg["k"]
    log(f"latency: {k} cut-outs of 800x600, one every 50-100 ms")
    smalls, _ = corpus.ensure_small(ctx["corpus"], k, 800, 600)
    bgs, _ = corpus.ensure_backgrounds(ctx["corpus"], 1)
    payloads = [p.read_bytes() for p in smalls]
    base = fresh(ctx["work"] / "latency")
    link_into(bgs, base / "backgrounds")
    # Latency is a wall-clock figure: start only on a quiet machine, and say how quiet it was.
    quiet = wait_quiet()
    log(f"latency: machine {'quiet' if quiet['quiet'] else 'NOT quiet'} "
        f"({quiet['busy_cores_before']:.2f} cores busy) after {quiet['waited_s']:.0f} s")
    d = Daemon(cfg["binary"], base, ctx["logs"], ctx["home"])
    rng = random.Random(42)
    drops = {}
    load = SystemLoad()
    try:
        d.wait_ready()
        d.wait_log("background ready", 1, 60)
        out_dir = base / "thumbnails-prontas"
        watcher = OutputWatcher(out_dir)
        watcher.start()
        m0, c0 = d.metrics(), d.cpu_s()
        prod = base / "produtos"
        depth = []
        for i, data in enumerate(payloads):
            depth.append(prom(d.metrics(), "thumbgen_queue_depth") + prom(d.metrics(), "thumbgen_jobs_in_flight"))
            name = f"lat{i:04d}.png"
            part = prod / (name + ".part")
            with open(part, "wb") as f:
                f.write(data)
            time.sleep(rng.uniform(0.05, 0.10))
            t0 = time.perf_counter()
            os.rename(part, prod / name)
            drops[f"lat{i:04d}"] = t0
        bg = bgs[0].stem
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            if all(f"{s}.jpg" in watcher.seen and f"{s}__{bg}.jpg" in watcher.seen for s in drops):
                break
            time.sleep(0.05)
        watcher.stop()
        m1, cpu = d.metrics(), d.cpu_s() - c0
        st = d.status()
    finally:
        d.stop()
    lat, lost = [], []
    for s, t0 in drops.items():
        a, b = watcher.seen.get(f"{s}.jpg"), watcher.seen.get(f"{s}__{bg}.jpg")
        if a is None or b is None:
            lost.append(s)
        else:
            lat.append((max(a, b) - t0) * 1000)
    stages = stage_delta(m1, m0)
    n = len(drops)
    service = [j["duration_ms"] for j in log_durations(base) if j["input"] and j["input"].startswith("lat")]
    return {"k": k,
            "job_ms": {"p50": pct(service, 50), "p90": pct(service, 90), "p99": pct(service, 99),
                       "max": max(service) if service else None},
            "busy_at_drop": {"max": max(depth) if depth else None,
                             "share_nonzero": sum(1 for x in depth if x) / len(depth) if depth else None}, "size": "800x600", "backgrounds": 1, "outputs_per_drop": 2,
            "latency_ms": {"p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99), "max": max(lat) if lat else None,
                           "min": min(lat) if lat else None, "mean": statistics.fmean(lat) if lat else None},
            "missing": lost, "inotify_overflow": watcher.overflow,
            "stages_ms_per_drop": {k2: v["sum_s"] * 1000 / n for k2, v in stages.items()},
            "daemon_cpu_ms_per_drop": cpu * 1000 / n, "vmhwm_mb": st["VmHWM"] / 1024,
            "system": load.done(cpu), "quiet_before": quiet, "latencies_ms": lat}
