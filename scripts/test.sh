#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: fetches the models, builds, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-models.sh
cargo test --workspace "$@"
