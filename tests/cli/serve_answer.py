"""Load and faults of comi serve's /v1/answer with the real SmolLM2-135M
(run by tests/cli/test_serve_answer.sh; prints PASS/FAIL lines).

Usage: serve_answer.py COMI MODEL TMPDIR. Concurrent answers equal the serial
ones and `comi answer`'s; a request past --timeout-ms gets 504 and its worker
is free again within a fraction of the time the request needs uncancelled; a
client that disconnects mid-request frees its worker the same way, also
during a long prefill (stopped between two layers of the forward pass); SIGTERM
with answers in flight answers them all and exits 0. Every socket and wait is
bounded; every server is killed at the end."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

COMI, MODEL, TMP = sys.argv[1], sys.argv[2], sys.argv[3]
servers = []

QA = [
    ("The Eiffel Tower is in Paris. It was finished in 1889.", "When was the tower finished?"),
    ("Marie Curie was born in Warsaw in 1867. She won two Nobel prizes.",
     "Where was Marie Curie born?"),
    ("The Nile is the longest river in Africa. It flows into the Mediterranean Sea.",
     "Where does the Nile flow?"),
]
MAX_NEW = 8
# A request whose answer is long (about a hundred tokens, seconds on a
# loaded machine): what timeouts and disconnects interrupt.
LONG = {"context": "Once upon a time there was a dragon who lived in a cave near a village.",
        "question": "Repeat the word hello forever.", "max_new_tokens": 200}

# A long context in one segment through every layer: the encoder's prefill
# is one forward pass over about 2,000 tokens.
LONG_PREFILL = {"context": " ".join("Sentence %d says the old bridge near the market was painted "
                                    "blue in %d." % (i, 1800 + i) for i in range(120)),
                "question": "What colour was the bridge?", "encoder_layers": 30,
                "segment_size": 100000, "max_new_tokens": 1}


def ok(name):
    print("PASS %s" % name, flush=True)


def bad(name, why):
    print("FAIL %s: %s" % (name, str(why)[:400]), flush=True)


def check(name, cond, why=""):
    if cond:
        ok(name)
    else:
        bad(name, why)


def start(tag, *args):
    """comi serve --model MODEL on a free loopback port: (proc, port, err path)."""
    out = open(os.path.join(TMP, tag + ".out"), "w+")
    errp = os.path.join(TMP, tag + ".err")
    p = subprocess.Popen([COMI, "serve", "--host", "127.0.0.1", "--port", "0", "--model", MODEL]
                         + list(args), stdout=out, stderr=open(errp, "w"))
    servers.append(p)
    for _ in range(600):  # the model loads first
        out.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+) ", out.read())
        if m:
            return p, int(m.group(1)), errp
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError("server %s did not start: %s" % (tag, open(errp).read()[:300]))


def req(port, body, path="/v1/answer", timeout=60):
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    r = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                               headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def answer_body(i, max_new=MAX_NEW):
    return {"context": QA[i][0], "question": QA[i][1], "max_new_tokens": max_new}


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            vals[k] = float(v)
    return vals


def idle_workers(port):
    return metrics(port).get('comi_workers{state="idle"}', -1)


def wait_for(cond, secs, step=0.01):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def raw_post(port, body):
    """Sends the request on a raw socket (for a client that goes away)."""
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /v1/answer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(data) + data)
    return s


def main():
    # ---- serial answers, and the same ids as `comi answer` ----------------
    p1, port, err1 = start("s1", "--threads", "2")
    serial = []
    for i in range(len(QA)):
        code, d = req(port, answer_body(i))
        serial.append(d.get("ids") if code == 200 else None)
    check("answer_real_serial", all(s for s in serial), "serial answers: %r" % serial)
    cli_same = 0
    for i, (ctx, q) in enumerate(QA):
        r = subprocess.run([COMI, "answer", "--model", MODEL, "--context", ctx, "--question", q,
                            "--max-new-tokens", str(MAX_NEW), "--print-ids", "--threads", "1"],
                           capture_output=True, text=True, timeout=60)
        lines = r.stdout.strip().split("\n")
        if r.returncode == 0 and serial[i] and " ".join(map(str, serial[i])) in lines:
            cli_same += 1
    check("answer_real_same_as_cli", cli_same == len(QA),
          "%d of %d served answers have comi answer's ids" % (cli_same, len(QA)))

    # ---- concurrent: 4 clients x 3 requests, all equal to the serial ones
    results, lock = [], threading.Lock()

    def client(c):
        for k in range(3):
            i = (c + k) % len(QA)
            try:
                code, d = req(port, answer_body(i))
                got = (i, code, d.get("ids"))
            except Exception as e:  # noqa: BLE001 - any failure is a wrong answer
                got = (i, str(e), None)
            with lock:
                results.append(got)

    ths = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(120)
    good = sum(1 for i, code, ids in results if code == 200 and ids == serial[i])
    check("answer_real_concurrent_12", good == 12 and not any(t.is_alive() for t in ths),
          "%d of 12 answered 200 with the serial ids: %r" %
          (good, [r for r in results if r[1] != 200 or r[2] != serial[r[0]]][:3]))

    # ---- how long LONG takes uncancelled (the yardstick for "promptly") --
    t0 = time.time()
    code, d = req(port, LONG)
    t_full = time.time() - t0
    check("answer_real_long_fixture", code == 200 and len(d.get("ids", [])) >= 40,
          "the long request gave %s with %d ids" % (code, len(d.get("ids", []))))

    # ---- a client that disconnects mid-request frees its worker ----------
    m0 = metrics(port)
    s = raw_post(port, LONG)
    running = wait_for(lambda: idle_workers(port) == 1, 10)
    time.sleep(min(0.2, t_full / 5))
    s.close()
    t_close = time.time()
    freed = wait_for(lambda: idle_workers(port) == 2, t_full + 10)
    t_freed = time.time() - t_close
    m1 = metrics(port)
    gone = m1.get("comi_client_gone_total", 0) - m0.get("comi_client_gone_total", 0)
    check("answer_real_disconnect_frees_worker",
          running and freed and gone == 1 and t_freed < t_full / 2,
          "running %s, freed %s after %.3f s (the request takes %.3f s), client_gone +%d" %
          (running, freed, t_freed, t_full, gone))
    code, d = req(port, answer_body(0))
    check("answer_real_after_disconnect", code == 200 and d.get("ids") == serial[0],
          "%s %r" % (code, d))

    # ---- a client that disconnects during a long prefill: the cancel stops
    # the encoder's forward pass between two layers (the server logs where
    # the library stopped), not at the end of the segment. The context is
    # about 2,000 tokens in one segment through all 30 layers (seconds, most
    # of the request); the client leaves 0.3 s after its job started.
    n_log = len(open(err1).read())
    s = raw_post(port, LONG_PREFILL)
    running = wait_for(lambda: idle_workers(port) == 1, 10)
    time.sleep(0.3)
    s.close()
    freed = wait_for(lambda: idle_workers(port) == 2, 120)
    wait_for(lambda: "freed its worker" in open(err1).read()[n_log:], 10)
    tail = open(err1).read()[n_log:]
    h = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=10).read())
    check("answer_real_disconnect_in_prefill",
          running and freed and "eval: cancelled before layer" in tail
          and h["in_flight"] == 1 and h["queue_depth"] == 0,
          "running %s, freed %s, server log %r, health %r" % (running, freed, tail[-300:], h))

    # ---- SIGTERM with answers in flight: all answered, exit 0 ------------
    out = [None] * 6

    def one(k):
        try:
            out[k] = req(port, answer_body(k % len(QA), 24))
        except Exception as e:  # noqa: BLE001
            out[k] = (str(e), {})

    ths = [threading.Thread(target=one, args=(k,)) for k in range(6)]
    for t in ths:
        t.start()
    # all six received (the /metrics request itself is the seventh)
    seen = wait_for(lambda: metrics(port).get("comi_in_flight_requests", 0) >= 7, 20)
    p1.send_signal(signal.SIGTERM)
    for t in ths:
        t.join(60)
    try:
        rc = p1.wait(30)
    except subprocess.TimeoutExpired:
        rc = "still running 30 s after SIGTERM"
    log = open(err1).read()
    m = re.search(r"finishing (\d+) in-flight", log)
    n_flight = int(m.group(1)) if m else -1
    serial24 = []
    if all(o and o[0] == 200 for o in out):
        serial24 = [o[1].get("ids") for o in out]
    check("answer_real_sigterm_in_flight",
          seen and rc == 0 and n_flight >= 2 and len(serial24) == 6
          and all(serial24[k] == serial24[k % 3] for k in range(6)) and "stopped" in log,
          "seen %s, exit %s, %d in flight at the signal, codes %r" %
          (seen, rc, n_flight, [o[0] if o else None for o in out]))

    # ---- a request past --timeout-ms: 504, and its worker freed promptly -
    # half of LONG's time: the short request afterwards (about a tenth of it)
    # fits easily, and an uncancelled LONG would hold the worker another half
    timeout_ms = max(200, int(t_full * 1000 * 0.5))
    p2, port2, err2 = start("s2", "--threads", "1", "--timeout-ms", str(timeout_ms))
    t0 = time.time()
    long_out = []
    th = threading.Thread(target=lambda: long_out.append(req(port2, LONG)))
    th.start()
    # meanwhile a client queues a request behind LONG and goes away: it is
    # dropped (while queued, or cancelled if LONG's 504 came first) and never
    # answered 200
    running = wait_for(lambda: idle_workers(port2) == 0, 10)
    s = raw_post(port2, answer_body(2))
    queued = wait_for(lambda: metrics(port2).get("comi_queue_depth", 0) == 1, 5)
    s.close()
    dropped = wait_for(lambda: metrics(port2).get("comi_client_gone_total", 0) == 1, 5)
    th.join(60)
    t_504 = time.time() - t0
    code, d = long_out[0] if long_out else ("no answer", {})
    freed = wait_for(lambda: idle_workers(port2) == 1, t_full + 10)
    m2 = metrics(port2)
    check("answer_real_queued_disconnect_dropped",
          running and queued and dropped
          and m2.get('comi_http_requests_total{endpoint="/v1/answer",code="200"}', 0) == 0
          and m2.get('comi_http_aborted_total{endpoint="/v1/answer"}', 0) == 1,
          "running %s, queued %s, dropped %s, metrics %r" %
          (running, queued, dropped, {k: v for k, v in m2.items() if "answer" in k}))
    wait_max = m2.get("comi_cancel_wait_seconds_max", -1)
    check("answer_real_timeout_504", code == 504 and "timed out" in d.get("error", ""),
          "%s %r after %.3f s (--timeout-ms %d)" % (code, d, t_504, timeout_ms))
    check("answer_real_timeout_frees_worker",
          freed and m2.get("comi_cancelled_total", 0) >= 1 and 0 <= wait_max < t_full / 4,
          "freed %s, cancelled %s, the cancelled job kept its worker %.3f s (uncancelled the "
          "request takes %.3f s)" % (freed, m2.get("comi_cancelled_total"), wait_max, t_full))
    code, d = req(port2, answer_body(1))
    check("answer_real_after_timeout", code == 200 and d.get("ids") == serial[1],
          "%s %r" % (code, d))
    h = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/health" % port2, timeout=10).read())
    check("answer_real_nothing_left", h["in_flight"] == 1 and h["queue_depth"] == 0
          and h["body_bytes"] == 0, "health %r" % h)
    p2.send_signal(signal.SIGTERM)
    try:
        rc2 = p2.wait(30)
    except subprocess.TimeoutExpired:
        rc2 = "hung"
    check("answer_real_exit_0", rc2 == 0, "exit %s" % rc2)
    logs = open(err1).read() + open(err2).read()
    check("answer_real_sanitizers", "Sanitizer" not in logs and "runtime error" not in logs,
          logs[:400])


try:
    main()
except Exception as e:  # noqa: BLE001 - report, do not crash without a FAIL line
    bad("serve_answer", "%s: %s" % (type(e).__name__, e))
finally:
    for p in servers:
        if p.poll() is None:
            p.kill()
            p.wait()
