# SPDX-License-Identifier: AGPL-3.0-or-later
"""SSO sign-in for fsc-connector: the softphone gets a handoff code from
fsc-sso (IdS sign-in on ids-sim), the connector redeems it, maps the IdS
user to the Finesse loginId (GET User?loginName=), uses the access token as
Bearer for REST and as the XMPP password; the access token expires
mid-shift and the agent never notices (fsc-sso refreshes it, once)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

TTL = 6


def main():
    sso = stack.Stack(haproxy=False, user="agent1002@example.com", access_ttl=TTL)
    fin = stack.FinesseSim(agents=3, ids=sso.ids, presence_grace_s=15)
    # sessions kept (sealed) in Redis: a restart resumes an SSO agent too
    extra = {"server": {"session_key_file": sso.tmp.write("secrets/connector-session.key",
                                                          os.urandom(32), 0o600)},
             "redis": {"url": sso.redis.url, "prefix": "fsc-conn:"}}
    conn = stack.Connector(fin, sso_url=sso.a.url,
                           service_key_file=sso.secrets.service_key_file, extra=extra)

    status, body = conn.api("POST", "/api/v1/login", body={"handoff": "A" * 43,
                                                          "extension": "1002"})
    assert status == 401 and body["error"] == "invalid_handoff", \
        "forged handoff refused: %d %r" % (status, body)

    code = sso.login()
    status, body = conn.api("POST", "/api/v1/login", body={"handoff": code, "extension": "1002"})
    assert status == 200, "SSO sign-in: %d %r" % (status, body)
    assert body["agent"]["id"] == "1002", "IdS user mapped to loginId 1002: %r" % body
    token = body["token"]
    status, again = conn.api("POST", "/api/v1/login", body={"handoff": code, "extension": "1002"})
    assert status == 401, "a handoff code works once: %d %r" % (status, again)
    sse = conn.events(token)
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "NOT_READY",
             what="NOT_READY after SSO sign-in")
    status, r = conn.api("POST", "/api/v1/state", token, {"state": "READY"})
    assert status == 202, "READY with the Bearer token: %d %r" % (status, r)
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "READY", what="READY")
    print("ok  SSO sign-in through fsc-sso: loginId 1002, REST with Bearer, XMPP with the token")

    grants = sso.ids.stats()["grants"]["refresh_token"]
    time.sleep(TTL + 2)  # the first access token has expired
    status, r = conn.api("POST", "/api/v1/state", token, {"state": "NOT_READY"})
    assert status == 202, "after expiry the agent still works: %d %r" % (status, r)
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "NOT_READY",
             what="NOT_READY after token expiry")
    refreshed = sso.ids.stats()["grants"]["refresh_token"] - grants
    assert refreshed >= 1, "fsc-sso refreshed the token: %d grants" % refreshed
    assert fin.agent("1002")["state"] == "NOT_READY", "still signed in at Finesse"
    print("ok  access token expired mid-shift: request accepted, %d refresh grant(s), "
          "no sign-in prompt" % refreshed)

    # kill -9 and a new process on the same address: the SSO session is
    # resumed from Redis (the fsc-sso session id, sealed), same token
    port = conn.port
    conn.kill()
    sse.close()
    conn = stack.Connector(fin, sso_url=sso.a.url, port=port, name="connector-2",
                           service_key_file=sso.secrets.service_key_file, extra=extra)
    stack.wait_until(lambda: "event=session_resumed agent=1002 extension=1002 sso=1"
                     in conn.log_text(), 15, what="the SSO session resumed")
    status, r = conn.api("POST", "/api/v1/state", token, {"state": "READY"})
    assert status == 202, "the old token after a restart: %d %r" % (status, r)
    stack.wait_until(lambda: fin.agent("1002")["state"] == "READY", 10, what="READY")
    print("ok  kill -9 + restart: the SSO agent resumed (Bearer from fsc-sso), old token works")

    revoked = sso.ids.stats()["revocations"]
    status, r = conn.api("POST", "/api/v1/logout", token)
    assert status == 200, "logout: %d %r" % (status, r)
    stack.wait_until(lambda: fin.agent("1002")["state"] == "LOGOUT", 10, what="LOGOUT")
    assert sso.ids.stats()["revocations"] == revoked + 1, \
        "the fsc-sso session ended (its refresh token revoked at IdS)"
    print("ok  sign-out ends the Finesse session and the fsc-sso session")
    sse.close()
    conn.stop()
    fin.stop()
    sso.stop()
    print("PASS")


if __name__ == "__main__":
    main()
