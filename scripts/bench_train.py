#!/usr/bin/env python3
"""Python side of scripts/bench_train.sh: CPU training throughput of the book's chapter-5 loop.

Two variants of the same model (GPT_CONFIG_124M, context 256, drop_rate 0.1) on the same data
(the-verdict, windows of 256, batch 2), AdamW lr 4e-4, weight decay 0.1:
  book       the book's modules: LayerNorm and GELU from their formulas, attention with an explicit
             mask and softmax, torch.optim.AdamW (the single-tensor CPU path)
  optimized  the book's faster variant (ch05/10_llm-training-speed): F.layer_norm,
             F.gelu(approximate="tanh"), F.scaled_dot_product_attention, AdamW(fused=True)
Times each optimizer step (zero_grad, forward, loss, backward, step, loss.item()) after `warmup`
untimed steps and prints one JSON line: the step times and tokens/s of the fastest step.
The model classes are written here from the formulas (book chapters 3-4).
"""
import argparse
import json
import math
import os
import time

import tiktoken
import tiktoken.load
import torch
import torch.nn as nn
import torch.nn.functional as F

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

CFG = {"vocab_size": 50257, "context_length": 256, "emb_dim": 768, "n_heads": 12, "n_layers": 12,
       "drop_rate": 0.1, "qkv_bias": False}


class BookLayerNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * ((x - mean) / torch.sqrt(var + self.eps)) + self.shift


class NativeLayerNorm(BookLayerNorm):
    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.scale, self.shift, self.eps)


class BookGELU(nn.Module):
    def forward(self, x):
        c = torch.sqrt(torch.tensor(2.0 / torch.pi))
        return 0.5 * x * (1 + torch.tanh(c * (x + 0.044715 * torch.pow(x, 3))))


class NativeGELU(nn.Module):
    def forward(self, x):
        return F.gelu(x, approximate="tanh")


class Attention(nn.Module):
    def __init__(self, cfg, fused):
        super().__init__()
        d = cfg["emb_dim"]
        self.h, self.fused, self.p = cfg["n_heads"], fused, cfg["drop_rate"]
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
        if self.fused:
            ctx = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0,
                                                 is_causal=True)
        else:
            s = q @ k.transpose(2, 3)
            s.masked_fill_(self.mask.bool()[:t, :t], -torch.inf)
            ctx = self.dropout(torch.softmax(s / k.shape[-1] ** 0.5, dim=-1)) @ v
        return self.out_proj(ctx.transpose(1, 2).contiguous().view(b, t, d))


class Block(nn.Module):
    def __init__(self, cfg, optimized):
        super().__init__()
        d = cfg["emb_dim"]
        norm = NativeLayerNorm if optimized else BookLayerNorm
        gelu = NativeGELU if optimized else BookGELU
        self.att = Attention(cfg, optimized)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), gelu(), nn.Linear(4 * d, d))
        self.norm1, self.norm2 = norm(d), norm(d)
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        return x + self.drop_shortcut(self.ff(self.norm2(x)))


class GPT(nn.Module):
    def __init__(self, cfg, optimized):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[Block(cfg, optimized) for _ in range(cfg["n_layers"])])
        self.final_norm = (NativeLayerNorm if optimized else BookLayerNorm)(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, idx):
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1], device=idx.device))
        return self.out_head(self.final_norm(self.trf_blocks(self.drop_emb(x))))


def timed_step(model, opt, x, y, bf16=False):
    """One optimizer step (zero_grad, forward, loss, backward, step, loss.item()); its seconds."""
    start = time.perf_counter()
    opt.zero_grad()
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    loss.backward()
    opt.step()
    loss.item()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=["book", "optimized"], required=True)
    ap.add_argument("--steps", type=int, default=3, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--data", required=True, help="the-verdict.txt")
    ap.add_argument("--gpt2", required=True, help="folder with encoder.json and vocab.bpe")
    ap.add_argument("--device", default="cpu", help="cpu | cuda (scripts/gpu_check.sh)")
    ap.add_argument("--bf16", action="store_true", help="torch.autocast(device, dtype=bfloat16)")
    ap.add_argument("--context", type=int, default=256, help="context length and window")
    ap.add_argument("--stride", type=int, default=0, help="tokens between windows (0: the window)")
    ap.add_argument("--batch", type=int, default=2, help="windows per step")
    args = ap.parse_args()
    CFG["context_length"] = args.context

    text = open(args.data, encoding="utf-8").read()
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(os.path.join(args.gpt2, "vocab.bpe"),
                                                          os.path.join(args.gpt2, "encoder.json"))
    enc = tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": 50256})
    ids = enc.encode(text[: int(0.9 * len(text))], allowed_special={"<|endoftext|>"})
    n = CFG["context_length"]
    stride = args.stride or n
    windows = [(ids[s:s + n], ids[s + 1:s + n + 1]) for s in range(0, len(ids) - n, stride)]
    torch.manual_seed(123)
    optimized = args.variant == "optimized"
    device = torch.device(args.device)
    model = GPT(CFG, optimized).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1,
                            fused=optimized or device.type == "cuda")
    times = []
    for i in range(args.warmup + args.steps):
        picked = [windows[(args.batch * i + k) % len(windows)] for k in range(args.batch)]
        x = torch.tensor([w[0] for w in picked], device=device)
        y = torch.tensor([w[1] for w in picked], device=device)
        seconds = timed_step(model, opt, x, y, args.bf16)
        if i >= args.warmup:
            times.append(seconds)
    tokens = args.batch * n
    print(json.dumps({"variant": args.variant, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "step_seconds": times,
                      "tokens_per_step": tokens, "tokens_per_s": tokens / min(times)}))


if __name__ == "__main__":
    main()
