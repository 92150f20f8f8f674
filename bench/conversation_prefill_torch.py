"""PyTorch (transformers) side of the conversation prefill benchmark.

Runs the workload of crates/nr-experiments/benches/conversation_prefill.rs on the prompts it wrote
to results/bench/conversation-prompts.json (every turn of the QReCC test conversations; each turn's
prompt repeats the conversation before it), on all threads, in float32 and in bfloat16:
- "per prompt": each prompt in one forward pass returning every hidden state, as users run it;
- "KV reuse": a conversation's turns in order with `past_key_values`: the cache is cut back to the
  longest common prefix with the previous prompt and only the rest runs (the trick of ours).
The model's blocks after the deepest layer ours reads are dropped, as ours stops there (the
states of those layers are the same). Rate = the turns' prompt tokens / wall seconds, as ours. Writes
results/bench/conversation_prefill.reference.json.

    python bench/conversation_prefill_torch.py [--repeats 2]
"""
import argparse
import json
import os
import time

import torch
from transformers import AutoModelForCausalLM, DynamicCache

from common import MODELS, RESULTS, row, write_reference

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def per_prompt(model, conversations):
    for turns in conversations:
        for ids in turns:
            model.model(input_ids=torch.tensor([ids]), output_hidden_states=True)


def keep_prefix(cache, n, length):
    """Cuts a cache of `length` tokens back to its first `n` (transformers 5 crops by a negative count)."""
    if n < length:
        cache.crop(n - length)


def kv_reuse(model, conversations):
    for turns in conversations:
        cache, cached = DynamicCache(), []
        for ids in turns:
            common = 0
            for a, b in zip(cached, ids):
                if a != b:
                    break
                common += 1
            common = min(common, len(ids) - 1)  # at least one new token runs
            keep_prefix(cache, common, len(cached))
            new = torch.tensor([ids[common:]])
            positions = torch.arange(common, len(ids)).unsqueeze(0)
            model.model(input_ids=new, position_ids=positions, past_key_values=cache, use_cache=True, output_hidden_states=True)
            cached = ids


def check_kv_reuse(model, conversations):
    """The last token's final state with KV reuse equals the per-prompt one (relative L2)."""
    turns = next(t for t in conversations if len(t) > 1)[:2]
    with torch.inference_mode():
        whole = model.model(input_ids=torch.tensor([turns[1]]), output_hidden_states=True).hidden_states[-1][0, -1]
        cache = DynamicCache()
        model.model(input_ids=torch.tensor([turns[0]]), past_key_values=cache, use_cache=True)
        common = min(len(os.path.commonprefix([turns[0], turns[1]])), len(turns[1]) - 1)
        keep_prefix(cache, common, len(turns[0]))
        rest = model.model(
            input_ids=torch.tensor([turns[1][common:]]),
            position_ids=torch.arange(common, len(turns[1])).unsqueeze(0),
            past_key_values=cache,
            use_cache=True,
            output_hidden_states=True,
        ).hidden_states[-1][0, -1]
    return float((whole.float() - rest.float()).norm() / whole.float().norm())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=int(os.environ.get("NR_BENCH_REPEATS", 2)))
    args = ap.parse_args()
    workload = json.load(open(RESULTS / "conversation-prompts.json"))
    conversations = workload["conversations"]
    tokens = sum(len(p) for turns in conversations for p in turns)
    turns = sum(len(t) for t in conversations)
    model = AutoModelForCausalLM.from_pretrained(str(MODELS), gguf_file=GGUF, dtype=torch.float32).eval()
    deepest = max(workload["layers"])  # layer i = the output of block i
    blocks = len(model.model.layers)
    if deepest < blocks:
        model.model.layers = model.model.layers[:deepest]
    rows = []
    for dtype, name in ((torch.float32, "float32"), (torch.bfloat16, "bfloat16")):
        model = model.to(dtype)
        print(f"{name}: KV reuse against per prompt, relative L2 of the last state: {check_kv_reuse(model, conversations):.2e}")
        for label, fn in (("per prompt", per_prompt), ("KV reuse", kv_reuse)):
            with torch.inference_mode():
                fn(model, [conversations[0][:1]])  # warm-up
                rates = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    fn(model, conversations)
                    rates.append(tokens / (time.perf_counter() - start))
            rows.append(row(f"PyTorch {name}, {label}", "prompt tokens/s", rates))
            print(f"{rows[-1]['case']}: {rows[-1]['median']:.1f} prompt tokens/s")
    import transformers

    write_reference(
        "conversation_prefill",
        f"transformers {transformers.__version__}, torch {torch.__version__} CPU, {torch.get_num_threads()} threads, float32 and bfloat16 (GGUF de-quantised), {args.repeats} runs",
        f"the same {turns} prompts of {len(conversations)} conversations ({tokens} prompt tokens), the hidden states of blocks 1-{min(deepest, blocks)} of {blocks}",
        rows,
    )


if __name__ == "__main__":
    main()
