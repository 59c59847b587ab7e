-- Shared by the wrk scripts of bench/: per-thread state, status counting, a JSON summary.
-- bench/loadgen.py prepends `CONFIG = {...}` and the workload script to this file.

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(CONFIG.seed + thread_id * 7919)
  statuses = {}
  sent = 0
end

if CONFIG.count_statuses then
  -- Only defined when asked for: a response() hook makes wrk parse every body.
  function response(status, headers, body)
    local key = tostring(status)
    if status == 409 and body and string.find(body, "insufficient_stock", 1, true) then
      key = "409:insufficient_stock"
    end
    statuses[key] = (statuses[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local per_thread = thread:get("statuses") or {}
    for key, n in pairs(per_thread) do
      counts[key] = (counts[key] or 0) + n
    end
  end
  local parts = {}
  for key, n in pairs(counts) do
    table.insert(parts, string.format('"%s":%d', key, n))
  end
  -- 1000 quantiles let bench/loadgen.py merge the latency distributions of several runs.
  local quantiles = {}
  for i = 1, 1000 do
    table.insert(quantiles, string.format("%.1f", latency:percentile(i / 10)))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"max_us":%.1f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"statuses":{%s},"quantiles_us":[%s]}\n',
    summary.requests, summary.duration, latency.max, e.connect, e.read, e.write, e.status,
    e.timeout, table.concat(parts, ","), table.concat(quantiles, ",")))
end
