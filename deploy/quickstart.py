# SPDX-License-Identifier: AGPL-3.0-or-later
"""Quickstart: the whole product on one machine, on simulators.

Starts Redis, the Cisco IdS simulator, fsc-sso A and B behind HAProxy, the
Finesse simulator (nodes A and B, a prosody XMPP server each), the
Salesforce simulator (REST API + a Lightning page that frames the
softphone) and fsc-connector, all on free loopback ports in a temp dir.
Then a demo agent signs in through the load balancer as a browser would
(/sso/login, IdS, /sso/callback, the handoff code), the connector opens the
agent's Finesse session with the SSO token, the agent goes READY, a
customer call arrives with its call variables on the agent's event stream
together with its screen pop, is answered and hung up, and the call's Task
appears in Salesforce. With --once it stops after that; otherwise the stack
stays up for you to try (a browser on the printed softphone URL, or curl)
until Ctrl-C."""
import argparse
import base64
import json
import os
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import stack  # noqa: E402


def _part(jwt, i):
    part = jwt.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def claims(jwt):
    return _part(jwt, 1)


def header(jwt):
    return _part(jwt, 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--once", action="store_true", help="sign in, print, stop")
    args = ap.parse_args()

    print("starting Redis, ids-sim, fsc-sso A and B, HAProxy, finesse-sim A and B "
          "(prosody), sf-sim, fsc-connector ...")
    # IdS issues tokens as Cisco documents them (IdS 12.6(2)+): RS256, the
    # user inside a JSON-string sub, the key at /ids/v1/keys/token/public
    st = stack.Stack(user="agent1001@example.com", token_shape="cisco")
    # Finesse as a stock 12.5+ node serves notifications: XMPP over
    # WebSocket on the REST port (/ws), 5222 closed
    fin = stack.FinesseSim(agents=5, ids=st.ids, presence_grace_s=60,
                           transports=("websocket",))
    sf = stack.SfSim(tmp=st.tmp)
    conn = stack.Connector(fin, sso_url=st.url, service_key_file=st.secrets.service_key_file,
                           log_level="info", transport="websocket", extra={
                               "server": {"session_key_file": st.tmp.write(
                                   "secrets/connector-session.key", os.urandom(32), 0o600)},
                               "redis": {"url": st.redis.url, "prefix": "fsc-connector:"},
                               "salesforce": {
                                   "login_url": sf.login_url, "client_id": sf.consumer_key,
                                   "jwt_key_file": sf.key_file,
                                   "integration_user": sf.integration_user,
                                   "org_origins": sf.ui_url,
                                   "spool_dir": os.path.join(st.tmp.sub("connector-spool"),
                                                             "spool")}})
    contact = next(r for r in sf.records("Contact") if r.get("LastName") == "Doe")
    login_url = "%s/sso/login?%s" % (st.url, urllib.parse.urlencode({"return_to": st.return_to}))
    print()
    print("  load balancer (HAProxy) : %s" % st.url)
    print("  fsc-sso A               : %s" % st.a.url)
    print("  fsc-sso B               : %s" % st.b.url)
    print("  IdS simulator           : %s" % st.ids.url)
    print("  Redis                   : %s" % st.redis.url)
    print("  Finesse A / B (sim)     : %s  %s" % (fin.url_a, fin.url_b))
    print("  notifications (XMPP)    : %s  %s (WebSocket, as Finesse 12.5+)"
          % (fin.ws_url_a, fin.ws_url_b))
    print("  fsc-connector           : %s" % conn.url)
    print("  Salesforce (sim) API    : %s" % sf.api_url)
    print("  softphone in Salesforce : %s/lightning/page/home?%s"
          % (sf.ui_url, urllib.parse.urlencode({"softphone": conn.url + "/softphone/"})))
    print()
    print("1. the softphone sends the agent to:\n   %s" % login_url)
    cb = stack.start_login(st.url, st.return_to)
    print("2. IdS signs the agent in and sends the browser back to:\n   %s"
          % cb.split("?")[0] + "?code=…&state=…")
    code = stack.finish_login(cb, st.url)
    print("3. fsc-sso redirects to the softphone with a one-time handoff code:\n"
          "   %s?handoff=%s…" % (st.return_to, code[:8]))
    # what fsc-connector does with the code (POST /api/v1/login)
    status, body = conn.api("POST", "/api/v1/login", body={"handoff": code, "extension": "1001"})
    assert status == 200, (status, body)
    token = body["token"]
    print("4. the softphone signs in to fsc-connector with it: agent %s, extension %s"
          % (body["agent"]["id"], body["agent"]["extension"]))
    print("   (fsc-connector redeemed the code at fsc-sso, mapped agent1001@example.com to")
    print("    Finesse loginId 1001, and uses the IdS token for Finesse REST and XMPP)")
    tab = conn.events(token)
    tab.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "NOT_READY",
             what="signed in")
    conn.api("POST", "/api/v1/state", token, {"state": "READY"})
    tab.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "READY", what="READY")
    print("5. the agent goes READY")
    t0 = time.time()
    did = fin.call("1001", ani="+14155550100", dnis="8000", queue="Sales",
                   callvariables={"callVariable1": "Order 4711"},
                   ecc={"user.sf_recordId": contact["Id"]})
    ev = tab.wait(lambda e: e.get("event") == "dialog" and e["data"]["id"] == did, what="call")
    d = ev["data"]
    pop = tab.wait(lambda e: e.get("event") == "pop" and e["data"].get("dialog_id") == did,
                   what="screen pop")["data"]
    print("6. a customer call arrives on the agent's event stream %.0f ms after the "
          "simulated ACD routed it:"
          % ((time.time() - t0) * 1000))
    print("   dialog %s %s from %s, queue %s, callVariable1=%r, ECC user.sf_recordId=%r"
          % (d["id"], d["state"], d["from"], d["queue"], d["callvariables"]["callVariable1"],
             d["ecc"]["user.sf_recordId"]))
    print("   screen pop for the Salesforce tab: %s %s (%s %s, the record the call names)"
          % (pop["type"], json.dumps(pop.get("params", {})), contact.get("FirstName", ""),
             contact.get("LastName", "")))
    conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": "answer"})
    tab.wait(lambda e: e.get("event") == "dialog" and e["data"]["state"] == "ACTIVE",
             what="answered")
    print("7. the agent answers (POST /api/v1/calls/{id}/actions answer): ACTIVE")
    fin.hangup(did)
    tab.wait(lambda e: e.get("event") == "dialog" and e["data"]["state"] == "DROPPED",
             what="hung up")
    print("8. the customer hangs up: DROPPED")
    task = None
    deadline = time.time() + 20
    while time.time() < deadline and not task:
        task = sf.tasks(external_id=did)
        time.sleep(0.2)
    assert task, "no Task for %s in sf-sim" % did
    t = task[0]
    print("   the call's Task in Salesforce (upserted on Finesse_Call_Id__c=%s):" % did)
    print("   %s | CallType %s | %s s | WhoId %s | Status %s | Owner %s"
          % (t.get("Subject"), t.get("CallType"), t.get("CallDurationInSeconds"),
             t.get("WhoId"), t.get("Status"), t.get("OwnerId")))
    status, t = st.client().handoff(stack.login_flow(st.url, st.return_to))
    status, t = st.client().token(t["session"])
    assert status == 200, (status, t)
    c = claims(t["access_token"])
    print("9. the IdS token behind it, as fsc-sso serves it (GET /v1/sessions/{id}/token):")
    print("   access_token=%s…%s  user=%s  expires in %d s"
          % (t["access_token"][:16], t["access_token"][-6:], t["user"],
             t["expires_at"] - int(time.time())))
    sub = json.loads(c["sub"])
    print("   Cisco's shape: header %s, claims iss=%s, sub (a JSON string) user_id=%s upn=%s"
          % (json.dumps(header(t["access_token"]), separators=(",", ":")), c["iss"],
             sub["user_id"], sub["upn"]))
    print("   (fsc-sso verified it with the key IdS serves at /ids/v1/keys/token/public)")
    tab.close()
    print()
    if args.once:
        conn.stop()
        fin.stop()
        sf.stop()
        st.stop()
        print("quickstart: ok")
        return
    print("Try it yourself:")
    print("  curl -N -H 'Authorization: Bearer %s' %s/api/v1/events &" % (token, conn.url))
    print("  curl -s -X POST %s/sim/calls -d '{\"agent\": \"1001\", \"ani\": \"+15551234\"}'"
          % fin.control)
    print("Ctrl-C stops everything.")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    conn.stop()
    fin.stop()
    sf.stop()
    st.stop()


if __name__ == "__main__":
    main()
