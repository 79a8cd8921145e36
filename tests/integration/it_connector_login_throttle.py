# SPDX-License-Identifier: AGPL-3.0-or-later
"""Failed password sign-ins are throttled before Finesse sees them
([server] login_max_failures, login_max_failures_per_address,
login_lockout_s; small values here):
1. three wrong passwords for agent 1001 lock 1001: the next attempt, even
   with the right password, gets 429 too_many_attempts with retry_after_s,
   and Finesse is not asked (its GET User count stays); another agent signs
   in meanwhile;
2. after the lockout the right password works again;
3. failures spread over many agent IDs from one address lock that address;
4. attempts are counted before Finesse is asked: 40 concurrent wrong
   passwords for one agent (from 40 addresses), or from one address (for
   40 agent IDs), with Finesse answering slowly: at most the configured
   number reach Finesse, the rest get 429;
5. behind a reverse proxy (real haproxy, [server] trusted_proxies): the
   client X-Forwarded-For names is counted, so one client's lockout does
   not lock every agent behind the proxy, and neither a client behind the
   proxy nor one reaching the connector directly can pick its address by
   writing X-Forwarded-For itself."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

LOCKOUT_S = 3


def user_gets(fin):
    return fin.stats()["requests"].get("GET User", 0)


def main():
    fin = stack.FinesseSim(agents=4, presence_grace_s=30)
    conn = stack.Connector(fin, extra={"server": {
        "login_max_failures": "3", "login_max_failures_per_address": "6",
        "login_lockout_s": str(LOCKOUT_S)}})

    # --- 1. per agent
    for i in range(3):
        status, body = conn.login("1001", "guess%d" % i, "1001")
        assert status == 401 and body["error"] == "invalid_credentials", \
            "wrong password %d: %d %r" % (i + 1, status, body)
    gets = user_gets(fin)
    status, locked = conn.login("1001", "pw1001", "1001")
    assert status == 429 and locked["error"] == "too_many_attempts" and \
        1 <= locked["retry_after_s"] <= LOCKOUT_S, "locked: %d %r" % (status, locked)
    assert user_gets(fin) == gets, "Finesse was not asked while the agent is locked"
    assert fin.agent("1001")["state"] == "LOGOUT"
    status, body = conn.login("1002", "pw1002", "1002")
    assert status == 200, "another agent is not affected: %d %r" % (status, body)
    assert "event=login_throttled agent=1001" in conn.log_text() and "guess" not in \
        conn.log_text(), "throttling logged, no password in the log"
    print("ok  3 wrong passwords lock agent 1001: 429 (retry in %d s) even with the right "
          "password, Finesse not asked; 1002 signs in" % locked["retry_after_s"])

    # --- 2. the lockout ends
    time.sleep(LOCKOUT_S + 0.5)
    status, body = conn.login("1001", "pw1001", "1001")
    assert status == 200, "after the lockout: %d %r" % (status, body)
    print("ok  after %d s the right password signs 1001 in" % LOCKOUT_S)

    # --- 3. per address: one guess each for many agent IDs
    for i in range(6):
        status, body = conn.login("90%02d" % i, "guess", "9000")
        assert status == 401, "guess %d: %d %r" % (i, status, body)
    status, body = conn.login("1003", "pw1003", "1003")
    assert status == 429 and body["error"] == "too_many_attempts", \
        "the address is locked after 6 failures: %d %r" % (status, body)
    assert "by=address" in conn.log_text()
    assert conn.metric("fsc_connector_logins_throttled_total") == 2, "metric: 2 refused"
    print("ok  6 failures over 6 agent IDs from one address lock the address (429)")

    # --- 4. a burst of concurrent guesses, Finesse slow to answer
    fin.rest_delay(500, for_s=60)
    time.sleep(LOCKOUT_S + 0.5)   # the address lock of section 3 ends

    def burst(n, agent_of, source_of):
        before = fin.stats()["counters"].get("auth_failures", 0)
        go = threading.Barrier(n)
        out = [None] * n

        def one(i):
            go.wait()
            out[i] = conn.login(agent_of(i), "guess", "9000", source=source_of(i))[0]
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return fin.stats()["counters"].get("auth_failures", 0) - before, out

    reached, statuses = burst(40, lambda i: "1004", lambda i: "127.0.0.%d" % (10 + i))
    assert reached <= 3 and statuses.count(401) == reached and \
        statuses.count(429) == 40 - reached, \
        "40 concurrent guesses for 1004: %d reached Finesse (max 3): %r" % (reached, statuses)
    print("ok  40 concurrent wrong passwords for one agent from 40 addresses: %d reached "
          "Finesse (login_max_failures 3), %d refused with 429" % (reached, statuses.count(429)))
    reached, statuses = burst(40, lambda i: "80%02d" % i, lambda i: "127.0.0.77")
    assert reached <= 6 and statuses.count(429) == 40 - reached, \
        "40 concurrent guesses from one address: %d reached Finesse (max 6): %r" % (
            reached, statuses)
    print("ok  40 concurrent wrong passwords from one address: %d reached Finesse "
          "(login_max_failures_per_address 6)" % reached)
    fin.rest_delay(0)
    conn.stop()

    # --- 5. behind a reverse proxy
    conn2 = stack.Connector(fin, name="connector-proxied", extra={"server": {
        "login_max_failures": "3", "login_max_failures_per_address": "6",
        "login_lockout_s": "60", "trusted_proxies": "127.0.0.1"}})
    proxy = stack.HttpProxy(conn2)
    for i in range(6):
        status, _ = conn2.login("70%02d" % i, "guess", "9000", via=proxy.url, source="127.0.0.2")
        assert status == 401, "guess %d from 127.0.0.2: %d" % (i, status)
    status, body = conn2.login("1003", "pw1003", "1003", via=proxy.url, source="127.0.0.2")
    assert status == 429, "127.0.0.2 is locked behind the proxy: %d %r" % (status, body)
    # writing X-Forwarded-For itself: haproxy appends the address it saw
    status, body = conn2.login("1003", "pw1003", "1003", via=proxy.url, source="127.0.0.2",
                               headers={"X-Forwarded-For": "198.51.100.%d" % 7})
    assert status == 429, "a made-up X-Forwarded-For does not unlock: %d %r" % (status, body)
    assert "event=login_throttled agent=1003 peer=127.0.0.2 by=address" in conn2.log_text()
    status, body = conn2.login("1003", "pw1003", "1003", via=proxy.url, source="127.0.0.3")
    assert status == 200, "another client behind the same proxy signs in: %d %r" % (status, body)
    print("ok  behind haproxy (trusted_proxies): 127.0.0.2 locked after 6 failures, its own "
          "X-Forwarded-For changes nothing, 127.0.0.3 signs in")
    # straight to the connector from an address that is no proxy: its
    # X-Forwarded-For is not believed, every guess counts against it
    for i in range(6):
        status, _ = conn2.login("71%02d" % i, "guess", "9000", source="127.0.0.4",
                                headers={"X-Forwarded-For": "203.0.113.%d" % i})
        assert status == 401, "direct guess %d: %d" % (i, status)
    status, body = conn2.login("1002", "pw1002", "1002", source="127.0.0.4",
                               headers={"X-Forwarded-For": "203.0.113.99"})
    assert status == 429 and "peer=127.0.0.4 by=address" in conn2.log_text(), \
        "X-Forwarded-For from a non-proxy is ignored: %d %r" % (status, body)
    assert conn2.log_text().count("event=forwarded_for_ignored peer=127.0.0.4") == 1, \
        "said once, so that a proxy nobody listed gets noticed"
    print("ok  X-Forwarded-For from a client that is no trusted proxy is ignored")
    proxy.stop()
    conn2.stop()
    fin.stop()
    print("PASS")


if __name__ == "__main__":
    main()
