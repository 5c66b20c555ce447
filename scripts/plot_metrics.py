#!/usr/bin/env python3
"""Draws the book's loss figure (§5.2, Figure 5.12) from a run's metrics.jsonl: training and
validation loss against epochs, with a second x-axis of tokens seen.

    scripts/plot_metrics.py runs/ch05                 writes runs/ch05/loss.png
    scripts/plot_metrics.py runs/ch05/metrics.jsonl -o loss.pdf
    scripts/plot_metrics.py runs/ch06 --data          also prints the plotted points as JSON

The epoch axis spaces the evaluations evenly from 0 to the number of epochs, as the book's
plot_losses does (torch.linspace(0, num_epochs, len(train_losses))).

Metrics besides the losses get a figure each, beside the loss figure (<run>/<name>.png):
- those returned after each epoch ("event": "epoch_end" lines, e.g. chapter 6's
  train_accuracy / val_accuracy) as the book's plot_values draws them (§6.7, Figure 6.17):
  training and validation against epochs, with examples (or tokens) seen on the top axis;
- those of the loss hook, recorded at every evaluation as train_<name> / val_<name> (DPO's reward
  margins), against epochs like the losses; where a metric also has epoch-end values, its
  per-evaluation figure is <name>_by_evaluation.png.

Every line has markers, so a figure with a single point shows it; a figure with fewer than two
points is reported on a line starting with "note:".
"""
import argparse
import json
import math
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

NAN = float("nan")
MARKER = dict(marker="o", markersize=3)


def read_points(path):
    points = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            points.append(json.loads(line))
        except json.JSONDecodeError as e:
            sys.exit(f"error: {path}:{n}: {e}")
    return points


def value(record, key):
    v = record.get(key)
    return NAN if v is None else v


def linspace(end, n):
    """torch.linspace(0, end, n) as the book's figures space their points."""
    return [end * i / (n - 1) if n > 1 else 0.0 for i in range(n)]


def figure_data(fig):
    """The points of every visible line of a figure: what a test checks instead of pixels."""
    lines = []
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_alpha() == 0:
                continue
            lines.append({"label": line.get_label(), "marker": line.get_marker(),
                          "x": [float(x) for x in line.get_xdata()],
                          "y": [None if math.isnan(y) else float(y) for y in line.get_ydata()]})
    return lines


class Figures:
    """Saves figures, remembers their data (--data), notes those with fewer than two points."""

    def __init__(self):
        self.data = {}

    def save(self, fig, out, points, what):
        fig.tight_layout()
        fig.savefig(out)
        self.data[out.name] = figure_data(fig)
        plt.close(fig)
        if points < 2:
            print(f"note: {out.name} has {points} point{'s' if points != 1 else ''} of {what}: "
                  f"a curve needs two (evaluate more often: a smaller train.eval_freq)")


def plot_pair(ax, xs, train, val, train_label, val_label):
    ax.plot(xs, train, label=train_label, **MARKER)
    ax.plot(xs, val, linestyle="-.", label=val_label, **MARKER)


def top_axis(ax, seen, values, label):
    """The book's second x-axis: the same curve against what was seen, drawn invisibly."""
    ax2 = ax.twiny()
    ax2.plot(seen, values, alpha=0)
    ax2.set_xlabel(label)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=pathlib.Path, help="run folder or metrics.jsonl")
    ap.add_argument("-o", "--output", type=pathlib.Path, help="image file (default: <run>/loss.png)")
    ap.add_argument("--epochs", type=float, help="epochs of the run (default: the last epoch seen)")
    ap.add_argument("--data", action="store_true",
                    help="print the plotted points of every figure as one JSON object")
    args = ap.parse_args()

    metrics = args.run / "metrics.jsonl" if args.run.is_dir() else args.run
    if not metrics.is_file():
        sys.exit(f"error: {metrics}: no such file (train first)")
    records = read_points(metrics)
    points = [p for p in records if "event" not in p]
    epoch_ends = [p for p in records if p.get("event") == "epoch_end"]
    if not points:
        sys.exit(f"error: {metrics}: no evaluations yet")
    num_epochs = args.epochs or max(p["epoch"] for p in points)
    n = len(points)
    epochs_seen = linspace(num_epochs, n)
    train = [value(p, "train_loss") for p in points]
    val = [value(p, "val_loss") for p in points]
    tokens = [p["tokens_seen"] for p in points]

    figures = Figures()
    fig, ax1 = plt.subplots(figsize=(5, 3))
    plot_pair(ax1, epochs_seen, train, val, "Training loss", "Validation loss")
    ax1.set_xlabel("Epochs")
    ax1.set_ylabel("Loss")
    ax1.legend(loc="upper right")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    top_axis(ax1, tokens, train, "Tokens seen")
    out = args.output or (metrics.parent / "loss.png")
    figures.save(fig, out, n, "evaluation")
    finite = [x for x in val if not math.isnan(x)]
    print(f"{out}: {n} evaluations, last train loss {train[-1]:.3f}, "
          f"val loss {finite[-1] if finite else NAN:.3f}")
    plot_extra_metrics(points, epoch_ends, epochs_seen, out, figures)
    if args.data:
        print(json.dumps(figures.data))


BASE_KEYS = {"epoch", "step", "tokens_seen", "train_loss", "val_loss", "lr", "elapsed_s",
             "tokens_per_s", "event"}
SIDES = (("train_", "Training"), ("val_", "Validation"))


def split_key(key):
    """train_accuracy -> ("accuracy", "Training accuracy"); other keys name themselves."""
    for side, text in SIDES:
        if key.startswith(side):
            return key[len(side):], f"{text} {key[len(side):]}"
    return key, key


def plot_extra_metrics(points, epoch_ends, epochs_seen, loss_png, figures):
    """One figure per further metric: epoch-end values as the book's plot_values, per-evaluation
    train_/val_ pairs against epochs like the losses."""
    by_epoch = {}  # name -> [(label, key)]
    for key in sorted({k for e in epoch_ends for k in e} - BASE_KEYS):
        name, label = split_key(key)
        by_epoch.setdefault(name, []).append((label, key))
    for name, keys in by_epoch.items():
        fig, ax = plt.subplots(figsize=(5, 3))
        n = 0
        for i, (label, key) in enumerate(keys):
            rows = [e for e in epoch_ends if key in e]
            n = max(n, len(rows))
            # As the book: linspace(0, num_epochs, len(values)), examples seen on the top axis.
            xs = linspace(max(e["epoch"] for e in rows), len(rows))
            ax.plot(xs, [value(e, key) for e in rows], linestyle="-." if i else "-", label=label,
                    **MARKER)
            if i == 0:
                ax.set_xlabel("Epochs")
                top = [e["tokens_seen"] for e in rows]
        ax.set_ylabel(name.capitalize())
        ax.legend(loc="best")
        top_axis(ax, top, [value(e, keys[0][1]) for e in epoch_ends if keys[0][1] in e],
                 "Examples seen" if name == "accuracy" else "Tokens seen")
        out = loss_png.parent / f"{name}.png"
        figures.save(fig, out, n, "epoch-end values")
        print(f"{out}: {name} after each of {n} epochs")

    per_eval = {}
    for key in sorted({k for p in points for k in p} - BASE_KEYS):
        name, label = split_key(key)
        per_eval.setdefault(name, []).append((label, key))
    for name, keys in per_eval.items():
        fig, ax = plt.subplots(figsize=(5, 3))
        for label, key in keys:
            ax.plot(epochs_seen, [value(p, key) for p in points],
                    linestyle="-." if key.startswith("val_") else "-", label=label, **MARKER)
        ax.set_xlabel("Epochs")
        ax.set_ylabel(name)
        ax.legend(loc="best")
        out = loss_png.parent / (f"{name}_by_evaluation.png" if name in by_epoch else f"{name}.png")
        figures.save(fig, out, len(points), "evaluation")
        print(f"{out}: {name} at each of {len(points)} evaluations")


if __name__ == "__main__":
    main()
