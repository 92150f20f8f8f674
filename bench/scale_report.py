"""results/scale.md from the JSON files that scripts/scale.sh writes into results/scale/."""

import json
import os
import sys


def load(folder: str, name: str) -> dict | None:
    path = os.path.join(folder, name)
    return json.load(open(path)) if os.path.exists(path) else None


def effort(e: dict) -> int:
    # `effort` since the binary index; older results name HNSW's ef `expansion_search`.
    return e.get("effort", e.get("expansion_search"))


def index_name(build: dict, e: dict) -> str:
    p = build["params"]
    if build.get("kind") == "binary":
        return f"binary (sign bits) + f16 re-score, candidates={effort(e)}"
    return (f"usearch HNSW M={p['connectivity']} efC={p['expansion_add']} {p['storage']}"
            f"{' + f16 re-score' if p.get('rescore') else ''}, ef={effort(e)}")


def index_rows(label: str, build: dict | None, bench: dict | None, lance: dict | None) -> list[str]:
    rows = []
    if build and bench:
        for e in bench["efforts"]:
            rows.append(
                f"| {label} | {index_name(build, e)} | {e['recall']:.3f} | {e['queries_per_second']:,.0f} | "
                f"{bench['exact_queries_per_second']:,.0f} | {e['speedup_over_exact']:.1f}x | "
                f"{build['build_seconds']:,.0f} s | {build['process_peak_rss_mb']:,.0f} MB | "
                f"{bench['index_peak_rss_mb']:,.0f} MB | {bench['index_bytes'] / 1e6:,.0f} MB |"
            )
    if lance and bench:
        for e in lance["efforts"]:
            rows.append(
                f"| {label} | LanceDB IVF-PQ {lance['partitions']} lists, {lance['sub_vectors']} sub-vectors, "
                f"nprobes={e['nprobes']} refine={e['refine_factor']} | {e['recall']:.3f} | "
                f"{e['queries_per_second']:,.0f} | {bench['exact_queries_per_second']:,.0f} | "
                f"{e['queries_per_second'] / bench['exact_queries_per_second']:.1f}x | "
                f"{lance['build_seconds'] + lance['ingest_seconds']:,.0f} s | {lance['build_peak_rss_mb']:,.0f} MB | "
                f"{lance['peak_rss_mb']:,.0f} MB* | {lance['disk_bytes'] / 1e6:,.0f} MB |"
            )
    return rows


def main() -> None:
    folder = sys.argv[1]
    out = ["# Scale: sharded encode, Parquet, index against exact search", ""]
    enc = load(folder, "offline-encode.json")
    if enc:
        rate = 23290 / enc["wall_seconds"]
        out += [f"Sharded encode of the offline collection (23,290 passages, 4 shards, MiniLM, "
                f"{os.cpu_count()} cores): {enc['wall_seconds']:.0f} s wall with model loads, "
                f"{rate:.0f} passages/s ({rate / os.cpu_count():.0f} per core), peak RSS "
                f"{enc['process_peak_rss_mb']:,.0f} MB.", ""]
    out += ["| set | index | recall@10 | queries/s | exact queries/s | speed-up | build | build peak RSS "
            "| search peak RSS | index size |", "|---|---|---|---|---|---|---|---|---|---|"]
    sets = [("offline", "offline 23,290 x 384 (MiniLM)")]
    for name in sorted(os.listdir(folder)):
        for kind, label in [("like", "synthetic {:,} x 384 fitted to the offline vectors"),
                            ("clustered", "synthetic {:,} x 384, isotropic latent clusters")]:
            if name.startswith(f"{kind}-") and name.endswith("-build.json"):
                n = name[len(kind) + 1:-len("-build.json")]
                sets.append((f"{kind}-{n}", label.format(int(n))))
    for name, label in sets:
        out += index_rows(label, load(folder, f"{name}-build.json"), load(folder, f"{name}-bench.json"),
                          load(folder, f"{name}-lancedb.json"))
        out += index_rows(label, load(folder, f"{name}-binary-build.json"),
                          load(folder, f"{name}-binary-bench.json"), None)
    out += ["", "Queries/s: 1,000 queries, all cores; offline and fitted sets: the teacher's vectors of "
            "1,000 training rewrites, clustered set: its own queries. Exact = nr-eval's blocked gemm "
            "search over f32 vectors in RAM. Rates are medians over rounds that alternate the index "
            "with exact search (results written before 2026-12-06 timed one pass of each), and a "
            "speed-up is the median of the rounds' ratios. *LanceDB's search RSS includes numpy's "
            "exact baseline in the same process."]
    print("\n".join(out))


if __name__ == "__main__":
    main()
