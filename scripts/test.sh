#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: fetches the models, builds, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-models.sh --qwen
# The ablation plot's PNG needs a system font for its text (tested); Debian images often have none.
if ! find /usr/share/fonts /usr/local/share/fonts -name '*.ttf' -print -quit 2>/dev/null | grep -q .; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq fonts-dejavu-core
    else
        echo "test: no TrueType font found; install one (e.g. fonts-dejavu-core) or the plot test fails" >&2
    fi
fi
# numpy, safetensors and pyarrow for the Python interop tests (tests/python_interop.rs): required
# wherever python3 is present, so that they cannot skip themselves unseen.
bash scripts/python-env.sh
if command -v python3 >/dev/null 2>&1; then export NR_PYTHON_REQUIRED=1; fi
cargo test --workspace "$@"
