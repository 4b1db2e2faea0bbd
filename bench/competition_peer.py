#!/usr/bin/python3
"""The competition recipe in plain PyTorch, written the way a skilled user would write it.

The same network spec, optimiser, schedule, label smoothing and augmentation as
`convkit train --preset competition`, on the same data (FashionMNIST's IDX files, normalised by
the training images' mean/std, a seeded 90/10 train/validation split, the 10,000 test images).
The images are held as one normalised tensor in memory and batches are gathered by index: no
DataLoader, no per-image Python. Each epoch prints its training seconds (the training pass only),
the validation loss/accuracy and the test accuracy, so that the time to a target accuracy can be
read off; --json writes the same as a file.

Beyond the preset, as convkit's flags of the same names: --warmup (a linear warm-up multiplied
onto the schedule), --ema (an exponential moving average of the weights, evaluated as its own
model) and --tta (test-time augmentation: the softmax averaged over mirrored and 1-pixel shifted
copies).

--flops prints the arithmetic of the spec instead of training: multiply-adds per image of every
convolution and dense layer, and the FLOP/s that the convolutions alone reach (forward+backward at
batch 128) against the machine's peak.

The script re-executes itself once with GLIBC_TUNABLES set to a heap policy (blocks up to 32 MiB
from the heap, trimmed only beyond 256 MiB): with glibc's default mmap threshold every large
activation is a fresh mapping whose pages fault in and are zeroed on every step. convkit applies
the same policy with mallopt. Run with GLIBC_TUNABLES set (even empty) to keep your own.

    /usr/bin/python3 bench/competition_peer.py                          # the competition preset
    /usr/bin/python3 bench/competition_peer.py --ema 0.999 --tta flip,shift --json peer.json
    /usr/bin/python3 bench/competition_peer.py --limit 3000 --epochs 2 --threads 1   # smoke run
    /usr/bin/python3 bench/competition_peer.py --flops --threads 1
"""
import os
import sys

MALLOC_POLICY = ("glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456:"
                 "glibc.malloc.top_pad=67108864")


def reexec_with_malloc_policy():
    """glibc reads its tunables once, at process start: set them and start again."""
    if "GLIBC_TUNABLES" in os.environ:
        return
    os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, GLIBC_TUNABLES=MALLOC_POLICY))


if __name__ == "__main__":
    reexec_with_malloc_policy()  # before torch is imported, so that its import is not paid twice

import argparse  # noqa: E402  (after the re-execution on purpose)
import copy  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import namedtuple  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"
DEFAULT_MODEL = "c32k3p1bn-mp2-c64k3p1bn-mp2-dr0.2-fc256bn-dr0.3"
NUM_CLASSES = 10
TRAIN_FRACTION = 0.9
EVAL_BATCH = 1000
ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "gelu": nn.GELU, "tanh": nn.Tanh,
               "elu": lambda: nn.ELU(alpha=1.0), "silu": nn.SiLU, "lrelu": lambda: nn.LeakyReLU(0.01)}


class PeerError(Exception):
    """A problem with the user's input: reported as one line, exit status 1."""


# ---------------------------------------------------------------------------------------------
# Data

def read_idx(directory, name):
    """One IDX file (raw or .gz) as a numpy array of its declared shape."""
    for path, opener in ((os.path.join(directory, name), open), (os.path.join(directory, name + ".gz"), gzip.open)):
        if os.path.exists(path):
            with opener(path, "rb") as f:
                raw = f.read()
            break
    else:
        raise PeerError(f"{directory}: no {name} or {name}.gz (FashionMNIST's IDX files)")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise PeerError(f"{path}: not an IDX file of unsigned bytes")
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != math.prod(shape):
        raise PeerError(f"{path}: {body.size} bytes of data for the shape {shape}")
    return body.reshape(shape)


def load_split(directory, prefix, limit):
    """Images as uint8 [N,1,H,W] and labels as int64 [N], the first `limit` when limit > 0."""
    images = read_idx(directory, f"{prefix}-images-idx3-ubyte")
    labels = read_idx(directory, f"{prefix}-labels-idx1-ubyte")
    if len(images) != len(labels):
        raise PeerError(f"{directory}: {len(images)} {prefix} images but {len(labels)} labels")
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


class Data(namedtuple("Data", "train_x train_y valid_x valid_y test_x test_y mean std background")):
    """Normalised float images, already split; `background` is black after normalisation."""


def load_data(directory, limit):
    if not os.path.isdir(directory):
        raise PeerError(f"{directory}: no such data directory")
    train_pixels, train_labels = load_split(directory, "train", limit)
    test_pixels, test_labels = load_split(directory, "t10k", limit)
    # The tutorial's normalisation, as convkit computes it: one mean/std over the training images.
    mean = (train_pixels.float().mean() / 255).item()
    std = (train_pixels.float().std() / 255).item()

    def normalise(pixels):
        return pixels.float().div_(255).sub_(mean).div_(std)

    inputs = normalise(train_pixels)
    n = len(inputs)
    n_train = int(n * TRAIN_FRACTION)
    if n_train == 0 or n_train == n:
        raise PeerError(f"{directory}: {n} training images are too few to split 90/10")
    perm = torch.randperm(n)  # drawn right after the seed, as convkit and the tutorial draw it
    train_idx, valid_idx = perm[:n_train], perm[n_train:]
    return Data(inputs[train_idx], train_labels[train_idx], inputs[valid_idx], train_labels[valid_idx],
                normalise(test_pixels), test_labels, mean, std, (0 - mean) / std)


# ---------------------------------------------------------------------------------------------
# The network spec

Layer = namedtuple("Layer", "kind out kernel stride padding bn p activation in_shape out_shape")

SPEC_TOKENS = [
    ("whiten", re.compile(r"pw(\d+)")),
    ("conv", re.compile(r"c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?(bn)?")),
    ("pool", re.compile(r"(mp|ap)(\d+)")),
    ("dropout", re.compile(r"dr(0?\.\d+|0)")),
    ("dense", re.compile(r"fc(\d+)(bn)?")),
]


def parse_spec(spec, input_shape=(1, 28, 28)):
    """convkit's spec string as a list of Layers, each with the (C,H,W) or (features,) it sees."""
    if not spec:
        raise PeerError("--model: empty spec")
    layers, shape, activation = [], tuple(input_shape), "relu"

    def bad(token, why):
        raise PeerError(f"--model: bad spec '{spec}' at token '{token}': {why}")

    for token in spec.split("-"):
        if not token:
            bad(token, "empty token (two '-' in a row?)")
        kind, m = next(((k, r.fullmatch(token)) for k, r in SPEC_TOKENS if r.fullmatch(token)), (None, None))
        flat = len(shape) == 1
        if kind == "whiten":
            k = int(m[1])
            if layers:
                bad(token, "patch whitening must be the first layer (it is fitted to the images)")
            if k < 1 or k > min(shape[1], shape[2]):
                bad(token, "the kernel must be between 1 and the image's size")
            out = 2 * shape[0] * k * k
            h, w = (shape[i] + 2 * ((k - 1) // 2) - k + 1 for i in (1, 2))
            layers.append(Layer("whiten", out, k, 1, (k - 1) // 2, False, 0, activation, shape, (out, h, w)))
        elif kind == "conv":
            out, k = int(m[1]), int(m[2])
            s, p = int(m[3] or 1), int(m[4] or 0)
            if flat:
                bad(token, "convolution after a dense layer")
            if out < 1 or k < 1 or s < 1:
                bad(token, "channels, kernel and stride must be positive")
            h, w = ((shape[i] + 2 * p - k) // s + 1 for i in (1, 2))
            if h < 1 or w < 1:
                bad(token, "the image is smaller than the kernel here")
            layers.append(Layer("conv", out, k, s, p, bool(m[5]), 0, activation, shape, (out, h, w)))
        elif kind == "pool":
            k = int(m[2])
            if flat:
                bad(token, "pooling after a dense layer")
            if k < 1 or shape[1] // k < 1 or shape[2] // k < 1:
                bad(token, f"pool larger than the {shape[1]}x{shape[2]} feature map")
            layers.append(Layer("maxpool" if m[1] == "mp" else "avgpool", 0, k, k, 0, False, 0, activation, shape,
                                (shape[0], shape[1] // k, shape[2] // k)))
        elif kind == "dropout":
            layers.append(Layer("dropout", 0, 0, 0, 0, False, float(m[1]), activation, shape, shape))
        elif kind == "dense":
            out = int(m[1])
            if out < 1:
                bad(token, "dense size must be positive")
            layers.append(Layer("dense", out, 0, 0, 0, bool(m[2]), 0, activation, (math.prod(shape),), (out,)))
        elif token in ACTIVATIONS:
            activation = token
            continue
        else:
            bad(token, "unknown token (expected pw<k> first, c<out>k<size>[s][p][bn], mp<n>, ap<n>, dr<p>, "
                       "fc<n>[bn] or an activation)")
        shape = layers[-1].out_shape
    layers.append(Layer("output", NUM_CLASSES, 0, 0, 0, False, 0, None, (math.prod(shape),), (NUM_CLASSES,)))
    return layers


WHITENING_EPS = 5e-4  # as convkit's kWhiteningEps
WHITENING_IMAGES = 5000  # as convkit's kWhiteningImages


class PatchWhitening(nn.Module):
    """convkit's pw<k>: a frozen convolution (buffers, not parameters) that maps each k x k patch
    onto the eigenvectors of the patches' covariance, scaled to unit variance, and their negations."""

    def __init__(self, channels, kernel):
        super().__init__()
        self.kernel, self.padding = kernel, (kernel - 1) // 2
        out = 2 * channels * kernel * kernel
        self.register_buffer("weight", torch.zeros(out, channels, kernel, kernel))
        self.register_buffer("bias", torch.zeros(out))

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)

    @torch.no_grad()
    def fit(self, images):
        """From the mean and covariance (float64) of every patch of the first WHITENING_IMAGES."""
        patches = F.unfold(images[:WHITENING_IMAGES].double(), self.kernel).transpose(1, 2)
        patches = patches.reshape(-1, patches.shape[-1])
        mean = patches.mean(0)
        covariance = patches.T @ patches / len(patches) - torch.outer(mean, mean)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        v = eigenvectors.T
        v = v * v.gather(1, v.abs().argmax(1, keepdim=True)).sign()  # the same sign every fit
        w = v / (eigenvalues.clamp_min(0) + WHITENING_EPS).sqrt().unsqueeze(1)
        b = -w @ mean
        self.weight.copy_(torch.cat([w, -w]).view_as(self.weight))
        self.bias.copy_(torch.cat([b, -b]))


def build_model(layers):
    """An nn.Sequential: conv/dense (+ batch norm) + activation, pools, dropout, the output layer."""
    modules, flat = [], False
    for l in layers:
        if l.kind in ("dense", "output") and not flat:
            modules.append(nn.Flatten())
            flat = True
        if l.kind == "whiten":
            modules.append(PatchWhitening(l.in_shape[0], l.kernel))
            modules.append(ACTIVATIONS[l.activation]())  # as convkit: the negated twins keep all through a ReLU
        elif l.kind == "conv":
            modules.append(nn.Conv2d(l.in_shape[0], l.out, l.kernel, l.stride, l.padding))
            modules += [nn.BatchNorm2d(l.out)] if l.bn else []
            modules.append(ACTIVATIONS[l.activation]())
        elif l.kind == "dense":
            modules.append(nn.Linear(l.in_shape[0], l.out))
            modules += [nn.BatchNorm1d(l.out)] if l.bn else []
            modules.append(ACTIVATIONS[l.activation]())
        elif l.kind == "output":
            modules.append(nn.Linear(l.in_shape[0], l.out))
        elif l.kind == "maxpool":
            modules.append(nn.MaxPool2d(l.kernel))
        elif l.kind == "avgpool":
            modules.append(nn.AvgPool2d(l.kernel))
        elif l.kind == "dropout":
            modules.append(nn.Dropout(l.p))
    return nn.Sequential(*modules)


# ---------------------------------------------------------------------------------------------
# Augmentation and test-time augmentation

def translate(x, dy, dx, fill, pad):
    """Shifts each image of x [N,C,H,W] by its own whole pixels (dy, dx: int64 [N], |d| <= pad),
    uncovered pixels `fill`: one gather from a padded copy, no per-image loop."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), value=fill)
    rows = (torch.arange(h) + pad).unsqueeze(0) - dy.unsqueeze(1)  # [N,H]: output row y reads y - dy
    cols = (torch.arange(w) + pad).unsqueeze(0) - dx.unsqueeze(1)  # [N,W]
    batch = torch.arange(n).view(n, 1, 1)
    # Advanced indices around a slice put the indexed dimensions first: [N,H,W,C].
    return padded[batch, :, rows.unsqueeze(2), cols.unsqueeze(1)].permute(0, 3, 1, 2)


def augment(x, shift, hflip, fill):
    """convkit's training augmentation: a left-right mirror with probability 1/2, then a shift by
    whole pixels in [-shift, shift] in x and y."""
    n = len(x)
    if hflip:
        x = torch.where(torch.rand(n).lt(0.5).view(n, 1, 1, 1), x.flip(3), x)
    if shift > 0:
        d = torch.randint(-shift, shift + 1, (2, n))
        x = translate(x, d[0], d[1], fill, shift)
    return x


def tta_views(x, modes, fill):
    """convkit's views: the image and, with `flip`, its mirror; with `shift` each of those also
    moved by one pixel left, right, up and down (10 views for flip,shift)."""
    bases = [x, x.flip(3)] if "flip" in modes else [x]
    if "shift" not in modes:
        return bases
    n = len(x)
    views = []
    for base in bases:
        views.append(base)
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            views.append(translate(base, torch.full((n,), dy), torch.full((n,), dx), fill, 1))
    return views


# ---------------------------------------------------------------------------------------------
# Schedule, EMA, evaluation

def lr_factor(step, total_steps, schedule, warmup_steps):
    """The learning rate at `step` as a fraction of the peak: convkit's schedule (PyTorch's
    OneCycleLR defaults, or cosine to 0, per batch), times a linear warm-up."""
    t = step / (total_steps - 1) if total_steps > 1 else 1.0
    if schedule == "cosine":
        f = 0.5 * (1 + math.cos(math.pi * t))
    elif schedule == "onecycle":
        # 30% rising from 1/25 of the peak, then annealing to 1/25/1e4 of it, both cosine.
        # Momentum is not cycled (OneCycleLR would cycle Adam's beta1): convkit does not.
        def cosine(a, b, u):
            return b + (a - b) * 0.5 * (1 + math.cos(math.pi * u))
        start, end, warm = 1 / 25, 1 / 25 / 1e4, 0.3
        f = cosine(start, 1, t / warm) if t < warm else cosine(1, end, (t - warm) / (1 - warm))
    else:
        f = 1.0
    if warmup_steps > 0:
        f *= min(1.0, (step + 1) / warmup_steps)  # the first step already moves: none is wasted
    return f


class Ema:
    """A copy of the model whose parameters and buffers follow ema = d*ema + (1-d)*w after every
    optimiser step, d = min(decay, (1 + n) / (10 + n)) after n updates as convkit (and
    TensorFlow's ExponentialMovingAverage with num_updates) has it: with the plain decay a short
    run's average stays mostly the initial weights. Integer buffers (batch-norm counters) are copied."""

    def __init__(self, model, decay):
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0
        pairs = list(zip(self.model.state_dict().values(), model.state_dict().values()))
        self.averaged = [e for e, _ in pairs if e.is_floating_point()]
        self.live = [w for e, w in pairs if e.is_floating_point()]
        self.copied = [(e, w) for e, w in pairs if not e.is_floating_point()]

    @torch.no_grad()
    def update(self):
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        # One multi-tensor pass over all tensors rather than a Python loop per tensor.
        torch._foreach_mul_(self.averaged, d)
        torch._foreach_add_(self.averaged, self.live, alpha=1 - d)
        for e, w in self.copied:
            e.copy_(w)


@torch.no_grad()
def evaluate(model, x, y, memory_format, tta=(), fill=0.0):
    """Mean cross-entropy and accuracy over all images (in batches of EVAL_BATCH), and with
    `tta` the accuracy of the softmax averaged over the views."""
    model.eval()
    loss, correct, correct_tta = 0.0, 0, 0
    for lo in range(0, len(x), EVAL_BATCH):
        xb, yb = x[lo:lo + EVAL_BATCH], y[lo:lo + EVAL_BATCH]
        logits = model(xb.contiguous(memory_format=memory_format))
        loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
        if tta:
            probs = logits.softmax(1)
            for view in tta_views(xb, tta, fill)[1:]:
                probs += model(view.contiguous(memory_format=memory_format)).softmax(1)
            correct_tta += (probs.argmax(1) == yb).sum().item()
    n = len(x)
    return loss / n, correct / n, (correct_tta / n if tta else None)


# ---------------------------------------------------------------------------------------------
# Training

def make_optimizer(name, params, lr, weight_decay):
    # foreach: one multi-tensor pass per update instead of a loop over the parameters.
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay,
                                 foreach=True)
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay, foreach=True)


def train_epoch(model, data, opt, args, step, total_steps, warmup_steps, memory_format, ema):
    """One pass over the shuffled training split; returns (mean loss, steps taken)."""
    model.train()
    order = torch.randperm(len(data.train_x))
    loss_sum = torch.zeros(())
    for lo in range(0, len(order), args.batch_size):
        idx = order[lo:lo + args.batch_size]
        x = augment(data.train_x[idx], args.aug_translate, args.aug_hflip, data.background)
        f = lr_factor(step, total_steps, args.schedule, warmup_steps)
        for group in opt.param_groups:
            group["lr"] = args.lr * f
        logits = model(x.contiguous(memory_format=memory_format))
        loss = F.cross_entropy(logits, data.train_y[idx], label_smoothing=args.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema:
            ema.update()
        loss_sum += loss.detach() * len(idx)  # read once at the end, not with an .item() per step
        step += 1
    return loss_sum.item() / len(order), step


def final_metric(args):
    """The accuracy the recipe's own prediction reaches: the EMA model's when --ema, TTA'd when --tta."""
    return "test_acc" + ("_ema" if args.ema else "") + ("_tta" if args.tta else "")


def train(args):
    torch.manual_seed(args.seed)
    data = load_data(args.data, args.limit)
    layers = parse_spec(args.model, tuple(data.train_x.shape[1:]))
    model = build_model(layers)
    for module in model.modules():
        if isinstance(module, PatchWhitening):
            module.fit(data.train_x)  # the training split's first images, as convkit
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    ema = Ema(model, args.ema) if args.ema else None  # after .to(): it holds the model's tensors
    opt = make_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay)
    steps_per_epoch = -(-len(data.train_x) // args.batch_size)
    total_steps = args.epochs * steps_per_epoch
    warmup_steps = args.warmup * steps_per_epoch  # fractional, as convkit counts it
    forward_macs = sum(layer_macs(l) for l in layers)

    print(f"peer: {args.model}, {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{forward_macs / 1e6:.1f} M multiply-adds per image forward | {len(data.train_x)} train, "
          f"{len(data.valid_x)} valid, {len(data.test_x)} test | mean {data.mean:.4f} std {data.std:.4f} | "
          f"{args.threads} thread(s), {'channels_last' if args.channels_last else 'contiguous'}, "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)') or '(empty)'}", flush=True)
    records, step, elapsed, reached = [], 0, 0.0, None
    metric = final_metric(args)
    for epoch in range(1, args.epochs + 1):
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        train_loss, step = train_epoch(model, data, opt, args, step, total_steps, warmup_steps, memory_format, ema)
        seconds = time.perf_counter() - start
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        elapsed += seconds
        r = {"epoch": epoch, "train_seconds": seconds, "cumulative_train_seconds": elapsed,
             "train_loss": train_loss, "minor_page_faults": faults}
        r["valid_loss"], r["valid_acc"], _ = evaluate(model, data.valid_x, data.valid_y, memory_format)
        _, r["test_acc"], tta = evaluate(model, data.test_x, data.test_y, memory_format, args.tta, data.background)
        if args.tta:
            r["test_acc_tta"] = tta
        if ema:
            _, r["test_acc_ema"], tta = evaluate(ema.model, data.test_x, data.test_y, memory_format, args.tta,
                                                 data.background)
            if args.tta:
                r["test_acc_ema_tta"] = tta
        if reached is None and r[metric] >= args.target:
            reached = elapsed
        records.append(r)
        print_epoch(r)

    median = statistics.median(r["train_seconds"] for r in records)
    gflops = 3 * 2 * forward_macs * len(data.train_x) / median / 1e9
    print(f"median epoch {median:.2f} s ({gflops:.1f} GFLOP/s of training arithmetic, 3x forward) | "
          f"{metric} {100 * records[-1][metric]:.2f}% | {100 * args.target:g}% "
          + (f"reached after {reached:.1f} s of training" if reached is not None else "not reached"))
    return {
        "settings": vars(args),
        "epochs": records,
        "median_epoch_seconds": median,
        "target": args.target,
        "target_metric": metric,
        "seconds_to_target": reached,
        "training_gflops_per_second": gflops,
        "parameters": sum(p.numel() for p in model.parameters()),
        "forward_macs_per_image": forward_macs,
        "examples": {"train": len(data.train_x), "valid": len(data.valid_x), "test": len(data.test_x)},
        "normalisation": {"mean": data.mean, "std": data.std},
        **machine(args.threads),
    }


def print_epoch(r):
    extras = "".join(f" | {name} {100 * r[key]:.2f}%" for key, name in
                     (("test_acc_tta", "tta"), ("test_acc_ema", "ema"), ("test_acc_ema_tta", "ema+tta")) if key in r)
    print(f"epoch {r['epoch']:3d} | train {r['train_seconds']:7.2f} s (total {r['cumulative_train_seconds']:7.1f} s) "
          f"loss {r['train_loss']:.4f} | valid loss {r['valid_loss']:.4f} acc {100 * r['valid_acc']:.2f}% "
          f"| test {100 * r['test_acc']:.2f}%{extras}", flush=True)


# ---------------------------------------------------------------------------------------------
# FLOP arithmetic

def layer_macs(l):
    """Forward multiply-adds per image of a conv or dense layer (0 for the rest: pooling, batch
    norm and activations are a few operations per value, not per weight)."""
    if l.kind in ("conv", "whiten"):
        return math.prod(l.out_shape) * l.in_shape[0] * l.kernel * l.kernel
    if l.kind in ("dense", "output"):
        return l.in_shape[0] * l.out
    return 0


def cpu_info():
    """(model name, MHz, flags) from /proc/cpuinfo's first processor."""
    name, mhz, flags = "unknown", None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name == "unknown":
                    name = value.strip()
                elif key == "cpu MHz" and mhz is None:
                    mhz = float(value)
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return name, mhz, flags


def peak_flops(threads):
    """cores x FMA units x floats per vector x 2 FLOP per FMA x clock, and that sum as text."""
    _, mhz, flags = cpu_info()
    floats, isa = (16, "AVX-512") if "avx512f" in flags else (8, "AVX2") if "avx2" in flags else (4, "SSE")
    cores = min(threads, os.cpu_count() or threads)
    if mhz is None:
        return {"text": "no 'cpu MHz' in /proc/cpuinfo: peak unknown", "gflops": None}
    gflops = cores * 2 * floats * 2 * mhz / 1e3
    text = (f"{cores} core{'s' if cores > 1 else ''} x 2 FMA x {floats} floats ({isa}) x 2 x {mhz / 1e3:.3f} GHz "
            f"= {gflops:.0f} GFLOP/s")
    return {"text": text, "gflops": gflops, "cores": cores, "fma_units": 2, "floats_per_vector": floats,
            "isa": isa, "ghz": mhz / 1e3}


def time_conv(l, batch, first, memory_format, repeats, warmup=3):
    """Median seconds of one convolution's forward+backward at batch `batch`, and the FLOP it
    does: forward, weight gradient and (except on the network's input) input gradient."""
    x = torch.randn(batch, *l.in_shape).contiguous(memory_format=memory_format).requires_grad_(not first)
    w = torch.randn(l.out, l.in_shape[0], l.kernel, l.kernel).contiguous(memory_format=memory_format)
    w.requires_grad_()
    b = torch.zeros(l.out, requires_grad=True)
    grad = torch.randn(batch, *l.out_shape).contiguous(memory_format=memory_format)
    times = []
    for i in range(warmup + repeats):
        x.grad = w.grad = b.grad = None
        start = time.perf_counter()
        F.conv2d(x, w, b, l.stride, l.padding).backward(grad)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    passes = 2 if first else 3
    return statistics.median(times), passes * 2 * layer_macs(l) * batch


def flops_report(args):
    layers = parse_spec(args.model)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    rows, total = [], 0
    print(f"{args.model}: forward multiply-adds per image")
    for i, l in enumerate(layers):
        macs = layer_macs(l)
        if macs:
            shape = "x".join(map(str, l.in_shape)) + " -> " + "x".join(map(str, l.out_shape))
            print(f"  {l.kind:6} {shape:22} {macs / 1e6:9.3f} M")
            rows.append({"layer": i, "kind": l.kind, "in": l.in_shape, "out": l.out_shape, "macs": macs})
            total += macs
    print(f"  total {total / 1e6:.3f} M multiply-adds = {2 * total / 1e6:.3f} MFLOP forward; training "
          f"~3x forward (input and weight gradients) = {6 * total / 1e6:.3f} MFLOP per image, "
          f"{6 * total * 54000 / 1e12:.3f} TFLOP per epoch of 54,000 images")

    peak = peak_flops(args.threads)
    print(f"peak: {peak['text']}")
    print(f"convolutions alone, forward+backward, batch {args.batch_size}, "
          f"{'channels_last' if args.channels_last else 'contiguous'}, median of {args.repeats}:")
    timings, conv_seconds, conv_flop = [], 0.0, 0
    convs = [l for l in layers if l.kind == "conv"]
    for j, l in enumerate(convs):
        seconds, flop = time_conv(l, args.batch_size, j == 0 and l is layers[0], memory_format, args.repeats)
        rate = flop / seconds / 1e9
        share = f" ({100 * rate / peak['gflops']:.1f}% of peak)" if peak["gflops"] else ""
        print(f"  conv {'x'.join(map(str, l.in_shape))} -> {'x'.join(map(str, l.out_shape))}: "
              f"{seconds * 1e3:8.2f} ms, {flop / 1e9:.3f} GFLOP, {rate:6.1f} GFLOP/s{share}")
        timings.append({"in": l.in_shape, "out": l.out_shape, "seconds": seconds, "flop": flop, "gflops": rate})
        conv_seconds += seconds
        conv_flop += flop
    conv_rate = conv_flop / conv_seconds / 1e9 if conv_seconds else None
    if conv_rate:
        share = f" = {100 * conv_rate / peak['gflops']:.1f}% of peak" if peak["gflops"] else ""
        print(f"  all convolutions: {conv_flop / 1e9:.3f} GFLOP in {conv_seconds * 1e3:.2f} ms = "
              f"{conv_rate:.1f} GFLOP/s{share}")
    return {"settings": vars(args), "layers": rows, "forward_macs_per_image": total,
            "training_flop_per_image": 6 * total, "peak": peak, "conv_timings": timings,
            "conv_gflops_per_second": conv_rate, **machine(args.threads)}


def machine(threads):
    return {"torch_version": torch.__version__, "threads": threads, "cpu": cpu_info()[0],
            "glibc_tunables": os.environ.get("GLIBC_TUNABLES")}


# ---------------------------------------------------------------------------------------------
# Command line

def tta_modes(text):
    """convkit's --tta values: none, flip, shift or flip,shift (either order)."""
    modes = () if text in ("", "none") else tuple(text.split(","))
    if any(m not in ("flip", "shift") for m in modes) or len(set(modes)) != len(modes):
        raise argparse.ArgumentTypeError(f"'{text}' is not none, flip, shift or flip,shift")
    return modes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DATA_DIR, help="directory of the IDX files, raw or .gz (default: %(default)s)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="convkit's network spec (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: %(default)s)")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw",
                   help="adamw (betas 0.9/0.999) or sgd (momentum 0.9, Nesterov)")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", choices=["onecycle", "cosine", "none"], default="onecycle",
                   help="per batch; onecycle: PyTorch's OneCycleLR defaults (default: %(default)s)")
    p.add_argument("--warmup", type=float, default=0, metavar="EPOCHS",
                   help="linear warm-up from 0 over EPOCHS epochs, multiplied onto the schedule")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--aug-translate", type=int, default=1, metavar="N",
                   help="random shift by whole pixels in [-N, N] in x and y (0: off; default: %(default)s)")
    p.add_argument("--aug-hflip", action=argparse.BooleanOptionalAction, default=True,
                   help="random left-right mirror (default: on)")
    p.add_argument("--ema", type=float, default=0, metavar="DECAY",
                   help="also evaluate an exponential moving average of the weights (e.g. 0.999)")
    p.add_argument("--tta", type=tta_modes, default=(), metavar="flip,shift",
                   help="test-time augmentation: the softmax averaged over the image and its mirror "
                        "(flip), each also shifted 1 pixel 4 ways (shift)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="NHWC activations and weights (default: on, measured faster here)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: %(default)s)")
    p.add_argument("--limit", type=int, default=0, metavar="N", help="only the first N train and test images")
    p.add_argument("--target", type=float, default=0.93, help="test accuracy to time (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", help="write the settings and results here")
    p.add_argument("--flops", action="store_true", help="print the FLOP arithmetic of --model instead of training")
    p.add_argument("--repeats", type=int, default=20, help="--flops: timed repeats per convolution")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "threads", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.limit < 0 or args.aug_translate < 0 or args.warmup < 0:
        p.error("--limit, --aug-translate and --warmup cannot be negative")
    if not 0 <= args.ema < 1:
        p.error("--ema: a decay in [0, 1)")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        result = flops_report(args) if args.flops else train(args)
    except PeerError as e:
        print(f"competition_peer: {e}", file=sys.stderr)
        return 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
