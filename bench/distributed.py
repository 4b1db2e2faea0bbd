#!/usr/bin/env python3
"""Data-parallel training against one process on this machine: `convkit train` on the whole
FashionMNIST, LeNet, the same global batch, as 1 process x T threads and as N processes x T/N
threads (--nproc N --threads T). Reports each configuration's training time per epoch (the fastest
epoch after the first of each run, fastest of --repeat runs in rounds), the ratio, and the time a
gradient allreduce takes (metrics.json's "distributed"). Writes bench/distributed.json (or --json).

    python3 bench/distributed.py                 # 2 processes x 1 thread against 1 x 2, LeNet
    python3 bench/distributed.py --model c32k3p1bn-mp2-c64k3p1bn-mp2-fc256 --epochs 2
    python3 bench/distributed.py --dist-wait sleep   # the ranks sleep while they wait, whatever the cores
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train(convkit, out, model, epochs, threads, nproc, wait):
    cmd = [convkit, "train", "--out", out, "--model", model, "--epochs", str(epochs), "--threads", str(threads),
           "--no-report", "--quiet"]
    if nproc > 1:
        cmd += ["--nproc", str(nproc), "--dist-wait", wait]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    with open(os.path.join(out, "history.json")) as f:
        history = json.load(f)
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    return min(e["train_seconds"] for e in history[1:] or history), metrics


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--model", default="lenet")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--dist-wait", default="auto", choices=["auto", "poll", "sleep"])
    p.add_argument("--json", default=os.path.join(ROOT, "bench", "distributed.json"))
    args = p.parse_args()
    convkit = os.path.join(args.build, "convkit")
    best = {1: float("inf"), args.nproc: float("inf")}
    distributed = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for nproc in best:
                seconds, metrics = train(convkit, os.path.join(tmp, f"{nproc}-{r}"), args.model, args.epochs,
                                         args.threads, nproc, args.dist_wait)
                best[nproc] = min(best[nproc], seconds)
                if nproc > 1:
                    distributed = metrics["distributed"]
                    steps = metrics["epochs_run"] * -(-metrics["examples"]["train"] // metrics["batch_size"])
    one, many = best[1], best[args.nproc]
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "model": args.model,
        "threads": args.threads,
        "one_process_epoch_seconds": one,
        "processes": args.nproc,
        "processes_epoch_seconds": many,
        "speed_ratio": one / many,
        "allreduce_seconds_per_call": distributed.get("allreduce_seconds_per_call"),
        "allreduce_seconds_per_step": distributed.get("allreduce_seconds", 0) / max(1, steps),
        "steps": steps,
        "gradient_wait": distributed.get("gradient_wait"),
    }
    print(f"{args.model}: 1 process x {args.threads} threads {one:.2f} s/epoch | {args.nproc} processes x "
          f"{max(1, args.threads // args.nproc)} thread(s) {many:.2f} s/epoch ({result['gradient_wait']}) "
          f"| speed {one / many:.2f}x of one process | allreduce {result['allreduce_seconds_per_call'] * 1e6:.0f} us a call, "
          f"{result['allreduce_seconds_per_step'] * 1e3:.2f} ms a step")
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
