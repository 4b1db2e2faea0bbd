#!/usr/bin/env python3
"""Checkpoints move both ways between convkit and Python (python3-torch):

1. convkit trains; the tutorial's Python LeNet loads model.pt unchanged
   (`model.load_state_dict(torch.load(path))`) and evaluates the test set to the same
   accuracy and loss as `convkit eval`.
2. Python re-saves that model with `torch.save(model.state_dict(), path)` (an OrderedDict with
   `_metadata`) beside a copy of model.json, and with pickle protocols 4 and 5; convkit
   evaluates each to the same numbers.
3. The Python tutorial trains and saves its own checkpoint; `convkit eval --model` reads it and
   reports the tutorial's own test numbers.
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import torch
import torch.utils.data as data
import torchvision.datasets as datasets
import torchvision.transforms as transforms


def load_tutorial(path):
    spec = importlib.util.spec_from_file_location("tutorial", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def convkit_eval(convkit, checkpoint, extra=()):
    # --exact: LibTorch's kernels, so the numbers can be compared with Python's to the last bit.
    out = subprocess.run([convkit, "eval", "--json", "--exact", "--threads", "1", "--checkpoint", checkpoint, *extra],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def check(name, a, b, tol, failures):
    ok = abs(a - b) <= tol
    print(f"{'ok  ' if ok else 'FAIL'} {name:48} {a:.8f} vs {b:.8f}")
    if not ok:
        failures.append(name)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--convkit", required=True)
    p.add_argument("--tutorial", required=True)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    tutorial = load_tutorial(args.tutorial)
    torch.set_num_threads(1)
    failures = []

    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        subprocess.run([args.convkit, "train", "--epochs", "1", "--limit", "5000", "--threads", "2", "--quiet",
                        "--out", run], check=True, stdout=subprocess.DEVNULL)
        info = json.load(open(os.path.join(run, "model.json")))
        mean, std = info["normalization"]["mean"], info["normalization"]["std"]

        # 1. Python reads convkit's checkpoint with the tutorial's own code.
        model = tutorial.LeNet(10)
        model.load_state_dict(torch.load(os.path.join(run, "model.pt")))
        tutorial.stage_dataset(args.data, tmp)
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean=[mean], std=[std])])
        test_data = datasets.FashionMNIST(root=tmp, train=False, download=False, transform=tf)
        py_loss, py_acc = tutorial.evaluate(model, data.DataLoader(test_data, batch_size=64),
                                            torch.nn.CrossEntropyLoss(), torch.device("cpu"))
        ck = convkit_eval(args.convkit, os.path.join(run, "model.pt"))
        check("convkit model.pt in Python: test acc", py_acc, ck["test_acc"], 1e-9, failures)
        check("convkit model.pt in Python: test loss", py_loss, ck["test_loss"], 1e-5, failures)

        # 2. Python's own state_dict format, read back by convkit.
        resaved = os.path.join(tmp, "resaved", "model.pt")
        os.makedirs(os.path.dirname(resaved))
        torch.save(model.state_dict(), resaved)
        shutil.copyfile(os.path.join(run, "model.json"), os.path.join(tmp, "resaved", "model.json"))
        back = convkit_eval(args.convkit, resaved)
        check("Python-saved copy in convkit: test acc", back["test_acc"], ck["test_acc"], 0, failures)
        check("Python-saved copy in convkit: rotated acc", back["rotated_test_acc"], ck["rotated_test_acc"], 0, failures)
        # torch.save with newer pickle protocols (STACK_GLOBAL, FRAME, MEMOIZE), as torch.load reads them.
        for protocol in (4, 5):
            path = os.path.join(tmp, "resaved", f"protocol{protocol}.pt")
            torch.save(model.state_dict(), path, pickle_protocol=protocol)
            shutil.copyfile(os.path.join(run, "model.json"), path[:-len(".pt")] + ".json")
            got = convkit_eval(args.convkit, path)
            check(f"pickle protocol {protocol} in convkit: test acc", got["test_acc"], ck["test_acc"], 0, failures)
        # Tensors saved from a GPU (their storages tagged 'cuda:0'): torch.load(map_location='cpu')
        # reads them on a machine without one, and convkit loads them onto the CPU with a note.
        cuda_saved = os.path.join(tmp, "resaved", "cuda_saved.pt")
        real_location_tag = torch.serialization.location_tag
        torch.serialization.location_tag = lambda storage: "cuda:0"
        try:
            torch.save(model.state_dict(), cuda_saved)
        finally:
            torch.serialization.location_tag = real_location_tag
        check("cuda-saved archive in torch.load(map_location='cpu'): same keys",
              len(torch.load(cuda_saved, map_location="cpu")), len(model.state_dict()), 0, failures)
        shutil.copyfile(os.path.join(run, "model.json"), cuda_saved[:-len(".pt")] + ".json")
        r = subprocess.run([args.convkit, "eval", "--checkpoint", cuda_saved, "--json"], capture_output=True, text=True)
        noted = r.returncode == 0 and "tensors saved on cuda:0 were loaded onto the CPU" in r.stderr
        print(("ok   " if noted else "FAIL ") + "cuda-saved archive in convkit: loads with a note: " + r.stderr.strip())
        if not noted:
            failures.append("cuda-saved note")
        else:
            check("cuda-saved archive in convkit: test acc", json.loads(r.stdout)["test_acc"], ck["test_acc"], 0, failures)
        # The legacy format (before PyTorch 1.6, and _use_new_zipfile_serialization=False), as
        # torch.load still reads it; a truncated copy is an error naming the file.
        legacy = os.path.join(tmp, "resaved", "legacy.pt")
        torch.save(model.state_dict(), legacy, _use_new_zipfile_serialization=False)
        shutil.copyfile(os.path.join(run, "model.json"), legacy[:-len(".pt")] + ".json")
        got = convkit_eval(args.convkit, legacy)
        check("legacy-format file in convkit: test acc", got["test_acc"], ck["test_acc"], 0, failures)
        check("legacy-format file in convkit: test loss", got["test_loss"], ck["test_loss"], 0, failures)
        truncated = os.path.join(tmp, "resaved", "truncated.pt")
        with open(legacy, "rb") as f:
            whole = f.read()
        with open(truncated, "wb") as f:
            f.write(whole[:len(whole) - 100])
        r = subprocess.run([args.convkit, "eval", "--checkpoint", truncated, "--model", "lenet"], capture_output=True, text=True)
        told = r.returncode != 0 and "truncated.pt" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        print(("ok   " if told else "FAIL ") + "truncated legacy file refused by name: " + r.stderr.strip())
        if not told:
            failures.append("truncated legacy file")
        # The same archive re-packed with deflated records (as zip tools write it): torch.load reads
        # it, and so does convkit, within its bound on inflated bytes.
        deflated = os.path.join(tmp, "resaved", "deflated.pt")
        with zipfile.ZipFile(resaved) as zin, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                zout.writestr(item.filename, zin.read(item.filename))
        check("deflated archive in torch.load: same keys", len(torch.load(deflated)), len(model.state_dict()), 0, failures)
        shutil.copyfile(os.path.join(run, "model.json"), deflated[:-len(".pt")] + ".json")
        got = convkit_eval(args.convkit, deflated)
        check("deflated archive in convkit: test acc", got["test_acc"], ck["test_acc"], 0, failures)

        # 3. A checkpoint the Python tutorial trained and saved itself.
        py_ckpt = os.path.join(tmp, "tut1-model.pt")
        py_json = os.path.join(tmp, "tutorial.json")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
        subprocess.run([sys.executable, args.tutorial, "--epochs", "1", "--threads", "1", "--checkpoint", py_ckpt,
                        "--json", py_json, "--data", args.data], check=True, env=env, stdout=subprocess.DEVNULL)
        tut = json.load(open(py_json))
        ours = convkit_eval(args.convkit, py_ckpt, ["--model", "lenet", "--data", args.data])
        check("tutorial checkpoint in convkit: test acc", ours["test_acc"], tut["test_acc"], 1e-9, failures)
        check("tutorial checkpoint in convkit: test loss", ours["test_loss"], tut["test_loss"], 1e-5, failures)

    print("interop:", "PASS" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
