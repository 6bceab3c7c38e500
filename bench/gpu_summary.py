#!/usr/bin/env python3
"""Summary of tests/gpu/device-check.sh's folder: the steps, then the ratios to quote.

    python3 bench/gpu_summary.py OUT_DIR

Reads OUT_DIR/steps.txt, machine.txt, run-full.log (tests/gpu/run.sh's table),
bench_gpu_kernels.json (Google Benchmark) and resnet56.jsonl; prints plain text:
- SGEMM GFLOP/s per size and implementation, and detdl portable / cuBLAS FP32 (the goal is
  >= 0.8 at 4096^3);
- conv passes: detdl portable against cuDNN with deterministic algorithms (repeatable) and
  its fastest ones, and portable / fast;
- the ResNet-56 epoch: detdl portable and fast against PyTorch deterministic and default.
Missing inputs are reported as missing, never invented.
"""
import json
import os
import sys


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def bench_rows(path):
    text = read(path)
    if text is None:
        return None
    rows = []
    for b in json.loads(text).get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        gflops = b.get("GFLOP")
        if gflops is None and b.get("GFLOP/s") is not None:
            gflops = b["GFLOP/s"] / 1e9  # before 2026-12-04 the counter held FLOP/s
        rows.append((b["name"], b.get("label", ""), gflops))
    return rows


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gpu_summary.py OUT_DIR")
    out = sys.argv[1]
    print("# device check", "(tests/gpu/device-check.sh)")
    print(read(os.path.join(out, "machine.txt")) or "machine.txt: missing")
    print("## steps")
    print(read(os.path.join(out, "steps.txt")) or "steps.txt: missing")
    run = read(os.path.join(out, "run-full.log"))
    if run and "test group" in run:
        print("## tests/gpu/run.sh")
        print(run[run.index("test group"):].strip())
        print()

    rows = bench_rows(os.path.join(out, "bench_gpu_kernels.json"))
    print("## kernels (GFLOP/s)")
    if rows is None:
        print("bench_gpu_kernels.json: missing")
    else:
        sgemm = {}
        conv = {}
        for name, label, gflops in rows:
            args = name.split("/")
            if args[0] == "BM_sgemm" and gflops:
                sgemm.setdefault(int(args[1]), {})[label] = gflops
            elif args[0] == "BM_conv" and gflops:
                shape = "N%s C%s HW%s O%s" % tuple(args[1:5])
                pass_name, impl = label.split(" ", 1)
                conv.setdefault((shape, pass_name), {})[impl] = gflops
        for n in sorted(sgemm):
            r = sgemm[n]
            line = "sgemm %5d^3: " % n + ", ".join("%s %.0f" % (k, v) for k, v in sorted(r.items()))
            if "portable" in r and "cublas-fp32" in r:
                line += "; portable / cuBLAS FP32 = %.2f" % (r["portable"] / r["cublas-fp32"])
            print(line)
        for (shape, p), r in sorted(conv.items()):
            line = "conv %-22s %-5s: " % (shape, p) + ", ".join(
                "%s %.0f" % (k, v) for k, v in sorted(r.items()))
            if "portable" in r and "cudnn-repeatable" in r:
                line += "; portable / cuDNN det = %.2f" % (r["portable"] / r["cudnn-repeatable"])
            if "portable" in r and "fast" in r:
                line += "; fast / portable = %.2f" % (r["fast"] / r["portable"])
            print(line)
    print()

    print("## SGEMM versions (kernels/cuda/dev/sgemm.cu)")
    print((read(os.path.join(out, "dev_sgemm.log")) or "dev_sgemm.log: missing").strip())
    print()
    print("## convolution versions (kernels/cuda/dev/conv.cu)")
    print((read(os.path.join(out, "dev_conv.log")) or "dev_conv.log: missing").strip())
    print()

    print("## ResNet-56 epoch (seconds)")
    text = read(os.path.join(out, "resnet56.jsonl"))
    if not text:
        print("resnet56.jsonl: missing")
    else:
        epochs = {}
        for line in text.splitlines():
            r = json.loads(line)
            key = "%s %s" % (r.get("framework"), r.get("level") or r.get("mode"))
            epochs[key] = r.get("epoch_seconds")
            print("%-26s %8.2f s  %8.0f images/s" % (key, r.get("epoch_seconds", float("nan")),
                                                     r.get("images_per_second", float("nan"))))
        for mine in ("detdl portable", "detdl fast"):
            for peer in [k for k in epochs if not k.startswith("detdl")]:
                if epochs.get(mine) and epochs.get(peer):
                    print("time %s / %s = %.2f" % (mine, peer, epochs[mine] / epochs[peer]))
    # The verdict is device-check.sh's (its last line); this summary only reports.
    return 0


if __name__ == "__main__":
    sys.exit(main())
