# SPDX-License-Identifier: AGPL-3.0-or-later
"""Quickstart: the whole product on one machine, on simulators.

Starts Redis, the Cisco IdS simulator, fsc-sso A and B behind HAProxy, the
Finesse simulator (nodes A and B, a prosody XMPP server each) and
fsc-connector, all on free loopback ports in a temp dir. Then a demo agent
signs in through the load balancer as a browser would (/sso/login, IdS,
/sso/callback, the handoff code), the connector opens the agent's Finesse
session with the SSO token, the agent goes READY, a customer call arrives
with its call variables on the agent's event stream, is answered and hung
up. With --once it stops after that; otherwise the stack stays up for you
to try with curl until Ctrl-C."""
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


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--once", action="store_true", help="sign in, print, stop")
    args = ap.parse_args()

    print("starting Redis, ids-sim, fsc-sso A and B, HAProxy, finesse-sim A and B "
          "(prosody), fsc-connector ...")
    st = stack.Stack(user="agent1001@example.com")
    fin = stack.FinesseSim(agents=5, ids=st.ids, presence_grace_s=60)
    conn = stack.Connector(fin, sso_url=st.url, service_key_file=st.secrets.service_key_file,
                           log_level="info")
    login_url = "%s/sso/login?%s" % (st.url, urllib.parse.urlencode({"return_to": st.return_to}))
    print()
    print("  load balancer (HAProxy) : %s" % st.url)
    print("  fsc-sso A               : %s" % st.a.url)
    print("  fsc-sso B               : %s" % st.b.url)
    print("  IdS simulator           : %s" % st.ids.url)
    print("  Redis                   : %s" % st.redis.url)
    print("  Finesse A / B (sim)     : %s  %s" % (fin.url_a, fin.url_b))
    print("  fsc-connector           : %s" % conn.url)
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
                   ecc={"user.sf_recordId": "001xx000003DGb2AAG"})
    ev = tab.wait(lambda e: e.get("event") == "dialog" and e["data"]["id"] == did, what="call")
    d = ev["data"]
    print("6. a customer call arrives on the agent's event stream %.0f ms after the "
          "simulated ACD routed it:"
          % ((time.time() - t0) * 1000))
    print("   dialog %s %s from %s, queue %s, callVariable1=%r, ECC user.sf_recordId=%r"
          % (d["id"], d["state"], d["from"], d["queue"], d["callvariables"]["callVariable1"],
             d["ecc"]["user.sf_recordId"]))
    conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": "answer"})
    tab.wait(lambda e: e.get("event") == "dialog" and e["data"]["state"] == "ACTIVE",
             what="answered")
    print("7. the agent answers (POST /api/v1/calls/{id}/actions answer): ACTIVE")
    fin.hangup(did)
    tab.wait(lambda e: e.get("event") == "dialog" and e["data"]["state"] == "DROPPED",
             what="hung up")
    print("8. the customer hangs up: DROPPED (the Salesforce screen pop and Task come with")
    print("   the next release)")
    status, t = st.client().handoff(stack.login_flow(st.url, st.return_to))
    status, t = st.client().token(t["session"])
    assert status == 200, (status, t)
    c = claims(t["access_token"])
    print("9. the IdS token behind it, as fsc-sso serves it (GET /v1/sessions/{id}/token):")
    print("   access_token=%s…%s  user=%s  expires in %d s"
          % (t["access_token"][:16], t["access_token"][-6:], t["user"],
             t["expires_at"] - int(time.time())))
    print("   claims: iss=%s aud=%s upn=%s" % (c["iss"], c["aud"], c["upn"]))
    tab.close()
    print()
    if args.once:
        conn.stop()
        fin.stop()
        st.stop()
        print("quickstart: ok")
        return
    print("Try it yourself:")
    print("  curl -N '%s/api/v1/events?token=%s' &" % (conn.url, token))
    print("  curl -s -X POST %s/sim/calls -d '{\"agent\": \"1001\", \"ani\": \"+15551234\"}'"
          % fin.control)
    print("Ctrl-C stops everything.")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    conn.stop()
    fin.stop()
    st.stop()


if __name__ == "__main__":
    main()
