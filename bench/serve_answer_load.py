#!/usr/bin/env python3
"""bench/serve_answer_load.py — comi serve's /v1/answer under sustained load
with a real model, to show memory stays flat: N requests (default 10,000)
from C concurrent keep-alive clients, each answer checked against the
serial answer to the same request, and the server's RSS sampled at
intervals. Not a test (it runs for minutes); the README has the figures.

Usage: python3 bench/serve_answer_load.py [--comi build/comi] [--model M.gguf]
         [--requests 10000] [--clients 4] [--threads 2] [--max-new-tokens 2]
         [--encoder-layers K] [--sample-s 5] [--short]
The model defaults to scripts/fetch_models.sh's SmolLM2-135M-Instruct Q4_1.
Prints one line per RSS sample and a summary: requests/s, status codes,
wrong answers, RSS at start (after warm-up), end and peak (VmHWM), in MiB."""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

QA = [
    ("The Eiffel Tower is in Paris. It was finished in 1889.", "When was the tower finished?"),
    ("Marie Curie was born in Warsaw in 1867. She won two Nobel prizes.",
     "Where was Marie Curie born?"),
    ("The Nile is the longest river in Africa. It flows into the Mediterranean Sea.",
     "Where does the Nile flow?"),
    ("Bananas are yellow and rich in potassium. Apples can be red or green.",
     "What color are bananas?"),
]
QA_SHORT = [  # --short: a few tokens each, so most of a request is the fixed per-request work
    ("Paris is in France.", "Paris?"),
    ("Curie was born in Warsaw.", "Curie?"),
    ("The Nile flows north.", "Nile?"),
    ("Bananas are yellow.", "Bananas?"),
]


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comi", default="build/comi")
    ap.add_argument("--model", default=None)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=2)
    ap.add_argument("--encoder-layers", type=int, default=0,
                    help="the requests' encoder_layers (default: the pipeline's)")
    ap.add_argument("--sample-s", type=float, default=5.0)
    ap.add_argument("--short", action="store_true",
                    help="four shorter contexts and one-word questions (more requests per second)")
    a = ap.parse_args()
    model = a.model
    if not model:
        r = subprocess.run(["sh", "scripts/fetch_models.sh", "--quiet"], capture_output=True,
                           text=True)
        model = r.stdout.strip().split("\n")[0] if r.returncode == 0 else ""
    if not model or not os.path.isfile(model):
        sys.exit("serve_answer_load: no model (give --model or run scripts/fetch_models.sh)")

    out = tempfile.TemporaryFile("w+")
    p = subprocess.Popen([a.comi, "serve", "--port", "0", "--threads", str(a.threads),
                          "--model", model, "--queue", str(4 * a.clients)],
                         stdout=out, stderr=subprocess.DEVNULL)
    port = None
    for _ in range(600):
        out.seek(0)
        m = re.search(r":(\d+) \(", out.read())
        if m:
            port = int(m.group(1))
            break
        if p.poll() is not None:
            break
        time.sleep(0.05)
    if not port:
        p.kill()
        sys.exit("serve_answer_load: the server did not start")

    bodies = []
    for c, q in (QA_SHORT if a.short else QA):
        b = {"context": c, "question": q, "max_new_tokens": a.max_new_tokens}
        if a.encoder_layers:
            b["encoder_layers"] = a.encoder_layers
        bodies.append(json.dumps(b))
    # the serial answers (and warm-up)
    c0 = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    want = []
    for b in bodies:
        c0.request("POST", "/v1/answer", b, {"Content-Type": "application/json"})
        r = c0.getresponse()
        want.append(json.loads(r.read()).get("ids"))
    c0.close()
    rss0 = status_kib(p.pid, "VmRSS")

    lock = threading.Lock()
    state = {"next": 0, "done": 0, "codes": {}, "wrong": 0, "errors": 0}

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = state["next"]
                if i >= a.requests:
                    break
                state["next"] += 1
            k = i % len(bodies)
            try:
                conn.request("POST", "/v1/answer", bodies[k], {"Content-Type": "application/json"})
                r = conn.getresponse()
                d = json.loads(r.read())
                code, ok = r.status, d.get("ids") == want[k]
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                code, ok = "error", False
            with lock:
                state["done"] += 1
                state["codes"][code] = state["codes"].get(code, 0) + 1
                if code == 200 and not ok:
                    state["wrong"] += 1
        conn.close()

    samples = [(0.0, 0, rss0)]
    t0 = time.time()
    ths = [threading.Thread(target=client) for _ in range(a.clients)]
    for t in ths:
        t.start()
    print("t_s done rss_mib", flush=True)
    print("%.0f %d %.1f" % (0, 0, rss0 / 1024), flush=True)
    while any(t.is_alive() for t in ths):
        time.sleep(min(a.sample_s, 0.5))
        if time.time() - t0 - samples[-1][0] >= a.sample_s:
            with lock:
                done = state["done"]
            s = (time.time() - t0, done, status_kib(p.pid, "VmRSS"))
            samples.append(s)
            print("%.0f %d %.1f" % (s[0], s[1], s[2] / 1024), flush=True)
    for t in ths:
        t.join()
    dt = time.time() - t0
    rss_end, hwm = status_kib(p.pid, "VmRSS"), status_kib(p.pid, "VmHWM")
    p.terminate()
    rc = p.wait(30)
    mid = [s[2] for s in samples if s[1] >= a.requests // 10]
    print("requests %d, clients %d, workers %d, max_new_tokens %d: %.1f s, %.1f req/s, codes %s, "
          "wrong answers %d" % (a.requests, a.clients, a.threads, a.max_new_tokens, dt,
                                a.requests / dt, state["codes"], state["wrong"]))
    print("server RSS MiB: start %.1f (after warm-up), after 10%% %.1f, end %.1f, max sampled %.1f, "
          "peak (VmHWM) %.1f; exit %d" % (rss0 / 1024, (mid[0] if mid else -1) / 1024,
                                          rss_end / 1024, max(s[2] for s in samples) / 1024,
                                          hwm / 1024, rc))


if __name__ == "__main__":
    main()
