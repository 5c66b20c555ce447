"""PyTorch's DataLoader (num_workers=0) and its use of the global random stream, and the-verdict's
GPT-2 token ids from tiktoken, for tests/golden/test_data_loader.cpp.

scenarios.json holds scripts of operations that both sides run from one torch.manual_seed: make a
loader over a dataset whose example i is (i, i), run a pass over it (whole, or stopped early the
way the book's calc_loss_loader stops), create an iterator and drop it, draw torch.rand values.
Python records what happened (the batch index lists, the random values); the C++ test replays the
script with llmfs::DataLoader and must see the same. verdict.json has the token ids and the
loaders of chapters 2 and 5 over them, built from the windowing formula of BOOK.md §3.1.
"""
import json
import os
import pathlib

import tiktoken
import tiktoken.load
import torch
from torch.utils.data import DataLoader, Dataset

GPT2_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


class IndexDataset(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i, i


class Windows(Dataset):
    """Sample i: ids[i*stride : i*stride + max_length] and the same shifted by one."""

    def __init__(self, ids, max_length, stride):
        self.ids = ids
        self.max_length = max_length
        self.starts = list(range(0, len(ids) - max_length, stride))

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, i):
        s = self.starts[i]
        return (torch.tensor(self.ids[s : s + self.max_length]),
                torch.tensor(self.ids[s + 1 : s + self.max_length + 1]))


def run_script(steps):
    """Runs the operations, filling in what Python observed."""
    loaders = {}
    for step in steps:
        op = step["op"]
        if op == "seed":
            torch.manual_seed(step["value"])
        elif op == "loader":
            loaders[step["name"]] = DataLoader(
                IndexDataset(step["n"]), batch_size=step["batch_size"],
                shuffle=step["shuffle"], drop_last=step["drop_last"], num_workers=0)
            step["len"] = len(loaders[step["name"]])
        elif op == "pass":
            stop = step.get("stop_after")
            batches = []
            for i, (index, _) in enumerate(loaders[step["loader"]]):
                if stop is not None and i >= stop:
                    break
                batches.append(index.tolist())
            step["batches"] = batches
        elif op == "iter_only":
            it = iter(loaders[step["loader"]])
            del it
        elif op == "iter_rand_next":
            it = iter(loaders[step["loader"]])
            step["values"] = torch.rand(step["n"]).tolist()
            step["batch"] = next(it)[0].tolist()
        elif op == "rand":
            step["values"] = torch.rand(step["n"]).tolist()
        else:
            raise ValueError(f"unknown op {op}")
    return steps


def loader(name, n, batch_size, shuffle, drop_last):
    return {"op": "loader", "name": name, "n": n, "batch_size": batch_size, "shuffle": shuffle,
            "drop_last": drop_last}


def scenarios():
    return {
        # Appendix A.6 (CA-08, CA-09): seed, train and test loader, a pass, the train loader
        # rebuilt with drop_last, a pass; then the A.7 loop's three epochs over it.
        "appendix_a": [
            {"op": "seed", "value": 123},
            loader("train", 5, 2, True, False),
            loader("test", 2, 2, False, False),
            {"op": "pass", "loader": "train"},
            loader("train", 5, 2, True, True),
            {"op": "pass", "loader": "train"},
            {"op": "seed", "value": 123},
            {"op": "pass", "loader": "train"},
            {"op": "pass", "loader": "train"},
            {"op": "pass", "loader": "train"},
            {"op": "pass", "loader": "test"},
            {"op": "rand", "n": 3},
        ],
        # Shuffled and not, drop_last on and off, early stops, iterators that never yield, random
        # draws in between: the stream position after each is visible in the next draw.
        "mixed": [
            {"op": "seed", "value": 123},
            loader("a", 10, 3, True, False),
            loader("b", 10, 3, True, True),
            loader("c", 7, 2, False, False),
            loader("d", 7, 2, False, True),
            {"op": "pass", "loader": "a"},
            {"op": "rand", "n": 2},
            {"op": "pass", "loader": "b"},
            {"op": "pass", "loader": "c"},
            {"op": "rand", "n": 1},
            {"op": "pass", "loader": "d"},
            {"op": "pass", "loader": "a", "stop_after": 1},
            {"op": "pass", "loader": "c", "stop_after": 2},
            {"op": "pass", "loader": "b", "stop_after": 0},
            {"op": "iter_only", "loader": "a"},
            {"op": "iter_only", "loader": "c"},
            {"op": "rand", "n": 2},
            {"op": "iter_rand_next", "loader": "a", "n": 2},
            {"op": "iter_rand_next", "loader": "d", "n": 1},
            {"op": "pass", "loader": "b"},
            {"op": "pass", "loader": "b"},
            {"op": "pass", "loader": "b"},
            {"op": "rand", "n": 3},
        ],
        # No full batch: the shuffle seed is still drawn.
        "empty_pass": [
            {"op": "seed", "value": 7},
            loader("tiny", 3, 4, True, True),
            {"op": "pass", "loader": "tiny"},
            {"op": "rand", "n": 3},
        ],
        # Chapter-sized permutations (5,141 windows of chapter 2; 2,000).
        "large": [
            {"op": "seed", "value": 123},
            loader("windows", 5141, 8, True, True),
            loader("other", 2000, 64, True, False),
            {"op": "pass", "loader": "windows"},
            {"op": "pass", "loader": "other", "stop_after": 3},
            {"op": "pass", "loader": "windows", "stop_after": 2},
            {"op": "rand", "n": 3},
        ],
    }


def find_data(data_dir, name):
    candidates = []
    if data_dir:
        candidates.append(pathlib.Path(data_dir) / name)
    cache = os.environ.get("LLMFS_CACHE_DIR") or os.path.expanduser("~/.cache/llmfs")
    candidates.append(pathlib.Path(cache) / "data" / name)
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"missing data file {name} (looked in {[str(c) for c in candidates]}; "
                            "set LLMFS_DATA_DIR or run scripts/setup.sh)")


def gpt2_encoding(data_dir):
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        str(find_data(data_dir, "gpt2/vocab.bpe")), str(find_data(data_dir, "gpt2/encoder.json")))
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def first_pass(dataset, **kwargs):
    return [(x.tolist(), y.tolist()) for x, y in DataLoader(dataset, num_workers=0, **kwargs)]


def verdict(data_dir):
    enc = gpt2_encoding(data_dir)
    text = find_data(data_dir, "the-verdict.txt").read_text(encoding="utf-8")
    ids = enc.encode(text, allowed_special={"<|endoftext|>"})
    out = {"token_ids": ids, "counts": {}}
    for max_length, stride, batch_size in [(4, 1, 1), (4, 4, 8), (256, 128, 4)]:
        ds = Windows(ids, max_length, stride)
        dl = DataLoader(ds, batch_size=batch_size, shuffle=False, drop_last=True)
        out["counts"][f"{max_length}_{stride}_{batch_size}"] = {"samples": len(ds),
                                                               "batches": len(dl)}
    out["first_batches_4_4_8"] = first_pass(Windows(ids, 4, 4), batch_size=8)[:2]

    # Chapter 5 (BOOK.md §6.3): 90 % of the characters for training, seed 123, then a shuffled
    # drop_last training loader and a plain validation loader; two epochs of the training loader
    # and one validation pass, as the training loop's first evaluation would not be.
    split = int(0.90 * len(text))
    train_ids = enc.encode(text[:split], allowed_special={"<|endoftext|>"})
    val_ids = enc.encode(text[split:], allowed_special={"<|endoftext|>"})
    torch.manual_seed(123)
    train = DataLoader(Windows(train_ids, 256, 256), batch_size=2, shuffle=True, drop_last=True)
    val = DataLoader(Windows(val_ids, 256, 256), batch_size=2, shuffle=False, drop_last=False)
    epochs = [[x.tolist() for x, _ in train] for _ in range(2)]
    val_batches = [x.tolist() for x, _ in val]
    out["chapter5"] = {"train_ids": train_ids, "val_ids": val_ids, "train_epochs": epochs,
                       "val_batches": val_batches, "final_rand": torch.rand(3).tolist()}
    return out


def make(out_dir, data_dir):
    result = {name: run_script(steps) for name, steps in scenarios().items()}
    (out_dir / "scenarios.json").write_text(json.dumps(result))
    (out_dir / "verdict.json").write_text(json.dumps(verdict(data_dir)))
