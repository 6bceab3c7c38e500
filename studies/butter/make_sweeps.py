#!/usr/bin/env python3
"""Writes BUTTER's sweeps (../shared/design/BUTTER.md, "The sweeps") as study files.

One file per sweep, or per hypercube where a sweep has several (label noise: one at lr 1e-3,
one at lr 1e-4; regularization: L1 and L2 apart; optimizer: Adam, and SGD / RMSprop with
momentum). Each file's [grid] has every axis of its sweep; `detdl study plan FILE --summary`
counts it, `--grid AXIS=V1,V2` runs a slice. Run from anywhere: python3 make_sweeps.py
"""
import os

ALL13 = ["529_pollen", "connect_4", "537_houses", "pmlb:mnist", "201_pol", "sleep",
         "wine_quality_white", "nursery", "adult", "505_tecator", "294_satellite_image",
         "splice", "banana"]
CORE7, CORE9 = ALL13[:7], ALL13[:9]
ALL8 = ["rectangle", "trapezoid", "exponential", "wide_first_2x", "rectangle_residual",
        "wide_first_4x", "wide_first_8x", "wide_first_16x"]
CORE4 = ALL8[:4]
D14 = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20]
D13 = [d for d in D14 if d != 6]
D8 = [2, 3, 4, 5, 7, 8, 9, 10]
REG = [0, 0.32, 0.16, 0.08, 0.04, 0.02, 0.01, 0.005, 0.0025, 0.00125, 0.000625, 0.0003125,
       0.00015625, 7.8125e-5]


def sizes(a, b):
    return [2 ** k for k in range(a, b + 1)]


def toml_list(v):
    return "[" + ", ".join(f'"{x}"' if isinstance(x, str) else repr(x) for x in v) + "]"


def sweep(name, about, reps, datasets, shapes, size_range, depths, epochs=3000, extra=None,
          experiment=None):
    grid = {"data": datasets, "butter.shape": shapes, "butter.size": sizes(*size_range),
            "butter.depth": depths}
    grid.update(extra or {})
    lines = [f"# BUTTER's {about} (../shared/design/BUTTER.md). Written by make_sweeps.py.",
             "#",
             f"#   detdl study plan studies/butter/{name}.toml --summary      # what it asks for",
             f"#   detdl study run studies/butter/{name}.toml --grid data=wine_quality_white \\",
             "#       --grid butter.shape=rectangle --grid butter.size=1024,2048   # a slice",
             "#",
             "# The README's 20% size rule is not applied (the published data breaks it; the",
             "# summary counts the nets past it). Add [conformance] max_size_distance = 0.2 to",
             "# leave them out.",
             f'name = "butter-{name}"',
             f"repetitions = {reps}",
             'selection = ["last"]',
             "",
             "[experiment]",
             'preset = "butter"',
             f"epochs = {epochs}"]
    for k, v in (experiment or {}).items():
        lines.append(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"')
    lines += ["", "[grid]"]
    for k, v in grid.items():
        key = f'"{k}"' if "." in k else k
        lines.append(f"{key} = {toml_list(v)}")
    lines += ["", "[[setting]]", 'name = "seeds-varied"', 'vary = ["all"]', ""]
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".toml"), "w") as f:
        f.write("\n".join(lines))


sweep("primary", "primary sweep", 30, ALL13, ALL8, (5, 25), D14)
sweep("epochs-300", "300-epoch sweep (10 repetitions for rectangle, 0-10 for the others)",
      10, CORE7, CORE4, (25, 27), D14, epochs=300)
sweep("epochs-30k", "30k-epoch sweep (10 repetitions for rectangle, 0-10 for the others)",
      10, CORE7, CORE4, (5, 18), D14, epochs=30000)
sweep("learning-rate", "learning-rate sweep", 20, CORE9, CORE4, (5, 24), D13,
      extra={"schedule.lr": [1e-2, 1e-3, 1e-4, 1e-5]})
sweep("label-noise-lr1e-3", "label-noise sweep, its lr 1e-3 hypercube", 30, CORE7, CORE4,
      (5, 24), D13, extra={"label_noise": [0, 0.05]}, experiment={"schedule.lr": 1e-3})
sweep("label-noise-lr1e-4", "label-noise sweep, its lr 1e-4 hypercube", 30, CORE7, CORE4,
      (5, 24), D13, extra={"label_noise": [0, 0.05, 0.1, 0.15, 0.2]})
sweep("batch-size", "batch-size sweep", 30, CORE9, ["rectangle"], (5, 24), D8,
      extra={"batch_size": [32, 64, 128, 256, 512, 1024]})
sweep("regularization-l1", "regularization sweep, L1 (kernels only)", 30, CORE9, ["rectangle"],
      (5, 25), D8, extra={"l1": REG})
sweep("regularization-l2", "regularization sweep, L2 (kernels only)", 30, CORE9, ["rectangle"],
      (5, 25), D8, extra={"l2": REG})
sweep("optimizer-adam", "optimizer sweep, Adam", 20, ALL13, ["rectangle"], (5, 24),
      [2, 3, 4, 5, 6], extra={"schedule.lr": [1e-2, 1e-3, 1e-4, 1e-5],
                              "batch_size": [32, 64, 128, 256]})
sweep("optimizer-sgd-rmsprop", "optimizer sweep, SGD and RMSprop with momentum 0 and 0.9", 20,
      ALL13, ["rectangle"], (5, 24), [2, 3, 4, 5, 6],
      extra={"optimizer.kind": ["sgd", "rmsprop"], "optimizer.momentum": [0, 0.9],
             "schedule.lr": [1e-2, 1e-3, 1e-4, 1e-5], "batch_size": [32, 64, 128, 256]})
