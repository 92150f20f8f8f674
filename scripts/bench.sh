#!/usr/bin/env bash
# The benchmark suite (`just bench`): ours (`cargo bench -p nr-experiments`, release build), then the
# reference stack (PyTorch, sentence-transformers, numpy; llama.cpp built from source) on the same
# workloads in the same session, then results/bench.json and results/bench.md with the ratios ours / reference.
#
#   NR_BENCH_PYTHON=/path/to/python   a Python that has bench/requirements.txt (default: bench/.venv,
#                                     made on first use; torch from PyPI brings ~4 GB of CUDA wheels)
#   NR_BENCH_PYTHON=none              ours only
#   NR_BENCH_REPEATS=N                runs per case (defaults: 5 prefill/search, 3 teacher/training)
# Extra arguments go to cargo bench, e.g. `just bench --bench search`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-models.sh
bash scripts/prepare-data.sh
vectors=$(mktemp -d)
started=$(mktemp)  # results newer than this were measured now
trap 'rm -rf "$vectors" "$started"' EXIT
NR_SEARCH_BENCH_DATA=$vectors cargo bench -p nr-experiments "$@"

py=${NR_BENCH_PYTHON:-bench/.venv/bin/python}
if [ "$py" = bench/.venv/bin/python ] && [ ! -x "$py" ]; then
  echo "bench: installing the reference stack into bench/.venv (bench/requirements.txt)"
  if ! { python3 -m venv bench/.venv && bench/.venv/bin/pip install -q -r bench/requirements.txt; }; then
    echo "bench: could not install the reference stack; reporting ours only" >&2
    rm -rf bench/.venv
    py=none
  fi
fi
ran() { [ "results/bench/$1.json" -nt "$started" ]; }
if [ "$py" = none ] && ran conversation_prefill; then
  # Say in the report why the PyTorch peers are missing.
  python3 bench/unavailable.py conversation_prefill PyTorch \
    "no Python reference stack (NR_BENCH_PYTHON=none, or its install failed)" results/bench/conversation_prefill.reference.json
fi
if [ "$py" != none ]; then
  if ran prefill; then "$py" bench/prefill_torch.py; fi
  if ran conversation_prefill; then "$py" bench/conversation_prefill_torch.py; fi
  if ran teacher_encode; then "$py" bench/teacher_encode_st.py; fi
  # This machine kind sets OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE to values that slow OpenBLAS down
  # (docs/performance.md); numpy runs with OpenBLAS's own detection.
  if ran search; then env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" bench/search_numpy.py --data "$vectors"; fi
fi
# llama.cpp needs no Python stack: built from source on first use (bench/llamacpp_prefill.sh).
if ran conversation_prefill; then bash bench/llamacpp_prefill.sh; fi
python3 bench/report.py
