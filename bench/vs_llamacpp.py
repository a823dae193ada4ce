#!/usr/bin/env python3
"""Side-by-side prefill / decode speed: comi vs llama.cpp on the same GGUF.

usage: python3 bench/vs_llamacpp.py MODEL.gguf [MODEL2.gguf ...]
           [--threads 2] [--reps 5] [--prompt 512] [--gen 64]
           [--llama-bench PATH] [--comi-bench build/bench/bench_forward]

For every model and repetition it runs, interleaved (A/B, then B/A on the
next repetition, so drifting machine load hits both sides alike):
  comi:      bench_forward MODEL --threads T --prompts P --gen 0   (prefill P)
             bench_forward MODEL --threads T --prompts 1 --gen G+1 (G decode steps)
  llama.cpp: llama-bench -m MODEL -t T -p P -n 0 -r 1 -o json --no-warmup
             llama-bench -m MODEL -t T -p 0 -n G -r 1 -o json --no-warmup
each as its own process, neither with a warm-up run (wall-clock tokens/s as
each program reports it,
peak RSS of the process from wait4). It prints one markdown table: median
and min tokens/s of each side, the ratio of the medians, peak RSS, and the
load average before and after. llama-bench comes from
bench/build_llamacpp.sh (pinned llama.cpp release, built outside the tree).
Nothing here asserts a speed.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def run(cmd):
    """Runs cmd; returns (stdout, peak RSS MiB of that process)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), err.decode()[-2000:]))
    return out.decode(), ru.ru_maxrss / 1024.0


def comi_run(a, model, phase):
    if phase == "pp":
        cmd = [a.comi_bench, model, "--threads", str(a.threads), "--prompts", str(a.prompt), "--gen", "0"]
    else:
        cmd = [a.comi_bench, model, "--threads", str(a.threads), "--prompts", "1", "--gen", str(a.gen + 1)]
    out, rss = run(cmd)
    row = [l for l in out.splitlines() if l and not l.startswith("#") and not l.startswith("arch")][-1].split()
    # arch type prompt pp_s pp_tps pp_cpu_s pp_tps_cpu gen tg_s tg_tps ...
    tps = float(row[4]) if phase == "pp" else float(row[9])
    return tps, rss


def llama_run(a, model, phase):
    p, n = (a.prompt, 0) if phase == "pp" else (0, a.gen)
    cmd = [a.llama_bench, "-m", model, "-t", str(a.threads), "-p", str(p), "-n", str(n), "-r", "1", "-o", "json",
           "--no-warmup"]
    out, rss = run(cmd)
    js = json.loads(out)
    return float(js[-1]["avg_ts"]), rss


def load():
    return "%.1f %.1f %.1f" % os.getloadavg()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--llama-bench", default=os.path.expanduser("~/.cache/comi/llama.cpp-build/bin/llama-bench"))
    ap.add_argument("--comi-bench", default="build/bench/bench_forward")
    ap.add_argument("--phases", default="pp,tg")
    a = ap.parse_args()
    phases = a.phases.split(",")
    for exe in (a.llama_bench, a.comi_bench):
        if not os.access(exe, os.X_OK):
            sys.exit("not found: %s (bench/build_llamacpp.sh builds llama-bench; make bench builds comi's)" % exe)
    print("# %s, %d cores, threads %d, %d interleaved repetitions; load average at start %s"
          % (platform.processor() or platform.machine(), os.cpu_count(), a.threads, a.reps, load()))
    rows = []
    for model in a.models:
        for phase in phases:
            res = {"comi": [], "llama.cpp": []}
            rss = {"comi": 0.0, "llama.cpp": 0.0}
            l0 = load()
            for r in range(a.reps):
                order = ["comi", "llama.cpp"] if r % 2 == 0 else ["llama.cpp", "comi"]
                for side in order:
                    fn = comi_run if side == "comi" else llama_run
                    tps, m = fn(a, model, phase)
                    res[side].append(tps)
                    rss[side] = max(rss[side], m)
                    print("#   %s %s %s rep %d: %.2f t/s, %.0f MiB" % (os.path.basename(model), phase, side, r, tps, m),
                          file=sys.stderr, flush=True)
            work = ("prefill %d" % a.prompt) if phase == "pp" else ("decode %d" % a.gen)
            med_c, med_l = statistics.median(res["comi"]), statistics.median(res["llama.cpp"])
            rows.append("| %s | %s | %.1f (%.1f) | %.1f (%.1f) | %.2f | %.0f / %.0f | %s -> %s |" % (
                os.path.basename(model), work, med_l, min(res["llama.cpp"]), med_c, min(res["comi"]),
                med_c / med_l, rss["llama.cpp"], rss["comi"], l0, load()))
            print(rows[-1], file=sys.stderr, flush=True)
    print("| model | workload | llama.cpp t/s median (min) | comi t/s median (min) | comi / llama.cpp | peak RSS MiB llama.cpp / comi | load avg before -> after |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
