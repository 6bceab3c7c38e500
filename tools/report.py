#!/usr/bin/env python3
"""Draws a study's pictures from the CSV files `detdl report` writes, and one HTML page.

    report.py OUT_DIR STUDY_NAME

Reads OUT_DIR/{detdl_result,detdl_raw,butter_summary,divergence,implementation_spread,monitor}.csv
and table.txt; writes OUT_DIR/{accuracy_spread,loss_spread,class_spread,loss_curves,divergence,monitor}.png
(accuracy_spread for classification settings, loss_spread for regression ones) and
OUT_DIR/index.html. Needs matplotlib (Debian: python3-matplotlib); nothing else.

The draw_* functions return the figure without saving it, so tests can look at its axes
(tests/variance/report_ticks_test.py).
"""
import csv
import html
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(text):
    try:
        return float(text) if text not in ("", None) else math.nan
    except ValueError:
        return math.nan


def ordered_settings(rows):
    seen = []
    for r in rows:
        if r["setting"] not in seen:
            seen.append(r["setting"])
    return seen


IDENTICAL_NOTE = "hashes differ,\nmetric identical"


def finite(values):
    return [v for v in values if not math.isnan(v) and not math.isinf(v)]


def is_regression_row(r):
    return r.get("regression", "0") == "1"


def draw_metric_spread(raw, column, scale, ylabel):
    """Every run's `column` per setting, one panel per selection criterion.

    Values that are not finite (diverged runs) are left out and counted under the setting's
    name. A setting whose runs have different final hashes but one value gets a note: a
    zero spread is never shown without saying that the weights differ.
    """
    criteria = [c for c in ("best_loss", "best_acc", "last") if any(r["criterion"] == c for r in raw)]
    settings = ordered_settings(raw)
    fig, axes = plt.subplots(1, len(criteria), figsize=(4.5 * len(criteria), 4), squeeze=False, sharey=True)
    for ax, crit in zip(axes[0], criteria):
        rows = [[r for r in raw if r["setting"] == s and r["criterion"] == crit] for s in settings]
        all_values = [[scale * num(r[column]) for r in rs] for rs in rows]
        data = [finite(v) for v in all_values]
        ax.boxplot([d if d else [math.nan] for d in data], showfliers=False)
        labels = []
        for i, (ys, rs, every) in enumerate(zip(data, rows, all_values), start=1):
            # Runs as points, spread sideways by rank so identical values stay visible as one dot.
            ax.scatter([i + 0.08 * ((k % 5) - 2) for k in range(len(ys))], ys, s=14, alpha=0.7, zorder=3)
            hashes = {r["weight_hash"] for r, v in zip(rs, every) if not math.isnan(v) and not math.isinf(v)}
            if len(ys) > 1 and max(ys) == min(ys) and len(hashes) > 1:
                ax.annotate(IDENTICAL_NOTE, (i, ys[0]), textcoords="offset points", xytext=(0, 8), ha="center",
                            fontsize=7)
            left_out = len(every) - len(ys)
            labels.append(settings[i - 1] + (f"\n({left_out} not finite, left out)" if left_out else ""))
        ax.set_title(f"selection: {crit}")
        ax.set_xticks(range(1, len(settings) + 1))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def save(fig, out, name):
    fig.savefig(os.path.join(out, name), dpi=110)
    plt.close(fig)


def accuracy_spread(raw, out):
    """Test accuracy of every classification run, per setting and criterion."""
    rows = [r for r in raw if not is_regression_row(r)]
    if not rows:
        return False
    save(draw_metric_spread(rows, "test_accuracy", 100, "test accuracy (%)"), out, "accuracy_spread.png")
    return True


def loss_spread(raw, out):
    """Test loss (MSE) of every regression run: what a regression user compares."""
    rows = [r for r in raw if is_regression_row(r)]
    if not rows:
        return False
    save(draw_metric_spread(rows, "test_loss", 1, "test loss (MSE)"), out, "loss_spread.png")
    return True


def draw_class_spread(raw):
    """Per-class max - min test accuracy over the runs of each setting (last epoch).

    Each class's bars are centred on its tick, and every class has a tick."""
    rows = [r for r in raw if r["criterion"] == "last"] or raw
    classes = sorted({int(k.split("_")[-1]) for k in rows[0] if k.startswith("acc_class_")}) if rows else []
    if not classes:
        return None
    settings = ordered_settings(rows)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(classes) * len(settings) / 2), 4))
    width = 0.8 / max(1, len(settings))
    for j, s in enumerate(settings):
        gaps = []
        for c in classes:
            vals = finite([num(r[f"acc_class_{c}"]) for r in rows if r["setting"] == s])
            gaps.append(100 * (max(vals) - min(vals)) if vals else math.nan)
        offset = (j - (len(settings) - 1) / 2) * width
        ax.bar([c + offset for c in classes], gaps, width=width, label=s)
    ax.set_xticks(classes)
    ax.set_xticklabels([str(c) for c in classes])
    ax.set_xlabel("class")
    ax.set_ylabel("max - min test accuracy over runs (%)")
    ax.set_title("per-class spread (last epoch)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def class_spread(raw, out):
    fig = draw_class_spread(raw)
    if fig is None:
        return False
    save(fig, out, "class_spread.png")
    return True


def draw_loss_curves(summary):
    """Median train/test loss per epoch with the q1-q3 band, per setting."""
    rows = [r for r in summary if r["epoch"] not in ("", None)]
    series = [s for s in ("train_loss", "test_loss", "validation_loss") if any(r["series"] == s for r in rows)]
    if not series:
        return None
    settings = ordered_settings(rows)
    fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 4), squeeze=False)
    for ax, name in zip(axes[0], series):
        for s in settings:
            pts = sorted((int(r["epoch"]), num(r["q1"]), num(r["median"]), num(r["q3"]))
                         for r in rows if r["setting"] == s and r["series"] == name)
            if not pts:
                continue
            e = [p[0] for p in pts]
            line, = ax.plot(e, [p[2] for p in pts], label=s)
            ax.fill_between(e, [p[1] for p in pts], [p[3] for p in pts], alpha=0.2, color=line.get_color())
        ax.set_title(name.replace("_", " ") + " (median, q1-q3)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loss_curves(summary, out):
    fig = draw_loss_curves(summary)
    if fig is None:
        return False
    save(fig, out, "loss_curves.png")
    return True


def draw_divergence(div):
    """Distinct weight states among a setting's runs after each step."""
    if not div:
        return None
    settings = ordered_settings(div)
    fig, ax = plt.subplots(figsize=(7, 4))
    styles = ["-", "--", ":", "-."]
    for i, s in enumerate(settings):
        pts = [(int(r["step"]), int(r["distinct_states"])) for r in div if r["setting"] == s]
        # Settings often share a count (e.g. every run distinct): dashes and widths keep
        # each line visible where they overlap.
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", label=s,
                linestyle=styles[i % len(styles)], linewidth=max(0.8, 2.6 - 0.6 * i))
    ax.set_xlabel("step")
    ax.set_ylabel("distinct weight states among the runs")
    # Steps and state counts are whole numbers.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("divergence over steps (1 = all runs bit-identical)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def divergence(div, out):
    fig = draw_divergence(div)
    if fig is None:
        return False
    save(fig, out, "divergence.png")
    return True


def draw_monitor(rows):
    """The training monitor's probes (monitor.csv): per setting, the median over runs of each
    weight tensor's gradient norm (log scale) and of each activation layer's dead-unit share,
    per probed epoch."""
    if not rows:
        return None
    settings = ordered_settings(rows)
    fig, axes = plt.subplots(len(settings), 2, figsize=(11, 3.2 * len(settings)), squeeze=False)
    for i, setting in enumerate(settings):
        mine = [r for r in rows if r["setting"] == setting]
        for col, (kind, field, label) in enumerate(
            [("param", "grad_norm", "gradient norm (median over runs)"),
             ("activation", "dead", "dead-unit share (median over runs)")]
        ):
            ax = axes[i][col]
            series = {}
            for r in mine:
                if r["kind"] != kind or (kind == "param" and not r["name"].endswith("weight")):
                    continue
                v = num(r[field])
                if v is None or not math.isfinite(v):
                    continue
                series.setdefault(r["name"], {}).setdefault(int(r["epoch"]), []).append(v)
            for name, by_epoch in series.items():
                epochs = sorted(by_epoch)
                med = [sorted(by_epoch[e])[len(by_epoch[e]) // 2] for e in epochs]
                if kind == "param":
                    med = [max(m, 1e-30) for m in med]
                ax.plot(epochs, med, marker=".", label=name)
            if kind == "param":
                ax.set_yscale("log")
            else:
                ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{setting}: {label}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if series:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def monitor(rows, out):
    fig = draw_monitor(rows)
    if fig is None:
        return False
    save(fig, out, "monitor.png")
    return True


def table_html(rows):
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v or '')}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: report.py OUT_DIR STUDY_NAME")
    out, study = sys.argv[1], sys.argv[2]
    raw = read_csv(os.path.join(out, "detdl_raw.csv"))
    if not raw:
        sys.exit(f"report.py: {os.path.join(out, 'detdl_raw.csv')} is missing or empty")
    result = read_csv(os.path.join(out, "detdl_result.csv"))
    pictures = []
    if accuracy_spread(raw, out):
        pictures.append(("accuracy_spread.png", "Test accuracy of every run, per setting and selection criterion"))
    if loss_spread(raw, out):
        pictures.append(("loss_spread.png", "Test loss (MSE) of every regression run, per setting and selection criterion"))
    if class_spread(raw, out):
        pictures.append(("class_spread.png", "Per-class spread of test accuracy"))
    if loss_curves(read_csv(os.path.join(out, "butter_summary.csv")), out):
        pictures.append(("loss_curves.png", "Loss curves with quartile bands"))
    if divergence(read_csv(os.path.join(out, "divergence.csv")), out):
        pictures.append(("divergence.png", "Divergence over steps"))
    if monitor(read_csv(os.path.join(out, "monitor.csv")), out):
        pictures.append(("monitor.png", "Training monitor: gradient norms and dead units per layer"))
    text = ""
    if os.path.exists(os.path.join(out, "table.txt")):
        with open(os.path.join(out, "table.txt")) as f:
            text = f.read()
    figs = "".join(f"<h2>{html.escape(t)}</h2><img src='{p}' alt='{html.escape(t)}'>" for p, t in pictures)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>detdl study {html.escape(study)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}
table{{border-collapse:collapse;font-size:12px}} td,th{{border:1px solid #ccc;padding:2px 6px}} img{{max-width:100%}}</style>
</head><body><h1>detdl study: {html.escape(study)}</h1>
<pre>{html.escape(text)}</pre>{figs}
<h2>detdl_result.csv</h2>{table_html(result)}
<p>CSV files: analysis_result.csv, analysis_raw.csv (the dl-variance artifact's columns), detdl_result.csv, detdl_raw.csv, group_spread.csv, comparisons.csv, butter_summary.csv,
implementation_spread.csv, divergence.csv, divergence_pairs.csv (same folder).</p></body></html>
"""
    tmp = os.path.join(out, "index.html.tmp")
    with open(tmp, "w") as f:
        f.write(page)
    os.replace(tmp, os.path.join(out, "index.html"))


if __name__ == "__main__":
    main()
