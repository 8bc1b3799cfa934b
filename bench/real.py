"""Section 2b, real: the real-photo set (../shared/fixtures/real): CPU, wall and peak RSS of
`thumbgen process` vs rembg over all photos, and mask quality of `thumbgen cutout --mask` next to
rembg's.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import analysis
from harness import SystemLoad, clean_env, fresh, link_into, log, rembg_offline_env, run_measured, summary, warm
from harness import HERE


# --- 2b. real photos ------------------------------------------------------------------------------

def real_photos(folder: Path):
    """(image, mask, ignore-or-None) for every row of the set's manifest.tsv."""
    rows = []
    lines = (folder / "manifest.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    for line in lines[1:]:
        row = dict(zip(head, line.split("\t")))
        ignore = None if row["ignore"] in ("", "-") else folder / row["ignore"]
        rows.append((folder / row["file"], folder / row["mask"], ignore))
    return rows


def section_real(cfg, ctx):
    folder = Path(cfg["real_dir"])
    if not (folder / "manifest.tsv").is_file():
        log(f"real: no {folder / 'manifest.tsv'}; section skipped")
        return {"skipped": f"no manifest in {folder}"}
    rows = real_photos(folder)
    if cfg["quick"]:
        rows = rows[:3]
    n = len(rows)
    log(f"real: {n} photos from {folder}")
    warm([r[0] for r in rows])
    root = fresh(ctx["work"] / "real")
    rembg_env = rembg_offline_env(ctx)
    load = SystemLoad()
    own_cpu = 0.0
    tg_runs, rb_runs = [], []
    for r in range(1, cfg["removal_rounds"] + 1):
        base = fresh(root / f"r{r}-thumbgen")
        link_into([p for p, _, _ in rows], base / "produtos")
        res = run_measured([str(cfg["binary"]), "process", "--base-dir", str(base)], base,
                           clean_env(ctx["home"]), ctx["logs"] / f"real-r{r}-thumbgen.log")
        if res["rc"] != 0:
            raise RuntimeError(f"thumbgen process failed; see {ctx['logs'] / f'real-r{r}-thumbgen.log'}")
        tg_runs.append(res)
        own_cpu += res["cpu_s"]
        masks = fresh(root / f"r{r}-rembg-masks")
        res = run_measured([str(ctx["python"]), str(HERE / "rembg_remove.py"), "--masks", str(masks)]
                           + [str(p) for p, _, _ in rows], root, rembg_env, ctx["logs"] / f"real-r{r}-rembg.log")
        if res["rc"] != 0:
            raise RuntimeError(f"rembg failed; see {ctx['logs'] / f'real-r{r}-rembg.log'}")
        res["masks"] = masks
        rb_runs.append(res)
        own_cpu += res["cpu_s"]
        log(f"real r{r}: thumbgen process {tg_runs[-1]['cpu_s']:.1f} CPU s, {tg_runs[-1]['wall_s']:.1f} s, "
            f"{tg_runs[-1]['maxrss_mb']:.0f} MB; rembg {res['cpu_s']:.1f} CPU s, {res['wall_s']:.1f} s")
    log("real: `thumbgen cutout --mask` for every photo, scored against the masks")
    cut_dir = fresh(root / "thumbgen-masks")
    cutout_runs = []
    for photo, _, _ in rows:
        out = cut_dir / (photo.stem + ".png")
        res = run_measured([str(cfg["binary"]), "cutout", str(photo), str(out), "--mask"], root,
                           clean_env(ctx["home"]), ctx["logs"] / f"real-cutout-{photo.stem}.log")
        res["photo"] = photo.stem
        cutout_runs.append(res)
        own_cpu += res["cpu_s"]
    load_info = load.done(own_cpu)

    import numpy as np
    per_photo = []
    for (photo, mask, ignore), run in zip(rows, cutout_runs):
        gt = analysis.load_grey(mask)
        ign = analysis.load_grey(ignore) if ignore else None
        row = {"photo": photo.stem, "thumbgen_exit": run["rc"]}
        tg_path = cut_dir / (photo.stem + ".png")
        # exit 1 (no product): an empty mask is what the user gets
        tg = analysis.load_grey(tg_path) if tg_path.is_file() else np.zeros_like(gt)
        row["thumbgen"] = analysis.mask_scores(tg, gt, ign)
        row["rembg"] = analysis.mask_scores(analysis.load_grey(rb_runs[0]["masks"] / (photo.stem + ".png")), gt, ign)
        per_photo.append(row)

    def mean(side, key):
        return statistics.fmean(p[side][key] for p in per_photo)

    tg_cpu = [t["cpu_s"] / n for t in tg_runs]
    rb_cpu = [t["cpu_s"] / n for t in rb_runs]
    tg_wall = [t["wall_s"] / n for t in tg_runs]
    rb_wall = [t["wall_s"] / n for t in rb_runs]
    rb_detail = json.loads((ctx["logs"] / "real-r1-rembg.log").read_text().strip().splitlines()[-1])
    return {
        "folder": str(folder), "photos": n, "rounds": len(tg_runs),
        "thumbgen_cpu_s_per_photo": summary(tg_cpu), "rembg_cpu_s_per_photo": summary(rb_cpu),
        "thumbgen_wall_s_per_photo": summary(tg_wall), "rembg_wall_s_per_photo": summary(rb_wall),
        "rembg_remove_cpu_s_per_photo": statistics.median(i["cpu_s"] for i in rb_detail["images"]),
        "ratio_cpu": statistics.median(tg_cpu) / statistics.median(rb_cpu),
        "ratio_wall": statistics.median(tg_wall) / statistics.median(rb_wall),
        "thumbgen_peak_rss_mb": max(t["maxrss_mb"] for t in tg_runs),
        "rembg_peak_rss_mb": max(t["maxrss_mb"] for t in rb_runs),
        "cutout_cpu_s": summary([c["cpu_s"] for c in cutout_runs]),
        "cutout_exit_codes": {str(k): sum(1 for c in cutout_runs if c["rc"] == k) for k in {c["rc"] for c in cutout_runs}},
        "quality": {side: {k: mean(side, k) for k in ("iou", "mae", "boundary_f")} for side in ("thumbgen", "rembg")},
        "iou_median": {side: statistics.median(p[side]["iou"] for p in per_photo) for side in ("thumbgen", "rembg")},
        "per_photo": per_photo, "system": load_info,
        "raw": {"thumbgen": tg_runs, "rembg": [{k: v for k, v in r.items() if k != "masks"} for r in rb_runs]},
    }
