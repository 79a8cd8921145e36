# SPDX-License-Identifier: AGPL-3.0-or-later
"""kill -9 of fsc-sso A during a stream of token fetches through HAProxy:
every session stays usable via B, and HAProxy's retries hide the crash
(prints how many requests failed; the target is none)."""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

SESSIONS = 20
WORKERS = 8
DURATION = 6.0
KILL_AT = 2.0


def main():
    with stack.Stack() as st:
        sessions = [st.session()["session"] for _ in range(SESSIONS)]
        lb = st.client()
        done = time.time() + DURATION
        counts = {"ok": 0, "failed": 0}
        failures = []
        lock = threading.Lock()

        def worker():
            rnd = random.Random()
            while time.time() < done:
                sid = rnd.choice(sessions)
                try:
                    status, body = lb.token(sid)
                except OSError as e:
                    status, body = 0, repr(e)
                with lock:
                    if status == 200:
                        counts["ok"] += 1
                    else:
                        counts["failed"] += 1
                        failures.append((round(time.time() - start, 2), status, body))

        start = time.time()
        threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
        for th in threads:
            th.start()
        time.sleep(KILL_AT)
        st.a.kill()
        killed = time.time()
        down = st.lb.wait_down("a", timeout=10)
        for th in threads:
            th.join(DURATION + 10)
        total = counts["ok"] + counts["failed"]
        print("token fetches through HAProxy: %d, failed: %d (A killed at %.1f s, "
              "marked DOWN %.2f s later)" % (total, counts["failed"], killed - start, down))
        for f in failures[:10]:
            print("  failed at %.2f s: %s %r" % f)
        assert total > 100, "the stream ran: %d requests" % total
        assert counts["failed"] == 0, "HAProxy retries hide the crash: %d failed" % counts["failed"]

        # every session is still there, served by B
        cb = stack.SsoClient(st.b.url, st.service_key)
        for sid in sessions:
            status, t = cb.token(sid)
            assert status == 200, "session usable via B after A died: %d %r" % (status, t)
        # and a new sign-in through the load balancer works with A gone
        status, s = st.client().handoff(st.login())
        assert status == 200, "sign-in through HAProxy with A dead: %d %r" % (status, s)
        print("ok  %d sessions usable via B; sign-in through HAProxy works with A dead" % SESSIONS)
    print("PASS")


if __name__ == "__main__":
    main()
