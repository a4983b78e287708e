-- For lib.sh: prints wrk's summary as one machine-readable line (requests, duration and
-- latency percentiles in microseconds, errors by kind, bytes read). With the script
-- argument `fresh-client-ids` (`wrk ... URL -- fresh-client-ids`), every request carries
-- an `x-client-id` of its own, so a per-client rate limiter (the demo shop's) sees many
-- clients within their quota instead of one far above it. Without it, wrk sends its one
-- static request, with no Lua call per request.
local threads = 0

setup = function(thread)
  threads = threads + 1
  thread:set("prefix", "wrk" .. threads .. "-")
end

init = function(args)
  if args[1] == "fresh-client-ids" then
    local counter = 0
    -- wrk checks for `request` after `init`, so defining it here keeps the other runs static.
    request = function()
      counter = counter + 1
      return wrk.format(nil, nil, { ["x-client-id"] = prefix .. counter })
    end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "wrk-result requests=%d duration_us=%d p50_us=%d p99_us=%d connect=%d read=%d write=%d status=%d timeout=%d bytes=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, summary.bytes))
end
