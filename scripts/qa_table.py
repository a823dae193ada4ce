#!/usr/bin/env python3
"""One table of several `comi eval --task qa` runs, on the examples they share.

  python3 scripts/qa_table.py [--ratios 16,32] [--baseline LABEL/METHOD]
                              LABEL=DIR[@R,R...] [LABEL=DIR[@R,...] ...]

Each DIR holds an examples.jsonl written by `comi eval --task qa` (one line
per example, method and ratio). Runs made separately (the text methods, the
training-free soft methods, a trained checkpoint's soft methods) are scored
on the same examples only: those that every (run, method, ratio) cell has
finished; the table says how many. `@R,R` after a DIR takes only those
ratios from that run (its `full` cells always count). Per cell: accuracy, EM and F1 with 95%
percentile-bootstrap intervals (1000 resamples of the examples, seed 20260);
with --baseline [LABEL/]METHOD, the paired difference in accuracy of every cell against the
baseline cell at the same ratio (same resamples), so "is it better" has an
interval too. Standard library only.
"""
import argparse
import json
import random
import sys


def load(path):
    cells = {}
    try:
        f = open(path)
    except OSError as e:
        sys.exit(f"qa_table: cannot read {path}: {e.strerror}")
    with f:
        for ln, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                o = json.loads(line)
            except ValueError:
                sys.exit(f"qa_table: {path} line {ln}: not JSON")
            try:
                cells.setdefault((o["method"], float(o["ratio"])), {})[o["id"]] = (
                    o["accuracy"], o["em"], o["f1"])
            except (KeyError, TypeError, ValueError):
                sys.exit(f"qa_table: {path} line {ln}: not a comi eval --task qa row")
    return cells


def boot(vals, idx_sets):
    means = sorted(sum(vals[i] for i in s) / len(s) for s in idx_sets)
    return means[int(0.025 * len(means))], means[int(0.975 * len(means)) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ratios", default="16,32")
    ap.add_argument("--baseline", help="[LABEL/]METHOD whose accuracy the others are paired with "
                    "(without LABEL: the first run that has METHOD at each ratio)")
    ap.add_argument("runs", nargs="+", metavar="LABEL=DIR")
    a = ap.parse_args()
    try:
        ratios = [float(r) for r in a.ratios.split(",")]
    except ValueError:
        sys.exit(f"qa_table: --ratios {a.ratios}: not a list of numbers")
    rows = []  # (label, method, ratio or 1.0 for full, scores by id)
    for spec in a.runs:
        if "=" not in spec:
            sys.exit(f"qa_table: '{spec}' is not LABEL=DIR")
        label, d = spec.split("=", 1)
        own = ratios
        if "@" in d:
            d, rs = d.rsplit("@", 1)
            try:
                own = [float(r) for r in rs.split(",")]
            except ValueError:
                sys.exit(f"qa_table: '{spec}': @{rs} is not a list of ratios")
        cells = load(d.rstrip("/") + "/examples.jsonl")
        methods = []
        for (m, _r) in cells:
            if m not in methods:
                methods.append(m)
        for m in methods:
            if (m, 1.0) in cells and all((m, r) not in cells for r in ratios):
                rows.append((label, m, 1.0, cells[(m, 1.0)]))
            for r in own:
                if (m, r) in cells:
                    rows.append((label, m, r, cells[(m, r)]))
    if not rows:
        sys.exit("qa_table: no cells at these ratios")
    common = set(rows[0][3])
    for row in rows[1:]:
        common &= set(row[3])
    ids = sorted(common)
    n = len(ids)
    if n == 0:
        sys.exit("qa_table: no example is finished in every cell")
    rng = random.Random(20260)
    idx_sets = [[rng.randrange(n) for _ in range(n)] for _ in range(1000)]
    base = {}
    if a.baseline:
        bl, bm = a.baseline.split("/", 1) if "/" in a.baseline else (None, a.baseline)
        for label, m, r, sc in rows:
            if (bl is None or label == bl) and m == bm and r not in base:
                base[r] = ([sc[i][0] for i in ids], label)
        if not base:
            sys.exit(f"qa_table: --baseline {a.baseline}: no such run/method")
    print(f"Examples finished in every cell: n = {n}.\n")
    head = "| run | method | ratio | accuracy [95% CI] | EM | F1 |"
    sep = "|---|---|---|---|---|---|"
    if base:
        head += f" accuracy − {a.baseline} [95% CI] |"
        sep += "---|"
    print(head)
    print(sep)
    for label, m, r, sc in sorted(rows, key=lambda x: (x[2], x[0], x[1])):
        acc = [sc[i][0] for i in ids]
        em = [sc[i][1] for i in ids]
        f1 = [sc[i][2] for i in ids]
        lo, hi = boot(acc, idx_sets)
        line = (f"| {label} | {m} | {'full' if r == 1.0 else f'{r:g}x'} | "
                f"{sum(acc) / n:.3f} [{lo:.3f}, {hi:.3f}] | {sum(em) / n:.3f} | {sum(f1) / n:.3f} |")
        if base:
            b = base.get(r)
            if b is None or (m == bm and label == b[1]):
                line += " – |"
            else:
                diff = [x - y for x, y in zip(acc, b[0])]
                dlo, dhi = boot(diff, idx_sets)
                line += f" {sum(diff) / n:+.3f} [{dlo:+.3f}, {dhi:+.3f}] |"
        print(line)


if __name__ == "__main__":
    main()
