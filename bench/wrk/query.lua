-- wrk script of the search benchmark (bench/search_bench.sh): GET <base>/<template> with the
-- template's {1}, {2}, ... replaced by the percent-encoded fields of a line drawn at random from
-- $HEARTH_BENCH_VALUES (tab-separated; search_bench.sh writes these files from load.py's ids file).
--
--   HEARTH_BENCH_LUA_DIR=bench/lua HEARTH_BENCH_RESULT=/tmp/r.json \
--   HEARTH_BENCH_VALUES=values/family.tsv HEARTH_BENCH_TEMPLATE='Patient?family={1}' \
--     wrk -t2 -c16 -d15s --latency -s bench/wrk/query.lua http://127.0.0.1:8080/fhir
--
-- Requests are pre-formatted in init() (up to 20,000 per thread, each from a random line), so the
-- client spends its CPU sending, not building strings. Per-thread seeding and the JSON summary that
-- done() writes to $HEARTH_BENCH_RESULT come from bench/lua/common.lua.
local common = dofile(os.getenv("HEARTH_BENCH_LUA_DIR") .. "/common.lua")
local requests = {}

setup = common.setup
done = common.done

-- Percent-encodes everything but RFC 3986 unreserved characters, byte by byte (UTF-8 stays
-- UTF-8): "García" -> Garc%C3%ADa, "sys|val" -> sys%7Cval. Same rule as jq's @uri.
local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function split_tabs(line)
  local fields = {}
  for f in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = f end
  return fields
end

function init(args)
  common.seed_random()
  local template = common.env("HEARTH_BENCH_TEMPLATE")
  local lines = common.read_lines(common.env("HEARTH_BENCH_VALUES"))
  local base = common.base()
  local n = math.min(math.max(#lines, 1000), 20000)
  for i = 1, n do
    local f = split_tabs(lines[math.random(#lines)])
    local path = template:gsub("{(%d+)}", function(k)
      return enc(assert(f[tonumber(k)], "values line has no field " .. k))
    end)
    requests[i] = wrk.format("GET", base .. "/" .. path, { ["Accept"] = "application/fhir+json" })
  end
end

function request()
  return requests[math.random(#requests)]
end
