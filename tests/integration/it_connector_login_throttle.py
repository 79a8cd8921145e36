# SPDX-License-Identifier: AGPL-3.0-or-later
"""Failed password sign-ins are throttled before Finesse sees them
([server] login_max_failures, login_max_failures_per_address,
login_lockout_s; small values here):
1. three wrong passwords for agent 1001 lock 1001: the next attempt, even
   with the right password, gets 429 too_many_attempts with retry_after_s,
   and Finesse is not asked (its GET User count stays); another agent signs
   in meanwhile;
2. after the lockout the right password works again;
3. failures spread over many agent IDs from one address lock that address."""
import os
import sys
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
    conn.stop()
    fin.stop()
    print("PASS")


if __name__ == "__main__":
    main()
