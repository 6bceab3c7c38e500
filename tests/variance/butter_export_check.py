#!/usr/bin/env python3
"""Checks tools/butter_export.py's output against the butter_summary.csv it came from
(tests/variance/test_butter_export.cpp runs it): one row per setting, BUTTER's partitions
and columns, per-epoch arrays as long as the runs' epochs, every statistic equal to the
CSV's (as float32 in Parquet). Reads Parquet with pandas, the CSV form with the standard
library. Exits non-zero with a message on the first difference.

usage: butter_export_check.py {parquet|csv} OUT SUMMARY_CSV EPOCHS SETTINGS
"""
import csv
import json
import math
import struct
import sys

fmt, out, summary_csv, epochs, settings = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])


def f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def same(a, b):
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


summary = {}
with open(summary_csv, newline="") as f:
    for r in csv.DictReader(f):
        if r["epoch"]:
            summary[(r["setting"], r["series"], int(r["epoch"]))] = r

if fmt == "parquet":
    import pandas as pd
    df = pd.read_parquet(out)
    rows = df.to_dict("records")
    for part in ["dataset", "shape", "learning_rate", "batch_size", "kernel_regularizer",
                 "label_noise", "depth", "epochs"]:
        assert part in df.columns, f"partition column {part} missing"
    import glob
    files = glob.glob(f"{out}/dataset=*/shape=*/learning_rate=*/batch_size=*/kernel_regularizer=*/"
                      "label_noise=*/depth=*/epochs=*/*.parquet")
    parts = {tuple(str(r[c]) for c in ["dataset", "shape", "learning_rate", "batch_size",
                                      "kernel_regularizer", "label_noise", "depth", "epochs"])
             for r in rows}
    assert len(files) == len(parts) >= 1, f"{len(files)} partition files for {len(parts)} partitions"
else:
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            if v.startswith("["):
                r[k] = json.loads(v)

assert len(rows) == settings, f"{len(rows)} rows, expected {settings}"
for r in rows:
    s = r["detdl_setting"]
    assert int(r["num_runs"]) > 0
    assert len(r["num"]) == epochs, f"{s}: num has {len(r['num'])} epochs"
    for series in ["test_loss", "train_loss", "test_accuracy", "test_kullback_leibler_divergence",
                   "train_mean_squared_error"]:
        for stat, col in [("avg", "mean"), ("stddev", "std"), ("min", "min"), ("max", "max"),
                          ("q1", "q1"), ("median", "median"), ("q3", "q3"), ("num_finite", "finite")]:
            values = list(r[f"{series}_{stat}"])
            assert len(values) == epochs, f"{s}: {series}_{stat} has {len(values)} epochs"
            for e in range(1, epochs + 1):
                want = summary[(s, series, e)][col]
                want = f32(want) if fmt == "parquet" and stat != "num_finite" else float(want)
                assert same(values[e - 1], want), f"{s}: {series}_{stat}[{e}] {values[e - 1]} != {want}"
    assert float(r["min_test_loss_epoch_avg"]) >= 1
    assert list(r["widths"]), f"{s}: no widths"
print(f"butter_export_check: {len(rows)} rows of {epochs} epochs match {summary_csv}")
