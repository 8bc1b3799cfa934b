"""Cluster mode (issue 12): the cost of coordination, not of CPU.

`scripts/bench --only cluster` runs it (not part of a default run: it needs the test set-up's
NATS server, `scripts/setup-test-env`, and Gradio 6 venv, `scripts/setup-gradio-env`).

1. Throughput with 1, 2, 4 and 8 nodes. The removal engine is the Gradio test app sleeping a
   fixed time per call (`--delay`, default 1 s) and serving every node at once; each node sends
   one request at a time (MAX_CONCURRENT_REQUESTS=1). On a 2-core machine CPU would cap the
   total, so this isolates what the broker, the shared journal and the leases cost: ideal is
   N x the one-node rate; the target is >= 0.9 x N.
2. Added drop -> thumbnail latency: the same app without delay, one product dropped at a time
   into a single-node daemon and into a one-node cluster; the difference of the percentiles
   (p50, p99) is what cluster mode adds (target p99 <= 20 ms).
"""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from PIL import Image

from harness import Daemon, free_port, log, pct

NODE_COUNTS = (1, 2, 4, 8)


class Server:
    """A child process that is ready once `ready()` holds; killed on close."""

    def __init__(self, cmd, log_path: Path, ready, what: str, stdout=subprocess.DEVNULL, timeout=300):
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=stdout, stderr=self.log)
        deadline = time.perf_counter() + timeout
        while not ready(self):
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                self.close()
                raise RuntimeError(f"{what} did not start; see {log_path}")
            time.sleep(0.05)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def start_nats(binary: Path, store: Path, logs: Path) -> tuple[Server, str]:
    import socket

    port = free_port()

    def listening(_):
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    cmd = [str(binary), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
    return Server(cmd, logs / f"nats-{port}.log", listening, "nats-server"), f"nats://127.0.0.1:{port}"


def start_app(python: Path, repo: Path, logs: Path, delay: float, concurrency: int) -> tuple[Server, str]:
    port = free_port()

    def said_ready(server):
        line = server.proc.stdout.readline().decode(errors="replace")
        return line.startswith("READY")

    cmd = [str(python), str(repo / "tests/gradio/app.py"), "--kind", "blocks_png", "--port", str(port),
           "--delay", str(delay), "--concurrency", str(concurrency)]
    server = Server(cmd, logs / f"gradio-{port}.log", said_ready, "the Gradio test app", stdout=subprocess.PIPE)
    return server, f"http://127.0.0.1:{port}"


def photos(folder: Path, count: int) -> list[Path]:
    """Small, distinct product photos (a coloured box on white), so compose costs little."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        path = folder / f"p{i:04d}.jpg"
        if not path.exists():
            img = Image.new("RGB", (320, 240), "white")
            img.paste((40 + i * 37 % 200, 90 + i * 53 % 150, 30 + i * 71 % 200), (90, 50, 230, 190))
            img.save(path, quality=90)
        out.append(path)
    return out


def background(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "studio.jpg"
    if not path.exists():
        Image.new("RGB", (400, 400), (200, 210, 225)).save(path, quality=90)
    return path


def node_env(nats_url: str | None, app_url: str, name: str) -> dict:
    env = {"REMOVAL_ENGINE": "gradio", "GRADIO_API_URL": app_url, "MAX_CONCURRENT_REQUESTS": "1", "WORKERS": "2",
           "LOG_LEVEL": "warn", "NODE_NAME": name}
    if nats_url:
        env["NATS_URL"] = nats_url
    return env


def make_base(tmp: Path, bg: Path) -> Path:
    """A base folder under `tmp` with a small JPEG preset and the background `bg`."""
    base = tmp / "base"
    (base / "config").mkdir(parents=True)
    (base / "config/thumbgen.toml").write_text('[preset]\nwidth = 160\nheight = 160\nformat = "jpeg"\n')
    (base / "backgrounds").mkdir()
    shutil.copyfile(bg, base / "backgrounds" / bg.name)
    return base


def drop(src: Path, folder: Path):
    """Copies `src` in under a hidden name, then renames it: the file appears whole at once."""
    tmp = folder / f".{src.name}.part"
    shutil.copyfile(src, tmp)
    tmp.rename(folder / src.name)


def throughput(cfg, ctx, nats_bin: Path, gradio_py: Path, corpus: list[Path], bg: Path, nodes: int) -> dict:
    logs = ctx["logs"]
    with tempfile.TemporaryDirectory(dir=ctx["work"]) as tmp:
        tmp = Path(tmp)
        base = make_base(tmp, bg)
        nats, nats_url = start_nats(nats_bin, tmp / "store", logs)
        app, app_url = start_app(gradio_py, ctx["repo"], logs, cfg["cluster_delay"], max(NODE_COUNTS))
        daemons = []
        try:
            daemons = [Daemon(cfg["binary"], base, logs, ctx["home"], **node_env(nats_url, app_url, f"n{i}"))
                       for i in range(nodes)]
            for d in daemons:
                d.wait_ready()
            (base / "produtos").mkdir(exist_ok=True)
            out = base / "thumbnails-prontas"
            expected = 2 * len(corpus)
            t0 = time.perf_counter()
            for p in corpus:
                drop(p, base / "produtos")
            deadline = t0 + 60 + 3 * len(corpus) * cfg["cluster_delay"]
            first = None
            while (done := sum(1 for f in out.iterdir() if not f.name.startswith("."))) < expected:
                if first is None and done > 0:
                    first = time.perf_counter()
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{nodes} nodes: outputs missing; logs in {logs}")
                time.sleep(0.02)
            last = time.perf_counter()
            seconds = last - t0
            first = first or last
        finally:
            for d in daemons:
                d.stop()
            app.close()
            nats.close()
    # Steady rate: from the first output to the last, so the start (detection, the first
    # removal's fixed latency) does not dilute the rate of short runs with many nodes.
    steady = max(1, len(corpus) - nodes) / max(last - first, 1e-3)
    log(f"cluster: {nodes} node(s): {len(corpus)} photos in {seconds:.1f} s, steady {steady * 60:.1f} photos/min")
    return {"nodes": nodes, "photos": len(corpus), "seconds": seconds, "photos_per_s": steady}


def latencies(cfg, ctx, nats_bin: Path | None, gradio_py: Path, corpus: list[Path], bg: Path) -> list[float]:
    """Drop -> both outputs present, in ms, one product at a time."""
    logs = ctx["logs"]
    with tempfile.TemporaryDirectory(dir=ctx["work"]) as tmp:
        tmp = Path(tmp)
        base = make_base(tmp, bg)
        nats = None
        nats_url = None
        if nats_bin:
            nats, nats_url = start_nats(nats_bin, tmp / "store", logs)
        app, app_url = start_app(gradio_py, ctx["repo"], logs, 0.0, 1)
        d = None
        try:
            d = Daemon(cfg["binary"], base, logs, ctx["home"], **node_env(nats_url, app_url, "solo"))
            d.wait_ready()
            (base / "produtos").mkdir(exist_ok=True)
            out = base / "thumbnails-prontas"
            times = []
            for p in corpus:
                wanted = [out / f"{p.stem}.jpg", out / f"{p.stem}__{bg.stem}.jpg"]
                t0 = time.perf_counter()
                drop(p, base / "produtos")
                while not all(w.exists() for w in wanted):
                    if time.perf_counter() - t0 > 30:
                        raise RuntimeError(f"{p.name} not done in 30 s; logs in {logs}")
                    time.sleep(0.0005)
                times.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.05)
        finally:
            if d:
                d.stop()
            app.close()
            if nats:
                nats.close()
    return times


def section_cluster(cfg, ctx):
    repo = ctx["repo"]
    nats_bin = repo / ".venv/test/bin/nats-server"
    gradio_py = repo / ".venv/gradio6/bin/python"
    for need, how in ((nats_bin, "scripts/setup-test-env"), (gradio_py, "scripts/setup-gradio-env")):
        if not need.exists():
            raise RuntimeError(f"{need} is missing: run {how} first")
    quick = cfg.get("quick")
    count = 16 if quick else cfg["cluster_photos"]
    corpus_dir = ctx["corpus"] / "cluster-v1"
    corpus = photos(corpus_dir / "photos", count)
    bg = background(corpus_dir / "backgrounds")

    runs = [throughput(cfg, ctx, nats_bin, gradio_py, corpus, bg, n) for n in NODE_COUNTS]
    one = runs[0]["photos_per_s"]
    for r in runs:
        r["scaling"] = r["photos_per_s"] / (one * r["nodes"])

    drops = photos(corpus_dir / "latency", 10 if quick else cfg["cluster_drops"])
    single = latencies(cfg, ctx, None, gradio_py, drops, bg)
    cluster = latencies(cfg, ctx, nats_bin, gradio_py, drops, bg)
    added = {p: pct(cluster, p) - pct(single, p) for p in (50, 99)}
    log(f"cluster: added latency p50 {added[50]:.1f} ms, p99 {added[99]:.1f} ms")
    return {"delay_s": cfg["cluster_delay"], "throughput": runs,
            "latency_ms": {"single": {p: pct(single, p) for p in (50, 90, 99)},
                           "cluster": {p: pct(cluster, p) for p in (50, 90, 99)},
                           "added": added, "drops": len(drops)}}


def markdown(r) -> str:
    rows = ["", "### Cluster mode (issue 12)", "",
            f"Remote engine: the Gradio test app sleeping {r['delay_s']:g} s per call, one request at a "
            "time per node, 2 workers per node; small photos (320x240), 2 outputs each.", "",
            "| nodes | photos | drop to last output, s | steady photos/min | vs N x one node | target |", "|---|---|---|---|---|---|"]
    for t in r["throughput"]:
        ok = "met" if t["scaling"] >= 0.9 else "**missed**"
        rows.append(f"| {t['nodes']} | {t['photos']} | {t['seconds']:.1f} | {t['photos_per_s'] * 60:.1f} | "
                    f"{t['scaling']:.2f}x | >= 0.9x: {ok if t['nodes'] > 1 else '-'} |")
    lat = r["latency_ms"]
    ok = "met" if lat["added"][99] <= 20 else "**missed**"
    rows += ["", f"Drop -> both outputs, {lat['drops']} drops one at a time, Gradio app without delay (ms):", "",
             "| mode | p50 | p90 | p99 |", "|---|---|---|---|"]
    for mode in ("single", "cluster"):
        v = lat[mode]
        rows.append(f"| {mode} | {v[50]:.1f} | {v[90]:.1f} | {v[99]:.1f} |")
    rows.append(f"| added by cluster mode | {lat['added'][50]:.1f} | | {lat['added'][99]:.1f} (target <= 20: {ok}) |")
    return "\n".join(rows) + "\n"
