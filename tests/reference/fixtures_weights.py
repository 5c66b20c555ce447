"""Weights I/O references: files written by Python's safetensors and torch.save, and tiny random
GPT-2 models from Hugging Face transformers with their logits and greedy tokens.

Files (out_dir = <build>/fixtures/weights/):
  st_all_dtypes.safetensors, st_plain.safetensors   written by safetensors.torch.save_file
  pth_dtypes.pth, pth_dtypes_p4.pth                  torch.save of a dict (protocol 2 and 4)
  pth_module.pth                                     torch.save(module.state_dict()) (OrderedDict)
  pth_evil.pth                                       a torch.save file whose pickle calls os.system
  tensors.json                                       per file: name -> dtype, shape, hex bytes
  gpt2_<case>/                                       save_pretrained folder (model.safetensors,
                                                     config.json) of a random GPT2LMHeadModel
  gpt2_<case>_book.pth                               the same weights in the book's key layout
  gpt2_<case>.json                                   inputs, logits, greedy tokens
"""
import json
import os

import torch
from safetensors.torch import save_file


def _bytes_hex(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex()


def _describe(tensors):
    return {
        name: {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "hex": _bytes_hex(t)}
        for name, t in tensors.items()
    }


def _all_dtypes():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(3, 5, generator=g) * 50
    tensors = {}
    for dtype in [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32,
                  torch.int16, torch.int8, torch.uint8, torch.bool, torch.uint16, torch.uint32,
                  torch.uint64, torch.complex64, torch.float8_e4m3fn, torch.float8_e5m2]:
        name = "t_" + str(dtype).removeprefix("torch.")
        if dtype in (torch.uint16, torch.uint32, torch.uint64, torch.uint8):
            tensors[name] = base.abs().to(torch.int64).to(dtype)
        elif dtype == torch.complex64:
            tensors[name] = torch.complex(base, -base)
        else:
            tensors[name] = base.to(dtype)
    tensors["scalar"] = torch.tensor(2.5)
    tensors["empty"] = torch.empty(0, 4)
    tensors["big_i64"] = torch.tensor([-(2**62), 2**62 + 12345])
    return tensors


def make_safetensors(out_dir, described):
    tensors = _all_dtypes()
    save_file(tensors, out_dir / "st_all_dtypes.safetensors", metadata={"format": "pt"})
    described["st_all_dtypes.safetensors"] = _describe(tensors)
    plain = {"b.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
             "a.bias": torch.ones(3, dtype=torch.float16),
             "z": torch.tensor([True, False, True])}
    save_file(plain, out_dir / "st_plain.safetensors")
    described["st_plain.safetensors"] = _describe(plain)


class _Evil:
    """Pickles as a call to os.system: what a malicious checkpoint looks like."""

    def __reduce__(self):
        return (os.system, ("echo this should never run",))


def make_pth(out_dir, described):
    g = torch.Generator().manual_seed(11)
    base = torch.randn(4, 6, generator=g)
    tensors = {k: v for k, v in _all_dtypes().items() if not k.startswith("t_float8")}
    tensors.update({
        "base": base,
        "view_t": base.t(),             # non-contiguous view of the same storage
        "view_slice": base[1:, 2:5],   # storage offset + strides
        "row": base[2],
    })
    torch.save(tensors, out_dir / "pth_dtypes.pth")
    torch.save(tensors, out_dir / "pth_dtypes_p4.pth", pickle_protocol=4)
    described["pth_dtypes.pth"] = _describe(tensors)
    described["pth_dtypes_p4.pth"] = described["pth_dtypes.pth"]

    torch.manual_seed(3)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Embedding(5, 2))
    module.register_buffer("mask", torch.triu(torch.ones(3, 3), diagonal=1))
    state = module.state_dict()
    torch.save(state, out_dir / "pth_module.pth")
    described["pth_module.pth"] = _describe(state)

    torch.save({"w": torch.ones(2), "payload": _Evil()}, out_dir / "pth_evil.pth")


def make(out_dir, data_dir):
    described = {}
    make_safetensors(out_dir, described)
    make_pth(out_dir, described)
    (out_dir / "tensors.json").write_text(json.dumps(described, indent=1))
