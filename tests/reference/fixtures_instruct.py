"""Chapter 7's batches in Python PyTorch, for tests/golden/test_instruction_data.cpp: the real
instruction-data.json, tiktoken's GPT-2 encoding, and the book's data pipeline written here from
its description (BOOK.md §1.3 and §8.1, exercises 7.1 and 7.2):

  prompt     Alpaca: preamble, "\\n\\n### Instruction:\\n" + instruction, and
             "\\n\\n### Input:\\n" + input only when the input is not empty; response
             "\\n\\n### Response:\\n" + output. Phi-3: "<|user|>\\n" + instruction (+ "\\n" + input),
             response "\\n<|assistant|>:\\n" + output.
  split      file order: train = first int(n * 0.85), test = next int(n * 0.1), validation = rest.
  dataset    item = encode(prompt + response) (plain encode), plus len(encode(prompt)).
  collate    L = longest + 1; each row gets one pad id and is padded with it to L; inputs =
             row[:-1], targets = row[1:]; in each target row every pad id after the first one
             becomes -100; optionally targets[:prompt_len - 1] = -100 (exercise 7.2); then both
             are cut to allowed_max_length.
  loaders    torch.manual_seed(123); train DataLoader(batch 8, shuffle, drop_last), validation and
             test DataLoader(batch 8); num_workers 0.

Scenarios (each seeds 123 right before its loaders, as the book does):
  book       allowed_max_length 1024: the sequence length of every batch of two training passes,
             the first two and the last training batches of the first pass, the first
             validation and the last test batch.
  masked     mask_instruction: the first two training batches.
  cut64      allowed_max_length 64: the first two training batches.
  phi3       the Phi-3 prompt style: the first two training batches.

File: instruct.json {scenario: {"lengths": [[...], [...]], "batches": {name: {"inputs": [[...]],
"targets": [[...]]}}, "num_batches": n}}.

Finetuning parity (the masked loss of chapter 7's first steps): the book's train_model_simple on
the small GPT of fixtures_train.py with GPT-2's vocabulary (SFT_CONFIG: vocab 50257, context 128,
emb 32, 4 heads, 2 layers, drop 0.0, qkv_bias True), for SFT_STEPS optimizer steps, in the order
  torch.manual_seed(123); the loaders above (allowed_max_length 128); torch.manual_seed(123);
  GPTModel(SFT_CONFIG) -> sft_init.pt (its weights; both sides load them); torch.manual_seed(123);
  AdamW(lr 5e-4 (the book's 5e-5 raised so that 10 steps from random weights move), weight decay
  0.1); per batch: zero_grad, cross entropy (targets of -100 skipped), backward, step; every 5
  steps (from step 0): eval mode, no grad, mean loss over 2 batches of a new training pass, then
  2 validation batches.
Scenarios: sft (the book's collate) and sft_masked (exercise 7.2's prompt masking).
Files: sft_init.pt, sft.json / sft_masked.json {settings, step_losses, evals}.
"""
import json

import torch
from torch.utils.data import DataLoader, Dataset

from fixtures_data import find_data, gpt2_encoding

PAD = 50256
IGNORE = -100
BATCH_SIZE = 8
SEED = 123

PREAMBLE = ("Below is an instruction that describes a task. "
            "Write a response that appropriately completes the request.")


def prompt_of(entry, style):
    if style == "phi3":
        text = "<|user|>\n" + entry["instruction"]
        return text + ("\n" + entry["input"] if entry["input"] else "")
    text = PREAMBLE + "\n\n### Instruction:\n" + entry["instruction"]
    return text + ("\n\n### Input:\n" + entry["input"] if entry["input"] else "")


def response_of(entry, style):
    if style == "phi3":
        return "\n<|assistant|>:\n" + entry["output"]
    return "\n\n### Response:\n" + entry["output"]


class Encoded(Dataset):
    def __init__(self, entries, enc, style):
        self.items = []
        for entry in entries:
            prompt = prompt_of(entry, style)
            self.items.append((enc.encode(prompt + response_of(entry, style)),
                               len(enc.encode(prompt))))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def collate(batch, allowed_max_length=None, mask_prompt=False):
    width = max(len(ids) for ids, _ in batch) + 1
    inputs, targets = [], []
    for ids, prompt_len in batch:
        row = list(ids) + [PAD] * (width - len(ids))
        x, y = row[:-1], row[1:]
        pads = [j for j, t in enumerate(y) if t == PAD]
        for j in pads[1:]:
            y[j] = IGNORE
        if mask_prompt:
            for j in range(min(max(prompt_len - 1, 0), len(y))):
                y[j] = IGNORE
        if allowed_max_length is not None:
            x, y = x[:allowed_max_length], y[:allowed_max_length]
        inputs.append(torch.tensor(x))
        targets.append(torch.tensor(y))
    return torch.stack(inputs), torch.stack(targets)


def split(data):
    train_end = int(len(data) * 0.85)
    test_end = train_end + int(len(data) * 0.1)
    return data[:train_end], data[test_end:], data[train_end:test_end]


def as_lists(batch):
    x, y = batch
    return {"inputs": x.tolist(), "targets": y.tolist()}


def scenario(data, enc, style="alpaca", allowed_max_length=1024, mask_prompt=False, full=False):
    train, val, test = split(data)

    def fn(batch):
        return collate(batch, allowed_max_length, mask_prompt)

    torch.manual_seed(SEED)
    train_loader = DataLoader(Encoded(train, enc, style), batch_size=BATCH_SIZE, shuffle=True,
                              drop_last=True, collate_fn=fn, num_workers=0)
    val_loader = DataLoader(Encoded(val, enc, style), batch_size=BATCH_SIZE, shuffle=False,
                            drop_last=False, collate_fn=fn, num_workers=0)
    test_loader = DataLoader(Encoded(test, enc, style), batch_size=BATCH_SIZE, shuffle=False,
                             drop_last=False, collate_fn=fn, num_workers=0)
    out = {"num_batches": len(train_loader), "lengths": [], "batches": {}}
    first = list(train_loader)
    out["lengths"].append([x.shape[1] for x, _ in first])
    out["batches"]["train_0"] = as_lists(first[0])
    out["batches"]["train_1"] = as_lists(first[1])
    if full:
        out["batches"]["train_last"] = as_lists(first[-1])
        out["lengths"].append([x.shape[1] for x, _ in train_loader])  # a second epoch
        out["batches"]["val_0"] = as_lists(next(iter(val_loader)))
        out["batches"]["test_last"] = as_lists(list(test_loader)[-1])
    return out


SFT_CONFIG = {"vocab_size": 50257, "context_length": 128, "emb_dim": 32, "n_heads": 4,
              "n_layers": 2, "drop_rate": 0.0, "qkv_bias": True}
SFT = {"seed": SEED, "batch_size": BATCH_SIZE, "allowed_max_length": 128, "learning_rate": 5e-4,
       "weight_decay": 0.1, "eval_freq": 5, "eval_iter": 2, "steps": 10}


def sft_loss_loader(loader, model, num_batches):
    total = 0.0
    for i, (x, y) in enumerate(loader):
        if i >= num_batches:
            break
        total += torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
    return total / min(num_batches, len(loader))


def sft(out_dir, data, enc, mask_prompt):
    from fixtures_train import GPTModel

    s = dict(SFT, mask_instruction=mask_prompt)
    train, val, _ = split(data)

    def fn(batch):
        return collate(batch, s["allowed_max_length"], mask_prompt)

    torch.manual_seed(SEED)
    train_loader = DataLoader(Encoded(train, enc, "alpaca"), batch_size=BATCH_SIZE, shuffle=True,
                              drop_last=True, collate_fn=fn, num_workers=0)
    val_loader = DataLoader(Encoded(val, enc, "alpaca"), batch_size=BATCH_SIZE, shuffle=False,
                            drop_last=False, collate_fn=fn, num_workers=0)
    torch.manual_seed(SEED)
    model = GPTModel(SFT_CONFIG)
    init = out_dir / "sft_init.pt"
    if init.exists():
        model.load_state_dict(torch.load(init), strict=False)
    else:
        torch.save({k: v for k, v in model.state_dict().items() if not k.endswith(".mask")}, init)
    torch.manual_seed(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s["learning_rate"],
                                  weight_decay=s["weight_decay"])
    step_losses, evals = [], []
    global_step, tokens_seen = -1, 0
    model.train()
    for x, y in train_loader:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        optimizer.step()
        tokens_seen += x.numel()
        global_step += 1
        step_losses.append(loss.item())
        if global_step % s["eval_freq"] == 0:
            model.eval()
            with torch.no_grad():
                tr = sft_loss_loader(train_loader, model, s["eval_iter"])
                va = sft_loss_loader(val_loader, model, s["eval_iter"])
            model.train()
            evals.append({"step": global_step, "tokens_seen": tokens_seen, "train_loss": tr,
                          "val_loss": va})
        if global_step + 1 >= s["steps"]:
            break
    name = "sft_masked" if mask_prompt else "sft"
    record = {"model": SFT_CONFIG, "settings": s, "step_losses": step_losses, "evals": evals}
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=1))


def make(out_dir, data_dir):
    enc = gpt2_encoding(data_dir)
    data = json.loads(find_data(data_dir, "instruction-data.json").read_text(encoding="utf-8"))
    result = {
        "book": scenario(data, enc, full=True),
        "masked": scenario(data, enc, mask_prompt=True),
        "cut64": scenario(data, enc, allowed_max_length=64),
        "phi3": scenario(data, enc, style="phi3"),
    }
    (out_dir / "instruct.json").write_text(json.dumps(result))
    torch.set_num_threads(1)
    (out_dir / "sft_init.pt").unlink(missing_ok=True)
    sft(out_dir, data, enc, mask_prompt=False)
    sft(out_dir, data, enc, mask_prompt=True)


if __name__ == "__main__":
    import pathlib
    import sys

    from make_fixtures import default_data_dir

    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fx/instruct")
    out.mkdir(parents=True, exist_ok=True)
    make(out, default_data_dir())
