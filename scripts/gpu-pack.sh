#!/usr/bin/env bash
# Builds here (a CPU machine with the Rust toolchain) everything the GPU check needs, packed in
# gpu-pack/ (git ignores it) under the 64 MiB that one transfer to the borrowed GPU machine takes:
#
#   gpu-pack/bin.tar.xz       nr and the cross-backend test binary, --features wgpu, stripped;
#                             with LibTorch present, also the cross-backend test binary --features tch
#   gpu-pack/debs/*.deb       the Vulkan loader and the GL/EGL/GLX dispatch libraries (Debian), which
#                             the NVIDIA driver's Vulkan ICD needs and GPU machines often lack
#   gpu-pack/MANIFEST         what was built, from which commit, sizes
#
# Then on the GPU machine (no toolchain, no internet): `bash scripts/gpu-run.sh` (see there). CI runs
# this script and `bash scripts/gpu-run.sh --dry-run` (the packed binaries on the CPU, flex backend).
#
#   bash scripts/gpu-pack.sh                 release build (what the GPU check should run)
#   bash scripts/gpu-pack.sh --profile dev   the test profile's build
#   bash scripts/gpu-pack.sh --profile dev --features flex
#                                            a rehearsal pack for `gpu-run.sh --dry-run` only (CI: it
#                                            reuses the test build; the wgpu build costs ~17 min here)
#   LIBTORCH=/dir bash scripts/gpu-pack.sh   also pack the tch test binary (scripts/fetch-libtorch.sh
#                                            makes /dir; default: its cache folder when complete)
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_MIB=64
profile=release
features=wgpu
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --features) features=$2; shift 2 ;;
    *) echo "error: unknown argument $1 (expected --profile dev|release, --features wgpu|flex)" >&2; exit 2 ;;
  esac
done
case "$features" in
  wgpu | flex) ;;
  *) echo "error: --features $features: expected wgpu (the GPU check) or flex (a dry-run rehearsal)" >&2; exit 2 ;;
esac
case "$profile" in
  release) cargo_profile=(--release) ;;
  dev) cargo_profile=() ;;
  *) echo "error: --profile $profile: expected dev or release" >&2; exit 2 ;;
esac
command -v xz >/dev/null || { echo "error: xz is needed (apt-get install xz-utils)" >&2; exit 1; }

out=gpu-pack
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-pack.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

# The executable a `cargo test --no-run` or `cargo build` produced, from cargo's JSON messages.
executable() { # <target name> <cargo args...>
  local name=$1; shift
  cargo "$@" --message-format=json-render-diagnostics |
    python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == name and m.get("executable"):
        print(m["executable"])
' "$name" | tail -1
}

echo "gpu-pack: building nr and the cross-backend test with --features $features ($profile)"
mkdir -p "$work/bin"
nr=$(executable nr build -p nr-experiments --bin nr --features "$features" "${cargo_profile[@]}")
cross=$(executable cross_backend test -p nr-experiments --features "$features" --test cross_backend --no-run "${cargo_profile[@]}")
[ -x "$nr" ] && [ -x "$cross" ] || { echo "error: cargo produced no nr or cross_backend executable" >&2; exit 1; }
cp "$nr" "$work/bin/nr"
cp "$cross" "$work/bin/cross_backend_wgpu"

libtorch=${LIBTORCH:-${XDG_CACHE_HOME:-$HOME/.cache}/native-retrieval/libtorch-2.9.0}
if [ -f "$libtorch/.complete" ] || [ -n "${LIBTORCH:-}" ]; then
  echo "gpu-pack: building the cross-backend test with --features tch against $libtorch"
  tch=$(LIBTORCH=$libtorch LIBTORCH_CXX11_ABI=1 executable cross_backend test -p nr-experiments \
    --features tch --test cross_backend --no-run "${cargo_profile[@]}")
  cp "$tch" "$work/bin/cross_backend_tch"
else
  echo "gpu-pack: no LibTorch ($libtorch): the tch binary is left out (run scripts/fetch-libtorch.sh --fetch-only)"
fi
strip "$work"/bin/*

echo "gpu-pack: fetching the Vulkan loader packages"
debs=(libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libx11-6 libx11-xcb1 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0)
mkdir -p "$work/debs"
if ! (cd "$work/debs" && apt-get download "${debs[@]}" >/dev/null 2>&1); then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq; fi
  (cd "$work/debs" && apt-get download "${debs[@]}" >/dev/null)
fi

rm -rf "$out"
mkdir -p "$out"
tar -C "$work" -cf - bin | xz -T0 -6 >"$out/bin.tar.xz"
mv "$work/debs" "$out/debs"
{
  echo "commit $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), glibc $(ldd --version | head -1 | awk '{print $NF}'), profile $profile"
  echo "features $features$([ "$features" = flex ] && echo ' (rehearsal: gpu-run.sh --dry-run only)')"
  (cd "$work/bin" && for f in *; do echo "bin/$f $(stat -c %s "$f") bytes"; done)
  (cd "$out" && for f in bin.tar.xz debs/*.deb; do echo "$f $(stat -c %s "$f") bytes"; done)
} >"$out/MANIFEST"

bytes=$(du -sb "$out" | cut -f1)
mib=$(python3 -c "print(f'{$bytes / 2**20:.1f}')")
echo "gpu-pack: $out is $mib MiB (limit $LIMIT_MIB MiB) in $(($(date +%s) - start)) s"
cat "$out/MANIFEST"
if [ "$bytes" -gt $((LIMIT_MIB * 1024 * 1024)) ]; then
  echo "error: $out is $mib MiB, over the $LIMIT_MIB MiB one transfer takes" >&2
  exit 1
fi
