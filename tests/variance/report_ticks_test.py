#!/usr/bin/env python3
"""Ticks of the report's pictures (tools/report.py), from the figures' own axes.

    report_ticks_test.py PATH/TO/tools/report.py

Run by tests/variance/test_report.cpp (Report.PictureTicks). Standard library + matplotlib.
"""
import importlib.util
import math
import sys
import unittest

REPORT = sys.argv.pop(1) if len(sys.argv) > 1 else "tools/report.py"
spec = importlib.util.spec_from_file_location("report", REPORT)
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def raw_rows(settings, classes, runs=3):
    rows = []
    for s in settings:
        for k in range(runs):
            r = {"setting": s, "criterion": "last", "repetition": str(k), "test_accuracy": str(0.9 + 0.01 * k),
                 "test_loss": str(0.1 + 0.01 * k), "weight_hash": f"h{k}", "regression": "0"}
            for c in range(classes):
                r[f"acc_class_{c}"] = str(0.8 + 0.01 * ((c + k) % 3))
            rows.append(r)
    return rows


class Ticks(unittest.TestCase):
    def test_every_class_has_a_tick_centred_on_its_bars(self):
        for settings in (["a"], ["a", "b"], ["a", "b", "c"]):
            fig = report.draw_class_spread(raw_rows(settings, 10))
            ax = fig.axes[0]
            self.assertEqual(list(ax.get_xticks()), list(range(10)), settings)
            # Bars of class c, one per setting, sit symmetrically around tick c.
            centres = sorted(p.get_x() + p.get_width() / 2 for p in ax.patches)
            self.assertEqual(len(centres), 10 * len(settings))
            for c in range(10):
                mine = centres[c * len(settings):(c + 1) * len(settings)]
                self.assertAlmostEqual(sum(mine) / len(mine), c, places=9, msg=(settings, c))
            report.plt.close(fig)

    def test_epoch_and_step_axes_have_integer_ticks(self):
        summary = [{"setting": "a", "epoch": str(e), "series": s, "q1": "1", "median": "1.5", "q3": "2"}
                   for e in (1, 2, 3) for s in ("train_loss", "test_loss")]
        fig = report.draw_loss_curves(summary)
        for ax in fig.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            self.assertTrue(ticks)
            self.assertTrue(all(float(t).is_integer() for t in ticks), ticks)
        report.plt.close(fig)
        div = [{"setting": "a", "step": str(s), "distinct_states": str(1 + s // 2)} for s in (1, 2, 3, 4)]
        fig = report.draw_divergence(div)
        ax = fig.axes[0]
        for ticks, lim in ((ax.get_xticks(), ax.get_xlim()), (ax.get_yticks(), ax.get_ylim())):
            shown = [t for t in ticks if lim[0] <= t <= lim[1]]
            self.assertTrue(shown)
            self.assertTrue(all(float(t).is_integer() for t in shown), shown)
        report.plt.close(fig)

    def test_identical_values_from_different_weights_are_annotated(self):
        rows = raw_rows(["r"], 0)
        for r in rows:
            r["test_loss"] = "0.25"  # one value, three hashes
            r["regression"] = "1"
        fig = report.draw_metric_spread(rows, "test_loss", 1, "test loss (MSE)")
        texts = [t.get_text() for t in fig.axes[0].texts]
        self.assertIn(report.IDENTICAL_NOTE, texts)
        report.plt.close(fig)
        rows[1]["test_loss"] = "nan"  # a diverged run: left out and said so
        fig = report.draw_metric_spread(rows, "test_loss", 1, "test loss (MSE)")
        labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
        self.assertIn("r\n(1 not finite, left out)", labels)
        self.assertFalse(any(math.isnan(y) for c in fig.axes[0].collections for _, y in c.get_offsets()))
        report.plt.close(fig)


if __name__ == "__main__":
    unittest.main()
