#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds with --features cuda, runs the cross-backend test against
# cuda (crates/nr-experiments/tests/cross_backend.rs with NR_TEST_DEVICE=cuda: backbone, teacher,
# heads and a training step of every loss, compared with flex), runs the quickstart experiment on
# cuda, and prints the timings.
#
#   bash scripts/gpu-check.sh
#
# Needs: an NVIDIA driver (nvidia-smi, libcuda.so) and the CUDA runtime compiler libnvrtc (cubecl
# compiles its kernels at run time; cudarc loads libcuda/libnvrtc dynamically, nothing CUDA is
# needed at build time), the models (scripts/fetch-models.sh) and data/qrecc-offline
# (scripts/prepare-data.sh).
#
# The LLVM bundle: burn-cuda 0.22.1 depends on cubecl-llvm, whose build dependency
# tracel-llvm-bundler 23.1.0-4 downloads a prebuilt LLVM (~linux-x64.tar.xz from
# https://github.com/tracel-ai/tracel-llvm/releases/download/v23.1.0-4/) when it is compiled, and
# fails without internet. It skips the download when the bundle is already installed
# (${XDG_DATA_HOME:-~/.local/share}/tracel/tracel-llvm-23.1.0-4/.tracel-llvm-installed), and it
# verifies and unpacks an archive already in ~/.cache/tracel/ when
# TRACEL_LLVM_BUNDLER_SKIP_CHECKSUM_DOWNLOAD is set. On a machine without internet, download
# linux-x64.tar.xz and linux-x64.checksums.json from that release page elsewhere and point
# TRACEL_LLVM_DIR at the folder holding them: this script copies them into the cache.
# (DOCS_RS=1 also skips the download, but only `cargo check` works that way: nothing links.)
set -euo pipefail
cd "$(dirname "$0")/.."
LLVM_RELEASE=23.1.0-4

command -v nvidia-smi >/dev/null 2>&1 || { echo "error: nvidia-smi not found: this script needs an NVIDIA GPU" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

llvm_dir="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-$LLVM_RELEASE"
if [ ! -e "$llvm_dir/.tracel-llvm-installed" ]; then
  if [ -n "${TRACEL_LLVM_DIR:-}" ]; then
    for f in linux-x64.tar.xz linux-x64.checksums.json; do
      [ -f "$TRACEL_LLVM_DIR/$f" ] || { echo "error: $TRACEL_LLVM_DIR/$f is missing" >&2; exit 1; }
    done
    mkdir -p "$HOME/.cache/tracel"
    cp "$TRACEL_LLVM_DIR/linux-x64.tar.xz" "$HOME/.cache/tracel/tracel-llvm-$LLVM_RELEASE-linux-x64.tar.xz"
    cp "$TRACEL_LLVM_DIR/linux-x64.checksums.json" "$HOME/.cache/tracel/tracel-llvm-$LLVM_RELEASE-linux-x64.checksums.json"
    export TRACEL_LLVM_BUNDLER_SKIP_CHECKSUM_DOWNLOAD=1
    echo "gpu-check: LLVM bundle from $TRACEL_LLVM_DIR"
  else
    echo "gpu-check: no LLVM bundle in $llvm_dir: the build downloads it from github.com (set TRACEL_LLVM_DIR when offline)"
  fi
fi

bash scripts/fetch-models.sh
bash scripts/prepare-data.sh

t0=$(date +%s)
cargo build --release -p nr-experiments --features cuda
cargo test --release -p nr-experiments --features cuda --test cross_backend --no-run
t1=$(date +%s)
NR_TEST_DEVICE=cuda cargo test --release -p nr-experiments --features cuda --test cross_backend \
  -- --nocapture --test-threads=1
t2=$(date +%s)
out=runs/gpu-check
rm -rf "$out"
target/release/nr run experiments/quickstart.toml --set device=cuda --set "output=$out/cuda"
t3=$(date +%s)
echo
echo "gpu-check: build (release, --features cuda) $((t1 - t0)) s"
echo "gpu-check: cross-backend test flex vs cuda $((t2 - t1)) s"
echo "gpu-check: quickstart on cuda $((t3 - t2)) s (flex on 2 CPU cores: see docs/performance.md)"
echo "gpu-check: quickstart report in $out/cuda"
