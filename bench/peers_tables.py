#!/usr/bin/env python3
"""The tables of bench/peers.sh: reads the outputs it left in OUT and prints the section
of bench/RESULTS.md in Markdown, or (--write FILE) replaces what is between the
<!-- peers:begin --> and <!-- peers:end --> markers of FILE with it.

    peers_tables.py OUT [--write bench/RESULTS.md]

Ratios: a time ratio is detdl's time / the peer's (below 1: detdl faster); a speed ratio
is detdl's speed / the peer's = the peer's time / detdl's (above 1: detdl faster). The
kernel goals (>= 0.8x the vendor library) are speed ratios.
"""
import argparse
import json
import math
import os
import re
import sys

BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"
FIRST_LAYERS = ("lenet5_c1", "lenet1_c1", "resnet20_stem")  # convolutions of the input images


def load_json(path):
    """The JSON object in path, or None when the file is missing or empty."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    with open(path) as f:
        return json.load(f)


def bench_rows(path):
    """Google Benchmark JSON -> {run name without /real_time: (real time in ms, counters) or
    an error string}. With repetitions the median is taken, else the single run."""
    d = load_json(path)
    if d is None:
        return {}
    rows, errors = {}, {}
    for b in d["benchmarks"]:
        name = b.get("run_name", b["name"]).removesuffix("/real_time")
        if b.get("error_occurred"):
            errors[name] = "error: " + b.get("error_message", "?")
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
        rows[name] = (b["real_time"] * scale, b)
    for name, e in errors.items():
        rows.setdefault(name, e)
    return rows


def fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:.{digits}f}"


def ratio(a, b):
    """a / b when both are numbers, else None."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0:
        return a / b
    return None


def geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows]
    return out


def ms(entry):
    return entry[0] if isinstance(entry, tuple) else entry


class Section:
    def __init__(self, out):
        self.out = out
        self.lines = []
        self.machine = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(out, "machine.txt")))
        self.skipped = {}
        path = os.path.join(out, "skipped.txt")
        if os.path.exists(path):
            for line in open(path):
                key, _, why = line.rstrip("\n").partition(": ")
                self.skipped[key] = why
        self.avx512 = self.machine.get("avx512") == "1"
        # Google Benchmark rows: the median of 3 repetitions, or one short run with --quick.
        self.stat = "one short run" if self.machine.get("quick") == "1" else "median of 3"

    def p(self, *lines):
        self.lines.extend(lines)

    def path(self, name):
        return os.path.join(self.out, name)

    def header(self):
        m = self.machine
        # The libraries' own word (bench_gemm / bench_conv write it into their JSON's context)
        # over the package manager's, which may describe another copy than the one loaded.
        for key, name in (("openblas", "gemm.json"), ("onednn", "conv.json")):
            try:
                with open(self.path(name)) as f:
                    ctx = json.load(f).get("context", {})
            except (OSError, ValueError):
                continue
            if ctx.get(key):
                m[key] = re.sub(r"^OpenBLAS ", "", ctx[key].strip())
        self.p(f"- Machine: {m['cpu']}, {m['cpus']} CPUs ({m['threads_per_core']} thread per core"
               + (f", {m['hypervisor']} guest" if m.get("hypervisor") else "") + f"), ISA {m['isa'].strip()}.",
               f"- Date: {m['date']}; commit {m['commit']}; load average at the start {m['load']}.",
               f"- Build: {m['build']}. Peers: OpenBLAS {m['openblas']}, oneDNN {m['onednn']}"
               + (f", PyTorch {m['torch']}" if m.get("torch") else "") + ".",
               f"- Environment: {m['env'].strip() or '(no OPENBLAS_ / ONEDNN_ / OMP_ variables)'}; the native "
               "runs unset OPENBLAS_CORETYPE and ONEDNN_MAX_CPU_ISA.")
        if m.get("quick") == "1":
            self.p("- **--quick run** (a smoke test: single short runs, a small ResNet epoch): not a measurement.")
        self.p("", "Commands (OUT: a temporary folder; T: the thread count, 1 and 2):", "", "```sh",
               "bash bench/peers.sh" + (" --quick" if m.get("quick") == "1" else ""))
        self.p(*[line.rstrip("\n") for line in open(self.path("commands.txt"))])
        self.p("```", "")
        self.p("Ratios: **speed ratio** = detdl's speed / the peer's = the peer's time / detdl's (above 1: "
               "detdl faster; the kernel goal is >= 0.8); **time ratio** = detdl's time / the peer's.", "")

    def gemm(self):
        rows = bench_rows(self.path("gemm.json"))
        avx2 = bench_rows(self.path("gemm_avx2.json"))
        if not rows:
            return
        self.p(f"### GEMM (bench_gemm, GFLOP/s, {self.stat})", "")
        shapes = {0: "512", 1: "1024", 2: "2048", 3: "64 x 576 x 131072 (B^T)"}
        out = []
        for shape, label in shapes.items():
            for t in (1, 2):
                def gf(rs, impl):
                    e = rs.get(f"gemm/{impl}/{shape}/{t}")
                    return e[1].get("GFLOP") if isinstance(e, tuple) else e
                port, fast, blas, blas2 = gf(rows, 0), gf(rows, 1), gf(rows, 2), gf(avx2, 2)
                out.append([label, str(t), port, fast, blas] + ([blas2] if self.avx512 else [])
                           + [ratio(port, blas)] + ([ratio(port, blas2)] if self.avx512 else []) + [ratio(port, fast)])
        head = ["M = N = K", "threads", "detdl portable", "detdl fast", "OpenBLAS"]
        head += ["OpenBLAS (Haswell)"] if self.avx512 else []
        head += ["portable / OpenBLAS"] + (["portable / OpenBLAS (Haswell)"] if self.avx512 else []) + ["portable / fast"]
        self.p(*table(head, out))
        self.p("", "(GFLOP/s ratios are speed ratios. OpenBLAS (Haswell): OPENBLAS_CORETYPE=Haswell, OpenBLAS's AVX2 "
               "kernel; OpenBLAS: its kernel for this CPU.)" if self.avx512 else "(GFLOP/s ratios are speed ratios.)", "")

    def conv(self):
        rows = bench_rows(self.path("conv.json"))
        avx2 = bench_rows(self.path("conv_avx2.json"))
        if not rows:
            return
        self.p(f"### Convolution passes (bench_conv, ms per call, {self.stat})", "")
        if "conv" in self.skipped:
            self.p(f"oneDNN: {self.skipped['conv']}.", "")
        self.p("oneDNN: f32, convolution_direct, layouts its own (format_tag::any; reorders outside the timing); "
               "oneDNN + reorders: the same kernels with the reorders from and back to NCHW / OIHW timed too (what "
               "a caller whose tensors are NCHW pays per call, as PyTorch's CPU convolutions on NCHW tensors do); "
               "oneDNN nchw: forced onto detdl's plain NCHW / OIHW. No bias. Every row's output checked against "
               "the other library's (relative 1e-3)." + (" oneDNN (AVX2): ONEDNN_MAX_CPU_ISA=AVX2, oneDNN limited to AVX2 kernels; oneDNN: its "
                                     "kernels for this CPU." if self.avx512 else ""),
               "")
        keys = [k for k in rows if k.count("/") == 4]
        cases = []
        for k in keys:
            _, shape, pas, impl, t = k.split("/")
            if (shape, pas, t) not in cases:
                cases.append((shape, pas, t))
        out, goal = [], {}
        for shape, pas, t in cases:
            g = lambda rs, impl: ms(rs.get(f"conv/{shape}/{pas}/{impl}/{t}"))
            port, fast, dnn, reo, nchw, dnn2 = (g(rows, "detdl_portable"), g(rows, "detdl_fast"), g(rows, "onednn"),
                                                g(rows, "onednn_reorders"), g(rows, "onednn_nchw"), g(avx2, "onednn"))
            sp = ratio(dnn, port)  # speed ratio: oneDNN time / detdl time
            sp2 = ratio(dnn2, port)
            spr = ratio(reo, port)
            goal.setdefault(pas, []).append(((sp, sp2, spr), shape))
            out.append([shape, pas, t[1:], port, fast, dnn] + ([dnn2] if self.avx512 else []) + [reo, nchw, sp]
                       + ([sp2] if self.avx512 else []) + [spr, ratio(port, dnn), ratio(dnn, fast)])
        head = ["shape", "pass", "threads", "detdl portable", "detdl fast", "oneDNN"]
        head += ["oneDNN (AVX2)"] if self.avx512 else []
        head += ["oneDNN + reorders", "oneDNN nchw", "speed portable / oneDNN"]
        head += ["speed portable / oneDNN (AVX2)"] if self.avx512 else []
        head += ["speed portable / oneDNN + reorders", "time portable / oneDNN", "speed fast / oneDNN"]
        self.p(*table(head, out), "")
        summary = []
        for pas, pairs in goal.items():
            # The first layers' data gradients (C = 1 or 3) are left out: training never needs
            # them (the images need no gradient), and oneDNN's blocked layout pads C to the block.
            pairs = [pr for pr, shape in pairs if not (pas == "bwd_data" and shape in FIRST_LAYERS)]
            native = [a for a, _, _ in pairs if a]
            capped = [b for _, b, _ in pairs if b]
            moved = [c for _, _, c in pairs if c]
            line = [pas, geomean(native), f"{sum(a >= 0.8 for a in native)} of {len(native)}"]
            if self.avx512:
                line += [geomean(capped), f"{sum(b >= 0.8 for b in capped)} of {len(capped)}"]
            line += [geomean(moved), f"{sum(c >= 0.8 for c in moved)} of {len(moved)}"]
            summary.append(line)
        head = ["pass", "speed portable / oneDNN, geometric mean over the rows", "rows >= 0.8"]
        if self.avx512:
            head += ["same against oneDNN (AVX2)", "rows >= 0.8 (AVX2)"]
        head += ["same against oneDNN + reorders", "rows >= 0.8 (+ reorders)"]
        self.p(*table(head, summary), "",
               "(bwd_data of the first layers, " + ", ".join(FIRST_LAYERS) + ", is left out of the summary: training "
               "never needs the images' gradient.)", "")

    def epochs(self, title, files, note):
        """files: [(label, threads, detdl record, torch json, accuracy?)]"""
        out = []
        for label, t, rec, tj, ep in files:
            d, p = load_json(self.path(rec)), load_json(self.path(tj)) if tj else None
            if d is None:
                continue
            e = d["epochs"][ep]
            ds = e["train_seconds"]
            ts = p["epoch_seconds"][0] if p and isinstance(p.get("epoch_seconds"), list) else (
                p["epoch_seconds"] if p else None)
            acc = e.get("test", {}).get("accuracy")
            tacc = p["test_accuracy"][0] if p and "test_accuracy" in p else None
            out.append([label, str(t), ds, ts, ratio(ds, ts), ratio(ts, ds), fmt(acc, 4) if acc is not None else "-",
                        fmt(tacc, 4) if tacc is not None else "-"])
        if not out:
            return
        self.p(f"### {title}", "", note, "")
        self.p(*table(["net", "threads", "detdl (s)", "PyTorch (s)", "time detdl / PyTorch", "speed detdl / PyTorch",
                       "detdl test acc", "PyTorch test acc"], out), "")

    def lenet(self):
        skipped = self.skipped.get("lenet")
        if skipped and "no MNIST" in skipped:
            self.p("### LeNet-5 and LeNet-1 on MNIST", "", f"Skipped: {skipped}.", "")
            return
        files = [(f"LeNet-{v}", t, f"lenet{v}_detdl_t{t}.json", f"lenet{v}_torch_t{t}.json", 0)
                 for v in (5, 1) for t in (1, 2)]
        self.epochs("LeNet-5 and LeNet-1: one epoch on MNIST against PyTorch", files,
                    "60,000 images, batch 128, SGD lr 0.01 without momentum, Glorot-uniform kernels and zero "
                    "biases (detdl `lenet5:keras` / `lenet1:keras` at `portable`; `bench/torch_lenet5.py "
                    "--variant 5|1`). Seconds of the training steps only (evaluation excluded), the first epoch."
                    + (f" PyTorch skipped: {skipped}." if skipped else ""))

    def resnet(self):
        out = []
        for t in (1, 2):
            d, p = load_json(self.path(f"resnet_detdl_t{t}.json")), load_json(self.path(f"resnet_torch_t{t}.json"))
            if d is None:
                continue
            ds = d["epochs"][-1]["train_seconds"]
            rows = d["data"]["train_rows"]
            ts = p["epoch_seconds"] if p else None
            out.append([str(t), ds, ts, ratio(ds, ts), ratio(ts, ds), rows / ds, p["images_per_second"] if p else None])
        if not out:
            return
        images = load_json(self.path("resnet_detdl_t1.json"))["data"]["train_rows"]
        self.p("### ResNet-20: one epoch of CIFAR-shaped generated data against PyTorch", "",
               f"{images} images of 3 x 32 x 32, batch 128, Adam 1e-3 (eps 1e-7), batch norm, no augmentation; "
               "detdl `--net resnet20` at `portable`, its second epoch (the first warms the allocator); PyTorch "
               "`bench/torch_resnet56.py --depth 20 --mode default` (Kaiming-normal init; 'same' padding as PyTorch "
               "pads it, 1 on every side for stride 2), one epoch after a warm-up of up to 20 steps. Training steps only."
               + (f" Skipped: {self.skipped['resnet']}." if "resnet" in self.skipped else ""), "")
        self.p(*table(["threads", "detdl (s)", "PyTorch (s)", "time detdl / PyTorch", "speed detdl / PyTorch",
                       "detdl images/s", "PyTorch images/s"], out), "")

    def butter(self):
        if "butter" in self.skipped and "no PMLB" in self.skipped["butter"]:
            self.p("### BUTTER MLP", "", f"Skipped: {self.skipped['butter']}.", "")
            return
        out = []
        for t in (1, 2):
            d, p = load_json(self.path(f"butter_detdl_t{t}.json")), load_json(self.path(f"butter_torch_t{t}.json"))
            if d is None:
                continue
            epochs = len(d["epochs"])
            ds = sum(e["seconds"] for e in d["epochs"])
            ts = p["seconds"] if p else None
            out.append([str(t), 1e3 * ds / epochs, 1e3 * ts / epochs if ts else None, ratio(ds, ts), ratio(ts, ds)])
        if not out:
            return
        d = load_json(self.path("butter_detdl_t1.json"))
        widths = "-".join(map(str, d["net"]["butter"]["widths"]))
        self.p("### BUTTER MLP: one run against PyTorch", "",
               f"wine_quality_white, rectangle depth 3 size 1024 (widths {widths}), {len(d['epochs'])} epochs, Adam 1e-4 "
               "(Keras form), batch 256, BUTTER's per-epoch metrics on the training batches and the test set; detdl "
               "`train --preset butter` (epoch seconds: training, metrics and test), PyTorch `bench/torch_butter.py "
               "--repetitions 1` (the same work)." + (f" Skipped: {self.skipped['butter']}." if "butter" in self.skipped else ""),
               "")
        self.p(*table(["threads", "detdl (ms/epoch)", "PyTorch (ms/epoch)", "time detdl / PyTorch",
                       "speed detdl / PyTorch"], out), "")

    def levels(self):
        rows = bench_rows(self.path("engine.json"))
        if rows:
            self.p(f"### Levels: training steps (bench_engine_train, ms per step, {self.stat})", "")
            out = []
            for model, bm in (("MLP", "BM_MlpStep"), ("small CNN", "BM_CnnStep")):
                for t in (1, 2):
                    port, fast = ms(rows.get(f"{bm}/{t}/0")), ms(rows.get(f"{bm}/{t}/2"))
                    out.append([model, str(t), port, fast, ratio(port, fast)])
            self.p(*table(["model", "threads", "portable (ms)", "fast (ms)", "time portable / fast"], out), "")
        out = []
        for t in (1, 2):
            recs = [load_json(self.path(f"lenet5_{lv}_t{t}.json")) for lv in ("detdl", "fast", "emulated")]
            if any(r is None for r in recs):
                continue
            port, fast, emu = (r["epochs"][0]["train_seconds"] for r in recs)
            out.append([str(t), port, fast, emu, ratio(port, fast), ratio(emu, port)])
        if out:
            self.p("LeNet-5 epoch on MNIST (as above) at each level; `emulated` with impl seed 1:", "")
            self.p(*table(["threads", "portable (s)", "fast (s)", "emulated (s)", "time portable / fast",
                           "time emulated / portable"], out), "")

    def scaling(self):
        path = self.path("scaling_threads.txt")
        if not os.path.exists(path):
            self.p(f"Scaling: not run ({self.machine['cpus']} CPUs; bench/peers.sh runs it where nproc > 2).", "")
            return
        counts = open(path).read().split()
        self.p("### Scaling with threads", "")
        out = []
        for t in counts:
            d = load_json(self.path(f"lenet5_detdl_t{t}.json"))
            p = load_json(self.path(f"lenet5_torch_t{t}.json"))
            ds = d["epochs"][0]["train_seconds"] if d else None
            ts = p["epoch_seconds"][0] if p else None
            out.append([t, ds, ts, ratio(ds, ts)])
        self.p("LeNet-5 epoch on MNIST:", "", *table(["threads", "detdl (s)", "PyTorch (s)", "time detdl / PyTorch"], out), "")
        rows = bench_rows(self.path("scaling_conv.json"))
        out = []
        for shape in ("lenet5_c2", "resnet20_s1_16"):
            for pas in ("fwd", "bwd_data", "bwd_weight"):
                for t in counts:
                    port = ms(rows.get(f"conv/{shape}/{pas}/detdl_portable/t{t}"))
                    dnn = ms(rows.get(f"conv/{shape}/{pas}/onednn/t{t}"))
                    out.append([shape, pas, t, port, dnn, ratio(dnn, port)])
        self.p("Convolutions (ms per call):", "",
               *table(["shape", "pass", "threads", "detdl portable", "oneDNN", "speed portable / oneDNN"], out), "",
               "(GEMM: bench_gemm registers 1 and 2 threads only, so it has no scaling rows.)", "")

    def build(self):
        self.header()
        self.gemm()
        self.conv()
        self.lenet()
        self.resnet()
        self.butter()
        self.levels()
        self.scaling()
        return "\n".join(self.lines).rstrip("\n") + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the folder bench/peers.sh wrote its outputs to")
    ap.add_argument("--write", metavar="FILE", help="replace the section between the markers of FILE")
    a = ap.parse_args()
    section = Section(a.out).build()
    if not a.write:
        sys.stdout.write(section)
        return 0
    text = open(a.write).read()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        sys.exit(f"{a.write}: expected one {BEGIN} followed by one {END}")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    with open(a.write, "w") as f:
        f.write(head + BEGIN + "\n" + section + END + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
