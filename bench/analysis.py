"""Image comparisons for the benchmark: PSNR between two sets of thumbnails, and IoU of masks
against ground truth (with thumbgen's bbox-cropped cut-out put back at its place in the photo)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def load_rgb(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def psnr_sets(dir_a: Path, dir_b: Path, names):
    """PSNR of A against B over all the named images (one MSE over every pixel), plus per-image
    minimum, split by white-canvas and background outputs. Also counts pure-white pixels."""
    acc = {"white": [0.0, 0], "background": [0.0, 0]}
    per_image = []
    white_a = white_b = 0
    for name in names:
        a = load_rgb(dir_a / name).astype(np.float64)
        b = load_rgb(dir_b / name).astype(np.float64)
        if a.shape != b.shape:
            per_image.append({"name": name, "psnr_db": None, "shape_a": a.shape, "shape_b": b.shape})
            continue
        se = ((a - b) ** 2).sum()
        kind = "background" if "__" in name else "white"
        acc[kind][0] += se
        acc[kind][1] += a.size
        mse = se / a.size
        per_image.append({"name": name, "psnr_db": _db(mse), "max_abs": float(np.abs(a - b).max())})
        if kind == "white":
            white_a += int((a == 255).all(axis=2).sum())
            white_b += int((b == 255).all(axis=2).sum())
    total_se = acc["white"][0] + acc["background"][0]
    total_n = acc["white"][1] + acc["background"][1]
    valid = [p["psnr_db"] for p in per_image if p["psnr_db"] is not None]
    return {
        "psnr_db_all": _db(total_se / total_n) if total_n else None,
        "psnr_db_white": _db(acc["white"][0] / acc["white"][1]) if acc["white"][1] else None,
        "psnr_db_background": _db(acc["background"][0] / acc["background"][1]) if acc["background"][1] else None,
        "psnr_db_min_image": min(valid) if valid else None,
        "images_compared": len(valid),
        "shape_mismatches": len(per_image) - len(valid),
        "pure_white_pixels_a": white_a,
        "pure_white_pixels_b": white_b,
        "per_image": per_image,
    }


def _db(mse):
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def iou(alpha: np.ndarray, gt: np.ndarray, threshold=128) -> float:
    a, g = alpha >= threshold, gt >= threshold
    union = np.logical_or(a, g).sum()
    return float(np.logical_and(a, g).sum() / union) if union else 1.0


def _grey(rgb):
    return rgb[..., 0].astype(np.float32) * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _block_mean(a, f):
    h, w = a.shape[0] // f * f, a.shape[1] // f * f
    return a[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def locate_cutout(cut_rgba: np.ndarray, photo_rgb: np.ndarray, ds=4):
    """Where thumbgen's cut-out (cropped to its alpha bbox, no offset stored) sits in the photo.

    Opaque cut-out pixels (alpha 255) keep the photo's exact colour (thumbgen's edge
    decontamination only changes partly transparent pixels), so the offset is where the cut-out's
    opaque pixels match the photo best: a coarse FFT search of the masked sum of squared
    differences at 1/ds scale, then an exact search at full resolution around it. Returns
    (x, y, mean absolute difference in grey levels at that offset)."""
    H, W = photo_rgb.shape[:2]
    h, w = cut_rgba.shape[:2]
    P = _grey(photo_rgb)
    C = _grey(cut_rgba[..., :3])
    M = (cut_rgba[..., 3] == 255).astype(np.float32)
    if M.sum() < 100:
        M = (cut_rgba[..., 3] >= 200).astype(np.float32)
    Pd, Cd, Md = _block_mean(P, ds), _block_mean(C * M, ds), _block_mean(M, ds)
    shape = Pd.shape
    fP, fP2 = np.fft.rfft2(Pd, shape), np.fft.rfft2(Pd * Pd, shape)
    fC, fM = np.fft.rfft2(Cd, shape), np.fft.rfft2(Md, shape)
    corr_mp2 = np.fft.irfft2(fP2 * np.conj(fM), shape)
    corr_cp = np.fft.irfft2(fP * np.conj(fC), shape)
    ssd = corr_mp2 - 2 * corr_cp
    vh, vw = shape[0] - Md.shape[0] + 1, shape[1] - Md.shape[1] + 1
    ssd = ssd[:vh, :vw]
    cy, cx = np.unravel_index(np.argmin(ssd), ssd.shape)
    cy, cx = cy * ds, cx * ds
    ys, xs = np.nonzero(M)
    if len(ys) > 50_000:
        pick = np.random.default_rng(0).choice(len(ys), 50_000, replace=False)
        ys, xs = ys[pick], xs[pick]
    cvals = C[ys, xs]
    best = None
    r = 2 * ds
    for dy in range(max(0, cy - r), min(H - h, cy + r) + 1):
        for dx in range(max(0, cx - r), min(W - w, cx + r) + 1):
            err = float(np.abs(P[ys + dy, xs + dx] - cvals).mean())
            if best is None or err < best[2]:
                best = (dx, dy, err)
    return best


def thumbgen_cutouts(state_dir: Path):
    """{input name: cut-out path} from thumbgen's journal (product stamps) and cut-out cache."""
    out = {}
    for line in (state_dir / "journal.jsonl").read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("k") == "stamp" and rec.get("folder") == "product":
            path = state_dir / "cutouts" / f"{rec['hash']}.png"
            if path.is_file():
                out[rec["name"]] = path
    return out


def thumbgen_full_alpha(cutout_png: Path, photo_path: Path):
    """thumbgen's alpha at full-frame coordinates, and how its place was found."""
    with Image.open(cutout_png) as im:
        cut = np.asarray(im.convert("RGBA"))
    photo = load_rgb(photo_path)
    x, y, err = locate_cutout(cut, photo)
    alpha = np.zeros(photo.shape[:2], np.uint8)
    alpha[y : y + cut.shape[0], x : x + cut.shape[1]] = cut[..., 3]
    return alpha, {"x": int(x), "y": int(y), "w": int(cut.shape[1]), "h": int(cut.shape[0]), "match_mad": err}


def mask_scores(alpha: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None, tolerance=0.0075):
    """A mask against ground truth, leaving out the `ignore` pixels (VOC "void" bands): IoU at
    alpha >= 128, MAE of alpha/255, and boundary F — the harmonic mean of the share of predicted
    edge pixels within `tolerance` x the image diagonal of a true edge pixel and the reverse."""
    from scipy import ndimage

    keep = np.ones(gt.shape, bool) if ignore is None else ignore < 128
    a, g = (alpha >= 128) & keep, (gt >= 128) & keep
    union = (a | g).sum()
    mae = float(np.abs(alpha.astype(np.float64) - gt.astype(np.float64))[keep].mean() / 255)

    def edge(m):
        return m & ~ndimage.binary_erosion(m, structure=np.ones((3, 3), bool), border_value=0)

    ea, eg = edge(alpha >= 128) & keep, edge(gt >= 128) & keep
    tol = tolerance * float(np.hypot(*gt.shape))
    if ea.any() and eg.any():
        precision = float((ndimage.distance_transform_edt(~eg)[ea] <= tol).mean())
        recall = float((ndimage.distance_transform_edt(~ea)[eg] <= tol).mean())
        f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    else:
        f = 1.0 if ea.any() == eg.any() else 0.0
    return {"iou": float((a & g).sum() / union) if union else 1.0, "mae": mae, "boundary_f": f}


def load_grey(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))
