"""The report: machine facts and the Markdown tables of results.md.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess

from harness import TARGETS


# --- report -------------------------------------------------------------------------------------

def machine_facts(cfg, ctx):
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ctx["repo"]).stdout.strip()
        except OSError:
            return ""
    lscpu = sh(["lscpu"])
    model = re.search(r"^Model name:\s*(.+)$", lscpu, re.M)
    vips = sh([str(ctx["python"]), "-c", "import pyvips;print('%d.%d.%d (pyvips %s, %s mode)' % (pyvips.version(0), "
               "pyvips.version(1), pyvips.version(2), pyvips.__version__, 'API' if pyvips.API_mode else 'ABI'))"])
    pkgs = sh([str(ctx["python"]), "-m", "pip", "freeze"])
    pick = {}
    for line in pkgs.splitlines():
        name = line.split("==")[0].lower()
        if name in ("pyvips", "pyvips-binary", "rembg", "onnxruntime", "numpy", "pillow", "inotify-simple"):
            pick[name] = line.split("==")[-1]
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "cores": os.cpu_count(), "kernel": platform.release(), "rustc": sh(["rustc", "--version"]),
        "python": platform.python_version(), "thumbgen": sh([str(cfg["binary"]), "--version"]),
        "git_commit": sh(["git", "rev-parse", "--short", "HEAD"]),
        "git_dirty_files": len([x for x in sh(["git", "status", "--porcelain", "--", "src", "Cargo.toml",
                                               "Cargo.lock"]).splitlines() if x.strip()]),
        "binary_mtime_utc": dt.datetime.fromtimestamp(cfg["binary"].stat().st_mtime, dt.timezone.utc)
        .strftime("%Y-%m-%d %H:%M:%S"),
        "libvips": vips, "packages": pick,
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "loadavg_at_start": os.getloadavg(),
    }


def fmt(v, spec=".1f"):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return format(v, spec)


def verdict(ok):
    return "met" if ok else "**missed**"


def quiet_note(q):
    """How quiet the machine was before a wall-clock section started (wait_quiet)."""
    if not q:
        return ""
    state = "quiet" if q["quiet"] else f"NOT quiet (gave up after {q['waited_s']:.0f} s)"
    return (f"Before it started the machine was {state}: {q['busy_cores_before']:.2f} cores busy over 3 s "
            f"(limit {q['limit_cores']:.1f}), after waiting {q['waited_s']:.0f} s.")


def stage_list(stages, spec):
    """`name ms, …` of the stages that took any time, by name."""
    return ", ".join(f"{k} {v:{spec}}" for k, v in sorted(stages.items()) if v)


def markdown(results):
    cfg, f = results["config"], results["machine"]
    lines = [f"# thumbgen benchmark — {f['date_utc']} UTC{' (quick)' if cfg['quick'] else ''}", "",
             f"Machine: {f['cpu_model']}, {f['cores']} cores, {f['mem_gib']} GiB, kernel {f['kernel']}; "
             f"{f['rustc']}; thumbgen {f['thumbgen']} at {f['git_commit']}"
             f"{' (+%d uncommitted files in src/Cargo)' % f['git_dirty_files'] if f['git_dirty_files'] else ''}, "
             f"binary built {f['binary_mtime_utc']} UTC; libvips {f['libvips']}; "
             f"packages {', '.join(f'{k} {v}' for k, v in sorted(f['packages'].items()))}.", "",
             "| # | metric | thumbgen | reference | ratio | target | verdict |", "|---|---|---|---|---|---|---|"]
    c = results.get("compose")
    if c:
        t, v = c["thumbgen"], c["vips"]
        lines += [
            f"| 1 | compose+encode CPU ms / thumbnail (median of {c['rounds']} rounds, {c['thumbnails_per_run']} "
            f"thumbnails each) | {fmt(t['cpu_ms_per_thumb']['median'])} | libvips {fmt(v['cpu_ms_per_thumb']['median'])} "
            f"| {fmt(c['ratio_cpu'], '.2f')}× | ≤ {TARGETS['compose_cpu_ratio']}× | "
            f"{verdict(c['ratio_cpu'] <= TARGETS['compose_cpu_ratio'])} |",
            f"| 1 | same, net of process start-up (thumbgen {fmt(t['startup_cpu_ms'], '.0f')} ms, python+pyvips "
            f"{fmt(v['startup_cpu_ms'], '.0f')} ms) | {fmt(t['net_cpu_ms_per_thumb']['median'])} | "
            f"{fmt(v['net_cpu_ms_per_thumb']['median'])} | {fmt(c['ratio_net_cpu'], '.2f')}× | ≤ "
            f"{TARGETS['compose_cpu_ratio']}× | {verdict(c['ratio_net_cpu'] <= TARGETS['compose_cpu_ratio'])} |",
            f"| 1 | wall ms / thumbnail (thumbgen: default workers = cores; vips: 1 thread) | {fmt(t['wall_ms_per_thumb']['median'])} | {fmt(v['wall_ms_per_thumb']['median'])} | "
            f"{fmt(c['ratio_wall'], '.2f')}× | – | – |",
            f"| 1 | output kB / thumbnail | {fmt(t['output_bytes_per_thumb'] / 1000)} | "
            f"{fmt(v['output_bytes_per_thumb'] / 1000)} | {fmt(t['output_bytes_per_thumb'] / v['output_bytes_per_thumb'], '.2f')}× | – | – |",
            f"| 1 | PSNR thumbgen vs libvips: all / white / on backgrounds / worst image (dB) | "
            f"{fmt(c['psnr_thumbgen_vs_vips']['psnr_db_all'])} / {fmt(c['psnr_thumbgen_vs_vips']['psnr_db_white'])} / "
            f"{fmt(c['psnr_thumbgen_vs_vips']['psnr_db_background'])} / {fmt(c['psnr_thumbgen_vs_vips']['psnr_db_min_image'])} "
            f"| | | alike (≥ 30) | {verdict((c['psnr_thumbgen_vs_vips']['psnr_db_min_image'] or 0) >= 30)} |",
            f"| 1 | peak RSS MB | {fmt(t['peak_rss_mb'], '.0f')} | {fmt(v['peak_rss_mb'], '.0f')} | | | |",
            f"| 1 | compose CPU ratio no worse than before this work | | | {fmt(c['ratio_cpu'], '.2f')}× | ≤ "
            f"{TARGETS['compose_cpu_ratio_today']}× | {verdict(c['ratio_cpu'] <= TARGETS['compose_cpu_ratio_today'])} |",
        ]
    r = results.get("removal")
    if r:
        lines += [
            f"| 2 | removal wall s / photo, mask only (thumbgen: metric, 1 worker; rembg: remove(only_mask)) | "
            f"{fmt(r['thumbgen_removal_s']['median'], '.2f')} | rembg {fmt(r['rembg_remove_s']['median'], '.2f')} | "
            f"{fmt(r['ratio_wall'], '.2f')}× | ≤ {TARGETS['removal_wall_ratio']}× | "
            f"{verdict(r['ratio_wall'] <= TARGETS['removal_wall_ratio'])} |",
            f"| 2 | removal CPU s / photo (thumbgen: daemon CPU between the removal's start and end; rembg: "
            f"process CPU of remove(only_mask), all onnxruntime threads) | {fmt(r['thumbgen_removal_cpu_s']['median'], '.2f')} | "
            f"{fmt(r['rembg_remove_cpu_s']['median'], '.2f')} | {fmt(r['ratio_cpu'], '.2f')}× | – | – |",
            f"| 2 | job CPU s / photo (thumbgen: whole job incl. decode, cut-out, cache PNG, 1 thumbnail; rembg: "
            f"decode + mask) | {fmt(r['thumbgen_job_cpu_s']['median'], '.2f')} | "
            f"{fmt(r['rembg_job_cpu_s']['median'], '.2f')} | {fmt(r['ratio_cpu_job'], '.2f')}× | – | – |",
            f"| 2 | batch wall s / photo ({r['m']} photos; thumbgen {r['thumbgen_batch_workers']} workers, whole job; "
            f"rembg sequential decode+mask) | {fmt(r['thumbgen_batch_wall_s_per_photo']['median'], '.2f')} | "
            f"{fmt(r['rembg_batch_wall_s_per_photo']['median'], '.2f')} | {fmt(r['ratio_batch_wall'], '.2f')}× | – | – |",
            f"| 2 | removal on a 640×480 photo (≈ the model alone): wall s (CPU s) | "
            f"{fmt(r['control_thumbgen_removal_s']['median'], '.2f')} ({fmt((r['control_thumbgen_removal_cpu_s'] or {}).get('median'), '.2f')}) | "
            f"{fmt(r['control_rembg_remove_s']['median'], '.2f')} ({fmt(r['control_rembg_remove_cpu_s']['median'], '.2f')}) | "
            f"{fmt(r['control_thumbgen_removal_s']['median'] / r['control_rembg_remove_s']['median'], '.2f')}× | – | – |",
            f"| 2 | IoU vs ground truth at α ≥ 128: mean (min) | {fmt(r['iou_thumbgen']['mean'], '.4f')} "
            f"({fmt(r['iou_thumbgen']['min'], '.4f')}) | {fmt(r['iou_rembg']['mean'], '.4f')} "
            f"({fmt(r['iou_rembg']['min'], '.4f')}) | | ≥ rembg | "
            f"{verdict(r['iou_thumbgen']['mean'] >= r['iou_rembg']['mean'] - 1e-4)} |",
            f"| 2 | peak RSS MB | {fmt(r['thumbgen_peak_rss_mb'], '.0f')} | {fmt(r['rembg_peak_rss_mb'], '.0f')} | | | |",
        ]
    if r:
        lines += [
            f"| 2 | removal CPU target: removal CPU ratio (above) | | | {fmt(r['ratio_cpu'], '.2f')}× | ≤ "
            f"{TARGETS['removal_cpu_ratio']}× | {verdict(r['ratio_cpu'] is not None and r['ratio_cpu'] <= TARGETS['removal_cpu_ratio'])} |",
            f"| 2 | peak RSS target, 2 workers on 12 MP photos | {fmt(r['thumbgen_peak_rss_mb'], '.0f')} MB | | | ≤ "
            f"{TARGETS['removal_peak_rss_mb']:.0f} MB | {verdict(r['thumbgen_peak_rss_mb'] <= TARGETS['removal_peak_rss_mb'])} |",
        ]
    rp = results.get("real")
    if rp and "skipped" not in rp:
        q, qr = rp["quality"]["thumbgen"], rp["quality"]["rembg"]
        lines += [
            f"| 2r | real photos ({rp['photos']}): CPU s / photo (`thumbgen process`, 2 workers, whole process; rembg "
            f"process over all photos) | {fmt(rp['thumbgen_cpu_s_per_photo']['median'], '.3f')} | "
            f"rembg {fmt(rp['rembg_cpu_s_per_photo']['median'], '.3f')} | {fmt(rp['ratio_cpu'], '.2f')}× | ≤ "
            f"{TARGETS['real_cpu_ratio']}× | {verdict(rp['ratio_cpu'] <= TARGETS['real_cpu_ratio'])} |",
            f"| 2r | real photos: wall s / photo (same runs) | {fmt(rp['thumbgen_wall_s_per_photo']['median'], '.3f')} | "
            f"{fmt(rp['rembg_wall_s_per_photo']['median'], '.3f')} | {fmt(rp['ratio_wall'], '.2f')}× | ≤ "
            f"{TARGETS['real_wall_ratio']}× | {verdict(rp['ratio_wall'] <= TARGETS['real_wall_ratio'])} |",
            f"| 2r | real photos: peak RSS MB (`thumbgen process`, 2 workers) | {fmt(rp['thumbgen_peak_rss_mb'], '.0f')} | "
            f"{fmt(rp['rembg_peak_rss_mb'], '.0f')} | | ≤ {TARGETS['real_peak_rss_mb']:.0f} | "
            f"{verdict(rp['thumbgen_peak_rss_mb'] <= TARGETS['real_peak_rss_mb'])} |",
            f"| 2r | real photos: mean IoU (median) / MAE / boundary F (`thumbgen cutout --mask` vs rembg) | "
            f"{fmt(q['iou'], '.4f')} ({fmt(rp['iou_median']['thumbgen'], '.3f')}) / {fmt(q['mae'], '.3f')} / "
            f"{fmt(q['boundary_f'], '.3f')} | {fmt(qr['iou'], '.4f')} ({fmt(rp['iou_median']['rembg'], '.3f')}) / "
            f"{fmt(qr['mae'], '.3f')} / {fmt(qr['boundary_f'], '.3f')} | | IoU ≥ {TARGETS['real_iou_mean']:.3f} | "
            f"{verdict(round(q['iou'], 3) >= TARGETS['real_iou_mean'])} |",
        ]
    lt = results.get("latency")
    if lt:
        L = lt["latency_ms"]
        lines += [
            f"| 3 | drop → last thumbnail ms, {lt['k']} × {lt['size']} cut-outs, 2 outputs each: p50 / p90 / p99 / max "
            f"| {fmt(L['p50'])} / {fmt(L['p90'])} / {fmt(L['p99'])} / {fmt(L['max'])} | | | p99 ≤ "
            f"{TARGETS['latency_p99_ms']:.0f} | {verdict(L['p99'] is not None and L['p99'] <= TARGETS['latency_p99_ms'] and not lt['missing'])} |"]
    b = results.get("burst")
    if b:
        lines += [
            f"| 4 | burst of {b['files']} × {b['size']} (+{b['backgrounds']} bg): all processed | "
            f"{fmt(b['all_processed'])} ({b['thumbnails_written']:.0f}/{b['expected_thumbnails']}, "
            f"{b['rejected']:.0f} rejected) | | | none lost | {verdict(b['all_processed'])} |",
            f"| 4 | burst throughput files/s (thumbnails/s) | {fmt(b['files_per_s'])} ({fmt(b['thumbnails_per_s'])}) | | | – | – |",
            f"| 4 | burst peak RSS MB (VmHWM; max sampled VmRSS) | {fmt(b['peak_rss_mb_vmhwm'])} "
            f"({fmt(b['rss_mb_max_sampled'])}) | | | ≤ {TARGETS['burst_peak_rss_mb']:.0f} | "
            f"{verdict(b['peak_rss_mb_vmhwm'] <= TARGETS['burst_peak_rss_mb'])} |"]
    i = results.get("idle")
    idle_note = None
    if i:
        lines += [
            f"| 5 | idle daemon CPU % of one core ({i['samples']} s) | {fmt(i['cpu_pct'], '.2f')} | | | ≈ 0 | "
            f"{verdict(i['cpu_pct'] <= TARGETS['idle_cpu_pct'])} |",
            f"| 5 | idle daemon max RSS MB | {fmt(i['rss_mb_max'])} | | | ≤ {TARGETS['idle_rss_mb']:.0f} | "
            f"{verdict(i['rss_mb_max'] <= TARGETS['idle_rss_mb'])} |"]
        if "smaps_mb" in i:
            sm = i["smaps_mb"]
            idle_note = (f"Idle RSS split (smaps_rollup): anonymous {sm.get('Anonymous', 0):.1f} MB, file-backed "
                         f"(binary pages) {sm['file_backed']:.1f} MB of {sm.get('Rss', 0):.1f} MB.")
        else:
            idle_note = None
    if b:
        a = b["idle_after"]
        lines += [f"| 5 | idle RSS MB after the burst (max over {a['samples']} s; CPU %) | {fmt(a['rss_mb_max'])} "
                  f"({fmt(a['cpu_pct'], '.2f')} %) | | | info | – |"]
    lines.append("")
    if i and idle_note:
        lines += [idle_note, ""]
    if c:
        p = c["profile"]
        lines += ["Compose stage profile (daemon, 1 worker, ms per product): " + stage_list(p["stages_ms_per_product"], ".1f") +
            f"; not in any stage metric {p['unstaged_ms_per_product']:.1f}; job total {p['job_ms_per_product']:.1f}; "
            f"daemon CPU {p['cpu_ms_per_thumb']:.1f} ms per thumbnail. `thumbgen process` jobs that had to run a second "
            f"time from the cut-out cache (a product started before every background was registered), per round: "
            f"{c['thumbgen_second_pass_jobs']} of {c['n']} products.", ""]
    if r:
        lines += ["Removal stage profile (daemon, 1 worker, ms per photo): " + stage_list(r["thumbgen_serial_stages_ms_per_photo"], ".0f") +
            f"; rembg decode {r['rembg_decode_s']['median'] * 1000:.0f} ms (not in the mask time); onnxruntime "
            f"intra-op threads setting {r['rembg_intra_op_threads']} (0 = one per core), "
            f"{r['rembg_process_threads']} threads in the rembg process; thumbgen {r['thumbgen_threads']} threads.", ""]
    if lt:
        J = lt["job_ms"]
        lines += ["Latency stage profile (ms per drop): " + stage_list(lt["stages_ms_per_drop"], ".1f") +
            f"; daemon CPU {lt['daemon_cpu_ms_per_drop']:.1f} ms per drop; job time alone (log duration_ms, no "
            f"queueing) p50 {fmt(J['p50'], '.0f')} / p90 {fmt(J['p90'], '.0f')} / p99 {fmt(J['p99'], '.0f')} / max "
            f"{fmt(J['max'], '.0f')} ms; inputs queued or in flight when a file was dropped: max "
            f"{fmt(lt['busy_at_drop']['max'], '.0f')}, non-zero at {fmt(100 * lt['busy_at_drop']['share_nonzero'], '.0f')} % "
            f"of drops. " + quiet_note(lt.get("quiet_before")), ""]
    if b:
        lines += ["Burst stage profile (ms per file): " + stage_list(b["stages_ms_per_file"], ".1f") +
            f"; daemon CPU {b['cpu_ms_per_file']:.1f} ms per file; renaming all in took {b['rename_in_s']:.2f} s; "
            f"max queue depth seen {fmt(b['queue_depth_max'], '.0f')}.", ""]
    o = results.get("overflow")
    if o:
        lines += [f"Overflow check (QUEUE_CAPACITY={o['queue_capacity']}, {o['files']} files renamed in at once, "
                  f"1 output each): {o['written']:.0f}/{o['files']} thumbnails after {o['seconds']:.0f} s, daemon CPU "
                  f"{o['daemon_cpu_s']:.1f} s; timeline (s, written, queue depth, CPU s): "
                  + ", ".join(str(t) for t in o["timeline"][:: max(1, len(o["timeline"]) // 25)]) + ".", ""]
    loads = [f"{k} {v['system']['machine_busy_cores']:.2f} cores busy ({v['system'].get('other_processes_cores', 0):.2f} "
             f"by other processes), load {v['system']['loadavg_start']:.1f}→{v['system']['loadavg_end']:.1f}"
             for k, v in results.items() if isinstance(v, dict) and "system" in v]
    if loads:
        lines += ["Machine load during sections: " + "; ".join(loads) + ".", ""]
    return "\n".join(lines)
