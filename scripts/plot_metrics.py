#!/usr/bin/env python3
"""Draws the book's loss figure (§5.2, Figure 5.12) from a run's metrics.jsonl: training and
validation loss against epochs, with a second x-axis of tokens seen.

    scripts/plot_metrics.py runs/ch05                 writes runs/ch05/loss.png
    scripts/plot_metrics.py runs/ch05/metrics.jsonl -o loss.pdf

The epoch axis spaces the evaluations evenly from 0 to the number of epochs, as the book's
plot_losses does (torch.linspace(0, num_epochs, len(train_losses))).
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
        sys.exit(f"error: {metrics}: no such file (train first: ch05 train)")
    points = read_points(metrics)
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


if __name__ == "__main__":
    main()
