-- Cycles through a list of prepared requests, one per line of the file named by
-- BENCH_REQUESTS: METHOD<TAB>path<TAB>JSON body (empty for none). Each wrk thread starts
-- at its own offset, so that threads spread over different conversations. Extra headers
-- come from BENCH_HEADER_0, BENCH_HEADER_1, ... ("Name: value"). At the end, one line
-- `WRK_JSON {...}` for bench/common.py: counts, errors and latency percentiles.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

local prepared = {}
local position = 0

function init(args)
   local headers = { ["Content-Type"] = "application/json" }
   for n = 0, 9 do
      local raw = os.getenv("BENCH_HEADER_" .. n)
      if raw == nil then break end
      local name, value = raw:match("^([^:]+):%s*(.*)$")
      headers[name] = value
   end
   local file = assert(io.open(os.getenv("BENCH_REQUESTS"), "r"))
   for line in file:lines() do
      local method, path, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      if body == "" then body = nil end
      table.insert(prepared, wrk.format(method, path, headers, body))
   end
   file:close()
   -- Spread the threads over the list.
   local count = tonumber(os.getenv("BENCH_THREADS") or "2")
   position = math.floor((tid - 1) * #prepared / count) % #prepared
end

function request()
   position = position + 1
   if position > #prepared then position = 1 end
   return prepared[position]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"min": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end
