# SPDX-License-Identifier: AGPL-3.0-or-later
"""Login CSRF against the redirect and popup modes (fsc-sso A and B behind
HAProxy, ids-sim approving every sign-in):

1. a return_to carrying a handoff parameter under any spelling the page's
   URLSearchParams decodes (hand%6fff, %68andoff, ...) or other parsers
   accept (;handoff, HANDOFF) is refused (400) and stores nothing, so the
   softphone cannot be made to read a planted code;
2. /sso/login sets the binding cookie: __Host-fsc_login, Secure, HttpOnly,
   SameSite=Lax, Path=/, no Domain;
3. an attacker starts a sign-in in their own browser and sends the victim
   the callback link: opened in a browser without the cookie, or with the
   victim's own (a sign-in of theirs is pending), it is refused (400,
   browser_mismatch), creates no session and no handoff, and the state is
   spent; in popup mode as in redirect mode;
4. the attacker's own browser completes its sign-ins, also when the
   callback reaches the other instance."""
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402


def keys(st, kind):
    return sorted(st.redis.cli("KEYS", "fsc:sso:%s:*" % kind) or [])


def main():
    with stack.Stack() as st:
        # --- 1. handoff planted in return_to
        before = keys(st, "state")
        for rt in ("?hand%6fff=PLANTED", "?hand%6Fff=PLANTED", "?%68andoff=PLANTED",
                   "?x=1&hand%6fff", "?x=1;handoff=PLANTED", "?HANDOFF=PLANTED",
                   "?handoff=PLANTED"):
            q = urllib.parse.urlencode({"return_to": st.return_to + rt})
            status, _, body = stack.http("GET", st.url + "/sso/login?" + q)
            assert status == 400 and b"handoff" in body, "return_to %s: %d" % (rt, status)
        assert keys(st, "state") == before, "a refused start stores nothing"
        assert "reason=return_to_has_handoff" in st.a.log_text() + st.b.log_text()
        print("ok  return_to with a handoff parameter, percent-encoded or not, ';' or upper "
              "case: 400, nothing stored")

        # --- 2. the cookie
        attacker = stack.Browser()
        cb = stack.start_login(st.url, st.return_to, browser=attacker)
        cookie = next(c for c in attacker.set_cookies if c.startswith("__Host-fsc_login="))
        attrs = [a.strip().lower() for a in cookie.split(";")[1:]]
        assert {"path=/", "secure", "httponly", "samesite=lax"} <= set(attrs) and \
            not any(a.startswith("domain") for a in attrs) and \
            len(cookie.split(";")[0].split("=", 1)[1]) == 43, cookie
        print("ok  /sso/login sets %s...; %s" % (cookie[:22], "; ".join(attrs)))

        # --- 3. the attacker's callback in the victim's browser
        for popup in (False, True):
            cb = stack.start_login(st.url, st.return_to, popup=popup, browser=attacker)
            victim = stack.Browser()
            for who, browser in (("no cookie", stack.Browser()), ("its own cookie", victim)):
                if browser is victim:
                    stack.start_login(st.url, st.return_to, browser=victim)  # victim's own
                    cb = stack.start_login(st.url, st.return_to, popup=popup, browser=attacker)
                sess0, hand0 = keys(st, "sess"), keys(st, "handoff")
                status, hdrs, body = stack.http("GET", str(cb), cookies=browser, timeout=15)
                assert status == 400 and "location" not in hdrs and \
                    b"not started in this browser" in body and b"handoff" not in body, \
                    "popup=%s, victim with %s: %d %r" % (popup, who, status, body[:200])
                assert keys(st, "sess") == sess0 and keys(st, "handoff") == hand0, \
                    "no session, no handoff"
                # the state is spent: the attacker cannot use the link either
                status, _, _ = stack.http("GET", str(cb), cookies=attacker, timeout=15)
                assert status == 400, "the spent state: %d" % status
        logs = st.a.log_text() + st.b.log_text()
        assert logs.count("reason=browser_mismatch") == 4, "logged: %d" % logs.count(
            "reason=browser_mismatch")
        print("ok  the attacker's callback link opened by the victim (no cookie, or the "
              "victim's own), redirect and popup mode: 400 browser_mismatch, no session, "
              "state spent")

        # --- 4. the right browser, either instance
        for popup in (False, True):
            code = stack.finish_login(stack.start_login(st.a.url, st.return_to, popup=popup,
                                                        browser=attacker), st.b.url)
            status, s = st.client().handoff(code)
            assert status == 200, "popup=%s: %d %r" % (popup, status, s)
        print("ok  the browser that started the sign-in completes it (started on A, callback "
              "on B; redirect and popup)")
    print("PASS")


if __name__ == "__main__":
    main()
