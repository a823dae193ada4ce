#!/usr/bin/env python3
"""bench/serve_hostile.py [COMI] — comi serve under load and hostile clients on
loopback: 10,000 keep-alive /v1/compress requests (RSS before and after), 1,000
connections that never finish their headers (another client is still served;
the header deadline closes them), 300 uploads stalled just under --max-body
(the body-memory bound holds; closing them frees it). Prints one line per
step. Needs the 127.0.0.0/8 loopback addresses (Linux)."""
import http.client, json, os, re, socket, subprocess, sys, time
COMI = sys.argv[1] if len(sys.argv) > 1 else "build/comi"
def rss(pid):
    for l in open("/proc/%d/status" % pid):
        if l.startswith("VmRSS"): return int(l.split()[1]) // 1024
import tempfile
out = tempfile.TemporaryFile("w+")
p = subprocess.Popen([COMI, "serve", "--port", "0", "--threads", "2"], stdout=out, stderr=subprocess.DEVNULL)
for _ in range(100):
    out.seek(0); m = re.search(r":(\d+) \(", out.read())
    if m: break
    time.sleep(0.05)
port = int(m.group(1))
ctx = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "panama-canal.txt")).read()
body = json.dumps({"context": ctx, "question": "Who took over as chief engineer when John Stevens resigned?", "ratio": 8})
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
print("rss start MiB", rss(p.pid))
t = time.time(); codes = {}
for i in range(10000):
    c.request("POST", "/v1/compress", body, {"Content-Type": "application/json"})
    r = c.getresponse(); r.read(); codes[r.status] = codes.get(r.status, 0) + 1
    if i in (999, 4999):
        print("rss after %d MiB" % (i + 1), rss(p.pid))
dt = time.time() - t
print("10000 keep-alive /v1/compress: %.1f s, %.0f req/s, codes %s, rss MiB %d" % (dt, 10000 / dt, codes, rss(p.pid)))
# 1000 slowloris connections from 127.0.0.1
socks = []; refused = 0
for i in range(1000):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2); s.send(b"GET /hea"); socks.append(s)
    except OSError: refused += 1
time.sleep(0.5)
h = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=("127.0.0.2", 0))
t = time.time(); h.request("GET", "/health"); r = h.getresponse(); hj = json.loads(r.read())
print("1000 slow-header connections: health from 127.0.0.2 status %d in %.0f ms, server holds %d connections, rss MiB %d" % (r.status, (time.time()-t)*1e3, hj["connections"], rss(p.pid)))
time.sleep(11)
h = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=("127.0.0.3", 0))
h.request("GET", "/health"); hj = json.loads(h.getresponse().read())
print("after the 10 s header deadline: connections %d, deadline_closed %d" % (hj["connections"], hj["deadline_closed"]))
for s in socks: s.close()
# 300 uploads stalled just under --max-body (8 MiB) from 3 addresses
ups = []
for i in range(300):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.%d" % (10 + i % 100), 0))
        s.sendall(b"POST /v1/compress HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 8388000\r\n\r\n")
        s.settimeout(0.2)
        try: s.sendall(b" " * 8000000)
        except OSError: pass
        ups.append(s)
    except OSError: pass
time.sleep(1)
h = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=("127.0.0.4", 0))
h.request("GET", "/health"); hj = json.loads(h.getresponse().read())
print("300 uploads stalled under --max-body: body_bytes %.1f MiB (bound %.0f MiB), rss MiB %d" % (hj["body_bytes"] / 2**20, 64, rss(p.pid)))
for s in ups: s.close()
time.sleep(1)
h = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=("127.0.0.4", 0))
h.request("GET", "/health"); hj = json.loads(h.getresponse().read())
print("after the clients closed: body_bytes %d, in_flight %d, rss MiB %d" % (hj["body_bytes"], hj["in_flight"], rss(p.pid)))
p.terminate(); p.wait()
