"""Section 4, idle: an idle daemon's CPU and RSS.
"""

from __future__ import annotations

import statistics
import time

from harness import Daemon, fresh, log


# --- 4. idle ------------------------------------------------------------------------------------

def sample_idle(d: Daemon, seconds: int):
    rss, cpu0, t0 = [], d.cpu_s(), time.perf_counter()
    cpus = []
    for _ in range(seconds):
        time.sleep(1.0)
        rss.append(d.rss_mb())
        cpus.append(d.cpu_s())
    secs = time.perf_counter() - t0
    return {"seconds": secs, "cpu_s": d.cpu_s() - cpu0, "cpu_pct": (d.cpu_s() - cpu0) / secs * 100,
            "rss_mb_max": max(rss), "rss_mb_mean": statistics.fmean(rss), "rss_mb_min": min(rss),
            "threads": d.status()["Threads"], "samples": len(rss)}


def section_idle(cfg, ctx):
    log(f"idle: empty daemon, {cfg['idle_seconds']} s after a 5 s settle")
    base = fresh(ctx["work"] / "idle")
    d = Daemon(cfg["binary"], base, ctx["logs"], ctx["home"])
    try:
        ready = d.wait_ready()
        time.sleep(5)
        res = sample_idle(d, cfg["idle_seconds"])
        res["ready_after_s"] = ready
        res["vmhwm_mb"] = d.status()["VmHWM"] / 1024
        res["smaps_mb"] = d.smaps()
    finally:
        d.stop()
    return res
