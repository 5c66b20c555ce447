#!/usr/bin/env python3
"""Python side of the instruction-finetuning benchmark (C++ side: `build/bin/ch07 finetune`):
training-step speed of the book's chapter-7 loop in PyTorch.

The model is the book's GPT of scripts/bench_classify.py (written from the formulas, random
weights, seed 123, drop_rate 0.0, qkv_bias True), every parameter trainable as in the book's
chapter 7. The batches are the book's: instruction-data.json through tiktoken's GPT-2 encoding,
the Alpaca prompt, the 85% training split, torch.manual_seed(123), DataLoader(batch 8, shuffle,
drop_last) with the book's custom_collate_fn (tests/reference/fixtures_instruct.py), so the
sequence of batch shapes is the one `ch07 finetune` sees. Each step: zero_grad, forward, cross
entropy (-100 targets skipped), backward, AdamW step (lr 5e-5, weight decay 0.1, the default
single-tensor CPU path), loss.item(). The first --warmup steps are untimed.

    python scripts/bench_instruct.py [--model 124M|tiny] [--steps 6] [--warmup 2] [--threads N]
"""
import argparse
import json
import pathlib
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "reference"))

from bench_classify import CONFIGS, SEED, GPTModel  # noqa: E402
from fixtures_data import find_data, gpt2_encoding  # noqa: E402
from fixtures_instruct import Encoded, collate, split  # noqa: E402
from make_fixtures import default_data_dir  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--model", choices=sorted(CONFIGS), default="124M")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.model]
    data_dir = default_data_dir()
    enc = gpt2_encoding(data_dir)
    data = json.loads(find_data(data_dir, "instruction-data.json").read_text(encoding="utf-8"))
    train, _, _ = split(data)
    cut = min(1024, cfg["context_length"])
    torch.manual_seed(SEED)
    loader = DataLoader(Encoded(train, enc, "alpaca"), batch_size=8, shuffle=True, drop_last=True,
                        collate_fn=lambda b: collate(b, cut), num_workers=0)
    torch.manual_seed(SEED)
    model = GPTModel(cfg)
    model.train()
    torch.manual_seed(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.1)
    times, tokens, losses = [], [], []
    for i, (x, y) in enumerate(loader):
        if i >= args.warmup + args.steps:
            break
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            tokens.append(x.numel())
    print(json.dumps({"who": "python", "model": args.model, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "step_seconds": times, "step_tokens": tokens,
                      "first_loss": losses[0], "last_loss": losses[-1]}))


if __name__ == "__main__":
    main()
