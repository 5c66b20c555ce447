"""Reference classification-finetuning runs for the chapter-6 / appendix-E trainer tests: the
book's loop (train_classifier_simple with calc_loss_batch on the last position's logits,
calc_loss_loader, calc_accuracy_loader, evaluate_model) in Python PyTorch, on the small GPT of
fixtures_train.py (CONFIG there: vocab 97, context 16, emb 32, 4 heads, 2 layers, drop 0.0,
qkv_bias False), dropout off, on synthetic token data.

Scenarios:
  book   the book's surgery (ch. 6.5): freeze every parameter; torch.manual_seed(SEED);
         out_head = nn.Linear(emb_dim, 2) (with bias: weight then bias are the next draws);
         unfreeze trf_blocks[-1] and final_norm. Trainable: last block, final norm, new head.
  lora   appendix E: freeze every parameter; torch.manual_seed(SEED); the same new head; freeze
         every parameter again (the head too); replace every nn.Linear, in registration order,
         depth first (per block W_query, W_key, W_value, out_proj, ff.layers.0, ff.layers.2; then
         out_head) by base linear + LoRA, lora(x) = (alpha / rank) * (x @ A @ B), A (in_dim, rank)
         drawn with kaiming_uniform_(a=sqrt(5)) (i.e. U(-1/sqrt(rank), 1/sqrt(rank)), the draws
         continuing right after the head's), B zeros (rank, out_dim). Trainable: every A and B.

The exact sequence (the C++ test replicates it; every draw is from torch's global CPU generator):
  1. torch.manual_seed(SEED); train loader = DataLoader(dataset(train_inputs, train_labels),
     batch_size 4, shuffle=True, drop_last=True); val loader = DataLoader(dataset(val_inputs,
     val_labels), batch_size 4, shuffle=False, drop_last=False). Creating the loaders draws
     nothing. Every pass over either loader (iter()) draws one int64 (the iterator's base seed,
     torch.empty((), int64).random_()); a pass over the train loader then, at its first batch,
     draws a second int64 s and uses torch.randperm(48, generator=Generator().manual_seed(s)).
  2. torch.manual_seed(SEED); model = GPTModel(CONFIG) (fixtures_train.py).
  3. the scenario's surgery above (with its own torch.manual_seed(SEED) before the head).
  4. save the state dict of the converted model -> <name>_init.pt; eval mode, no grad:
     logits_before = model(val_inputs[:2])[:, -1, :] (draws nothing).
  5. torch.manual_seed(SEED); optimizer = torch.optim.AdamW(model.parameters(), lr 5e-3 (the book
     uses 5e-5 / 8e-4 on pretrained weights; raised so that 3 epochs from random weights move),
     weight_decay=0.1) (default single-tensor CPU path; frozen parameters get no gradient and
     are skipped).
  6. train_classifier_simple(num_epochs, eval_freq, eval_iter): global_step = -1; per epoch:
     model.train(); per batch: zero_grad, loss = CE(model(x)[:, -1, :], y), backward, step,
     examples_seen += batch rows, global_step += 1, and when global_step % eval_freq == 0:
     evaluate_model (eval mode, no grad, mean loss over the first eval_iter batches of the train
     loader -- a new shuffled pass -- then of the val loader; back to train mode). After each
     epoch: calc_accuracy_loader over eval_iter batches of the train loader, then of the val
     loader (each a new pass, eval mode, no grad).
  7. final accuracies: calc_accuracy_loader over the full train loader, then the full val loader.

Files (torch.save dicts of name -> tensor, JSON):
  data.pt            train_inputs (48, 16) int64, train_labels (48,) int64, val_inputs (16, 16),
                     val_labels (16,)
  <name>_init.pt     the converted model's weights before training, the book's GPT names for the
                     base weights ("tok_emb.weight", "trf_blocks.0.att.W_query.weight",
                     "out_head.weight", "out_head.bias", ...; the LoRA wrapper's ".linear." is
                     dropped) and "X.lora.A" (in_dim, rank) / "X.lora.B" (rank, out_dim) for the
                     adapters; the causal-mask buffers are omitted
  <name>_final.pt    the trainable parameters after training (same names)
  <name>.json        model, settings, step_losses, evals, epoch_accuracies, final_accuracies,
                     logits_before
"""
import json
import math
import re

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from fixtures_train import CONFIG, SEED, GPTModel

NUM_TRAIN, NUM_VAL = 48, 16
MAX_LENGTH = CONFIG["context_length"]  # 16
PAD_TOKEN_ID = CONFIG["vocab_size"] - 1  # 96; real tokens are in [0, 96)
NUM_CLASSES = 2
BATCH_SIZE = 4

BASE = {"seed": SEED, "batch_size": BATCH_SIZE, "num_epochs": 3, "learning_rate": 5e-3,
        "weight_decay": 0.1, "eval_freq": 3, "eval_iter": 2, "rank": None, "alpha": None,
        "num_classes": NUM_CLASSES, "pad_token_id": PAD_TOKEN_ID, "max_length": MAX_LENGTH}
SCENARIOS = {
    "book": dict(BASE, strategy="book"),
    "lora": dict(BASE, strategy="lora", rank=4, alpha=8),  # alpha / rank = 2 != alpha
}

# --- Data -------------------------------------------------------------------------------------


def make_data():
    """Deterministic synthetic examples: the tokens of a label-1 example are drawn from [0, 48),
    those of a label-0 example from [48, 96); real lengths 3..16, right-padded with PAD_TOKEN_ID.
    Uses its own generator (seed 2024), not the global one."""
    g = torch.Generator().manual_seed(2024)
    half = PAD_TOKEN_ID // 2

    def examples(n):
        inputs = torch.full((n, MAX_LENGTH), PAD_TOKEN_ID, dtype=torch.long)
        labels = torch.randint(0, 2, (n,), generator=g)
        for i in range(n):
            length = int(torch.randint(3, MAX_LENGTH + 1, (1,), generator=g))
            low, high = (0, half) if labels[i] == 1 else (half, PAD_TOKEN_ID)
            inputs[i, :length] = torch.randint(low, high, (length,), generator=g)
        return inputs, labels

    train_inputs, train_labels = examples(NUM_TRAIN)
    val_inputs, val_labels = examples(NUM_VAL)
    return {"train_inputs": train_inputs, "train_labels": train_labels,
            "val_inputs": val_inputs, "val_labels": val_labels}


class Examples(Dataset):
    """SpamDataset's item shape: (int64 ids of MAX_LENGTH, 0-dim int64 label)."""

    def __init__(self, inputs, labels):
        self.inputs, self.labels = inputs, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.inputs[i], self.labels[i]


# --- Surgery (book §6.5, appendix E) ----------------------------------------------------------


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


def convert(model, s):
    for p in model.parameters():
        p.requires_grad = False
    torch.manual_seed(SEED)
    model.out_head = nn.Linear(CONFIG["emb_dim"], NUM_CLASSES)
    if s["strategy"] == "book":
        for p in model.trf_blocks[-1].parameters():
            p.requires_grad = True
        for p in model.final_norm.parameters():
            p.requires_grad = True
    else:
        for p in model.parameters():
            p.requires_grad = False
        replace_linear_with_lora(model, s["rank"], s["alpha"])


def book_name(name):
    """'trf_blocks.0.att.W_query.linear.weight' -> 'trf_blocks.0.att.W_query.weight'."""
    return re.sub(r"\.linear\.(weight|bias)$", r".\1", name)


def named_weights(model):
    return {book_name(n): t.detach().clone() for n, t in model.state_dict().items()
            if not n.endswith(".mask")}


# --- The loop (book §6.6-6.7) -----------------------------------------------------------------


def calc_loss_batch(x, y, model):
    return torch.nn.functional.cross_entropy(model(x)[:, -1, :], y)


def calc_loss_loader(loader, model, num_batches=None):
    if len(loader) == 0:
        return float("nan")
    num_batches = len(loader) if num_batches is None else min(num_batches, len(loader))
    total = 0.0
    for i, (x, y) in enumerate(loader):
        if i >= num_batches:
            break
        total += calc_loss_batch(x, y, model).item()
    return total / num_batches


def calc_accuracy_loader(loader, model, num_batches=None):
    model.eval()
    num_batches = len(loader) if num_batches is None else min(num_batches, len(loader))
    correct, examples = 0, 0
    for i, (x, y) in enumerate(loader):
        if i >= num_batches:
            break
        with torch.no_grad():
            predicted = torch.argmax(model(x)[:, -1, :], dim=-1)
        examples += predicted.shape[0]
        correct += (predicted == y).sum().item()
    return correct / examples


def evaluate_model(model, train_loader, val_loader, eval_iter):
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, eval_iter)
        val_loss = calc_loss_loader(val_loader, model, eval_iter)
    model.train()
    return train_loss, val_loss


def train_classifier_simple(model, train_loader, val_loader, optimizer, s):
    step_losses, evals, accuracies = [], [], []
    examples_seen, global_step = 0, -1
    for epoch in range(s["num_epochs"]):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch(x, y, model)
            loss.backward()
            optimizer.step()
            step_losses.append(loss.item())
            examples_seen += x.shape[0]
            global_step += 1
            if global_step % s["eval_freq"] == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, s["eval_iter"])
                evals.append({"epoch": epoch + 1, "step": global_step, "examples_seen": examples_seen,
                              "train_loss": train_loss, "val_loss": val_loss})
        train_acc = calc_accuracy_loader(train_loader, model, s["eval_iter"])
        val_acc = calc_accuracy_loader(val_loader, model, s["eval_iter"])
        accuracies.append({"epoch": epoch + 1, "train": train_acc, "val": val_acc})
    return step_losses, evals, accuracies, examples_seen


# --- Driver -----------------------------------------------------------------------------------


def run(name, s, data, out_dir):
    torch.manual_seed(SEED)
    train_loader = DataLoader(Examples(data["train_inputs"], data["train_labels"]),
                              batch_size=s["batch_size"], shuffle=True, drop_last=True, num_workers=0)
    val_loader = DataLoader(Examples(data["val_inputs"], data["val_labels"]),
                            batch_size=s["batch_size"], shuffle=False, drop_last=False, num_workers=0)
    torch.manual_seed(SEED)
    model = GPTModel(CONFIG)
    convert(model, s)
    torch.save(named_weights(model), out_dir / f"{name}_init.pt")
    trainable = [(book_name(n), p) for n, p in model.named_parameters() if p.requires_grad]
    model.eval()
    with torch.no_grad():
        logits_before = model(data["val_inputs"][:2])[:, -1, :]

    torch.manual_seed(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s["learning_rate"],
                                  weight_decay=s["weight_decay"])
    step_losses, evals, accuracies, examples_seen = train_classifier_simple(
        model, train_loader, val_loader, optimizer, s)
    final = {"train": calc_accuracy_loader(train_loader, model),
             "val": calc_accuracy_loader(val_loader, model)}
    torch.save({n: p.detach().clone() for n, p in trainable}, out_dir / f"{name}_final.pt")

    settings = dict(s, trainable=[n for n, _ in trainable],
                    trainable_count=sum(p.numel() for _, p in trainable))
    record = {"model": CONFIG, "settings": settings, "step_losses": step_losses, "evals": evals,
              "epoch_accuracies": accuracies, "final_accuracies": final,
              "examples_seen": examples_seen, "logits_before": logits_before.tolist()}
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=1))
    return record


def make(out_dir, data_dir):
    torch.set_num_threads(1)
    data = make_data()
    torch.save(data, out_dir / "data.pt")
    for name, settings in SCENARIOS.items():
        run(name, settings, data, out_dir)


if __name__ == "__main__":
    import pathlib
    import sys

    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fx/classify")
    out.mkdir(parents=True, exist_ok=True)
    make(out, None)
