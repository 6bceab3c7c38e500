#!/usr/bin/env python3
"""The per-epoch median test loss of each size with its quartile band, from the
butter_summary.csv of `detdl study table` (docs/butter.md, "MNIST rectangle depth 3").

Writes PNG (matplotlib) and a CSV of each setting's epoch of the minimum median test loss,
that minimum, and the runs per epoch; prints the same.

usage: plot_curve.py SUMMARY_CSV OUT_PREFIX [--series test_loss]
"""
import argparse
import csv
import math
import re
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary")
    ap.add_argument("out_prefix")
    ap.add_argument("--series", default="test_loss")
    a = ap.parse_args()
    curves = {}
    try:
        with open(a.summary, newline="") as f:
            for r in csv.DictReader(f):
                if r["series"] != a.series or not r["epoch"]:
                    continue
                c = curves.setdefault(r["setting"], [])
                c.append((int(r["epoch"]), float(r["q1"]), float(r["median"]), float(r["q3"]),
                          int(r["count"])))
    except (OSError, KeyError, ValueError) as e:
        sys.exit(f"plot_curve: {a.summary}: {e}")
    if not curves:
        sys.exit(f"plot_curve: {a.summary}: no {a.series} rows")

    def size_of(setting):
        m = re.search(r"butter\.size=(\d+)", setting)
        return int(m.group(1)) if m else 0

    rows = []
    for setting in sorted(curves, key=size_of):
        c = sorted(curves[setting])
        finite = [x for x in c if not math.isnan(x[2])]
        best = min(finite, key=lambda x: (x[2], x[0]))
        rows.append({"setting": setting, "size": size_of(setting), "epochs": len(c),
                     "runs": min(x[4] for x in c), "min_median_epoch": best[0],
                     "min_median": best[2], "last_median": c[-1][2]})
    with open(a.out_prefix + "_min_epoch.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print(f"size {r['size']:>7}: {r['runs']} runs x {r['epochs']} epochs; minimum median "
              f"{a.series} {r['min_median']:.5f} at epoch {r['min_median_epoch']}; "
              f"last {r['last_median']:.5f}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    for setting in sorted(curves, key=size_of):
        c = sorted(curves[setting])
        e = [x[0] for x in c]
        line, = ax.plot(e, [x[2] for x in c], label=f"size {size_of(setting)} ({min(x[4] for x in c)} runs)")
        ax.fill_between(e, [x[1] for x in c], [x[3] for x in c], alpha=0.25, color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{a.series} (median, quartile band)")
    ax.set_title("BUTTER mnist / rectangle / depth 3 (detdl, portable)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out_prefix + ".png", dpi=120)
    print(f"plot_curve: {a.out_prefix}.png, {a.out_prefix}_min_epoch.csv")


if __name__ == "__main__":
    main()
