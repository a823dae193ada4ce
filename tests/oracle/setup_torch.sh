#!/bin/sh
# tests/oracle/setup_torch.sh — the PyTorch oracle's virtual environment:
# torch, transformers, peft, safetensors, gguf (transformers reads GGUF
# files with it) and numpy from PyPI, outside the
# tree (default ~/.cache/comi/torch-venv). A test tool for
# tests/oracle/check_checkpoint.py and bench/train_torch.py; comi never
# depends on it, and `make test` / .ci/run do not install it.
#   TORCH_VENV   where the venv goes
# Idempotent: does nothing when the pinned versions are already installed.
# torch from PyPI is the CUDA build (about 3 GB with its nvidia-* wheels);
# it runs on the CPU as well, which is all these tools use.
set -eu
VENV=${TORCH_VENV:-$HOME/.cache/comi/torch-venv}
TORCH_VERSION=${TORCH_VERSION:-2.15.0}
TRANSFORMERS_VERSION=${TRANSFORMERS_VERSION:-5.23.0}
PEFT_VERSION=${PEFT_VERSION:-0.21.2}
SAFETENSORS_VERSION=${SAFETENSORS_VERSION:-0.8.0}
GGUF_VERSION=${GGUF_VERSION:-0.19.0}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if "$VENV/bin/python" - <<PY 2>/dev/null
import sys, torch, transformers, peft, safetensors, numpy, gguf
want = {"torch": "$TORCH_VERSION", "transformers": "$TRANSFORMERS_VERSION", "peft": "$PEFT_VERSION",
        "safetensors": "$SAFETENSORS_VERSION"}
have = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
        "peft": peft.__version__, "safetensors": safetensors.__version__}
sys.exit(have != want)
PY
then
    echo "torch oracle: $VENV is ready" >&2
    exit 0
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q --no-cache-dir "torch==$TORCH_VERSION" \
    "transformers==$TRANSFORMERS_VERSION" "peft==$PEFT_VERSION" \
    "safetensors==$SAFETENSORS_VERSION" "gguf==$GGUF_VERSION" numpy
"$VENV/bin/python" -c "import importlib.metadata, torch, transformers, peft, safetensors, numpy, gguf; print('torch oracle:', 'torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'safetensors', safetensors.__version__, 'numpy', numpy.__version__, 'gguf', importlib.metadata.version('gguf'))"
