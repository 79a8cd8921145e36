# SPDX-License-Identifier: AGPL-3.0-or-later
"""SSO with an IdS before 12.6(2): access tokens are encrypted (opaque to
fsc-sso and the connector) and IdS serves no key. A and B behind HAProxy,
[ids] verify = auto.

- fsc-sso logs that IdS serves no key, the sign-in completes, and
  POST /v1/handoff answers "user": null with "user_hint" (the login_hint
  of /sso/login, or null); the token answer's user is null too.
- The connector establishes the identity: the Agent ID typed on the
  softphone, proven by Finesse answering GET /finesse/api/User/<id> with
  that Bearer token. The agent signs in (REST with the token, XMPP with it
  as password) and works.
- A wrong Agent ID: Finesse refuses (401), the sign-in is refused
  (401 invalid_agent), nothing is signed in at Finesse or the connector,
  and the fsc-sso session is ended (refresh token revoked at IdS).
- No Agent ID and no hint: 400 agent_id_required, the session ended too.
- No Agent ID but a login_hint: the hint is the Agent ID to prove."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402


def check_handoff_without_user(st):
    for inst in (st.a, st.b):
        lines = re.findall(r"event=token_verification [^\n]*", inst.log_text())
        assert len(lines) == 1 and "mode=off verify=auto" in lines[0] and "HTTP 404" in lines[0] \
            and "before 12.6(2)" in lines[0], "%s says why it does not verify: %r" % (inst.name, lines)
    s = st.session()
    assert "user" in s and s["user"] is None and s.get("user_hint") is None, \
        "opaque token: user null, no hint: %r" % s
    status, t = st.client().token(s["session"])
    assert status == 200 and t["user"] is None and t["access_token"].count(".") == 4, \
        "token answer: user null, the opaque (JWE) token: %d %r" % (status, t)
    code = st.login(login_hint="1003")
    status, s2 = st.client().handoff(code)
    assert status == 200 and s2["user"] is None and s2["user_hint"] == "1003", \
        "user_hint is the login_hint: %d %r" % (status, s2)
    assert "event=login_ok user=- " in st.a.log_text() + st.b.log_text()
    for sid in (s["session"], s2["session"]):
        st.client().logout(sid)
    print("ok  opaque token: sign-in completes, handoff answers user null (+ user_hint from "
          "login_hint)")


def revocations(st):
    return st.ids.stats()["revocations"]


def check_typed_agent_signs_in(st, fin, conn):
    code = st.login()
    status, body = conn.api("POST", "/api/v1/login",
                            body={"handoff": code, "extension": "1002", "agent": "1002"})
    assert status == 200 and body["agent"]["id"] == "1002", \
        "sign-in with the typed Agent ID: %d %r" % (status, body)
    token = body["token"]
    sse = conn.events(token)
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "NOT_READY",
             what="NOT_READY")
    status, r = conn.api("POST", "/api/v1/state", token, {"state": "READY"})
    assert status == 202, "READY with the opaque Bearer token: %d %r" % (status, r)
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "READY",
             what="READY over XMPP (the opaque token as password)")
    assert "event=sso_identified agent=1002 by=finesse_user" in conn.log_text()
    sse.close()
    print("ok  typed Agent ID 1002 proven by Finesse (GET User/1002 with the token): signed "
          "in, READY over REST + XMPP")
    return token


def check_wrong_agent_refused(st, fin, conn):
    before = revocations(st)
    code = st.login()        # IdS user agent1002@example.com
    status, body = conn.api("POST", "/api/v1/login",
                            body={"handoff": code, "extension": "1003", "agent": "1003"})
    assert status == 401 and body["error"] == "invalid_agent", \
        "another agent's ID: refused by Finesse: %d %r" % (status, body)
    assert fin.agent("1003")["state"] == "LOGOUT", "1003 is not signed in at Finesse"
    assert "agent_signed_in agent=1003" not in conn.log_text(), "nothing signed in here"
    stack.wait_until(lambda: revocations(st) == before + 1, 10,
                     what="the fsc-sso session ended (refresh token revoked)")
    status, again = conn.api("POST", "/api/v1/login",
                             body={"handoff": code, "extension": "1003", "agent": "1002"})
    assert status == 401 and again["error"] == "invalid_handoff", \
        "the spent handoff cannot be retried with another ID: %d %r" % (status, again)
    print("ok  a wrong Agent ID: Finesse refuses, sign-in refused (401 invalid_agent), nothing "
          "signed in, the fsc-sso session ended")


def check_agent_id_required(st, conn):
    before = revocations(st)
    code = st.login()
    status, body = conn.api("POST", "/api/v1/login", body={"handoff": code, "extension": "1004"})
    assert status == 400 and body["error"] == "agent_id_required", \
        "no Agent ID, no hint: %d %r" % (status, body)
    stack.wait_until(lambda: revocations(st) == before + 1, 10, what="session ended")
    code = st.login()
    status, body = conn.api("POST", "/api/v1/login",
                            body={"handoff": code, "extension": "1004", "agent": "10 04"})
    assert status == 400 and body["error"] == "invalid_request", \
        "a malformed Agent ID: %d %r" % (status, body)
    print("ok  no Agent ID and no hint: 400 agent_id_required (the page asks for it); a "
          "malformed one: 400")


def check_hint_signs_in(st, fin, conn):
    code = st.login(login_hint="1004")    # ids-sim: the hint is the user
    status, body = conn.api("POST", "/api/v1/login", body={"handoff": code, "extension": "1004"})
    assert status == 200 and body["agent"]["id"] == "1004", \
        "the login_hint as the Agent ID: %d %r" % (status, body)
    stack.wait_until(lambda: fin.agent("1004")["state"] != "LOGOUT", 10, what="1004 signed in")
    status, r = conn.api("POST", "/api/v1/logout", body["token"])
    assert status == 200, "sign-out: %d %r" % (status, r)
    print("ok  no typed Agent ID but a login_hint: the hint proven by Finesse, signed in")


def main():
    with stack.Stack(token_shape="opaque", user="agent1002@example.com") as st:
        fin = stack.FinesseSim(agents=4, ids=st.ids, tmp=st.tmp)
        conn = stack.Connector(fin, sso_url=st.url, service_key_file=st.secrets.service_key_file,
                               tmp=st.tmp)
        try:
            check_handoff_without_user(st)
            token = check_typed_agent_signs_in(st, fin, conn)
            check_wrong_agent_refused(st, fin, conn)
            check_agent_id_required(st, conn)
            check_hint_signs_in(st, fin, conn)
            status, r = conn.api("POST", "/api/v1/logout", token)
            assert status == 200, "sign-out: %d %r" % (status, r)
        finally:
            conn.stop()
            fin.stop()
    print("PASS it_ids_opaque")


if __name__ == "__main__":
    main()
