"""libvips side of the compose benchmark: the same work as `thumbgen process` on cut-outs.

Per product: load the RGBA PNG once (into memory), find the bounding box of alpha > 16 (thumbgen's
FAINT_ALPHA) with project(), crop, premultiply, resize with Lanczos3 so the longer side is
fill x canvas (thumbgen's geometry, float32 arithmetic), composite "over" (premultiplied) onto a
white canvas and onto each background's cover-cropped canvas-size resize (resized once per run and
kept in memory, as thumbgen's cover cache does), encode JPEG at the same quality with 4:4:4 chroma
and no optimised Huffman tables (as thumbgen), and write each file atomically and durably
(temporary name, fsync, rename; the folder is fsynced once per product, as thumbgen does).

Run with VIPS_CONCURRENCY=1. The operation cache is off. `--noop` imports and initialises only,
so the harness can subtract the interpreter's fixed start-up cost.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("VIPS_CONCURRENCY", "1")
import pyvips  # noqa: E402

FAINT_ALPHA = 16


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--bg", action="append", default=[])
    ap.add_argument("--size", type=int, default=1200)
    ap.add_argument("--fill", type=float, default=0.85)
    ap.add_argument("--margin", type=int, default=0)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--noop", action="store_true")
    ap.add_argument("cutouts", nargs="*")
    return ap.parse_args()


def bbox(img):
    """(left, top, width, height) of alpha > FAINT_ALPHA, from row and column projections."""
    mask = img[3] > FAINT_ALPHA  # 0 / 255 uchar
    cols, rows = mask.project()
    c = np.flatnonzero(cols.numpy().ravel())
    r = np.flatnonzero(rows.numpy().ravel())
    if len(c) == 0:
        return None
    return int(c[0]), int(r[0]), int(c[-1] - c[0] + 1), int(r[-1] - r[0] + 1)


def fit(cw, ch, size, fill, margin):
    """thumbgen's compose::place geometry, in float32 like the Rust code."""
    f32 = np.float32
    box = min(f32(size) * f32(fill), f32(size - 2 * margin))
    scale = min(box / f32(cw), box / f32(ch))
    w = int(min(max(np.rint(f32(cw) * scale), 1), size))
    h = int(min(max(np.rint(f32(ch) * scale), 1), size))
    return w, h


def exact_size(img, w, h):
    """libvips rounds output sizes itself; make sure the result is exactly w x h."""
    if img.width > w or img.height > h:
        img = img.crop(0, 0, min(w, img.width), min(h, img.height))
    if img.width < w or img.height < h:
        img = img.embed(0, 0, w, h, extend="copy")
    return img


def cover(path, size):
    bg = pyvips.Image.new_from_file(path, access="sequential")
    if bg.hasalpha():
        bg = bg.flatten(background=[255, 255, 255])
    bw, bh = bg.width, bg.height
    scale = max(size / bw, size / bh)
    cw, ch = round(size / scale), round(size / scale)
    left, top = (bw - cw) // 2, (bh - ch) // 2
    out = bg.crop(left, top, cw, ch).resize(size / cw, vscale=size / ch, kernel="lanczos3")
    return exact_size(out, size, size).cast("uchar").copy_memory()


def write_atomic(folder, name, data):
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, os.path.join(folder, name))


def sync_dir(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main():
    args = parse()
    pyvips.cache_set_max(0)
    if args.noop:
        pyvips.Image.black(8, 8).avg()
        print(json.dumps({"noop": True}))
        return
    size, q = args.size, args.quality
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    white = (pyvips.Image.black(size, size, bands=3) + 255).cast("uchar").copy_memory()
    canvases = [(None, white)] + [
        (os.path.splitext(os.path.basename(p))[0], cover(p, size)) for p in args.bg
    ]
    written, out_bytes = 0, 0
    for path in args.cutouts:
        stem = os.path.splitext(os.path.basename(path))[0]
        img = pyvips.Image.new_from_file(path).copy_memory()  # decode once
        if img.bands == 3:
            img = img.bandjoin(255)
        box = bbox(img)
        if box is None:
            continue
        left, top, cw, ch = box
        w, h = fit(cw, ch, size, args.fill, args.margin)
        product = img.crop(left, top, cw, ch).premultiply().cast("uchar")
        product = product.resize(w / cw, vscale=h / ch, kernel="lanczos3")
        product = exact_size(product, w, h).copy_memory()
        x, y = (size - w) // 2, (size - h) // 2
        for bg_stem, canvas in canvases:
            out = canvas.composite2(product, "over", x=x, y=y, premultiplied=True)
            out = out.extract_band(0, n=3).cast("uchar")
            data = out.jpegsave_buffer(Q=q, subsample_mode="off", optimize_coding=False, keep="none")
            name = f"{stem}.jpg" if bg_stem is None else f"{stem}__{bg_stem}.jpg"
            write_atomic(args.out, name, data)
            written += 1
            out_bytes += len(data)
        sync_dir(args.out)
    print(json.dumps({"written": written, "bytes": out_bytes, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    sys.exit(main())
