-- SPDX-License-Identifier: AGPL-3.0-or-later
-- token.lua - wrk script for bench_sso.py: GET /v1/sessions/{id}/token with
-- the service key, rotating through the session ids of a file.
--
--   wrk -t T -c C -d 10s --latency -s token.lua URL -- SESSIONS_FILE KEYFILE T
--
-- Every thread walks the whole list from its own starting point (thread i
-- starts at i/T of the way), so concurrent requests hit different sessions.
-- The requests are built once in init(); no response() hook, so wrk does not
-- hand bodies to Lua and the client stays cheap.

local nthreads = 0
function setup(thread)
    thread:set("tid", nthreads)
    nthreads = nthreads + 1
end

local reqs = {}
local n, i = 0, 0

function init(args)
    local f = assert(io.open(args[2], "r"))
    local key = f:read("*l"):gsub("%s+$", "")
    f:close()
    local T = tonumber(args[3]) or 1
    local hdrs = { ["Authorization"] = "Bearer " .. key }
    for sid in io.lines(args[1]) do
        if sid ~= "" then
            reqs[#reqs + 1] = wrk.format("GET", "/v1/sessions/" .. sid .. "/token", hdrs)
        end
    end
    n = #reqs
    assert(n > 0, "no session ids in " .. args[1])
    i = math.floor(n * tonumber(tid) / T)
end

function request()
    i = i + 1
    if i > n then i = 1 end
    return reqs[i]
end
