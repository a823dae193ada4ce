#!/bin/sh
# tests/oracle/setup_oracle.sh — builds the llama.cpp oracle used to make the
# SmolLM2 goldens (tests/golden/smollm2/). A test tool, not part of the build
# and never a runtime dependency: it pip-installs llama-cpp-python (which
# compiles llama.cpp from source: minutes on 2 cores), gguf and numpy into a
# venv outside the tree.
#   ORACLE_VENV   where the venv goes (default ~/.cache/comi/oracle-venv)
# Idempotent: does nothing when the pinned versions are already installed.
set -e
VENV=${ORACLE_VENV:-$HOME/.cache/comi/oracle-venv}
LLAMA_CPP_PYTHON_VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
GGUF_VERSION=${GGUF_VERSION:-0.19.0}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if "$VENV/bin/python" -c "import llama_cpp, gguf, numpy, sys; sys.exit(llama_cpp.__version__ != '$LLAMA_CPP_PYTHON_VERSION')" 2>/dev/null; then
    echo "oracle: $VENV has llama-cpp-python $LLAMA_CPP_PYTHON_VERSION" >&2
    exit 0
fi
# Portable build (no -march=native) so the oracle's results do not depend on
# the build machine's CPU extensions beyond what llama.cpp selects at run time.
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_OPENMP=OFF}" \
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
    "$VENV/bin/python" -m pip install --no-cache-dir \
        "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" "gguf==$GGUF_VERSION" numpy
"$VENV/bin/python" -c "import llama_cpp; print('oracle: llama-cpp-python', llama_cpp.__version__)"
