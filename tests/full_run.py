#!/usr/bin/env python3
"""The main job as a user runs it: `convkit train` with the tutorial's defaults on the real
FashionMNIST, checked against the tutorial's results measured under python3-torch on this
kind of machine (LeNet: test 89.3%, rotated 66.6%; within 1.0 point)."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

EXPECTED = {"test_acc": 0.893, "rotated_test_acc": 0.666}
TOLERANCE = 0.010


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--convkit", required=True)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        proc = subprocess.run([args.convkit, "train", "--out", out], capture_output=True, text=True)
        print(proc.stdout, proc.stderr)
        if proc.returncode != 0:
            print("FAIL: convkit train exited", proc.returncode)
            return 1
        failures = 0
        epochs = re.findall(r"^Epoch: (\d\d) \| Epoch Time: \d+m \d+s$", proc.stdout, re.M)
        if epochs != [f"{i:02}" for i in range(1, 11)]:
            print("FAIL: expected the tutorial's 10 epoch lines, got", epochs)
            failures += 1
        metrics = json.load(open(os.path.join(out, "metrics.json")))
        for key, want in EXPECTED.items():
            ok = abs(metrics[key] - want) <= TOLERANCE
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {key}: {metrics[key]:.4f} (tutorial {want:.3f} +- {TOLERANCE})")
        confusion = metrics["confusion_matrix"]
        total = sum(map(sum, confusion))
        diagonal = sum(confusion[i][i] for i in range(10))
        # test_acc averages 157 batch accuracies (the last batch has 16 images): within 0.005.
        if total != 10000 or abs(diagonal / total - metrics["test_acc"]) > 0.005:
            print(f"FAIL: confusion matrix (total {total}, accuracy {diagonal / total}) disagrees with test_acc")
            failures += 1
        for figure in metrics["figures"]:
            if not os.path.getsize(os.path.join(out, figure)):
                print("FAIL: empty figure", figure)
                failures += 1
        history = json.load(open(os.path.join(out, "history.json")))
        best = min(history, key=lambda r: r["valid_loss"])
        if best["epoch"] != metrics["best_epoch"]:
            print("FAIL: best_epoch is not the epoch with the lowest validation loss")
            failures += 1
        print("full run:", "PASS" if failures == 0 else f"{failures} failures")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
