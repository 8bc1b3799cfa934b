"""Extra section overflow (only with --only): a burst larger than QUEUE_CAPACITY must not starve.
"""

from __future__ import annotations

import os
import time

import corpus
from harness import Daemon, fresh, link_into, log, prom


# --- extra: a burst larger than the queue ------------------------------------------------------

def section_overflow(cfg, ctx, files_n=400, capacity=100, timeout=300):
    """Not part of a default run (--only overflow): QUEUE_CAPACITY=100 and 400 small cut-outs
    renamed in at once, so the queue overflows and the rest must come from the overflow rescan."""
    log(f"overflow: {files_n} cut-outs of 200x150 with QUEUE_CAPACITY={capacity}")
    files, _ = corpus.ensure_small(ctx["corpus"], files_n, 200, 150)
    base = fresh(ctx["work"] / "overflow")
    link_into(files, base / "staging")
    d = Daemon(cfg["binary"], base, ctx["logs"], ctx["home"], QUEUE_CAPACITY=capacity)
    timeline = []
    try:
        d.wait_ready()
        c0, t0 = d.cpu_s(), time.perf_counter()
        for f in files:
            os.rename(base / "staging" / f.name, base / "produtos" / f.name)
        last = -1
        while time.perf_counter() - t0 < timeout:
            m = d.metrics()
            w = prom(m, "thumbgen_thumbnails_written_total")
            if w != last or len(timeline) % 10 == 0:
                timeline.append((round(time.perf_counter() - t0, 1), int(w), int(prom(m, "thumbgen_queue_depth")),
                                 round(d.cpu_s() - c0, 2)))
                last = w
            if w >= files_n:
                break
            time.sleep(1)
        cpu = d.cpu_s() - c0
        m = d.metrics()
    finally:
        d.stop()
    written = prom(m, "thumbgen_thumbnails_written_total")
    return {"files": files_n, "queue_capacity": capacity, "written": written, "seconds": time.perf_counter() - t0,
            "daemon_cpu_s": cpu, "all_processed": written >= files_n,
            "files_detected": prom(m, "thumbgen_files_detected_total", folder="produtos"), "timeline": timeline}
