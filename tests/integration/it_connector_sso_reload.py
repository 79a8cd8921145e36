# SPDX-License-Identifier: AGPL-3.0-or-later
"""SSO sign-in again after a reload, in a browser that keeps nothing (third-
party storage blocked: no token, no form prefill): one click, no Extension
typed. The connector takes the extension of the agent's running session
(the same session, no second Finesse LOGIN), or the one Finesse has the
agent signed in on; an agent signed in nowhere gets 400
extension_required, and the fsc-sso session that sign-in opened is closed
(nothing left behind). A password sign-in still needs its extension."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

AGENT = "1002"


def main():
    sso = stack.Stack(haproxy=False, user="agent1002@example.com")
    fin = stack.FinesseSim(agents=3, ids=sso.ids, presence_grace_s=15)
    conn = stack.Connector(fin, sso_url=sso.a.url, service_key_file=sso.secrets.service_key_file)

    # signed in nowhere, no extension: refused, and the SSO session is dropped
    revoked = sso.ids.stats()["revocations"]
    status, body = conn.api("POST", "/api/v1/login", body={"handoff": sso.login()})
    assert status == 400 and body["error"] == "extension_required" and body["detail"], \
        "no running session, no extension: %d %r" % (status, body)
    assert sso.ids.stats()["revocations"] == revoked + 1, \
        "the fsc-sso session of the refused sign-in was closed"
    assert fin.agent(AGENT)["state"] == "LOGOUT", "nothing happened at Finesse"
    status, body = conn.login("1001", "pw1001", "")
    assert status == 400 and body["error"] == "invalid_request", \
        "a password sign-in still needs its extension: %d %r" % (status, body)
    print("ok  SSO without extension, agent signed in nowhere -> 400 extension_required, "
          "fsc-sso session closed; password sign-in without extension -> 400")

    status, body = conn.api("POST", "/api/v1/login",
                            body={"handoff": sso.login(), "extension": AGENT})
    assert status == 200, "SSO sign-in: %d %r" % (status, body)
    token = body["token"]
    stack.wait_until(lambda: fin.agent(AGENT)["state"] == "NOT_READY", 5, what="signed in")
    puts = fin.stats()["requests"].get("PUT User", 0)

    # the reload: the browser kept nothing; one click on "Sign in with SSO"
    status, body = conn.api("POST", "/api/v1/login", body={"handoff": sso.login()})
    assert status == 200 and body["token"] != token, "SSO again without extension: %d %r" % (
        status, body)
    assert body["agent"]["id"] == AGENT and body["agent"]["extension"] == AGENT, \
        "the running session's agent and extension: %r" % body["agent"]
    assert fin.stats()["requests"].get("PUT User", 0) == puts, "no second LOGIN at Finesse"
    assert conn.api("GET", "/readyz")[1]["agents"] == 1, "one session"
    status, r = conn.api("POST", "/api/v1/state", body["token"], {"state": "READY"})
    assert status == 202, "the new token drives the session: %d %r" % (status, r)
    stack.wait_until(lambda: fin.agent(AGENT)["state"] == "READY", 5, what="READY")
    print("ok  reload, SSO without extension -> joins the running session (extension %s), "
          "no second LOGIN" % AGENT)

    # a connector restart without Redis forgets the session; Finesse still
    # has the agent on its extension: that one is used
    port = conn.port
    conn.stop()
    conn = stack.Connector(fin, sso_url=sso.a.url, port=port, name="connector-2",
                           service_key_file=sso.secrets.service_key_file)
    assert fin.agent(AGENT)["state"] != "LOGOUT"
    status, body = conn.api("POST", "/api/v1/login", body={"handoff": sso.login()})
    assert status == 200 and body["agent"]["extension"] == AGENT, \
        "the extension Finesse has the agent on: %d %r" % (status, body)
    print("ok  no running session here, agent signed in at Finesse -> its extension (%s)" % AGENT)
    status, r = conn.api("POST", "/api/v1/logout", body["token"])
    assert status == 200
    conn.stop()
    fin.stop()
    sso.stop()
    print("PASS")


if __name__ == "__main__":
    main()
