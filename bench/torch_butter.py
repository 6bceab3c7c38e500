#!/usr/bin/env python3
"""PyTorch peer for detdl's BUTTER repetitions (bench/butter_batched.sh).

Trains R repetitions of one BUTTER experiment one after the other, as BUTTER's own
framework does (one Keras model per run): a dense stack of the given widths (ReLU hidden
layers, Glorot-uniform kernels, zero biases; softmax cross-entropy for classes, a sigmoid
output with MSE otherwise), Adam (lr, eps 1e-7), batch 256, every epoch reshuffled.
Each epoch computes BUTTER's per-epoch metrics as Keras does: the training series as the
running mean over the epoch's batches (on the outputs before each update) and the test
series on the whole test set, each of loss, accuracy, cosine similarity, hinge, KL
divergence, MAE, MSE, MSLE, RMSE and squared hinge.

The data is a PMLB TSV(.gz) (target column "target"): inputs standardised per column,
classes one-hot, the rows shuffled and split 80/20 (the peer's arithmetic is what matters,
not its bits). Prints one JSON line: total seconds, seconds per repetition, the last test
loss of each repetition, torch's version and threads.

Needs Debian's python3-torch (run with /usr/bin/python3).
Example: /usr/bin/python3 bench/torch_butter.py --data ../shared/data/pmlb/wine_quality_white/wine_quality_white.tsv.gz --widths 23,23,7 --epochs 10 --repetitions 2
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

from torch_lenet5 import load_mnist  # this folder is on sys.path when run as a script

EPS = 1e-7


def read_pmlb(path):
    """(x, y) from a PMLB TSV(.gz); a missing 'target' column raises ValueError naming the file."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        header = f.readline().rstrip("\n").split("\t")
        if "target" not in header:
            raise ValueError(f"{path}: no 'target' column in the header")
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    data = np.array(rows, dtype=np.float64)
    t = header.index("target")
    return np.delete(data, t, axis=1), data[:, t]


def read_mnist(root):
    """BUTTER's mnist: the official train and test sets pooled, 784 columns / 255, 10 classes."""
    xs, ys = [], []
    for part in ("train", "t10k"):
        x, y = load_mnist(root, part)  # bench/torch_lenet5.py's IDX reader and checks
        xs.append(x.reshape(len(x), 784).numpy().astype(np.float64))
        ys.append(y.numpy().astype(np.float64))
    return np.concatenate(xs), np.concatenate(ys)


def metrics(p, y, binary_targets):
    """Per-sample Keras metrics of probabilities p (n, k) against dense targets y (n, k): a dict of (n,) tensors."""
    k = p.shape[1]
    acc = (p.argmax(1) == y.argmax(1)).float() if k > 1 else ((p[:, 0] > 0.5) == (y[:, 0] > 0.5)).float()
    cos = (nn.functional.normalize(y, dim=1, eps=1e-12) * nn.functional.normalize(p, dim=1, eps=1e-12)).sum(1)
    ys = 2 * y - 1 if binary_targets else y
    h = torch.clamp(1 - ys * p, min=0)
    yc, pc = torch.clamp(y, EPS, 1), torch.clamp(p, EPS, 1)
    d = p - y
    sq = (d * d).sum(1)
    msle = ((torch.log(torch.clamp(p, min=EPS) + 1) - torch.log(torch.clamp(y, min=EPS) + 1)) ** 2).mean(1)
    return {"accuracy": acc, "cosine": cos, "hinge": h.mean(1), "squared_hinge": (h * h).mean(1),
            "kl": (yc * torch.log(yc / pc)).sum(1), "mae": d.abs().mean(1), "mse": sq / k, "msle": msle,
            "sq": sq}


def run(x_tr, y_tr, x_te, y_te, widths, classes, epochs, batch, lr, seed):
    torch.manual_seed(seed)
    layers, fan_in = [], x_tr.shape[1]
    for i, w in enumerate(widths):
        lin = nn.Linear(fan_in, w)
        nn.init.xavier_uniform_(lin.weight)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i + 1 < len(widths):
            layers.append(nn.ReLU())
        fan_in = w
    if not classes:
        layers.append(nn.Sigmoid())
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=EPS)
    loss_fn = nn.CrossEntropyLoss() if classes else nn.MSELoss()
    n = x_tr.shape[0]
    target_tr = y_tr.argmax(1) if classes else y_tr
    binary = bool(((y_tr == 0) | (y_tr == 1)).all())
    last = None
    for _ in range(epochs):
        order = torch.randperm(n)
        sums = {}
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            out = model(x_tr[idx])
            loss = loss_fn(out, target_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                p = torch.softmax(out, 1) if classes else out
                for name, v in metrics(p, y_tr[idx], binary).items():
                    sums[name] = sums.get(name, 0.0) + v.sum().item()
                sums["loss"] = sums.get("loss", 0.0) + loss.item() * len(idx)
        with torch.no_grad():
            out = model(x_te)
            p = torch.softmax(out, 1) if classes else out
            test = {name: v.mean().item() for name, v in metrics(p, y_te, binary).items()}
            test["loss"] = loss_fn(out, y_te.argmax(1) if classes else y_te).item()
        last = test["loss"]
    return last


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True,
                    help="PMLB .tsv or .tsv.gz, or an MNIST IDX folder (BUTTER's mnist)")
    ap.add_argument("--widths", required=True, help="layer widths, the last the outputs, e.g. 23,23,7")
    ap.add_argument("--classes", action="store_true", help="classification (softmax cross-entropy)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repetitions", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    widths = [int(w) for w in a.widths.split(",")]
    if os.path.isdir(a.data):
        x, y = read_mnist(a.data)
    else:
        x, y = read_pmlb(a.data)
        x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    if a.classes:
        values = np.unique(y)
        if len(values) != widths[-1]:
            sys.exit(f"{a.data}: {len(values)} classes, the last width is {widths[-1]}")
        dense = (y[:, None] == values[None, :]).astype(np.float32)
    else:
        dense = ((y - y.min()) / max(y.max() - y.min(), 1e-12))[:, None].astype(np.float32)
    rng = np.random.default_rng(1)
    perm = rng.permutation(len(x))
    cut = len(x) - int(np.ceil(0.2 * len(x)))
    xt = torch.tensor(x[perm], dtype=torch.float32)
    yt = torch.tensor(dense[perm])
    t0 = time.perf_counter()
    losses = [run(xt[:cut], yt[:cut], xt[cut:], yt[cut:], widths, a.classes, a.epochs, a.batch, a.lr, r)
              for r in range(a.repetitions)]
    total = time.perf_counter() - t0
    print(json.dumps({"seconds": total, "seconds_per_repetition": total / a.repetitions,
                      "last_test_loss": losses, "torch_version": torch.__version__,
                      "threads": torch.get_num_threads(), "epochs": a.epochs,
                      "repetitions": a.repetitions}))


if __name__ == "__main__":
    main()
