"""Bounded loopback checks of comi serve against hostile or broken clients
(run by tests/cli/test_serve_hardening.sh; prints PASS/FAIL lines).

Usage: serve_hardening.py COMI TMPDIR. Every socket has a timeout, every
server is killed at the end."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

COMI, TMP = sys.argv[1], sys.argv[2]
servers = []


def ok(name):
    print("PASS %s" % name, flush=True)


def bad(name, why):
    print("FAIL %s: %s" % (name, str(why)[:400]), flush=True)


def check(name, cond, why=""):
    (ok if cond else lambda n: bad(n, why))(name)


def start(tag, *args):
    """Starts comi serve on a free loopback port; returns (proc, port, errfile)."""
    out = open(os.path.join(TMP, tag + ".out"), "w+")
    err = open(os.path.join(TMP, tag + ".err"), "w+")
    p = subprocess.Popen([COMI, "serve", "--host", "127.0.0.1", "--port", "0", "--threads", "2"]
                         + list(args), stdout=out, stderr=err)
    servers.append(p)
    for _ in range(200):
        out.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+) ", out.read())
        if m:
            return p, int(m.group(1)), err
        if p.poll() is not None:
            break
        time.sleep(0.05)
    err.seek(0)
    raise RuntimeError("server %s did not start: %s" % (tag, err.read()[:300]))


def get(port, path="/health", headers=None, timeout=10, source=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers or {})
    if source:  # from another loopback address (another client for the per-client cap)
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                       source_address=(source, 0))
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post(port, path, body, headers=None, timeout=20):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def health(port):
    return json.loads(get(port)[1])


def idle(port):
    """No body buffered and no request in flight but the /health asking."""
    h = health(port)
    return h["body_bytes"] == 0 and h["in_flight"] == 1


def status_or_error(port, **kw):
    try:
        return get(port, **kw)[0]
    except OSError as e:
        return str(e)


def closed_by_server(s, within):
    """True when the server closes s (EOF or reset) within `within` seconds."""
    s.settimeout(within)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def raw(port, data=b"", source=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                 source_address=(source, 0) if source else None)
    if data:
        s.sendall(data)
    return s


def wait_for(cond, secs):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


BODY = json.dumps({"context": "The Eiffel Tower is in Paris. It was finished in 1889.",
                   "question": "When was it finished?", "ratio": 2}).encode()


def main():
    # --- 413 reaches urllib (the body is read and discarded, then answered)
    p, port, err = start("big", "--max-body", "1000", "--access-log")
    for size in (1001, 300_000, 3_000_000):
        code, body, _ = post(port, "/v1/compress", b"x" * size)
        try:
            msg = json.loads(body).get("error", "")
        except ValueError:
            msg = ""
        check("serve_413_urllib_%d" % size, code == 413 and "--max-body 1000" in msg,
              "status %s body %r" % (code, body[:200]))
    code, body, _ = post(port, "/v1/compress", BODY)
    check("serve_after_413_still_serves", code == 200, "status %s" % code)
    # access log: timestamp client method path status bytes ms
    time.sleep(0.2)
    err.seek(0)
    lines = [l for l in err.read().splitlines() if "/v1/compress" in l]
    pat = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1 POST /v1/compress "
                     r"(\d{3}) (\d+) \d+\.\d{3}ms$")
    ms = [pat.match(l) for l in lines]
    check("serve_access_log_format", len(lines) >= 4 and all(ms) and ms[-1].group(1) == "200"
          and int(ms[-1].group(2)) > 0, lines[-4:])

    # --- header deadline: a client that never finishes its headers is closed
    p, port, err = start("hdr", "--header-timeout-ms", "400", "--body-timeout-ms", "400")
    t0 = time.time()
    s = raw(port, b"GET /hea")
    check("serve_header_deadline", closed_by_server(s, 5) and time.time() - t0 < 4,
          "still open after %.1f s" % (time.time() - t0))
    s.close()
    # slowloris: one header byte at a time, still cut at the deadline
    s = raw(port)
    t0 = time.time()
    cut = False
    try:
        for ch in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            s.send(bytes([ch]))
            time.sleep(0.1)
    except OSError:
        cut = True
    cut = cut or closed_by_server(s, 3)
    check("serve_slow_headers_cut", cut and time.time() - t0 < 5,
          "after %.1f s" % (time.time() - t0))
    s.close()
    # --- body deadline and prompt release: a stalled upload is closed and
    # its memory released; an upload cut off mid-body is released at once
    s = raw(port, b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n" + b" " * 20000)
    time.sleep(0.1)
    h = health(port)
    check("serve_body_memory_counted", h["body_bytes"] >= 20000, h)
    t0 = time.time()
    check("serve_body_deadline", closed_by_server(s, 5) and time.time() - t0 < 4,
          "open after %.1f s" % (time.time() - t0))
    s.close()
    check("serve_body_memory_released", wait_for(lambda: idle(port), 2), health(port))
    p2, port2, _ = start("cut")  # default deadlines: only the disconnect frees it
    s = raw(port2, b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 100000\r\n\r\n" + b" " * 30000)
    check("serve_cut_upload_counted", wait_for(lambda: health(port2)["body_bytes"] >= 30000, 2),
          health(port2))
    s.close()
    t0 = time.time()
    released = wait_for(lambda: idle(port2), 2)
    check("serve_cut_upload_released_promptly", released, "after %.1f s: %s"
          % (time.time() - t0, health(port2)))

    # --- per-client connection cap: 4 from 127.0.0.1, a 5th is refused,
    # another client (127.0.0.2) is still served
    p, port, err = start("cap", "--max-connections-per-client", "4")
    held = [raw(port, b"GET /hea") for _ in range(4)]
    time.sleep(0.2)
    fifth = raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    check("serve_per_client_cap", closed_by_server(fifth, 3))
    fifth.close()
    try:
        st, _ = get(port, source="127.0.0.2", timeout=5)
    except OSError as e:
        st = str(e)
    check("serve_other_client_served", st == 200, st)
    for s in held:
        s.close()
    check("serve_cap_frees", wait_for(lambda: status_or_error(port, timeout=2) == 200, 3))

    # --- global cap: beyond it connections wait; served once one closes
    p, port, err = start("gcap", "--max-connections", "3")
    held = [raw(port, b"GET /hea") for _ in range(3)]
    time.sleep(0.2)
    try:
        st = get(port, timeout=1)[0]
    except OSError:
        st = "timeout"
    check("serve_global_cap_holds", st == "timeout", st)
    held.pop().close()
    try:
        st = get(port, timeout=5)[0]
    except OSError as e:
        st = str(e)
    check("serve_global_cap_frees", st == 200, st)
    for s in held:
        s.close()

    # --- bound on all buffered bodies: a second upload over the budget
    # gets 503 while a stalled one holds most of it
    p, port, err = start("mem", "--max-body", "100000", "--max-body-memory", "150000")
    s = raw(port, b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n" + b" " * 90000)
    wait_for(lambda: health(port)["body_bytes"] >= 90000, 2)
    code, body, hdrs = post(port, "/v1/compress", b" " * 99000 + BODY)
    check("serve_body_memory_503", code == 503 and b"--max-body-memory" in body,
          "status %s %r" % (code, body[:200]))
    h = health(port)
    check("serve_body_memory_bounded", h["body_bytes"] <= 150000, h)
    s.close()
    wait_for(lambda: health(port)["body_bytes"] == 0, 2)
    code, body, _ = post(port, "/v1/compress", b" " * 50000 + BODY)
    check("serve_body_memory_back", code == 200, "status %s %r" % (code, body[:200]))

    # --- API key: every endpoint but /health needs the bearer token
    p, port, err = start("key", "--api-key", "s3cret")
    code, body, hdrs = post(port, "/v1/compress", BODY)
    check("serve_api_key_missing", code == 401 and "error" in json.loads(body) and
          "Bearer" in hdrs.get("WWW-Authenticate", ""), (code, body, hdrs))
    code, body, _ = post(port, "/v1/compress", BODY, {"Authorization": "Bearer wrong"})
    check("serve_api_key_wrong", code == 401, code)
    code, body, _ = post(port, "/v1/compress", BODY, {"Authorization": "Bearer s3cret"})
    check("serve_api_key_right", code == 200 and "compressed" in json.loads(body), code)
    check("serve_api_key_metrics", get(port, "/metrics")[0] == 401 and
          get(port, "/metrics", {"Authorization": "Bearer s3cret"})[0] == 200)
    check("serve_api_key_health_open", get(port)[0] == 200)
    code, body, _ = post(port, "/v1/compress", b"x" * 5000)
    check("serve_api_key_before_body", code == 401, code)

    # --- a request past --timeout-ms gets 504 and its running job is
    # cancelled, so the worker is free again at once (not after the job)
    p, port, err = start("cancel", "--threads", "1", "--timeout-ms", "300", "--delay-ms", "20000")
    t0 = time.time()
    code, body, _ = post(port, "/v1/compress", BODY)
    check("serve_timeout_504", code == 504 and time.time() - t0 < 5, (code, body[:200]))

    def idle_workers():
        m = re.search(r'comi_workers\{state="idle"\} (\d+)', get(port, "/metrics")[1].decode())
        return int(m.group(1)) if m else -1

    check("serve_timeout_frees_worker", wait_for(lambda: idle_workers() == 1, 3),
          "idle workers %d, %.1f s after the 504" % (idle_workers(), time.time() - t0))
    metrics = get(port, "/metrics")[1].decode()
    check("serve_timeout_cancel_counted", "comi_cancelled_total 1" in metrics,
          [l for l in metrics.splitlines() if "cancelled" in l])

    # --- default port: 8080 (or "cannot listen on ... port 8080" when taken)
    q = subprocess.run([COMI, "serve", "--help"], capture_output=True, text=True, timeout=20)
    check("serve_default_port_help", "default 8080" in q.stdout, q.stdout[:200])
    d = subprocess.Popen([COMI, "serve", "--threads", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    servers.append(d)
    try:
        line = d.stdout.readline()
    except Exception as e:  # noqa: BLE001
        line = str(e)
    if d.poll() is not None:
        line += d.stderr.read()
    check("serve_default_port", "127.0.0.1:8080 " in line or "port 8080" in line, line)


try:
    main()
except Exception as e:  # noqa: BLE001 - reported as a failure
    bad("serve_hardening", "%s: %s" % (type(e).__name__, e))
finally:
    for p in servers:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
