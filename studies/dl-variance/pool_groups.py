#!/usr/bin/env python3
"""16-run groups resampled from the runs of several stores' exports (detdl_raw.csv).

`study table` resamples the runs of one store (group_spread.csv). When a study's runs lie in
several stores that cannot be merged any more (a store lost with its machine, its tables
kept in studies/results/), this pools the exported rows of one setting and draws the same
kind of groups: 16 runs without replacement, and the largest max-min of 24 such groups (the
paper's figure was the largest over about two dozen groups). Repetition numbers must not
repeat across the files (the same repetition in two stores is the same run: it is kept once
and its accuracies must agree).

  python3 studies/dl-variance/pool_groups.py --setting default-portable --published 10.6 \
      studies/results/dl-variance-lenet4/partial-2026-12-04/detdl_raw.csv \
      studies/results/dl-variance-lenet4/store-2026-12-04c/detdl_raw.csv
"""
import argparse
import csv
import random
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="detdl_raw.csv files (study table / report exports)")
    ap.add_argument("--setting", default="default-portable")
    ap.add_argument("--published", type=float, default=None, help="the paper's max-min in %%")
    ap.add_argument("--group", type=int, default=16)
    ap.add_argument("--groups", type=int, default=24)
    ap.add_argument("--draws", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=12)
    a = ap.parse_args()
    acc = {}  # criterion -> repetition -> accuracy in %
    for f in a.files:
        with open(f, newline="") as fh:
            for r in csv.DictReader(fh):
                if r["setting"] != a.setting:
                    continue
                by_rep = acc.setdefault(r["criterion"], {})
                rep, v = int(r["repetition"]), 100.0 * float(r["test_accuracy"])
                if rep in by_rep and by_rep[rep] != v:
                    sys.exit(f"{f}: repetition {rep} ({r['criterion']}) has {v}, another file {by_rep[rep]}")
                by_rep[rep] = v
    if not acc:
        sys.exit(f"no rows of setting '{a.setting}' in {', '.join(a.files)}")
    rng = random.Random(a.seed)
    q = lambda xs, p: sorted(xs)[int(p * (len(xs) - 1))]
    print("criterion,runs,min,max,max_min,weak_under_20,under_90,one_group_median,one_group_p05,"
          "one_group_p95,largest_median,largest_p05,largest_p95,published,share_largest_at_or_below,"
          "share_one_group_at_or_below")
    for crit in ("best_loss", "best_acc"):
        if crit not in acc:
            continue
        v = [acc[crit][k] for k in sorted(acc[crit])]
        if len(v) <= a.group:
            print(f"{crit}: {len(v)} runs, not more than a group of {a.group}", file=sys.stderr)
            continue
        one, big = [], []
        for _ in range(a.draws):
            g = [max(s) - min(s) for s in (rng.sample(v, a.group) for _ in range(a.groups))]
            one.append(g[0])
            big.append(max(g))
        p = a.published
        share = lambda xs: "" if p is None else f"{sum(x <= p for x in xs) / len(xs):.3f}"
        print(f"{crit},{len(v)},{min(v):.2f},{max(v):.2f},{max(v) - min(v):.2f},"
              f"{sum(x < 20 for x in v)},{sum(x < 90 for x in v)},"
              f"{q(one, .5):.2f},{q(one, .05):.2f},{q(one, .95):.2f},"
              f"{q(big, .5):.2f},{q(big, .05):.2f},{q(big, .95):.2f},"
              f"{'' if p is None else p},{share(big)},{share(one)}")


if __name__ == "__main__":
    main()
