#!/usr/bin/env python3
"""Exports real trained networks and runs them in the runtimes people deploy with.

For lenet, mlp, lenet-bn and a spec that uses every token, trained for one short epoch on the
real FashionMNIST (Debian's dataset-fashion-mnist):
  * ONNX, plain, --fold-bn, --with-preprocessing (float or uint8 pixels), --softmax: the ONNX checker
    (python3-onnx) passes; OpenCV 4.6's dnn (python3-opencv) run on the 10,000 test images gives
    logits within 1e-4 of `convkit eval --logits` and the same argmax on every image;
  * TorchScript, plain and with preprocessing: torch.jit.load gives logits within 1e-5, its
    state_dict names are model.pt's, and it carries the class names;
  * examples/deploy_opencv prints exactly the lines `convkit predict` prints for PNG and JPEG files;
  * bad input (a missing checkpoint, an unwritable output, a flag that does not apply) gets a
    one-line error, a non-zero exit and no file.
Usage: export.py --convkit BUILD/convkit [--deploy BUILD/deploy_opencv] [--data DIR]
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import onnx
import torch
from PIL import Image

ALL_TOKENS = "pw3-c8k3p1bn-gelu-mp2-c12k3s2p1-tanh-c12k3p1-ap2-elu-dr0.25-fc32bn-silu-fc24-lrelu-fc16"
NETWORKS = ["lenet", "mlp", "lenet-bn", ALL_TOKENS]
failures = []


def check(what, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + what + (f" ({detail})" if detail else ""), flush=True)
    if not ok:
        failures.append(what)


def read_idx_images(data_dir):
    for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            raw = (gzip.open if name.endswith(".gz") else open)(path, "rb").read()
            return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)
    sys.exit(f"no test images in {data_dir}")


def convkit(args, *cmd, check_rc=True):
    r = subprocess.run([args.convkit, *cmd], capture_output=True, text=True)
    if check_rc and r.returncode != 0:
        sys.exit(f"convkit {' '.join(cmd)} failed: {r.stderr.strip()}")
    return r


def opencv_outputs(path, inputs):
    net = cv2.dnn.readNetFromONNX(path)
    outs = []
    for start in range(0, len(inputs), 1000):
        net.setInput(np.ascontiguousarray(inputs[start:start + 1000]))
        outs.append(net.forward().copy())
    return np.concatenate(outs)


def compare(what, actual, expected, tolerance):
    diff = float(np.abs(actual - expected).max())
    same = int((actual.argmax(1) == expected.argmax(1)).sum())
    check(f"{what}: max |diff| {diff:.2e} <= {tolerance:g}", diff <= tolerance)
    check(f"{what}: same argmax on {same}/{len(expected)} images", same == len(expected))


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def check_network(args, tmp, name, pixels):
    tag = name if len(name) < 20 else "spec"
    run = os.path.join(tmp, tag)
    convkit(args, "train", "--model", name, "--epochs", "1", "--limit", "6000", "--quiet", "--no-report",
            "--out", run)
    logits_file = os.path.join(run, "logits.npy")
    convkit(args, "eval", "--checkpoint", os.path.join(run, "model.pt"), "--logits", logits_file)
    expected = np.load(logits_file)
    info = json.load(open(os.path.join(run, "model.json")))
    normalised = ((pixels.astype(np.float32) / np.float32(255) - np.float32(info["normalization"]["mean"])) /
                  np.float32(info["normalization"]["std"])).astype(np.float32)

    variants = [([], normalised, expected, "plain"),
                (["--fold-bn"], normalised, expected, "--fold-bn"),
                (["--with-preprocessing"], pixels.astype(np.float32), expected, "--with-preprocessing"),
                (["--with-preprocessing", "--fold-bn"], pixels.astype(np.float32), expected, "--with-preprocessing --fold-bn"),
                (["--with-preprocessing", "--pixel-type", "uint8"], pixels, expected, "--pixel-type uint8"),
                (["--with-preprocessing", "--softmax"], pixels.astype(np.float32), softmax(expected), "--softmax")]
    for flags, inputs, reference, label in variants:
        out = os.path.join(run, "model.onnx")
        convkit(args, "export", run, "--format", "onnx", "--out", out, *flags)
        model = onnx.load(out)
        try:
            onnx.checker.check_model(model)
            check(f"{tag} onnx {label}: onnx.checker", True)
        except onnx.checker.ValidationError as e:
            check(f"{tag} onnx {label}: onnx.checker", False, str(e).splitlines()[0])
        meta = {p.key: p.value for p in model.metadata_props}
        check(f"{tag} onnx {label}: classes in metadata_props", json.loads(meta.get("classes", "[]")) == info["classes"])
        compare(f"{tag} onnx {label} in OpenCV {cv2.__version__}", opencv_outputs(out, inputs), reference, 1e-4)

    for flags, inputs, label in [([], torch.from_numpy(normalised), "plain"),
                                 (["--with-preprocessing"], torch.from_numpy(pixels.copy()), "--with-preprocessing uint8")]:
        out = os.path.join(run, "model.torchscript.pt")
        convkit(args, "export", run, "--format", "torchscript", "--out", out, *flags)
        module = torch.jit.load(out)
        with torch.no_grad():
            actual = module(inputs).numpy()
        compare(f"{tag} torchscript {label} in torch.jit.load", actual, expected, 1e-5)
        names = sorted(torch.load(os.path.join(run, "model.pt")).keys())
        check(f"{tag} torchscript {label}: state_dict names are model.pt's", sorted(module.state_dict().keys()) == names)
        check(f"{tag} torchscript {label}: classes attribute", list(module.classes) == info["classes"])
    return run


def check_deploy_example(args, tmp, run, pixels):
    out = os.path.join(run, "deploy.onnx")
    convkit(args, "export", run, "--out", out, "--with-preprocessing", "--softmax")
    files = []
    for i, (size, ext) in enumerate([(28, "png"), (56, "png"), (20, "png"), (28, "jpg"), (84, "jpg"), (45, "png")]):
        image = Image.fromarray(pixels[i, 0])
        if i % 2:  # a dark object on a light background, as a photo would be
            image = Image.fromarray(255 - pixels[i, 0])
        image = image.resize((size, size), Image.BILINEAR)
        path = os.path.join(tmp, f"item{i}.{ext}")
        image.save(path, quality=95) if ext == "jpg" else image.save(path)
        files.append(path)
    ours = convkit(args, "predict", "--checkpoint", os.path.join(run, "model.pt"), "--", *files).stdout.splitlines()
    r = subprocess.run([args.deploy, out, os.path.join(run, "model.json"), *files], capture_output=True, text=True)
    check("deploy_opencv exits 0", r.returncode == 0, r.stderr.strip())
    theirs = r.stdout.splitlines()
    for a, b in zip(ours, theirs):
        check(f"deploy_opencv line equals convkit predict's: {b}", a == b, f"convkit: {a}")
    check("deploy_opencv prints one line per image", len(theirs) == len(files) == len(ours))


def check_bad_input(args, tmp, run):
    def refused(what, cmd, needle, must_not_exist=None):
        r = convkit(args, *cmd, check_rc=False)
        lines = r.stderr.strip().splitlines()
        ok = r.returncode != 0 and len(lines) == 1 and needle in lines[0]
        if must_not_exist:
            ok = ok and not os.path.exists(must_not_exist) and not os.path.exists(must_not_exist + ".tmp")
        check(f"bad input: {what}", ok, r.stderr.strip())

    refused("missing checkpoint", ["export", "--checkpoint", os.path.join(tmp, "none.pt"), "--out", os.path.join(tmp, "x.onnx")],
            "none.pt", os.path.join(tmp, "x.onnx"))
    refused("output in a missing directory", ["export", run, "--out", os.path.join(tmp, "no", "dir", "x.onnx")], "x.onnx")
    refused("unknown format", ["export", run, "--format", "tflite"], "--format")
    refused("uint8 pixels without preprocessing", ["export", run, "--pixel-type", "uint8", "--out",
                                                   os.path.join(tmp, "y.onnx")], "--pixel-type", os.path.join(tmp, "y.onnx"))
    bad = os.path.join(tmp, "bad.pt")
    open(bad, "wb").write(b"PK\x03\x04 not really a zip")
    refused("corrupt checkpoint", ["export", "--checkpoint", bad, "--model", "lenet", "--out", os.path.join(tmp, "z.onnx")],
            "bad.pt", os.path.join(tmp, "z.onnx"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--convkit", required=True)
    p.add_argument("--deploy", default="")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    torch.set_num_threads(2)
    pixels = read_idx_images(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [check_network(args, tmp, name, pixels) for name in NETWORKS]
        if args.deploy:
            check_deploy_example(args, tmp, runs[0], pixels)
        else:
            print("skip deploy_opencv: not built (OpenCV's dnn module was not found by CMake)")
        check_bad_input(args, tmp, runs[0])
    if failures:
        sys.exit(f"{len(failures)} export checks failed: " + "; ".join(failures))
    print("all export checks passed")


if __name__ == "__main__":
    main()
