"""Deterministic synthetic corpus for the thumbgen benchmark.

Everything is drawn from seeded generators, so the same parameters always give byte-identical
files. Four kinds of input:

* cut-outs: RGBA PNGs (default 4000x3000) holding a shaded, labelled, noisy product (ellipse,
  rounded box or bottle) at a random place covering 30-60 % of the width, with a Gaussian-feathered
  alpha (sigma 1.5-3 px) and RGB = 0 wherever alpha = 0 (as rembg writes them); zlib level 6
  (Pillow's default, i.e. zlib's default);
* backgrounds: 1920x1080 JPEGs (q90): gradient + bokeh blobs, or fine stripes + noise;
* photos: 4000x3000 JPEG "studio" product photos (q92, 4:2:0) - light backdrop with a vertical
  sweep gradient, vignette, a faint contact shadow and camera-like noise - with the exact
  ground-truth alpha of the product saved as an 8-bit PNG (the shadow is not part of it);
* small cut-outs (800x600 for the latency test, 200x150 for the burst) with unique content: 16
  rendered variants, file i being variant i % 16 with i written into four opaque pixels, so no two
  files share a content hash (thumbgen keys its work and its cut-out cache by content).

Files are generated only when missing (folder names carry VERSION), written under a temporary name
and renamed, so an interrupted generation never leaves a file that looks finished.
"""

from __future__ import annotations

import colorsys
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SHAPES = ("ellipse", "roundbox", "bottle")


# --- shapes -------------------------------------------------------------------------------------

def _sdf_roundbox(x, y, cx, cy, hw, hh, r):
    """Signed distance (px, negative inside) to a rounded rectangle."""
    qx = np.abs(x - cx) - (hw - r)
    qy = np.abs(y - cy) - (hh - r)
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    inside = np.minimum(np.maximum(qx, qy), 0)
    return outside + inside - r


def _sdf_ellipse(x, y, cx, cy, rx, ry):
    """Approximate signed distance to an ellipse (exact enough for 1-px anti-aliasing)."""
    nx, ny = (x - cx) / rx, (y - cy) / ry
    k = np.sqrt(nx * nx + ny * ny)
    grad = np.sqrt((nx / rx) ** 2 + (ny / ry) ** 2) + 1e-9
    return (k - 1.0) * k / grad


def shape_sdf(kind, x, y, cx, cy, w, h):
    """Signed distance field of a product shape of size w x h centred on (cx, cy)."""
    if kind == "ellipse":
        return _sdf_ellipse(x, y, cx, cy, w / 2, h / 2)
    if kind == "roundbox":
        return _sdf_roundbox(x, y, cx, cy, w / 2, h / 2, 0.12 * min(w, h))
    # bottle: body (lower 62 %), shoulders (an ellipse), neck and cap
    body_h = 0.62 * h
    body = _sdf_roundbox(x, y, cx, cy + h / 2 - body_h / 2, w / 2, body_h / 2, 0.10 * w)
    sh_cy = cy + h / 2 - body_h
    shoulders = _sdf_ellipse(x, y, cx, sh_cy, w / 2, 0.16 * h)
    neck_w = 0.36 * w
    neck = _sdf_roundbox(x, y, cx, cy - h / 2 + 0.17 * h, neck_w / 2, 0.17 * h, 0.04 * w)
    return np.minimum(np.minimum(body, shoulders), neck)


def _product_rgb(rng, kind, x0, y0, nx, ny, cx, cy, w, h):
    """Shaded product colour (float32 0..255, ny x nx x 3, pixel (0,0) at (x0,y0)) with a label
    band, stripes and glyph blocks."""
    hue = rng.random()
    sat = rng.uniform(0.35, 0.85)
    val = rng.uniform(0.35, 0.8)
    base = (np.array(colorsys.hsv_to_rgb(hue, sat, val)) * 255.0).astype(np.float32)
    xs = np.arange(nx, dtype=np.float32) + x0 + 0.5
    ys = np.arange(ny, dtype=np.float32) + y0 + 0.5
    u = np.clip((xs - cx) / (w / 2), -1, 1)
    shade = (0.55 + 0.45 * np.sqrt(np.clip(1 - u * u, 0, 1))).astype(np.float32)  # cylinder
    spec = (70.0 * np.exp(-(((u + 0.45) / 0.08) ** 2))).astype(np.float32)        # highlight
    row = base[None, :] * shade[:, None] + spec[:, None]                          # nx x 3
    rgb = np.broadcast_to(row[None, :, :], (ny, nx, 3)).copy()
    # label: a band across the middle with stripes and "glyph" blocks
    top, bottom = cy - 0.12 * h, cy + 0.18 * h
    r0, r1 = np.searchsorted(ys, top), np.searchsorted(ys, bottom)
    c0, c1 = np.searchsorted(u, -0.92), np.searchsorted(u, 0.92)
    lab = (np.array(colorsys.hsv_to_rgb((hue + 0.5) % 1, 0.25, 0.95)) * 255.0).astype(np.float32)
    rgb[r0:r1, c0:c1] = (lab[None, :] * shade[c0:c1, None])[None, :, :]
    period = max(6.0, h / 40)
    stripe_rows = (np.floor((ys[r0:r1] - top) / period) % 5) == 0
    rgb[r0:r1][stripe_rows, c0:c1] *= 0.55
    for _ in range(int(rng.integers(8, 20))):
        gx = cx + rng.uniform(-0.7, 0.6) * w / 2
        gy = rng.uniform(top, bottom)
        gw, gh = rng.uniform(0.03, 0.12) * w, rng.uniform(0.02, 0.05) * h
        a0, a1 = max(r0, int(gy - y0)), min(r1, int(gy + gh - y0))
        b0, b1 = max(c0, int(gx - x0)), min(c1, int(gx + gw - x0))
        if a1 > a0 and b1 > b0:
            rgb[a0:a1, b0:b1] *= 0.25
    return rgb


def _noise(rng, shape, luma_sigma=3.0, chroma_sigma=1.5):
    """Camera-like noise: a luma component shared by the channels plus weaker chroma noise."""
    luma = rng.standard_normal(shape[:2], dtype=np.float32) * luma_sigma
    chroma = rng.standard_normal(shape, dtype=np.float32) * chroma_sigma
    return luma[..., None] + chroma


def _object_geometry(rng, kind, width, height, frac_lo=0.30, frac_hi=0.60, centred=False):
    w = rng.uniform(frac_lo, frac_hi) * width
    aspect = {"ellipse": rng.uniform(0.6, 1.3), "roundbox": rng.uniform(0.7, 1.4), "bottle": rng.uniform(1.6, 2.4)}[kind]
    h = min(w * aspect, 0.82 * height)
    w = min(w, h / aspect * 1.0) if kind == "bottle" else w
    margin = 8
    if centred:
        cx = width / 2 + rng.uniform(-0.08, 0.08) * width
        cy = height / 2 + rng.uniform(-0.05, 0.05) * height
    else:
        cx = rng.uniform(w / 2 + margin, width - w / 2 - margin)
        cy = rng.uniform(h / 2 + margin, height - h / 2 - margin)
    return cx, cy, w, h


def render_cutout(seed, width=4000, height=3000, kind=None):
    """RGBA uint8 array: a product cut-out with a feathered alpha and RGB 0 where alpha is 0."""
    rng = np.random.default_rng(seed)
    kind = kind or SHAPES[seed % len(SHAPES)]
    cx, cy, w, h = _object_geometry(rng, kind, width, height)
    sigma = rng.uniform(1.5, 3.0) * min(1.0, width / 4000)
    pad = int(4 * max(sigma, 1.0)) + 4
    x0, x1 = max(0, int(cx - w / 2) - pad), min(width, int(cx + w / 2) + pad + 1)
    y0, y1 = max(0, int(cy - h / 2) - pad), min(height, int(cy + h / 2) + pad + 1)
    y, x = np.ogrid[y0:y1, x0:x1]
    sdf = shape_sdf(kind, x.astype(np.float32) + 0.5, y.astype(np.float32) + 0.5, cx, cy, w, h)
    hard = np.clip(0.5 - sdf, 0, 1)
    alpha_img = Image.fromarray((hard * 255).round().astype(np.uint8))
    if sigma > 0.3:
        alpha_img = alpha_img.filter(ImageFilter.GaussianBlur(sigma))
    alpha = np.asarray(alpha_img)
    rgb = _product_rgb(rng, kind, x0, y0, x1 - x0, y1 - y0, cx, cy, w, h)
    rgb += _noise(rng, rgb.shape)
    rgb = np.clip(rgb, 0, 255).round().astype(np.uint8)
    rgb[alpha == 0] = 0
    out = np.zeros((height, width, 4), np.uint8)
    out[y0:y1, x0:x1, :3] = rgb
    out[y0:y1, x0:x1, 3] = alpha
    return out


def render_background(seed, width=1920, height=1080):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    c0 = np.array(colorsys.hsv_to_rgb(rng.random(), 0.5, 0.9)) * 255
    c1 = np.array(colorsys.hsv_to_rgb(rng.random(), 0.6, 0.5)) * 255
    t = (x / width * 0.6 + y / height * 0.4)[..., None]
    img = c0 * (1 - t) + c1 * t
    if seed % 2 == 0:  # bokeh blobs
        for _ in range(40):
            bx, by = rng.uniform(0, width), rng.uniform(0, height)
            r = rng.uniform(20, 140)
            col = np.array(colorsys.hsv_to_rgb(rng.random(), 0.3, 1.0)) * 255
            d = np.hypot(x - bx, y - by)
            a = (np.clip((r - d) / 6, 0, 1) * rng.uniform(0.15, 0.45))[..., None]
            img = img * (1 - a) + col * a
    else:  # fine stripes
        img = img * (0.85 + 0.15 * (np.sin(x * 0.35 + y * 0.05) > 0))[..., None]
    img = img + _noise(rng, img.shape, 4.0, 2.0)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def render_photo(seed, width=4000, height=3000):
    """(RGB uint8 photo, L uint8 ground-truth alpha) of a studio product shot."""
    rng = np.random.default_rng(seed)
    kind = SHAPES[seed % len(SHAPES)]
    yv, xv = np.ogrid[0:height, 0:width]
    x = xv.astype(np.float32) + 0.5
    y = yv.astype(np.float32) + 0.5
    # backdrop: light, slightly tinted sweep with a vignette
    tint = (np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.12), 1.0)) * 255).astype(np.float32)
    level = rng.uniform(0.86, 0.97)
    sweep = 1.0 - 0.10 * (y / height) ** 1.5
    r2 = ((x - width / 2) / (width / 2)) ** 2 + ((y - height / 2) / (height / 2)) ** 2
    lum = (level * sweep) * (1.0 - rng.uniform(0.10, 0.22) * r2 / 2)
    cx, cy, w, h = _object_geometry(rng, kind, width, height, centred=True)
    # faint contact shadow under the product (not part of the ground truth)
    lum = lum * (1 - 0.25 * np.exp(-(((x - cx) / (0.6 * w)) ** 2 + ((y - (cy + h / 2)) / (0.05 * h + 10)) ** 2)))
    img = tint[None, None, :] * lum.astype(np.float32)[..., None]
    # the product, rendered in its box only
    pad = 8
    x0, x1 = max(0, int(cx - w / 2) - pad), min(width, int(cx + w / 2) + pad + 1)
    y0, y1 = max(0, int(cy - h / 2) - pad), min(height, int(cy + h / 2) + pad + 1)
    sdf = shape_sdf(kind, x[:, x0:x1], y[y0:y1, :], cx, cy, w, h)
    box_alpha = Image.fromarray((np.clip(0.5 - sdf, 0, 1) * 255).round().astype(np.uint8))
    box_alpha = np.asarray(box_alpha.filter(ImageFilter.GaussianBlur(0.8)))  # a touch of lens softness
    gt = np.zeros((height, width), np.uint8)
    gt[y0:y1, x0:x1] = box_alpha
    a = (box_alpha.astype(np.float32) / 255.0)[..., None]
    prod = _product_rgb(rng, kind, x0, y0, x1 - x0, y1 - y0, cx, cy, w, h)
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - a) + prod * a
    # camera-like noise, stronger in the darker parts
    sig = 1.5 + 2.5 * (1 - img.mean(axis=2, keepdims=True) / 255.0)
    img += _noise(rng, img.shape, 1.0, 0.8) * sig
    return np.clip(img, 0, 255).round().astype(np.uint8), gt


def png_bytes(arr, compress_level=6):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


# --- generation with a manifest, so an unchanged corpus is reused ---------------------------------

def _write(path: Path, data: bytes):
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _gen_cutout(args):
    path, seed, w, h = args
    _write(Path(path), png_bytes(render_cutout(seed, w, h)))
    return path


def _gen_photo(args):
    path, gt_path, seed = args[:3]
    photo, gt = render_photo(seed, *args[3:])
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=92)
    _write(Path(gt_path), png_bytes(gt))
    _write(Path(path), buf.getvalue())
    return path


def _gen_background(args):
    path, seed = args
    buf = io.BytesIO()
    Image.fromarray(render_background(seed)).save(buf, format="JPEG", quality=90)
    _write(Path(path), buf.getvalue())
    return path


def _ensure(jobs, worker, procs):
    """Runs `worker` for every job whose output file (job[0]) does not exist yet. Files are
    written under a temporary name and renamed, so an interrupted run never leaves a partial
    file that looks finished."""
    todo = [j for j in jobs if not Path(j[0]).is_file()]
    if not todo:
        return 0
    Path(todo[0][0]).parent.mkdir(parents=True, exist_ok=True)
    if procs > 1 and len(todo) > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(procs) as pool:
            list(pool.imap_unordered(worker, todo))
    else:
        for job in todo:
            worker(job)
    return len(todo)


VERSION = 3  # bump when the generators change: the folder names carry it


def ensure_cutouts(root: Path, n: int, width=4000, height=3000, procs=2):
    folder = root / f"cutouts-v{VERSION}-{width}x{height}"
    jobs = [(str(folder / f"p{i:02d}.png"), 1000 + i, width, height) for i in range(n)]
    made = _ensure(jobs, _gen_cutout, procs)
    return [Path(j[0]) for j in jobs], made


def ensure_backgrounds(root: Path, b: int, procs=2):
    folder = root / f"backgrounds-v{VERSION}"
    jobs = [(str(folder / f"bg{i}.jpg"), 2000 + i) for i in range(b)]
    made = _ensure(jobs, _gen_background, procs)
    return [Path(j[0]) for j in jobs], made


def ensure_photos(root: Path, m: int, procs=2):
    folder = root / f"photos-v{VERSION}"
    # the ground truth is written first, so an existing photo always has its mask
    jobs = [(str(folder / f"photo{i:02d}.jpg"), str(folder / f"photo{i:02d}.gt.png"), 3000 + i) for i in range(m)]
    made = _ensure(jobs, _gen_photo, procs)
    return [(Path(j[0]), Path(j[1])) for j in jobs], made


def ensure_control_photo(root: Path, width=640, height=480):
    """One small studio photo (same generator): the model's cost is the same at any photo size
    (it always sees 320x320), so removal time on it is almost all inference; the difference to a
    12 MP photo is the full-resolution pre- and post-processing."""
    folder = root / f"photos-v{VERSION}"
    job = (str(folder / f"control{width}x{height}.jpg"), str(folder / f"control{width}x{height}.gt.png"), 3999,
           width, height)
    _ensure([job], _gen_photo, 1)
    return Path(job[0]), Path(job[1])


def _gen_small(args):
    folder, start, stop, width, height, variants = args
    bases = [render_cutout(7000 + v, width, height) for v in range(variants)]
    for i in range(start, stop):
        path = Path(folder) / f"s{i:05d}.png"
        if not path.is_file():
            _write(path, unique_png(bases[i % variants], i))


def ensure_small(root: Path, count: int, width: int, height: int, procs=2, variants=16):
    """`count` small cut-outs with unique content (file i = variant i % 16 with i written into
    four opaque pixels), in a folder of their own."""
    folder = root / f"small-v{VERSION}-{width}x{height}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"s{i:05d}.png" for i in range(count)]
    missing = sum(1 for p in paths if not p.is_file())
    if missing:
        chunk = max(1, (count + procs - 1) // procs)
        jobs = [(str(folder), s, min(count, s + chunk), width, height, variants) for s in range(0, count, chunk)]
        if procs > 1 and len(jobs) > 1:
            import multiprocessing as mp
            with mp.get_context("fork").Pool(procs) as pool:
                list(pool.imap_unordered(_gen_small, jobs))
        else:
            for job in jobs:
                _gen_small(job)
    return paths, missing


def small_cutout_variants(count, width, height, seed0):
    """`count` distinct small RGBA cut-outs (arrays)."""
    return [render_cutout(seed0 + i, width, height) for i in range(count)]


def unique_png(base: np.ndarray, index: int) -> bytes:
    """PNG of `base` made unique by writing `index` into a few opaque pixels' colour."""
    arr = base.copy()
    ys, xs = np.nonzero(arr[..., 3] == 255)
    mid = len(ys) // 2
    for k, byte in enumerate(index.to_bytes(4, "little")):
        arr[ys[mid + k], xs[mid + k], 0] = byte
    return png_bytes(arr)
