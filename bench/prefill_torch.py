"""PyTorch (transformers) side of the prefill benchmark, in float32 and in bfloat16.

Runs the workload of crates/nr-experiments/benches/prefill.rs on the prompts it wrote to
results/bench/prefill-prompts.json: one forward pass returning every hidden state, batch 8
(left-padded) and batch 1, on 1 thread and on all threads; float32 rows are named as ours in f32,
bfloat16 rows end in " bf16" as ours with bf16 projections. Writes results/bench/prefill.reference.json.

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
    f32_model = AutoModelForCausalLM.from_pretrained(str(MODELS), gguf_file=GGUF, dtype=torch.float32).eval()
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
    for dtype, suffix in ((torch.float32, ""), (torch.bfloat16, " bf16")):
        model = f32_model.to(dtype)
        rows += measure(model, batches, tokens, args.repeats, suffix)
    import transformers

    write_reference(
        "prefill",
        f"transformers {transformers.__version__}, torch {torch.__version__} CPU, float32 and bfloat16 (GGUF de-quantised), {args.repeats} runs",
        f"the same {len(prompts)} prompts ({[len(p) for p in prompts]} tokens), every hidden state",
        rows,
    )


def measure(model, batches, tokens, repeats, suffix):
    """tokens/s of every thread count and batch size, as rows named like ours."""
    rows = []
    for threads in (1, os.cpu_count()):
        torch.set_num_threads(threads)
        for size in (8, 1):
            with torch.inference_mode():
                ids, mask = next(batches(size))  # warm-up
                model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                rates = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    for ids, mask in batches(size):
                        model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                    rates.append(tokens / (time.perf_counter() - start))
            rows.append(row(f"threads={threads} batch={size}{suffix}", "tokens/s", rates))
    return rows


if __name__ == "__main__":
    main()
