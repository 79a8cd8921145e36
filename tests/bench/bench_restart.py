#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""fsc-connector benchmark: kill -9 of a connector holding N agents, and
how long the restarted process takes to have every one of them back
([server] session_key_file + [redis]: sessions resumed from Redis). Not
pass/fail; the figures are on the last line:

    agents=... login_all_s=... resume_all_s=... xmpp_back_s=... logouts=... old_tokens_ok=...

Redis, finesse-sim (nodes A and B, one prosody each, presence grace 60 s,
as Finesse) and one fsc-connector (log_level notice) through
tests/lib/stack.py, on loopback. N agents sign in (POST /api/v1/login over
--concurrency threads) and go READY. Then kill -9 of the connector's
process group (workers too) and a new process on the same address and
config; the clock starts at the kill:
  resume_all_s  every agent logged "session_resumed" by the new process
  xmpp_back_s   finesse-sim sees all N agents present (XMPP) again (after
                it first saw them go)
  logouts       agents Finesse signed out (must be 0: back inside 60 s)
  old_tokens_ok of --probe tokens issued by the killed process, how many
                the new one accepts (GET /api/v1/reason-codes -> 200)
Run with /usr/bin/python3 after building (build/connector/fsc-connector).
"""
import argparse
import concurrent.futures
import os
import random
import resource
import secrets
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import stack  # noqa: E402


def say(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--probe", type=int, default=200, help="old tokens tried after the restart")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    n = args.agents
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n + 4096))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    tmp = stack.TempDir(prefix="fsc-bench-restart-")
    say("temp dir %s" % tmp.path)
    redis = stack.Redis(name="redis", tmp=tmp)
    fin = stack.FinesseSim(agents=n, presence_grace_s=60, tmp=tmp)
    key = tmp.write("secrets/session.key", secrets.token_bytes(32), 0o600)
    port = stack.free_port()
    extra = {"server": {"session_key_file": key},
             "redis": {"url": redis.url, "prefix": "fsc:"},
             "finesse": {"ping_interval_s": "10"}}

    def connector(name):
        return stack.Connector(fin, port=port, name=name, log_level="notice", tmp=tmp,
                               extra=extra)

    conn = connector("connector-1")
    agents = [str(1001 + i) for i in range(n)]
    tokens = {}

    def sign_in(a):
        for _ in range(5):
            status, body = conn.login(a, "pw" + a, a)
            if status == 200:
                st2, _ = conn.api("POST", "/api/v1/state", body["token"], {"state": "READY"})
                return a, body["token"] if st2 == 202 else None
            time.sleep(0.5)
        return a, None

    say("sign-in: %d agents over %d threads" % (n, args.concurrency))
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as ex:
        for a, tok in ex.map(sign_in, agents):
            if tok is None:
                sys.exit("sign-in of %s failed" % a)
            tokens[a] = tok
    stack.wait_until(lambda: fin.stats()["nodes"]["A"]["present"] >= n, args.timeout, 0.5,
                     "all agents present at Finesse")
    login_all_s = time.time() - t0
    say("%d agents signed in and READY in %.1f s" % (n, login_all_s))
    time.sleep(2.0)

    # ---- kill -9 and restart
    conn.kill()
    t_kill = time.time()
    # the XMPP sessions are gone (prosody reports presence to the sim)
    stack.wait_until(lambda: fin.stats()["nodes"]["A"]["present"] < n, 10, 0.05,
                     "the killed process's XMPP sessions gone")
    low = fin.stats()["nodes"]["A"]["present"]
    say("XMPP sessions at Finesse after the kill: %d of %d (%.2f s)" % (low, n,
                                                                       time.time() - t_kill))
    conn = connector("connector-2")
    say("killed; new process up after %.2f s" % (time.time() - t_kill))
    resumed_at = xmpp_at = None
    deadline = t_kill + args.timeout
    while time.time() < deadline and (resumed_at is None or xmpp_at is None):
        if resumed_at is None and conn.log_text().count("event=session_resumed") >= n:
            resumed_at = time.time() - t_kill
        if xmpp_at is None and fin.stats()["nodes"]["A"]["present"] >= n:
            xmpp_at = time.time() - t_kill
        time.sleep(0.2)
    say("resumed: %s s, XMPP back: %s s" % (resumed_at, xmpp_at))
    probe = random.sample(agents, min(args.probe, n))

    def try_token(a):
        for _ in range(20):
            status, _ = conn.api("GET", "/api/v1/reason-codes?category=NOT_READY", tokens[a])
            if status == 200:
                return True
            if status != 503:
                return False
            time.sleep(0.5)
        return False
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        ok = sum(1 for r in ex.map(try_token, probe) if r)
    logouts = fin.stats()["counters"].get("forced_logouts", 0)
    states = {}
    for a in random.sample(agents, min(200, n)):
        s = fin.agent(a)["state"]
        states[s] = states.get(s, 0) + 1
    say("states of 200 agents at Finesse: %r; forced logouts %d; old tokens ok %d/%d"
        % (states, logouts, ok, len(probe)))
    conn.stop()
    fin.stop()
    redis.stop()
    fmt = lambda v: "%.2f" % v if v is not None else "nan"  # noqa: E731
    print("agents=%d login_all_s=%.1f resume_all_s=%s xmpp_back_s=%s logouts=%d "
          "old_tokens_ok=%d/%d" % (n, login_all_s, fmt(resumed_at), fmt(xmpp_at), logouts,
                                   ok, len(probe)))


if __name__ == "__main__":
    main()
