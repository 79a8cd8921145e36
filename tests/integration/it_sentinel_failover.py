# SPDX-License-Identifier: AGPL-3.0-or-later
"""Sentinel failover of Redis under load: kill -9 of the master while token
fetches stream through HAProxy. Service must be back within 10 s and no
session may be lost (sessions are written with WAIT for one replica)."""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

SESSIONS = 30
WORKERS = 6
KILL_AT = 2.0
DURATION = 12.0


def main():
    extra = {"redis": {"wait_replicas": "1", "wait_timeout_ms": "200"}}
    with stack.Stack(sentinel=True, sso_extra=extra) as st:
        sessions = [st.session()["session"] for _ in range(SESSIONS)]
        lb = st.client()
        start = time.time()
        done = start + DURATION
        results = []  # (t, ok)
        lock = threading.Lock()

        def worker():
            rnd = random.Random()
            while time.time() < done:
                try:
                    status, _ = lb.token(rnd.choice(sessions))
                except OSError:
                    status = 0
                with lock:
                    results.append((time.time() - start, status == 200))

        threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
        for th in threads:
            th.start()
        time.sleep(KILL_AT)
        old_master = st.redis.port
        st.redis.kill()
        killed = time.time() - start
        switch = st.sentinels.wait_master(st.replica, timeout=20)
        for th in threads:
            th.join(DURATION + 10)

        after = [r for r in results if r[0] >= killed]
        failed = [r for r in after if not r[1]]
        last_fail = max((r[0] for r in failed), default=killed) - killed
        ok_after = [r for r in after if r[1] and r[0] - killed > last_fail]
        print("master %d killed at %.1f s; sentinel switched after %.2f s; "
              "requests after kill: %d, failed: %d, service back %.2f s after the kill"
              % (old_master, killed, switch, len(after), len(failed), last_fail))
        assert ok_after, "requests succeed again after the failover"
        assert last_fail <= 10.0, "service back within 10 s: %.2f s" % last_fail

        # no session lost
        client = st.client()
        lost = []
        for sid in sessions:
            status, t = client.token(sid)
            if status != 200:
                lost.append((status, t))
        assert not lost, "sessions lost in the failover: %d %r" % (len(lost), lost[:3])
        assert st.replica.role() == "master", "the replica was promoted"
        status, s = st.client().handoff(st.login())
        assert status == 200, "sign-in after the failover: %d %r" % (status, s)
        print("ok  all %d sessions survived; sign-in works on the new master" % SESSIONS)
    print("PASS")


if __name__ == "__main__":
    main()
