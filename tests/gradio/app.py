#!/usr/bin/env python3
"""Real Gradio background-removal apps for the thumbgen Gradio client tests.

One script, several app *kinds* shaped like the public Spaces the daemon talks to, runnable on
gradio 4.44.1, 5.50.0 and 6.x (see tests/gradio/README.md):

    python tests/gradio/app.py --kind KIND --port PORT --calls FILE [--delay S] [--fail-first N]
                               [--quota-first N] [--show-error] [--max-file-size BYTES] [--mark]
                               [--concurrency N]

Prints exactly one line, ``READY <port>``, on stdout once the server answers HTTP; everything else
goes to stderr. Each call of the removal function appends one line to --calls (fsynced) before it
does anything else, so tests can count calls even when the call then fails or the server is killed.
With --mark, that line also names the photo received (the mean colour of its central patch), so
tests can count calls per product.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

# Must be set before gradio is imported: no analytics, no version check, no hub traffic.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import gradio as gr  # noqa: E402

KINDS = ("blocks_png", "slider", "rmbg14", "birefnet", "login", "limits", "noalpha")
AUTH = ("thumbgen", "s3cret")
QUOTA_MESSAGE = (
    "You have exceeded your free ZeroGPU quota (60s requested vs. 12s left). "
    "Try again in 0:00:03."
)
WEIGHTS = ["General", "Portrait", "Matting"]
RANKSEG_METRICS = ["dice", "iou"]

# Colour distance (0..441) from the backdrop below T0 is background, above T1 is product.
T0 = 25.0
T1 = 60.0

GRADIO_VERSION = tuple(int(p) for p in re.findall(r"\d+", gr.__version__)[:3])


def log(msg: str) -> None:
    print(f"app.py: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Background removal (real, for synthetic studio shots: product on a plain light backdrop)


def to_pil_rgb(image) -> Image.Image:
    if image is None:
        raise gr.Error("No image was given.")
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image.astype(np.uint8))
    if not isinstance(image, Image.Image):
        raise gr.Error(f"Unsupported image input of type {type(image).__name__}.")
    return image.convert("RGB")


def backdrop_alpha(rgb: Image.Image) -> np.ndarray:
    """Alpha (uint8, HxW) from the distance of every pixel to the backdrop colour.

    The backdrop colour is the per-channel median of a 2-px strip along the image border.
    """
    px = np.asarray(rgb, dtype=np.float32)
    h, w, _ = px.shape
    b = min(2, h, w)
    strip = np.concatenate(
        [
            px[:b].reshape(-1, 3),
            px[h - b :].reshape(-1, 3),
            px[:, :b].reshape(-1, 3),
            px[:, w - b :].reshape(-1, 3),
        ]
    )
    backdrop = np.median(strip, axis=0)
    dist = np.sqrt(((px - backdrop) ** 2).sum(axis=2))
    alpha = np.clip((dist - T0) / (T1 - T0), 0.0, 1.0)
    return np.round(alpha * 255.0).astype(np.uint8)


def cutout(rgb: Image.Image) -> Image.Image:
    """RGBA image: RGB of the photo, alpha from backdrop_alpha."""
    alpha = Image.fromarray(backdrop_alpha(rgb), mode="L")
    out = rgb.copy()
    out.putalpha(alpha)
    return out


def mark_of(image) -> str:
    """Identity of a received photo: `R,G,B`, the mean colour (rounded) of its central patch (the
    middle eighth of each side), which survives JPEG re-encoding of a flat-coloured product."""
    try:
        px = np.asarray(to_pil_rgb(image), dtype=np.float64)
    except Exception:  # noqa: BLE001 - a bad input is the function's problem, not the record's
        return "none"
    h, w, _ = px.shape
    ph, pw = max(1, h // 8), max(1, w // 8)
    y0, x0 = (h - ph) // 2, (w - pw) // 2
    mean = px[y0 : y0 + ph, x0 : x0 + pw].reshape(-1, 3).mean(axis=0)
    return ",".join(str(int(round(c))) for c in mean)


def flatten_on_white(rgba: Image.Image) -> Image.Image:
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


# --------------------------------------------------------------------------------------------
# Call recording and fault injection


class Faults:
    def __init__(self, calls_path: str | None, kind: str, delay: float, fail_first: int,
                 quota_first: int, mark: bool = False) -> None:
        self.calls_path = os.path.abspath(calls_path) if calls_path else None
        self.mark = mark
        self.kind = kind
        self.delay = delay
        self.fail_first = fail_first
        self.quota_first = quota_first
        self.count = 0
        self.lock = threading.Lock()

    def enter(self, endpoint: str, image=None) -> None:
        """Called first thing in every removal function: count, record, delay, fail."""
        mark = f" mark={mark_of(image)}" if self.mark else ""
        with self.lock:
            self.count += 1
            n = self.count
            if self.calls_path:
                line = f"{n} kind={self.kind} endpoint={endpoint} pid={os.getpid()} t={time.time():.3f}{mark}\n"
                fd = os.open(self.calls_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line.encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
        if self.delay > 0:
            time.sleep(self.delay)
        if n <= self.quota_first:
            raise gr.Error(QUOTA_MESSAGE)
        if n <= self.quota_first + self.fail_first:
            raise RuntimeError(f"injected failure on call {n} (--fail-first {self.fail_first})")


# --------------------------------------------------------------------------------------------
# Version-tolerant construction helpers


def supported(fn, kwargs: dict) -> dict:
    """Keep only the keyword arguments that `fn` accepts (gradio APIs differ by version)."""
    params = inspect.signature(fn).parameters  # named ones only: **kwargs may pass on and fail
    accepted = {k: v for k, v in kwargs.items() if k in params}
    dropped = sorted(set(kwargs) - set(accepted))
    if dropped:
        log(f"gradio {gr.__version__}: {getattr(fn, '__qualname__', fn)} lacks {dropped}")
    return accepted


def image_slider(**kwargs):
    if hasattr(gr, "ImageSlider") and GRADIO_VERSION >= (5, 27, 0):
        cls = gr.ImageSlider  # native since 5.27
    else:
        from gradio_imageslider import ImageSlider as cls  # custom component used on 4.x
    return cls(**supported(cls.__init__, kwargs))


# --------------------------------------------------------------------------------------------
# App kinds


def build_blocks_png(faults: Faults, out_format: str = "png", flatten: bool = False) -> gr.Blocks:
    def remove(image):
        faults.enter("remove", image)
        rgb = to_pil_rgb(image)
        out = cutout(rgb)
        return flatten_on_white(out) if flatten else out

    with gr.Blocks(analytics_enabled=False) as demo:
        inp = gr.Image(type="pil", label="Input")
        out = gr.Image(format=out_format, label=f"Cutout ({out_format})")
        btn = gr.Button("Remove background")
        btn.click(remove, inputs=inp, outputs=out, api_name="remove")
    return demo


def build_slider(faults: Faults) -> gr.Blocks:
    # Shaped like not-lain/background-removal: returns (cutout, original).
    def fn(image):
        faults.enter("image", image)
        rgb = to_pil_rgb(image)
        return (cutout(rgb), rgb)

    with gr.Blocks(analytics_enabled=False) as demo:
        inp = gr.Image(type="pil", label="Image")
        out = image_slider(label="Processed image", type="pil", format="png")
        btn = gr.Button("Remove")
        btn.click(fn, inputs=inp, outputs=out, api_name="image")
    return demo


def build_rmbg14(faults: Faults, flagging_dir: str) -> gr.Blocks:
    # Shaped like briaai/BRIA-RMBG-1.4: Interface, numpy input, default (webp) image output,
    # no api_name (so "/predict" on <=5.x and "/rmbg14" on 6.x).
    def rmbg14(image):
        faults.enter("rmbg14", image)
        return cutout(to_pil_rgb(image))

    kwargs = supported(
        gr.Interface.__init__,
        {"flagging_dir": flagging_dir, "analytics_enabled": False,
         "title": "Background Removal (RMBG-1.4 shaped)"},
    )
    return gr.Interface(fn=rmbg14, inputs="image", outputs="image", **kwargs)


def build_birefnet(faults: Faults) -> gr.Blocks:
    # Shaped like the newer ZhengPeng7/BiRefNet_demo "/image" tab.
    def image(img, resolution, weights, enable_rankseg, rankseg_metric):
        faults.enter("image", img)
        m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", str(resolution or ""))
        if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
            raise gr.Error(f"Invalid resolution {resolution!r}: expected WIDTHxHEIGHT, e.g. 1024x1024.")
        if weights not in WEIGHTS:
            raise gr.Error(f"Unknown weights {weights!r}: choose one of {', '.join(WEIGHTS)}.")
        if rankseg_metric not in RANKSEG_METRICS:
            raise gr.Error(f"Unknown rankseg metric {rankseg_metric!r}.")
        rgb = to_pil_rgb(img)
        result = cutout(rgb)
        # "RankSEG" stand-in: a hard mask at a metric-dependent threshold.
        alpha = backdrop_alpha(rgb)
        cut = 128 if rankseg_metric == "dice" else 102
        hard = np.where(alpha >= cut, 255, 0).astype(np.uint8) if enable_rankseg else alpha
        ranked = rgb.copy()
        ranked.putalpha(Image.fromarray(hard, mode="L"))
        return rgb, result, ranked

    with gr.Blocks(analytics_enabled=False) as demo:
        inp = gr.Image(type="pil", label="Upload an image")
        res = gr.Textbox(value="1024x1024", label="Resolution")
        wts = gr.Radio(WEIGHTS, value="General", label="Weights")
        rs = gr.Checkbox(value=False, label="enable_rankseg")
        metric = gr.Radio(RANKSEG_METRICS, value="dice", label="rankseg_metric")
        o0 = gr.Image(format="png", label="Original")
        o1 = gr.Image(format="png", label="BiRefNet result")
        o2 = gr.Image(format="png", label="BiRefNet + RankSEG result")
        btn = gr.Button("Remove")
        btn.click(image, inputs=[inp, res, wts, rs, metric], outputs=[o0, o1, o2], api_name="image")
    return demo


# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, timeout: float = 60.0) -> None:
    """Wait until the server answers an HTTP request (any status: login apps answer 401)."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/config"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", required=True, choices=KINDS)
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = pick a free one)")
    ap.add_argument("--calls", help="file that gets one line per call of the removal function")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds to sleep in each call")
    ap.add_argument("--concurrency", type=int, default=1,
                    help="calls run at once (several daemons sharing one app, as in cluster tests)")
    ap.add_argument("--fail-first", type=int, default=0,
                    help="the first N calls (after --quota-first ones) raise RuntimeError")
    ap.add_argument("--quota-first", type=int, default=0,
                    help="the first N calls raise gr.Error with a ZeroGPU quota message")
    ap.add_argument("--show-error", action="store_true", help="launch(show_error=True)")
    ap.add_argument("--max-file-size", type=int, default=200000,
                    help="upload limit in bytes for --kind limits")
    ap.add_argument("--mark", action="store_true",
                    help="add mark=R,G,B (mean colour of the photo's central patch) to each --calls line")
    args = ap.parse_args()

    faults = Faults(args.calls, args.kind, args.delay, args.fail_first, args.quota_first, args.mark)

    if args.kind in ("blocks_png", "login", "limits"):
        demo = build_blocks_png(faults)
    elif args.kind == "noalpha":
        demo = build_blocks_png(faults, out_format="jpeg", flatten=True)
    elif args.kind == "slider":
        demo = build_slider(faults)
    elif args.kind == "rmbg14":
        # Flagging (the Interface's "Flag" button) writes only when a user flags; keep it out of cwd.
        demo = build_rmbg14(faults, os.path.join(tempfile.gettempdir(), "thumbgen-gradio-flagged"))
    elif args.kind == "birefnet":
        demo = build_birefnet(faults)
    else:  # argparse restricts choices
        raise AssertionError(args.kind)

    if args.kind == "limits":
        demo.queue(max_size=1)
    else:
        demo.queue(default_concurrency_limit=args.concurrency)

    port = args.port or free_port()
    launch = {
        "server_name": "127.0.0.1",
        "server_port": port,
        "share": False,
        "prevent_thread_lock": True,
        "quiet": True,
        "show_error": args.show_error,
        "inbrowser": False,
        "ssr_mode": False,
        "mcp_server": False,
        "pwa": False,
        "enable_monitoring": False,
    }
    if args.kind == "login":
        launch["auth"] = AUTH
    if args.kind == "limits":
        launch["max_file_size"] = args.max_file_size

    started = time.monotonic()
    demo.launch(**supported(demo.launch, launch))
    wait_http(port)
    log(f"gradio {gr.__version__} kind={args.kind} on 127.0.0.1:{port} "
        f"(launch {time.monotonic() - started:.2f} s)")
    print(f"READY {port}", flush=True)

    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        try:
            demo.close()
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
