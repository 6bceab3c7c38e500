#!/usr/bin/python3
"""The outside oracle's references (tests/oracle/test_oracle.cpp): PyTorch in float64.

    /usr/bin/python3 tests/oracle/make_reference.py BUILD_DIR

runs BUILD_DIR/tests/test_oracle with DETDL_ORACLE_DUMP to get each case's initial weights
and batches (detdl's), trains the same net in float64 with PyTorch (Debian's python3-torch:
torch.nn.functional for the layers, torch.optim.SGD / torch.optim.Adam for PyTorch's
updates, Keras 2.2.2's Adam and categorical cross-entropy written out below), and writes
tests/oracle/reference/<case>.safetensors: the final weights rounded to float32. Tensors of
more than FULL_BELOW elements keep every STRIDE-th element (flattened), which keeps the
files small; the test reads the same subset.
"""
import json
import os
import pathlib
import struct
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F

STRIDE = 5
FULL_BELOW = 1000
HERE = pathlib.Path(__file__).resolve().parent


def read_safetensors(path):
    data = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n :]
    tensors = {}
    for name, h in header.items():  # file order (Python 3.7+ dicts keep it)
        dtype = {"F32": torch.float32, "I32": torch.int32}[h["dtype"]]
        b, e = h["data_offsets"]
        t = torch.frombuffer(bytearray(body[b:e]), dtype=dtype).reshape(h["shape"])
        tensors[name] = t.clone()
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header, offset, blobs = {"__metadata__": meta}, 0, []
    for name, t in tensors.items():
        raw = t.to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def forward(params, x):
    """detdl's LeNet-5 ('same' 5x5 convs, ReLU, 2x2 max pooling, dense layers) or BUTTER's MLP
    (dense + ReLU, logits out), from the parameters' names and shapes in model order."""
    # param.<layer index>.weight / .bias; the safetensors header sorts names, so order the
    # layers by their index in the Sequential.
    index = sorted({int(n.split(".")[1]) for n in params})
    layers = [(f"param.{i}.weight", f"param.{i}.bias") for i in index]
    h = x
    for i, (w, b) in enumerate(layers):
        W, B = params[w], params[b]
        last = i == len(layers) - 1
        if W.dim() == 4:  # conv (O, C, 5, 5), 'same': padding 2; then ReLU and max pooling
            h = F.max_pool2d(F.relu(F.conv2d(h, W, B, padding=W.shape[-1] // 2)), 2)
        else:
            h = h.flatten(1) if h.dim() > 2 else h  # (C, H, W) order, as detdl's Flatten
            h = F.linear(h, W, B)
            if not last:
                h = F.relu(h)
    return h


def loss_of(kind, logits, y):
    if kind == "softmax_ce":
        return F.cross_entropy(logits, y.long())
    if kind == "keras_ce":  # Keras 2.2.2: softmax, / sum, clip to [1e-7, 1 - 1e-7], -log
        p = torch.softmax(logits, dim=1)
        p = p / p.sum(dim=1, keepdim=True)
        p = torch.clamp(p, 1e-7, 1 - 1e-7)
        return -torch.log(p.gather(1, y.long().view(-1, 1))).mean()
    raise ValueError(kind)


def train(tensors, meta):
    params = {k: v.to(torch.float64).requires_grad_() for k, v in tensors.items() if k.startswith("param.")}
    x, y = tensors["x"].to(torch.float64), tensors["y"]
    steps, batch, lr = int(meta["steps"]), int(meta["batch"]), float(meta["lr"])
    kind, keras = meta["optimizer"], meta["keras_form"] == "1"
    b1, b2, eps = float(meta["beta1"]), float(meta["beta2"]), float(meta["eps"])
    plist = list(params.values())
    if kind == "sgd":
        opt = torch.optim.SGD(plist, lr=lr)
    elif kind == "adam" and not keras:
        opt = torch.optim.Adam(plist, lr=lr, betas=(b1, b2), eps=eps)
    else:
        opt = None  # Keras 2.2.2's Adam, below
        m = [torch.zeros_like(p) for p in plist]
        v = [torch.zeros_like(p) for p in plist]
    for s in range(steps):
        xb, yb = x[s * batch : (s + 1) * batch], y[s * batch : (s + 1) * batch]
        loss = loss_of(meta["loss"], forward(params, xb), yb)
        for p in plist:
            p.grad = None
        loss.backward()
        if opt is not None:
            opt.step()
            continue
        with torch.no_grad():  # keras/optimizers.py Adam.get_updates (2.2.2)
            t = s + 1
            lr_t = lr * (1.0 - b2**t) ** 0.5 / (1.0 - b1**t)
            for i, p in enumerate(plist):
                m[i] = b1 * m[i] + (1.0 - b1) * p.grad
                v[i] = b2 * v[i] + (1.0 - b2) * p.grad**2
                p -= lr_t * m[i] / (v[i].sqrt() + eps)
    return {k: v.detach() for k, v in params.items()}


def subset(t):
    flat = t.reshape(-1)
    return flat if flat.numel() < FULL_BELOW else flat[::STRIDE]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_reference.py BUILD_DIR")
    exe = pathlib.Path(sys.argv[1]) / "tests" / "test_oracle"
    out = HERE / "reference"
    out.mkdir(exist_ok=True)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as dump:
        subprocess.run([str(exe), "--gtest_filter=Oracle.DumpForTheReferenceScript"],
                       env={**os.environ, "DETDL_ORACLE_DUMP": dump}, check=True,
                       stdout=subprocess.DEVNULL)
        for f in sorted(pathlib.Path(dump).glob("*_input.safetensors")):
            case = f.name[: -len("_input.safetensors")]
            tensors, meta = read_safetensors(f)
            final = train(tensors, meta)
            moved = max((final[k] - tensors[k].double()).abs().max().item() for k in final)
            ref = {k: subset(v) for k, v in final.items()}
            write_safetensors(out / f"{case}.safetensors", ref,
                              {"torch": torch.__version__, "stride": str(STRIDE),
                               "full_below": str(FULL_BELOW), "dtype": "float64 rounded to float32"})
            print(f"{case}: {meta['loss']} {meta['optimizer']} lr {meta['lr']} x {meta['steps']} steps,"
                  f" largest weight change {moved:.3g}")


if __name__ == "__main__":
    main()
