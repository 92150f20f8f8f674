#!/usr/bin/env bash
# The Python environment of the interop tests (crates/nr-experiments/tests/python_interop.rs) and of
# docs/python/nr_head.py: a venv with numpy, safetensors and pyarrow from PyPI, created once at
# ${NR_PYTHON_ENV:-$HOME/.cache/native-retrieval/python} and reused (one line on a cache hit).
# Without python3 it writes a one-line note and exits 0: the interop tests then skip themselves.
# Safe to run again at any time: an environment that is incomplete or made for other packages is
# rebuilt, a complete one is left alone.
set -euo pipefail

env_dir="${NR_PYTHON_ENV:-$HOME/.cache/native-retrieval/python}"
# Changing this list rebuilds the environment (the stamp records it).
packages=("numpy>=1.24" "safetensors>=0.4" "pyarrow>=14")
stamp="$env_dir/.nr-python-env"
want="${packages[*]}"

if ! command -v python3 >/dev/null 2>&1; then
    echo "python-env: no python3 on PATH; the Python interop tests will be skipped"
    exit 0
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    "$env_dir/bin/python" -c "import numpy, safetensors, pyarrow" >/dev/null 2>&1; then
    echo "python-env: $env_dir ready ($want)"
    exit 0
fi

# Only a venv (or an empty folder) is replaced: NR_PYTHON_ENV naming another folder is refused.
if [ -d "$env_dir" ] && [ -n "$(ls -A "$env_dir")" ] && [ ! -f "$env_dir/pyvenv.cfg" ]; then
    echo "python-env: $env_dir exists and is not a venv; remove it or set NR_PYTHON_ENV elsewhere" >&2
    exit 1
fi
echo "python-env: creating $env_dir with $want"
rm -rf "$env_dir"
mkdir -p "$(dirname "$env_dir")"
if ! python3 -m venv "$env_dir"; then
    rm -rf "$env_dir"
    echo "python-env: 'python3 -m venv' failed; install the venv module (Debian: apt-get install python3-venv)" >&2
    exit 1
fi
"$env_dir/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
"$env_dir/bin/python" -c "import numpy, safetensors, pyarrow"
# Written last: an interrupted install leaves no stamp and is redone on the next call.
echo "$want" >"$stamp"
"$env_dir/bin/python" -c "import numpy, safetensors, pyarrow; print('python-env: ready: numpy', numpy.__version__, 'safetensors', safetensors.__version__, 'pyarrow', pyarrow.__version__)"
