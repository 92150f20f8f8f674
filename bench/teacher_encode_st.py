"""sentence-transformers (PyTorch, CPU) side of the teacher encoding benchmark.

Runs the workload of crates/nr-experiments/benches/teacher_encode.rs: the first 2,000 passages of
data/qrecc-offline/passages.jsonl with all-MiniLM-L6-v2 at batch 32 (sentence-transformers also
sorts texts by length before batching), on all threads and on 1 thread. Writes
results/bench/teacher_encode.reference.json.

    python bench/teacher_encode_st.py [--passages N] [--repeats R]
"""
import argparse
import json
import os
import time

from common import DATA, MODELS, row, write_reference


def read_passages(n):
    texts = []
    with open(DATA / "passages.jsonl", encoding="utf-8") as f:
        for line in f:
            if len(texts) == n:
                break
            texts.append(json.loads(line)["contents"])
    return texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=int(os.environ.get("NR_BENCH_PASSAGES", 2000)))
    ap.add_argument("--repeats", type=int, default=int(os.environ.get("NR_BENCH_REPEATS", 3)))
    args = ap.parse_args()
    batch = 32

    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    texts = read_passages(args.passages)
    model = SentenceTransformer(str(MODELS / "all-MiniLM-L6-v2"), device="cpu")
    rows = []
    for threads in (os.cpu_count(), 1):
        torch.set_num_threads(threads)
        model.encode(texts[: 2 * batch], batch_size=batch)  # warm-up
        rates = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            embeddings = model.encode(texts, batch_size=batch)
            rates.append(len(texts) / (time.perf_counter() - start))
            assert embeddings.shape[0] == len(texts)
        rows.append(row(f"threads={threads} batch={batch}", "passages/s", rates))
    write_reference(
        "teacher_encode",
        f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__} CPU, float32, {args.repeats} runs",
        f"first {len(texts)} QReCC passages, batch {batch}",
        rows,
    )


if __name__ == "__main__":
    main()
