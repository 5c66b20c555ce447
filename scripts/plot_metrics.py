#!/usr/bin/env python3
"""Draws the book's loss figure (§5.2, Figure 5.12) from a run's metrics.jsonl: training and
validation loss against epochs, with a second x-axis of tokens seen.

    scripts/plot_metrics.py runs/ch05                 writes runs/ch05/loss.png
    scripts/plot_metrics.py runs/ch05/metrics.jsonl -o loss.pdf

The epoch axis spaces the evaluations evenly from 0 to the number of epochs, as the book's
plot_losses does (torch.linspace(0, num_epochs, len(train_losses))).

Metrics besides the losses get a figure each, beside the loss figure (<run>/<name>.png): those
of the loss hook, recorded at every evaluation as train_<name> / val_<name> (chapter 6's
accuracy, DPO's reward margins), and those returned after each epoch ("event": "epoch_end"
lines), against epochs as the book's plot_values does.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=pathlib.Path, help="run folder or metrics.jsonl")
    ap.add_argument("-o", "--output", type=pathlib.Path, help="image file (default: <run>/loss.png)")
    ap.add_argument("--epochs", type=float, help="epochs of the run (default: the last epoch seen)")
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
    epochs_seen = [num_epochs * i / (n - 1) if n > 1 else 0.0 for i in range(n)]
    nan = float("nan")
    train = [p["train_loss"] if p["train_loss"] is not None else nan for p in points]
    val = [p["val_loss"] if p["val_loss"] is not None else nan for p in points]
    tokens = [p["tokens_seen"] for p in points]

    fig, ax1 = plt.subplots(figsize=(5, 3))
    ax1.plot(epochs_seen, train, label="Training loss")
    ax1.plot(epochs_seen, val, linestyle="-.", label="Validation loss")
    ax1.set_xlabel("Epochs")
    ax1.set_ylabel("Loss")
    ax1.legend(loc="upper right")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2 = ax1.twiny()  # the same curve against tokens seen, drawn invisibly to scale the top axis
    ax2.plot(tokens, train, alpha=0)
    ax2.set_xlabel("Tokens seen")
    fig.tight_layout()
    out = args.output or (metrics.parent / "loss.png")
    fig.savefig(out)
    finite = [x for x in val if not math.isnan(x)]
    print(f"{out}: {n} evaluations, last train loss {train[-1]:.3f}, "
          f"val loss {finite[-1] if finite else nan:.3f}")
    plot_extra_metrics(points, epoch_ends, epochs_seen, out)


BASE_KEYS = {"epoch", "step", "tokens_seen", "train_loss", "val_loss", "lr", "elapsed_s",
             "tokens_per_s", "event"}


def plot_extra_metrics(points, epoch_ends, epochs_seen, loss_png):
    """One figure per further metric: train_/val_ pairs on one plot, epoch-end metrics by epoch."""
    nan = float("nan")
    series = {}  # name -> [(label, xs, ys, style)]
    for key in sorted({k for p in points for k in p} - BASE_KEYS):
        name, label = key, key
        for side, text in (("train_", "Training"), ("val_", "Validation")):
            if key.startswith(side):
                name, label = key[len(side):], f"{text} {key[len(side):]}"
        ys = [p.get(key) if p.get(key) is not None else nan for p in points]
        style = "-." if key.startswith("val_") else "-"
        series.setdefault(name, []).append((label, epochs_seen, ys, style))
    for key in sorted({k for e in epoch_ends for k in e} - BASE_KEYS):
        xs = [e["epoch"] for e in epoch_ends if key in e]
        ys = [e[key] if e[key] is not None else nan for e in epoch_ends if key in e]
        series.setdefault(key, []).append((f"{key} (epoch end)", xs, ys, "o-"))
    for name, lines in series.items():
        fig, ax = plt.subplots(figsize=(5, 3))
        for label, xs, ys, style in lines:
            ax.plot(xs, ys, style, label=label)
        ax.set_xlabel("Epochs")
        ax.set_ylabel(name)
        ax.legend(loc="best")
        fig.tight_layout()
        out = loss_png.parent / f"{name}.png"
        fig.savefig(out)
        plt.close(fig)
        print(f"{out}: {name}")


if __name__ == "__main__":
    main()
