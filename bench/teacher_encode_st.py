#!/usr/bin/env python3
"""sentence-transformers (PyTorch, CPU) side of the teacher encoding benchmark.

Encodes the same workload as `cargo bench -p nr-backbone --bench teacher_encode`: the first 2,000
passages of shared/data/qrecc-offline/passages.jsonl with all-MiniLM-L6-v2 at batch 32, and prints
passages per second. sentence-transformers also sorts texts by length before batching, so both sides
pad the same way.

Needs `torch` and `sentence-transformers` (any recent version; results in docs/performance.md used
torch 2.9.0, sentence-transformers 6.2.0). Threads: set OMP_NUM_THREADS (default: all cores).

    python bench/teacher_encode_st.py [--passages N] [--batch B] [--repeats R] [--model DIR]
"""

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSAGES = ROOT.parent / "shared" / "data" / "qrecc-offline" / "passages.jsonl"
MODEL_DIR = ROOT / "models" / "all-MiniLM-L6-v2"


def read_passages(n):
    texts = []
    with open(PASSAGES, encoding="utf-8") as f:
        for line in f:
            if len(texts) == n:
                break
            texts.append(json.loads(line)["contents"])
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, default=MODEL_DIR)
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    texts = read_passages(args.passages)
    start = time.perf_counter()
    model = SentenceTransformer(str(args.model), device="cpu")
    load_s = time.perf_counter() - start
    tokenize = getattr(model, "preprocess", None) or model.tokenize  # renamed in sentence-transformers 6
    mean_tokens = int(tokenize(texts)["attention_mask"].sum()) / len(texts)
    model.encode(texts[: 2 * args.batch], batch_size=args.batch)  # warm-up
    print(
        f"teacher_encode_st: {len(texts)} passages, {mean_tokens:.1f} tokens each on average, "
        f"batch {args.batch}, load {load_s:.2f} s, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})"
    )
    rates = []
    for run in range(1, args.repeats + 1):
        start = time.perf_counter()
        embeddings = model.encode(texts, batch_size=args.batch)
        seconds = time.perf_counter() - start
        assert embeddings.shape[0] == len(texts)
        rate = len(texts) / seconds
        print(f"run {run}: {seconds:.2f} s, {rate:.1f} passages/s")
        rates.append(rate)
    rates.sort()
    print(f"teacher_encode_st: median {rates[len(rates) // 2]:.1f} passages/s, best {rates[-1]:.1f}")


if __name__ == "__main__":
    main()
