#!/usr/bin/env bash
# The figures of docs/scale.md: sharded encode of the offline collection -> Parquet -> HNSW index ->
# recall and speed against exact search; the same on N synthetic vectors (default 1M); LanceDB's
# IVF-PQ on the same files as the peer. Writes results/scale/*.json and results/scale.md.
#
#   bash scripts/scale.sh [COUNT]            (just scale [COUNT])
#   NR_SCALE_SKIP_PEER=1 bash scripts/scale.sh   without the LanceDB peer (no PyPI download)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
work=runs/scale
res=results/scale
mkdir -p "$work" "$res"
cargo build --release -q -p nr-experiments
nr=./target/release/nr
bash scripts/fetch-models.sh >/dev/null
bash scripts/prepare-data.sh >/dev/null
python_env=${NR_PYTHON_ENV:-$HOME/.cache/native-retrieval/python}
timed() { # <json out> <cmd...>: runs cmd, keeps its stdout JSON, adds wall seconds and peak RSS
  local out=$1; shift
  /usr/bin/time -f '%e %M' -o "$out.time" "$@" >"$out.raw"
  python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
seconds, kib = open(out + ".time").read().split()[-2:]
raw = open(out + ".raw").read()
start = raw.find("{")
data = json.loads(raw[start:]) if start >= 0 else {"stdout": raw.strip()}
data["wall_seconds"] = float(seconds)
data["process_peak_rss_mb"] = int(kib) / 1024
json.dump(data, open(out, "w"), indent=2)
PY
  rm -f "$out.time" "$out.raw"
}

echo "== offline collection: sharded encode (4 shards), verify"
timed "$res/offline-encode.json" "$nr" encode --collection data/qrecc-offline/passages.jsonl \
  --out "$work/offline" --shards 4
"$nr" vectors verify "$work/offline" --collection data/qrecc-offline/passages.jsonl
# Queries: the teacher's embeddings of the test split's human rewrites.
python3 - "$work/test-rewrites.jsonl" <<'PY'
import json, sys
turns = json.load(open("data/qrecc-offline/qrecc_test.json"))
with open(sys.argv[1], "w") as f:
    for t in turns:
        f.write(json.dumps({"id": f"{t['Conversation_no']}_{t['Turn_no']}", "contents": t["Rewrite"]}) + "\n")
PY
"$nr" encode --collection "$work/test-rewrites.jsonl" --out "$work/offline-queries" >/dev/null
timed "$res/offline-build.json" "$nr" index build --vectors "$work/offline" --out "$work/offline.usearch"
"$nr" index bench --index "$work/offline.usearch" --vectors "$work/offline" \
  --queries "$work/offline-queries" --json "$res/offline-bench.json" >/dev/null

echo "== $count synthetic vectors: write, build, bench"
syn="$work/synthetic-$count"
[ -f "$syn/.complete" ] || {
  "$nr" vectors synthetic --count "$count" --dim 384 --shards 8 --queries 1000 --out "$syn"
  touch "$syn/.complete"
}
timed "$res/synthetic-$count-build.json" "$nr" index build --vectors "$syn" --out "$syn.usearch"
timed "$res/synthetic-$count-bench.json" "$nr" index bench --index "$syn.usearch" --vectors "$syn" \
  --queries "$syn-queries.parquet"

if [ "${NR_SCALE_SKIP_PEER:-0}" != 1 ]; then
  echo "== LanceDB IVF-PQ on the same files"
  bash scripts/python-env.sh
  "$python_env/bin/python" -c "import lancedb" 2>/dev/null || "$python_env/bin/pip" install -q lancedb
  "$python_env/bin/python" bench/index_peers.py --vectors "$work/offline" --queries "$work/offline-queries" \
    --work "$work/lancedb-offline" --json "$res/offline-lancedb.json" >/dev/null
  "$python_env/bin/python" bench/index_peers.py --vectors "$syn" --queries "$syn-queries.parquet" \
    --work "$work/lancedb-$count" --json "$res/synthetic-$count-lancedb.json" >/dev/null
fi
python3 bench/scale_report.py "$res" >"$res.md"
cat "$res.md"
