#!/bin/sh
# scripts/setup_llmlingua.sh — the virtual environment of the LongLLMLingua
# peer (scripts/llmlingua_compress.py): llmlingua 0.2.2 and what it needs
# from PyPI, outside the tree. Not part of the build; comi never depends on
# it. Usage: sh scripts/setup_llmlingua.sh [VENV]
set -eu
VENV=${1:-$HOME/.cache/comi/llmlingua-venv}
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
# transformers 4.x: llmlingua 0.2.2 predates 5.x; gguf lets transformers read the GGUF file
"$VENV/bin/pip" install -q "llmlingua==0.2.2" "transformers>=4.45,<5" gguf accelerate torch
"$VENV/bin/python" -c "import llmlingua, transformers, torch, gguf; print('llmlingua venv ready:', transformers.__version__, torch.__version__)"
