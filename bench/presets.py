#!/usr/bin/env python3
"""The competition presets as a user runs them: `convkit train --preset NAME --seed S` on the whole
FashionMNIST, timed from the outside (wall time of the whole command: loading, training, test with
its test-time augmentation; `--no-report`, as the report is not part of the race), with the test and
rotated-test accuracies and the peak RSS. With --peer, bench/competition_peer.py runs the same
recipe (network, optimiser, schedule, augmentation, weight average, test-time views) in plain
PyTorch for --peer-epochs, and the per-epoch training times are compared. Writes bench/presets.json
(the presets not run keep their earlier entries).

    python3 bench/presets.py --presets fast --seeds 1234 1 2
    python3 bench/presets.py --presets competition --seeds 1234 --peer --peer-epochs 2
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Debian's python3-torch lives with the system interpreter.
PEER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def run_preset(convkit, preset, seed, out, extra):
    cmd = ["/usr/bin/time", "-f", "%M", convkit, "train", "--preset", preset, "--seed", str(seed), "--out", out,
           "--no-report", "--quiet"] + extra
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"presets.py: {' '.join(cmd)} failed: {done.stderr.strip()}")
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    with open(os.path.join(out, "history.json")) as f:
        history = json.load(f)
    return {"preset": preset, "seed": seed, "test_acc": m["test_acc"], "rotated_test_acc": m["rotated_test_acc"],
            "wall_seconds": wall, "epochs": m["epochs_run"],
            "median_epoch_train_seconds": statistics.median(e["train_seconds"] for e in history),
            "peak_rss_mb": int(done.stderr.strip().splitlines()[-1]) / 1024}


def peer_run(settings, epochs, out):
    """bench/competition_peer.py with the run's recipe, for `epochs` epochs."""
    cmd = [PEER_PYTHON, os.path.join(ROOT, "bench", "competition_peer.py"), "--model", settings["model"],
           "--epochs", str(epochs), "--batch-size", str(settings["batch_size"]), "--lr", str(settings["lr"]),
           "--optimizer", "sgd" if settings["optimizer"].startswith("sgd") else settings["optimizer"],
           "--weight-decay", str(settings["weight_decay"]), "--schedule", settings["schedule"],
           "--warmup", str(settings["warmup"]), "--label-smoothing", str(settings["label_smoothing"]),
           "--aug-translate", str(settings["aug_translate"]), "--seed", str(settings["seed"]),
           "--threads", str(settings["threads"]), "--tta", settings["tta"], "--json", out]
    cmd += ["--aug-hflip"] if settings["aug_hflip"] else ["--no-aug-hflip"]
    if settings["ema"] > 0:
        cmd += ["--ema", str(settings["ema"])]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"presets.py: the peer failed: {done.stderr.strip()}")
    with open(out) as f:
        return json.load(f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--presets", nargs="+", default=["fast", "competition", "rotation"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1234, 1, 2])
    p.add_argument("--peer", action="store_true", help="also time bench/competition_peer.py on each preset's recipe")
    p.add_argument("--peer-epochs", type=int, default=2)
    p.add_argument("--json", default=os.path.join(ROOT, "bench", "presets.json"))
    args = p.parse_args()
    convkit = os.path.join(args.build, "convkit")
    runs, peers = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            for seed in args.seeds:
                out = os.path.join(tmp, f"{preset}-{seed}")
                runs.append(run_preset(convkit, preset, seed, out, []))
                print(json.dumps(runs[-1]), flush=True)
            if args.peer:
                with open(os.path.join(tmp, f"{preset}-{args.seeds[0]}", "run.json")) as f:
                    settings = json.load(f)
                peer = peer_run(settings, args.peer_epochs, os.path.join(tmp, f"peer-{preset}.json"))
                convkit_epoch = next(r for r in runs if r["preset"] == preset)["median_epoch_train_seconds"]
                peers.append({"preset": preset, "peer_median_epoch_seconds": peer["median_epoch_seconds"],
                              "convkit_median_epoch_seconds": convkit_epoch,
                              "speedup": peer["median_epoch_seconds"] / convkit_epoch})
                print(json.dumps(peers[-1]), flush=True)
    today = datetime.date.today().isoformat()
    summary = {}
    for preset in args.presets:
        rows = [r for r in runs if r["preset"] == preset]
        summary[preset] = {k: {"mean": statistics.mean(r[k] for r in rows), "min": min(r[k] for r in rows),
                               "max": max(r[k] for r in rows)}
                           for k in ("test_acc", "rotated_test_acc", "wall_seconds")}
        summary[preset]["date"] = today
    # The presets not run this time keep their earlier results.
    earlier = {}
    if os.path.exists(args.json):
        with open(args.json) as f:
            earlier = json.load(f)
    kept = lambda rows: [r for r in rows if r["preset"] not in args.presets]
    for preset, s in earlier.get("summary", {}).items():
        if preset not in args.presets:
            summary[preset] = dict(s, date=s.get("date", earlier.get("date")))
    result = {"date": today, "machine": platform.processor() or platform.machine(),
              "runs": kept(earlier.get("runs", [])) + runs, "summary": summary,
              "peer": (kept(earlier.get("peer", [])) + peers) if args.peer else earlier.get("peer", [])}
    with open(args.json + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(args.json + ".tmp", args.json)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
