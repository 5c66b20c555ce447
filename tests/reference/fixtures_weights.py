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
import collections
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


# --- GPT-2: Hugging Face models against the book's layout ---

GPT2_CASES = {
    # The real vocabulary and context, a tiny width and depth; lm_head tied to wte (GPT-2 proper).
    "vocab": dict(vocab_size=50257, n_positions=1024, n_embd=64, n_layer=2, n_head=4, seed=123),
    # Odd sizes everywhere and an untied lm_head.
    "odd": dict(vocab_size=1000, n_positions=48, n_embd=48, n_layer=3, n_head=3, seed=7,
                tie_word_embeddings=False),
}
GREEDY_TOKENS = 30


def _hf_model(spec):
    from transformers import GPT2Config, GPT2LMHeadModel

    spec = dict(spec)
    seed = spec.pop("seed")
    # No bos/eos: generate() must not stop early on a random model's end-of-text.
    config = GPT2Config(**spec, bos_token_id=None, eos_token_id=None, pad_token_id=None,
                        attn_implementation="eager")
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    # GPT-2's own init (std 0.02, zero biases, unit LayerNorms) makes every logit nearly equal;
    # wider random values exercise every tensor and keep greedy choices far from ties.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    return model.eval()


def _book_state_dict(hf_state, config):
    """The book's GPTModel state dict (names, shapes, mask buffers) from HF GPT-2 tensors."""
    C, L, T = config.n_embd, config.n_layer, config.n_positions
    sd = {}
    p = "transformer."
    sd["tok_emb.weight"] = hf_state[p + "wte.weight"]
    sd["pos_emb.weight"] = hf_state[p + "wpe.weight"]
    for i in range(L):
        h, b = f"{p}h.{i}.", f"trf_blocks.{i}."
        w = hf_state[h + "attn.c_attn.weight"]   # (C, 3C): Conv1D stores (in, out)
        bias = hf_state[h + "attn.c_attn.bias"]
        q_w, k_w, v_w = w.split(C, dim=1)
        q_b, k_b, v_b = bias.split(C)
        sd[b + "att.mask"] = torch.triu(torch.ones(T, T), diagonal=1)
        for name, wt, bs in [("W_query", q_w, q_b), ("W_key", k_w, k_b), ("W_value", v_w, v_b)]:
            sd[b + f"att.{name}.weight"] = wt.t().contiguous()
            sd[b + f"att.{name}.bias"] = bs.clone()
        sd[b + "att.out_proj.weight"] = hf_state[h + "attn.c_proj.weight"].t().contiguous()
        sd[b + "att.out_proj.bias"] = hf_state[h + "attn.c_proj.bias"]
        sd[b + "ff.layers.0.weight"] = hf_state[h + "mlp.c_fc.weight"].t().contiguous()
        sd[b + "ff.layers.0.bias"] = hf_state[h + "mlp.c_fc.bias"]
        sd[b + "ff.layers.2.weight"] = hf_state[h + "mlp.c_proj.weight"].t().contiguous()
        sd[b + "ff.layers.2.bias"] = hf_state[h + "mlp.c_proj.bias"]
        sd[b + "norm1.scale"] = hf_state[h + "ln_1.weight"]
        sd[b + "norm1.shift"] = hf_state[h + "ln_1.bias"]
        sd[b + "norm2.scale"] = hf_state[h + "ln_2.weight"]
        sd[b + "norm2.shift"] = hf_state[h + "ln_2.bias"]
    sd["final_norm.scale"] = hf_state[p + "ln_f.weight"]
    sd["final_norm.shift"] = hf_state[p + "ln_f.bias"]
    sd["out_head.weight"] = hf_state["lm_head.weight"].clone()
    return collections.OrderedDict(sd)


def _gpt2_encoding(data_dir):
    """tiktoken's GPT-2 encoding from the local data files (no download)."""
    import tiktoken
    import tiktoken.load

    if data_dir is None:
        raise FileNotFoundError("set LLMFS_DATA_DIR (gpt2/encoder.json and gpt2/vocab.bpe)")
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        str(data_dir / "gpt2" / "vocab.bpe"), str(data_dir / "gpt2" / "encoder.json"))
    pattern = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    return tiktoken.Encoding(name="gpt2", pat_str=pattern, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})


def make_gpt2(out_dir, data_dir):
    for case, spec in GPT2_CASES.items():
        model = _hf_model(spec)
        config = model.config
        folder = out_dir / f"gpt2_{case}"
        model.save_pretrained(folder)

        g = torch.Generator().manual_seed(1000 + len(case))
        input_ids = torch.randint(0, config.vocab_size, (2, 7), generator=g)
        with torch.no_grad():
            logits = model(input_ids).logits
            greedy = model.generate(input_ids[:1], max_new_tokens=GREEDY_TOKENS, do_sample=False,
                                    attention_mask=torch.ones_like(input_ids[:1]))
            assert greedy.shape[1] == 7 + GREEDY_TOKENS, greedy.shape
            # Each greedy step's margin between the best and second-best logit: far from a tie,
            # so the C++ arithmetic (equal within 1e-4) must pick the same tokens.
            steps = model(greedy[:, :-1]).logits[0, 6:]
            top2 = steps.topk(2, dim=-1).values
            margin = (top2[:, 0] - top2[:, 1]).min().item()
            assert margin > 1e-3, f"{case}: greedy margin {margin} too small; pick another seed"
        save_file({"input_ids": input_ids, "logits": logits.contiguous(), "greedy": greedy},
                  out_dir / f"gpt2_{case}_expected.safetensors")

        hf_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        torch.save(_book_state_dict(hf_state, config), out_dir / f"gpt2_{case}_book.pth")

        if case == "vocab":
            # `ch04 generate --weights gpt2_vocab --prompt "Hello, I am" --max-new-tokens 10`:
            # transformers' greedy continuation, decoded by tiktoken.
            enc = _gpt2_encoding(data_dir)
            prompt = "Hello, I am"
            ids = torch.tensor([enc.encode(prompt)])
            with torch.no_grad():
                out = model.generate(ids, max_new_tokens=10, do_sample=False,
                                     attention_mask=torch.ones_like(ids))
            (out_dir / "gpt2_vocab_generate.json").write_text(json.dumps(
                {"prompt": prompt, "max_new_tokens": 10, "ids": out[0].tolist(),
                 "text": enc.decode(out[0].tolist())}))
            # Files converted from OpenAI's release: no "transformer." prefix, the attention
            # buffers saved, no lm_head.
            T = config.n_positions
            old = {k.removeprefix("transformer."): v for k, v in hf_state.items() if k != "lm_head.weight"}
            for i in range(config.n_layer):
                old[f"h.{i}.attn.bias"] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
                old[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
            save_file(old, out_dir / "gpt2_vocab_noprefix.safetensors", metadata={"format": "pt"})
        else:
            model.save_pretrained(out_dir / f"gpt2_{case}_sharded", max_shard_size="100KB")
            bin_folder = out_dir / f"gpt2_{case}_bin"
            bin_folder.mkdir(exist_ok=True)
            torch.save(model.state_dict(), bin_folder / "pytorch_model.bin")
            (bin_folder / "config.json").write_text((folder / "config.json").read_text())


def make_gpt2_shapes(out_dir):
    """Names and shapes of GPT2LMHeadModel for the four OpenAI sizes (built on the meta device,
    so no memory and no download): what every size's checkpoint holds."""
    from transformers import GPT2Config, GPT2LMHeadModel

    sizes = {"124M": (768, 12, 12), "355M": (1024, 24, 16), "774M": (1280, 36, 20), "1558M": (1600, 48, 25)}
    shapes = {}
    for size, (n_embd, n_layer, n_head) in sizes.items():
        config = GPT2Config(n_embd=n_embd, n_layer=n_layer, n_head=n_head)
        with torch.device("meta"):
            model = GPT2LMHeadModel(config)
        shapes[size] = [[name, list(t.shape)] for name, t in model.state_dict().items()]
    (out_dir / "gpt2_shapes.json").write_text(json.dumps(shapes))


def make(out_dir, data_dir):
    described = {}
    make_safetensors(out_dir, described)
    make_pth(out_dir, described)
    (out_dir / "tensors.json").write_text(json.dumps(described, indent=1))
    make_gpt2(out_dir, data_dir)
    make_gpt2_shapes(out_dir)
