#!/usr/bin/env python3
"""Data-parallel training on real processes and sockets (c10d's TCPStore and Gloo), on the real
FashionMNIST, one case per run of this script:

  exactness   2 and 3 ranks (--nproc) against 1 process with as many threads, LeNet and MLP, 2 epochs
              of a --limit subset (3 ranks get an uneven last batch): every number and every weight
              within 1e-5. One process shards each batch over its threads exactly as the ranks
              share it, so only the order of the ranks' sum in Gloo's ring differs. --dist-wait poll
              and sleep give the same bytes as auto, and auto's choice follows the cores.
  torchrun    the same run under `python3 -m torch.distributed.run --no_python` (its agent's store,
              and --standalone, where rank 0 hosts the store) gives --nproc's numbers.
  two_hosts   two network namespaces joined by a veth pair, one torchrun node in each (--nnodes 2),
              addresses on that link only; exit 77 (skipped, with the reason) where namespaces
              cannot be made.
  faults      a worker killed (-9), rank 0 killed, the port in use, a rank that never arrives,
              WORLD_SIZE disagreeing, one RANK claimed twice, settings that differ, Ctrl-C on the
              launcher: each exits non-zero with its message within its bound, leaving no process.
  resume      a run whose worker is killed, resumed with --resume, ends with the numbers of an
              uninterrupted run; so does one under torchrun --max_restarts 1, whose restarted
              attempt continues the run by itself (and leaves a complete run as it is).
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SYSTEM_PYTHON = "/usr/bin/python3"
TOLERANCE = 1e-5
KEYS = ["train_loss", "train_acc", "valid_loss", "valid_acc"]
BASE = ["--limit", "1000", "--epochs", "2", "--no-report", "--quiet"]

failures = []


def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, env=None, timeout=600):
    start = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    p.seconds = time.monotonic() - start
    return p


def results(out):
    with open(os.path.join(out, "history.json")) as f:
        history = json.load(f)
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    return history, metrics


def weights(out):
    import torch
    return torch.load(os.path.join(out, "model.pt"))


def largest_difference(a_out, b_out):
    (ha, ma), (hb, mb) = results(a_out), results(b_out)
    d = 0.0
    if len(ha) != len(hb):
        return float("inf")
    for ea, eb in zip(ha, hb):
        d = max(d, *(abs(ea[k] - eb[k]) for k in KEYS))
    for k in ["test_loss", "test_acc", "rotated_test_loss", "rotated_test_acc"]:
        d = max(d, abs(ma[k] - mb[k]))
    wa, wb = weights(a_out), weights(b_out)
    for k in wa:
        d = max(d, float((wa[k] - wb[k]).abs().max()))
    return d


def train(convkit, out, *extra, env=None):
    p = run([convkit, "train", "--out", out, *BASE, *extra], env=env)
    if p.returncode != 0:
        print(p.stdout, p.stderr)
    return p


def case_exactness(convkit, tmp):
    for model in ["lenet", "mlp"]:
        for ranks in [2, 3]:
            one = os.path.join(tmp, f"{model}-1x{ranks}")
            many = os.path.join(tmp, f"{model}-{ranks}x1")
            p1 = train(convkit, one, "--model", model, "--threads", str(ranks))
            pn = train(convkit, many, "--model", model, "--threads", str(ranks), "--nproc", str(ranks))
            if not check(p1.returncode == 0 and pn.returncode == 0, f"{model}: 1 process and {ranks} ranks ran"):
                continue
            d = largest_difference(one, many)
            check(d <= TOLERANCE, f"{model}, {ranks} ranks vs 1 process x {ranks} threads: largest difference "
                                  f"{d:.3g} (losses, accuracies, test, every weight) <= {TOLERANCE}")
            check(pn.stdout.count("Epoch: 01") == 1, f"{model}, {ranks} ranks: one set of epoch lines")
            _, metrics = results(many)
            with open(os.path.join(many, "run.json")) as f:
                settings = json.load(f)
            check(settings.get("world_size") == ranks and metrics["distributed"]["world_size"] == ranks,
                  f"{model}, {ranks} ranks: run.json and metrics.json record world_size {ranks}")
            if model == "lenet" and ranks == 2:
                report = run([convkit, "report", many])
                with open(os.path.join(many, "report.html")) as f:
                    html = f.read()
                check(report.returncode == 0 and "<td>world_size</td><td>2</td>" in html and "2 processes (gloo)" in html,
                      "the report records the world size and the allreduce time")
            check(metrics["distributed"]["allreduce_calls"] > 0, f"{model}, {ranks} ranks: allreduce time recorded "
                  f"({metrics['distributed']['allreduce_seconds_per_call'] * 1e6:.0f} us a call)")
            polls = ranks <= len(os.sched_getaffinity(0))  # one thread per rank: a core each?
            check(metrics["distributed"]["gradient_wait"] == ("poll" if polls else "sleep") and
                  f"gradient wait: {metrics['distributed']['gradient_wait']}" in pn.stdout,
                  f"{model}, {ranks} ranks on {len(os.sched_getaffinity(0))} cores: --dist-wait auto "
                  f"{'polls' if polls else 'sleeps'}, and says so")
            if model == "lenet" and ranks == 2:
                for wait in ["poll", "sleep"]:
                    out = os.path.join(tmp, f"{model}-{ranks}x1-{wait}")
                    pw = train(convkit, out, "--model", model, "--threads", str(ranks), "--nproc", str(ranks),
                               "--dist-wait", wait)
                    if check(pw.returncode == 0 and f"gradient wait: {wait}" in pw.stdout,
                             f"--dist-wait {wait} ran and says so"):
                        d = largest_difference(many, out)
                        check(d == 0, f"--dist-wait {wait} changes no number and no weight (difference {d:.3g})")


def torchrun(nproc, *args):
    # Debian 12's torch 1.13 on Python 3.11 cannot parse its own default "0" for --redirects and --tee
    # (IntFlag no longer iterates over NONE): a mapping for a local rank that does not exist means "none".
    return [SYSTEM_PYTHON, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--redirects", "9:0",
            "--tee", "9:0", *args, "--no_python"]


def case_torchrun(convkit, tmp):
    reference = os.path.join(tmp, "nproc")
    check(train(convkit, reference, "--threads", "2", "--nproc", "2").returncode == 0, "--nproc 2 ran")
    for name, launcher in [("static rendezvous, agent's store",
                            ["--nnodes", "1", "--master_addr", "127.0.0.1", "--master_port", str(free_port())]),
                           ("--standalone, rank 0's store", ["--standalone", "--nnodes", "1"])]:
        out = os.path.join(tmp, name.split()[0].strip("-,"))
        p = run(torchrun(2, *launcher) + [convkit, "train", "--out", out, *BASE, "--threads", "2"])
        if not check(p.returncode == 0, f"torchrun ({name}) ran"):
            print(p.stdout, p.stderr)
            continue
        d = largest_difference(reference, out)
        check(d == 0.0, f"torchrun ({name}) gives --nproc 2's numbers: largest difference {d:.3g}")
        check(p.stdout.count("Epoch: 02") == 1, f"torchrun ({name}): only rank 0 prints")


def sh(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True)


def case_two_hosts(convkit, tmp):
    names, link = ["convkit_h0", "convkit_h1"], ["ck_veth0", "ck_veth1"]
    addrs = ["10.213.7.1", "10.213.7.2"]
    made = sh("ip", "netns", "add", names[0])
    if made.returncode != 0:
        print(f"SKIP two_hosts: cannot create a network namespace here ({made.stderr.strip() or 'ip netns add failed'})")
        return 77
    try:
        sh("ip", "netns", "add", names[1])
        steps = [["ip", "link", "add", link[0], "type", "veth", "peer", "name", link[1]]]
        for i in range(2):
            steps += [["ip", "link", "set", link[i], "netns", names[i]],
                      ["ip", "-n", names[i], "addr", "add", addrs[i] + "/24", "dev", link[i]],
                      ["ip", "-n", names[i], "link", "set", link[i], "up"],
                      ["ip", "-n", names[i], "link", "set", "lo", "up"]]
        for step in steps:
            r = sh(*step)
            if r.returncode != 0:
                print(f"SKIP two_hosts: `{' '.join(step)}` failed ({r.stderr.strip()})")
                return 77
        # One thread on each host, as --nproc 2 --threads 2 gives each of its workers.
        reference = os.path.join(tmp, "nproc")
        check(train(convkit, reference, "--threads", "2", "--nproc", "2").returncode == 0, "--nproc 2 ran")
        port = "29533"
        procs, outs = [], []
        for node in range(2):
            out = os.path.join(tmp, f"host{node}")
            outs.append(out)
            env = dict(os.environ, GLOO_SOCKET_IFNAME=link[node])
            cmd = ["ip", "netns", "exec", names[node]] + torchrun(
                1, "--nnodes", "2", "--node_rank", str(node), "--master_addr", addrs[0], "--master_port", port) + [
                convkit, "train", "--out", out, *BASE, "--threads", "1", "--dist-timeout", "30"]
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        texts = [p.communicate(timeout=600) for p in procs]
        ok = all(p.returncode == 0 for p in procs)
        if not check(ok, "two hosts (network namespaces, veth, torchrun --nnodes 2) ran"):
            for out, err in texts:
                print(out, err)
            return 0
        d = largest_difference(reference, outs[0])
        check(d == 0.0, f"two hosts give --nproc 2's numbers: largest difference {d:.3g}")
        check(not os.path.exists(outs[1]), "rank 1's host wrote nothing (no run directory)")
        return 0
    finally:
        for n in names:
            sh("ip", "netns", "del", n)


def worker_pids(launcher_pid):
    out = sh("ps", "-o", "pid=", "--ppid", str(launcher_pid)).stdout.split()
    pids = {}
    for pid in map(int, out):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(e.split(b"=", 1) for e in f.read().split(b"\0") if b"=" in e)
            pids[int(env[b"RANK"])] = pid
        except (OSError, KeyError, ValueError):
            pass
    return pids


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def start_long_run(convkit, out, extra=()):
    cmd = [convkit, "train", "--out", out, "--limit", "20000", "--epochs", "4", "--no-report", "--quiet",
           "--threads", "2", "--nproc", "2", "--dist-timeout", "10", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_epoch(out, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with open(os.path.join(out, "history.json")) as f:
                if len(json.load(f)) >= 1:
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return False


def killed_run(convkit, out, rank, sig=signal.SIGKILL):
    """Starts a 2-rank run, kills `rank` after the first epoch; returns (exit code, stderr, seconds, pids)."""
    proc = start_long_run(convkit, out)
    if not wait_for_epoch(out, proc):
        proc.kill()
        return None
    pids = worker_pids(proc.pid)
    target = proc.pid if rank == "launcher" else pids.get(rank)
    killed_at = time.monotonic()
    os.kill(target, sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return None
    return proc.returncode, err, time.monotonic() - killed_at, pids


def loadable(out):
    import torch
    try:
        torch.load(os.path.join(out, "model.pt"))
        return True
    except Exception as e:  # noqa: BLE001
        print("model.pt:", e)
        return False


def case_faults(convkit, tmp):
    # A worker killed with -9, then the store's host (rank 0).
    for rank, lost_text in [(1, "rank 1 (pid"), (0, "rank 0 was lost")]:
        out = os.path.join(tmp, f"kill{rank}")
        r = killed_run(convkit, out, rank)
        if not check(r is not None, f"kill -9 rank {rank}: the run ended"):
            continue
        code, err, seconds, pids = r
        print(err.strip())
        check(code != 0, f"kill -9 rank {rank}: the launcher exits non-zero ({code})")
        check(f"rank {rank} was killed by SIGKILL" in err, f"kill -9 rank {rank}: the launcher names it")
        check(lost_text in err, f"kill -9 rank {rank}: the other rank says '{lost_text}...'")
        check(seconds < 10 + 5 + 10, f"kill -9 rank {rank}: everything ended {seconds:.1f} s later (bound: 25 s)")
        check(not any(alive(p) for p in pids.values()), f"kill -9 rank {rank}: no worker left")
        check(loadable(out), f"kill -9 rank {rank}: model.pt loads in PyTorch")

    def env_for(rank, world, port, **more):
        return dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=str(port), **more)

    def listening(port, within=20):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return True
            time.sleep(0.05)
        return False

    def ranks(envs, extras=None, store_first=False):
        """Starts one process per environment; with store_first, the first (rank 0) alone until its
        store listens, then the others together, so that they all reach it on their first try."""
        procs = []
        for i, env in enumerate(envs):
            out = os.path.join(tmp, f"rank{i}-{len(envs)}-{env['MASTER_PORT']}")
            cmd = [convkit, "train", "--out", out, *BASE, "--threads", "1", "--dist-timeout", "5",
                   *(extras[i] if extras else [])]
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            if store_first and i == 0 and not listening(int(env["MASTER_PORT"])):
                print("rank 0's store did not listen within 20 s; starting the others anyway")
        start = time.monotonic()
        outs = [p.communicate(timeout=60) for p in procs]
        return [p.returncode for p in procs], [e for _, e in outs], time.monotonic() - start

    # The port in use.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        codes, errs, seconds = ranks([env_for(0, 2, port)])
    print(errs[0].strip())
    check(codes[0] != 0 and "port is in use" in errs[0] and seconds < 15,
          f"port in use: exit {codes[0]}, 'port is in use', {seconds:.1f} s")

    # A rank that never arrives.
    codes, errs, seconds = ranks([env_for(0, 2, free_port())])
    print(errs[0].strip())
    check(codes[0] != 0 and "rank 1 of WORLD_SIZE 2 never arrived within 5 s" in errs[0] and seconds < 15,
          f"a rank never arrives: exit {codes[0]}, names rank 1, {seconds:.1f} s")

    # WORLD_SIZE disagrees.
    port = free_port()
    codes, errs, seconds = ranks([env_for(0, 2, port), env_for(1, 3, port)])
    print("\n".join(e.strip() for e in errs))
    check(all(c != 0 for c in codes) and all("WORLD_SIZE differs" in e for e in errs) and seconds < 15,
          f"WORLD_SIZE disagrees: exits {codes}, both say 'WORLD_SIZE differs', {seconds:.1f} s")

    # One RANK claimed by two processes, started together once rank 0's store listens (c10d's clients
    # retry once a second: started before it, one could find the store only after the other had
    # already formed the group with rank 0 and finished).
    port = free_port()
    codes, errs, seconds = ranks([env_for(0, 2, port), env_for(1, 2, port), env_for(1, 2, port)], store_first=True)
    print("\n".join(e.strip() for e in errs))
    check(all(c != 0 for c in codes) and all("claimed by two processes" in e for e in errs) and seconds < 20,
          f"RANK claimed twice: exits {codes}, every process names it, {seconds:.1f} s")

    # Settings that differ between the ranks.
    port = free_port()
    codes, errs, seconds = ranks([env_for(0, 2, port), env_for(1, 2, port)], extras=[["--lr", "0.001"], ["--lr", "0.002"]])
    print("\n".join(e.strip() for e in errs))
    check(all(c != 0 for c in codes) and all("'lr' is 0.001 on rank 0 and 0.002 on rank 1" in e for e in errs)
          and seconds < 20, f"different --lr: exits {codes}, every rank names the setting, {seconds:.1f} s")

    # Ctrl-C on the launcher.
    out = os.path.join(tmp, "sigint")
    r = killed_run(convkit, out, "launcher", signal.SIGINT)
    if check(r is not None, "SIGINT to the launcher: the run ended"):
        code, err, seconds, pids = r
        print(err.strip())
        check(code == 130, f"SIGINT: the launcher exits 130 ({code})")
        check("interrupted by SIGINT" in err and seconds < 15, f"SIGINT: says so, ends {seconds:.1f} s later")
        check(not any(alive(p) for p in pids.values()), "SIGINT: no worker left")
        resumed = run([convkit, "train", "--nproc", "2", "--resume", out, "--quiet"])
        check(resumed.returncode == 0 and "Resuming after epoch" in resumed.stdout,
              "SIGINT: --nproc 2 --resume continues the run")


def restarted_run(convkit, out, nproc):
    """torchrun --max_restarts 1 with `nproc` workers; the highest rank is killed (-9) after the
    first epoch. True when the restarted attempt continued the run to its end and said so."""
    launcher = ["--nnodes", "1", "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "--max_restarts", "1",
                "--monitor_interval", "1"]
    proc = subprocess.Popen(torchrun(nproc, *launcher) + [convkit, "train", "--out", out, "--limit", "20000", "--epochs",
                            "4", "--no-report", "--quiet", "--threads", "2", "--dist-timeout", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        if not check(wait_for_epoch(out, proc), f"torchrun --max_restarts 1, {nproc} worker(s): the first attempt "
                     "completed an epoch"):
            return False
        os.kill(worker_pids(proc.pid)[nproc - 1], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its workers, whatever happened above
        except ProcessLookupError:
            pass
    continued = f"Restart 1 (TORCHELASTIC_RESTART_COUNT): continuing the run in {out}" in stdout
    if not check(proc.returncode == 0 and continued and "Resuming after epoch" in stdout and
                 stdout.count("Epoch: 01") == 1, f"torchrun --max_restarts 1, {nproc} worker(s), rank {nproc - 1} "
                 "killed (-9) after an epoch: the restarted attempt continues the run from its last epoch, and says so"):
        print(stdout[-2000:], stderr[-2000:])
        return False
    return True


def case_resume(convkit, tmp):
    whole = os.path.join(tmp, "whole")
    p = start_long_run(convkit, whole)
    _, err = p.communicate(timeout=600)
    if not check(p.returncode == 0, "uninterrupted 2-rank run"):
        print(err)
        return
    cut = os.path.join(tmp, "cut")
    r = killed_run(convkit, cut, 1)
    if not check(r is not None and r[0] != 0, "a 2-rank run killed (-9) after its first epoch"):
        return
    with open(os.path.join(cut, "history.json")) as f:
        done = len(json.load(f))
    resumed = run([convkit, "train", "--nproc", "2", "--resume", cut, "--quiet"])
    print(resumed.stdout[-600:], resumed.stderr)
    check(resumed.returncode == 0 and f"Resuming after epoch {done} of 4" in resumed.stdout,
          f"--resume continues after epoch {done}")
    d = largest_difference(whole, cut)
    check(d == 0.0, f"resumed run ends with the uninterrupted run's numbers: largest difference {d:.3g}")

    # torchrun --max_restarts: the restarted attempt continues the run instead of starting again,
    # with 2 workers and with 1 (WORLD_SIZE 1: no group, the same rule).
    # One process with 2 threads is its own reference: over 1,100 steps Adam carries the last-ulp
    # differences from 2 ranks far past the exactness test's bound.
    whole_one = os.path.join(tmp, "whole1")
    if not check(run([convkit, "train", "--out", whole_one, "--limit", "20000", "--epochs", "4", "--no-report", "--quiet",
                      "--threads", "2"]).returncode == 0, "uninterrupted 1-process run"):
        return
    for nproc, reference in [(2, whole), (1, whole_one)]:
        elastic = os.path.join(tmp, f"elastic{nproc}")
        if not restarted_run(convkit, elastic, nproc):
            return
        d = largest_difference(reference, elastic)
        check(d == 0.0, f"{nproc} worker(s): the restarted attempt ends with the uninterrupted run's numbers: "
              f"largest difference {d:.3g}")
    # A restart after the run finished (a rank failed on its way out) leaves the run as it is.
    elastic = os.path.join(tmp, "elastic2")
    metrics_file = os.path.join(elastic, "metrics.json")
    written = os.stat(metrics_file).st_mtime_ns
    port = free_port()
    procs = [subprocess.Popen([convkit, "train", "--out", elastic, "--limit", "20000", "--epochs", "4", "--no-report",
                               "--quiet", "--threads", "2", "--dist-timeout", "10"],
                              env=dict(os.environ, RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                                       MASTER_PORT=str(port), TORCHELASTIC_RESTART_COUNT="1"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    if not check(all(p.returncode == 0 for p in procs) and "is finished; nothing is left to do" in outs[0][0] and
                 os.stat(metrics_file).st_mtime_ns == written,
                 "a restarted attempt that finds the run finished exits 0, says so and rewrites nothing"):
        print(outs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--convkit", required=True)
    p.add_argument("--case", required=True, choices=["exactness", "torchrun", "two_hosts", "faults", "resume"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        code = globals()["case_" + args.case](os.path.abspath(args.convkit), tmp)
    if code == 77:
        return 77
    print(f"{len(failures)} failure(s)" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
