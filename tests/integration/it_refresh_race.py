# SPDX-License-Identifier: AGPL-3.0-or-later
"""Token refresh across the HA pair, against an IdS whose refresh tokens are
one-time (ids-sim rotates them and refuses reuse):

- 50 concurrent token fetches split over A and B at refresh time: exactly
  one refresh grant reaches IdS and every caller gets the new token;
- IdS unavailable at refresh time: the still-valid token keeps being
  served, and the refresh happens once IdS is back;
- invalid_grant ends the session, and the connector is told why;
- the lock holder dies mid-refresh (kill -9): the lock expires and the other
  instance takes over with the refresh token that was never redeemed."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

TTL = 8          # access-token lifetime given by ids-sim, seconds
REFRESH_AT = 0.75


def wait_refresh_due(t):
    """Sleep until the token described by t (a /token answer) is due."""
    issued = t["expires_at"] - TTL
    due = issued + REFRESH_AT * TTL
    time.sleep(max(0.0, due - time.time()) + 1.1)  # issued_at has 1 s granularity


def fetch_all(clients, session, n):
    results = [None] * n
    barrier = threading.Barrier(n)

    def worker(i):
        barrier.wait()
        results[i] = clients[i % len(clients)].token(session)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    return results


def check_race(st, ca, cb):
    s = st.session()
    status, old = ca.token(s["session"])
    assert status == 200, "first token: %d %r" % (status, old)
    wait_refresh_due(old)
    st.ids.reset_stats()
    t0 = time.time()
    results = fetch_all([ca, cb], s["session"], 50)
    took = time.time() - t0
    stats = st.ids.stats()
    statuses = [r[0] if r else None for r in results]
    assert statuses == [200] * 50, "all 50 fetches answered 200: %r" % statuses
    tokens = {r[1]["access_token"] for r in results}
    assert len(tokens) == 1, "every caller got the same token, got %d distinct" % len(tokens)
    assert old["access_token"] not in tokens, "callers got the NEW token, not the old one"
    assert stats["grants"]["refresh_token"] == 1, \
        "exactly one refresh grant reached IdS: %r" % stats
    assert stats["reuse_attempts"] == 0 and stats["invalid_grant"] == 0, \
        "no refresh token redeemed twice: %r" % stats
    print("ok  50 concurrent fetches over A and B: 1 refresh grant, 1 new token, %.2f s" % took)
    return s


def check_ids_down_serves_valid_token(st, ca, cb):
    s = st.session()
    status, old = ca.token(s["session"])
    wait_refresh_due(old)
    st.ids.reset_stats()
    fault_end = time.time() + 1.5
    st.ids.fault(status=503, for_s=1.5, grant_type="refresh_token")
    status, t = cb.token(s["session"])
    assert status == 200 and t["access_token"] == old["access_token"], \
        "IdS down, token still valid: want the current token, got %d %r" % (status, t)
    # back-off: a second fetch right away does not call IdS again
    status, t = ca.token(s["session"])
    assert status == 200, "second fetch during the outage: %d %r" % (status, t)
    failed = st.ids.stats()["faults_served"]
    assert failed == 1, "IdS was asked once during the outage, not on every fetch: %d" % failed
    # after the outage and past expiry the refresh happens
    time.sleep(max(0.0, max(old["expires_at"], fault_end) - time.time()) + 0.5)
    status, t = cb.token(s["session"])
    assert status == 200 and t["access_token"] != old["access_token"], \
        "after the outage the token is refreshed: %d %r" % (status, t)
    assert st.ids.stats()["grants"]["refresh_token"] == 1
    print("ok  IdS 503 at refresh time: valid token kept, one IdS call, refreshed after")


def check_invalid_grant_ends_session(st, ca, cb):
    s = st.session()
    status, old = ca.token(s["session"])
    wait_refresh_due(old)
    st.ids.fault(error="invalid_grant", count=1, grant_type="refresh_token")
    status, t = cb.token(s["session"])
    assert status == 401 and t["error"] == "session_ended", \
        "invalid_grant: want 401 session_ended, got %d %r" % (status, t)
    assert "invalid_grant" in t["detail"], "the connector is told why: %r" % t
    before = st.ids.stats()["token_requests"]
    status, t2 = ca.token(s["session"])
    assert status == 401 and t2["error"] == "session_ended", "ended on A too: %d %r" % (status, t2)
    assert st.ids.stats()["token_requests"] == before, "an ended session never calls IdS again"
    print("ok  invalid_grant ends the session on both instances: 401 session_ended")


def check_lock_holder_dies(st, ca, cb):
    s = st.session()
    status, old = ca.token(s["session"])
    wait_refresh_due(old)
    st.ids.reset_stats()
    # A takes the lock and hangs in the IdS call; then it dies
    st.ids.fault(delay_ms=1500, count=1, grant_type="refresh_token")
    def doomed_fetch():
        try:
            ca.token(s["session"])
        except OSError:
            pass  # A is killed while this request waits on IdS

    th = threading.Thread(target=doomed_fetch)
    th.start()
    time.sleep(0.5)
    st.a.kill()
    th.join(10)
    t0 = time.time()
    status, t = cb.token(s["session"])
    took = time.time() - t0
    assert status == 200 and t["access_token"] != old["access_token"], \
        "B takes over the refresh: %d %r" % (status, t)
    time.sleep(1.5)  # let ids-sim finish the delayed (abandoned) request
    stats = st.ids.stats()
    assert stats["aborted_after_delay"] == 1, "A's grant was abandoned unredeemed: %r" % stats
    assert stats["grants"]["refresh_token"] == 1 and stats["reuse_attempts"] == 0, \
        "one refresh, by B, with a never-redeemed token: %r" % stats
    status, t2 = cb.token(s["session"])
    assert status == 200 and t2["access_token"] == t["access_token"], "B's token is stored"
    print("ok  lock holder killed mid-refresh: B took over after %.2f s, no double redeem" % took)


def main():
    extra = {"ids": {"timeout_ms": "2000"}, "session": {"lock_ttl_ms": "2500"}}
    with stack.Stack(haproxy=False, access_ttl=TTL, sso_extra=extra) as st:
        ca = stack.SsoClient(st.a.url, st.service_key)
        cb = stack.SsoClient(st.b.url, st.service_key)
        check_race(st, ca, cb)
        check_ids_down_serves_valid_token(st, ca, cb)
        check_invalid_grant_ends_session(st, ca, cb)
        check_lock_holder_dies(st, ca, cb)
    print("PASS")


if __name__ == "__main__":
    main()
