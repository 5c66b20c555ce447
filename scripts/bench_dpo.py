#!/usr/bin/env python3
"""Python side of the preference-tuning benchmark (C++ side: `build/bin/ch07 dpo`): training-step
speed of the DPO loop of the book's bonus notebook (ch07/04) in PyTorch.

The model is the book's GPT of scripts/bench_classify.py (written from the formulas, random
weights, seed 123, drop_rate 0.0, qkv_bias True): the policy, every parameter trainable; the
reference is a deep copy of it in eval mode, never updated. The batches are the notebook's:
instruction-data-with-preference.json through tiktoken's GPT-2 encoding, the Alpaca prompt with
the chosen and the rejected response, the 85% training split, torch.manual_seed(123),
DataLoader(batch 8, shuffle, drop_last) with the preference collate (prompt masked, cut to
min(1024, context length); tests/reference/fixtures_dpo.py), so the sequence of batch shapes is
the one `ch07 dpo` sees. Each step: zero_grad; policy forward on the chosen and on the rejected
rows; reference forward on both under no_grad; the mean log-probability of the response tokens
per row; the DPO loss (beta 0.1); backward; AdamW step (lr 5e-6, weight decay 0.01, the default
single-tensor CPU path); loss.item(). The first --warmup steps are untimed; a step's tokens are
chosen.numel() + rejected.numel().

    python scripts/bench_dpo.py [--model 124M|tiny] [--steps 6] [--warmup 2] [--threads N]
"""
import argparse
import copy
import json
import pathlib
import sys
import time

import torch
from torch.utils.data import DataLoader

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "reference"))

from bench_classify import CONFIGS, SEED, GPTModel  # noqa: E402
from fixtures_data import find_data, gpt2_encoding  # noqa: E402
from fixtures_dpo import PreferenceData, collate_fn, dpo_loss_batch, split  # noqa: E402
from make_fixtures import default_data_dir  # noqa: E402

BETA = 0.1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--model", choices=sorted(CONFIGS), default="124M")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be at least 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.model]
    data_dir = default_data_dir()
    enc = gpt2_encoding(data_dir)
    path = find_data(data_dir, "instruction-data-with-preference.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    train, _, _ = split(data)
    cut = min(1024, cfg["context_length"])
    torch.manual_seed(SEED)
    loader = DataLoader(PreferenceData(train, enc), batch_size=8, shuffle=True, drop_last=True,
                        collate_fn=collate_fn(cut), num_workers=0)
    torch.manual_seed(SEED)
    policy = GPTModel(cfg)
    reference = copy.deepcopy(policy)
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    policy.train()
    torch.manual_seed(SEED)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=5e-6, weight_decay=0.01)
    times, tokens, losses = [], [], []
    for i, batch in enumerate(loader):
        if i >= args.warmup + args.steps:
            break
        start = time.perf_counter()
        optimizer.zero_grad()
        loss, _, _ = dpo_loss_batch(batch, policy, reference, BETA)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            tokens.append(batch["chosen"].numel() + batch["rejected"].numel())
    if len(times) < args.steps:
        sys.exit(f"only {len(losses)} batches in the training loader")
    print(json.dumps({"who": "python", "model": args.model, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "step_seconds": times, "step_tokens": tokens,
                      "first_loss": losses[0], "last_loss": losses[-1]}))


if __name__ == "__main__":
    main()
