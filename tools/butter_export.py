#!/usr/bin/env python3
"""A detdl study's BUTTER summary in BUTTER's own shape (issue 13; docs/butter.md).

One row per experiment (a study setting: its repetitions summarised), with the columns of
BUTTER's summary dataset: the experiment's parameters (dataset, shape, depth, size,
learning_rate, batch_size, label_noise, kernel_regularizer, optimizer, epochs, widths,
num_free_parameters, ...), num_runs, and per-epoch arrays of the statistics over the
repetitions for every series: <series>_num_finite, _avg, _stddev, _min, _max, and the
quartiles _q1, _median, _q3 (<series> is train_loss, test_loss, train_accuracy, ...,
test_kullback_leibler_divergence); num is the runs per epoch. The per-run minimum-epoch
statistics are scalars: min_test_loss_epoch_avg, min_test_loss_avg, max_test_accuracy_..., one
group per test series (detdl's names; BUTTER's summary has no column for them).

Inputs: the store (SQLite, for each setting's experiment and net) and the butter_summary.csv
that `detdl study table STORE --out DIR` writes (the statistics). Output:
  --format parquet  Hive-partitioned Parquet under OUT, partitioned as BUTTER's (dataset,
                    shape, learning_rate, batch_size, kernel_regularizer, label_noise, depth,
                    epochs); needs pyarrow (scripts/setup-parquet.sh installs it into
                    .venv-parquet: run this script with .venv-parquet/bin/python).
  --format csv      OUT as one CSV file, arrays as JSON text; the standard library only.

Example:
  build/detdl study table butter.sqlite --out tables/
  .venv-parquet/bin/python tools/butter_export.py --store butter.sqlite \\
      --summary tables/butter_summary.csv --out butter-parquet/
"""
import argparse
import csv
import hashlib
import json
import math
import sqlite3
import struct
import sys
import zlib

PARTITIONS = ["dataset", "shape", "learning_rate", "batch_size", "kernel_regularizer",
              "label_noise", "depth", "epochs"]
STATS = [("num_finite", "finite"), ("avg", "mean"), ("stddev", "std"), ("min", "min"),
         ("max", "max"), ("q1", "q1"), ("median", "median"), ("q3", "q3")]


def fail(msg):
    sys.exit(f"butter_export: {msg}")


def f32(x):
    """x rounded to float32 and written with the fewest digits that round back to it."""
    v = struct.unpack("f", struct.pack("f", float(x)))[0]
    for p in range(1, 10):
        s = f"{v:.{p}g}"
        if struct.unpack("f", struct.pack("f", float(s)))[0] == v:
            return float(s)
    return v


def unpack_text(blob, where):
    """The store's packed text: 8-byte little-endian length, then zlib."""
    if blob is None or len(blob) < 8:
        fail(f"{where}: record blob missing or shorter than its header")
    n = int.from_bytes(blob[:8], "little")
    text = zlib.decompress(blob[8:])
    if len(text) != n:
        fail(f"{where}: record is {len(text)} bytes, its header says {n}")
    return text.decode()


def experiments(store):
    """setting -> (experiment JSON, one record, number of runs) from the store."""
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        rows = db.execute("SELECT setting, key, experiment_json, record_json FROM runs "
                          "ORDER BY setting, repetition").fetchall()
    except sqlite3.Error as e:
        fail(f"{store}: not a detdl store ({e})")
    out = {}
    for setting, key, exp, rec in rows:
        if setting not in out:
            out[setting] = [json.loads(exp), json.loads(unpack_text(rec, f"{store} run {key}")), 0]
        out[setting][2] += 1
    if not out:
        fail(f"{store}: no runs")
    return out


def read_summary(path):
    """setting -> {"epochs": {series: {epoch: row}}, "extrema": {name: row}}."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            need = {"setting", "epoch", "series", "count", "finite", "min", "max", "mean", "std",
                    "q1", "median", "q3"}
            if not reader.fieldnames or not need <= set(reader.fieldnames):
                fail(f"{path}: not a butter_summary.csv (columns {reader.fieldnames})")
            out = {}
            for row in reader:
                s = out.setdefault(row["setting"], {"epochs": {}, "extrema": {}})
                if row["epoch"] == "":
                    s["extrema"][row["series"]] = row
                else:
                    s["epochs"].setdefault(row["series"], {})[int(row["epoch"])] = row
            return out
    except OSError as e:
        fail(f"{path}: {e}")


def num(text):
    return float("nan") if text in ("", "nan", "NaN") else float(text)


def row_of(setting, exp, rec, runs, summary):
    net = exp["net"].split(":")
    if len(net) != 4 or net[0] != "butter":
        fail(f"setting {setting}: net {exp['net']} is not a BUTTER net")
    l1, l2 = f32(exp.get("l1", 0.0)), f32(exp.get("l2", 0.0))
    regularizer = "L1" if l1 > 0 else "L2" if l2 > 0 else None
    opt = exp.get("optimizer", {})
    form = {k: v for k, v in exp.items() if k != "seeds"}
    butter = rec.get("net", {}).get("butter", {})
    row = {
        "experiment_id": int(hashlib.sha1(json.dumps(form, sort_keys=True).encode()).hexdigest()[:8], 16),
        "detdl_setting": setting,
        "activation": "relu",
        "batch_size": int(exp["batch_size"]),
        "dataset": exp["data"].removeprefix("pmlb:"),
        "depth": int(net[2]),
        "early_stopping": None,
        "epochs": int(exp["epochs"]),
        # BUTTER writes null here; a partition column of nulls cannot be read back (no type),
        # so detdl writes "none" and keeps kernel_regularizer.type null.
        "kernel_regularizer": regularizer or "none",
        "kernel_regularizer.l1": l1,
        "kernel_regularizer.l2": l2,
        "kernel_regularizer.type": None if regularizer is None else regularizer.lower(),
        "label_noise": f32(exp.get("label_noise", 0.0)),
        "learning_rate": f32(exp["schedule"]["lr"]),
        "optimizer": opt.get("kind", "sgd"),
        "output_activation": "softmax" if rec.get("loss") == "softmax_ce" else "sigmoid",
        "shape": net[1],
        "size": int(net[3]),
        "task": rec.get("data", {}).get("task"),
        "test_split": 0.2,
        "test_split_method": "shuffled_train_test_split",
        "num_free_parameters": int(butter.get("params", rec.get("net", {}).get("parameters", 0))),
        "widths": [int(w) for w in butter.get("widths", [])],
        "num_runs": runs,
    }
    epochs = summary["epochs"]
    if "test_loss" not in epochs:
        fail(f"setting {setting}: no test_loss series in the summary")
    last = max(epochs["test_loss"])
    if sorted(epochs["test_loss"]) != list(range(1, last + 1)):
        fail(f"setting {setting}: test_loss epochs are not 1..{last}")
    row["num"] = [int(epochs["test_loss"][e]["count"]) for e in range(1, last + 1)]
    for series in sorted(epochs):
        if series == "seconds":
            continue
        by_epoch = epochs[series]
        for name, col in STATS:
            values = [num(by_epoch[e][col]) if e in by_epoch else float("nan")
                      for e in range(1, last + 1)]
            if name == "num_finite":
                values = [0 if math.isnan(v) else int(v) for v in values]
            row[f"{series}_{name}"] = values
    for name, r in sorted(summary["extrema"].items()):
        for stat, col in STATS:
            row[f"{name}_{stat}"] = num(r[col])
    return row


def write_csv(rows, out):
    cols = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in rows:
            w.writerow([json.dumps(r.get(c)) if isinstance(r.get(c), list) else
                        "" if r.get(c) is None else r.get(c) for c in cols])


def write_parquet(rows, out):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        fail("pyarrow is not installed here: run scripts/setup-parquet.sh and use "
             ".venv-parquet/bin/python, or --format csv")
    fields = []
    for c in rows[0]:
        v = next((r[c] for r in rows if r.get(c) is not None), None)
        if isinstance(v, list):
            t = pa.list_(pa.float32() if any(isinstance(x, float) for r in rows for x in r[c])
                         else pa.uint32())
        elif isinstance(v, bool):
            t = pa.bool_()
        elif isinstance(v, int):
            t = pa.uint64() if c in ("experiment_id", "size", "num_free_parameters") else pa.uint32()
        elif isinstance(v, float):
            t = pa.float32()
        else:
            t = pa.string()
        fields.append(pa.field(c, t))
    table = pa.Table.from_pylist(rows, schema=pa.schema(fields))
    pq.write_to_dataset(table, root_path=out, partition_cols=PARTITIONS)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="the study's SQLite store")
    ap.add_argument("--summary", required=True, help="butter_summary.csv from `detdl study table`")
    ap.add_argument("--out", required=True, help="Parquet root folder, or the CSV file")
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    a = ap.parse_args()
    exps = experiments(a.store)
    summary = read_summary(a.summary)
    missing = sorted(set(exps) - set(summary))
    if missing:
        fail(f"{a.summary} has no rows for settings {missing} of {a.store} (a table of another store?)")
    rows = [row_of(s, *exps[s], summary[s]) for s in sorted(exps)]
    (write_parquet if a.format == "parquet" else write_csv)(rows, a.out)
    print(f"butter_export: {len(rows)} experiments -> {a.out} ({a.format})")


if __name__ == "__main__":
    main()
