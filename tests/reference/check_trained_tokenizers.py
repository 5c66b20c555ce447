#!/usr/bin/env python3
"""Encodes texts with a tokenizer that our C++ code trained, using the Python libraries, so that
tests/golden/test_trained_tokenizers.cpp can compare ids (run by that test, not by make_fixtures).

    check_trained_tokenizers.py bpe DIR TEXTS_JSON OUT_JSON
        DIR holds encoder.json + vocab.bpe; loaded with tiktoken's data_gym_to_mergeable_bpe_ranks
        (which asserts that the two files agree) and GPT-2's pattern; special tokens are the
        encoder.json entries that are not mergeable ranks.
    check_trained_tokenizers.py sentencepiece MODEL TEXTS_JSON OUT_JSON
        MODEL is a .model file, loaded with the sentencepiece package.

Writes {"ids": [[...], ...], "decoded": ["...", ...]} (Python's decode of its own ids).
"""
import json
import os
import sys

os.environ["TIKTOKEN_CACHE_DIR"] = ""  # a reused temporary path must never hit tiktoken's cache

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bpe(directory, texts):
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    ranks = data_gym_to_mergeable_bpe_ranks(os.path.join(directory, "vocab.bpe"),
                                            os.path.join(directory, "encoder.json"))
    with open(os.path.join(directory, "encoder.json"), encoding="utf-8") as f:
        encoder = json.load(f)
    specials = {k: v for k, v in encoder.items() if v >= len(ranks)}
    enc = tiktoken.Encoding(name="trained", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=specials)
    ids = [enc.encode(t, allowed_special="all") for t in texts]
    return ids, [enc.decode(i) for i in ids]


def sentencepiece(model, texts):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model)
    ids = [sp.encode(t) for t in texts]
    return ids, [sp.decode(i) for i in ids]


def main():
    kind, path, texts_file, out_file = sys.argv[1:5]
    with open(texts_file, encoding="utf-8") as f:
        texts = json.load(f)
    ids, decoded = {"bpe": bpe, "sentencepiece": sentencepiece}[kind](path, texts)
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump({"ids": ids, "decoded": decoded}, f)


if __name__ == "__main__":
    main()
