"""Decoding strategies (book §5.3) in plain PyTorch, for the sampler's golden test.

For a set of logits and sampling settings, the reference seeds the global generator, then draws
the next token several times in a row from the same logits, recording every id. The C++ sampler
must give the same ids draw for draw: it calls the same torch.multinomial kernel in the same
order. The filtering rules are written here from their definitions (top-k keeps ties with the
k-th logit; top-p keeps a token while the probability sorted before it is below p).
"""
import json

import torch


def top_k_filter(logits, k):
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits, p):
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    sorted_probs = torch.softmax(sorted_logits, dim=-1)
    cumulative = sorted_probs.cumsum(dim=-1)
    before = torch.cat([torch.zeros_like(cumulative[..., :1]), cumulative[..., :-1]], dim=-1)
    drop_sorted = before >= p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token(logits, temperature, top_k, top_p):
    """The book's generate step (top-k, temperature, row max, softmax, multinomial) + top-p."""
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if temperature <= 0.0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    logits = logits / temperature
    logits = logits - logits.max(dim=-1, keepdim=True).values
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.multinomial(torch.softmax(logits, dim=-1), num_samples=1)


# The book's toy vocabulary and next-token logits (BOOK.md §6.3).
TOY_LOGITS = [4.51, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79]

CASES = [
    # name, logits key, seed, temperature, top_k, top_p, steps
    ("toy_t1", "toy", 123, 1.0, None, None, 1000),
    ("toy_t01", "toy", 123, 0.1, None, None, 1000),
    ("toy_t5", "toy", 123, 5.0, None, None, 1000),
    ("toy_topk3_t1", "toy", 123, 1.0, 3, None, 200),
    ("toy_topp05", "toy", 7, 1.0, None, 0.5, 200),
    ("vocab_greedy", "vocab", 123, 0.0, None, None, 3),
    ("vocab_greedy_topk", "vocab", 123, 0.0, 5, None, 3),
    ("vocab_t1", "vocab", 123, 1.0, None, None, 10),
    ("vocab_t07_k50", "vocab", 1, 0.7, 50, None, 10),
    ("vocab_t14_k25", "vocab", 123, 1.4, 25, None, 10),
    ("vocab_t15_k50", "vocab", 123, 1.5, 50, None, 10),
    ("vocab_t1_p09", "vocab", 42, 1.0, None, 0.9, 10),
    ("vocab_t08_k40_p095", "vocab", 5, 0.8, 40, 0.95, 10),
    ("vocab_t1_k1", "vocab", 9, 1.0, 1, None, 5),
    ("vocab_t2_p1", "vocab", 11, 2.0, None, 1.0, 10),
    ("ties_k2", "ties", 3, 1.0, 2, None, 100),
    ("ties_p05", "ties", 3, 1.0, None, 0.5, 100),
]


def make(out_dir, data_dir):
    torch.manual_seed(2024)
    logits = {
        "toy": torch.tensor([TOY_LOGITS]),  # (1, 9)
        "vocab": torch.randn(4, 50257) * 3.0,  # (4, 50257), four rows sampled at once
        # Equal logits: top-k keeps every tie with the k-th value; top-p keeps id order.
        "ties": torch.tensor([[1.0, 3.0, 2.0, 3.0, 2.0, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]),
    }
    tensors = {f"logits_{k}": v for k, v in logits.items()}
    cases = []
    for name, key, seed, temperature, top_k, top_p, steps in CASES:
        torch.manual_seed(seed)
        ids = [next_token(logits[key], temperature, top_k, top_p) for _ in range(steps)]
        tensors[f"ids_{name}"] = torch.cat(ids, dim=-1)  # (B, steps)
        cases.append({"name": name, "logits": key, "seed": seed, "temperature": temperature,
                      "top_k": top_k, "top_p": top_p, "steps": steps})

    # The filters on their own, as masks of the surviving entries (the values are unchanged).
    for key in ("toy", "vocab", "ties"):
        for k in (1, 2, 3, 25):
            tensors[f"topk_{key}_{k}"] = torch.isfinite(top_k_filter(logits[key], k))
        for p in (0.05, 0.5, 0.9, 0.999):
            tensors[f"topp_{key}_{p}"] = torch.isfinite(top_p_filter(logits[key], p))

    # The book's single draws: softmax over the 1-d toy logits, multinomial of a 1-d tensor.
    toy = logits["toy"][0]
    for temperature in (1.0, 0.1, 5.0):
        probas = torch.softmax(toy / temperature, dim=0)
        torch.manual_seed(123)
        draws = [torch.multinomial(probas, num_samples=1) for _ in range(1000)]
        tensors[f"draws_1d_t{temperature}"] = torch.cat(draws)
        tensors[f"probas_1d_t{temperature}"] = probas

    torch.save(tensors, out_dir / "tensors.pt")
    (out_dir / "cases.json").write_text(json.dumps(cases, indent=1))
