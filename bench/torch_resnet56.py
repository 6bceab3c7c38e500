#!/usr/bin/env python3
"""PyTorch peer for the GPU training-throughput comparison (issue 5): the Keras CIFAR
ResNet v1 of depth 6n+2 (ResNet-56 by default, the same layers as detdl's `resnet56`:
conv3x3-BN-ReLU stem, basic blocks conv-BN-ReLU-conv-BN + shortcut then ReLU, stride 2 and
a 1x1 projection at the start of stages 2 and 3, global average pool, dense), trained for
one epoch on CIFAR-shaped generated data (50,000 images, batch 128, Adam 1e-3).

    torch_resnet56.py --mode deterministic   # FP32, TF32 off, deterministic algorithms
    torch_resnet56.py --mode default         # cuDNN autotuning, TF32 allowed (PyTorch's defaults)
    torch_resnet56.py --device cpu --depth 20 --images 2560 --threads 2   # CPU (bench/peers.sh)

Prints one JSON line: {"framework": "pytorch", "mode", "device", "depth", "epoch_seconds",
"images_per_second", "parameters", "threads"}. Needs torch (Debian: python3-torch; on the GPU machine
any CUDA build). Run by bench/gpu_resnet56.sh and, on the CPU, bench/peers.sh, which run detdl
beside it.
"""
import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.b1 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.b2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.proj = nn.Conv2d(cin, cout, 1, stride) if (stride != 1 or cin != cout) else None

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (self.proj(x) if self.proj is not None else x))


class ResNetV1(nn.Module):
    def __init__(self, depth, classes=10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.BatchNorm2d(16, eps=1e-3, momentum=0.01), nn.ReLU())
        layers, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for b in range(n):
                layers.append(Block(cin, cout, 2 if (stage > 0 and b == 0) else 1))
                cin = cout
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth", type=int, default=56)
    ap.add_argument("--mode", choices=["deterministic", "default"], default="deterministic")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--images", type=int, default=50000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    a = ap.parse_args()
    if a.images < a.batch or a.batch < 1:
        ap.error("--images must be at least --batch, and --batch positive")
    if a.threads < 0:
        ap.error("--threads must be >= 0")
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.mode == "deterministic":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    dev = torch.device(a.device)
    model = ResNetV1(a.depth).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    x = torch.rand(a.images, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (a.images,), device=dev)
    steps = a.images // a.batch

    def epoch():
        perm = torch.randperm(a.images, device=dev)
        for s in range(steps):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # A short warm-up (cuDNN autotuning, allocator), then one timed epoch.
    saved = steps
    steps = min(steps, 20)
    epoch()
    steps = saved
    t0 = time.perf_counter()
    epoch()
    secs = time.perf_counter() - t0
    print(json.dumps({"framework": "pytorch", "torch_version": torch.__version__, "mode": a.mode,
                      "device": str(dev) + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""),
                      "depth": a.depth, "parameters": sum(p.numel() for p in model.parameters()),
                      "epoch_seconds": secs, "images_per_second": steps * a.batch / secs,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
