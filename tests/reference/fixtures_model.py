"""A GPT forward pass written from the formulas of BOOK.md §4-§5 (pre-LayerNorm blocks, causal
multi-head attention, tanh GELU, untied head), in plain functional PyTorch, for golden tests of
llmfs::GPTModel with shared weights.

Writes model/gpt_tiny.pt: a plain dict with the config values, every weight under the book's
state_dict key ("weight.<key>"), the input ids, the logits, and the greedy continuation of the
first row (12 tokens, running past the context of 16).
"""
import math

import torch

CFG = {
    "vocab_size": 97,
    "context_length": 16,
    "emb_dim": 24,
    "n_heads": 3,
    "n_layers": 2,
    "qkv_bias": True,
}


def init_weights(cfg, generator):
    """Random weights under the book's keys (shapes as nn.Linear: (out, in))."""
    c, v = cfg["emb_dim"], cfg["vocab_size"]

    def rnd(*shape, scale=0.3):
        return torch.randn(*shape, generator=generator) * scale

    w = {"tok_emb.weight": rnd(v, c, scale=1.0), "pos_emb.weight": rnd(cfg["context_length"], c, scale=1.0)}
    for i in range(cfg["n_layers"]):
        p = f"trf_blocks.{i}."
        for name in ("W_query", "W_key", "W_value"):
            w[p + f"att.{name}.weight"] = rnd(c, c)
            if cfg["qkv_bias"]:
                w[p + f"att.{name}.bias"] = rnd(c, scale=0.1)
        w[p + "att.out_proj.weight"] = rnd(c, c)
        w[p + "att.out_proj.bias"] = rnd(c, scale=0.1)
        w[p + "ff.layers.0.weight"] = rnd(4 * c, c)
        w[p + "ff.layers.0.bias"] = rnd(4 * c, scale=0.1)
        w[p + "ff.layers.2.weight"] = rnd(c, 4 * c, scale=0.15)
        w[p + "ff.layers.2.bias"] = rnd(c, scale=0.1)
        for norm in ("norm1", "norm2"):
            w[p + f"{norm}.scale"] = 1.0 + rnd(c, scale=0.1)
            w[p + f"{norm}.shift"] = rnd(c, scale=0.1)
    w["final_norm.scale"] = 1.0 + rnd(c, scale=0.1)
    w["final_norm.shift"] = rnd(c, scale=0.1)
    w["out_head.weight"] = rnd(v, c)
    return w


def layer_norm(x, scale, shift, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    sigma2 = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased variance
    return scale * (x - mu) / torch.sqrt(sigma2 + eps) + shift


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def affine(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def attention(x, w, p, n_heads):
    bsz, t, c = x.shape
    hd = c // n_heads

    def heads(name):
        y = affine(x, w[p + f"{name}.weight"], w.get(p + f"{name}.bias"))
        return y.reshape(bsz, t, n_heads, hd).permute(0, 2, 1, 3)  # (B, H, T, D)

    q, k, v = heads("W_query"), heads("W_key"), heads("W_value")
    scores = torch.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(hd)
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(future, float("-inf"))
    ctx = torch.einsum("bhts,bhsd->bhtd", torch.softmax(scores, -1), v)
    ctx = ctx.permute(0, 2, 1, 3).reshape(bsz, t, c)
    return affine(ctx, w[p + "out_proj.weight"], w[p + "out_proj.bias"])


def gpt_forward(w, ids, cfg):
    t = ids.shape[1]
    x = w["tok_emb.weight"][ids] + w["pos_emb.weight"][:t]
    for i in range(cfg["n_layers"]):
        p = f"trf_blocks.{i}."
        h = layer_norm(x, w[p + "norm1.scale"], w[p + "norm1.shift"])
        x = x + attention(h, w, p + "att.", cfg["n_heads"])
        h = layer_norm(x, w[p + "norm2.scale"], w[p + "norm2.shift"])
        h = gelu_tanh(affine(h, w[p + "ff.layers.0.weight"], w[p + "ff.layers.0.bias"]))
        x = x + affine(h, w[p + "ff.layers.2.weight"], w[p + "ff.layers.2.bias"])
    x = layer_norm(x, w["final_norm.scale"], w["final_norm.shift"])
    return x @ w["out_head.weight"].T


def make(out_dir, data_dir):
    generator = torch.Generator().manual_seed(2024)
    weights = init_weights(CFG, generator)
    ids = torch.randint(0, CFG["vocab_size"], (2, 11), generator=generator)
    with torch.no_grad():
        logits = gpt_forward(weights, ids, CFG)
        seq = ids[:1]
        for _ in range(12):  # greedy, past the context of 16
            nxt = gpt_forward(weights, seq[:, -CFG["context_length"]:], CFG)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
    fixture = {f"cfg.{k}": torch.tensor(int(v)) for k, v in CFG.items()}
    fixture.update({f"weight.{k}": t.contiguous() for k, t in weights.items()})
    fixture["ids"] = ids
    fixture["logits"] = logits
    fixture["greedy"] = seq
    torch.save(fixture, out_dir / "gpt_tiny.pt")
