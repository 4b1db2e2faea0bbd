#!/usr/bin/env python3
"""convkit's image decoders against PIL, the reader behind torchvision's datasets.

Pictures of every PNG colour type, bit depth and interlace, and grey, colour and CMYK JPEGs,
are written here (PIL, OpenCV, and by hand where neither writes the variant), decoded by
convkit (build/decode_images --dump) and by PIL's Image.open(f).convert("L"), and must be
identical, except for 16-bit samples, where convkit keeps the high byte as OpenCV's
IMREAD_GRAYSCALE does (PIL clips them at 255). BMP, GIF, TGA and PNM pictures, stb_image's to
decode, are compared too. The same comparison for stb_image alone is printed, not checked.

The same pictures decoded to RGB (--rgb, as colour networks take them) must equal PIL's
Image.open(f).convert("RGB"), but for the 16-bit ones.

Then pictures of other sizes are resized to 28x28 as image folders' are (--image-size 28x28) and
compared with torchvision's Resize((28, 28)) on the PIL image (PIL's antialiased bilinear): within
one grey level.

Last, an image-folder tree (nested folders, extensions in any case, files that are not images)
is listed by convkit and by torchvision's ImageFolder: the (file, class) pairs must be equal, in
the same order.
"""
import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import cv2
import numpy as np
from PIL import Image

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def grey_png(pixels, depth, interlaced):
    """A grey PNG of `depth` bits (1, 2, 4, 8 or 16) written by hand, Adam7-interlaced or not."""
    h, w = pixels.shape
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            if depth == 16:
                packed = row.astype(">u2").tobytes()
            elif depth == 8:
                packed = row.astype(np.uint8).tobytes()
            else:
                packed = np.packbits(np.unpackbits(row.astype(np.uint8)[:, None], axis=1)[:, 8 - depth:]).tobytes()
            raw += b"\x00" + packed
    header = struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 1 if interlaced else 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")


def pil_bytes(image, fmt, **kw):
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def pictures(rng):
    """(name, file bytes, the grey pixels convkit must give, or None for PIL's)."""
    h, w = 37, 53  # odd sizes, so that no row or pass lines up with a byte or a block
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    rgb[:, :, 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]  # some smooth structure for JPEG
    grey = rng.integers(0, 256, (h, w), dtype=np.uint8)
    alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
    wide = rng.integers(0, 65536, (h, w), dtype=np.uint16)
    out = [
        ("grey8.png", pil_bytes(Image.fromarray(grey), "PNG"), None),
        ("grey-alpha.png", pil_bytes(Image.fromarray(np.dstack([grey, alpha]), "LA"), "PNG"), None),
        ("rgb.png", pil_bytes(Image.fromarray(rgb), "PNG"), None),
        ("rgba.png", pil_bytes(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "PNG"), None),
        ("bilevel.png", pil_bytes(Image.fromarray(grey > 127), "PNG"), None),
        ("palette.png", pil_bytes(Image.fromarray(rgb).quantize(37), "PNG"), None),
        ("palette-transparent.png", pil_bytes(Image.fromarray(rgb).quantize(16), "PNG", transparency=3), None),
        ("palette-4bit.png", pil_bytes(Image.fromarray(rgb).quantize(16), "PNG", bits=4), None),
        # 16-bit: OpenCV's reading, the high byte (PIL clips these at 255).
        ("grey16.png", cv2.imencode(".png", wide)[1].tobytes(), (wide >> 8).astype(np.uint8)),
        ("rgb16.png", cv2.imencode(".png", np.dstack([wide, wide[::-1], wide[:, ::-1]]))[1].tobytes(), None),
        ("grey-interlaced.png", grey_png(grey, 8, True), None),
        ("grey16-interlaced.png", grey_png(wide, 16, True), (wide >> 8).astype(np.uint8)),
        ("rgb.bmp", pil_bytes(Image.fromarray(rgb), "BMP"), None),
        ("palette.gif", pil_bytes(Image.fromarray(rgb).quantize(64), "GIF"), None),
        ("rgb.tga", pil_bytes(Image.fromarray(rgb), "TGA"), None),
        ("rgba-rle.tga", pil_bytes(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "TGA", compression="tga_rle"), None),
        ("grey.pgm", pil_bytes(Image.fromarray(grey), "PPM"), None),
        ("rgb.ppm", pil_bytes(Image.fromarray(rgb), "PPM"), None),
        ("grey-jpeg.jpg", pil_bytes(Image.fromarray(grey), "JPEG", quality=90), None),
        ("rgb-jpeg.jpg", pil_bytes(Image.fromarray(rgb), "JPEG", quality=90), None),
        ("rgb-progressive.jpg", pil_bytes(Image.fromarray(rgb), "JPEG", quality=80, progressive=True), None),
        ("cmyk.jpg", pil_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95), None),
        ("rgb-444.jpg", pil_bytes(Image.fromarray(rgb), "JPEG", quality=95, subsampling=0), None),
    ]
    for depth in (1, 2, 4):
        levels = grey >> (8 - depth)
        for interlaced in (False, True):
            name = f"grey{depth}{'-interlaced' if interlaced else ''}.png"
            out.append((name, grey_png(levels, depth, interlaced), None))
    return out


def read_pnm(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, size, top, pixels = data.split(b"\n", 3)  # as decode_images writes it: "P5\nW H\n255\n"
    assert magic in (b"P5", b"P6") and top == b"255", path
    w, h = map(int, size.split())
    return np.frombuffer(pixels, np.uint8).reshape((h, w, 3) if magic == b"P6" else (h, w))


def decode(tool, decoder, files, dump, *flags):
    out = subprocess.run([tool, "--decoder", decoder, "--dump", dump, *flags] + files, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"FAIL: decode_images --decoder {decoder}: {out.stderr.strip()}")
    ext = ".ppm" if "--rgb" in flags else ".pgm"
    return [read_pnm(os.path.join(dump, f"{i}{ext}")) for i in range(len(files))]


def check_rgb(tool, cases, files, tmp):
    failures = []
    os.makedirs(os.path.join(tmp, "rgb"))
    ours = decode(tool, "convkit", files, os.path.join(tmp, "rgb"), "--rgb")
    print(f"\n{'picture, as RGB':26} {'convkit vs PIL':>15}")
    for (name, _, expected), file, mine in zip(cases, files, ours):
        if expected is not None:  # 16-bit samples: PIL clips them, convkit keeps the high byte
            continue
        reference = np.asarray(Image.open(file).convert("RGB"))
        diff = "shape" if mine.shape != reference.shape else int(np.abs(mine.astype(int) - reference).max())
        print(f"{name:26} {diff:>15}")
        if diff != 0:
            failures.append(f"{name} as RGB: convkit differs from PIL's convert('RGB') by {diff}")
    return failures


def check_listing(tool, rng, tmp):
    import torchvision.datasets as datasets
    root = os.path.join(tmp, "listing")
    names = ["cat/b.png", "cat/A.PNG", "cat/deep/er/x.jpg", "cat/deep/a.bmp", "cat/deep2/c.pgm", "cat/notes.txt",
             "Dog/z.jpeg", "Dog/y.PPM", "Dog/sub/readme", "bird/1.png", "bird/10.png", "bird/2.png", "bird/_/3.png"]
    for name in names:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if name.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm")):
            fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".pgm": "PPM", ".ppm": "PPM"}.get(os.path.splitext(name)[1].lower(),
                                                                                   None)
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(path, format=fmt)
        else:
            open(path, "w").write("not an image")
    out = subprocess.run([tool, "--list-folder", root], capture_output=True, text=True)
    if out.returncode != 0:
        return [f"decode_images --list-folder: {out.stderr.strip()}"]
    listed = json.loads(out.stdout)
    reference = datasets.ImageFolder(root)
    ours = [(path, label) for path, label in listed["samples"]]
    print(f"\nimage-folder listing: {len(ours)} files, classes {listed['classes']}")
    failures = []
    if listed["classes"] != reference.classes:
        failures.append(f"classes {listed['classes']} != ImageFolder's {reference.classes}")
    if ours != [(p, c) for p, c in reference.samples]:
        failures.append(f"(file, class) pairs differ from ImageFolder's:\n  {ours}\n  {reference.samples}")
    return failures


def check_resizing(tool, rng, tmp):
    import torchvision.transforms as T
    failures = []
    sizes = [(60, 45), (100, 100), (200, 37), (29, 28), (14, 14), (9, 40)]
    files = []
    for w, h in sizes:
        smooth = np.kron(rng.integers(0, 256, (h // 4 + 1, w // 4 + 1)), np.ones((4, 4)))[:h, :w]
        picture = np.clip(smooth + rng.integers(-20, 20, (h, w)), 0, 255).astype(np.uint8)
        files.append(os.path.join(tmp, f"resize-{w}x{h}.png"))
        Image.fromarray(picture).save(files[-1])
    os.makedirs(os.path.join(tmp, "resized"))
    ours = decode(tool, "convkit", files, os.path.join(tmp, "resized"), "--resize-28")
    print(f"\n{'resized to 28x28':26} {'largest':>8} {'mean':>8}   (difference from torchvision's Resize on PIL, grey levels)")
    for (w, h), file, mine in zip(sizes, files, ours):
        reference = np.asarray(T.Resize((28, 28))(Image.open(file).convert("L"))).astype(int)
        diff = np.abs(mine.astype(int) - reference)
        print(f"{f'{w}x{h}':26} {diff.max():>8} {diff.mean():>8.3f}")
        if diff.max() > 1:
            failures.append(f"resizing {w}x{h}: convkit differs from torchvision's Resize by {diff.max()} levels")
    return failures


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--decode-images", required=True, help="the decode_images program")
    args = p.parse_args()
    rng = np.random.default_rng(1234)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = pictures(rng)
        files = []
        for name, data, _ in cases:
            files.append(os.path.join(tmp, name))
            with open(files[-1], "wb") as f:
                f.write(data)
        results = {}
        for decoder in ("convkit", "stb"):
            os.makedirs(os.path.join(tmp, decoder))
            results[decoder] = decode(args.decode_images, decoder, files, os.path.join(tmp, decoder))
        print(f"{'picture':26} {'convkit vs PIL':>15} {'stb vs PIL':>11}   (largest difference in grey levels)")
        for (name, _, expected), file, ours, stbs in zip(cases, files, results["convkit"], results["stb"]):
            reference = expected if expected is not None else np.asarray(Image.open(file).convert("L"))
            diff = lambda a: "shape" if a.shape != reference.shape else int(np.abs(a.astype(int) - reference).max())
            print(f"{name:26} {diff(ours):>15} {diff(stbs):>11}")
            if diff(ours) != 0:
                failures.append(f"{name}: convkit differs from the reference by {diff(ours)}")
        failures += check_rgb(args.decode_images, cases, files, tmp)
        failures += check_resizing(args.decode_images, rng, tmp)
        failures += check_listing(args.decode_images, rng, tmp)
    for f in failures:
        print("FAIL:", f)
    if failures:
        sys.exit(1)
    print(json.dumps({"pictures": len(cases), "failures": 0}))


if __name__ == "__main__":
    main()
