#!/usr/bin/env python3
"""Writes the bundled `comi merge` example: context.f32 (64 tokens x 16
dims) and query.f32 (16), raw little-endian float32. Deterministic (a fixed
linear congruential generator), so rerunning it reproduces the committed
files byte for byte. Tokens 20-27 lean towards the query and tokens 40-47
repeat one vector, so the coarse stage has relevance and redundancy to act on.

usage: python3 examples/merge/make_example.py [OUT_DIR]
"""
import array
import os
import sys

N_TOKENS, DIM = 64, 16
state = 20260101


def uniform():  # [-1, 1)
    global state
    state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    return (state >> 11) / float(1 << 53) * 2.0 - 1.0


query = [uniform() for _ in range(DIM)]
repeated = [uniform() for _ in range(DIM)]
context = []
for i in range(N_TOKENS):
    row = [uniform() for _ in range(DIM)]
    if 20 <= i < 28:
        row = [0.3 * r + q for r, q in zip(row, query)]
    elif 40 <= i < 48:
        row = [0.05 * r + v for r, v in zip(row, repeated)]
    context.extend(row)

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(out, "context.f32"), "wb") as f:
    array.array("f", context).tofile(f)
with open(os.path.join(out, "query.f32"), "wb") as f:
    array.array("f", query).tofile(f)
