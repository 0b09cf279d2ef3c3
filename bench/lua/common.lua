-- Helpers shared by the wrk scripts in this directory (loaded with dofile; see run.sh for the
-- environment variables). Each wrk thread has its own Lua state, so nothing here is shared
-- between threads; done() runs once, in wrk's main state, after all threads have stopped.
local M = {}

function M.env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default ~= nil then return default end
    error("environment variable " .. name .. " is not set")
  end
  return v
end

-- Non-empty lines of a file, optionally at most `limit` of them.
function M.read_lines(path, limit)
  local f = assert(io.open(path, "r"))
  local lines = {}
  for line in f:lines() do
    if line ~= "" then
      lines[#lines + 1] = line
      if limit and #lines >= limit then break end
    end
  end
  f:close()
  assert(#lines > 0, path .. " is empty")
  return lines
end

-- Per-thread numbering: setup() runs in the main state once per thread before init().
local next_thread = 0
function M.setup(thread)
  next_thread = next_thread + 1
  thread:set("bench_thread", next_thread)
end

function M.seed_random()
  local seed = tonumber(M.env("HEARTH_BENCH_SEED", "1"))
  math.randomseed(seed * 7919 + (bench_thread or 0) * 104729)
  for _ = 1, 10 do math.random() end
end

-- The base path the server was addressed with on the wrk command line ("/fhir"), without a slash
-- at the end.
function M.base()
  local p = wrk.path or ""
  return (p:gsub("/+$", ""))
end

-- Writes wrk's own summary as one JSON object to $HEARTH_BENCH_RESULT. Latencies are microseconds.
function M.done(summary, latency, requests)
  local out = M.env("HEARTH_BENCH_RESULT")
  local secs = summary.duration / 1e6
  local e = summary.errors
  local f = assert(io.open(out, "w"))
  f:write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, secs, secs > 0 and summary.requests / secs or 0, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
  f:close()
end

return M
