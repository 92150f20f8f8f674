#!/usr/bin/env bash
# The pre-training curve of docs/results.md (issue #13): experiments/qrecc-offline.toml as it was
# measured (the question's mean state, in memory, contrastive + rank; the manifest has moved on) with its dense
# head pre-trained on N passage windows (`[pretrain]`) by each method, N in $NR_PRETRAIN_TEXTS (default
# 0 5000 10000 20000 41989, the last being every window of the offline collection), each in
# runs/pretrain-METHOD-N; then one table -> results/pretrain-curve.md. Windows' hidden states are
# cached in chunks, so every run after the largest costs only its training and evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=${NR_PRETRAIN_TEXTS:-"0 5000 10000 20000 41989"}
for method in ridge align; do
  for n in $counts; do
    out="runs/pretrain-$method-$n"
    if [ -f "$out/metrics.json" ] && [ -f "$out/selection.json" ]; then echo "pretrain-curve: $out done, kept"; continue; fi
    cargo run --release -q -p nr-experiments -- run experiments/qrecc-offline.toml \
      --set backbone.pool=question --set head.token_pooling=mean --set backbone.feature_store=false \
      --set 'losses.use_terms=["contrastive","rank"]' \
      --set "pretrain.texts=$n" --set "pretrain.method=$method" --set "output=$out" "$@"
  done
done
mkdir -p results
python3 - "$counts" > results/pretrain-curve.md <<'PY'
import json, os, sys
print("| method | windows | fidelity: pre-trained / final | dev MRR@10: pre-trained / dense / native | test R@10 | MRR@10 | R@100 |")
print("|---|---|---|---|---|---|---|")
for method in ["ridge", "align"]:
    for n in sys.argv[1].split():
        out = f"runs/pretrain-{method}-{n}"
        m = json.load(open(f"{out}/metrics.json"))["systems"]["native"]["mean"]
        s = json.load(open(f"{out}/selection.json"))
        p = json.load(open(f"{out}/pretrain.json")) if os.path.exists(f"{out}/pretrain.json") else None
        fid = f"{p['fidelity_pretrained']:.3f} / {p['fidelity_final']:.3f}" if p else "-"
        pre = f"{p['dev_mrr10']:.3f}" if p else "-"
        print(f"| {method} | {n} | {fid} | {pre} / {s['dense_dev_mrr10']:.3f} / {s['native_dev_mrr10']:.3f} | "
              f"{m['recall_10']:.3f} | {m['mrr_10']:.3f} | {m['recall_100']:.3f} |")
PY
cat results/pretrain-curve.md
