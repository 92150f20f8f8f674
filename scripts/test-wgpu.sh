#!/usr/bin/env bash
# Cross-backend test on wgpu: the backbone, teacher, heads and one training step of every loss on
# flex and on wgpu, compared within float tolerance (crates/nr-experiments/tests/cross_backend.rs).
# Without a GPU, wgpu runs on Mesa's lavapipe (Vulkan on the CPU): the Debian packages
# mesa-vulkan-drivers and libvulkan1 are installed here when no Vulkan driver is present (as root,
# or with sudo), as CI does. Extra arguments go to `cargo test` (e.g. --release).
#   bash scripts/test-wgpu.sh            (just test-wgpu)
set -euo pipefail
cd "$(dirname "$0")/.."

# (grep without -q: under pipefail, grep -q closing the pipe early fails the pipeline.)
have_vulkan() {
  ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null &&
    { compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null || compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null; }
}

if ! have_vulkan; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "error: no Vulkan driver; install mesa-vulkan-drivers and libvulkan1 (as root) and run again" >&2
      exit 1
    }
    SUDO="sudo"
  fi
  echo "test-wgpu: installing mesa-vulkan-drivers libvulkan1 (lavapipe)"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1 || {
    $SUDO apt-get update -qq
    $SUDO apt-get install -y --no-install-recommends mesa-vulkan-drivers libvulkan1 >/dev/null
  }
  have_vulkan || { echo "error: still no Vulkan driver after installing mesa-vulkan-drivers" >&2; exit 1; }
fi

# Mesa warns without a runtime dir.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
export NR_TEST_DEVICE=wgpu

bash scripts/fetch-models.sh
start=$(date +%s)
cargo test -p nr-experiments --features wgpu --test cross_backend --no-run "$@"
built=$(date +%s)
cargo test -p nr-experiments --features wgpu --test cross_backend "$@" -- --nocapture --test-threads=1
echo "test-wgpu: build $((built - start)) s, test $(($(date +%s) - built)) s"
