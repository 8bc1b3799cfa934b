"""Shared machinery of the benchmark sections: options, child processes and their CPU, the daemon
under test, Prometheus text, statistics, a quiet-machine wait, corpus helpers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
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


# Measures a child's peak RSS. The rusage that wait4 gives counts, in the child's peak, the memory
# of the process it was forked from: Linux keeps the larger of the pre-exec image's and the new
# program's high-water marks. Forked from this harness (hundreds of MB once a section has held
# photos in numpy), every child would seem to peak at least that high: the real-photo section
# read 387 MB for a thumbgen that peaked at 242 MB. GNU time forks the command from its own small
# image and reports that child's peak alone.
GNU_TIME = "/usr/bin/time"


def run_measured(cmd, cwd, env, log_path: Path):
    """Runs a child to completion; wall time, CPU (the child's own rusage, user + sys) and peak
    RSS (by GNU time: see above; without it, the rusage's, which is too high when this process
    is larger than the child). `rc` is the child's exit code, or minus the signal that ended it."""
    peak_file = log_path.with_name(log_path.name + ".peak-kb")
    peak_file.unlink(missing_ok=True)
    wrap = [GNU_TIME, "-f", "%M", "-o", str(peak_file)] if os.access(GNU_TIME, os.X_OK) else []
    with open(log_path, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(wrap + list(cmd), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    peak_kb = ru.ru_maxrss
    if wrap:
        # GNU time writes "Command exited with non-zero status N" or "Command terminated by
        # signal N" first when so, then the peak in KB.
        words = peak_file.read_text().split() if peak_file.exists() else []
        if words and words[-1].isdigit():
            peak_kb = int(words[-1])
        else:
            log(f"no peak RSS from {GNU_TIME} for {cmd[0]}; using the rusage's")
        if "signal" in words and words.index("signal") + 1 < len(words):
            proc.returncode = -int(words[words.index("signal") + 1])
    return {"rc": proc.returncode, "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": peak_kb / 1024}


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
