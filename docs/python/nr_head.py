"""Run a native-retrieval encoder (the folder `nr run` writes as OUTPUT/head) in Python.

Needs numpy and safetensors only (transformers and torch only in `query_vector_with_transformers`
and `__main__`). `load_encoder(folder).vector(head_inputs, lexical)` reproduces `nr`'s query vector
of a conversation, computed as crates/nr-head and crates/nr-experiments/src/native compute it:

    head_inputs [tokens, layers, hidden]     the LLM's states at features.layers, pooled (below)
    x = (x - mean) / std                     encoder.json "standardizer", per layer and dimension
    x = sum_l softmax(mix.logits)_l x[:, l]  only when the head reads several layers
    v = mean_t x[t]                          or sum_t softmax_t(x[t] . token_pool.score) x[t]
    v = LayerNorm(v)                         with input_layernorm: eps 1e-5, biased variance
    d = v @ W + b                            W is stored [in, out]; mlp: up, exact erf GELU, down
    dense = d / max(|d|, 1e-12)
    lexicon (when encoder.json has "lexicon": true; head.lexicon.safetensors, f16 table [vocab, D]):
    lex = unit(sum of the question's token rows) + sum_m w_m unit(sum of message m's rows), for the
          earlier messages m, w_m = user|assistant weight * decay ** (user messages after m)
    vector = unit(unit(lex) + dense_weight * dense)

Measured against `nr inspect query-vector` (crates/nr-experiments/tests/python_interop.rs, which
asserts 1e-4): max abs difference 1.1e-7 (mlp head, layers 15 and 30 mixed, input LayerNorm,
last-token pooling) and 4.5e-8 (linear head, question pooling, lexicon), the same from head inputs
rebuilt out of the LLM's per-layer states by `head_inputs`; and 5.9e-7 when the mlp head reads
transformers' own states of the same prompt (../shared/fixtures/smollm2_reference.json: the GGUF
de-quantized by transformers in float32, relative L2 distance 9.8e-7 from nr's
states). Mapper heads are refused.

Head inputs from transformers (`query_vector_with_transformers` runs the model; the test runs the
head on the fixture's transformers states instead, as torch is not in the test environment).
Layer l of features.layers is `output_hidden_states[l]` (0 = embeddings, i = output of block i,
the last index = the final norm's output, as nr-backbone reads them). `pool = "question"` averages
the prompt's last k tokens, k = tokens of the prompt past its longest common prefix with the same
prompt whose last (user) message is empty: the question's tokens and the `<|im_end|>\\n
<|im_start|>assistant\\n` generation prompt; "question_tokens" keeps them one by one. The prompt is
the chat template with the generation prompt over [system_prompt], the history and the question,
oldest (question, answer) pairs dropped until it fits features.max_prompt_tokens. An encoder
trained on a GGUF file reads that file's states: load it with `gguf_file=` (transformers then
de-quantizes it; its states match nr's within ~1e-3 relative, see ../shared/fixtures/README.md):

    >>> from transformers import AutoModelForCausalLM, AutoTokenizer
    >>> m = AutoModelForCausalLM.from_pretrained("models", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> t = AutoTokenizer.from_pretrained("models", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> enc = load_encoder("runs/qrecc-offline/head")
    >>> v = query_vector_with_transformers(enc, m, t, ["Who wrote Dune?", "Frank Herbert."], "When?")
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

# (question ids, [(speaker "user" | "assistant", ids), ...] oldest first): the LLM's tokens of each
# message without special tokens.
Lexical = tuple[Sequence[int], Sequence[tuple[str, Sequence[int]]]]


def unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


class Encoder:
    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        side = json.loads((folder / "encoder.json").read_text())
        self.features: dict[str, Any] = side["features"]
        self.head: dict[str, Any] = side["head"]
        if self.head["kind"] not in ("linear", "mlp"):
            raise NotImplementedError(f"{folder}: {self.head['kind']} heads are not supported here")
        shape = (len(self.features["layers"]), self.head["input_dim"])
        self.mean = np.asarray(side["standardizer"]["mean"], np.float64).reshape(shape)
        self.std = np.asarray(side["standardizer"]["std"], np.float64).reshape(shape)
        self.w = {k: v.astype(np.float64) for k, v in load_file(folder / "head.safetensors").items()}
        self.table: np.ndarray | None = None
        if side["lexicon"]:
            path = folder / "head.lexicon.safetensors"
            with safe_open(path, "np") as f:
                self.mix = json.loads(f.metadata()["nr"])["mix"]
                self.table = f.get_tensor("table").astype(np.float64)

    def dense(self, head_inputs: np.ndarray) -> np.ndarray:
        """The dense head's unit vector of raw head inputs [tokens, layers, hidden]."""
        x = (np.asarray(head_inputs, np.float64) - self.mean) / self.std
        w = self.w
        x = np.einsum("tlh,l->th", x, softmax(w["mix.logits"])) if "mix.logits" in w else x[:, 0]
        a = softmax(x @ w["token_pool.score"]) if "token_pool.score" in w else None
        v = x.mean(0) if a is None else a @ x
        if "input_norm.gamma" in w:
            v = (v - v.mean()) / np.sqrt(v.var() + 1e-5) * w["input_norm.gamma"]
            v = v + w.get("input_norm.beta", 0.0)
        if self.head["kind"] == "linear":
            d = v @ w["projection.Linear.weight"] + w["projection.Linear.bias"]
        else:
            h = v @ w["projection.Mlp.up.weight"] + w["projection.Mlp.up.bias"]
            h = 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))
            d = h @ w["projection.Mlp.down.weight"] + w["projection.Mlp.down.bias"]
        return unit(d)

    def lexical(self, question: Sequence[int], history: Sequence[tuple[str, Sequence[int]]]):
        """The lexicon's (unnormalised) vector of a conversation."""
        assert self.table is not None
        c = self.mix["conversation"]
        rows = lambda ids: self.table[np.asarray(ids, np.int64)].sum(0)  # noqa: E731
        out, later_users = unit(rows(question)), 0
        for speaker, ids in reversed(history):
            w = c[speaker] * c["decay"] ** later_users
            later_users += speaker == "user"
            if w != 0 and len(ids):
                out = out + w * unit(rows(ids))
        return out

    def vector(self, head_inputs: np.ndarray, lexical: Lexical | None = None) -> np.ndarray:
        """The query vector, as `nr` makes it (float32)."""
        dense = self.dense(head_inputs)
        if self.table is None:
            return dense.astype(np.float32)
        if lexical is None:
            raise ValueError("the encoder has a lexicon: pass lexical=(question ids, history)")
        lex = unit(self.lexical(*lexical))
        return unit(lex + self.mix["dense_weight"] * dense).astype(np.float32)


def load_encoder(folder: str | Path) -> Encoder:
    return Encoder(folder)


def head_inputs(enc: Encoder, hidden_states: Sequence[Any], pooled_tokens: int) -> np.ndarray:
    """[tokens, layers, hidden] from one prompt's states by layer index (transformers'
    `output_hidden_states`, each [1, T, H] or [T, H]); `pooled_tokens`: the prompt's last tokens
    that `pool` reads (see the module docstring; "last" reads 1)."""
    f = enc.features
    hidden = enc.head["input_dim"]
    x = np.stack([np.asarray(hidden_states[l], np.float32).reshape(-1, hidden) for l in f["layers"]], 1)
    tail = x[len(x) - (1 if f["pool"] == "last" else max(1, min(pooled_tokens, len(x)))) :]
    return tail.mean(0, keepdims=True) if f["pool"] in ("question", "mean_last") else tail


def prompt_messages(enc: Encoder, history: Sequence[str], question: str, count: Callable) -> list:
    """nr's messages: [system], history (user, assistant, ...), question; the oldest pairs dropped
    until `count(messages)` (prompt tokens) fits features.max_prompt_tokens."""
    system = enc.features["system_prompt"]
    for start in range(0, len(history) + 2, 2):
        roles = ["user", "assistant"] * len(history)
        messages = [{"role": "system", "content": system}] if system is not None else []
        messages += [{"role": r, "content": c} for r, c in zip(roles, history[start:])]
        messages.append({"role": "user", "content": question})
        if count(messages) <= enc.features["max_prompt_tokens"] or start >= len(history):
            return messages
    raise AssertionError


def query_vector_with_transformers(enc: Encoder, model: Any, tokenizer: Any,
                                   history: Sequence[str], question: str) -> np.ndarray:
    """The query vector of a conversation, the LLM run by transformers (`context` source)."""
    import torch

    f = enc.features
    if f["source"] != "context" or f["pool"] == "tokens":
        raise NotImplementedError(f"source {f['source']} with pool {f['pool']} is not covered here")
    ids_of = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731

    def prompt(messages: list) -> list[int]:
        ids = ids_of(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        bos = tokenizer.bos_token_id
        return [bos] + ids if getattr(tokenizer, "add_bos_token", False) and ids[:1] != [bos] else ids

    messages = prompt_messages(enc, history, question, lambda m: len(prompt(m)))
    ids = prompt(messages)
    empty = prompt(messages[:-1] + [{"role": "user", "content": ""}])
    common = next((i for i, (a, b) in enumerate(zip(ids, empty)) if a != b), min(len(ids), len(empty)))
    k = {"question": len(ids) - common, "question_tokens": len(ids) - common, "last": 1}.get(f["pool"], f["pool_k"])
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
    x = head_inputs(enc, [h[0].float().numpy() for h in out.hidden_states], max(k, 1))
    earlier = [(m["role"], ids_of(m["content"])) for m in messages[:-1] if m["role"] != "system"]
    return enc.vector(x, (ids_of(question), earlier))


if __name__ == "__main__":  # python nr_head.py ENCODER_DIR CONVERSATION.json (as `nr chat --script`)
    import sys

    from transformers import AutoModelForCausalLM, AutoTokenizer

    enc = load_encoder(sys.argv[1])
    turns = [t if isinstance(t, dict) else {"user": t} for t in json.loads(Path(sys.argv[2]).read_text())]
    history = [m for t in turns[:-1] for m in (t["user"], t["assistant"])]
    llm = Path(json.loads((Path(sys.argv[1]) / "encoder.json").read_text())["models"]["llm"])
    where = dict(gguf_file=llm.name) if llm.suffix == ".gguf" else {}
    folder = str(llm.parent if where else llm)
    model = AutoModelForCausalLM.from_pretrained(folder, **where).float().eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, **where)
    print(json.dumps(query_vector_with_transformers(enc, model, tokenizer, history, turns[-1]["user"]).tolist()))
