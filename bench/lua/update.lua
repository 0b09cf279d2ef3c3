-- wrk: PUT <base>/Patient/<id> (no If-Match) to ids drawn uniformly at random from
-- $HEARTH_BENCH_IDS, with a body from $HEARTH_BENCH_BODIES into which the id is spliced. The body
-- lines must start with {"resourceType":"Patient", (hearth-bench-load generate guarantees it).
local common = dofile(os.getenv("HEARTH_BENCH_LUA_DIR") .. "/common.lua")
local PREFIX = '{"resourceType":"Patient",'
local ids, rests, base

setup = common.setup
done = common.done

function init(args)
  common.seed_random()
  ids = common.read_lines(common.env("HEARTH_BENCH_IDS"))
  rests = {}
  for i, body in ipairs(common.read_lines(common.env("HEARTH_BENCH_BODIES"), 1000)) do
    assert(body:sub(1, #PREFIX) == PREFIX, "body line " .. i .. " lacks the Patient prefix")
    rests[i] = body:sub(#PREFIX + 1)
  end
  base = common.base() .. "/Patient/"
end

function request()
  local id = ids[math.random(#ids)]
  local body = PREFIX .. '"id":"' .. id .. '",' .. rests[math.random(#rests)]
  return wrk.format("PUT", base .. id, {
    ["Content-Type"] = "application/fhir+json",
    ["Accept"] = "application/fhir+json",
  }, body)
end
