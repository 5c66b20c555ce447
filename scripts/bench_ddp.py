#!/usr/bin/env python3
"""Python side of scripts/bench_ddp.sh: PyTorch's own DistributedDataParallel on the CPU (Gloo),
launched by torchrun, training the chapter-5 model as scripts/bench_train.py's "optimized" variant
(F.layer_norm, F.gelu(tanh), scaled_dot_product_attention, AdamW(fused=True)): GPT_CONFIG_124M
with context 256, the-verdict in windows of 256, `--batch` windows per rank and step.

  torchrun --standalone --nproc_per_node=2 scripts/bench_ddp.py --data ... --gpt2 ...

Each rank takes its own windows of every step (DistributedSampler's interleaving); DDP
broadcasts rank 0's weights and all-reduces the gradients in 25 MB buckets during backward.
Rank 0 times each optimizer step (zero_grad, forward, loss, backward with the all-reduce, step,
loss.item()) after `warmup` untimed steps and prints one JSON line.
"""
import argparse
import json
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train  # noqa: E402  (the model, written from the book's formulas)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--batch", type=int, default=2, help="windows per rank and step")
    ap.add_argument("--data", required=True, help="the-verdict.txt")
    ap.add_argument("--gpt2", required=True, help="folder with encoder.json and vocab.bpe")
    args = ap.parse_args()

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    text = open(args.data, encoding="utf-8").read()
    ranks = bench_train.tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        os.path.join(args.gpt2, "vocab.bpe"), os.path.join(args.gpt2, "encoder.json"))
    enc = bench_train.tiktoken.Encoding(name="gpt2", pat_str=bench_train.GPT2_PATTERN,
                                        mergeable_ranks=ranks,
                                        special_tokens={"<|endoftext|>": 50256})
    ids = enc.encode(text[: int(0.9 * len(text))], allowed_special={"<|endoftext|>"})
    n = bench_train.CFG["context_length"]
    windows = [(ids[s:s + n], ids[s + 1:s + n + 1]) for s in range(0, len(ids) - n, n)]
    torch.manual_seed(123)
    model = DistributedDataParallel(bench_train.GPT(bench_train.CFG, optimized=True))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1, fused=True)
    times = []
    for i in range(args.warmup + args.steps):
        picked = [windows[(world * args.batch * i + world * k + rank) % len(windows)]
                  for k in range(args.batch)]
        x = torch.tensor([w[0] for w in picked])
        y = torch.tensor([w[1] for w in picked])
        seconds = bench_train.timed_step(model, opt, x, y)  # the all-reduce runs in backward
        if i >= args.warmup:
            times.append(seconds)
    if rank == 0:
        tokens = world * args.batch * n
        print(json.dumps({"world_size": world, "threads": torch.get_num_threads(),
                          "torch": torch.__version__, "step_seconds": times,
                          "tokens_per_step": tokens, "tokens_per_s": tokens / min(times)}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
