-- wrk: POST <origin>/auth/token, grant_type=client_credentials with private_key_jwt. Every request
-- carries its own pre-signed client assertion (a jti is accepted once), taken in order from
-- $HEARTH_BENCH_ASSERTIONS; thread k of n uses lines k, k+n, k+2n ... A thread that runs out wraps
-- around, and the replayed assertions then fail (401, counted as status errors): size the file
-- for the run (token_bench.sh does).
local common = dofile(os.getenv("HEARTH_BENCH_LUA_DIR") .. "/common.lua")
local requests = {}
local nextIndex = 1

setup = common.setup
done = common.done

function init(args)
  local lines = common.read_lines(common.env("HEARTH_BENCH_ASSERTIONS"))
  local threads = tonumber(common.env("HEARTH_BENCH_THREADS"))
  local scope = common.env("HEARTH_BENCH_SCOPE", "system/*.rs")
  for i = bench_thread, #lines, threads do
    local body = "grant_type=client_credentials&scope=" .. scope:gsub("/", "%%2F"):gsub("%*", "%%2A"):gsub(" ", "+") ..
                 "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" ..
                 "&client_assertion=" .. lines[i]
    requests[#requests + 1] = wrk.format("POST", "/auth/token",
                                         { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
  end
end

function request()
  local r = requests[nextIndex]
  nextIndex = nextIndex % #requests + 1
  return r
end
