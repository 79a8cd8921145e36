# SPDX-License-Identifier: AGPL-3.0-or-later
"""Sign-in across the HA pair: a login started on A finishes on B, the
handoff code works once only (from either instance), the token is served
by either instance, popup sign-in posts the code to the allow-listed
origin, and logout ends the session everywhere and revokes at IdS."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402


def check_login_on_a_callback_on_b(st):
    cb = stack.start_login(st.a.url, st.return_to, login_hint="agent7@example.com")
    code = stack.finish_login(cb, st.b.url)
    # the handoff is redeemed through B, once
    status, s = stack.SsoClient(st.b.url, st.service_key).handoff(code)
    assert status == 200, "handoff on B: want 200, got %d %r" % (status, s)
    assert s["user"] == "agent7@example.com", "user from login_hint: %r" % s
    assert len(s["session"]) >= 43, "session id of >= 256 bits: %r" % s["session"]
    status, again = stack.SsoClient(st.a.url, st.service_key).handoff(code)
    assert status == 400 and again["error"] == "invalid_handoff", \
        "second use of the handoff code on A: want 400 invalid_handoff, got %d %r" % (status, again)
    # the same session and token from A, B and the load balancer
    tokens = set()
    for base in (st.a.url, st.b.url, st.lb.url):
        status, t = stack.SsoClient(base, st.service_key).token(s["session"])
        assert status == 200, "token via %s: %d %r" % (base, status, t)
        assert t["user"] == "agent7@example.com" and t["expires_at"] == s["expires_at"], t
        tokens.add(t["access_token"])
    assert len(tokens) == 1, "one current token whichever instance answers: %d" % len(tokens)
    active = st.ids.introspect(tokens.pop())
    assert active.get("active") is True, "IdS says the token is active: %r" % active
    print("ok  login on A, callback on B, handoff once, same token from A, B and LB")
    return s


def check_popup_posts_to_origin(st):
    cb = stack.start_login(st.lb.url, st.return_to, popup=True)
    status, hdrs, page = cb.browser.get(str(cb))
    assert status == 200, "popup callback: want a 200 page, got %d" % status
    m = re.search(rb'postMessage\(\{"handoff": "([A-Za-z0-9_-]{43})"\}, "([^"]+)"\)', page)
    assert m, "popup page posts the handoff code: %r" % page[:400]
    assert m.group(2) == b"https://connector.test", \
        "postMessage target is the return_to origin, never '*': %r" % m.group(2)
    csp = hdrs.get("content-security-policy", "")
    assert "script-src 'nonce-" in csp and "unsafe-inline" not in csp, "popup CSP: %r" % csp
    status, s = st.client().handoff(m.group(1).decode())
    assert status == 200, "popup handoff redeemed: %d %r" % (status, s)
    print("ok  popup sign-in posts {handoff} to https://connector.test only (CSP nonce)")


def check_logout_everywhere(st, s):
    before = st.ids.stats()["revocations"]
    status, body = stack.SsoClient(st.b.url, st.service_key).logout(s["session"])
    assert status == 200, "logout on B: %d %r" % (status, body)
    for base in (st.a.url, st.b.url):
        status, t = stack.SsoClient(base, st.service_key).token(s["session"])
        assert status == 404 and t["error"] == "unknown_session", \
            "token after logout via %s: want 404, got %d %r" % (base, status, t)
    after = st.ids.stats()["revocations"]
    assert after == before + 1, "refresh token revoked at IdS: %d -> %d" % (before, after)
    status, body = st.client().logout(s["session"])
    assert status == 404, "second logout: want 404, got %d" % status
    print("ok  logout on B ends the session on A too; IdS revocation %d -> %d" % (before, after))


def check_no_secrets_in_redis(st, s):
    raw = b""
    for key in st.redis.cli("KEYS", "*"):
        k = key if isinstance(key, str) else key.decode("latin-1")
        assert s["session"] not in k, "session id in a Redis key name: %s" % k
        kind = st.redis.cli("TYPE", k)
        kind = kind if isinstance(kind, str) else kind.decode()
        # strings (sealed records) and sets (a user's session-key hashes)
        values = [st.redis.cli("GET", k)] if kind == "string" else \
            st.redis.cli("SMEMBERS", k) if kind == "set" else []
        for v in values:
            if v is not None:
                raw += v if isinstance(v, bytes) else v.encode("latin-1", "replace")
    assert b"eyJ" not in raw and s["session"].encode() not in raw, \
        "Redis values hold no JWT and no session id in the clear"
    print("ok  Redis holds only hashed ids and sealed values (%d bytes checked)" % len(raw))


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError("metric %s missing from /metrics" % name)


def check_metrics(st):
    """A's and B's counters add up to what the test did."""
    total = {}
    for inst in (st.a, st.b):
        status, hdrs, body = stack.http("GET", inst.url + "/metrics")
        assert status == 200 and hdrs["content-type"].startswith("text/plain"), \
            "/metrics: %d %r" % (status, hdrs)
        text = body.decode()
        for name in ('fsc_sso_logins_total{result="ok"}', 'fsc_sso_handoffs_total{result="ok"}',
                     'fsc_sso_handoffs_total{result="refused"}', "fsc_sso_logouts_total",
                     "fsc_sso_token_fetch_seconds_count", "fsc_sso_redis_errors"):
            total[name] = total.get(name, 0) + metric(text, name)
        assert "# TYPE fsc_sso_token_fetch_seconds histogram" in text, "histogram typed"
    want = {'fsc_sso_logins_total{result="ok"}': 2, 'fsc_sso_handoffs_total{result="ok"}': 2,
            'fsc_sso_handoffs_total{result="refused"}': 1, "fsc_sso_logouts_total": 1,
            "fsc_sso_token_fetch_seconds_count": 5, "fsc_sso_redis_errors": 0}
    assert total == want, "metrics summed over A and B: %r, want %r" % (total, want)
    print("ok  /metrics on A and B add up: %r" % total)


def main():
    with stack.Stack() as st:
        s = check_login_on_a_callback_on_b(st)
        check_popup_posts_to_origin(st)
        check_no_secrets_in_redis(st, s)
        check_logout_everywhere(st, s)
        check_metrics(st)
    print("PASS")


if __name__ == "__main__":
    main()
