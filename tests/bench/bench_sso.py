#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""fsc-sso benchmark: token fetch throughput and latency, RSS, login
completion rate, Redis bytes per session. Not pass/fail; the figures are on
the last line:

    rps=... p99_ms=... rss_mb=... logins_per_s=... redis_bytes_per_session=... non2xx=... sessions=...

One Redis, ids-sim and ONE fsc-sso instance (no HAProxy) on loopback, from
tests/lib/stack.py. The load comes from wrk (Lua scripts oneshot.lua and
token.lua next to this file); Python only drives and measures.

  1. N sign-ins are prepared, untimed: GET /sso/login (fsc-sso) and GET the
     authorize URL (ids-sim), each list sent once by wrk; that gives the N
     callback URLs (written to callbacks.<batch> in the temp dir).
  2. Timed: wrk sends each callback exactly once; fsc-sso consumes the state,
     exchanges the code at ids-sim, stores the session and answers 302 with
     handoff=. logins_per_s = good callbacks / (last answer - first request).
  3. The handoff codes are redeemed (POST /v1/handoff, untimed) -> N sessions.
     redis_bytes_per_session = (used_memory now - before the first sign-in) / N.
  4. Timed: wrk -t T -c C -d D --latency on GET /v1/sessions/{id}/token,
     rotating through the N sessions -> rps, p99_ms, non-2xx count.
  5. fsc-sso VmHWM (peak RSS) -> rss_mb; VmRSS is printed too.

Authorization codes (ids-sim) and handoff codes (fsc-sso) live 60 s, so the
sign-ins are done in batches (--batch, default 5000): each batch is
prepared, called back and redeemed before the next one starts.

Run with /usr/bin/python3 after building (build/sso-server/fsc-sso).
"""

import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import stack  # noqa: E402

WRK = os.environ.get("WRK", "/usr/bin/wrk")
ONESHOT_LUA = os.path.join(HERE, "oneshot.lua")
TOKEN_LUA = os.path.join(HERE, "token.lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# CPU accounting from /proc (utime + stime of a process and all its threads)

def proc_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])     # utime, stime
    except (OSError, IndexError, ValueError):
        return None


def system_busy():
    """(busy ticks, total ticks) over all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


class CpuMeter:
    """%CPU (100 = one core) of named processes between start() and stop()."""

    def __init__(self, pids):
        self.pids = dict(pids)       # name -> pid

    def add(self, name, pid):
        self.pids[name] = pid

    def start(self):
        self.t0 = time.monotonic()
        self.sys0 = system_busy()
        self.ticks0 = {n: proc_ticks(p) for n, p in self.pids.items()}
        return self

    def stop(self):
        dt = time.monotonic() - self.t0
        busy, total = system_busy()
        out = {}
        for n, p in self.pids.items():
            t1, t0 = proc_ticks(p), self.ticks0.get(n)
            if t1 is not None and t0 is not None and dt > 0:
                out[n] = 100.0 * (t1 - t0) / CLK_TCK / dt
        dtot = total - self.sys0[1]
        out["(machine busy, % of all cores)"] = (100.0 * (busy - self.sys0[0]) / dtot
                                                 if dtot > 0 else 0.0)
        return out


def fmt_cpu(cpu):
    return ", ".join("%s %.0f%%" % (n, v) for n, v in sorted(cpu.items(), key=lambda kv: -kv[1]))


# --------------------------------------------------------------------------
# wrk runs

# One browser's sign-in binding cookie, sent with every GET (sign-in starts
# and callbacks alike): fsc-sso binds each pending sign-in to the cookie's
# value and refuses a callback without it (a real browser reuses its value
# for every sign-in it starts).
BROWSER_COOKIE = "__Host-fsc_login=" + "b" * 43


def run_oneshot(tmp, name, url, mode, lines, threads, connections, keyfile=None,
                meter=None, deadline_s=120.0):
    """Send each line once with wrk (oneshot.lua). Returns (values, info):
    values in no particular order; info: lines, ok, failed, elapsed (first
    request to last answer, s), cpu (if meter)."""
    threads = max(1, min(threads, len(lines)))
    connections = max(threads, connections)
    infile = tmp.write("%s.in" % name, "\n".join(lines) + "\n")
    outprefix = os.path.join(tmp.path, "%s.out" % name)
    for f in glob.glob(outprefix + ".*"):
        os.unlink(f)
    argv = [WRK, "-t", str(threads), "-c", str(connections), "-d", "3600s", "--timeout", "30s",
            "-s", ONESHOT_LUA, url, "--", mode, infile, outprefix, str(threads)]
    if keyfile:
        argv.append(keyfile)
    log_path = os.path.join(tmp.path, "%s.wrk.log" % name)
    env = dict(os.environ, ONESHOT_COOKIE=BROWSER_COOKIE)
    with open(log_path, "wb") as logf:
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                             preexec_fn=os.setsid, env=env)
    try:
        if meter:
            meter.add("wrk", p.pid)
            meter.start()
        done_files = ["%s.%d.done" % (outprefix, i) for i in range(threads)]
        end = time.monotonic() + deadline_s
        while True:
            if all(os.path.exists(f) for f in done_files):
                break
            if p.poll() is not None:
                break
            if time.monotonic() > end:
                say("%s: deadline (%.0f s) reached, some requests got no answer" % (name, deadline_s))
                break
            time.sleep(0.02)
        cpu = meter.stop() if meter else None
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    values, nlines, ok, failed, t_first, t_last = [], 0, 0, 0, [], []
    for i in range(threads):
        try:
            with open("%s.%d" % (outprefix, i)) as f:
                values += [l.strip() for l in f if l.strip()]
            with open("%s.%d.done" % (outprefix, i)) as f:
                n, o, fl, a, b = f.read().split()
            nlines, ok, failed = nlines + int(n), ok + int(o), failed + int(fl)
            if int(n) > 0:
                t_first.append(float(a))
                t_last.append(float(b))
        except OSError:
            pass
    with open(log_path, "rb") as f:
        wrk_out = f.read().decode("utf-8", "replace")
    for l in wrk_out.splitlines():
        if l.startswith("oneshot["):
            say("%s: %s" % (name, l))
    elapsed = (max(t_last) - min(t_first)) if t_first else 0.0
    return values, {"lines": len(lines), "ok": ok, "failed": failed,
                    "missing": len(lines) - ok - failed, "elapsed": elapsed, "cpu": cpu,
                    "wrk": wrk_out}


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def wrk_ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError("wrk latency %r" % text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out):
    r = {}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    r["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M)
        if m:
            r["p%s_ms" % pct] = wrk_ms(m.group(1))
    m = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    if m:
        r["avg_ms"], r["max_ms"] = wrk_ms(m.group(1)), wrk_ms(m.group(3))
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(\w+)", out, re.M)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return r


def run_token_phase(tmp, url, sessions_file, keyfile, threads, connections, duration, meter):
    argv = [WRK, "-t", str(threads), "-c", str(connections), "-d", "%ds" % duration,
            "--timeout", "5s", "--latency", "-s", TOKEN_LUA, url, "--",
            sessions_file, keyfile, str(threads)]
    log_path = os.path.join(tmp.path, "token.wrk.log")
    cpu = {}
    with open(log_path, "wb") as logf:
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, preexec_fn=os.setsid)
    try:
        meter.add("wrk", p.pid)
        # the CPU window leaves out the first and last second (ramp)
        margin = 1.0 if duration >= 4 else 0.0
        time.sleep(margin)
        meter.start()
        time.sleep(max(0.5, duration - 2 * margin))
        cpu = meter.stop()
        p.wait(duration + 60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    with open(log_path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    return out, cpu


# --------------------------------------------------------------------------
# Redis and process figures

def redis_used_memory(redis):
    return int(redis.info("memory")["used_memory"])


def redis_keys_by_kind(redis, prefix="fsc:sso:"):
    """{"sess": n, "state": n, ...} counted with SCAN; and one sess key."""
    counts, sample, cursor = {}, None, "0"
    with stack.RespClient(redis.port, timeout=10.0) as c:
        while True:
            cursor, keys = c.call("SCAN", cursor, "MATCH", prefix + "*", "COUNT", 1000)
            for k in keys:
                if isinstance(k, bytes):
                    k = k.decode("latin-1")
                kind = k[len(prefix):].split(":", 1)[0]
                counts[kind] = counts.get(kind, 0) + 1
                if kind == "sess" and sample is None:
                    sample = k
            if cursor == "0":
                break
    return counts, sample


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            k, _, v = l.partition(":")
            out[k] = v.strip()
    return out


def kb_to_mb(v):
    return int(v.split()[0]) / 1024.0


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=10000, help="sessions in Redis (N)")
    ap.add_argument("--duration", type=int, default=10, help="token phase seconds")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (token phase)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--login-connections", type=int, default=None,
                    help="wrk connections for the sign-in phases (default: --connections)")
    ap.add_argument("--batch", type=int, default=5000,
                    help="sign-ins prepared, called back and redeemed at a time (codes live 60 s)")
    ap.add_argument("--redis-pool-size", type=int, default=None,
                    help="fsc-sso [redis] pool_size (default: the daemon's default)")
    args = ap.parse_args()
    n_total = args.sessions
    lconn = args.login_connections or args.connections

    stack.SsoInstance.check_binary()
    if not os.access(WRK, os.X_OK):
        sys.exit("wrk not found at %s (apt-get install wrk, or set WRK)" % WRK)

    tmp = stack.TempDir(prefix="fsc-bench-")
    say("temp dir %s" % tmp.path)
    redis = stack.Redis(name="redis", tmp=tmp)
    secrets = stack.SsoSecrets(tmp=tmp)
    sso_port = stack.free_port()
    sso_url = "http://%s:%d" % (stack.HOST, sso_port)
    return_to = stack.Stack.RETURN_TO
    ids = stack.IdsSim(stack.Stack.CLIENT_ID, secrets.client_secret, [sso_url + "/sso/callback"],
                       user="agent1@example.com", access_ttl=3600, refresh_ttl=36000, tmp=tmp)
    extra = {"server": {"log_level": "warn"}}
    if args.redis_pool_size:
        extra["redis"] = {"pool_size": str(args.redis_pool_size)}
    sso = stack.SsoInstance("a", redis, ids, public_url=sso_url, allowed_return_to=[return_to],
                            secrets=secrets, port=sso_port, log_level="warn",
                            extra=extra, tmp=tmp)
    sso.wait_ready()
    pids = {"fsc-sso": sso.proc.pid, "ids-sim": ids.proc.pid, "redis": redis.proc.pid}
    keyfile = secrets.service_key_file
    client = stack.SsoClient(sso_url, secrets.service_key)

    # Warm-up: one whole cycle, so Redis has its scripts cached and fsc-sso its
    # connection pool, before the memory baseline.
    code = stack.login_flow(sso_url, return_to)
    st, obj = client.handoff(code)
    assert st == 200, (st, obj)
    st, tok = client.token(obj["session"])
    assert st == 200, (st, tok)
    client.logout(obj["session"])
    mem0 = redis_used_memory(redis)
    keys0 = redis.cli("DBSIZE")
    rss0 = proc_status(sso.proc.pid)
    say("baseline: redis used_memory=%d keys=%d; fsc-sso VmRSS=%s" % (mem0, keys0, rss0["VmRSS"]))

    # ---- sign-ins, in batches
    sessions = []
    cb_ok = cb_failed = cb_missing = 0
    cb_elapsed = 0.0
    cb_cpu = []
    prep = {"login": [0.0, 0], "authorize": [0.0, 0], "handoff": [0.0, 0]}
    b = 0
    while len(sessions) < n_total:
        want = min(args.batch, n_total - len(sessions))
        b += 1
        logins = ["/sso/login?" + urllib.parse.urlencode(
            {"return_to": return_to, "login_hint": "agent%05d@example.com" % (len(sessions) + i)})
            for i in range(want)]
        t0 = time.monotonic()
        authorize, info = run_oneshot(tmp, "login.%d" % b, sso_url, "get-location", logins,
                                      args.threads, lconn)
        prep["login"][0] += time.monotonic() - t0
        prep["login"][1] += len(authorize)
        if len(authorize) != want:
            say("batch %d: /sso/login gave %d of %d redirects (%s)" % (b, len(authorize), want, info))
        t0 = time.monotonic()
        callbacks, info = run_oneshot(tmp, "authorize.%d" % b, ids.url, "get-location", authorize,
                                      args.threads, lconn)
        prep["authorize"][0] += time.monotonic() - t0
        prep["authorize"][1] += len(callbacks)
        tmp.write("callbacks.%d" % b, "\n".join(callbacks) + "\n")
        meter = CpuMeter(pids)
        handoffs, info = run_oneshot(tmp, "callback.%d" % b, sso_url, "get-handoff", callbacks,
                                     args.threads, lconn, meter=meter)
        cb_ok += info["ok"]
        cb_failed += info["failed"]
        cb_missing += info["missing"]
        cb_elapsed += info["elapsed"]
        cb_cpu.append(info["cpu"])
        say("batch %d: %d callbacks -> %d handoffs in %.2f s (%.0f/s); CPU: %s"
            % (b, len(callbacks), info["ok"], info["elapsed"],
               info["ok"] / info["elapsed"] if info["elapsed"] else 0, fmt_cpu(info["cpu"])))
        t0 = time.monotonic()
        got, info = run_oneshot(tmp, "handoff.%d" % b, sso_url, "post-handoff", handoffs,
                                args.threads, lconn, keyfile=keyfile)
        prep["handoff"][0] += time.monotonic() - t0
        prep["handoff"][1] += len(got)
        sessions += got
        if not got:
            stack.mark_failed()
            sys.exit("batch %d: no session came out of it; see the logs in %s" % (b, tmp.path))
    sessions = sessions[:n_total]
    n = len(sessions)
    logins_per_s = cb_ok / cb_elapsed if cb_elapsed > 0 else 0.0
    for k, (t, c) in prep.items():
        say("untimed %s: %d in %.1f s (%.0f/s, with wrk start/stop)" % (k, c, t, c / t if t else 0))

    # ---- Redis memory
    mem1 = redis_used_memory(redis)
    keys1 = redis.cli("DBSIZE")
    kinds, sample = redis_keys_by_kind(redis)
    sample_usage = redis.cli("MEMORY", "USAGE", sample, "SAMPLES", "0") if sample else None
    sample_len = redis.cli("STRLEN", sample) if sample else None
    bytes_per_session = (mem1 - mem0) / n if n else 0.0
    sessions_file = tmp.write("sessions", "\n".join(sessions) + "\n")
    rss1 = proc_status(sso.proc.pid)

    # ---- token phase
    say("token phase: wrk -t%d -c%d -d%ds over %d sessions"
        % (args.threads, args.connections, args.duration, n))
    ids.reset_stats()
    redis.cli("CONFIG", "RESETSTAT")
    meter = CpuMeter(pids)
    out, tok_cpu = run_token_phase(tmp, sso_url, sessions_file, keyfile, args.threads,
                                   args.connections, args.duration, meter)
    w = parse_wrk(out)
    st2 = proc_status(sso.proc.pid)
    ids_stats = ids.stats()
    cmdstats = {}
    for k, v in redis.info("commandstats").items():
        if k.startswith("cmdstat_") and not k.startswith(("cmdstat_info", "cmdstat_config")):
            cmdstats[k[8:]] = int(dict(kv.split("=") for kv in v.split(","))["calls"])
    if "p99_ms" not in w:
        stack.mark_failed()
        sys.stderr.write(out)
        sys.exit("could not parse wrk's output")

    # ---- summary
    def p(s=""):
        print(s)
    p("fsc-sso benchmark, %s, %d CPUs, one instance, no HAProxy" % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count()))
    p("sign-in completion (GET /sso/callback incl. code exchange at ids-sim), %d connections:" % lconn)
    p("  %d ok, %d failed, %d unanswered in %.2f s -> %.0f logins/s" % (cb_ok, cb_failed, cb_missing,
                                                                      cb_elapsed, logins_per_s))
    for i, c in enumerate(cb_cpu, 1):
        p("  CPU during callbacks (batch %d): %s" % (i, fmt_cpu(c)))
    p("Redis: used_memory %d -> %d bytes, keys %d -> %d, by kind %s" % (mem0, mem1, keys0, keys1, kinds))
    p("  %.0f bytes per session (delta / %d); one session key: MEMORY USAGE %s bytes, value %s bytes"
      % (bytes_per_session, n, sample_usage, sample_len))
    p("token fetch (GET /v1/sessions/{id}/token), wrk -t%d -c%d -d%ds:" % (args.threads, args.connections, args.duration))
    p("  %.0f requests/s, %s requests; latency avg %.2f ms p50 %.2f p90 %.2f p99 %.2f max %.2f ms"
      % (w["rps"], w.get("requests"), w.get("avg_ms", 0), w.get("p50_ms", 0), w.get("p90_ms", 0),
         w["p99_ms"], w.get("max_ms", 0)))
    p("  non-2xx/3xx %d, socket errors %d; ids-sim token requests during the run: %d (refreshes %d)"
      % (w["non2xx"], w["socket_errors"], ids_stats.get("token_requests", 0),
         ids_stats.get("grants", {}).get("refresh_token", 0)))
    p("  CPU (steady state): %s" % fmt_cpu(tok_cpu))
    if w.get("requests"):
        p("  Redis commands per token request: %s" % ", ".join(
            "%s %.2f" % (c, n_ / w["requests"]) for c, n_ in sorted(cmdstats.items())))
    p("fsc-sso memory: VmRSS %s at start, %s after sign-ins, %s after token run; VmHWM (peak) %s; threads %s"
      % (rss0["VmRSS"], rss1["VmRSS"], st2["VmRSS"], st2["VmHWM"], st2.get("Threads")))
    p("rps=%d p99_ms=%.2f rss_mb=%.1f logins_per_s=%d redis_bytes_per_session=%d non2xx=%d sessions=%d"
      % (round(w["rps"]), w["p99_ms"], kb_to_mb(st2["VmHWM"]), round(logins_per_s),
         round(bytes_per_session), w["non2xx"] + w["socket_errors"], n))
    sys.stdout.flush()
    stack.stop_all()


if __name__ == "__main__":
    main()
