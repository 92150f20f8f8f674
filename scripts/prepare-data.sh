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
# No shared copy: the official QReCC release (train and test; dev is held out of train by conversation).
url=${QRECC_URL:-https://github.com/apple/ml-qrecc/raw/main/dataset/qrecc_data.zip}
official=data/qrecc-official
if [ ! -e "$official/.unzipped" ]; then
  echo "data: downloading $url"
  curl -fL --retry 3 -o data/qrecc_data.zip.part "$url" || {
    echo "error: could not download $url; put qrecc_train.json and qrecc_test.json in $official/ by hand" >&2
    exit 1
  }
  mv data/qrecc_data.zip.part data/qrecc_data.zip
  mkdir -p "$official"
  python3 -m zipfile -e data/qrecc_data.zip "$official"
  touch "$official/.unzipped"
fi
src=$(dirname "$(find "$official" -name qrecc_train.json | head -n 1)")
cargo run --release -p nr-experiments -- data build-qrecc --input "$src" --output "$target"
