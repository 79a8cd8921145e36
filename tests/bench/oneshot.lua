-- SPDX-License-Identifier: AGPL-3.0-or-later
-- oneshot.lua - wrk script for bench_sso.py: send every line of a list
-- exactly once, spread over wrk's threads, and save what each answer yields.
--
--   wrk -t T -c C -d 600s --timeout 30s -s oneshot.lua URL -- MODE IN OUTPREFIX T [KEYFILE]
--
-- Thread i (0-based) takes lines i+1, i+1+T, i+1+2T, ... of IN. MODE says
-- what a line is and what the answer gives:
--   get-location  line = path+query to GET; expects 302; saves the Location
--                 (path+query only)
--   get-handoff   line = path+query to GET (/sso/callback?...); expects 302;
--                 saves handoff= from the Location
--   post-handoff  line = handoff code; POST /v1/handoff with the service key
--                 in KEYFILE; expects 200; saves "session" from the JSON
-- Once a thread's lines are all sent, its connections send nothing more
-- except a filler GET of FILLER_PATH every 5 s (wrk cannot idle a
-- connection); fillers answer 404 and are not counted (so a line must not
-- answer 404). When a thread has an answer for each of its lines it writes
-- OUTPREFIX.<i> (one value per line) and OUTPREFIX.<i>.done ("lines ok
-- failed t_first t_last", CLOCK_MONOTONIC like Python's time.monotonic())
-- and stops; the driver then ends wrk with SIGINT. A line whose request dies (socket
-- error, timeout) never gets an answer: the driver gives up at its deadline.
-- ONESHOT_COOKIE (environment), when set, goes as the Cookie header of
-- every GET: one browser's sign-in binding cookie (fsc-sso reuses the value
-- a browser already holds), so the callbacks come from "the same browser".

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local FILLER_PATH = "/bench-filler-not-found"

-- main state: number the threads
local nthreads = 0
function setup(thread)
    thread:set("tid", nthreads)
    nthreads = nthreads + 1
end

local mode, outprefix, key
local reqs = {}           -- prebuilt request strings of this thread
local nreq, sent = 0, 0
local answered, ok, failed = 0, 0, 0
local results = {}
local t_first, t_last
local filler
local finished = false

local function path_of(url)
    -- "http://host:port/p?q" -> "/p?q"; a relative Location stays as is
    local p = url:match("^%a[%w+.-]*://[^/]*(/.*)$")
    return p or url
end

local function unescape(s)
    return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

function init(args)
    mode, outprefix = args[1], args[3]
    local infile = args[2]
    local T = tonumber(args[4])
    if args[5] then
        local f = assert(io.open(args[5], "r"))
        key = f:read("*l"):gsub("%s+$", "")
        f:close()
    end
    local me = tonumber(tid)
    local n = 0
    for line in io.lines(infile) do
        if line ~= "" then
            if n % T == me then
                if mode == "post-handoff" then
                    reqs[#reqs + 1] = wrk.format("POST", "/v1/handoff",
                        { ["Authorization"] = "Bearer " .. key,
                          ["Content-Type"] = "application/json" },
                        '{"handoff":"' .. line .. '"}')
                else
                    local cookie = os.getenv("ONESHOT_COOKIE")
                    reqs[#reqs + 1] = wrk.format("GET", line,
                        cookie and { ["Cookie"] = cookie } or nil)
                end
            end
            n = n + 1
        end
    end
    nreq = #reqs
    filler = wrk.format("GET", FILLER_PATH)
    if nreq == 0 then
        t_first, t_last = now(), now()
    end
end

function delay()
    if sent >= nreq then
        return 5000
    end
    return 0
end

local function finish()
    if finished then return end
    finished = true
    local f = assert(io.open(outprefix .. "." .. tid, "w"))
    for _, v in ipairs(results) do f:write(v, "\n") end
    f:close()
    f = assert(io.open(outprefix .. "." .. tid .. ".done", "w"))
    f:write(string.format("%d %d %d %.6f %.6f\n", nreq, ok, failed,
        t_first or 0, t_last or t_first or 0))
    f:close()
    wrk.thread:stop()
end

-- wrk calls request() once on thread 0 before it starts, only to check the
-- request's format: that call must not use up a line.
local verify_pending = nil

function request()
    if verify_pending == nil then verify_pending = (tonumber(tid) == 0) end
    if verify_pending then
        verify_pending = false
        return reqs[1] or filler
    end
    if sent < nreq then
        if t_first == nil then t_first = now() end
        sent = sent + 1
        return reqs[sent]
    end
    if nreq == 0 then finish() end
    return filler
end

function response(status, headers, body)
    if status == 404 then
        return -- a filler
    end
    answered = answered + 1
    local value
    if mode == "post-handoff" then
        if status == 200 and body then
            value = body:match('"session"%s*:%s*"([^"]+)"')
        end
    elseif status == 302 then
        local loc = headers["Location"] or headers["location"]
        if loc then
            if mode == "get-handoff" then
                local c = loc:match("[?&]handoff=([^&#]+)")
                value = c and unescape(c)
            else
                value = path_of(loc)
            end
        end
    end
    if value then
        ok = ok + 1
        results[#results + 1] = value
    else
        failed = failed + 1
        if failed <= 3 then
            io.stderr:write(string.format("oneshot[%s] %s: status %d %s\n", tid, mode,
                status, (body or ""):sub(1, 200)))
        end
    end
    t_last = now()
    if answered >= nreq then
        finish()
    end
end

function done(summary, latency, requests)
end
