#!/usr/bin/env bash
# The GPU check, on the borrowed GPU machine (NVIDIA driver, Python with PyTorch; no Rust toolchain,
# no internet, one command of at most 10 minutes). Needs gpu-pack/ from `bash scripts/gpu-pack.sh`.
#
#   bash scripts/gpu-run.sh [--out DIR]     the check (DIR: $OUT when set, else runs/gpu-check)
#   bash scripts/gpu-run.sh --dry-run       the same steps on the CPU with the flex backend and tiny
#                                           random models (CI: proves the pack and this script run)
#
# Steps, each with its own time limit so that one hung step cannot take the whole call:
#  1. machine facts (nvidia-smi, CPU, PyTorch);
#  2. unpack the binaries; the Vulkan loader from the packed .debs, with the NVIDIA ICD found on the
#     machine or written for the driver's libGLX_nvidia.so.0;
#  3. correctness: the cross-backend test (flex vs wgpu: backbone, teacher, every head, a training
#     step of every loss) on random models in SmolLM2-135M's and MiniLM's exact shapes;
#  4. throughput: `nr throughput` on wgpu and on flex (the machine's CPU cores), and PyTorch on the
#     same workloads in float32 and bfloat16 with its measured matmul peaks (bench/gpu_torch.py);
#  5. LibTorch: the tch cross-backend test linked against the machine's own PyTorch (tch-cuda);
#  6. report.md (and every log and JSON) in the output folder.
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0
out=${OUT:-runs/gpu-check}
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "error: unknown argument $1 (expected --dry-run, --out DIR)" >&2; exit 2 ;;
  esac
done
[ -f gpu-pack/bin.tar.xz ] || { echo "error: gpu-pack/bin.tar.xz is missing: run scripts/gpu-pack.sh first (and carry gpu-pack)" >&2; exit 1; }
if [ $dry = 0 ] && grep -q '^features flex' gpu-pack/MANIFEST 2>/dev/null; then
  echo "error: gpu-pack was built with --features flex (a rehearsal for --dry-run): rebuild it with scripts/gpu-pack.sh" >&2
  exit 1
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-run.XXXXXX")
trap 'rm -rf "$work"' EXIT
t_start=$(date +%s)
log() { echo "gpu-run [$(($(date +%s) - t_start)) s]: $*" | tee -a "$out/steps.log"; }
# step <name> <seconds> <command...>: runs with a time limit, output in <name>.log, status recorded.
step() {
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s) rc=0
  timeout "$limit" "$@" >"$out/$name.log" 2>&1 || rc=$?
  local status=ok
  [ $rc = 0 ] || status="failed (exit $rc$([ $rc = 124 ] && echo ', time limit'))"
  echo "$name $status $(($(date +%s) - t0))" >>"$out/status.txt"
  log "$name: $status in $(($(date +%s) - t0)) s"
  return $rc
}
: >"$out/status.txt"
: >"$out/steps.log"

if [ $dry = 1 ]; then
  device=flex; shape_llm=tiny; shape_bert=tiny
  sizes=(--prefill-batch 2 --prefill-tokens 32 --teacher-batch 8 --head-examples 128 --mapper-tokens 16
         --search-queries 64 --search-passages 2000 --repeats 1)
  cpu_sizes=("${sizes[@]}")
else
  device=wgpu; shape_llm=smollm2-135m; shape_bert=minilm-l6
  sizes=(--prefill-batch 32 --prefill-tokens 256 --teacher-batch 512 --head-examples 4096
         --search-queries 10000 --search-passages 100000 --repeats 3)
  cpu_sizes=(--prefill-batch 8 --prefill-tokens 256 --teacher-batch 128 --head-examples 1024
             --search-queries 1000 --search-passages 100000 --repeats 2)
fi

# 1. Machine facts.
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "mode: $([ $dry = 1 ] && echo 'dry run (CPU, flex, tiny models)' || echo 'GPU check')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
  python3 -c 'import torch; print(f"torch: {torch.__version__}, cuda {torch.version.cuda}, available {torch.cuda.is_available()}")' 2>/dev/null || echo "torch: not importable"
  cat gpu-pack/MANIFEST 2>/dev/null | sed 's/^/pack: /'
} >"$out/machine.txt"
cat "$out/machine.txt"

# 2. Unpack.
python3 - "$work" <<'EOF'
import io, os, sys, tarfile
work = sys.argv[1]
tarfile.open("gpu-pack/bin.tar.xz").extractall(work)
root = os.path.join(work, "root")
os.makedirs(root, exist_ok=True)
# A .deb is an ar archive holding data.tar.*: read it without dpkg.
for deb in sorted(os.listdir("gpu-pack/debs")):
    data = open(os.path.join("gpu-pack/debs", deb), "rb").read()
    assert data[:8] == b"!<arch>\n", deb
    pos = 8
    while pos < len(data):
        name = data[pos:pos + 16].decode().strip().rstrip("/")
        size = int(data[pos + 48:pos + 58].decode().strip())
        body = data[pos + 60:pos + 60 + size]
        if name.startswith("data.tar"):
            tarfile.open(fileobj=io.BytesIO(body)).extractall(root)
        pos += 60 + size + (size % 2)
EOF
bin="$work/bin"
chmod +x "$bin"/*
log "unpacked: $(ls "$bin" | tr '\n' ' ')"

if [ $dry = 0 ]; then
  libdir="$work/root/usr/lib/x86_64-linux-gnu"
  export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  icd=""
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
           /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
    [ -f "$f" ] && { icd=$f; break; }
  done
  if [ -z "$icd" ]; then
    glx=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0/{print $NF; exit}')
    [ -n "$glx" ] || glx=$(ls /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0 2>/dev/null | head -1)
    if [ -n "$glx" ]; then
      icd="$work/nvidia_icd.json"
      printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$glx" >"$icd"
      log "vulkan: no ICD file on the machine; wrote one for $glx"
    else
      log "vulkan: no NVIDIA Vulkan ICD and no libGLX_nvidia.so.0 (the driver's graphics libraries are not mounted): wgpu cannot see the GPU"
    fi
  fi
  [ -n "$icd" ] && export VK_ICD_FILENAMES=$icd && log "vulkan: ICD $icd"
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
fi

# 3. Correctness on the GPU (the dry run only lists the tests: flex against itself proves nothing).
if [ $dry = 1 ]; then
  step cross_backend_wgpu 60 "$bin/cross_backend_wgpu" --list
else
  NR_TEST_MODELS=synthetic NR_TEST_DEVICE=wgpu RUST_BACKTRACE=1 \
    step cross_backend_wgpu 240 "$bin/cross_backend_wgpu" --nocapture --test-threads=1
fi

# 4. Throughput.
models="$work/models"
mkdir -p "$models"
step make_models 120 bash -c "'$bin/nr' make-model llama --shape $shape_llm --out '$models/llm.gguf' &&
  '$bin/nr' make-model bert --shape $shape_bert --out '$models/teacher'"
NR_LOG=warn step throughput_$device 240 "$bin/nr" throughput --device "$device" --llm "$models/llm.gguf" \
  --teacher "$models/teacher" "${sizes[@]}" --json "$out/throughput_$device.json"
if [ $dry = 0 ]; then
  NR_LOG=warn step throughput_flex 150 "$bin/nr" throughput --device flex --llm "$models/llm.gguf" \
    --teacher "$models/teacher" "${cpu_sizes[@]}" --json "$out/throughput_flex.json"
fi
if python3 -c 'import torch' 2>/dev/null; then
  step throughput_torch 180 python3 bench/gpu_torch.py --llm-shape "$shape_llm" --bert-shape "$shape_bert" \
    "${sizes[@]}" --json "$out/throughput_torch.json"
else
  log "throughput_torch: skipped (PyTorch is not importable here)"
fi

# 5. LibTorch: the tch test binary against the machine's own PyTorch.
if [ -x "$bin/cross_backend_tch" ]; then
  torch_lib=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)
  if [ -n "$torch_lib" ]; then
    tch_device=$([ $dry = 1 ] && echo tch || echo tch-cuda)
    LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" NR_TEST_MODELS=synthetic \
      NR_TEST_DEVICE=$tch_device step cross_backend_tch 150 "$bin/cross_backend_tch" --nocapture --test-threads=1
  else
    log "cross_backend_tch: skipped (no PyTorch to link against)"
  fi
else
  log "cross_backend_tch: not packed"
fi

# 6. Report.
python3 bench/gpu_report.py "$out" >"$out/report.md" && log "report: $out/report.md"
cat "$out/report.md"
log "done"
# The check fails when a correctness step failed; throughput and tch steps are reported, not fatal.
! grep -q '^cross_backend_wgpu failed\|^make_models failed\|^throughput_'"$device"' failed' "$out/status.txt"
