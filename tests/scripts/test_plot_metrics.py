#!/usr/bin/env python3
"""Test of scripts/plot_metrics.py on metrics.jsonl files written here: a run with one
evaluation shows its point (markers) and says so in a note; chapter 6's accuracies after each
epoch make accuracy.png as the book's plot_values draws them; per-evaluation accuracies of the
same run go beside it. Checks the plotted data (--data), not pixels.

    python tests/scripts/test_plot_metrics.py <repo root>
"""
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(sys.argv[1])
SCRIPT = ROOT / "scripts" / "plot_metrics.py"
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print(f"FAILED: {what}")


def plot(run):
    r = subprocess.run([sys.executable, str(SCRIPT), str(run), "--data"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        sys.exit(f"plot_metrics.py {run} failed:\n{r.stdout}{r.stderr}")
    lines = r.stdout.splitlines()
    return json.loads(lines[-1]), lines[:-1]


def write(run, records):
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)

    # One evaluation: the loss figure holds one point per line, drawn with a marker.
    one = tmp / "one"
    write(one, [{"epoch": 1, "step": 0, "tokens_seen": 512, "train_loss": 9.8, "val_loss": 9.9}])
    figures, out = plot(one)
    loss = figures["loss.png"]
    check([l["label"] for l in loss] == ["Training loss", "Validation loss"], "loss labels")
    check(all(l["marker"] == "o" for l in loss), "loss lines have markers")
    check([l["y"] for l in loss] == [[9.8], [9.9]], "the single point is plotted")
    check(any(l.startswith("note: loss.png has 1 point") for l in out), "a note for 1 point")
    check((one / "loss.png").is_file(), "loss.png written")

    # Chapter 6: per-evaluation and epoch-end accuracies (the member's 2-epoch run).
    six = tmp / "six"
    write(six, [
        {"epoch": 1, "step": 0, "tokens_seen": 8, "train_loss": 1.1, "val_loss": 1.2,
         "train_accuracy": 0.5, "val_accuracy": 0.375},
        {"event": "epoch_end", "epoch": 1, "step": 14, "tokens_seen": 120,
         "train_accuracy": 0.925, "val_accuracy": 0.778},
        {"epoch": 2, "step": 29, "tokens_seen": 240, "train_loss": 0.5, "val_loss": 0.6,
         "train_accuracy": 0.875, "val_accuracy": 0.75},
        {"event": "epoch_end", "epoch": 2, "step": 29, "tokens_seen": 240,
         "train_accuracy": 0.95, "val_accuracy": 0.833},
    ])
    figures, out = plot(six)
    acc = figures.get("accuracy.png", [])
    check([l["label"] for l in acc] == ["Training accuracy", "Validation accuracy"],
          "accuracy.png: training and validation")
    check([l["y"] for l in acc] == [[0.925, 0.95], [0.778, 0.833]],
          "accuracy.png holds the accuracies after each epoch")
    check(all(l["x"] == [0.0, 2.0] for l in acc), "epochs spaced as the book's linspace")
    check(all(l["marker"] == "o" for l in acc), "accuracy lines have markers")
    per_eval = figures.get("accuracy_by_evaluation.png", [])
    check([l["y"] for l in per_eval] == [[0.5, 0.875], [0.375, 0.75]],
          "per-evaluation accuracies beside it")
    check(not any(l.startswith("note:") for l in out), "no note with two points each")

if failures:
    print(f"0 passed, {len(failures)} failed")
    sys.exit(1)
print("1 passed, 0 failed")
