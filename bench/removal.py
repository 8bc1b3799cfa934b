"""Section 2, removal: background removal per photo, thumbgen's embedded engine (daemon, per-photo
removal time from /metrics) vs rembg with the same u2netp model; IoU vs ground truth.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

import analysis
import corpus
from harness import Daemon, SystemLoad, fresh, link_into, log, log_durations, prom, prom_sum, rembg_offline_env, run_measured, stage_delta, summary, warm
from harness import HERE


# --- 2. removal ---------------------------------------------------------------------------------

def section_removal(cfg, ctx):
    m, rounds = cfg["m"], cfg["removal_rounds"]
    log(f"removal: corpus of {m} 12 MP photos with ground truth")
    photos, made = corpus.ensure_photos(ctx["corpus"], m)
    control = corpus.ensure_control_photo(ctx["corpus"])
    warm([p for p, _ in photos] + [control[0]])
    root = fresh(ctx["work"] / "removal")
    rembg_env = rembg_offline_env(ctx)
    load = SystemLoad()
    own_cpu = 0.0
    serial, batch, rembg_runs = [], [], []
    for r in range(1, rounds + 1):
        res = removal_serial(cfg, ctx, photos + [control], fresh(root / f"r{r}-thumbgen-serial"), m)
        res["control"] = {k: res[k].pop() for k in ("removal_s", "removal_cpu_s", "job_cpu_s", "job_wall_s")
                          if len(res[k]) == m + 1}
        serial.append(res)
        own_cpu += res["cpu_s_total"]
        log(f"removal r{r} thumbgen serial: removal median {statistics.median(res['removal_s']):.2f} s, "
            f"job CPU median {statistics.median(res['job_cpu_s']):.2f} s")
        masks = fresh(root / f"r{r}-rembg-masks")
        cmd = [str(ctx["python"]), str(HERE / "rembg_remove.py"), "--masks", str(masks)] + \
            [str(p) for p, _ in photos + [control]]
        res = run_measured(cmd, root, rembg_env, ctx["logs"] / f"removal-r{r}-rembg.log")
        lines = (ctx["logs"] / f"removal-r{r}-rembg.log").read_text().strip().splitlines()
        if res["rc"] != 0 or not lines:
            raise RuntimeError(f"rembg failed; see {ctx['logs'] / f'removal-r{r}-rembg.log'}")
        res["detail"] = json.loads(lines[-1])
        res["control"] = res["detail"]["images"].pop()
        res["masks"] = str(masks)
        rembg_runs.append(res)
        own_cpu += res["cpu_s"]
        log(f"removal r{r} rembg: median {statistics.median(i['wall_s'] for i in res['detail']['images']):.2f} s "
            f"per photo, {res['detail']['intra_op_num_threads']} intra-op threads (0 = ORT default)")
        res = removal_batch(cfg, ctx, photos, fresh(root / f"r{r}-thumbgen-batch"))
        batch.append(res)
        own_cpu += res["cpu_s"]
        log(f"removal r{r} thumbgen batch: {res['wall_s']:.1f} s for {m} photos")
    load_info = load.done(own_cpu)

    log("removal: IoU against ground truth")
    cut_paths = analysis.thumbgen_cutouts(root / "r1-thumbgen-serial" / ".thumbgen")
    per_photo = []
    import numpy as np
    from PIL import Image
    for photo, gt_path in photos:
        gt = np.asarray(Image.open(gt_path))
        row = {"photo": photo.name}
        if photo.name in cut_paths:
            alpha, where = analysis.thumbgen_full_alpha(cut_paths[photo.name], photo)
            row["thumbgen_iou"] = analysis.iou(alpha, gt)
            row["thumbgen_place"] = where
        else:
            row["thumbgen_iou"] = None
        rm = np.asarray(Image.open(Path(rembg_runs[0]["masks"]) / (photo.stem + ".png")).convert("L"))
        row["rembg_iou"] = analysis.iou(rm, gt)
        per_photo.append(row)

    tg_removal = [x for s in serial for x in s["removal_s"]]
    tg_job_cpu = [x for s in serial for x in s["job_cpu_s"]]
    tg_removal_cpu = [x for s in serial for x in s["removal_cpu_s"]]
    tg_job_wall = [x for s in serial for x in s["job_wall_s"]]
    rb_wall = [i["wall_s"] for run in rembg_runs for i in run["detail"]["images"]]
    rb_cpu = [i["cpu_s"] for run in rembg_runs for i in run["detail"]["images"]]
    rb_dec_cpu = [i["decode_cpu_s"] for run in rembg_runs for i in run["detail"]["images"]]
    rb_dec_wall = [i["decode_s"] for run in rembg_runs for i in run["detail"]["images"]]
    rb_batch = [sum(i["wall_s"] + i["decode_s"] for i in run["detail"]["images"]) / m for run in rembg_runs]
    tg_batch = [b["wall_s"] / m for b in batch]
    ious_t = [p["thumbgen_iou"] for p in per_photo if p["thumbgen_iou"] is not None]
    ious_r = [p["rembg_iou"] for p in per_photo]
    d0 = rembg_runs[0]["detail"]
    ctl_tg = [s["control"].get("removal_s") for s in serial if s["control"].get("removal_s") is not None]
    ctl_tg_cpu = [s["control"].get("removal_cpu_s") for s in serial if s["control"].get("removal_cpu_s") is not None]
    ctl_rb = [r["control"]["wall_s"] for r in rembg_runs]
    ctl_rb_cpu = [r["control"]["cpu_s"] for r in rembg_runs]
    return {
        "control_photo": control[0].name,
        "control_thumbgen_removal_s": summary(ctl_tg), "control_thumbgen_removal_cpu_s": summary(ctl_tg_cpu),
        "control_rembg_remove_s": summary(ctl_rb), "control_rembg_remove_cpu_s": summary(ctl_rb_cpu),
        "m": m, "rounds": rounds, "corpus_generated_files": made,
        "thumbgen_removal_s": summary(tg_removal),
        "thumbgen_job_cpu_s": summary(tg_job_cpu),
        "thumbgen_removal_cpu_s": summary(tg_removal_cpu),
        "thumbgen_metrics_poll_cores": statistics.fmean(s["metrics_poll_cores"] for s in serial),
        "thumbgen_job_wall_s": summary(tg_job_wall),
        "thumbgen_serial_stages_ms_per_photo": serial[0]["stages_ms_per_photo"],
        "thumbgen_batch_wall_s_per_photo": summary(tg_batch),
        "thumbgen_batch_cpu_s_per_photo": summary([b["cpu_s"] / m for b in batch]),
        "thumbgen_batch_removal_s": summary([x for b in batch for x in [b["removal_mean_s"]]]),
        "thumbgen_batch_workers": batch[0]["workers"],
        "thumbgen_threads": serial[0]["threads"],
        "thumbgen_peak_rss_mb": max(s["vmhwm_mb"] for s in serial + batch),
        "rembg_remove_s": summary(rb_wall),
        "rembg_remove_cpu_s": summary(rb_cpu),
        "rembg_decode_s": summary(rb_dec_wall),
        "rembg_decode_cpu_s": summary(rb_dec_cpu),
        "rembg_job_cpu_s": summary([a + b for a, b in zip(rb_cpu, rb_dec_cpu)]),
        "rembg_batch_wall_s_per_photo": summary(rb_batch),
        "rembg_session_s": d0["session_s"], "rembg_intra_op_threads": d0["intra_op_num_threads"],
        "rembg_inter_op_threads": d0["inter_op_num_threads"], "rembg_process_threads": d0["process_threads"],
        "rembg_peak_rss_mb": max(r["maxrss_mb"] for r in rembg_runs),
        "rembg_version": d0["rembg"], "onnxruntime_version": d0["onnxruntime"], "rembg_providers": d0["providers"],
        "ratio_wall": statistics.median(tg_removal) / statistics.median(rb_wall),
        "ratio_cpu": statistics.median(tg_removal_cpu) / statistics.median(rb_cpu) if tg_removal_cpu else None,
        "ratio_cpu_job": statistics.median(tg_job_cpu) / statistics.median([a + b for a, b in zip(rb_cpu, rb_dec_cpu)]),
        "ratio_batch_wall": statistics.median(tg_batch) / statistics.median(rb_batch),
        "iou_thumbgen": summary(ious_t), "iou_rembg": summary(ious_r), "per_photo": per_photo,
        "system": load_info,
        "raw": {"serial": serial, "batch": batch,
                "rembg": [{k: v for k, v in r.items() if k != "masks"} for r in rembg_runs]},
    }


def removal_serial(cfg, ctx, photos, base, profile_first=None):
    """One worker; photos dropped one at a time, each after the previous one's output exists, so
    every /metrics and CPU delta belongs to exactly one photo.

    The removal's own CPU: /metrics is polled every 20 ms; the `validate` stage is observed just
    before the engine starts and the removal histogram just after it ends, so the daemon's CPU
    time read at those two moments brackets the removal (±20 ms). The CPU that answering the
    polls costs is measured first (3 s of polling with nothing to do) and subtracted."""
    link_into([p for p, _ in photos], base / "staging")
    d = Daemon(cfg["binary"], base, ctx["logs"], ctx["home"], WORKERS=1)
    removal, removal_cpu, job_cpu, job_wall = [], [], [], []
    poll = 0.02
    try:
        d.wait_ready()
        c0, t0 = d.cpu_s(), time.perf_counter()
        while time.perf_counter() - t0 < 3.0:
            d.metrics()
            time.sleep(poll)
        poll_cores = (d.cpu_s() - c0) / (time.perf_counter() - t0)
        m_start = d.metrics()
        cpu_start = d.cpu_s()
        m_prof = None
        for i, (p, _) in enumerate(photos):
            m0, c0 = d.metrics(), d.cpu_s()
            t0 = time.perf_counter()
            os.rename(base / "staging" / p.name, base / "produtos" / p.name)
            deadline = t0 + 600
            start = end = None
            v0 = prom(m0, "thumbgen_stage_duration_seconds_count", stage="validate")
            r0 = prom(m0, "thumbgen_removal_duration_seconds_count", engine="local")
            while time.perf_counter() < deadline:
                m1 = d.metrics()
                cpu_now, t_now = d.cpu_s(), time.perf_counter()
                if start is None and prom(m1, "thumbgen_stage_duration_seconds_count", stage="validate") > v0:
                    start = (cpu_now, t_now)
                if end is None and prom(m1, "thumbgen_removal_duration_seconds_count", engine="local") > r0:
                    end = (cpu_now, t_now)
                if prom(m1, "thumbgen_thumbnails_written_total") >= i + 1 or \
                        prom_sum(m1, "thumbgen_inputs_rejected_total") > prom_sum(m0, "thumbgen_inputs_rejected_total"):
                    break
                time.sleep(poll)
            job_wall.append(time.perf_counter() - t0)
            job_cpu.append(d.cpu_s() - c0)
            removal.append(prom(m1, "thumbgen_removal_duration_seconds_sum", engine="local")
                           - prom(m0, "thumbgen_removal_duration_seconds_sum", engine="local"))
            if start and end:
                removal_cpu.append(max(0.0, end[0] - start[0] - poll_cores * (end[1] - start[1])))
            if profile_first is not None and i + 1 == profile_first:
                m_prof = d.metrics()
        m_end = d.metrics()
        cpu_total = d.cpu_s() - cpu_start
        st = d.status()
    finally:
        d.stop()
    stages = stage_delta(m_prof or m_end, m_start)
    profiled = profile_first or len(photos)
    return {"removal_s": removal, "removal_cpu_s": removal_cpu, "job_cpu_s": job_cpu, "job_wall_s": job_wall,
            "cpu_s_total": cpu_total, "metrics_poll_cores": poll_cores,
            "stages_ms_per_photo": {k: v["sum_s"] * 1000 / profiled for k, v in stages.items()},
            "rejected": prom_sum(m_end, "thumbgen_inputs_rejected_total"),
            "written": prom(m_end, "thumbgen_thumbnails_written_total"),
            "vmhwm_mb": st["VmHWM"] / 1024, "threads": st["Threads"], "jobs": log_durations(base)}


def removal_batch(cfg, ctx, photos, base):
    """Default workers (one per core); every photo renamed in at once; wall until all are done."""
    link_into([p for p, _ in photos], base / "staging")
    d = Daemon(cfg["binary"], base, ctx["logs"], ctx["home"])
    try:
        d.wait_ready()
        m0, c0 = d.metrics(), d.cpu_s()
        t0 = time.perf_counter()
        for p, _ in photos:
            os.rename(base / "staging" / p.name, base / "produtos" / p.name)
        deadline = t0 + 1200
        while time.perf_counter() < deadline:
            m1 = d.metrics()
            if prom(m1, "thumbgen_thumbnails_written_total") + prom_sum(m1, "thumbgen_inputs_rejected_total") \
                    >= len(photos):
                break
            time.sleep(0.05)
        wall, cpu = time.perf_counter() - t0, d.cpu_s() - c0
        st = d.status()
        workers = None
        cfg_text = subprocess.run([str(cfg["binary"]), "config", "--base-dir", str(base)], cwd=base, env=d.env,
                                  capture_output=True, text=True).stdout
        mm = re.search(r"^workers\s*=\s*(\d+)", cfg_text, re.M)
        workers = int(mm.group(1)) if mm else None
    finally:
        d.stop()
    count = prom(m1, "thumbgen_removal_duration_seconds_count", engine="local") - \
        prom(m0, "thumbgen_removal_duration_seconds_count", engine="local")
    total = prom(m1, "thumbgen_removal_duration_seconds_sum", engine="local") - \
        prom(m0, "thumbgen_removal_duration_seconds_sum", engine="local")
    return {"wall_s": wall, "cpu_s": cpu, "removals": count, "removal_mean_s": total / count if count else None,
            "workers": workers if workers else os.cpu_count(), "vmhwm_mb": st["VmHWM"] / 1024,
            "written": prom(m1, "thumbgen_thumbnails_written_total")}
