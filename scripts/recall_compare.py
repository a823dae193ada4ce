#!/usr/bin/env python3
"""scripts/recall_compare.py — paired answer recall of two `comi eval` runs.

usage: recall_compare.py A/examples.jsonl B/examples.jsonl [--method comi] [--baseline bm25]

For the examples that run A finished at every ratio (a run may still be
going: lines cut in half are skipped), prints per ratio the answer recall of
A's METHOD, B's METHOD and B's BASELINE on those same examples, and the
paired difference A - B with a 95% percentile bootstrap interval (1000
resamples, seed 0). Used for the model encoder vs the lexical one (README,
"The model encoder").
"""
import argparse
import json
import random
import sys


def load(path):
    rows = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        sys.exit("recall_compare: %s" % e)
    with f:
        for n, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                rows[(r["id"], r["method"], float(r["ratio"]))] = float(r["recall"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut in half by a running evaluation
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--method", default="comi")
    ap.add_argument("--baseline", default="bm25")
    a = ap.parse_args()
    ra, rb = load(a.a), load(a.b)
    ratios = sorted({k[2] for k in ra if k[1] == a.method})
    if not ratios:
        sys.exit("recall_compare: %s has no rows of method %s" % (a.a, a.method))
    ids = sorted({k[0] for k in ra})
    done = [i for i in ids if all((i, a.method, r) in ra and (i, a.method, r) in rb for r in ratios)]
    print("examples finished at every ratio in both runs: %d" % len(done))
    if not done:
        return
    rng = random.Random(0)
    for r in ratios:
        x = [ra[(i, a.method, r)] for i in done]
        y = [rb[(i, a.method, r)] for i in done]
        base = [rb.get((i, a.baseline, r)) for i in done]
        d = [p - q for p, q in zip(x, y)]
        bs = sorted(sum(rng.choice(d) for _ in d) / len(d) for _ in range(1000))
        bl = ("%.3f" % (sum(base) / len(base))) if None not in base else "-"
        print("%4gx  A %.3f  B %.3f  B's %s %s  A - B %+.3f [%+.3f, %+.3f]" % (
            r, sum(x) / len(x), sum(y) / len(y), a.baseline, bl, sum(d) / len(d), bs[25], bs[974]))


if __name__ == "__main__":
    main()
