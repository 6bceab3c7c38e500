#!/usr/bin/env python3
"""One picture per net from `detdl twin` CSVs (scripts/instability.sh): the relative L2
distance between paired runs over the steps, log scale, one line per pair.

    python3 scripts/plot_twins.py DIR     # reads DIR/<net>-<pair>.csv, writes DIR/<net>.png
"""
import csv
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(folder):
    by_net = defaultdict(dict)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".csv") or "-" not in name:
            continue
        net, pair = name[:-4].split("-", 1)
        with open(os.path.join(folder, name)) as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise SystemExit(f"{name}: no rows")
        by_net[net][pair] = [(int(r["step"]), float(r["relative"])) for r in rows]
    if not by_net:
        raise SystemExit(f"{folder}: no <net>-<pair>.csv files")
    for net, pairs in by_net.items():
        fig, ax = plt.subplots(figsize=(8, 5))
        for pair, pts in sorted(pairs.items()):
            # Steps at which the twins are still bit-identical have distance 0: not drawn.
            xs = [s for s, d in pts if d > 0 and s > 0]
            ys = [d for s, d in pts if d > 0 and s > 0]
            style = {"one-ulp": dict(lw=2.5, color="black"),
                     "one-ulp-2": dict(lw=2.5, ls=":", color="black"),
                     "seeds": dict(lw=2.5, ls="--", color="grey"),
                     "all": dict(lw=2.0, color="tab:red")}.get(pair, dict(lw=1.2))
            ax.plot(xs, ys, label=pair, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("||w_a - w_b|| / ||w_a||")
        ax.set_title(f"{net}: twin runs' weight distance over the steps")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
        fig.tight_layout()
        fig.savefig(os.path.join(folder, f"{net}.png"), dpi=110)
        plt.close(fig)
        print(f"wrote {os.path.join(folder, net + '.png')}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
