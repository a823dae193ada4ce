-- bench/serve_post.lua — wrk script: POST the JSON body in $COMI_BODY to
-- /v1/compress and count non-200 answers. Used by bench/serve_wrk.sh.
local path = os.getenv("COMI_BODY")
local f = assert(io.open(path, "rb"), "COMI_BODY must name the request body file")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local non200 = 0
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("p50_ms %.3f p99_ms %.3f req_s %.1f non200 %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6), non200))
end
