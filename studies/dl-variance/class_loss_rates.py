#!/usr/bin/env python3
"""How often runs lose classes, with exact intervals, and what that rate makes of a paper's
groups.

Reads detdl_raw.csv exports (`study table` / `report`; one row per run and criterion) and,
per setting, counts the runs of one criterion that lose a class (a class's test accuracy
under --threshold), that lose two or more, and that are weak (overall accuracy under
--weak), each with its exact (Clopper-Pearson) 90% interval. Then, for k in --at-least, the
chance that a --group-run group holds k or more such runs, and that at least one of
--groups independent groups does, at the estimated rate and at the interval's two ends: the
paper's figures are the largest over about two dozen 16-run groups
(../shared/design/VARIANCE.md), so this says whether a published figure is a rare draw at
detdl's rate or needs another rate. `--flagged` lists the runs that lose a class instead
(the seeds to train to the end). studies/dl-variance/lenet-screen.toml is its input.

`--outcomes` checks a screen against the same seeds trained to the end: for each repetition
of `--setting` that the outcome files (another study's detdl_raw.csv or the screen's own,
settings `--outcome-setting`, repeatable, criterion `--outcome-criterion`) also hold, the
classes lost at the screen and at the end, and the end's accuracy; on stderr a summary of
how the two agree, and the end rate over every screened seed taking the screen as necessary
(a seed that keeps every class at the screen keeps them: the summary's "at the end only"
tests it), with the flagged seeds that have no outcome yet named.

  python3 studies/dl-variance/class_loss_rates.py results/detdl_raw.csv
  python3 studies/dl-variance/class_loss_rates.py --flagged results/detdl_raw.csv
  python3 studies/dl-variance/class_loss_rates.py --setting lenet4 \
      --outcomes studies/results/dl-variance-lenet4/store-2026-12-04c/detdl_raw.csv \
      results/detdl_raw.csv
"""
import argparse
import csv
import math
import sys


def log_pmf(i, n, p):
    if p <= 0.0:
        return 0.0 if i == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if i == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) +
            (n - i) * math.log1p(-p))


def binom_cdf(k, n, p):
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(1.0, sum(math.exp(log_pmf(i, n, p)) for i in range(k + 1)))


def at_least(k, n, p):
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    return min(1.0, sum(math.exp(log_pmf(i, n, p)) for i in range(k, n + 1)))


def clopper_pearson(x, n, level=0.90):
    """Exact two-sided interval for a binomial rate: each tail (1 - level) / 2."""
    a = (1.0 - level) / 2.0

    def solve(f, target):  # f increasing in p: the p where f(p) = target, by bisection
        lo, hi = 0.0, 1.0
        for _ in range(200):
            mid = (lo + hi) / 2.0
            if f(mid) < target:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2.0

    # low: P(X >= x | low) = a; high: P(X <= x | high) = a (P(X > x) = 1 - a).
    low = 0.0 if x == 0 else solve(lambda p: at_least(x, n, p), a)
    high = 1.0 if x == n else solve(lambda p: at_least(x + 1, n, p), 1.0 - a)
    return low, high


def read_runs(files, criterion):
    """setting -> repetition -> (overall accuracy, [class accuracies])."""
    runs = {}
    for f in files:
        try:
            fh = open(f, newline="")
        except OSError as e:
            sys.exit(f"{f}: cannot read: {e.strerror}")
        with fh:
            reader = csv.DictReader(fh)
            cols = [c for c in (reader.fieldnames or []) if c.startswith("acc_class_")]
            for need in ("setting", "repetition", "criterion", "test_accuracy"):
                if need not in (reader.fieldnames or []):
                    sys.exit(f"{f}: no '{need}' column: not a detdl_raw.csv")
            if not cols:
                sys.exit(f"{f}: no acc_class_* columns: per-class accuracies are needed")
            for line, r in enumerate(reader, start=2):
                if r["criterion"] != criterion:
                    continue
                try:
                    rep = int(r["repetition"])
                    acc = float(r["test_accuracy"])
                    classes = [float(r[c]) for c in cols if r[c] != ""]
                except ValueError as e:
                    sys.exit(f"{f}:{line}: {e}")
                if any(math.isnan(v) for v in [acc] + classes):
                    sys.exit(f"{f}:{line}: NaN accuracy (setting {r['setting']}, repetition {rep})")
                by_rep = runs.setdefault(r["setting"], {})
                if rep in by_rep and by_rep[rep] != (acc, classes):
                    sys.exit(f"{f}:{line}: repetition {rep} of {r['setting']} appears twice with "
                             "different accuracies")
                by_rep[rep] = (acc, classes)
    if not runs:
        sys.exit(f"no rows with criterion '{criterion}' in {', '.join(files)}")
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="detdl_raw.csv files")
    ap.add_argument("--criterion", default="last")
    ap.add_argument("--threshold", type=float, default=0.10,
                    help="a class is lost under this test accuracy (fraction; default 0.10)")
    ap.add_argument("--weak", type=float, default=0.20,
                    help="a run is weak under this overall accuracy (default 0.20)")
    ap.add_argument("--group", type=int, default=16)
    ap.add_argument("--groups", type=int, default=24)
    ap.add_argument("--at-least", default="1,2,4", help="k values, comma-separated")
    ap.add_argument("--flagged", action="store_true", help="list the runs that lose a class")
    ap.add_argument("--outcomes", action="append", default=[],
                    help="detdl_raw.csv of the same seeds trained to the end (repeatable)")
    ap.add_argument("--setting", help="with --outcomes: the screen's setting")
    ap.add_argument("--outcome-setting", action="append", default=[],
                    help="the outcome files' setting (repeatable: the screen file's own *-50 "
                         "settings and another study's; default default-portable)")
    ap.add_argument("--outcome-criterion", default="best_loss")
    a = ap.parse_args()
    try:
        ks = [int(k) for k in a.at_least.split(",")]
    except ValueError:
        sys.exit(f"--at-least: expected integers separated by commas, got '{a.at_least}'")
    if a.group < 1 or a.groups < 1 or any(k < 1 for k in ks):
        sys.exit("--group, --groups and --at-least must be at least 1")
    runs = read_runs(a.files, a.criterion)
    out = csv.writer(sys.stdout, lineterminator="\n")
    if a.outcomes:
        if a.setting not in runs:
            sys.exit(f"--setting: '{a.setting}' is not among the screen's settings "
                     f"({', '.join(sorted(runs))})")
        outcome_settings = a.outcome_setting or ["default-portable"]
        by_setting = read_runs(a.outcomes, a.outcome_criterion)
        ends = {}
        for name in outcome_settings:
            if name not in by_setting:
                sys.exit(f"--outcome-setting: no rows of '{name}' in {', '.join(a.outcomes)}")
            for rep, value in by_setting[name].items():
                if rep in ends and ends[rep] != value:
                    sys.exit(f"--outcome-setting: repetition {rep} has different outcomes in "
                             f"{', '.join(outcome_settings)}")
                ends[rep] = value
        def lost(classes):
            return sum(v < a.threshold for v in classes)

        out.writerow(["repetition", "classes_lost_screen", "classes_lost_end", "end_accuracy"])
        both = screen_only = end_only = 0
        common = sorted(set(runs[a.setting]) & set(ends))
        for rep in common:
            ls, le = lost(runs[a.setting][rep][1]), lost(ends[rep][1])
            both += ls > 0 and le > 0
            screen_only += ls > 0 and le == 0
            end_only += ls == 0 and le > 0
            out.writerow([rep, ls, le, f"{ends[rep][0]:.4f}"])
        sys.stdout.flush()  # the rows before the summary where both go to one place
        print(f"{len(common)} repetitions in both: {both} lose a class at the screen and at the "
              f"end, {screen_only} at the screen only, {end_only} at the end only",
              file=sys.stderr)
        # The end rate over every screened seed, taking the screen as necessary (a seed that
        # keeps every class at the screen keeps them to the end; end_only above tests it):
        # the flagged seeds' outcomes decide. Flagged seeds without one bound it.
        screened = runs[a.setting]
        flagged = [rep for rep, (_, cl) in screened.items() if lost(cl) > 0]
        missing = [rep for rep in flagged if rep not in ends]
        k = sum(1 for rep in flagged if rep in ends and lost(ends[rep][1]) > 0)
        weak = sum(1 for rep in flagged if rep in ends and ends[rep][0] < a.weak)
        n = len(screened)
        low, high = clopper_pearson(k, n)
        line = (f"end rate, the screen taken as necessary: {k} of {n} screened seeds lose a class "
                f"at the end ({k / n:.4f}, 90% CI {low:.4f}-{high:.4f}), {weak} weak; "
                f"{len(flagged) - len(missing)} of {len(flagged)} flagged seeds have an outcome")
        if missing:
            line += f" (without: {' '.join(str(r) for r in sorted(missing))}; at most {k + len(missing)})"
        print(line, file=sys.stderr)
        return
    if a.flagged:
        out.writerow(["setting", "repetition", "test_accuracy", "classes_lost", "lost"])
        for setting in sorted(runs):
            for rep in sorted(runs[setting]):
                acc, classes = runs[setting][rep]
                lost = [i for i, v in enumerate(classes) if v < a.threshold]
                if lost:
                    out.writerow([setting, rep, f"{acc:.4f}", len(lost),
                                  " ".join(str(i) for i in lost)])
        return
    events = {
        "loses_a_class": lambda acc, cl: sum(v < a.threshold for v in cl) >= 1,
        "loses_2_or_more": lambda acc, cl: sum(v < a.threshold for v in cl) >= 2,
        "weak": lambda acc, cl: acc < a.weak,
    }
    out.writerow(["setting", "event", "runs", "events", "rate", "ci90_low", "ci90_high",
                  "k", f"p_group{a.group}_at_least_k", f"p_any_of_{a.groups}_groups",
                  f"p_any_of_{a.groups}_groups_ci_low", f"p_any_of_{a.groups}_groups_ci_high"])
    for setting in sorted(runs):
        values = list(runs[setting].values())
        n = len(values)
        for name, is_event in events.items():
            x = sum(1 for acc, cl in values if is_event(acc, cl))
            low, high = clopper_pearson(x, n)
            for k in ks:
                def any_group(p):
                    return 1.0 - (1.0 - at_least(k, a.group, p)) ** a.groups
                out.writerow([setting, name, n, x, f"{x / n:.6f}", f"{low:.6f}", f"{high:.6f}",
                              k, f"{at_least(k, a.group, x / n):.6g}",
                              f"{any_group(x / n):.6g}", f"{any_group(low):.6g}",
                              f"{any_group(high):.6g}"])


if __name__ == "__main__":
    main()
