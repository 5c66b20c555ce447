#!/usr/bin/env python3
"""Runs the Python references and writes the fixture files the golden tests read.

Each area has a module `fixtures_<area>.py` beside this file with a function
`make(out_dir: pathlib.Path, data_dir: pathlib.Path | None)`; this script runs them all (or the
ones named with --only). The references are live: tiktoken, Hugging Face transformers, PyTorch,
and small reference computations of our own written from the formulas. A missing package is a
loud failure, never a skipped test.

    python tests/reference/make_fixtures.py --out build/fixtures [--only repr,tokenizer]
"""
import argparse
import importlib
import os
import pathlib
import sys
import time


def default_data_dir() -> pathlib.Path:
    """LLMFS_DATA_DIR, else the project's data cache (what llmfs::data_file uses; scripts/test.sh
    fills it with `ch01 fetch-data` when there is no data folder)."""
    if os.environ.get("LLMFS_DATA_DIR"):
        return pathlib.Path(os.environ["LLMFS_DATA_DIR"])
    if os.environ.get("LLMFS_CACHE_DIR"):
        return pathlib.Path(os.environ["LLMFS_CACHE_DIR"]) / "data"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(cache) / "llmfs" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--only", default="", help="comma-separated areas (default: all)")
    args = parser.parse_args()

    here = pathlib.Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    data_dir = default_data_dir()
    areas = sorted(p.stem[len("fixtures_"):] for p in here.glob("fixtures_*.py"))
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(areas))
        if unknown:
            print(f"error: unknown fixture areas {unknown} (have {areas})", file=sys.stderr)
            return 2
        areas = [a for a in areas if a in wanted]

    args.out.mkdir(parents=True, exist_ok=True)
    for area in areas:
        start = time.time()
        module = importlib.import_module(f"fixtures_{area}")
        target = args.out / area
        target.mkdir(parents=True, exist_ok=True)
        module.make(target, data_dir)
        print(f"fixtures/{area}: {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
