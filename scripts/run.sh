#!/usr/bin/env bash
# The main job: the quickstart experiment (experiments/quickstart.toml) end to end on the offline QReCC
# data with the default models, fetching models and data first. Prints the results table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-models.sh
bash scripts/prepare-data.sh
cargo run --release -p nr-experiments -- run experiments/quickstart.toml "$@"
