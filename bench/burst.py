"""Section 5, burst: small cut-outs renamed in at once: all processed?, throughput, peak RSS; then the
idle RSS of the daemon that did the work.
"""

from __future__ import annotations

import os
import threading
import time

import corpus
from harness import Daemon, SystemLoad, expected_outputs, fresh, link_into, log, prom, prom_sum, stage_delta, warm
from idle import sample_idle


# --- 5. burst -----------------------------------------------------------------------------------

def section_burst(cfg, ctx):
    count, nb = cfg["burst"], cfg["burst_b"]
    log(f"burst: {count} cut-outs of 200x150 (+{nb} background)")
    files, made = corpus.ensure_small(ctx["corpus"], count, 200, 150)
    bgs, _ = corpus.ensure_backgrounds(ctx["corpus"], max(nb, 1))
    bgs = bgs[:nb]
    base = fresh(ctx["work"] / "burst")
    link_into(bgs, base / "backgrounds")
    link_into(files, base / "staging")
    warm(files)
    expected = count * (nb + 1)
    d = Daemon(cfg["binary"], base, ctx["logs"], ctx["home"])
    rss_samples = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            try:
                rss_samples.append((time.perf_counter(), d.rss_mb()))
            except (OSError, KeyError):
                return
            stop.wait(0.25)

    load = SystemLoad()
    try:
        d.wait_ready()
        d.wait_log("background ready", nb, 60)
        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        m0, c0 = d.metrics(), d.cpu_s()
        t0 = time.perf_counter()
        prod = base / "produtos"
        for f in files:
            os.rename(base / "staging" / f.name, prod / f.name)
        t_dropped = time.perf_counter()
        deadline = t0 + cfg["burst_timeout"]
        written = rejected = 0
        last_progress, last_written, t_done = time.perf_counter(), -1, None
        progress = []
        while time.perf_counter() < deadline:
            m1 = d.metrics()
            written = prom(m1, "thumbgen_thumbnails_written_total") - prom(m0, "thumbgen_thumbnails_written_total")
            rejected = prom_sum(m1, "thumbgen_inputs_rejected_total") - prom_sum(m0, "thumbgen_inputs_rejected_total")
            now = time.perf_counter()
            if written != last_written:
                last_written, last_progress = written, now
                progress.append((now - t0, written, prom(m1, "thumbgen_queue_depth")))
            if written + rejected * (nb + 1) >= expected:
                t_done = now
                break
            if now - last_progress > 400:  # nothing for a long time: the rest waits for a rescan at best
                break
            time.sleep(0.2)
        cpu = d.cpu_s() - c0
        stop.set()
        th.join(2)
        st = d.status()
        m1 = d.metrics()
        out_dir = base / "thumbnails-prontas"
        present = set(os.listdir(out_dir))
        names = expected_outputs([f.stem for f in files], [b.stem for b in bgs])
        missing = [n for n in names if n not in present]
        rejected_files = len([p for p in (base / "rejeitados").glob("*") if not p.name.endswith(".error.txt")]) \
            if (base / "rejeitados").is_dir() else 0
        log(f"burst: {written:.0f}/{expected} thumbnails, {rejected:.0f} rejected; idle afterwards "
            f"for {cfg['idle_after_seconds']} s")
        time.sleep(5)
        after = sample_idle(d, cfg["idle_after_seconds"])
        after["smaps_mb"] = d.smaps()
    finally:
        stop.set()
        d.stop()
    elapsed = (t_done or time.perf_counter()) - t0
    stages = stage_delta(m1, m0)
    return {"files": count, "size": "200x150", "backgrounds": nb, "expected_thumbnails": expected,
            "corpus_generated_files": made,
            "all_processed": t_done is not None and not missing and rejected == 0,
            "thumbnails_written": written, "outputs_missing": len(missing), "rejected": rejected,
            "rejected_files": rejected_files, "rename_in_s": t_dropped - t0, "elapsed_s": elapsed,
            "files_per_s": count / elapsed, "thumbnails_per_s": written / elapsed,
            "daemon_cpu_s": cpu, "cpu_ms_per_file": cpu * 1000 / count,
            "peak_rss_mb_vmhwm": st["VmHWM"] / 1024,
            "rss_mb_max_sampled": max((r for _, r in rss_samples), default=None),
            "rss_samples": len(rss_samples),
            "stages_ms_per_file": {k: v["sum_s"] * 1000 / count for k, v in stages.items()},
            "queue_depth_max": max((q for _, _, q in progress), default=None),
            "progress": progress[:: max(1, len(progress) // 60)],
            "idle_after": after, "system": load.done(cpu)}
