# SPDX-License-Identifier: AGPL-3.0-or-later
"""A slow identity service does not slow fsc-sso's token service: fsc-sso
answers on a pool of a few HTTP threads ([server] threads, 4) and does the
waiting on IdS (the code exchange of /sso/callback, refreshes, revocation)
on job threads. With IdS taking 3 s per code exchange and 8 sign-ins
waiting on it at once (twice the HTTP threads), token fetches for existing
sessions still answer at once, and the sign-ins complete afterwards."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

SLOW_MS = 3000
SIGNINS = 8


def main():
    st = stack.Stack(haproxy=False, user="agent1001@example.com")
    client = st.client(st.a.url)
    sessions = []
    for _ in range(3):
        status, h = client.handoff(stack.login_flow(st.a.url, st.return_to))
        assert status == 200, "handoff: %d %r" % (status, h)
        sessions.append(h["session"])
    # the sign-ins get as far as the callback, then IdS turns slow
    callbacks = [stack.start_login(st.a.url, st.return_to) for _ in range(SIGNINS)]
    st.ids.fault(delay_ms=SLOW_MS, grant_type="authorization_code", for_s=30)
    results = []

    def finish(cb):
        t0 = time.time()
        try:
            code = stack.finish_login(cb, st.a.url)
            results.append(("ok", time.time() - t0, code))
        except Exception as e:  # noqa: BLE001
            results.append(("failed", time.time() - t0, str(e)))
    threads = [threading.Thread(target=finish, args=(cb,)) for cb in callbacks]
    for t in threads:
        t.start()
    time.sleep(0.5)  # every callback is now waiting on IdS
    lat = []
    t_end = time.time() + 1.5
    while time.time() < t_end:
        for sid in sessions:
            t0 = time.time()
            status, tok = client.token(sid)
            lat.append(time.time() - t0)
            assert status == 200 and tok["access_token"], "token fetch: %d %r" % (status, tok)
    for t in threads:
        t.join(30)
    lat.sort()
    worst = lat[-1] * 1000
    ok = [r for r in results if r[0] == "ok"]
    assert len(ok) == SIGNINS, "every sign-in completed once IdS answered: %r" % results
    assert min(r[1] for r in ok) >= SLOW_MS / 1000.0 - 0.2, "the exchanges did wait on IdS"
    assert worst < 500, "token fetches while %d sign-ins wait on a slow IdS: worst %.0f ms" % (
        SIGNINS, worst)
    print("ok  IdS %d ms per code exchange, %d sign-ins waiting: %d token fetches meanwhile, "
          "p50 %.1f ms, worst %.1f ms; all %d sign-ins completed (%.1f s)"
          % (SLOW_MS, SIGNINS, len(lat), lat[len(lat) // 2] * 1000, worst, SIGNINS,
             max(r[1] for r in ok)))
    st.stop()
    print("PASS")


if __name__ == "__main__":
    main()
