#!/usr/bin/env bash
# Builds a LibTorch folder for the tch backend from PyPI wheels, then type-checks the workspace with
# `--features tch` against it.
#
# burn-tch 0.22.1 -> tch 0.22 -> torch-sys pins LibTorch 2.9.0. PyPI has only the CUDA build of
# torch 2.9.0 for linux x86_64 (a ~900 MB wheel); nothing is installed: only the headers and the
# CPU libraries are unzipped into $LIBTORCH_DIR (include/ and lib/, libtorch_cuda.so left out), with
# the CUDA runtime and CUPTI libraries that libtorch_cpu.so links against
# (nvidia-cuda-runtime-cu12 and nvidia-cuda-cupti-cu12 12.8.90). A second run reuses the folder.
#
#   bash scripts/fetch-libtorch.sh              fetch (if needed) + cargo check --features tch
#   bash scripts/fetch-libtorch.sh --fetch-only only build the folder
#   LIBTORCH_DIR=/some/dir bash scripts/fetch-libtorch.sh
#
# Build and run with it:
#   LIBTORCH=$LIBTORCH_DIR LIBTORCH_CXX11_ABI=1 cargo build --release -p nr-experiments --no-default-features --features tch
#   LD_LIBRARY_PATH=$LIBTORCH_DIR/lib OMP_NUM_THREADS=2 target/release/nr ... --device tch
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.9.0
CUDA_LIBS_VERSION=12.8.90
LIBTORCH_DIR=${LIBTORCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/native-retrieval/libtorch-$TORCH_VERSION}
fetch_only=0
[ "${1:-}" = "--fetch-only" ] && fetch_only=1

if [ -f "$LIBTORCH_DIR/.complete" ]; then
  echo "libtorch: $LIBTORCH_DIR is ready"
else
  PIP=""
  if command -v pip3 >/dev/null 2>&1; then PIP="pip3";
  elif python3 -m pip --version >/dev/null 2>&1; then PIP="python3 -m pip";
  else echo "error: pip is needed (apt-get install python3-pip)" >&2; exit 1; fi
  command -v unzip >/dev/null 2>&1 || { echo "error: unzip is needed (apt-get install unzip)" >&2; exit 1; }
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/libtorch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  start=$(date +%s)
  echo "libtorch: downloading torch==$TORCH_VERSION (~900 MB) and the CUDA runtime + CUPTI wheels from PyPI"
  # The same libraries are in every CPython wheel of a release; pin one so the download does not
  # depend on the local Python.
  $PIP download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --python-version 3.11 --implementation cp --abi cp311 -d "$tmp/whl" \
    "torch==$TORCH_VERSION" "nvidia-cuda-runtime-cu12==$CUDA_LIBS_VERSION" \
    "nvidia-cuda-cupti-cu12==$CUDA_LIBS_VERSION"
  echo "libtorch: downloaded in $(($(date +%s) - start)) s"
  out="$tmp/libtorch"
  mkdir -p "$out/lib"
  torch_whl=$(ls "$tmp"/whl/torch-"$TORCH_VERSION"-*.whl)
  unzip -q "$torch_whl" 'torch/include/*' 'torch/lib/libtorch_cpu.so' 'torch/lib/libtorch.so' \
    'torch/lib/libc10.so' 'torch/lib/libgomp*' 'torch/lib/libshm.so' 'torch/lib/libtorch_global_deps.so' \
    -d "$tmp/x"
  mv "$tmp/x/torch/include" "$out/include"
  mv "$tmp/x/torch/lib/"* "$out/lib/"
  for whl in "$tmp"/whl/nvidia_cuda_runtime_cu12-*.whl "$tmp"/whl/nvidia_cuda_cupti_cu12-*.whl; do
    unzip -q -o "$whl" 'nvidia/*/lib/*.so*' -d "$tmp/x"
  done
  find "$tmp/x/nvidia" -name '*.so*' -exec mv {} "$out/lib/" \;
  for f in libtorch_cpu.so libtorch.so libc10.so libshm.so libtorch_global_deps.so libcudart.so.12; do
    [ -e "$out/lib/$f" ] || { echo "error: $f is missing from the wheels" >&2; exit 1; }
  done
  rm -rf "$LIBTORCH_DIR"
  mkdir -p "$(dirname "$LIBTORCH_DIR")"
  mv "$out" "$LIBTORCH_DIR"
  touch "$LIBTORCH_DIR/.complete"
  echo "libtorch: $LIBTORCH_DIR ($(du -sh "$LIBTORCH_DIR" | cut -f1)) in $(($(date +%s) - start)) s"
fi

[ "$fetch_only" = 1 ] && exit 0
start=$(date +%s)
LIBTORCH="$LIBTORCH_DIR" LIBTORCH_CXX11_ABI=1 \
  cargo check -p nr-experiments --no-default-features --features tch --all-targets
echo "libtorch: cargo check --features tch in $(($(date +%s) - start)) s"
