#!/usr/bin/env python3
"""convkit against the Python tutorial, side by side, on this machine.

Runs build/convkit_bench (training epochs at 1 and 2 threads, evaluation throughput, single-image
predict latency, batch-size and width scaling), the Python tutorial under python3-torch for one
training epoch of LeNet and of the MLP at 2 threads (when python3-torch is installed), and a
default 10-epoch `convkit train` for its wall time, report overhead and peak memory. Prints a
table and writes bench/results.json (or --json PATH).

Every training-epoch figure, convkit's and Python's, is the fastest of --repeat runs (default 3),
each in a fresh process, taken in rounds over all configurations so that a slow spell of a
shared machine does not fall on one configuration only. The median step is recorded as well.

    python3 bench/run.py            # full run, about 7 minutes on 2 cores
    python3 bench/run.py --quick    # smoke run
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_PYTHON = "/usr/bin/python3"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def peak_rss_mb(cmd):
    """Runs cmd under GNU time and returns (stdout, peak resident set in MB)."""
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=True)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return proc.stdout, rss_kb / 1024


def python_epoch(model, threads, quick):
    if not os.path.exists(SYSTEM_PYTHON):
        return None
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import torch, torchvision"], capture_output=True)
    if probe.returncode != 0:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "py.json")
        args = [SYSTEM_PYTHON, os.path.join(ROOT, "tests", "fixtures", "tutorial.py"), "--model", model, "--epochs", "1",
                "--threads", str(threads), "--skip-test", "--json", out]
        if quick:
            args += ["--limit", "6000"]
        run(args)
        seconds = json.load(open(out))["history"][0]["train_seconds"]
        return seconds * (60000 / 6000) if quick else seconds


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--quick", action="store_true", help="smoke run: fewer steps, subsets, no full training")
    p.add_argument("--json", default=os.path.join(ROOT, "bench", "results.json"))
    p.add_argument("--repeat", type=int, default=3, help="runs of each training epoch; the fastest counts")
    args = p.parse_args()
    repeat = 1 if args.quick else max(1, args.repeat)

    binary = os.path.join(args.build, "convkit_bench")
    quick = ["--quick"] if args.quick else []
    bench = json.loads(run([binary] + quick).stdout)

    def epoch(model, threads, *flags):  # a fresh process per configuration, as `convkit train` runs
        return json.loads(run([binary, "--epoch", model, str(threads), *flags, *quick]).stdout)

    configs = [("lenet", 1), ("lenet", 2), ("mlp", 1), ("mlp", 2), ("lenet", 2, "--exact")]
    runs = {c: [] for c in configs}
    py_runs = {m: [] for m in ("lenet", "mlp")}
    for _ in range(repeat):
        for c in configs:
            runs[c].append(epoch(*c))
        for m in py_runs:
            py_runs[m].append(python_epoch(m, 2, args.quick))
    fastest = {c: min(r["seconds"] for r in runs[c]) for c in configs}
    bench["epoch_seconds"] = {m: {str(t): fastest[(m, t)] for t in (1, 2)} for m in ("lenet", "mlp")}
    bench["epoch_runs_seconds"] = {" ".join(map(str, c)): [r["seconds"] for r in runs[c]] for c in configs}
    if not args.quick:
        bench["median_step_ms"] = {" ".join(map(str, c)): min(r["median_step_ms"] for r in runs[c]) for c in configs}
    bench["exact_epoch_seconds"] = {"lenet": fastest[("lenet", 2, "--exact")]}
    py = {m: (min(r) if None not in r else None) for m, r in py_runs.items()}

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [os.path.join(args.build, "convkit"), "train", "--quiet", "--out", os.path.join(tmp, "run")]
        if args.quick:
            cmd += ["--limit", "3000", "--epochs", "2"]
        _, rss = peak_rss_mb(cmd)
        metrics = json.load(open(os.path.join(tmp, "run", "metrics.json")))

    result = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
        "quick": args.quick,
        "repeat": repeat,
        "convkit": bench,
        "python_epoch_seconds_2_threads": py,
        "python_epoch_runs_seconds": py_runs,
        "train_default": {"total_seconds": metrics["total_seconds"], "report_seconds": metrics.get("report_seconds"),
                          "peak_rss_mb": rss, "test_acc": metrics["test_acc"]},
    }
    ck = bench["epoch_seconds"]
    rows = [("LeNet training epoch, 2 threads (s)", ck["lenet"]["2"], py["lenet"]),
            ("MLP training epoch, 2 threads (s)", ck["mlp"]["2"], py["mlp"])]
    print(f"convkit benchmark, {result['date']}, {result['machine']}{' (quick)' if args.quick else ''}\n")
    print(f"| {'measure':44} | {'convkit':>10} | {'Python':>10} | {'speed-up':>8} |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 12}|{'-' * 10}|")
    for name, ours, theirs in rows:
        ratio = f"{theirs / ours:7.1f}x" if theirs else "     n/a"
        theirs_s = f"{theirs:10.2f}" if theirs else "       n/a"
        print(f"| {name:44} | {ours:10.2f} | {theirs_s} | {ratio} |")
    result["speedup"] = {m: (py[m] / ck[m]["2"] if py[m] else None) for m in ("lenet", "mlp")}
    print()
    print(f"LeNet epoch 1 thread {ck['lenet']['1']:.2f} s, 2 threads {ck['lenet']['2']:.2f} s "
          f"(x{ck['lenet']['1'] / ck['lenet']['2']:.2f}); MLP 1 thread {ck['mlp']['1']:.2f} s, 2 threads "
          f"{ck['mlp']['2']:.2f} s (x{ck['mlp']['1'] / ck['mlp']['2']:.2f})")
    if "median_step_ms" in bench:
        med = bench["median_step_ms"]
        print(f"median step: LeNet {med['lenet 1']:.2f} ms at 1 thread, {med['lenet 2']:.2f} ms at 2 "
              f"(x{med['lenet 1'] / med['lenet 2']:.2f}); MLP {med['mlp 1']:.2f} / {med['mlp 2']:.2f} ms "
              f"(x{med['mlp 1'] / med['mlp 2']:.2f})")
    print(f"(fastest of {repeat} runs per configuration)")
    exact = bench["exact_epoch_seconds"]["lenet"]
    print(f"LeNet epoch with --exact (LibTorch kernels), 2 threads: {exact:.2f} s"
          + (f" ({py['lenet'] / exact:.1f}x the Python tutorial)" if py["lenet"] else ""))
    for batch, ips in bench["eval_images_per_second"].items():
        print(f"evaluation, batch {batch:>4}: {ips:10.0f} images/s")
    print(f"single-image predict: {bench['predict_ms']:.3f} ms")
    print("batch size: " + ", ".join(f"{r['batch']}: {r['us_per_image']:.1f} us/img" for r in bench["batch_scaling"]))
    print("width: " + ", ".join(f"x{r['width']} ({r['parameters']} params): {r['ms_per_step']:.2f} ms/step"
                                for r in bench["width_scaling"]))
    t = result["train_default"]
    print(f"convkit train (defaults): {t['total_seconds']:.1f} s, of which report {t['report_seconds']:.1f} s; "
          f"peak RSS {t['peak_rss_mb']:.0f} MB; test acc {100 * t['test_acc']:.2f}%")
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
