#!/usr/bin/env python3
"""The training curve of a `comi train` run as an SVG (README "Training").

  python3 scripts/train_curve.py DIR/log.jsonl OUT.svg [--window 50]

Plots the per-step training loss (light), its moving average over --window
steps (dark) and the held-out loss at each evaluation (dots), against the
step. Standard library only.
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log")
    ap.add_argument("out")
    ap.add_argument("--window", type=int, default=50)
    a = ap.parse_args()
    steps, loss, ev = [], [], []
    try:
        f = open(a.log)
    except OSError as e:
        sys.exit(f"train_curve: cannot read {a.log}: {e.strerror}")
    with f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                o = json.loads(line)
            except ValueError:
                sys.exit(f"train_curve: {a.log} line {ln}: not JSON")
            try:
                if "loss" in o:
                    steps.append(float(o["step"]))
                    loss.append(float(o["loss"]))
                if "eval_loss" in o:
                    ev.append((float(o["step"]), float(o["eval_loss"])))
            except (KeyError, TypeError, ValueError):
                sys.exit(f"train_curve: {a.log} line {ln}: not a comi train log line")
    if not steps:
        sys.exit(f"train_curve: {a.log} has no steps")
    w = max(1, a.window)
    avg = []
    acc = 0.0
    for i, x in enumerate(loss):
        acc += x
        if i >= w:
            acc -= loss[i - w]
        avg.append(acc / min(i + 1, w))
    W, H, L, R, T, B = 640, 360, 56, 16, 28, 44
    smax = max(steps)
    ymax = max(max(loss), max((e for _, e in ev), default=0)) * 1.05
    ymin = 0.0

    def X(s):
        return L + (W - L - R) * (s / smax if smax else 0)

    def Y(v):
        return T + (H - T - B) * (1 - (v - ymin) / (ymax - ymin))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="16" font-size="13">comi train: answer cross-entropy by step '
           f'({len(steps)} steps)</text>']
    for k in range(6):
        v = ymin + (ymax - ymin) * k / 5
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    for k in range(6):
        s = smax * k / 5
        out.append(f'<text x="{X(s):.1f}" y="{H - B + 16}" text-anchor="middle">{s:.0f}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 8}" text-anchor="middle">step</text>')
    pts = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in zip(steps, loss))
    out.append(f'<polyline points="{pts}" fill="none" stroke="#9ecae1" stroke-width="0.8"/>')
    pts = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in zip(steps, avg))
    out.append(f'<polyline points="{pts}" fill="none" stroke="#08519c" stroke-width="2"/>')
    for s, v in ev:
        out.append(f'<circle cx="{X(s):.1f}" cy="{Y(v):.1f}" r="3.5" fill="#d94801"/>')
    lx = W - R - 210
    out.append(f'<line x1="{lx}" x2="{lx + 20}" y1="40" y2="40" stroke="#9ecae1"/>'
               f'<text x="{lx + 26}" y="44">training loss (per step)</text>')
    out.append(f'<line x1="{lx}" x2="{lx + 20}" y1="56" y2="56" stroke="#08519c" stroke-width="2"/>'
               f'<text x="{lx + 26}" y="60">moving average ({w} steps)</text>')
    out.append(f'<circle cx="{lx + 10}" cy="72" r="3.5" fill="#d94801"/>'
               f'<text x="{lx + 26}" y="76">held-out loss</text>')
    out.append("</svg>")
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"train_curve: {len(steps)} steps, {len(ev)} evaluations -> {a.out}")


if __name__ == "__main__":
    main()
