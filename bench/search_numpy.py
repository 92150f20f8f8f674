"""numpy side of the exact-search benchmark (crates/nr-experiments/benches/search.rs).

10,000 queries x 100,000 random 384-d unit vectors, top-10 by inner product: matmul in blocks of
1,000 queries (a 10,000 x 100,000 score matrix would take 4 GB), argpartition, then a sort of the 10.
Writes results/bench/search.reference.json (queries/s of each run).

    python bench/search_numpy.py                 # numpy's own random data (same distribution)
    python bench/search_numpy.py --data DIR      # the Rust benchmark's data, written with
                                                 # NR_SEARCH_BENCH_DATA=DIR; also compares results
"""
import argparse
import os
import time

import numpy as np

from common import row, write_reference

NQ, NP, DIM, K, BLOCK = 10_000, 100_000, 384, 10, 1_000
REPEATS = int(os.environ.get("NR_BENCH_REPEATS", 5))


def unit(n, dim, seed):
    v = np.random.default_rng(seed).uniform(-1, 1, (n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def search(queries, passages):
    out = np.empty((len(queries), K), dtype=np.int64)
    for b in range(0, len(queries), BLOCK):
        s = queries[b : b + BLOCK] @ passages.T
        top = np.argpartition(-s, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
        out[b : b + BLOCK] = np.take_along_axis(top, order, axis=1)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", help="folder written by the Rust benchmark (NR_SEARCH_BENCH_DATA)")
    args = parser.parse_args()
    if args.data:
        queries = np.fromfile(f"{args.data}/queries.f32", dtype="<f4").reshape(NQ, DIM)
        passages = np.fromfile(f"{args.data}/passages.f32", dtype="<f4").reshape(NP, DIM)
    else:
        passages, queries = unit(NP, DIM, 1), unit(NQ, DIM, 2)
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        top = search(queries, passages)
        rates.append(NQ / (time.perf_counter() - start))
    write_reference(
        "search",
        f"numpy {np.__version__} (matmul in blocks of {BLOCK} queries, argpartition), {REPEATS} runs",
        f"{NQ} queries x {NP} passages x {DIM} dims, top-{K}" + (" (the Rust benchmark's vectors)" if args.data else ""),
        [row("exact top-10", "queries/s", rates)],
    )
    if args.data:
        ours = np.fromfile(f"{args.data}/top10.u32", dtype="<u4").reshape(NQ, K)
        same_set = np.mean([set(a) == set(b) for a, b in zip(ours, top)])
        same_order = np.mean(np.all(ours == top, axis=1))
        print(f"agreement with nr-eval: same top-{K} set {same_set:.4%}, same order {same_order:.4%}")


if __name__ == "__main__":
    main()
