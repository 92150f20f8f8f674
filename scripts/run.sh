#!/usr/bin/env bash
# The main job on the default models: fetches them if needed, then lets the LLM answer a sample
# conversation (docs/examples/chat.json) with a standalone search query.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-models.sh
cargo run --release -p nr-experiments -- inspect generate \
  --model models/SmolLM2-135M-Instruct.Q4_1.gguf --chat docs/examples/chat.json --max-new-tokens 32
