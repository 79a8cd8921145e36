# SPDX-License-Identifier: AGPL-3.0-or-later
"""A flood of sign-in starts from one address cannot fill Redis, and
sign-ins from other addresses keep working meanwhile. Each GET /sso/login
stores a pending sign-in for [session] state_ttl_s; Redis runs with
noeviction, so a full Redis stops every sign-in, token refresh and the
connector's outbox. Loopback addresses are the clients (127.0.0.2 floods,
127.0.0.3 signs in), fsc-sso A and B behind the shipped HAProxy frontend
rules with the shipped rate (ha/haproxy-sso.cfg), fsc-sso with its own
default [login] starts_per_minute, and trusted_proxies = 127.0.0.1.

1. caps: return_to over 1024 characters, login_hint over 128: 400, nothing
   stored; at the caps: stored, one record under 2 KB;
2. 2000 starts from 127.0.0.2 through HAProxy, the biggest allowed, while
   127.0.0.3 signs in through HAProxy: the pending records rise by at most
   what the shipped rate lets one address store (30 at the caps, their
   MEMORY USAGE summed), Redis used_memory by that and 1 MB of noise
   (without the limits the flood adds 3.4 MB); the rest 429; 127.0.0.3's
   sign-in completes (handoff redeemed);
3. the same straight at instance A (past HAProxy) from 127.0.0.4, writing
   X-Forwarded-For itself: fsc-sso's own limit (30 at once, then one per
   2 s while the flood lasts) holds, by address; 127.0.0.5 signs in on A
   meanwhile."""
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

FLOOD = 2000
DAEMON_RATE = 30   # fsc-sso's default [login] starts_per_minute
# used_memory moves by itself too: the other address's sign-in (a session),
# fsc-sso's connection pool, the allocator. Without the limits the flood
# alone would add FLOOD x ~1.7 KB = 3.4 MB.
NOISE = 1024 * 1024


def used_memory(redis):
    info = redis.cli("INFO", "memory")
    return int(next(l.split(":")[1] for l in info.splitlines() if l.startswith("used_memory:")))


def pending(redis):
    """{key: bytes} of every pending sign-in (MEMORY USAGE: key, value and
    Redis's overhead for them)."""
    return {k: int(redis.cli("MEMORY", "USAGE", k, "SAMPLES", "0"))
            for k in redis.cli("KEYS", "fsc:sso:state:*") or []}


def state_keys(redis):
    return len(redis.cli("KEYS", "fsc:sso:state:*") or [])


def flood(url, source, return_to, hint, headers_of=None):
    """FLOOD starts from source, 6 threads; -> {status: count}."""
    q = urllib.parse.urlencode({"return_to": return_to, "login_hint": hint})
    out = {}
    lock = threading.Lock()
    todo = list(range(FLOOD))

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            h = headers_of(i) if headers_of else None
            status, _, _ = stack.http("GET", url + "/sso/login?" + q, headers=h, source=source)
            with lock:
                out[status] = out.get(status, 0) + 1
    ts = [threading.Thread(target=worker) for _ in range(6)]
    for t in ts:
        t.start()
    return ts, out


def sign_in(base, source):
    """A whole sign-in from source (its own browser): the handoff code."""
    browser = stack.Browser(source=source)
    cb = stack.start_login(base, stack.Stack.RETURN_TO, browser=browser)
    return stack.finish_login(cb, base)


def main():
    rate = stack.Haproxy.production_login_rate()
    st = stack.Stack(lb_login_rate=rate, sso_extra={
        "login": {"starts_per_minute": None},        # the daemon's default
        "session": {"state_ttl_s": "600"}})
    redis = st.redis
    # the largest start allowed: return_to and login_hint at their caps
    long_rt = st.return_to + "?p=" + "x" * (1024 - len(st.return_to) - 3)
    hint = "h" * 128
    assert len(long_rt) == 1024

    # --- 1. caps
    before = state_keys(redis)
    for rt, h, what in ((long_rt + "y", "agent", "return_to of 1025"),
                        (st.return_to, "h" * 129, "login_hint of 129"),
                        (st.return_to + "?p=" + "x" * 3000, "agent", "return_to of 3000")):
        q = urllib.parse.urlencode({"return_to": rt, "login_hint": h})
        status, _, _ = stack.http("GET", st.a.url + "/sso/login?" + q, source="127.0.0.9")
        assert status == 400, "%s: want 400, got %d" % (what, status)
    assert state_keys(redis) == before, "refused starts store nothing"
    q = urllib.parse.urlencode({"return_to": long_rt, "login_hint": hint})
    status, _, _ = stack.http("GET", st.a.url + "/sso/login?" + q, source="127.0.0.9")
    assert status == 302
    key = next(k for k in redis.cli("KEYS", "fsc:sso:state:*"))
    record = int(redis.cli("MEMORY", "USAGE", key, "SAMPLES", "0"))
    assert record < 2048, "one record at the caps: %d bytes" % record
    print("ok  return_to > 1024 / login_hint > 128 -> 400, nothing stored; at the caps one "
          "pending sign-in takes %d bytes of Redis" % record)

    # --- 2. through HAProxy
    sign_in(st.url, "127.0.0.8")            # warm: scripts, pools, IdS key cached
    used0, keys0 = used_memory(redis), pending(redis)
    threads, statuses = flood(st.url, "127.0.0.2", long_rt, hint)
    code = sign_in(st.url, "127.0.0.3")       # while the flood runs
    for t in threads:
        t.join(300)
    status, sess = st.client().handoff(code)
    assert status == 200, "127.0.0.3's sign-in during the flood: %d %r" % (status, sess)
    used1, keys1 = used_memory(redis), pending(redis)
    added = {k: v for k, v in keys1.items() if k not in keys0}
    assert statuses.get(302, 0) <= rate and statuses.get(429, 0) >= FLOOD - rate and \
        len(added) <= rate, "flood through HAProxy: %r, %d records stored (max %d)" % (
            statuses, len(added), rate)
    assert sum(added.values()) <= rate * record, "the flood's records: %d bytes" % sum(
        added.values())
    assert used1 - used0 <= rate * record + NOISE, \
        "used_memory rose by %d bytes (the flood's share at most %d)" % (used1 - used0,
                                                                        rate * record)
    print("ok  %d starts from 127.0.0.2 through HAProxy: %d x 302, %d x 429; Redis +%d pending "
          "sign-ins (%d bytes, bound %d x %d), used_memory %+d bytes; 127.0.0.3 signed in "
          "meanwhile" % (FLOOD, statuses.get(302, 0), statuses.get(429, 0), len(added),
                         sum(added.values()), rate, record, used1 - used0))

    # --- 3. straight at instance A, with made-up X-Forwarded-For
    used0, keys0 = used_memory(redis), pending(redis)
    t0 = time.monotonic()
    threads, statuses = flood(st.a.url, "127.0.0.4", long_rt, hint,
                              headers_of=lambda i: {"X-Forwarded-For": "198.51.100.%d" % (i % 250)})
    code = sign_in(st.a.url, "127.0.0.5")
    for t in threads:
        t.join(300)
    took = time.monotonic() - t0
    status, sess = st.client().handoff(code)
    assert status == 200, "127.0.0.5's sign-in on A during the flood: %d %r" % (status, sess)
    used1, keys1 = used_memory(redis), pending(redis)
    added = {k: v for k, v in keys1.items() if k not in keys0}
    # a token bucket: the burst, then one per 2 s while the flood lasts
    allowed = DAEMON_RATE + int(took * DAEMON_RATE / 60) + 1
    assert statuses.get(302, 0) <= allowed and len(added) <= allowed, \
        "flood at A for %.1f s: %r, %d stored (max %d)" % (took, statuses, len(added), allowed)
    assert sum(added.values()) <= allowed * record and \
        used1 - used0 <= allowed * record + NOISE, \
        "records %d bytes, used_memory %+d" % (sum(added.values()), used1 - used0)
    assert "event=login_limited client=127.0.0.4" in st.a.log_text()
    limited = sum(float(l.split()[-1]) for l in stack.http("GET", st.a.url + "/metrics")[2]
                  .decode().splitlines() if l.startswith("fsc_sso_login_starts_limited_total"))
    assert limited >= FLOOD - DAEMON_RATE - 1, "metric: %r" % limited
    print("ok  %d starts from 127.0.0.4 straight at A in %.1f s (own X-Forwarded-For "
          "ignored): %d x 302, %d x 429 by fsc-sso's own limit; Redis +%d pending sign-ins "
          "(%d bytes), used_memory %+d bytes; 127.0.0.5 signed in meanwhile"
          % (FLOOD, took, statuses.get(302, 0), statuses.get(429, 0), len(added),
             sum(added.values()), used1 - used0))
    st.stop()
    print("PASS")


if __name__ == "__main__":
    main()
