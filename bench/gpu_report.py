"""report.md of a GPU check (scripts/gpu-run.sh): machine, step status, cross-backend errors, and the
throughput of ours (wgpu and flex) next to PyTorch (float32, bfloat16) with shares of the matmul peak.

    python3 bench/gpu_report.py OUT_DIR > OUT_DIR/report.md
"""

import json
import os
import re
import sys

# Prefill FLOPs per token of a Llama shape: 2 x the non-embedding weights (every matmul) plus causal
# attention (QK^T and AV over on average half the sequence: 2 x 2 x seq/2 x width per layer).
LLAMA_SHAPES = {
    "smollm2-135m": dict(params=134_515_008, embed=49152 * 576, hidden=576, layers=30),
    "tiny": dict(params=None, embed=None, hidden=64, layers=2),
}


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def key(row):
    # Head rows pair by the head's name ("linear", "linear (attention pooling)", ...).
    head = row["case"].split(" head")[0]
    return (row["stage"], head if row["stage"] == "head_train" else "")


def main(out):
    lines = ["# GPU check", ""]
    machine = open(os.path.join(out, "machine.txt")).read().strip() if os.path.exists(os.path.join(out, "machine.txt")) else ""
    lines += ["```", machine, "```", "", "## Steps", "", "| step | status | seconds |", "|---|---|---|"]
    for line in open(os.path.join(out, "status.txt")):
        name, *rest = line.split()
        lines.append(f"| {name} | {' '.join(rest[:-1])} | {rest[-1]} |")

    for name in ["cross_backend_wgpu", "cross_backend_tch"]:
        path = os.path.join(out, name + ".log")
        if not os.path.exists(path):
            continue
        text = open(path, errors="replace").read()
        checks = re.findall(r"\[([\w-]+)\] (.+?): n = (\d+), max \|d\| = (\S+), rel L2 = (\S+) \(tol (\S+)\)", text)
        results = re.findall(r"test result: .*", text)
        lines += ["", f"## {name}", ""]
        if checks:
            lines += ["| device | comparison | n | max abs diff | rel L2 | tolerance |", "|---|---|---|---|---|---|"]
            lines += [f"| {d} | {w} | {n} | {m} | {r} | {t} |" for d, w, n, m, r, t in checks]
        lines += [""] + [f"`{r}`" for r in results]
        if not results:
            tail = [l for l in text.strip().splitlines() if l.strip()][-5:]
            lines += ["No test result; last lines:", "```", *tail, "```"]

    ours = {}
    for dev in ["wgpu", "flex"]:
        data = load(os.path.join(out, f"throughput_{dev}.json"))
        for row in (data or {}).get("rows", []):
            ours[(dev,) + key(row)] = row
    torch = load(os.path.join(out, "throughput_torch.json")) or {}
    theirs = {(r["dtype"],) + key(r): r for r in torch.get("rows", [])}
    peak = {dt: theirs.get((dt, "matmul", ""), {}).get("median") for dt in ["float32", "bfloat16"]}
    shape = LLAMA_SHAPES.get((torch.get("meta") or {}).get("llm_shape", "smollm2-135m"), {})

    lines += ["", "## Throughput", ""]
    if peak["float32"]:
        lines.append(f"Measured matmul peak: float32 {peak['float32']:.0f} GFLOP/s (TF32 off), "
                     f"bfloat16 {peak['bfloat16']:.0f} GFLOP/s.")
    lines += ["", "| stage | case (ours) | ours wgpu | ours flex (CPU) | torch f32 | torch bf16 | wgpu / best torch |",
              "|---|---|---|---|---|---|---|"]
    keys = sorted({k[1:] for k in ours} | {k[1:] for k in theirs if k[1] != "matmul"})
    for k in keys:
        w, c = ours.get(("wgpu",) + k), ours.get(("flex",) + k)
        f32, bf16 = theirs.get(("float32",) + k), theirs.get(("bfloat16",) + k)
        ref = max([r["median"] for r in (f32, bf16) if r] or [0])
        fmt = lambda r: f"{r['median']:.1f} {r['unit']}" if r else "-"
        ratio = f"{w['median'] / ref:.2f}" if w and ref else "-"
        case = (w or c or f32 or bf16)["case"]
        lines.append(f"| {k[0]} | {case} | {fmt(w)} | {fmt(c)} | {fmt(f32)} | {fmt(bf16)} | {ratio} |")

    w = ours.get(("wgpu", "prefill", ""))
    if w and shape.get("params") and peak["float32"]:
        seq = int(re.search(r"x (\d+) tokens", w["case"]).group(1))
        flops = 2 * (shape["params"] - shape["embed"]) + 2 * shape["layers"] * seq * shape["hidden"]
        achieved = w["median"] * flops / 1e9
        lines += ["", f"Prefill on wgpu: {flops / 1e6:.0f} MFLOP per token -> {achieved:.0f} GFLOP/s, "
                  f"{100 * achieved / peak['float32']:.1f}% of the float32 matmul peak."]
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
