-- wrk script for bench/run_json_bench.sh: POST a JSON EchoRequest whose
-- message is PAYLOAD bytes (env var, default 16) to example.EchoService/Echo.
local size = tonumber(os.getenv("PAYLOAD") or "16")
wrk.method = "POST"
wrk.body = '{"message":"' .. string.rep("x", size) .. '"}'
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  io.write(string.format(
      "JSON requests %d errors %d qps %.0f p50_us %.0f p99_us %.0f\n",
      summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read +
          summary.errors.write + summary.errors.timeout,
      summary.requests / (summary.duration / 1e6), latency:percentile(50),
      latency:percentile(99)))
end
