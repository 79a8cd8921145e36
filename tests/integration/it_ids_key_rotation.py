# SPDX-License-Identifier: AGPL-3.0-or-later
"""IdS rotates its token-signing key mid-run (Cisco-shaped RS256 tokens,
[ids] verify = auto, A and B behind HAProxy, an SSO agent signed in at the
connector).

- New tokens verify after exactly one key fetch across the pair: the
  instance that meets the first new-key token fetches IdS's key once
  (unknown signature), the other takes it from Redis (sealed) - and no
  sign-in fails.
- A session from before the rotation refreshes to a new-key token and
  goes on; the agent keeps working through it (REST + XMPP).
- Tokens signed with the previous key (an IdS node not switched over yet)
  still verify on both instances, without a fetch: the previous key is kept.
- Afterwards a token signed by a key IdS does not serve is refused, and an
  instance fetches at most once a minute however many such tokens come."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

ACCESS_TTL = 8


def logs(st):
    return st.a.log_text() + st.b.log_text()


def count(st, pattern):
    return len(re.findall(pattern, logs(st)))


def sign_in(st, inst, hint="agent1001@example.com"):
    """A sign-in through the LB whose callback lands on inst."""
    code = stack.login_flow(st.url, st.return_to, login_hint=hint, callback_url=inst.url)
    status, s = st.client().handoff(code)
    assert status == 200, "handoff after a callback on %s: %d %r" % (inst.name, status, s)
    return s


def main():
    with stack.Stack(token_shape="cisco", access_ttl=ACCESS_TTL) as st:
        fin = stack.FinesseSim(agents=2, ids=st.ids, tmp=st.tmp)
        conn = stack.Connector(fin, sso_url=st.url, service_key_file=st.secrets.service_key_file,
                               tmp=st.tmp)
        try:
            run(st, fin, conn)
        finally:
            conn.stop()
            fin.stop()
    print("PASS it_ids_key_rotation")


def run(st, fin, conn):
    # an agent signed in before the rotation
    code = st.login(login_hint="agent1001@example.com")
    status, body = conn.api("POST", "/api/v1/login", body={"handoff": code, "extension": "1001"})
    assert status == 200 and body["agent"]["id"] == "1001", "SSO sign-in: %d %r" % (status, body)
    token = body["token"]
    sse = conn.events(token)
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "NOT_READY",
             what="NOT_READY")
    old = sign_in(st, st.b)            # a session whose token has the old key
    status, old_tok = st.client().token(old["session"])
    assert status == 200, "old-key token: %d %r" % (status, old_tok)

    fetches = st.ids.stats()["key_fetches"]
    failed = count(st, r"event=login_failed")
    r = st.ids.rotate_key()
    assert r["signing"] == r["published"] == "ids-sim-2", "IdS rotated: %r" % r
    print("ok  IdS rotated its signing key (%s)" % r["published"])

    # new tokens through both instances: A meets the first one
    for inst in (st.a, st.b, st.a, st.b):
        s = sign_in(st, inst)
        assert s["user"] == "agent1001@example.com", "session user: %r" % s
    assert st.ids.stats()["key_fetches"] == fetches + 1, \
        "new tokens verify after one key fetch: %d -> %d" % (fetches, st.ids.stats()["key_fetches"])
    assert count(st, r"event=login_failed") == failed, "no sign-in failed:\n%s" % "\n".join(
        re.findall(r"[^\n]*event=login_failed[^\n]*", logs(st)))
    rotated = [i for i in (st.a, st.b) if re.search(
        r"event=ids_key_rotated key=\S+ previous=\S+ reason=unknown_signature", i.log_text())]
    assert len(rotated) == 1, "one instance fetched the rotated key: %r" % [i.name for i in rotated]
    fetcher = rotated[0]
    other = st.b if fetcher is st.a else st.a
    assert "event=ids_key_adopted source=redis" in other.log_text(), \
        "%s took the new key from Redis (no fetch of its own)" % other.name
    print("ok  sign-ins on A and B after the rotation: all verified, one key fetch in all "
          "(%s fetched, %s took it from Redis), no failed sign-in" % (fetcher.name, other.name))

    # an IdS node that has not switched over yet: tokens of the previous key
    # still verify, with no fetch (the previous key is kept)
    st.ids.sign_with("ids-sim-1")
    for inst in (st.a, st.b):
        sign_in(st, inst)
    st.ids.sign_with("ids-sim-2")
    assert st.ids.stats()["key_fetches"] == fetches + 1, "no fetch for previous-key tokens"
    assert count(st, r"event=login_failed") == failed, "no sign-in failed"
    print("ok  tokens signed with the previous key still verify on A and B (kept through the "
          "rotation), no fetch")

    # the pre-rotation session: still served, then refreshed to a new-key token
    deadline = time.time() + ACCESS_TTL + 5
    while True:
        status, t = st.client().token(old["session"])
        assert status == 200, "the old session is served throughout: %d %r" % (status, t)
        if t["access_token"] != old_tok["access_token"]:
            break
        assert time.time() < deadline, "the old session was refreshed within its lifetime"
        time.sleep(0.5)
    info = st.ids.introspect(t["access_token"])
    assert info.get("active") is True, "the refreshed token is IdS's: %r" % info
    assert "event=ids_token_rejected" not in logs(st), "no refreshed token was rejected"
    print("ok  a session from before the rotation refreshed to a new-key token")

    # the agent keeps working: its token refreshed past the rotation too
    time.sleep(max(0.0, ACCESS_TTL * 0.8))
    status, r = conn.api("POST", "/api/v1/state", token, {"state": "READY"})
    assert status == 202, "READY after the rotation: %d %r" % (status, r)
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "READY",
             what="READY after the rotation")
    sse.close()
    assert st.ids.stats()["key_fetches"] == fetches + 1, "still one fetch in all"
    # signed out: its token is not refreshed (by a key nobody serves) below
    status, r = conn.api("POST", "/api/v1/logout", token)
    assert status == 200, "sign-out: %d %r" % (status, r)
    print("ok  the connector's agent works through the rotation (REST + XMPP)")

    # a key IdS does not serve: refused; at most one fetch a minute each
    st.ids.rotate_key(publish=False)
    fetches = st.ids.stats()["key_fetches"]
    for inst in (fetcher, other, other, fetcher):
        cb = stack.start_login(st.url, st.return_to)
        status, _, data = stack.http("GET", stack._rebase(cb, inst.url), timeout=15.0,
                                     cookies=cb.browser)
        assert status == 502, "a foreign-key token on %s: 502, got %d %r" % (inst.name, status, data[:200])
    got = st.ids.stats()["key_fetches"] - fetches
    # the fetcher fetched for the rotation less than a minute ago: it is
    # rate-limited; the other never fetched on demand: it tries once, then
    # is limited too
    assert got == 1, "one fetch for four foreign tokens (%s rate-limited, %s once): %d" % (
        fetcher.name, other.name, got)
    assert "event=ids_key_fetch_skipped" in fetcher.log_text(), \
        "%s says it skipped the fetch" % fetcher.name
    assert len(re.findall("event=ids_key_unchanged", other.log_text())) == 1 and \
        "event=ids_key_fetch_skipped" in other.log_text(), \
        "%s fetched once (the key was the same), then skipped" % other.name
    print("ok  tokens signed by a key IdS does not serve: refused; fetches rate-limited "
          "(1 for 4 tokens)")


if __name__ == "__main__":
    main()
