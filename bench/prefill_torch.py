"""PyTorch (transformers, float32) side of the prefill benchmark.

Runs the workload of crates/nr-experiments/benches/prefill.rs on the prompts it wrote to
results/bench/prefill-prompts.json: one forward pass returning every hidden state, batch 8
(left-padded) and batch 1, on 1 thread and on all threads. Writes results/bench/prefill.reference.json.

    python bench/prefill_torch.py [--repeats 5]
"""
import argparse
import json
import os
import time

import torch
from transformers import AutoModelForCausalLM

from common import MODELS, RESULTS, row, write_reference

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=int(os.environ.get("NR_BENCH_REPEATS", 5)))
    args = ap.parse_args()
    prompts = json.load(open(RESULTS / "prefill-prompts.json"))
    model = AutoModelForCausalLM.from_pretrained(str(MODELS), gguf_file=GGUF, dtype=torch.float32).eval()
    pad = 2
    tokens = sum(len(p) for p in prompts)

    def batches(size):
        for i in range(0, len(prompts), size):
            chunk = prompts[i : i + size]
            width = max(len(p) for p in chunk)
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in chunk])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk])
            yield ids, mask

    rows = []
    for threads in (1, os.cpu_count()):
        torch.set_num_threads(threads)
        for size in (8, 1):
            with torch.inference_mode():
                ids, mask = next(batches(size))  # warm-up
                model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                rates = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    for ids, mask in batches(size):
                        model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                    rates.append(tokens / (time.perf_counter() - start))
            rows.append(row(f"threads={threads} batch={size}", "tokens/s", rates))
    import transformers

    write_reference(
        "prefill",
        f"transformers {transformers.__version__}, torch {torch.__version__} CPU, float32 (GGUF de-quantised), {args.repeats} runs",
        f"the same {len(prompts)} prompts ({[len(p) for p in prompts]} tokens), every hidden state",
        rows,
    )


if __name__ == "__main__":
    main()
