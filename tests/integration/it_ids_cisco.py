# SPDX-License-Identifier: AGPL-3.0-or-later
"""fsc-sso against an IdS that issues tokens the way Cisco documents them
(Finesse developer guide, "REST API with SSO - client integration"):
header {"cty":"JWT","alg":"RS256"}, the user inside `sub`, a JSON-encoded
string {"scope", "rt", "user_id", "realm", "upn"}, and (IdS 12.6(2)+) the
public key at GET /ids/v1/keys/token/public for client credentials.

Through HAProxy, with [ids] verify left at its default (auto):
- both instances fetch IdS's key at start and say so once;
- the session names `user_id` ("sjefferson"), not the upn, not the JSON;
  the token verifies;
- the connector maps it through Finesse (User?loginName=sjefferson ->
  loginId 2001) and the agent signs in: Bearer REST, XMPP with the token;
  a user_id that is the loginId itself is confirmed with GET User/<id>;
- [ids] user_claim = upn still selects the upn;
- a token signed by a key IdS does not serve is refused at the callback
  (502, no session, no handoff), after one look for a rotated key."""
import base64
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

USER = "sjefferson"


def redis_sessions(st):
    return {k for k in (st.redis.cli("KEYS", "fsc:sso:sess:*") or [])}


def check_key_fetched_at_start(st):
    for inst in (st.a, st.b):
        log = inst.log_text()
        lines = re.findall(r"event=token_verification [^\n]*", log)
        assert len(lines) == 1, "%s logs its verification mode once: %r" % (inst.name, lines)
        assert "mode=on verify=auto source=ids" in lines[0] and "12.6(2)" in lines[0], \
            "%s: auto mode verifies with IdS's key: %s" % (inst.name, lines[0])
    assert st.ids.stats()["key_fetches"] == 2, "one key fetch per instance at start"
    print("ok  verify=auto: A and B fetched IdS's key at start (client credentials) and say so")


def check_session_names_user_id(st):
    s = st.session()
    assert s["user"] == USER, "the session names user_id from inside sub: %r" % s["user"]
    status, t = st.client().token(s["session"])
    assert status == 200 and t["user"] == USER, "token answer names %r: %d %r" % (USER, status, t)
    info = st.ids.introspect(t["access_token"])
    assert info.get("active") is True and info.get("user") == USER, "IdS: %r" % info
    head = base64.urlsafe_b64decode(t["access_token"].split(".")[0] + "==")
    assert json.loads(head) == {"cty": "JWT", "alg": "RS256"}, "Cisco's header: %r" % head
    log = st.a.log_text() + st.b.log_text()
    assert "reason=token_verification" not in log and "reason=no_user" not in log, \
        "no sign-in failed verification or naming"
    print("ok  Cisco-shaped token: session and token name user_id %r (not upn, not the JSON)"
          % USER)


def check_agent_signs_in(st, fin):
    conn = stack.Connector(fin, sso_url=st.url, service_key_file=st.secrets.service_key_file,
                           tmp=st.tmp)
    try:
        code = st.login(login_hint=USER)
        status, body = conn.api("POST", "/api/v1/login", body={"handoff": code,
                                                              "extension": "2001"})
        assert status == 200, "SSO sign-in with a Cisco token: %d %r" % (status, body)
        assert body["agent"]["id"] == "2001", "user_id mapped to loginId 2001: %r" % body
        sse = conn.events(body["token"])
        sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "NOT_READY",
                 what="NOT_READY after the SSO sign-in")
        status, r = conn.api("POST", "/api/v1/state", body["token"], {"state": "READY"})
        assert status == 202, "READY with the Bearer token: %d %r" % (status, r)
        sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "READY",
                 what="READY (notification over XMPP, the token as password)")
        assert fin.agent("2001")["state"] == "READY", "Finesse has 2001 READY"
        sse.close()
        status, r = conn.api("POST", "/api/v1/logout", body["token"])
        assert status == 200, "sign-out: %d %r" % (status, r)
        print("ok  the connector maps user_id through Finesse (loginId 2001); the agent signs "
              "in, READY over REST + XMPP")

        # the guide: user_id may be the peripheralId (loginId) instead
        code = st.login(login_hint="1002")
        status, body = conn.api("POST", "/api/v1/login", body={"handoff": code,
                                                              "extension": "1002"})
        assert status == 200 and body["agent"]["id"] == "1002", \
            "user_id that is a loginId: %d %r" % (status, body)
        assert "event=sso_user_is_login_id agent=1002" in conn.log_text()
        status, r = conn.api("POST", "/api/v1/logout", body["token"])
        assert status == 200, "sign-out: %d %r" % (status, r)
        print("ok  a user_id that is the loginId (no such loginName) is confirmed with "
              "GET User/1002")
    finally:
        conn.stop()


def check_user_claim_upn(st):
    # public_url = the LB: its redirect_uri is the one registered at IdS
    inst = stack.SsoInstance("upn", st.redis, st.ids, public_url=st.url,
                             allowed_return_to=[st.return_to], secrets=st.secrets,
                             extra={"ids": {"user_claim": "upn"}}, tmp=st.tmp)
    try:
        inst.wait_ready()
        code = stack.login_flow(st.url, st.return_to, login_hint=USER, callback_url=inst.url)
        status, s = st.client(inst.url).handoff(code)
        assert status == 200 and s["user"] == USER + "@example.com", \
            "user_claim = upn selects the upn inside sub: %d %r" % (status, s)
    finally:
        inst.stop()
    print("ok  [ids] user_claim = upn selects %s@example.com" % USER)


def check_foreign_key_refused(st):
    fetches = st.ids.stats()["key_fetches"]
    sessions = redis_sessions(st)
    st.ids.rotate_key(publish=False)   # IdS signs with a key it does not serve
    cb = stack.start_login(st.url, st.return_to, login_hint=USER)
    status, hdrs, data = stack.http("GET", stack._rebase(cb, st.a.url), timeout=15.0,
                                    cookies=cb.browser)
    assert status == 502, "a token signed by another key: callback 502, got %d %r" % (status, data[:200])
    assert b"handoff" not in data and "location" not in hdrs, "no handoff code handed out"
    assert redis_sessions(st) == sessions, "no session stored"
    assert st.ids.stats()["key_fetches"] == fetches + 1, \
        "one fetch for a rotated key before refusing: %d -> %d" % (fetches, st.ids.stats()["key_fetches"])
    log = st.a.log_text()
    assert re.search(r'event=login_failed reason=token_verification detail="bad signature', log), \
        "A logs why it refused"
    assert "event=ids_key_unchanged" in log and "event=ids_key_fetch_failed" not in log, \
        "A looked for a rotated key and found IdS still serves the one it holds"
    print("ok  a token signed by a key IdS does not serve: refused (502, nothing stored) after "
          "one key fetch")


def main():
    with stack.Stack(token_shape="cisco", user=USER) as st:
        fin = stack.FinesseSim(agents=2, ids=st.ids, tmp=st.tmp)
        fin.add_agent("2001", "pw2001", extension="2001", login_name=USER)
        try:
            check_key_fetched_at_start(st)
            check_session_names_user_id(st)
            check_agent_signs_in(st, fin)
            check_user_claim_upn(st)
            check_foreign_key_refused(st)
        finally:
            fin.stop()
    print("PASS it_ids_cisco")


if __name__ == "__main__":
    main()
