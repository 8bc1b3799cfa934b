#!/usr/bin/env python3
"""Writes the fuzz seed corpus, fuzz/seeds/: tiny valid images (a few hundred bytes each) in every
shape thumbgen meets — JPEG baseline, progressive, greyscale, CMYK, EXIF-rotated; PNG RGB, RGBA
cut-out, palette with tRNS, 16-bit, greyscale+alpha; WebP lossy, lossless with alpha; and a GIF,
which must be refused. Needs Pillow (any of the .venv/gradio* virtualenvs has it):

    .venv/gradio5/bin/python fuzz/make_seeds.py

The files are committed; rerunning only matters when a new kind of seed is added.
"""

import io
import pathlib

from PIL import Image, ImageDraw

OUT = pathlib.Path(__file__).resolve().parent / "seeds"


def product(size=(24, 16), mode="RGBA"):
    """A red disc on a white (or, with alpha, transparent) backdrop."""
    backdrop = (255, 255, 255, 0) if mode == "RGBA" else (255, 255, 255)
    img = Image.new(mode, size, backdrop)
    w, h = size
    ImageDraw.Draw(img).ellipse((w // 5, h // 5, w - w // 5, h - h // 5), fill=(200, 20, 20, 255)[: len(mode)])
    return img


def save(name, img, fmt, **options):
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    (OUT / name).write_bytes(buf.getvalue())
    print(f"{name}: {len(buf.getvalue())} bytes")


def main():
    OUT.mkdir(exist_ok=True)
    rgb = product(mode="RGB")
    rgba = product()

    save("baseline.jpg", rgb, "JPEG", quality=50)
    save("progressive.jpg", rgb, "JPEG", quality=50, progressive=True)
    save("grey.jpg", rgb.convert("L"), "JPEG", quality=50)
    save("cmyk.jpg", rgb.convert("CMYK"), "JPEG", quality=50)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    save("exif-rotated.jpg", rgb, "JPEG", quality=50, exif=exif.tobytes())
    save("subsampled-420.jpg", product(size=(17, 9), mode="RGB"), "JPEG", quality=50, subsampling=2)

    save("rgb.png", rgb, "PNG", optimize=True)
    save("cutout.png", rgba, "PNG", optimize=True)
    save("palette-trns.png", rgba.convert("P"), "PNG", transparency=0, optimize=True)
    save("grey16.png", rgb.convert("I;16"), "PNG")
    save("grey-alpha.png", rgba.convert("LA"), "PNG", optimize=True)
    save("interlaced.png", rgb, "PNG", interlace=1)

    save("lossy.webp", rgb, "WEBP", quality=50)
    save("lossless-alpha.webp", rgba, "WEBP", lossless=True)
    save("lossy-alpha.webp", rgba, "WEBP", quality=50)

    save("refused.gif", rgb.convert("P"), "GIF")


if __name__ == "__main__":
    main()
