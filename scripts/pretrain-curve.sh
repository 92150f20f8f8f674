#!/usr/bin/env bash
# The pre-training curve of docs/results.md (issue #13): experiments/qrecc-offline.toml with the dense
# head pre-trained on N passage windows (`[pretrain]`), N in $NR_PRETRAIN_TEXTS (default 0 5000 10000
# 20000), each in runs/pretrain-N; then one table of dev and test figures -> results/pretrain-curve.md.
# Windows are cached in chunks, so each N after the largest costs only its training and evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=${NR_PRETRAIN_TEXTS:-"0 5000 10000 20000"}
for n in $counts; do
  out="runs/pretrain-$n"
  if [ -f "$out/metrics.json" ]; then echo "pretrain-curve: $out done, kept"; continue; fi
  cargo run --release -q -p nr-experiments -- run experiments/qrecc-offline.toml \
    --set "pretrain.texts=$n" --set "output=$out" "$@"
done
mkdir -p results
python3 - "$counts" > results/pretrain-curve.md <<'PY'
import json, os, sys
rows = ["| windows | fidelity (held-out windows): pre-trained / final | dev MRR@10: pre-trained dense / dense / native | test R@10 | MRR@10 | R@100 |",
        "|---|---|---|---|---|---|"]
for n in sys.argv[1].split():
    out = f"runs/pretrain-{n}"
    m = json.load(open(f"{out}/metrics.json"))["systems"]["native"]["mean"]
    s = json.load(open(f"{out}/selection.json"))
    p = json.load(open(f"{out}/pretrain.json")) if os.path.exists(f"{out}/pretrain.json") else None
    fid = f"{p['fidelity_pretrained']:.3f} / {p['fidelity_final']:.3f}" if p else "-"
    pre = f"{p['dev_mrr10']:.3f}" if p else "-"
    rows.append(f"| {n} | {fid} | {pre} / {s['dense_dev_mrr10']:.3f} / {s['native_dev_mrr10']:.3f} | "
                f"{m['recall_10']:.3f} | {m['mrr_10']:.3f} | {m['recall_100']:.3f} |")
print("\n".join(rows))
PY
cat results/pretrain-curve.md
