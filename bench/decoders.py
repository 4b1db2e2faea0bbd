#!/usr/bin/env python3
"""Image decoders side by side: convkit's (libpng, libjpeg-turbo), stb_image alone, and PIL.

Writes the 10,000 real FashionMNIST test images as PNG and as JPEG (quality 90), and 500 colour
pictures of 256x256 made from them, decodes each set to grey three times with each decoder
(files already in memory, one thread) and prints the fastest time and how far each decoder's
pixels are from PIL's Image.convert("L"), in grey levels.

    bench/decoders.py [--build build]
"""
import argparse
import glob
import gzip
import io
import json
import os
import subprocess
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_sets(tmp):
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28)
    rng = np.random.default_rng(0)
    for name in ("png", "jpg", "colour-png", "colour-jpg"):
        os.makedirs(os.path.join(tmp, name))
    for i, image in enumerate(images):
        Image.fromarray(image).save(f"{tmp}/png/{i:05d}.png")
        Image.fromarray(image).save(f"{tmp}/jpg/{i:05d}.jpg", quality=90)
    for i in range(500):
        grey = np.pad(np.kron(images[i], np.ones((9, 9), np.uint8)), ((0, 4), (0, 4)))
        rgb = np.dstack([grey, 255 - grey, (grey // 2 + rng.integers(0, 64, grey.shape)).astype(np.uint8)])
        Image.fromarray(rgb).save(f"{tmp}/colour-png/{i:04d}.png")
        Image.fromarray(rgb).save(f"{tmp}/colour-jpg/{i:04d}.jpg", quality=90)


def pil_decode(files):
    contents = [open(f, "rb").read() for f in files]
    best = 1e300
    for _ in range(3):
        start = time.perf_counter()
        pixels = [np.asarray(Image.open(io.BytesIO(c)).convert("L")) for c in contents]
        best = min(best, time.perf_counter() - start)
    return best, pixels


def tool_decode(tool, decoder, files, dump):
    os.makedirs(dump)
    out = subprocess.run([tool, "--decoder", decoder, "--repeat", "3", "--dump", dump] + files,
                         check=True, capture_output=True, text=True)
    pixels = []
    for i in range(len(files)):
        with open(f"{dump}/{i}.pgm", "rb") as f:
            _, size, _, data = f.read().split(b"\n", 3)  # "P5\nW H\n255\n" then the pixels
        w, h = map(int, size.split())
        pixels.append(np.frombuffer(data, np.uint8).reshape(h, w))
    return json.loads(out.stdout)["seconds"], pixels


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = p.parse_args()
    tool = os.path.join(args.build, "decode_images")
    with tempfile.TemporaryDirectory() as tmp:
        write_sets(tmp)
        print(f"{'set':11} {'images':>6}  {'PIL':>7}  {'convkit':>7}  {'stb':>7}  (ms)   largest difference from PIL: convkit, stb")
        for name in ("png", "jpg", "colour-png", "colour-jpg"):
            files = sorted(glob.glob(f"{tmp}/{name}/*"))
            pil_s, reference = pil_decode(files)
            ours_s, ours = tool_decode(tool, "convkit", files, f"{tmp}/out-{name}-convkit")
            stb_s, stbs = tool_decode(tool, "stb", files, f"{tmp}/out-{name}-stb")
            worst = lambda pixels: max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(pixels, reference))
            print(f"{name:11} {len(files):>6}  {pil_s * 1e3:7.0f}  {ours_s * 1e3:7.0f}  {stb_s * 1e3:7.0f}"
                  f"        {worst(ours):>3}, {worst(stbs):>3}")


if __name__ == "__main__":
    main()
