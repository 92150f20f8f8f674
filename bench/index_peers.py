"""LanceDB's IVF-PQ on the same Parquet vectors and queries as `nr index bench`, for the choice of
docs/scale.md (`just scale`). LanceDB's engine is Rust (the `lance` crates); its PyPI wheel runs the
same code as the `lancedb` crate without the crate's build (protoc, ~800 crates). Exact top k comes
from numpy (float32 matmul), as `nr index bench` computes it.

    python bench/index_peers.py --vectors DIR --queries FILE --work DIR --json out.json
"""

import argparse
import json
import resource
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def read_vectors(path: str) -> tuple[list[str], np.ndarray]:
    table = ds.dataset(path, format="parquet").to_table(columns=["docid", "vector"])
    dim = table.schema.field("vector").type.list_size
    flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return table.column("docid").to_pylist(), flat.astype(np.float32).reshape(-1, dim)


def exact_top(passages: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = []
    for start in range(0, len(queries), 256):
        scores = queries[start : start + 256] @ passages.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        out.append(top)
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectors", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--work", required=True, help="folder for the LanceDB table (emptied)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--partitions", type=int, default=0, help="IVF lists (default: sqrt(rows))")
    ap.add_argument("--nprobes", default="8,16,32,64")
    ap.add_argument("--refine", type=int, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()
    import lancedb

    shutil.rmtree(args.work, ignore_errors=True)
    db = lancedb.connect(args.work)
    source = ds.dataset(args.vectors, format="parquet")
    rows = source.count_rows()
    t0 = time.perf_counter()
    table = db.create_table("passages", data=source.to_batches(columns=["docid", "vector"]),
                            schema=source.schema.remove_metadata(), mode="overwrite")
    ingest = time.perf_counter() - t0
    dim = source.schema.field("vector").type.list_size
    partitions = args.partitions or int(rows**0.5)
    t0 = time.perf_counter()
    table.create_index(vector_column_name="vector", index_type="IVF_PQ", metric="dot",
                       num_partitions=partitions, num_sub_vectors=dim // 8)
    build = time.perf_counter() - t0
    build_rss = peak_rss_mb()
    disk = sum(f.stat().st_size for f in __import__("pathlib").Path(args.work).rglob("*") if f.is_file())

    _, queries = read_vectors(args.queries)
    ids, passages = read_vectors(args.vectors)
    position = {d: i for i, d in enumerate(ids)}
    exact = exact_top(passages, queries, args.k)
    del passages

    def search(q: np.ndarray, nprobes: int) -> list[int]:
        hits = (table.search(q, vector_column_name="vector").metric("dot").nprobes(nprobes)
                .refine_factor(args.refine).limit(args.k).select(["docid"]).to_arrow())
        return [position[d] for d in hits.column("docid").to_pylist()]

    efforts = []
    for nprobes in [int(n) for n in args.nprobes.split(",")]:
        search(queries[0], nprobes)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=2) as pool:
            found = list(pool.map(lambda q: search(q, nprobes), queries))
        seconds = time.perf_counter() - t0
        recall = float(np.mean([len(set(f) & set(e)) / args.k for f, e in zip(found, exact)]))
        efforts.append({"nprobes": nprobes, "refine_factor": args.refine, "recall": recall,
                        "queries_per_second": len(queries) / seconds})
        print(f"lancedb ivf-pq nprobes {nprobes}: recall@{args.k} {recall:.3f}, "
              f"{len(queries) / seconds:.0f} queries/s", flush=True)
    result = {"engine": f"lancedb {lancedb.__version__} (IVF_PQ, pyarrow {pa.__version__})", "rows": rows,
              "dim": dim, "partitions": partitions, "sub_vectors": dim // 8, "ingest_seconds": ingest,
              "build_seconds": build, "build_peak_rss_mb": build_rss, "disk_bytes": disk,
              "peak_rss_mb": peak_rss_mb(), "efforts": efforts}
    text = json.dumps(result, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
