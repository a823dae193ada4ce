#!/usr/bin/env python3
"""Markdown table of the reader evaluation (README "Reader evaluation").

  python3 scripts/reader_table.py NAME=DIR/metrics.json ...

One block of rows per set: for each ratio, accuracy [95% interval] (n) of
every method `comi eval --task qa` wrote, `full` on its own row; then the
achieved compression (reader tokens of the input / of the compressed text)
and the compressor's seconds per example. Standard library only.
"""
import json
import sys

ORDER = ["text", "bm25", "truncate", "external:longllmlingua"]
LABEL = {"text": "comi text", "bm25": "BM25", "truncate": "truncate",
         "external:longllmlingua": "LongLLMLingua"}


def cell(r):
    if not r or not r.get("n"):
        return "–"
    lo, hi = r["accuracy_ci"]
    return f"{r['avg_accuracy']:.3f} [{lo:.2f}, {hi:.2f}] ({r['n']})"


def main():
    sets = [a.split("=", 1) for a in sys.argv[1:]]
    cols = [m for m in ORDER]
    print("| set | ratio | " + " | ".join(LABEL[m] for m in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for name, path in sets:
        res = json.load(open(path))["results"]
        full = res.get("full", {}).get("1")
        print(f"| {name} | full context | {cell(full)} |" + " |" * (len(cols) - 1))
        ratios = sorted({k for m in cols for k in res.get(m, {})}, key=float)
        for k in ratios:
            row = [cell(res.get(m, {}).get(k)) for m in cols]
            print(f"| | {float(k):g}x | " + " | ".join(row) + " |")
    print()
    print("| set | method | achieved compression (reader tokens) at each ratio | compressor s/example |")
    print("|---|---|---|---|")
    for name, path in sets:
        res = json.load(open(path))["results"]
        for m in cols:
            if m not in res:
                continue
            cs = [f"{float(k):g}x: {r['compression']:.1f}" for k, r in sorted(res[m].items(), key=lambda kv: float(kv[0])) if r.get("n")]
            n = sum(r["n"] for r in res[m].values())
            s = sum(r["compressor_seconds_per_example"] * r["n"] for r in res[m].values())
            print(f"| {name} | {LABEL[m]} | {', '.join(cs) or '–'} | {s / n if n else 0:.4g} |")


if __name__ == "__main__":
    main()
