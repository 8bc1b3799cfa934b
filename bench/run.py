"""thumbgen benchmark (entry point: scripts/bench): runs the sections asked for and writes the
report. The sections share `harness.py`; each is a file of its own, the report's tables are
`report.py`.

One run measures, in this order (each section can be skipped with --only):

1. compose  - compose + encode per thumbnail: `thumbgen process` on 12 MP RGBA cut-outs vs the same
              work in libvips 8.18 (pyvips), interleaved rounds, CPU from the child's rusage;
2. removal  - background removal per photo: thumbgen's embedded engine (daemon, per-photo removal
              time from /metrics) vs rembg 2.0.86 with the same u2netp model; IoU vs ground truth;
   real     - the real-photo set (../shared/fixtures/real): CPU, wall and peak RSS of
              `thumbgen process` vs rembg over all photos, and mask quality (IoU, MAE, boundary F
              against the ground-truth masks) of `thumbgen cutout --mask` next to rembg's;
3. latency  - drop -> last thumbnail latency for small cut-outs (no removal), daemon running;
4. idle     - an idle daemon's CPU and RSS over 60 s;
5. burst    - 10 000 small cut-outs renamed in at once: all processed?, throughput, peak RSS;
              then the idle RSS of the daemon that did the work.

Results: <work>/results/<UTC timestamp>/results.{json,md} (also copied to <work>/results/latest.*).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

import cluster
import storage
import tenants
from burst import section_burst
from compose import section_compose
from harness import EXTRA_SECTIONS, SECTIONS, TARGETS, log, parse_args
from idle import section_idle
from latency import section_latency
from overflow import section_overflow
from real import section_real
from removal import section_removal
from report import machine_facts, markdown


def main():
    cfg = parse_args()
    repo = Path.cwd()
    work = cfg["work_dir"]
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = work / "results" / stamp
    ctx = {"repo": repo, "work": work / "run", "corpus": work / "corpus", "python": Path(sys.executable),
           "logs": out_dir / "logs", "home": work / "home"}
    for p in (ctx["work"], ctx["corpus"], ctx["logs"], ctx["home"]):
        p.mkdir(parents=True, exist_ok=True)
    if not cfg["binary"].is_file():
        sys.exit(f"no thumbgen binary at {cfg['binary']}: run cargo build --release")
    results = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()},
               "machine": machine_facts(cfg, ctx), "targets": TARGETS}
    log(f"work dir {work}; sections {', '.join(cfg['only'])}; results in {out_dir}")
    t0 = time.perf_counter()
    runners = {"compose": section_compose, "removal": section_removal, "real": section_real,
               "latency": section_latency, "idle": section_idle, "burst": section_burst,
               "overflow": section_overflow, "cluster": cluster.section_cluster, "storage": storage.section_storage,
               "tenants": tenants.section_tenants}
    for name in SECTIONS + EXTRA_SECTIONS:
        if name in cfg["only"]:
            s0 = time.perf_counter()
            results[name] = runners[name](cfg, ctx)
            results[name]["section_seconds"] = time.perf_counter() - s0
    results["total_seconds"] = time.perf_counter() - t0
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    md = markdown(results)
    if "cluster" in results:
        md += cluster.markdown(results["cluster"])
    if "storage" in results:
        md += storage.markdown(results["storage"])
    if "tenants" in results:
        md += tenants.markdown(results["tenants"])
    md += f"\nTotal run time {results['total_seconds'] / 60:.1f} min. Raw numbers: results.json.\n"
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    (out_dir / "results.md").write_text(md)
    shutil.copyfile(out_dir / "results.json", work / "results" / "latest.json")
    shutil.copyfile(out_dir / "results.md", work / "results" / "latest.md")
    print()
    print(md)
    print(f"results: {out_dir / 'results.md'} and results.json")


if __name__ == "__main__":
    main()
