"""Reference training runs for tests/golden/test_trainer_parity.cpp: the book's training loop
(chapter 5's train_model_simple, appendix D's train_model) in Python PyTorch, on a small GPT
written here from the formulas of book chapters 3-4, with dropout off.

For each scenario the C++ test builds the same loaders from the same token ids and seed, loads
the same initial weights, seeds again, trains with llmfs::Trainer and compares the loss of every
step and every evaluation. Files per scenario (torch.save dicts, JSON):
  <name>.json        settings, per-step losses and learning rates, evaluations
  <name>_init.pt     the initial weights (the book's state_dict names)
  tokens.pt          the token ids (train and validation split)
"""
import json
import math

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

CONFIG = {"vocab_size": 97, "context_length": 16, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
          "drop_rate": 0.0, "qkv_bias": False}
MAX_LENGTH = 16
BATCH_SIZE = 2
SEED = 123

# --- The model (book ch. 3-4), written from the formulas --------------------------------------


class LayerNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        centered = x - x.mean(dim=-1, keepdim=True)
        variance = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * (centered / torch.sqrt(variance + self.eps)) + self.shift


class GELU(nn.Module):
    def forward(self, x):
        c = torch.sqrt(torch.tensor(2.0 / torch.pi))
        return 0.5 * x * (1 + torch.tanh(c * (x + 0.044715 * torch.pow(x, 3))))


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias):
        super().__init__()
        self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x):
        b, t, _ = x.shape

        def heads(y):  # (B, T, C) -> (B, H, T, D)
            return y.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.W_query(x)), heads(self.W_key(x)), heads(self.W_value(x))
        scores = q @ k.transpose(2, 3)
        scores.masked_fill_(self.mask.bool()[:t, :t], -torch.inf)
        weights = self.dropout(torch.softmax(scores / k.shape[-1] ** 0.5, dim=-1))
        context = (weights @ v).transpose(1, 2).contiguous().view(b, t, self.d_out)
        return self.out_proj(context)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(dim, 4 * dim), GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        return self.layers(x)


class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.att = MultiHeadAttention(cfg["emb_dim"], cfg["emb_dim"], cfg["context_length"],
                                      cfg["drop_rate"], cfg["n_heads"], cfg["qkv_bias"])
        self.ff = FeedForward(cfg["emb_dim"])
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
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
        t = idx.shape[1]
        x = self.drop_emb(self.tok_emb(idx) + self.pos_emb(torch.arange(t, device=idx.device)))
        return self.out_head(self.final_norm(self.trf_blocks(x)))


# --- Data and the training loop (book §5.1.3, §5.2, appendix D) -------------------------------


class Windows(Dataset):
    """GPTDatasetV1: windows of max_length tokens every stride tokens, targets shifted by one."""

    def __init__(self, ids, max_length, stride):
        self.ids, self.max_length = ids, max_length
        self.starts = list(range(0, len(ids) - max_length, stride))

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, i):
        s = self.starts[i]
        return (torch.tensor(self.ids[s:s + self.max_length]),
                torch.tensor(self.ids[s + 1:s + self.max_length + 1]))


def token_ids(n):
    """A fixed sequence with structure to learn: a repeating pattern, every 7th token random."""
    ids, state = [], 12345
    for i in range(n):
        state = (state * 1103515245 + 12345) % 2**32
        ids.append((state >> 16) % CONFIG["vocab_size"] if i % 7 == 0 else (i * 5) % CONFIG["vocab_size"])
    return ids


def calc_loss_batch(x, y, model):
    logits = model(x)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())


def calc_loss_loader(loader, model, num_batches):
    if len(loader) == 0:
        return float("nan")
    num_batches = min(num_batches, len(loader))
    total = 0.0
    for i, (x, y) in enumerate(loader):
        if i >= num_batches:
            break
        total += calc_loss_batch(x, y, model).item()
    return total / num_batches


def train(model, train_loader, val_loader, s):
    optimizer = torch.optim.AdamW(model.parameters(), lr=s["learning_rate"],
                                  weight_decay=s["weight_decay"], fused=s["fused_adamw"])
    total_steps = len(train_loader) * s["num_epochs"]
    peak = optimizer.param_groups[0]["lr"]
    step_losses, lrs, evals = [], [], []
    tokens_seen, global_step = 0, -1
    for epoch in range(s["num_epochs"]):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            global_step += 1
            if s["lr_schedule"] == "warmup_cosine":
                w = s["warmup_steps"]
                if global_step < w:
                    lr = s["initial_lr"] + global_step * ((peak - s["initial_lr"]) / w)
                else:
                    progress = (global_step - w) / (total_steps - w)
                    lr = s["min_lr"] + (peak - s["min_lr"]) * 0.5 * (1 + math.cos(math.pi * progress))
                for group in optimizer.param_groups:
                    group["lr"] = lr
            lrs.append(optimizer.param_groups[0]["lr"])
            loss = calc_loss_batch(x, y, model)
            loss.backward()
            if s["grad_clip"] is not None and global_step >= s["warmup_steps"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=s["grad_clip"])
            optimizer.step()
            tokens_seen += x.numel()
            step_losses.append(loss.item())
            if global_step % s["eval_freq"] == 0:
                model.eval()
                with torch.no_grad():
                    train_loss = calc_loss_loader(train_loader, model, s["eval_iter"])
                    val_loss = calc_loss_loader(val_loader, model, s["eval_iter"])
                model.train()
                evals.append({"epoch": epoch + 1, "step": global_step, "tokens_seen": tokens_seen,
                              "train_loss": train_loss, "val_loss": val_loss})
    return step_losses, lrs, evals


BASE = {"num_epochs": 2, "learning_rate": 1e-3, "weight_decay": 0.1, "eval_freq": 1,
        "eval_iter": 2, "lr_schedule": "constant", "warmup_steps": 0, "initial_lr": 1e-5,
        "min_lr": 1e-5, "grad_clip": None, "fused_adamw": False}
SCENARIOS = {
    # Chapter 5's loop: constant rate, no clipping (lr raised from 4e-4 so that 2 epochs move).
    "book": dict(BASE),
    # Appendix D: linear warmup, cosine decay, clipping from step W on.
    "appendix_d": dict(BASE, lr_schedule="warmup_cosine", warmup_steps=6, grad_clip=1.0),
    # PyTorch's fused AdamW kernel (fused=True) against aten::_fused_adamw_.
    "fused": dict(BASE, fused_adamw=True),
}


def make(out_dir, data_dir):
    torch.set_num_threads(1)
    ids = token_ids(660)
    train_ids, val_ids = ids[:540], ids[540:]
    torch.save({"train": torch.tensor(train_ids), "val": torch.tensor(val_ids)}, out_dir / "tokens.pt")
    for name, settings in SCENARIOS.items():
        torch.manual_seed(SEED)
        train_loader = DataLoader(Windows(train_ids, MAX_LENGTH, MAX_LENGTH), batch_size=BATCH_SIZE,
                                  shuffle=True, drop_last=True, num_workers=0)
        val_loader = DataLoader(Windows(val_ids, MAX_LENGTH, MAX_LENGTH), batch_size=BATCH_SIZE,
                                shuffle=False, drop_last=False, num_workers=0)
        torch.manual_seed(SEED)
        model = GPTModel(CONFIG)
        torch.save(dict(model.state_dict()), out_dir / f"{name}_init.pt")
        torch.manual_seed(SEED)  # both sides seed again: the draws of model construction don't matter
        step_losses, lrs, evals = train(model, train_loader, val_loader, settings)
        record = {"model": CONFIG, "max_length": MAX_LENGTH, "batch_size": BATCH_SIZE, "seed": SEED,
                  "settings": settings, "step_losses": step_losses, "lrs": lrs, "evals": evals}
        (out_dir / f"{name}.json").write_text(json.dumps(record, indent=1))
