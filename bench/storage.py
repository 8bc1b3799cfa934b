"""Object storage (issue 18): the catalog in a bucket against the same work in folders.

`scripts/bench --only storage` runs it (not part of a default run: it needs SeaweedFS from the
test set-up, `scripts/setup-test-env`). The store is SeaweedFS 4.48 (`weed mini`) on loopback; the
bench talks S3 to it with its own small SigV4 client (standard library only).

1. Throughput: N products with their own transparency (RGBA PNG: no removal, so storage is what
   is measured) and one background, `thumbgen process` on folders vs on the bucket, alternating
   rounds; ratio = folder wall time / bucket wall time (target >= 0.8).
2. Discovery by listing: a running daemon, products put one at a time 0.2-1 s apart (photos
   arriving); put done -> the daemon counted it (`thumbgen_files_detected_total`, polled every
   5 ms); p50/p99 (target p99 <= 2 s).
3. Discovery by notification: the same, each put followed by `POST /hooks/s3`; names sort before
   the listing's tail, so only the notification finds them quickly (target p99 <= 300 ms).
4. Idle LIST requests: a daemon on an empty bucket with the default settings, counted over a
   window after the back-off settles, per hour (target <= 150).
5. Peak RSS with 12 MP inputs: `thumbgen process` on 12 MP RGBA PNGs from folders vs from the
   bucket (target: the bucket no higher).
"""

import datetime as dt
import hashlib
import hmac
import http.client
import io
import json
import os
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image, ImageDraw

import cluster
import harness

BUCKET = "thumbgen-bench"
KEY_ID, SECRET = "bench", "bench-secret-key"
REGION = "us-east-1"


class S3:
    """PUT and DELETE on one bucket, signed with SigV4 (unsigned payload), one connection."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def _headers(self, method: str, path: str, query: str = "") -> dict:
        now = dt.datetime.now(dt.timezone.utc)
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        host = f"127.0.0.1:{self.port}"
        headers = {"host": host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz_date}
        signed = ";".join(sorted(headers))
        canonical = "\n".join([method, path, query, *(f"{k}:{headers[k]}" for k in sorted(headers)), "", signed,
                               "UNSIGNED-PAYLOAD"])
        scope = f"{day}/{REGION}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + SECRET).encode()
        for part in (day, REGION, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={KEY_ID}/{scope}, SignedHeaders={signed}, "
                                    f"Signature={signature}")
        return headers

    def request(self, method: str, key: str, body: bytes = b"", query: str = "") -> tuple[int, bytes]:
        path = f"/{BUCKET}/{key}" if key else f"/{BUCKET}"
        for attempt in range(3):
            try:
                self.conn.request(method, path + (f"?{query}" if query else ""), body=body,
                                  headers=self._headers(method, path, query))
                response = self.conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def put(self, key: str, body: bytes):
        status, text = self.request("PUT", key, body)
        if status != 200:
            raise RuntimeError(f"PUT {key}: {status} {text[:200]!r}")

    def ready(self) -> bool:
        try:
            return self.request("GET", "", query="list-type=2&max-keys=1")[0] == 200
        except OSError:
            return False


def start_store(weed: Path, data: Path, logs: Path) -> tuple["cluster.Server", S3]:
    """`weed mini` on loopback with every port chosen here; the caller's environment holds the
    key pair it accepts."""
    port = harness.free_port()
    ports = [f"-{c}.port={harness.free_port()}" for c in ("master", "volume", "filer", "admin")]
    ports += [f"-{c}.port.grpc={harness.free_port()}" for c in ("master", "volume", "filer", "admin", "s3")]
    cmd = [str(weed), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={port}",
           f"-bucket={BUCKET}", "-admin.ui=false", "-webdav=false", "-master.telemetry=false",
           "-s3.port.iceberg=0", "-s3.port.lance=0", *ports]
    client = S3(port)
    data.mkdir(parents=True, exist_ok=True)
    return cluster.Server(cmd, logs / f"weed-{port}.log", lambda _: client.ready(), "SeaweedFS", timeout=120), client


def weed_server(weed: Path, data: Path, logs: Path) -> tuple["cluster.Server", S3]:
    """`start_store` with the key pair in the store's environment."""
    old = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET)
    try:
        return start_store(weed, data, logs)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def bucket_env(s3: S3, prefix: str) -> dict:
    return {"STORAGE_URL": f"s3://{BUCKET}/{prefix}", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3.port}",
            "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}


def cutout_png(i: int, side: int, grain: bool = False) -> bytes:
    """A product with its own transparency: a coloured disc on a clear canvas; with `grain`, the
    disc carries photo-like noise, so the PNG is about as large as a real cut-out's."""
    colour = (40 + i * 37 % 200, 90 + i * 53 % 150, 30 + i * 71 % 200)
    rgb = Image.new("RGB", (side, side), colour)
    if grain:
        noise = Image.effect_noise((side, side), 40).convert("RGB")
        rgb = Image.blend(rgb, noise, 0.35)
    alpha = Image.new("L", (side, side), 0)
    ImageDraw.Draw(alpha).ellipse((side // 8, side // 6, side * 7 // 8, side * 5 // 6), fill=255)
    img = rgb.convert("RGBA")
    img.putalpha(alpha)
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def background_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 800), (200, 210, 225)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def process(cfg, ctx, base: Path, env: dict, tag: str) -> dict:
    base.mkdir(parents=True, exist_ok=True)
    result = harness.run_measured([str(cfg["binary"]), "process", "--base-dir", str(base)], base,
                              harness.clean_env(ctx["home"], **env), ctx["logs"] / f"storage-{tag}.log")
    if result["rc"] != 0:
        raise RuntimeError(f"thumbgen process ({tag}) exited {result['rc']}; see {ctx['logs']}")
    return result


def side_by_side(cfg, ctx, s3: S3, products: dict[str, bytes], env: dict, tag: str) -> tuple[dict, dict]:
    """The same products and one background processed once from folders and once from the bucket
    (prefix `tag`), each node with a fresh, empty `BASE_PATH`: the two `thumbgen process` runs."""
    bg = background_jpeg()
    with tempfile.TemporaryDirectory(dir=ctx["work"]) as tmp:
        base = Path(tmp) / "base"
        for folder in ("produtos", "backgrounds"):
            (base / folder).mkdir(parents=True)
        (base / "backgrounds/studio.jpg").write_bytes(bg)
        for name, data in products.items():
            (base / "produtos" / name).write_bytes(data)
        folders = process(cfg, ctx, base, env, f"{tag}-folders")
    s3.put(f"{tag}/backgrounds/studio.jpg", bg)
    for name, data in products.items():
        s3.put(f"{tag}/produtos/{name}", data)
    with tempfile.TemporaryDirectory(dir=ctx["work"]) as tmp:
        bucket = process(cfg, ctx, Path(tmp) / "base", env | bucket_env(s3, tag), f"{tag}-bucket")
    return folders, bucket


def throughput(cfg, ctx, s3: S3, products: list[bytes], rounds: int) -> dict:
    named = {f"p{i:05d}.png": png for i, png in enumerate(products)}
    runs = {"folders": [], "bucket": []}
    for r in range(rounds):
        folders, bucket = side_by_side(cfg, ctx, s3, named, {}, f"throughput-{r}")
        runs["folders"].append(folders)
        runs["bucket"].append(bucket)
        harness.log(f"storage: round {r + 1}: folders {folders['wall_s']:.1f} s, "
                f"bucket {bucket['wall_s']:.1f} s for {len(products)} products")
    best = {k: min(x["wall_s"] for x in v) for k, v in runs.items()}
    return {"products": len(products), "rounds": rounds, "runs": runs, "best_wall_s": best,
            "ratio": best["folders"] / best["bucket"]}


def detected(d: "harness.Daemon") -> float:
    return harness.prom_sum({k: v for k, v in d.metrics().items() if k[0] == "thumbgen_files_detected_total"},
                    "thumbgen_files_detected_total")


def discovery(cfg, ctx, s3: S3, count: int, notify: bool) -> list[float]:
    """Put done -> counted by the daemon, ms, one product at a time."""
    prefix = "notified" if notify else "listed"
    token = "bench-webhook-token-0123456789"
    env = bucket_env(s3, prefix) | {"S3_WEBHOOK_TOKEN": token, "LOG_LEVEL": "debug"}
    png = cutout_png(7, 64)
    # A last key, so the tail listing starts after every notified name.
    if notify:
        s3.put(f"{prefix}/produtos/zzzz.png", png)
    with tempfile.TemporaryDirectory(dir=ctx["work"]) as tmp:
        d = harness.Daemon(cfg["binary"], Path(tmp) / "base", ctx["logs"], ctx["home"], **env)
        try:
            d.wait_ready()
            hook = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            time.sleep(2)
            rng = random.Random(18)
            lags = []
            for i in range(count):
                name = f"w{count - i:05d}.png" if notify else f"p{i:05d}.png"
                before = detected(d)
                s3.put(f"{prefix}/produtos/{name}", png)
                t0 = time.perf_counter()
                if notify:
                    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {
                        "bucket": {"name": BUCKET}, "object": {"key": f"{prefix}/produtos/{name}"}}}]}
                    hook.request("POST", "/hooks/s3", body=json.dumps(event),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                    hook.getresponse().read()
                while detected(d) <= before:
                    if time.perf_counter() - t0 > 120:
                        raise RuntimeError(f"{name} not found in 120 s; logs in {ctx['logs']}")
                    time.sleep(0.005)
                lags.append((time.perf_counter() - t0) * 1000)
                time.sleep(rng.uniform(0.2, 1.0))
        finally:
            d.stop()
    return lags


def idle_lists(cfg, ctx, s3: S3, settle_s: float, window_s: float, out: dict):
    """LIST requests of an idle daemon over `window_s` after `settle_s`, per hour."""
    with tempfile.TemporaryDirectory(dir=ctx["work"]) as tmp:
        d = harness.Daemon(cfg["binary"], Path(tmp) / "base", ctx["logs"], ctx["home"], **bucket_env(s3, "idle"))
        try:
            d.wait_ready()
            time.sleep(settle_s)

            def lists():
                return sum(v for (n, labels), v in d.metrics().items()
                           if n == "thumbgen_storage_requests_total" and ("op", "list") in labels)

            first = lists()
            time.sleep(window_s)
            count = lists() - first
        finally:
            d.stop()
    out.update({"settle_s": settle_s, "window_s": window_s, "lists": count, "per_hour": count * 3600 / window_s})


def peak_rss(cfg, ctx, s3: S3, count: int) -> dict:
    big = {f"big{i}.png": cutout_png(i, 3464, grain=True) for i in range(count)}  # 3464 x 3464 = 12.0 MP
    folders, bucket = side_by_side(cfg, ctx, s3, big, {"MAX_FILE_SIZE": "200MB"}, "rss")
    harness.log(f"storage: peak RSS with {count} 12 MP inputs: folders {folders['maxrss_mb']:.0f} MB, "
            f"bucket {bucket['maxrss_mb']:.0f} MB")
    return {"inputs": count, "input_mb": sum(len(b) for b in big.values()) / count / 1e6,
            "folders_mb": folders["maxrss_mb"], "bucket_mb": bucket["maxrss_mb"]}


def section_storage(cfg, ctx):
    weed = ctx["repo"] / ".venv/test/bin/weed"
    if not weed.exists():
        raise RuntimeError(f"{weed} is missing: run scripts/setup-test-env first")
    quick = cfg.get("quick")
    # A new store for every run: objects left by an earlier run would turn the throughput part
    # into "a node with no local state redoes nothing".
    data = Path(tempfile.mkdtemp(prefix="weed-", dir=ctx["work"]))
    store, s3 = weed_server(weed, data / "data", ctx["logs"])
    try:
        idle = {}
        settle, window = (30, 60) if quick else (150, 600)
        idler = threading.Thread(target=idle_lists, args=(cfg, ctx, s3, settle, window, idle))
        idler.start()
        products = [cutout_png(i, 256) for i in range(100 if quick else 1000)]
        through = throughput(cfg, ctx, s3, products, 1 if quick else 2)
        listed = discovery(cfg, ctx, s3, 10 if quick else 60, notify=False)
        notified = discovery(cfg, ctx, s3, 10 if quick else 60, notify=True)
        rss = peak_rss(cfg, ctx, s3, 2 if quick else 6)
        idler.join()
        harness.log(f"storage: idle LIST {idle['lists']:.0f} in {idle['window_s']:.0f} s = {idle['per_hour']:.0f}/h")
    finally:
        store.close()
        shutil.rmtree(data, ignore_errors=True)
    summary = {p: harness.pct(listed, p) for p in (50, 90, 99)}
    hooked = {p: harness.pct(notified, p) for p in (50, 90, 99)}
    harness.log(f"storage: throughput ratio {through['ratio']:.2f}; discovery listing p99 {summary[99]:.0f} ms, "
        f"notification p99 {hooked[99]:.0f} ms")
    return {"throughput": through, "discovery_ms": {"listing": summary, "notification": hooked,
                                                    "drops": len(listed)},
            "idle": idle, "rss": rss}


def markdown(r) -> str:
    t, d, i, m = r["throughput"], r["discovery_ms"], r["idle"], r["rss"]
    verdict = lambda ok: "met" if ok else "**missed**"  # noqa: E731
    rows = ["", "### Object storage (issue 18)", "",
            "SeaweedFS 4.48 (`weed mini`) on loopback, the same machine; the default settings.", "",
            "| measure | folders | bucket | result | target |", "|---|---|---|---|---|",
            f"| `thumbgen process`, {t['products']} RGBA products + 1 background (best of {t['rounds']}), s | "
            f"{t['best_wall_s']['folders']:.1f} | {t['best_wall_s']['bucket']:.1f} | throughput {t['ratio']:.2f}x | "
            f">= 0.8x: {verdict(t['ratio'] >= 0.8)} |",
            f"| peak RSS, {m['inputs']} inputs of 12 MP ({m['input_mb']:.1f} MB PNG each), MB | {m['folders_mb']:.0f} | "
            f"{m['bucket_mb']:.0f} | | no higher: {verdict(m['bucket_mb'] <= m['folders_mb'] * 1.02)} |",
            "", f"Discovery, put done -> counted by the daemon, {d['drops']} products 0.2-1 s apart (ms):", "",
            "| by | p50 | p90 | p99 | target |", "|---|---|---|---|---|",
            f"| listing (tail every 1 s while photos arrive) | {d['listing'][50]:.0f} | {d['listing'][90]:.0f} | "
            f"{d['listing'][99]:.0f} | p99 <= 2000: {verdict(d['listing'][99] <= 2000)} |",
            f"| notification (`POST /hooks/s3`) | {d['notification'][50]:.0f} | {d['notification'][90]:.0f} | "
            f"{d['notification'][99]:.0f} | p99 <= 300: {verdict(d['notification'][99] <= 300)} |",
            "", f"Idle: {i['lists']:.0f} LIST requests in {i['window_s']:.0f} s after {i['settle_s']:.0f} s of "
            f"settling = **{i['per_hour']:.0f} per hour** (target <= 150: {verdict(i['per_hour'] <= 150)})."]
    return "\n".join(rows) + "\n"
