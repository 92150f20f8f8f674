#!/usr/bin/env bash
# Prepares data/qrecc-offline: links ../shared/data/qrecc-offline where it exists (this project's
# machines have no internet); elsewhere downloads the official QReCC files and builds the same layout
# with nr-data's corpus builder (`nr data build-qrecc`).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data
target=data/qrecc-offline
if [ -e "$target/qrecc_test.json" ]; then
  echo "data: $target is ready"
  exit 0
fi
shared=$(cd .. && pwd)/shared/data/qrecc-offline
if [ -d "$shared" ]; then
  rm -rf "$target"
  ln -s "$shared" "$target"
  echo "data: linked $target -> $shared"
  exit 0
fi
echo "error: $shared not found; download qrecc_data.zip from the apple/ml-qrecc repository (dataset/)," \
     "unzip it into data/qrecc-official/, then run: cargo run --release -p nr-experiments -- data build-qrecc" \
     "--input data/qrecc-official --output $target" >&2
exit 1
