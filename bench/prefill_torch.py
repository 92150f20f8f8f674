"""PyTorch (transformers, float32) side of the prefill benchmark.

Reads the prompts that `cargo bench -p nr-backbone --bench prefill` wrote to
results/bench-prefill-prompts.json and runs the same workload: one forward pass with every hidden
state returned, batch 8 (left-padded) and batch 1, 1 thread and all threads.

    python bench/prefill_torch.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import argparse
import json
import os
import statistics
import time

import torch
from transformers import AutoModelForCausalLM

REPEATS = 5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--prompts", default="results/bench-prefill-prompts.json")
    args = ap.parse_args()
    prompts = json.load(open(args.prompts))
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(args.model) or ".", gguf_file=os.path.basename(args.model), torch_dtype=torch.float32
    ).eval()
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
                for ids, mask in batches(size):  # warm-up
                    model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                    break
                rates = []
                for _ in range(REPEATS):
                    start = time.perf_counter()
                    for ids, mask in batches(size):
                        model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                    rates.append(tokens / (time.perf_counter() - start))
            rows.append({"threads": threads, "batch": size, "median": statistics.median(rates), "min": min(rates), "max": max(rates)})
    print(f"\nprefill, transformers {__import__('transformers').__version__}, torch {torch.__version__}, float32\n")
    print("| threads | batch | tokens/s median | min | max |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['threads']} | {r['batch']} | {r['median']:.0f} | {r['min']:.0f} | {r['max']:.0f} |")
    os.makedirs("results", exist_ok=True)
    json.dump(rows, open("results/bench-prefill-torch.json", "w"), indent=1)


if __name__ == "__main__":
    main()
