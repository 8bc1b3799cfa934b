"""Section 1, compose: compose + encode per thumbnail, `thumbgen process` on 12 MP RGBA cut-outs vs
the same work in libvips (pyvips), interleaved rounds, CPU from the child's rusage.
"""

from __future__ import annotations

import os
import statistics
import time

import analysis
import corpus
from harness import Daemon, SystemLoad, clean_env, expected_outputs, fresh, link_into, log, log_durations, prom, run_measured, stage_delta, summary, warm
from harness import HERE


# --- 1. compose ---------------------------------------------------------------------------------

def section_compose(cfg, ctx):
    n, b, rounds = cfg["n"], cfg["b"], cfg["compose_rounds"]
    log(f"compose: corpus of {n} cut-outs 4000x3000 + {b} backgrounds")
    cutouts, made_c = corpus.ensure_cutouts(ctx["corpus"], n)
    bgs, made_b = corpus.ensure_backgrounds(ctx["corpus"], b)
    oversize = [p.name for p in cutouts if p.stat().st_size > 10 * 1024 * 1024]
    warm(cutouts + bgs)
    stems, bg_stems = [p.stem for p in cutouts], [p.stem for p in bgs]
    names = expected_outputs(stems, bg_stems)
    thumbs = len(names)
    root = fresh(ctx["work"] / "compose")
    py = str(ctx["python"])
    vips_env = dict(os.environ, VIPS_CONCURRENCY="1", HOME=str(ctx["home"]))
    load = SystemLoad()
    own_cpu = 0.0
    runs = {"thumbgen": [], "vips": [], "thumbgen_empty": [], "vips_noop": []}
    for r in range(1, rounds + 1):
        # A: thumbgen process
        base = fresh(root / f"r{r}-thumbgen")
        link_into(cutouts, base / "produtos")
        link_into(bgs, base / "backgrounds")
        res = run_measured([str(cfg["binary"]), "process", "--base-dir", str(base)], base,
                           clean_env(ctx["home"]), ctx["logs"] / f"compose-r{r}-thumbgen.log")
        out_dir = base / "thumbnails-prontas"
        res["outputs_found"] = sum(1 for nm in names if (out_dir / nm).is_file())
        res["output_bytes"] = sum((out_dir / nm).stat().st_size for nm in names if (out_dir / nm).is_file())
        res["rejected"] = len([p for p in (base / "rejeitados").glob("*") if not p.name.endswith(".error.txt")]) \
            if (base / "rejeitados").is_dir() else 0
        res["log_jobs"] = log_durations(base)
        runs["thumbgen"].append(res)
        own_cpu += res["cpu_s"]
        log(f"compose r{r} thumbgen: {res['cpu_s']:.2f} s CPU, {res['wall_s']:.2f} s wall, "
            f"{res['outputs_found']}/{thumbs} outputs, rc {res['rc']}")
        # B: libvips
        vout = fresh(root / f"r{r}-vips")
        cmd = [py, str(HERE / "vips_compose.py"), "--out", str(vout)]
        for bg in bgs:
            cmd += ["--bg", str(bg)]
        res = run_measured(cmd + [str(c) for c in cutouts], vout.parent, vips_env,
                           ctx["logs"] / f"compose-r{r}-vips.log")
        res["outputs_found"] = sum(1 for nm in names if (vout / nm).is_file())
        res["output_bytes"] = sum((vout / nm).stat().st_size for nm in names if (vout / nm).is_file())
        runs["vips"].append(res)
        own_cpu += res["cpu_s"]
        log(f"compose r{r} vips:     {res['cpu_s']:.2f} s CPU, {res['wall_s']:.2f} s wall, "
            f"{res['outputs_found']}/{thumbs} outputs, rc {res['rc']}")
        # fixed start-up costs: thumbgen process with nothing to do, python + pyvips with no work
        empty = fresh(root / f"r{r}-thumbgen-empty")
        res = run_measured([str(cfg["binary"]), "process", "--base-dir", str(empty)], empty,
                           clean_env(ctx["home"]), ctx["logs"] / f"compose-r{r}-thumbgen-empty.log")
        runs["thumbgen_empty"].append(res)
        res = run_measured([py, str(HERE / "vips_compose.py"), "--out", str(vout), "--noop"], vout.parent,
                           vips_env, ctx["logs"] / f"compose-r{r}-vips-noop.log")
        runs["vips_noop"].append(res)
        own_cpu += runs["thumbgen_empty"][-1]["cpu_s"] + res["cpu_s"]
    load_info = load.done(own_cpu)

    def per_thumb(key, base_key=None):
        vals = [x["cpu_s"] * 1000 / thumbs for x in runs[key]]
        out = {"cpu_ms_per_thumb": summary(vals),
               "wall_ms_per_thumb": summary([x["wall_s"] * 1000 / thumbs for x in runs[key]]),
               "peak_rss_mb": max(x["maxrss_mb"] for x in runs[key])}
        if base_key:
            fixed = statistics.median(x["cpu_s"] for x in runs[base_key])
            out["startup_cpu_ms"] = fixed * 1000
            out["net_cpu_ms_per_thumb"] = summary([(x["cpu_s"] - fixed) * 1000 / thumbs for x in runs[key]])
        out["output_bytes_per_thumb"] = statistics.median(x["output_bytes"] for x in runs[key]) / thumbs
        out["all_outputs"] = all(x["outputs_found"] == thumbs and x["rc"] == 0 for x in runs[key])
        return out

    tg, vp = per_thumb("thumbgen", "thumbgen_empty"), per_thumb("vips", "vips_noop")
    ratio = tg["cpu_ms_per_thumb"]["median"] / vp["cpu_ms_per_thumb"]["median"]
    net_ratio = tg["net_cpu_ms_per_thumb"]["median"] / vp["net_cpu_ms_per_thumb"]["median"]
    log("compose: comparing outputs (PSNR)")
    psnr = analysis.psnr_sets(root / f"r{rounds}-thumbgen" / "thumbnails-prontas", root / f"r{rounds}-vips", names)
    psnr.pop("per_image", None)
    # per-stage profile of the same work from a daemon with one worker (/metrics + log)
    log("compose: stage profile (daemon, WORKERS=1)")
    profile = compose_profile(cfg, ctx, cutouts, bgs, thumbs)
    return {"n": n, "b": b, "rounds": rounds, "thumbnails_per_run": thumbs, "corpus_generated_files": made_c + made_b,
            "cutout_mb": [round(p.stat().st_size / 2**20, 2) for p in cutouts], "cutouts_over_10mib": oversize,
            "thumbgen": tg, "vips": vp, "ratio_cpu": ratio, "ratio_net_cpu": net_ratio,
            "ratio_wall": tg["wall_ms_per_thumb"]["median"] / vp["wall_ms_per_thumb"]["median"],
            "psnr_thumbgen_vs_vips": psnr, "profile": profile, "system": load_info,
            "raw": {k: [{kk: vv for kk, vv in x.items() if kk != "log_jobs"} for x in v] for k, v in runs.items()},
            "thumbgen_jobs_last_round": runs["thumbgen"][-1]["log_jobs"],
            "thumbgen_second_pass_jobs": [sum(1 for j in x["log_jobs"] if j["engine"] == "cache") for x in runs["thumbgen"]]}


def compose_profile(cfg, ctx, cutouts, bgs, thumbs):
    base = fresh(ctx["work"] / "compose" / "profile")
    link_into(bgs, base / "backgrounds")
    link_into(cutouts, base / "staging")
    d = Daemon(cfg["binary"], base, ctx["logs"], ctx["home"], WORKERS=1)
    try:
        d.wait_ready()
        d.wait_log("background ready", len(bgs), 60)
        m0, c0, t0 = d.metrics(), d.cpu_s(), time.perf_counter()
        for c in cutouts:
            os.rename(base / "staging" / c.name, base / "produtos" / c.name)
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline:
            m1 = d.metrics()
            if prom(m1, "thumbgen_thumbnails_written_total") >= thumbs:
                break
            time.sleep(0.1)
        wall, cpu = time.perf_counter() - t0, d.cpu_s() - c0
        m1 = d.metrics()
    finally:
        d.stop()
    stages = stage_delta(m1, m0)
    jobs = log_durations(base)
    job_ms = sum(j["duration_ms"] for j in jobs)
    staged_ms = sum(v["sum_s"] for v in stages.values()) * 1000
    n = len(cutouts)
    return {"workers": 1, "wall_s": wall, "cpu_s": cpu, "cpu_ms_per_thumb": cpu * 1000 / thumbs,
            "written": prom(m1, "thumbgen_thumbnails_written_total"),
            "stages_ms_per_product": {k: v["sum_s"] * 1000 / n for k, v in stages.items()},
            "stage_counts": {k: v["count"] for k, v in stages.items()},
            "job_ms_per_product": job_ms / n,
            "unstaged_ms_per_product": (job_ms - staged_ms) / n,
            "cache_hits": prom(m1, "thumbgen_cutout_cache_hits_total"),
            "jobs": jobs}
