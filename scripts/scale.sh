#!/usr/bin/env bash
# The figures of docs/scale.md: sharded encode of the offline collection -> Parquet -> index (HNSW,
# and the binary index: a flat scan, which pays on small collections) -> recall and speed against
# exact search; the same on COUNT synthetic vectors (default 1M) of two
# kinds: fitted to the offline collection's vectors (the headline) and isotropic latent clusters
# (a harder case); LanceDB's IVF-PQ on the same files as the peer. Queries: the teacher's vectors
# of 1,000 training rewrites (real questions), or the clustered set's own queries. Writes
# results/scale/*.json and results/scale.md.
#
#   bash scripts/scale.sh [COUNT] [SETS]     (just scale [COUNT] [SETS])
#   SETS: a comma-separated choice of offline,fitted,clustered (default all three); e.g.
#   `just scale 5000000 offline,fitted` for the 5M run of docs/scale.md
#   NR_SCALE_SKIP_PEER=1 bash scripts/scale.sh   without the LanceDB peer (no PyPI download)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
sets=,${2:-offline,fitted,clustered},
for set in ${sets//,/ }; do
  case "$set" in
    offline | fitted | clustered) ;;
    *) echo "error: unknown set $set (expected offline, fitted or clustered)" >&2; exit 2 ;;
  esac
done
wants() { [[ $sets == *",$1,"* ]]; }
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
# Queries: the teacher's vectors of 1,000 training rewrites (seeded sample; never dev or test).
python3 - "$work/train-rewrites.jsonl" <<'PY'
import json, random, sys
turns = [t for t in json.load(open("data/qrecc-offline/qrecc_train.json")) if t.get("Rewrite")]
random.seed(0)
with open(sys.argv[1], "w") as f:
    for t in random.sample(turns, min(1000, len(turns))):
        f.write(json.dumps({"id": f"{t['Conversation_no']}_{t['Turn_no']}", "contents": t["Rewrite"]}) + "\n")
PY
queries="$work/train-queries"
"$nr" encode --collection "$work/train-rewrites.jsonl" --out "$queries" >/dev/null

index_set() { # <name> <vectors> <queries>: build the default HNSW index, bench it against exact
  local name=$1 vectors=$2 q=$3
  timed "$res/$name-build.json" "$nr" index build --vectors "$vectors" --out "$work/$name.usearch"
  timed "$res/$name-bench.json" "$nr" index bench --index "$work/$name.usearch" --vectors "$vectors" \
    --queries "$q" --ef 16,24,32,64,128
}
peer() { # <name> <vectors> <queries>: LanceDB IVF-PQ on the same files
  [ "${NR_SCALE_SKIP_PEER:-0}" = 1 ] && return 0
  bash scripts/python-env.sh >/dev/null
  "$python_env/bin/python" -c "import lancedb" 2>/dev/null || "$python_env/bin/pip" install -q lancedb
  "$python_env/bin/python" bench/index_peers.py --vectors "$2" --queries "$3" \
    --work "$work/lancedb-$1" --json "$res/$1-lancedb.json" >/dev/null
}
binary_set() { # <name> <vectors> <queries>: build the binary index, bench it against exact
  local name=$1 vectors=$2 q=$3
  timed "$res/$name-binary-build.json" "$nr" index build --kind binary --vectors "$vectors" \
    --out "$work/$name.bits"
  timed "$res/$name-binary-bench.json" "$nr" index bench --index "$work/$name.bits" \
    --vectors "$vectors" --queries "$q" --ef 64,100,112,128,160,200
}
if wants offline; then
  index_set offline "$work/offline" "$queries"
  binary_set offline "$work/offline" "$queries"
  peer offline "$work/offline" "$queries"
fi

if wants fitted; then
  echo "== $count synthetic vectors fitted to the offline vectors: write, build, bench"
  like="$work/like-$count"
  [ -f "$like/.complete" ] || {
    "$nr" vectors synthetic --like "$work/offline" --count "$count" --shards 8 --out "$like"
    touch "$like/.complete"
  }
  index_set "like-$count" "$like" "$queries"
  binary_set "like-$count" "$like" "$queries"
  peer "like-$count" "$like" "$queries"
fi

if wants clustered; then
  echo "== $count clustered synthetic vectors (isotropic latent clusters): write, build, bench"
  clustered="$work/clustered-$count"
  [ -f "$clustered/.complete" ] || {
    "$nr" vectors synthetic --count "$count" --dim 384 --shards 8 --queries 1000 --out "$clustered"
    touch "$clustered/.complete"
  }
  index_set "clustered-$count" "$clustered" "$clustered-queries.parquet"
fi

python3 bench/scale_report.py "$res" >"$res.md"
cat "$res.md"
