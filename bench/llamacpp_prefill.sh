#!/usr/bin/env bash
# llama.cpp peer for the conversation prefill benchmark (bench/llamacpp/prefill.cpp):
# prompt tokens/s of computing every prompt token's hidden state for the chat
# conversations in results/bench/conversation-prompts.json, per prompt and with
# KV-cache reuse across turns, on all cores (as ours), SmolLM2-135M-Instruct Q4_1 GGUF,
# with llama.cpp's default flash attention setting (auto: on for the CPU).
#
# usage: bench/llamacpp_prefill.sh [prompts.json] [prefill options, e.g. --repeats 5]
# (runs: NR_BENCH_REPEATS, default 2, as the other conversation-workload rows)
#
# The llama.cpp sources are the ones vendored in the llama-cpp-sys-2 crate (pinned
# version and checksum below, from crates.io); cmake comes from PyPI. Both, and the
# Release build (CPU backend, -march=native, no BLAS/GPU), are cached in
# bench/.llamacpp/ (git-ignored); build output goes to bench/.llamacpp/build.log.
# If anything fails, one line "bench: llama.cpp peer could not run: <reason>" goes
# to stderr and into the output file (as "unavailable", for the report), and the
# exit status is 0, so the suite goes on.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/bench/.llamacpp"
CRATE=llama-cpp-sys-2
CRATE_VERSION=0.1.161
CRATE_SHA256=e9bea77fde41bbc15a278891cd5edd2ba07c5260d162614b41080ba1f100b39b
CMAKE_PIN=4.4.5
MODEL="$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf"
OUT="$ROOT/results/bench/conversation_prefill.reference-llamacpp.json"
PROMPTS="$ROOT/results/bench/conversation-prompts.json"
if [[ $# -gt 0 && $1 != --* ]]; then PROMPTS=$1; shift; fi

SRC="$CACHE/src/$CRATE-$CRATE_VERSION/llama.cpp"
BUILD="$CACHE/build"
LOG="$CACHE/build.log"
CMAKE="$CACHE/cmake/cmake/data/bin/cmake"

fail() {
    echo "bench: llama.cpp peer could not run: $*" >&2
    mkdir -p "$(dirname "$OUT")" &&
        python3 "$ROOT/bench/unavailable.py" conversation_prefill llama.cpp "$*" "$OUT"
    exit 0
}

[[ -f $MODEL ]] || fail "model not found: $MODEL"
[[ -f $PROMPTS ]] || fail "prompts not found: $PROMPTS"
mkdir -p "$CACHE" || fail "cannot create $CACHE"

# cmake from PyPI: unpack the manylinux wheel, its binary runs without Python.
if [[ ! -x $CMAKE ]]; then
    echo "llama.cpp peer: fetching cmake $CMAKE_PIN from PyPI" >&2
    rm -rf "$CACHE/cmake" "$CACHE/wheels"
    { python3 -m pip download "cmake==$CMAKE_PIN" --no-deps --only-binary=:all: -d "$CACHE/wheels" &&
      python3 -m zipfile -e "$CACHE"/wheels/cmake-*.whl "$CACHE/cmake" &&
      chmod +x "$CACHE"/cmake/cmake/data/bin/*; } >>"$LOG" 2>&1 ||
        fail "could not get cmake from PyPI (see $LOG)"
    rm -rf "$CACHE/wheels"
fi

# llama.cpp sources, vendored in the crate (a gzip tarball), checksum-verified.
if [[ ! -f $SRC/include/llama.h ]]; then
    echo "llama.cpp peer: fetching $CRATE $CRATE_VERSION from crates.io" >&2
    crate="$CACHE/$CRATE-$CRATE_VERSION.crate"
    { curl -fsSL --retry 3 -o "$crate" \
          "https://static.crates.io/crates/$CRATE/$CRATE-$CRATE_VERSION.crate" &&
      echo "$CRATE_SHA256  $crate" | sha256sum -c - &&
      rm -rf "$CACHE/src" && mkdir -p "$CACHE/src" &&
      tar -xzf "$crate" -C "$CACHE/src"; } >>"$LOG" 2>&1 ||
        fail "could not download/unpack $CRATE $CRATE_VERSION (see $LOG)"
    rm -f "$crate"
    [[ -f $SRC/include/llama.h ]] || fail "$CRATE $CRATE_VERSION has no llama.cpp sources"
fi
LLAMA_VERSION=$(sed -n 's/^set(LLAMA_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\))/\2/p' "$SRC/CMakeLists.txt" | paste -sd.)

# Configure once, then (re)build only what changed: llama, ggml and prefill.
# Git is hidden from llama.cpp's CMake: the sources sit inside this repository,
# whose commit it would otherwise report as llama.cpp's.
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    echo "llama.cpp peer: configuring (log: $LOG)" >&2
    "$CMAKE" -S "$ROOT/bench/llamacpp" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_CPP_DIR="$SRC" -DLLAMA_BUILD_COMMIT="$CRATE-$CRATE_VERSION" -DLLAMA_BUILD_NUMBER=0 \
        -DGIT_EXE=OFF -DGIT_EXECUTABLE=OFF -DCMAKE_DISABLE_FIND_PACKAGE_Git=ON >>"$LOG" 2>&1 ||
        { rm -rf "$BUILD"; fail "cmake configure failed (see $LOG)"; }
fi
[[ -x $BUILD/prefill ]] || echo "llama.cpp peer: building llama.cpp (first time, several minutes; log: $LOG)" >&2
start=$SECONDS
"$CMAKE" --build "$BUILD" --target prefill -j2 >>"$LOG" 2>&1 || fail "build failed (see $LOG)"
echo "build step took $((SECONDS - start)) s" >>"$LOG"

# Run. prefill writes <out>.tmp and renames it only when everything succeeded.
mkdir -p "$(dirname "$OUT")"
"$BUILD/prefill" "$MODEL" "$PROMPTS" "$OUT" \
    --stack "llama.cpp $LLAMA_VERSION-dev from $CRATE $CRATE_VERSION" --threads "$(nproc)" --flash-attn auto \
    --repeats "${NR_BENCH_REPEATS:-2}" "$@" 2>"$CACHE/run.log" ||
    { rm -f "$OUT.tmp"; fail "prefill failed: $(tail -n 1 "$CACHE/run.log")"; }
