"""thumbgen benchmark harness (entry point: scripts/bench).

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

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import analysis  # noqa: E402
import cluster  # noqa: E402
import corpus  # noqa: E402
import storage  # noqa: E402
import tenants  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
SECTIONS = ("compose", "removal", "real", "latency", "idle", "burst")
EXTRA_SECTIONS = ("overflow", "cluster", "storage", "tenants")  # only with --only

TARGETS = {
    "compose_cpu_ratio": 0.3,
    "compose_cpu_ratio_today": 0.46,  # must not get worse than this
    "removal_wall_ratio": 1.0,
    "removal_cpu_ratio": 1.0,
    "removal_peak_rss_mb": 500.0,  # 2 workers, 12 MP photos
    "real_cpu_ratio": 1.0,
    "real_wall_ratio": 1.0,
    "real_peak_rss_mb": 250.0,  # 2 workers, the real-photo set
    "real_iou_mean": 0.870,  # today's mean, as quoted (three decimals); compared at that precision
    "latency_p99_ms": 50.0,
    "burst_peak_rss_mb": 300.0,
    "idle_cpu_pct": 0.5,  # "about zero": we call anything under 0.5 % of one core zero
    "idle_rss_mb": 40.0,
}


# --- configuration ------------------------------------------------------------------------------

def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else default


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny numbers: a smoke run of every section")
    ap.add_argument("--work-dir", default=os.environ.get("BENCH_WORK_DIR", "target/bench"))
    ap.add_argument("--binary", default=os.environ.get("BENCH_BINARY", "target/release/thumbgen"))
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY", ",".join(SECTIONS)),
                    help="comma-separated sections to run (default: all)")
    ap.add_argument("--n", type=int, help="compose: cut-outs (BENCH_N, default 24)")
    ap.add_argument("--b", type=int, help="compose: backgrounds (BENCH_B, default 2)")
    ap.add_argument("--m", type=int, help="removal: photos (BENCH_M, default 8)")
    ap.add_argument("--k", type=int, help="latency: drops (BENCH_K, default 200)")
    ap.add_argument("--real-dir", default=os.environ.get("BENCH_REAL_DIR", "../shared/fixtures/real"),
                    help="real photos with masks and manifest.tsv (BENCH_REAL_DIR)")
    ap.add_argument("--burst", type=int, help="burst: files (BENCH_BURST, default 10000)")
    ap.add_argument("--burst-b", type=int, help="burst: backgrounds (BENCH_BURST_B, default 0)")
    ap.add_argument("--compose-rounds", type=int, help="BENCH_COMPOSE_ROUNDS, default 3")
    ap.add_argument("--removal-rounds", type=int, help="BENCH_REMOVAL_ROUNDS, default 2")
    ap.add_argument("--idle-seconds", type=int, help="BENCH_IDLE_SECONDS, default 60")
    ap.add_argument("--idle-after-seconds", type=int, help="BENCH_IDLE_AFTER_SECONDS, default 20")
    ap.add_argument("--burst-timeout", type=int, help="BENCH_BURST_TIMEOUT seconds, default 1500")
    a = ap.parse_args()
    quick = a.quick or os.environ.get("BENCH_QUICK") == "1"
    d = dict(n=2, b=1, m=1, k=10, burst=200, burst_b=0, compose_rounds=1, removal_rounds=1,
             idle_seconds=10, idle_after_seconds=5, burst_timeout=300) if quick else \
        dict(n=24, b=2, m=8, k=200, burst=10000, burst_b=0, compose_rounds=3, removal_rounds=2,
             idle_seconds=60, idle_after_seconds=20, burst_timeout=1500)
    cfg = {}
    for key, default in d.items():
        flag = getattr(a, key)
        cfg[key] = flag if flag is not None else env_int("BENCH_" + key.upper(), default)
    cfg["quick"] = quick
    cfg["cluster_delay"] = float(os.environ.get("BENCH_CLUSTER_DELAY") or 1.0)
    cfg["cluster_photos"] = env_int("BENCH_CLUSTER_PHOTOS", 96)
    cfg["cluster_drops"] = env_int("BENCH_CLUSTER_DROPS", 100)
    cfg["work_dir"] = Path(a.work_dir).resolve()
    cfg["binary"] = Path(a.binary).resolve()
    cfg["real_dir"] = Path(a.real_dir).resolve()
    cfg["only"] = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = set(cfg["only"]) - set(SECTIONS) - set(EXTRA_SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS + EXTRA_SECTIONS}")
    return cfg


# --- processes ----------------------------------------------------------------------------------

def clean_env(home: Path, **extra):
    """A minimal environment: nothing from the caller's shell reaches thumbgen's configuration
    (no GRADIO_API_URL, WORKERS, PORT, .env …); REMOVAL_ENGINE=local selects the embedded engine."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "REMOVAL_ENGINE": "local"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_measured(cmd, cwd, env, log: Path):
    """Runs a child to completion; wall time and the child's own rusage (user, sys, max RSS)."""
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": proc.returncode, "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url, timeout=5.0):
    try:
        with _NO_PROXY.open(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return None, ""


def parse_prom(text):
    """{(name, ((label, value), …)): float} from the Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or "")))
        try:
            out[(m.group(1), labels)] = float(m.group(4))
        except ValueError:
            pass
    return out


def prom(m, name, **labels):
    return m.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))), 0.0)


def prom_sum(m, name):
    return sum(v for (n, _), v in m.items() if n == name)


class Daemon:
    """`thumbgen run` on a base folder, on a free loopback port."""

    def __init__(self, binary: Path, base: Path, logs: Path, home: Path, **env):
        self.base = base
        self.port = free_port()
        base.mkdir(parents=True, exist_ok=True)
        self.env = clean_env(home, HTTP_ADDR=f"127.0.0.1:{self.port}", **env)
        self.log = open(logs / f"daemon-{base.name}-{self.port}.log", "wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([str(binary), "run", "--base-dir", str(base)], cwd=base, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=120):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"thumbgen run exited with {self.proc.returncode}; see {self.log.name}")
            status, _ = http_get(self.url + "/health/ready", 2)
            if status == 200:
                return time.perf_counter() - self.started
            time.sleep(0.05)
        raise RuntimeError("thumbgen run did not become ready")

    def metrics(self):
        status, text = http_get(self.url + "/metrics", 10)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return parse_prom(text)

    def cpu_s(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status(self):
        out = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
        return out

    def smaps(self):
        """RSS split (MB) from /proc/PID/smaps_rollup: anonymous memory (heap, stacks) vs file pages
        (the binary's code and data mapped from disk)."""
        out = {}
        with open(f"/proc/{self.proc.pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Anonymous", "Shmem", "Private_Clean", "Shared_Clean"):
                    out[k] = int(v.split()[0]) / 1024
        out["file_backed"] = out.get("Rss", 0) - out.get("Anonymous", 0) - out.get("Shmem", 0)
        return out

    def rss_mb(self):
        return self.status()["VmRSS"] / 1024

    def wait_log(self, needle, count=1, timeout=60):
        log = self.base / "logs" / "app.log"
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if log.is_file() and log.read_text(errors="replace").count(needle) >= count:
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def stage_sums(m):
    """{stage: (sum seconds, count)} from thumbgen_stage_duration_seconds."""
    out = {}
    for (name, labels), v in m.items():
        d = dict(labels)
        if name == "thumbgen_stage_duration_seconds_sum":
            out.setdefault(d["stage"], [0.0, 0])[0] = v
        elif name == "thumbgen_stage_duration_seconds_count":
            out.setdefault(d["stage"], [0.0, 0])[1] = int(v)
    return out


def stage_delta(before, after):
    a, b = stage_sums(before), stage_sums(after)
    return {k: {"sum_s": v[0] - b.get(k, [0, 0])[0], "count": v[1] - b.get(k, [0, 0])[1]} for k, v in a.items()}


def log_durations(base: Path):
    """duration_ms of each 'thumbnails written' line in logs/app.log, by input."""
    out = []
    log = base / "logs" / "app.log"
    if not log.is_file():
        return out
    for line in log.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("message") == "thumbnails written":
            out.append({"input": rec.get("input"), "engine": rec.get("engine"), "duration_ms": rec.get("duration_ms"),
                        "outputs": len(str(rec.get("outputs", "")).split(", "))})
    return out


# --- statistics ---------------------------------------------------------------------------------

def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def summary(values):
    if not values:
        return None
    return {"n": len(values), "median": statistics.median(values), "mean": statistics.fmean(values),
            "min": min(values), "max": max(values)}


class SystemLoad:
    """Load average and how busy the whole machine was (all processes) over a section."""

    def __init__(self):
        self.t0, self.busy0, self.total0 = time.perf_counter(), *self._cpu()
        self.load0 = os.getloadavg()

    @staticmethod
    def _cpu():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v) - idle, sum(v)

    def done(self, own_cpu_s=None):
        busy, total = self._cpu()
        secs = time.perf_counter() - self.t0
        busy_s = (busy - self.busy0) / CLK_TCK
        out = {"seconds": secs, "loadavg_start": self.load0[0], "loadavg_end": os.getloadavg()[0],
               "machine_busy_cores": busy_s / secs if secs else None}
        if own_cpu_s is not None and secs:
            out["other_processes_cores"] = max(0.0, (busy_s - own_cpu_s) / secs)
        return out


def wait_quiet(limit_cores=0.2, window_s=3.0, timeout_s=300.0):
    """Waits until the whole machine used less than `limit_cores` over `window_s` (nothing of
    ours runs yet, so that is other processes), at most `timeout_s`. Returns what it saw."""
    t0 = time.perf_counter()
    while True:
        sample = SystemLoad()
        time.sleep(window_s)
        busy = sample.done()["machine_busy_cores"]
        waited = time.perf_counter() - t0
        if busy < limit_cores or waited >= timeout_s:
            return {"quiet": busy < limit_cores, "waited_s": waited, "busy_cores_before": busy,
                    "limit_cores": limit_cores}


# --- helpers ------------------------------------------------------------------------------------

def rembg_offline_env(ctx):
    """rembg's environment: our u2netp.onnx as its model, no thread caps, and offline — any
    attempt to download goes to a dead proxy."""
    u2 = ctx["work"] / "u2net_home"
    u2.mkdir(exist_ok=True)
    shutil.copyfile(ctx["repo"] / "models" / "u2netp.onnx", u2 / "u2netp.onnx")
    env = dict(os.environ, HOME=str(ctx["home"]), U2NET_HOME=str(u2),
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="")
    for k in ("OMP_NUM_THREADS", "ORT_NUM_THREADS"):
        env.pop(k, None)
    return env


def fresh(path: Path):
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def link_into(files, folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        os.link(f, folder / Path(f).name)


def warm(files):
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 22):
                pass


def expected_outputs(stems, bg_stems):
    names = []
    for s in stems:
        names.append(f"{s}.jpg")
        names += [f"{s}__{b}.jpg" for b in bg_stems]
    return names


def log(msg):
    print(f"[bench {dt.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


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
        lines += ["Compose stage profile (daemon, 1 worker, ms per product): " + ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(p["stages_ms_per_product"].items()) if v) +
            f"; not in any stage metric {p['unstaged_ms_per_product']:.1f}; job total {p['job_ms_per_product']:.1f}; "
            f"daemon CPU {p['cpu_ms_per_thumb']:.1f} ms per thumbnail. `thumbgen process` jobs that had to run a second "
            f"time from the cut-out cache (a product started before every background was registered), per round: "
            f"{c['thumbgen_second_pass_jobs']} of {c['n']} products.", ""]
    if r:
        lines += ["Removal stage profile (daemon, 1 worker, ms per photo): " + ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(r["thumbgen_serial_stages_ms_per_photo"].items()) if v) +
            f"; rembg decode {r['rembg_decode_s']['median'] * 1000:.0f} ms (not in the mask time); onnxruntime "
            f"intra-op threads setting {r['rembg_intra_op_threads']} (0 = one per core), "
            f"{r['rembg_process_threads']} threads in the rembg process; thumbgen {r['thumbgen_threads']} threads.", ""]
    if lt:
        J = lt["job_ms"]
        lines += ["Latency stage profile (ms per drop): " + ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(lt["stages_ms_per_drop"].items()) if v) +
            f"; daemon CPU {lt['daemon_cpu_ms_per_drop']:.1f} ms per drop; job time alone (log duration_ms, no "
            f"queueing) p50 {fmt(J['p50'], '.0f')} / p90 {fmt(J['p90'], '.0f')} / p99 {fmt(J['p99'], '.0f')} / max "
            f"{fmt(J['max'], '.0f')} ms; inputs queued or in flight when a file was dropped: max "
            f"{fmt(lt['busy_at_drop']['max'], '.0f')}, non-zero at {fmt(100 * lt['busy_at_drop']['share_nonzero'], '.0f')} % "
            f"of drops. " + quiet_note(lt.get("quiet_before")), ""]
    if b:
        lines += ["Burst stage profile (ms per file): " + ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(b["stages_ms_per_file"].items()) if v) +
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
