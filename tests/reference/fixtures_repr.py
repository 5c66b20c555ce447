"""PyTorch's own repr of a variety of tensors, for the py_repr golden test."""
import json

import torch


def make(out_dir, data_dir):
    torch.manual_seed(0)
    cases = {
        "ints_2d": torch.tensor([[40, 367, 2885, 1464], [1807, 3619, 402, 271]]),
        "negative_ints": torch.tensor([-5, 0, 12345, -999999]),
        "floats_2d": torch.randn(6, 3),
        "floats_3d": torch.randn(2, 3, 4),
        "int_valued_floats": torch.tensor([1.0, -2.0, 300.0]),
        "int_valued_wide": torch.tensor([1.0, 2000.0]),
        "small_floats": torch.tensor([1e-5, 0.5, 3.0]),
        "large_floats": torch.tensor([1e9, 2.5]),
        "wide_range": torch.tensor([0.001, 1.5, 2000.0]),
        "with_inf_nan": torch.tensor([1.5, float("inf"), float("nan"), -float("inf")]),
        "zeros": torch.zeros(2, 2),
        "scalar_float": torch.tensor(3.25),
        "scalar_int": torch.tensor(7),
        "bools": torch.tensor([True, False, True]),
        "float64": torch.tensor([[1.5, 2.25]], dtype=torch.float64),
        "int32": torch.tensor([1, 2, 3], dtype=torch.int32),
        "uint8": torch.tensor([1, 255], dtype=torch.uint8),
        "long_vector": torch.arange(30, dtype=torch.float32) / 7,
        "long_int_vector": torch.arange(40),
        "summarized_vector": torch.randn(2000),
        "summarized_matrix": torch.randn(50, 50),
        "summarized_3d": torch.randn(20, 10, 10),
        "embedding_like": torch.randn(4, 256),
        "empty_1d": torch.empty(0),
        "empty_2d": torch.empty(2, 0),
        "empty_int": torch.empty(0, dtype=torch.int64),
        "bfloat16": torch.tensor([1.5, -0.25], dtype=torch.bfloat16),
        "probas": torch.softmax(torch.randn(2, 3, 5), dim=-1),
    }
    # Autograd cases: the C++ side loads the leaf values and repeats the same operation
    # (requires_grad_(), then "* 1" for a MulBackward0 node), so the values agree exactly.
    leaves = {
        "requires_grad": torch.randn(3, 2),
        "grad_fn_mul": torch.randn(2, 3),
        "grad_fn_long_line": torch.randn(2, 6) * 100,
    }
    grads = {}
    for name, leaf in leaves.items():
        t = leaf.clone().requires_grad_()
        grads[name] = t if name == "requires_grad" else t * 1
    reprs = {name: repr(t) for name, t in {**cases, **grads}.items()}
    tensors = {**cases, **leaves}
    torch.save(tensors, out_dir / "tensors.pt")
    (out_dir / "reprs.json").write_text(json.dumps(reprs, indent=1))
