"""numpy side of the exact-search benchmark: 10,000 queries x 100,000 random 384-d unit vectors,
top-10 by inner product (matmul in blocks of 1,000 queries + argpartition + sort of the 10)."""
import time

import numpy as np


def unit(n, dim, seed):
    v = np.random.default_rng(seed).uniform(-1, 1, (n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def main():
    nq, np_, dim, k = 10_000, 100_000, 384, 10
    passages, queries = unit(np_, dim, 1), unit(nq, dim, 2)
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for b in range(0, nq, 1000):
            s = queries[b : b + 1000] @ passages.T
            top = np.argpartition(-s, k, axis=1)[:, :k]
            order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1)
            np.take_along_axis(top, order, axis=1)
        rates.append(nq / (time.perf_counter() - start))
    rates.sort()
    print(f"numpy exact search {nq} x {np_} x {dim}, top-{k}: queries/s median {rates[2]:.0f} (min {rates[0]:.0f}, max {rates[4]:.0f})")


if __name__ == "__main__":
    main()
