"""tiktoken's GPT-2 ids for the BPETokenizer golden test (tests/golden/test_bpe_tokenizer.cpp).

tiktoken is loaded offline from LLMFS_DATA_DIR/gpt2 (encoder.json + vocab.bpe), with GPT-2's
pattern and <|endoftext|> = 50256. Writes:
  cases.json        generated strings (ASCII, contractions, whitespace runs, Korean, CJK, emoji,
                    combining marks, long runs, random code points of every plane) with their ids
  special.json      special-token cases: allowed, "all", disallowed (error), as text
  <file>.ids        ids of the-verdict.txt and middlemarch.txt (space-separated)
  gpt2.tiktoken     GPT-2's ranks in tiktoken's file format (base64 token, rank)
"""
import base64
import json
import os
import random

os.environ["TIKTOKEN_CACHE_DIR"] = ""  # never serve a stale cached copy of a local path

import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
NUM_CASES = 12000


def gpt2_encoding(data_dir):
    ranks = data_gym_to_mergeable_bpe_ranks(str(data_dir / "gpt2" / "vocab.bpe"),
                                            str(data_dir / "gpt2" / "encoder.json"))
    enc = tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": 50256})
    return enc, ranks


def random_text(rng):
    """One string mixing the kinds of text a tokenizer meets, in random order."""
    def chars(lo, hi, n):
        return "".join(chr(rng.randint(lo, hi)) for _ in range(n))

    words = ["the", "The", "THE", "hello", "world", "Mrs", "Gisburn", "pride", "don", "isn", "we", "they",
             "a", "I", "x", "naïve", "café", "Straße", "ﬁne"]
    pieces = [
        lambda: rng.choice(words),
        lambda: chars(ord("a"), ord("z"), rng.randint(1, 12)),
        lambda: chars(ord("A"), ord("Z"), rng.randint(1, 6)),
        lambda: rng.choice(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL",
                            "'D", "'", "''", "'x", "’s"]),
        lambda: chars(ord("0"), ord("9"), rng.randint(1, 8)),
        lambda: rng.choice([" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", "\u00a0", "\u3000",
                            "\u2009", "\u202f", "\u2028", "\x0b", "\x0c", "\x85", "\u1680", "\u200b", " \t "]),
        lambda: rng.choice([",", ".", "!", "?", "...", "--", "-", "(", ")", "\"", ":", ";", "<", "|", ">", "$",
                            "%", "&", "*", "@", "#", "/", "\\", "[", "]", "{", "}", "_", "~", "`", "^", "+",
                            "=", "«", "»", "—", "…", "€", "¥", "©", "°"]),
        lambda: chars(0xAC00, 0xD7A3, rng.randint(1, 6)),   # Hangul syllables
        lambda: chars(0x1100, 0x1112, rng.randint(1, 3)),   # Hangul jamo
        lambda: chars(0x4E00, 0x9FFF, rng.randint(1, 6)),   # CJK ideographs
        lambda: chars(0x3041, 0x3096, rng.randint(1, 5)),   # Hiragana
        lambda: chars(0x0400, 0x044F, rng.randint(1, 8)),   # Cyrillic
        lambda: chars(0x0391, 0x03C9, rng.randint(1, 6)),   # Greek
        lambda: chars(0x0627, 0x064A, rng.randint(1, 6)),   # Arabic letters
        lambda: chars(0x0915, 0x0939, 2) + rng.choice(["\u093f", "\u0940", "\u094d", "\u0902"]),  # Devanagari + marks
        lambda: chars(0x1F600, 0x1F64F, rng.randint(1, 3)),  # emoji
        lambda: rng.choice(["👨\u200d👩\u200d👧\u200d👦", "🏳\ufe0f\u200d🌈", "👍🏽", "🇰🇷", "🇺🇸🇫🇷", "❤\ufe0f",
                            "🧑\u200d💻", "1\ufe0f\u20e3"]),
        lambda: rng.choice(["e\u0301", "a\u0308\u0304", "\u0301", "n\u0303o", "\u0300\u0301\u0302"]),
        lambda: rng.choice(["²", "³", "½", "Ⅻ", "٣٤", "४२", "①", "𝟙𝟚", "ℕ", "𝔄𝔅"]),
        lambda: chars(0x00, 0x1F, 1),
        lambda: chars(0xE000, 0xE010, 1),  # private use
        lambda: rng.choice(["\u1c89", "\ua7cb", "\U000105c0", "\U00010d40", "\U0002ebf0", "\U00016d40\U00016d70",
                            "\U000e0080", "\U0010fffd"]),  # Unicode 15.1/16 letters and digits, unassigned
        lambda: rng.choice(["<|endoftext", "|>", "<|", "endoftext"]),
    ]
    parts = []
    for _ in range(rng.randint(1, 14)):
        parts.append(rng.choice(pieces)())
        if rng.random() < 0.5:
            parts.append(" ")
    return "".join(parts)


def random_code_points(rng):
    """A string of code points from every plane (assigned or not), with ASCII, white space and
    apostrophes mixed in: checks the character classes against tiktoken's everywhere."""
    def one():
        r = rng.random()
        if r < 0.3:
            return chr(rng.randint(0x20, 0x7E))
        if r < 0.4:
            return rng.choice(" \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2028\u202f\u205f\u3000\x1c\x1f")
        if r < 0.5:
            return "'" + rng.choice("stmdlrveSTMD")
        while True:
            c = rng.randint(0x80, 0x10FFFF) if rng.random() < 0.3 else rng.randint(0x80, 0xFFFF)
            if not 0xD800 <= c <= 0xDFFF:
                return chr(c)
    return "".join(one() for _ in range(rng.randint(1, 40)))


def long_cases():
    return [
        " " * 300, "\n" * 257, "x" + " " * 1000 + "y", "9" * 500, "ab" * 400, "!" * 333, "가" * 200,
        "🙂" * 150, "\t \n" * 120, "a\u0301" * 100 + "b", "'s" * 150, "Hello" + "\u3000" * 130 + "world",
    ]


def make(out_dir, data_dir):
    if data_dir is None:
        raise RuntimeError("LLMFS_DATA_DIR is not set: the tokenizer fixtures need gpt2/encoder.json, vocab.bpe")
    enc, ranks = gpt2_encoding(data_dir)

    rng = random.Random(20240507)
    texts = ([random_text(rng) for _ in range(NUM_CASES)] + [random_code_points(rng) for _ in range(NUM_CASES // 2)]
             + long_cases())
    cases = [{"text": t, "ids": enc.encode(t, disallowed_special=())} for t in texts]
    (out_dir / "cases.json").write_text(json.dumps(cases))

    book = "Hello, do you like tea? <|endoftext|> In the sunlit terracesof someunknownPlace."
    special = []
    for text in [book, "<|endoftext|>", "<|endoftext|><|endoftext|>x", "a<|endoftext|>", "<|endoftext|> b",
                 "no special here", "<|endoftext|", "<<|endoftext|>>"]:
        entry = {"text": text,
                 "allowed": enc.encode(text, allowed_special={"<|endoftext|>"}),
                 "all": enc.encode(text, allowed_special="all"),
                 "as_text": enc.encode(text, disallowed_special=())}
        try:
            entry["default"] = enc.encode(text)
        except ValueError:
            entry["default"] = None  # tiktoken refuses a disallowed special token
        special.append(entry)
    (out_dir / "special.json").write_text(json.dumps(special))

    for name in ["the-verdict.txt", "middlemarch.txt"]:
        # newline="": keep \r\n as it is in the file (Python would otherwise translate it).
        with open(data_dir / name, encoding="utf-8", newline="") as f:
            text = f.read()
        ids = enc.encode(text, allowed_special="all")
        (out_dir / (name + ".ids")).write_text(" ".join(map(str, ids)) + "\n")

    lines = [base64.b64encode(token).decode() + " " + str(rank)
             for token, rank in sorted(ranks.items(), key=lambda kv: kv[1])]
    (out_dir / "gpt2.tiktoken").write_text("\n".join(lines) + "\n")
