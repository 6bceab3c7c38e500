#!/usr/bin/env python3
"""PyTorch peer for detdl's LeNet-5 (and LeNet-1) epoch time on real MNIST (CPU).

The network is the dl-variance study's LeNet-5 (../shared/design/VARIANCE.md):
conv 6@5x5 'same' ReLU -> maxpool 2 -> conv 16@5x5 'same' ReLU -> maxpool 2 -> flatten (784)
-> dense 120 ReLU -> dense 84 ReLU -> dense 10, softmax cross-entropy; 107,786 parameters.
With --variant 1, LeNet-1 (detdl's lenet1:keras): conv 4@5x5 'same' ReLU -> maxpool 2 ->
conv 12@5x5 'same' ReLU -> maxpool 2 -> flatten (588) -> dense 10; 7,206 parameters.
Weights are Glorot-uniform and biases zero (Keras's defaults, as detdl's preset comparison
uses), inputs x/255, every epoch reshuffled, the last partial batch kept (as Keras does).

Epoch seconds cover the training loop only (shuffle, batch gather, forward, backward,
step); the test-set evaluation after each epoch is timed separately and not included.

Needs a Python with torch and numpy (on Debian: python3-torch, run with /usr/bin/python3).
MNIST is read from --mnist, by default $DETDL_DATA_DIR/mnist (else ../shared/data/mnist).
Example: /usr/bin/python3 bench/torch_lenet5.py --epochs 1 --threads 2 [--variant 1]
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
from torch import nn

LENET5_PARAMETERS = 107_786  # VARIANCE.md's count for this layout
LENET1_PARAMETERS = 7_206  # 4*25+4 + 12*4*25+12 + 588*10+10


def read_idx(path, magic, dims):
    """An IDX file (gz) as a uint8 array; wrong magic, rank or length raises ValueError naming the file."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * dims:
        raise ValueError(f"{path}: truncated header ({len(data)} bytes)")
    got_magic, = struct.unpack(">I", data[:4])
    if got_magic != magic:
        raise ValueError(f"{path}: magic {got_magic:#010x}, expected {magic:#010x}")
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    body = data[4 + 4 * dims:]
    if len(body) != int(np.prod(shape)):
        raise ValueError(f"{path}: {len(body)} data bytes, header {shape} says {int(np.prod(shape))}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def load_mnist(directory, split):
    """split 'train' or 't10k' -> x (N, 1, 28, 28) float32 in [0, 1], y (N) int64."""
    images = read_idx(os.path.join(directory, f"{split}-images-idx3-ubyte.gz"), 0x00000803, 3)
    labels = read_idx(os.path.join(directory, f"{split}-labels-idx1-ubyte.gz"), 0x00000801, 1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{directory}: {split} has {images.shape[0]} images but {labels.shape[0]} labels")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def lenet(variant=5):
    """LeNet-5 (variant 5) or LeNet-1 (variant 1), 'same' convolutions on 28 x 28 inputs."""
    c1, c2, hidden = (6, 16, [120, 84]) if variant == 5 else (4, 12, [])
    layers = [nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
              nn.Flatten()]
    width = c2 * 7 * 7
    for units in hidden:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    model = nn.Sequential(*layers, nn.Linear(width, 10))
    # Keras defaults: Glorot-uniform kernels (fans as Keras computes them for conv and dense
    # alike: fan_in = C*KH*KW, fan_out = O*KH*KW), zero biases.
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    count = sum(p.numel() for p in model.parameters())
    expected = LENET5_PARAMETERS if variant == 5 else LENET1_PARAMETERS
    if count != expected:
        raise RuntimeError(f"LeNet-{variant} has {count} parameters, expected {expected}")
    return model


def evaluate(model, x, y, batch=1000):
    """Accuracy on (x, y) in eval mode, no autograd."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            correct += (model(x[s:s + batch]).argmax(dim=1) == y[s:s + batch]).sum().item()
    model.train()
    return correct / x.shape[0]


def positive_int(s):
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{s} is not a positive integer")
    return v


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_root = os.environ.get("DETDL_DATA_DIR") or os.path.join(here, "..", "..", "shared", "data")
    ap.add_argument("--mnist", default=os.path.join(data_root, "mnist"),
                    help="folder with the four MNIST IDX .gz files (default $DETDL_DATA_DIR/mnist)")
    ap.add_argument("--variant", type=int, choices=[1, 5], default=5, help="LeNet-5 or LeNet-1")
    ap.add_argument("--epochs", type=positive_int, default=2)
    ap.add_argument("--batch", type=positive_int, default=128)
    ap.add_argument("--threads", type=positive_int, default=2, help="torch.set_num_threads")
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    ap.add_argument("--lr", type=float, default=None, help="default 0.01 (sgd, the study's) or 0.001 (adam)")
    ap.add_argument("--momentum", type=float, default=0.0, help="sgd only")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, y_train = load_mnist(args.mnist, "train")
    x_test, y_test = load_mnist(args.mnist, "t10k")
    model = lenet(args.variant)
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.01 if args.lr is None else args.lr, momentum=args.momentum)
    else:
        # Keras's Adam epsilon is 1e-7 (PyTorch's default 1e-8).
        opt = torch.optim.Adam(model.parameters(), lr=0.001 if args.lr is None else args.lr, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()  # softmax + categorical cross-entropy, mean over the batch
    order_gen = torch.Generator().manual_seed(args.seed)

    n = x_train.shape[0]
    print(f"pytorch {torch.__version__}, lenet{args.variant}, threads {torch.get_num_threads()}, batch {args.batch}, "
          f"optimizer {args.optimizer}, train {n}, test {x_test.shape[0]}", flush=True)
    epoch_seconds, test_accuracy = [], []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(n, generator=order_gen)
        loss_sum = 0.0
        for s in range(0, n, args.batch):
            idx = order[s:s + args.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            loss_sum += loss.item() * idx.numel()  # Keras's running mean: weighted by samples
        seconds = time.perf_counter() - start
        acc = evaluate(model, x_test, y_test)
        epoch_seconds.append(seconds)
        test_accuracy.append(acc)
        print(f"epoch {epoch}  train_loss {loss_sum / n:.4f}  test_accuracy {acc:.4f}  "
              f"epoch_seconds {seconds:.2f}  images/s {n / seconds:.0f}", flush=True)

    print(json.dumps({"framework": "pytorch", "torch_version": torch.__version__, "net": f"lenet{args.variant}",
                      "threads": torch.get_num_threads(),
                      "batch": args.batch, "optimizer": args.optimizer, "epoch_seconds": epoch_seconds,
                      "test_accuracy": test_accuracy}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
