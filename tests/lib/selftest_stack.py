# SPDX-License-Identifier: AGPL-3.0-or-later
"""Self-test of tests/lib/stack.py with what runs without fsc-sso:

1. RESP client against redis-server.
2. Redis master + replica + 3 sentinels; kill -9 the master; time until the
   sentinels name the replica; restart the old master and time until
   Sentinel turns it into a replica.
3. haproxy (ha/haproxy-sso.cfg.in) in front of two tiny python http.server
   backends answering /readyz 200: round robin; kill one backend and count
   failed requests (retries + redispatch should hide it); time to DOWN/UP.
4. ids-sim (if present): start it and GET /sim/stats.
5. Everything stopped: no child left.

Run: /usr/bin/python3 tests/lib/selftest_stack.py   (exit 0 = pass)
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack  # noqa: E402

BACKEND = r"""
import http.server, sys
NAME = sys.argv[2]
DROP = len(sys.argv) > 3 and sys.argv[3] == "drop"
class H(http.server.BaseHTTPRequestHandler):
    def reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if DROP and "drop" in self.path:   # crash mid-request: close, no answer
            self.close_connection = True
            return
        body = (NAME + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_DELETE = reply
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    print("  ok  " + msg)


def test_resp(tmp):
    print("== RESP client")
    r = stack.Redis(name="redis-resp", tmp=tmp)
    check(r.cli("SET", "k", "v\r\nx") == "OK", "SET with CRLF in value")
    check(r.cli("GET", "k") == "v\r\nx", "GET returns it")
    check(r.cli("GET", "missing") is None, "nil bulk -> None")
    check(r.cli("RPUSH", "l", "a", "b") == 2, "integer reply")
    check(r.cli("LRANGE", "l", 0, -1) == ["a", "b"], "array reply")
    r.cli("SET", "bin", b"\xff\x00")
    check(r.cli("GET", "bin") == b"\xff\x00", "non-UTF-8 bulk -> bytes")
    try:
        r.cli("INCR", "k")
        check(False, "error reply raises")
    except stack.RespError as e:
        check("ERR" in str(e), "error reply raises RespError (%s)" % e)
    t0 = time.monotonic()
    r.restart()
    check(r.cli("GET", "k") is None, "restart (%.2f s) comes back empty (no persistence)"
          % (time.monotonic() - t0))
    r.stop()


def test_sentinel(tmp):
    print("== Redis master + replica + 3 sentinels, failover")
    master = stack.Redis(name="redis-master", tmp=tmp)
    replica = stack.Redis(replica_of=master, name="redis-replica", tmp=tmp)
    sent = stack.Sentinels("fsc", master.port, n=3, tmp=tmp)
    t0 = time.monotonic()
    replica.wait_synced()
    sent.wait_ready(replicas=1)
    print("  sentinels ready after %.2f s (%s)" % (time.monotonic() - t0, sent.spec))
    check(sent.master_addr() == ("127.0.0.1", master.port), "master_addr() is the master")
    master.cli("SET", "session", "s1")
    master.cli("WAIT", 1, 1000)
    check(replica.cli("GET", "session") == "s1", "replica has the key")

    t0 = time.monotonic()
    master.kill(signal.SIGKILL)
    took = sent.wait_master(replica.port, timeout=20)
    print("  FAILOVER: new master named by sentinel %.2f s after kill -9 (runtime.md: 2.33 s)"
          % (time.monotonic() - t0))
    check(took < 10, "failover within 10 s")
    check(replica.role() == "master", "replica promoted (ROLE master)")
    check(replica.cli("GET", "session") == "s1", "data survived the failover")

    t0 = time.monotonic()
    master.start()
    role0 = master.role()
    stack.wait_until(lambda: master.role() == "slave", 40, 0.2, "old master demoted")
    print("  old master restarted as %s, converted to replica after %.2f s (runtime.md: ~10 s)"
          % (role0, time.monotonic() - t0))
    check(sent.master_addr()[1] == replica.port, "sentinels still name the new master")
    sent.stop()
    replica.stop()
    master.stop()


def test_haproxy(tmp):
    print("== haproxy (ha/haproxy-sso.cfg.in) in front of two backends")
    ports = [stack.free_port(), stack.free_port()]
    backends = []
    for name, port in zip("ab", ports):
        # a closes the connection without answering requests whose URL has
        # "drop" (an instance dying after the request was sent).
        p = stack.Proc("backend-" + name, [stack.PYTHON, "-c", BACKEND, str(port), name,
                                           "drop" if name == "a" else "-"],
                       tmp.file("backend-%s.log" % name), tmp=tmp).start()
        stack.wait_port(port, proc=p)
        backends.append(p)
    lb = stack.Haproxy(["http://127.0.0.1:%d" % p for p in ports], tmp=tmp)
    print("  waited %.2f s for a UP, %.2f s for b UP" % (lb.wait_up("a"), lb.wait_up("b")))

    seen = [stack.http("GET", lb.url + "/x")[2].decode().strip() for _ in range(6)]
    check(sorted(set(seen)) == ["a", "b"] and all(seen[i] != seen[i + 1] for i in range(5)),
          "round robin %s" % "".join(seen))
    status, hdrs, _ = stack.http("GET", lb.url + "/readyz")
    check(status == 200, "GET /readyz through haproxy 200")

    # empty-response: retried (on b) for idempotent requests only.
    def failures(method, path, n=10):
        body = {"handoff": "x"} if method == "POST" else None
        return sum(stack.http(method, lb.url + path, body=body)[0] != 200 for _ in range(n))
    f_get = failures("GET", "/v1/sessions/s1/token?drop")
    f_del = failures("DELETE", "/v1/sessions/s1?drop")
    f_post = failures("POST", "/v1/handoff?drop")
    f_cb = failures("GET", "/sso/callback?code=c&state=s&drop")
    print("  a drops the connection after the request was sent; failed of 10 each: "
          "GET token %d, DELETE session %d, POST handoff %d, GET callback %d"
          % (f_get, f_del, f_post, f_cb))
    check(f_get == 0 and f_del == 0, "idempotent GET/DELETE retried on the other server")
    check(f_post == 5 and f_cb == 5, "POST /v1/handoff and /sso/callback not retried (502)")

    t_kill = time.monotonic()
    backends[0].kill(signal.SIGKILL)
    results = {"GET": [0, 0], "POST": [0, 0]}      # [requests, failures]
    down_after = None
    while time.monotonic() - t_kill < 3.0:
        for method in ("GET", "POST"):
            body = {"handoff": "x"} if method == "POST" else None
            status, _, data = stack.http(method, lb.url + "/v1/handoff", body=body)
            results[method][0] += 1
            if status != 200 or data.strip() != b"b":
                results[method][1] += 1
        if down_after is None and lb.server_state()["a"]["op_state"] == 0:
            down_after = time.monotonic() - t_kill
        time.sleep(0.02)
    print("  backend a killed: marked DOWN after %s s"
          % ("%.2f" % down_after if down_after else "?"))
    for m, (n, f) in results.items():
        print("  %s during the 3 s after the kill: %d requests, %d failed" % (m, n, f))
    check(results["GET"][1] == 0 and results["POST"][1] == 0,
          "no failed request while a is dead (conn-failure retry + redispatch)")
    check(down_after is not None and down_after < 2.0, "a DOWN within 2 s")

    backends[0].start()
    t0 = time.monotonic()
    lb.wait_up("a")
    print("  backend a restarted: UP again after %.2f s" % (time.monotonic() - t0))
    seen = {stack.http("GET", lb.url + "/")[2].decode().strip() for _ in range(4)}
    check(seen == {"a", "b"}, "both serve again")

    check("retry-on conn-failure empty-response response-timeout 503" in open(lb.cfg).read(),
          "config has the retry policy")
    lb.stop()
    for b in backends:
        b.stop()


def test_ids_sim(tmp):
    print("== ids-sim")
    if not os.path.exists(stack.IDS_SIM):
        print("  skipped: %s not present" % stack.IDS_SIM)
        return
    ids = stack.IdsSim("fsc-connector", "s3cret", ["http://127.0.0.1:1/sso/callback"],
                       user="agent1@example.com", access_ttl=60, tmp=tmp)
    stats = ids.stats()
    print("  GET /sim/stats -> %s" % stats)
    check(isinstance(stats, dict), "stats is a JSON object")
    ids.fault(status=503, for_s=1)
    ids.clear_faults()
    ids.config(access_ttl=30)
    check(os.path.exists(ids.public_key_path), "public key written")
    # The authorize leg of a sign-in, as the browser does it.
    status, hdrs, _ = stack.http("GET", ids.authorize_url + "?" + stack.urllib.parse.urlencode({
        "client_id": "fsc-connector", "response_type": "code", "state": "st1",
        "redirect_uri": "http://127.0.0.1:1/sso/callback"}))
    check(status == 302 and "code=" in hdrs.get("location", "") and "state=st1" in hdrs["location"],
          "authorize auto-approves with a code")
    port = ids.port
    ids.restart()
    check(ids.port == port and ids.stats() is not None, "restart keeps the port")
    ids.stop()


def main():
    tmp = stack.TempDir(prefix="fsc-selftest-")
    print("temp dir %s" % tmp.path)
    t0 = time.monotonic()
    test_resp(tmp)
    test_sentinel(tmp)
    test_haproxy(tmp)
    test_ids_sim(tmp)
    procs = list(stack._REAPER.procs)
    stack.stop_all()
    left = [p.name for p in procs if p.alive()]
    check(not left, "every child stopped (%d started)" % len(procs))
    print("PASS in %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
