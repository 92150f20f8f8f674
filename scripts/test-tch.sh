#!/usr/bin/env bash
# Cross-backend test on LibTorch's CPU backend (crates/nr-experiments/tests/cross_backend.rs with
# NR_TEST_DEVICE=tch): the backbone, teacher, heads and one training step of every loss on flex and
# on tch, compared within float tolerance, with the real models. LibTorch 2.9.0 comes from PyPI
# wheels (scripts/fetch-libtorch.sh, cached after the first run). Extra arguments go to `cargo test`.
#   bash scripts/test-tch.sh            (just test-tch; CI runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
LIBTORCH_DIR=${LIBTORCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/native-retrieval/libtorch-2.9.0}
export LIBTORCH_DIR
bash scripts/fetch-libtorch.sh --fetch-only
bash scripts/fetch-models.sh
export LIBTORCH="$LIBTORCH_DIR" LIBTORCH_CXX11_ABI=1
export LD_LIBRARY_PATH="$LIBTORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NR_TEST_DEVICE=tch
start=$(date +%s)
cargo test -p nr-experiments --features tch --test cross_backend --no-run "$@"
built=$(date +%s)
cargo test -p nr-experiments --features tch --test cross_backend "$@" -- --nocapture --test-threads=1
echo "test-tch: build $((built - start)) s, test $(($(date +%s) - built)) s"
