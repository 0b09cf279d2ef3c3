-- wrk: GET <base>/Patient/<id> for ids drawn uniformly at random from $HEARTH_BENCH_IDS.
-- Requests are pre-formatted in init() (at most 50,000 per thread) so the client spends its CPU
-- sending, not building strings. $HEARTH_BENCH_AUTH, when set, is sent as the Authorization header
-- (bench/auth_bench.sh: authenticated reads).
local common = dofile(os.getenv("HEARTH_BENCH_LUA_DIR") .. "/common.lua")
local requests = {}

setup = common.setup
done = common.done

function init(args)
  common.seed_random()
  local ids = common.read_lines(common.env("HEARTH_BENCH_IDS"))
  local base = common.base()
  local n = math.min(#ids, 50000)
  local headers = { ["Accept"] = "application/fhir+json" }
  local auth = os.getenv("HEARTH_BENCH_AUTH")
  if auth ~= nil and auth ~= "" then headers["Authorization"] = auth end
  for i = 1, n do
    local id = (#ids > n) and ids[math.random(#ids)] or ids[i]
    requests[i] = wrk.format("GET", base .. "/Patient/" .. id, headers)
  end
end

function request()
  return requests[math.random(#requests)]
end
