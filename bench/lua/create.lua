-- wrk: POST <base>/Patient with bodies from $HEARTH_BENCH_BODIES (NDJSON, no ids), cycling from a
-- per-thread offset. Every request creates a new resource (the server assigns the id); the default
-- Prefer (return=representation) is used, so the response carries the stored resource.
local common = dofile(os.getenv("HEARTH_BENCH_LUA_DIR") .. "/common.lua")
local requests = {}
local cursor = 0

setup = common.setup
done = common.done

function init(args)
  common.seed_random()
  local bodies = common.read_lines(common.env("HEARTH_BENCH_BODIES"), 2000)
  local path = common.base() .. "/Patient"
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", path, {
      ["Content-Type"] = "application/fhir+json",
      ["Accept"] = "application/fhir+json",
    }, body)
  end
  cursor = math.random(#requests) - 1
end

function request()
  cursor = cursor % #requests + 1
  return requests[cursor]
end
