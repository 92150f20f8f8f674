#!/usr/bin/env bash
# Writes data/qrecc-heldout: the 394 turns of InfoCQR's sampled QReCC file (250 conversations) that
# none of data/qrecc-offline's splits holds, judged against its passages. No setting of this project
# was chosen on them; score a manifest there with
#   --set data.test=data/qrecc-heldout/qrecc_test.json --set data.qrels_test=data/qrecc-heldout/qrels_test.txt
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare-data.sh
infocqr=${INFOCQR_FILE:-$(cd .. && pwd)/shared/data/qrecc/infocqr/dev-sampled2k-modified.json}
[ -f "$infocqr" ] || { echo "error: $infocqr: no InfoCQR sampled file (set INFOCQR_FILE)" >&2; exit 1; }
cargo run --release -p nr-experiments -- data heldout --infocqr "$infocqr" \
  --benchmark data/qrecc-offline --output data/qrecc-heldout
