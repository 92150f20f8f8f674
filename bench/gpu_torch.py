"""PyTorch on the workloads of `nr throughput`, for the GPU check (scripts/gpu-run.sh).

Plain PyTorch modules with random weights in the same shapes (a Llama decoder with grouped-query
attention and SwiGLU, a BERT encoder, the three head kinds), in float32 (TF32 off: the same
arithmetic as ours) and bfloat16, plus the measured matmul peak of each dtype, so that every rate
can be read as a share of what the device can do. Needs only torch (no transformers: the GPU machine
has no internet). Each row: one untimed warm-up, then `--repeats` timed runs, synchronised.

    python3 bench/gpu_torch.py --llm-shape smollm2-135m --bert-shape minilm-l6 --json out.json
"""

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

LLAMA = {
    "smollm2-135m": dict(vocab=49152, hidden=576, inter=1536, layers=30, heads=9, kv=3, theta=1e5),
    "tiny": dict(vocab=320, hidden=64, inter=128, layers=2, heads=4, kv=2, theta=1e4),
}
BERT = {
    "minilm-l6": dict(vocab=30522, hidden=384, inter=1536, layers=6, heads=12, positions=512),
    "tiny": dict(vocab=200, hidden=32, inter=64, layers=2, heads=4, positions=128),
}


class LlamaBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, hd = c["hidden"], c["hidden"] // c["heads"]
        self.heads, self.kv, self.hd = c["heads"], c["kv"], hd
        self.norm1, self.norm2 = nn.RMSNorm(h, eps=1e-5), nn.RMSNorm(h, eps=1e-5)
        self.q = nn.Linear(h, h, bias=False)
        self.k = nn.Linear(h, c["kv"] * hd, bias=False)
        self.v = nn.Linear(h, c["kv"] * hd, bias=False)
        self.o = nn.Linear(h, h, bias=False)
        self.gate = nn.Linear(h, c["inter"], bias=False)
        self.up = nn.Linear(h, c["inter"], bias=False)
        self.down = nn.Linear(c["inter"], h, bias=False)

    def forward(self, x, cos, sin):
        b, s, _ = x.shape
        y = self.norm1(x)
        q = self.q(y).view(b, s, self.heads, self.hd).transpose(1, 2)
        k = self.k(y).view(b, s, self.kv, self.hd).transpose(1, 2)
        v = self.v(y).view(b, s, self.kv, self.hd).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, s, -1))
        y = self.norm2(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab"], c["hidden"])
        self.blocks = nn.ModuleList(LlamaBlock(c) for _ in range(c["layers"]))
        self.norm = nn.RMSNorm(c["hidden"], eps=1e-5)

    def forward(self, ids):
        hd = self.c["hidden"] // self.c["heads"]
        pos = torch.arange(ids.shape[1], device=ids.device, dtype=torch.float32)
        inv = self.c["theta"] ** (-torch.arange(0, hd, 2, device=ids.device).float() / hd)
        angles = torch.outer(pos, inv)
        angles = torch.cat([angles, angles], dim=-1)
        dtype = self.embed.weight.dtype
        cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
        x = self.embed(ids)
        kept = []
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin)
            if i + 1 == len(self.blocks) * 4 // 5:
                kept.append(x)
        kept.append(self.norm(x))
        return kept


class Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden"]
        self.word = nn.Embedding(c["vocab"], h)
        self.pos = nn.Embedding(c["positions"], h)
        self.typ = nn.Embedding(2, h)
        self.norm = nn.LayerNorm(h, eps=1e-12)
        layer = nn.TransformerEncoderLayer(h, c["heads"], c["inter"], dropout=0.0,
                                           activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, c["layers"], enable_nested_tensor=False)

    def forward(self, ids, mask):
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.norm(self.word(ids) + self.pos(pos) + self.typ(torch.zeros_like(ids)))
        x = self.encoder(x, src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        return F.normalize((x * m).sum(1) / m.sum(1), dim=-1)


def head(kind, d_in, d_out):
    if kind == "linear":
        return nn.Linear(d_in, d_out)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(d_in, 1024), nn.GELU(), nn.Linear(1024, d_out))
    layer = nn.TransformerEncoderLayer(d_out, 8, 4 * d_out, dropout=0.0, batch_first=True)
    return nn.Sequential(nn.Linear(d_in, d_out),
                         nn.TransformerEncoder(layer, 2, enable_nested_tensor=False))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(device, count, repeats, work):
    work()
    sync(device)
    runs = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        work()
        sync(device)
        runs.append(count / (time.perf_counter() - t0))
    runs_sorted = sorted(runs)
    n = len(runs_sorted)
    median = runs_sorted[n // 2] if n % 2 else (runs_sorted[n // 2 - 1] + runs_sorted[n // 2]) / 2
    return median, runs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--llm-shape", default="smollm2-135m", choices=LLAMA)
    p.add_argument("--bert-shape", default="minilm-l6", choices=BERT)
    p.add_argument("--prefill-batch", type=int, default=8)
    p.add_argument("--prefill-tokens", type=int, default=256)
    p.add_argument("--teacher-batch", type=int, default=256)
    p.add_argument("--teacher-words", type=int, default=24)
    p.add_argument("--head-examples", type=int, default=1024)
    p.add_argument("--mapper-tokens", type=int, default=128)
    p.add_argument("--search-queries", type=int, default=1000)
    p.add_argument("--search-passages", type=int, default=100000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json")
    a = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    rows = []

    def report(stage, case, unit, dtype, median, runs, **extra):
        row = dict(stage=stage, case=case, unit=unit, dtype=dtype, median=median, runs=runs, **extra)
        rows.append(row)
        print(f"| {stage} | {case} | {dtype} | {median:.1f} {unit} |", flush=True)

    dtypes = [("float32", torch.float32), ("bfloat16", torch.bfloat16)]
    n = 8192 if device.type == "cuda" else 1024
    for name, dt in dtypes:
        x, y = torch.randn(n, n, device=device, dtype=dt), torch.randn(n, n, device=device, dtype=dt)
        med, runs = measure(device, 2 * n**3 / 1e9, a.repeats, lambda: x @ y)
        report("matmul", f"{n}x{n} @ {n}x{n}", "GFLOP/s", name, med, runs)

    c = LLAMA[a.llm_shape]
    ids = torch.randint(0, c["vocab"], (a.prefill_batch, a.prefill_tokens), device=device)
    for name, dt in dtypes:
        model = Llama(c).to(device=device, dtype=dt).eval()
        with torch.inference_mode():
            med, runs = measure(device, ids.numel(), a.repeats, lambda: [t.float().cpu() for t in model(ids)])
        report("prefill", f"{a.prefill_batch} prompts x {a.prefill_tokens} tokens", "tokens/s", name, med, runs)
        del model

    b = BERT[a.bert_shape]
    tokens = min(32, b["positions"])
    tids = torch.randint(5, b["vocab"], (a.teacher_batch, tokens), device=device)
    mask = torch.ones_like(tids, dtype=torch.bool)
    for name, dt in dtypes:
        model = Bert(b).to(device=device, dtype=dt).eval()
        with torch.inference_mode():
            med, runs = measure(device, a.teacher_batch, a.repeats, lambda: model(tids, mask).float().cpu())
        report("teacher", f"{a.teacher_batch} sentences x {tokens} tokens", "sentences/s", name, med, runs)
        del model

    if a.head_examples > 0:
        d_in, d_out, top_k, batch, tau = c["hidden"], b["hidden"], 32, 64, 0.05
        passages = F.normalize(torch.randn(10000, d_out, device=device), dim=-1)
        targets = F.normalize(torch.randn(a.head_examples, d_out, device=device), dim=-1)
        cands = torch.randint(0, 10000, (a.head_examples, top_k), device=device)
        teacher_scores = torch.linspace(0.9, 0.9 - 0.01 * (top_k - 1), top_k, device=device)
        for kind in ["linear", "mlp", "mapper"]:
            toks = a.mapper_tokens if kind == "mapper" else 1
            x = torch.rand(a.head_examples, toks, d_in, device=device) * 2 - 1
            h = head(kind, d_in, d_out).to(device)
            opt = torch.optim.AdamW(h.parameters(), lr=1e-3, weight_decay=0.01)

            def epoch():
                for s in range(0, a.head_examples, batch):
                    xb = x[s:s + batch]
                    q = h(xb).mean(1) if kind == "mapper" else h(xb[:, 0])
                    q = F.normalize(q, dim=-1)
                    t = targets[s:s + batch]
                    gold = passages[cands[s:s + batch, 0]]
                    align = (1 - (q * t).sum(-1)).mean()
                    infonce = F.cross_entropy(q @ gold.T / tau, torch.arange(len(q), device=device))
                    cand = passages[cands[s:s + batch]]
                    student = torch.einsum("bd,bkd->bk", q, cand) / tau
                    rank = F.kl_div(F.log_softmax(student, -1),
                                    F.softmax(teacher_scores / tau, -1).expand_as(student),
                                    reduction="batchmean")
                    loss = align + infonce + rank
                    opt.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(h.parameters(), 1.0)
                    opt.step()
                    loss.item()

            med, runs = measure(device, a.head_examples, a.repeats, epoch)
            report("head_train", f"{kind} head, batch {batch}, {a.head_examples} examples, {toks} token(s)",
                   "examples/s", "float32", med, runs)

    if a.search_queries > 0:
        d = b["hidden"]
        corpus = F.normalize(torch.randn(a.search_passages, d, device=device), dim=-1)
        qs = F.normalize(torch.randn(a.search_queries, d), dim=-1)
        for name, dt in dtypes:
            cd = corpus.to(dt)
            med, runs = measure(device, a.search_queries, a.repeats,
                                lambda: (qs.to(device, dt) @ cd.T).topk(10, dim=1).indices.cpu())
            report("search", f"{a.search_queries} queries x {a.search_passages} passages, top 10",
                   "queries/s", name, med, runs)

    if a.json:
        meta = dict(torch=torch.__version__, device=str(device),
                    name=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                    llm_shape=a.llm_shape, bert_shape=a.bert_shape)
        with open(a.json + ".tmp", "w") as f:
            json.dump(dict(meta=meta, rows=rows), f, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
