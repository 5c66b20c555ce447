#!/usr/bin/env python3
"""Python side of the classification-finetuning benchmark (C++ side: `build/bin/ch06 train`):
training-step speed of the book's chapter-6 loop (and appendix E's LoRA variant) in PyTorch.

The model is the book's GPT written here from the formulas (chapters 3-4: LayerNorm and GELU from
their formulas, attention with an explicit causal mask and softmax), random weights (seed 123):
  124M   GPT_CONFIG_124M: vocab 50257, context 1024, emb 768, 12 heads, 12 layers
  tiny   vocab 50257, context 128, emb 64, 2 heads, 2 layers
both with drop_rate 0.0 and qkv_bias True. Surgery:
  book   freeze every parameter; seed 123; out_head = Linear(emb, 2) with bias; unfreeze the last
         transformer block and the final norm (ch. 6.5)
  lora   freeze every parameter; seed 123; the same new head; freeze it too; replace every linear
         layer with linear + LoRA (rank 16, alpha 16, (alpha/rank) * x A B) (appendix E)
Each step: zero_grad, forward on (batch, length) random int64 ids, cross entropy of the last
position's logits against random 0/1 labels, backward, AdamW step (lr 5e-5, weight decay 0.1, the
default single-tensor CPU path), loss.item(). The first --warmup steps are untimed.

    python scripts/bench_classify.py [--model 124M|tiny] [--strategy book|lora] [--steps 20]
                                     [--warmup 2] [--batch-size 8] [--length 120] [--threads N]
                                     [--json]
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "124M": {"vocab_size": 50257, "context_length": 1024, "emb_dim": 768, "n_heads": 12,
             "n_layers": 12, "drop_rate": 0.0, "qkv_bias": True},
    "tiny": {"vocab_size": 50257, "context_length": 128, "emb_dim": 64, "n_heads": 2,
             "n_layers": 2, "drop_rate": 0.0, "qkv_bias": True},
}
SEED = 123


class LayerNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * ((x - mean) / torch.sqrt(var + self.eps)) + self.shift


class GELU(nn.Module):
    def forward(self, x):
        c = torch.sqrt(torch.tensor(2.0 / torch.pi))
        return 0.5 * x * (1 + torch.tanh(c * (x + 0.044715 * torch.pow(x, 3))))


class MultiHeadAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["emb_dim"]
        self.h = cfg["n_heads"]
        self.W_query = nn.Linear(d, d, bias=cfg["qkv_bias"])
        self.W_key = nn.Linear(d, d, bias=cfg["qkv_bias"])
        self.W_value = nn.Linear(d, d, bias=cfg["qkv_bias"])
        self.out_proj = nn.Linear(d, d)
        self.dropout = nn.Dropout(cfg["drop_rate"])
        n = cfg["context_length"]
        self.register_buffer("mask", torch.triu(torch.ones(n, n), diagonal=1))

    def forward(self, x):
        b, t, d = x.shape

        def heads(y):
            return y.view(b, t, self.h, d // self.h).transpose(1, 2)

        q, k, v = heads(self.W_query(x)), heads(self.W_key(x)), heads(self.W_value(x))
        s = q @ k.transpose(2, 3)
        s.masked_fill_(self.mask.bool()[:t, :t], -torch.inf)
        ctx = self.dropout(torch.softmax(s / k.shape[-1] ** 0.5, dim=-1)) @ v
        return self.out_proj(ctx.transpose(1, 2).contiguous().view(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(d, 4 * d), GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        return self.layers(x)


class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.att = MultiHeadAttention(cfg)
        self.ff = FeedForward(cfg["emb_dim"])
        self.norm1, self.norm2 = LayerNorm(cfg["emb_dim"]), LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        return x + self.drop_shortcut(self.ff(self.norm2(x)))


class GPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, idx):
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1], device=idx.device))
        return self.out_head(self.final_norm(self.trf_blocks(self.drop_emb(x))))


class LoRALayer(nn.Module):
    def __init__(self, in_dim, out_dim, rank, alpha):
        super().__init__()
        self.A = nn.Parameter(torch.empty(in_dim, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(rank, out_dim))
        self.rank, self.alpha = rank, alpha

    def forward(self, x):
        return (self.alpha / self.rank) * (x @ self.A @ self.B)


class LinearWithLoRA(nn.Module):
    def __init__(self, linear, rank, alpha):
        super().__init__()
        self.linear = linear
        self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)

    def forward(self, x):
        return self.linear(x) + self.lora(x)


def replace_linear_with_lora(module, rank, alpha):
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, LinearWithLoRA(child, rank, alpha))
        else:
            replace_linear_with_lora(child, rank, alpha)


def build(cfg, strategy, rank=16, alpha=16, num_classes=2):
    torch.manual_seed(SEED)
    model = GPTModel(cfg)
    for p in model.parameters():
        p.requires_grad = False
    torch.manual_seed(SEED)
    model.out_head = nn.Linear(cfg["emb_dim"], num_classes)
    if strategy == "book":
        for p in model.trf_blocks[-1].parameters():
            p.requires_grad = True
        for p in model.final_norm.parameters():
            p.requires_grad = True
    else:
        for p in model.parameters():
            p.requires_grad = False
        replace_linear_with_lora(model, rank, alpha)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--length", type=int, default=120, help="tokens per example")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--model", choices=sorted(CONFIGS), default="124M")
    ap.add_argument("--strategy", choices=["book", "lora"], default="book")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.model]
    if args.length > cfg["context_length"]:
        ap.error(f"--length {args.length} exceeds the context length {cfg['context_length']}")
    if args.steps < 1:
        ap.error("--steps must be at least 1")

    model = build(cfg, args.strategy)
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    torch.manual_seed(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.1)

    g = torch.Generator().manual_seed(SEED)
    n = args.warmup + args.steps
    inputs = torch.randint(0, cfg["vocab_size"], (n, args.batch_size, args.length), generator=g)
    labels = torch.randint(0, 2, (n, args.batch_size), generator=g)
    times, losses = [], []
    for i in range(n):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs[i])[:, -1, :], labels[i])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if i >= args.warmup:
            times.append(time.perf_counter() - start)

    examples = args.batch_size
    tokens = args.batch_size * args.length
    mean = sum(times) / len(times)
    result = {"who": "python", "model": args.model, "strategy": args.strategy,
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "batch_size": args.batch_size, "length": args.length, "warmup": args.warmup,
              "steps": args.steps, "trainable_params": trainable, "total_params": total,
              "step_seconds": times, "mean_step_s": mean, "median_step_s": statistics.median(times),
              "min_step_s": min(times), "examples_per_s": examples / mean,
              "tokens_per_s": tokens / mean, "best_examples_per_s": examples / min(times),
              "best_tokens_per_s": tokens / min(times), "first_loss": losses[0],
              "last_loss": losses[-1]}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"python {args.model} {args.strategy}: {args.steps} steps of batch {args.batch_size} x "
              f"{args.length} tokens, {result['threads']} threads, torch {torch.__version__}, "
              f"{trainable:,} of {total:,} parameters trainable")
        print(f"  step mean {mean * 1e3:.1f} ms, median {result['median_step_s'] * 1e3:.1f} ms, "
              f"min {min(times) * 1e3:.1f} ms")
        print(f"  {result['examples_per_s']:.2f} examples/s, {result['tokens_per_s']:.1f} tokens/s "
              f"(best step: {result['best_examples_per_s']:.2f} examples/s, "
              f"{result['best_tokens_per_s']:.1f} tokens/s)")


if __name__ == "__main__":
    main()
