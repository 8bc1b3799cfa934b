"""Tenants (issue 19): fair share of the workers between shops, and the cost of serving them.

`scripts/bench --only tenants` runs it (not part of a default run). Products are RGBA cut-outs
with their own transparency (no removal: compose + encode of a 1200 px main image is the job), so
the queue is what is measured.

1. B alone: a daemon with tenants A and B, A idle; B drops one photo every second; drop ->
   main thumbnail written (the file appears), ms.
2. B beside a busy A: the same drops while A works through N queued photos (dropped at once
   before B starts). B's p99 target: <= 2 x its p99 alone + one job's duration.
3. Throughput: the same N photos in a single-catalog daemon vs in tenant A of the two-tenant
   daemon (B's few drops beside them); ratio = single wall time / tenants wall time (target >= 0.95).
"""

import os
import tempfile
import threading
import time
from pathlib import Path

import harness
import storage

CONFIG = '[[tenants]]\nname = "loja-a"\n\n[[tenants]]\nname = "loja-b"\n'


def put(folder: Path, name: str, data: bytes):
    """A photo renamed in whole, as a careful uploader does."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.part"
    tmp.write_bytes(data)
    tmp.rename(folder / name)


def wait_files(folder: Path, names: list[str], timeout: float) -> float:
    """Seconds until every name is in `folder`."""
    t0 = time.perf_counter()
    left = set(names)
    while left:
        left = {n for n in left if not (folder / n).exists()}
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"{len(left)} outputs missing in {folder} after {timeout} s")
        time.sleep(0.02)
    return time.perf_counter() - t0


def drops(base: Path, count: int, gap: float, png: bytes) -> list[float]:
    """B's drop -> main thumbnail latencies, ms, one drop every `gap` s."""
    inbox, out = base / "tenants/loja-b/produtos", base / "tenants/loja-b/thumbnails-prontas"
    lags = []
    for i in range(count):
        name = f"b{time.monotonic_ns()}-{i:03d}"
        t0 = time.perf_counter()
        put(inbox, f"{name}.png", png)
        while not (out / f"{name}.jpg").exists():
            if time.perf_counter() - t0 > 300:
                raise RuntimeError(f"tenant B's {name} not made in 300 s")
            time.sleep(0.002)
        lags.append((time.perf_counter() - t0) * 1000)
        time.sleep(max(0.0, gap - lags[-1] / 1000))
    return lags


def tenant_daemon(cfg, ctx, tmp: Path) -> "harness.Daemon":
    base = tmp / "tenants-base"
    (base / "config").mkdir(parents=True)
    (base / "config/thumbgen.toml").write_text(CONFIG)
    d = harness.Daemon(cfg["binary"], base, ctx["logs"], ctx["home"])
    d.wait_ready()
    return d


def section_tenants(cfg, ctx):
    quick = cfg.get("quick")
    # B drops only while A works through its backlog (about 30 s for 5 000 on 2 cores).
    n, count, gap = (300, 8, 0.2) if quick else (5000, 25, 1.0)
    photos = {f"a{i:05d}.png": storage.cutout_png(i, 256) for i in range(n)}
    png = storage.cutout_png(99_999, 256)
    outputs = [name.replace(".png", ".jpg") for name in photos]

    with tempfile.TemporaryDirectory(dir=ctx["work"]) as tmp:
        single = harness.Daemon(cfg["binary"], Path(tmp) / "single", ctx["logs"], ctx["home"])
        try:
            single.wait_ready()
            for name, data in photos.items():
                put(single.base / "produtos", name, data)
            single_s = wait_files(single.base / "thumbnails-prontas", outputs, 3600)
        finally:
            single.stop()
        harness.log(f"tenants: single catalog, {n} photos in {single_s:.1f} s")

        d = tenant_daemon(cfg, ctx, Path(tmp))
        try:
            alone = drops(d.base, count, gap, png)
            harness.log(f"tenants: B alone p50 {harness.pct(alone, 50):.0f} ms, p99 {harness.pct(alone, 99):.0f} ms")
            for name, data in photos.items():
                put(d.base / "tenants/loja-a/produtos", name, data)
            done = {}
            waiter = threading.Thread(target=lambda: done.update(
                s=wait_files(d.base / "tenants/loja-a/thumbnails-prontas", outputs, 3600)))
            waiter.start()
            busy = drops(d.base, count, gap, png)
            waiter.join()
            tenants_s = done["s"]
        finally:
            d.stop()
    # One job's duration: the single catalog's wall time per photo, times the workers sharing it
    # (the daemon's default: one per core).
    job_ms = single_s / n * 1000 * (os.cpu_count() or 2)
    target = 2 * harness.pct(alone, 99) + job_ms
    harness.log(f"tenants: B beside A p50 {harness.pct(busy, 50):.0f} ms, p99 {harness.pct(busy, 99):.0f} ms "
            f"(target <= {target:.0f}); throughput {single_s / tenants_s:.2f}x")
    return {"photos": n, "drops": count, "gap_s": gap, "job_ms": job_ms,
            "alone_ms": {p: harness.pct(alone, p) for p in (50, 90, 99)},
            "busy_ms": {p: harness.pct(busy, p) for p in (50, 90, 99)},
            "single_s": single_s, "tenants_s": tenants_s, "ratio": single_s / tenants_s, "target_ms": target}


def markdown(r) -> str:
    verdict = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    a, b = r["alone_ms"], r["busy_ms"]
    rows = ["", "### Tenants (issue 19)", "",
            f"Tenant B drops one photo every {r['gap_s']:.0f} s ({r['drops']} drops); tenant A has "
            f"{r['photos']} photos queued at once. Drop -> B's main thumbnail, ms:", "",
            "| B's drops | p50 | p90 | p99 | target |", "|---|---|---|---|---|",
            f"| alone | {a[50]:.0f} | {a[90]:.0f} | {a[99]:.0f} | |",
            f"| beside A's backlog | {b[50]:.0f} | {b[90]:.0f} | {b[99]:.0f} | <= 2 x {a[99]:.0f} + one job "
            f"({r['job_ms']:.0f}) = {r['target_ms']:.0f}: {verdict(b[99] <= r['target_ms'])} |",
            "", f"Throughput, {r['photos']} photos: single catalog {r['single_s']:.1f} s, tenant A of two "
            f"{r['tenants_s']:.1f} s: **{r['ratio']:.2f}x** (target >= 0.95: {verdict(r['ratio'] >= 0.95)})."]
    return "\n".join(rows) + "\n"
