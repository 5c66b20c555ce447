#!/usr/bin/env python3
"""The choice behind train.precision=bf16, measured: two ways to train GPT-2 124M in bf16 on the
CPU with fp32 master weights, same model, data and settings as scripts/bench_train.py's optimized
variant (context 256, batch 2, fused AdamW lr 4e-4, weight decay 0.1).

  autocast   fp32 parameters; torch.autocast("cpu", bfloat16) casts each weight to bf16 once per
             forward and the products run in bf16; gradients arrive in fp32; fused AdamW updates
             the fp32 parameters in place (what llmfs does)
  masters    the model itself in bf16 (activations, layer norms and gradients too) and an fp32
             copy of every parameter: after backward the bf16 gradients are widened into the
             copies, fused AdamW steps on them, and the parameters are rounded back

Prints the best step time of each (alternating, `--rounds` times) and the ratio.
  scripts/bench_bf16_masters.py --data ../shared/data/the-verdict.txt --gpt2 ../shared/data/gpt2
"""
import argparse
import time

import torch
import torch.nn.functional as F

import bench_train as bt


def make(masters):
    torch.manual_seed(123)
    model = bt.GPT(bt.CFG, optimized=True)
    model.train()
    if not masters:
        return model, torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1, fused=True), None
    copies = [p.detach().clone() for p in model.parameters()]
    model.to(torch.bfloat16)
    opt = torch.optim.AdamW(copies, lr=4e-4, weight_decay=0.1, fused=True)
    return model, opt, copies


def step(model, opt, copies, x, y):
    start = time.perf_counter()
    if copies is None:
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
    else:
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())
        loss.backward()
        for p, c in zip(model.parameters(), copies):
            c.grad = p.grad.float()
        opt.step()
        with torch.no_grad():
            for p, c in zip(model.parameters(), copies):
                p.copy_(c)
    loss.item()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--gpt2", required=True)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    text = open(args.data, encoding="utf-8").read()
    import tiktoken.load, tiktoken, os
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(os.path.join(args.gpt2, "vocab.bpe"),
                                                          os.path.join(args.gpt2, "encoder.json"))
    enc = tiktoken.Encoding(name="gpt2", pat_str=bt.GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": 50256})
    ids = enc.encode(text[: int(0.9 * len(text))], allowed_special={"<|endoftext|>"})
    n = bt.CFG["context_length"]
    x = torch.tensor([ids[0:n], ids[n:2 * n]])
    y = torch.tensor([ids[1:n + 1], ids[n + 1:2 * n + 1]])
    best = {"autocast": float("inf"), "masters": float("inf")}
    for _ in range(args.rounds):
        for name in best:
            model, opt, copies = make(name == "masters")
            step(model, opt, copies, x, y)  # warm-up
            for _ in range(args.steps):
                best[name] = min(best[name], step(model, opt, copies, x, y))
            del model, opt, copies
    for name, s in best.items():
        print(f"{name:9} {s:.3f} s/step  {2 * n / s:7.1f} tokens/s")
    print(f"masters / autocast: {best['autocast'] / best['masters']:.2f}x the speed")


if __name__ == "__main__":
    main()
