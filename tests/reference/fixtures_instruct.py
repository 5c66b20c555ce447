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


if __name__ == "__main__":
    import pathlib
    import sys

    from make_fixtures import default_data_dir

    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fx/instruct")
    out.mkdir(parents=True, exist_ok=True)
    make(out, default_data_dir())
