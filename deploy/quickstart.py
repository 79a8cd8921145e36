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
appears in Salesforce.

--no-sso runs a site without SSO: no IdS, no fsc-sso, no HAProxy; the
connector alone, and the agent signs in with its Finesse password.

With --once it stops after that; otherwise the stack stays up and a new
customer call reaches the demo agent every --every seconds (answered for
the agent when nobody does it in the browser, then hung up, and its Task
written), so calls, pops and Tasks can be watched in a browser at the
printed URL, until Ctrl-C."""
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


def start_sso():
    """Redis, ids-sim, fsc-sso A and B, HAProxy, finesse-sim, sf-sim and a
    connector that uses fsc-sso; the demo agent signed in through the
    load balancer. Returns (parts dict, token, sign-in note)."""
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
    conn = connector(fin, sf, st.redis, st.tmp, sso_url=st.url,
                     service_key_file=st.secrets.service_key_file)
    login_url = "%s/sso/login?%s" % (st.url, urllib.parse.urlencode({"return_to": st.return_to}))
    print()
    print("  load balancer (HAProxy) : %s" % st.url)
    print("  fsc-sso A               : %s" % st.a.url)
    print("  fsc-sso B               : %s" % st.b.url)
    print("  IdS simulator           : %s" % st.ids.url)
    print("  Redis                   : %s" % st.redis.url)
    print_common(fin, sf, conn)
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
    print("4. the softphone signs in to fsc-connector with it: agent %s, extension %s"
          % (body["agent"]["id"], body["agent"]["extension"]))
    print("   (fsc-connector redeemed the code at fsc-sso, mapped agent1001@example.com to")
    print("    Finesse loginId 1001, and uses the IdS token for Finesse REST and XMPP)")
    parts = {"st": st, "fin": fin, "sf": sf, "conn": conn}
    return parts, body["token"], ('"Sign in with SSO" (the IdS simulator signs you in as '
                                  'agent1001@example.com), extension 1001')


def start_no_sso():
    """Redis, finesse-sim, sf-sim and a connector without [sso]; the demo
    agent signed in with its Finesse password."""
    print("starting Redis, finesse-sim A and B (prosody), sf-sim, fsc-connector "
          "(no SSO: the connector alone, Finesse passwords) ...")
    tmp = stack.TempDir(prefix="fsc-quickstart-")
    redis = stack.Redis(tmp=tmp)
    fin = stack.FinesseSim(agents=5, presence_grace_s=60, transports=("websocket",), tmp=tmp)
    sf = stack.SfSim(tmp=tmp)
    conn = connector(fin, sf, redis, tmp)
    print()
    print("  Redis                   : %s" % redis.url)
    print_common(fin, sf, conn)
    print("1-4. no SSO: the softphone signs the agent in to fsc-connector with the Finesse")
    print("   password (POST /api/v1/login {agent, password, extension}); the connector")
    print("   checks it with Finesse (GET User/1001, Basic auth) and holds the session")
    status, body = conn.login("1001", "pw1001", "1001")
    assert status == 200, (status, body)
    print("   agent %s, extension %s signed in with its Finesse password"
          % (body["agent"]["id"], body["agent"]["extension"]))
    parts = {"redis": redis, "fin": fin, "sf": sf, "conn": conn}
    return parts, body["token"], "Agent ID 1001, Password pw1001, Extension 1001"


def connector(fin, sf, redis, tmp, sso_url=None, service_key_file=None):
    return stack.Connector(fin, sso_url=sso_url, service_key_file=service_key_file,
                           log_level="info", transport="websocket", extra={
                               "server": {"session_key_file": tmp.write(
                                   "secrets/connector-session.key", os.urandom(32), 0o600)},
                               "redis": {"url": redis.url, "prefix": "fsc-connector:"},
                               "salesforce": {
                                   "login_url": sf.login_url, "client_id": sf.consumer_key,
                                   "jwt_key_file": sf.key_file,
                                   "integration_user": sf.integration_user,
                                   "org_origins": sf.ui_url,
                                   "spool_dir": os.path.join(tmp.sub("connector-spool"),
                                                             "spool")}})


def softphone_url(sf, conn):
    return "%s/lightning/page/home?%s" % (
        sf.ui_url, urllib.parse.urlencode({"softphone": conn.url + "/softphone/"}))


def print_common(fin, sf, conn):
    print("  Finesse A / B (sim)     : %s  %s" % (fin.url_a, fin.url_b))
    print("  notifications (XMPP)    : %s  %s (WebSocket, as Finesse 12.5+)"
          % (fin.ws_url_a, fin.ws_url_b))
    print("  fsc-connector           : %s" % conn.url)
    print("  Salesforce (sim) API    : %s" % sf.api_url)
    print("  softphone in Salesforce : %s" % softphone_url(sf, conn))
    print()


def wait_task(sf, did, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        task = sf.tasks(external_id=did)
        if task:
            return task[0]
        time.sleep(0.2)
    raise AssertionError("no Task for %s in sf-sim" % did)


def first_call(parts, token, tab, contact):
    """Steps 5-8: READY, a call with its pop, answer, hang-up, the Task."""
    fin, sf, conn = parts["fin"], parts["sf"], parts["conn"]
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
    t = wait_task(sf, did)
    print("   the call's Task in Salesforce (upserted on Finesse_Call_Id__c=%s):" % did)
    print("   %s | CallType %s | %s s | WhoId %s | Status %s | Owner %s"
          % (t.get("Subject"), t.get("CallType"), t.get("CallDurationInSeconds"),
             t.get("WhoId"), t.get("Status"), t.get("OwnerId")))


def print_sso_token(st):
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


def dialog_state(tab, did, states, timeout):
    """Wait up to timeout for the dialog to reach one of states; True if it did."""
    try:
        tab.wait(lambda e: e.get("event") == "dialog" and e["data"]["id"] == did
                 and e["data"]["state"] in states, timeout=timeout, what="dialog")
        return True
    except (AssertionError, TimeoutError):
        return False


def call_loop(parts, token, tab, contacts, every):
    """A customer call every `every` seconds until Ctrl-C: ringing for
    a third of the period (answer it in the browser), answered for the
    agent if nobody did, hung up, its Task written."""
    fin, sf, conn = parts["fin"], parts["sf"], parts["conn"]
    n = 0
    while True:
        n += 1
        slot = time.time() + every
        contact = contacts[n % len(contacts)] if contacts else None
        conn.api("POST", "/api/v1/state", token, {"state": "READY"})
        did = fin.call("1001", ani="+1415555%04d" % (100 + n), dnis="8000", queue="Sales",
                       callvariables={"callVariable1": "Order %d" % (4711 + n)},
                       ecc={"user.sf_recordId": contact["Id"]} if contact else {})
        print("call %d: +1415555%04d -> agent 1001 (dialog %s), ringing%s"
              % (n, 100 + n, did, ", pops %s %s" % (contact.get("FirstName", ""),
                                                      contact.get("LastName", ""))
                 if contact else ""))
        by = "in the browser"
        if not dialog_state(tab, did, ("ACTIVE",), every / 3.0):
            conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": "answer"})
            by = "by the quickstart"
            dialog_state(tab, did, ("ACTIVE",), 10)
        time.sleep(max(0.5, every / 3.0))
        fin.hangup(did)
        dialog_state(tab, did, ("DROPPED",), 10)
        t = wait_task(sf, did)
        print("call %d: answered %s, hung up; Task %s in Salesforce: %s, %s s"
              % (n, by, t.get("Id"), t.get("Subject"), t.get("CallDurationInSeconds")))
        time.sleep(max(0.0, slot - time.time()))


def interrupted(*_):
    # once: the orderly stop that follows is not to be cut short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--once", action="store_true", help="one call, print, stop")
    ap.add_argument("--no-sso", action="store_true",
                    help="a site without SSO: the connector alone, Finesse passwords")
    ap.add_argument("--every", type=float, default=8.0, metavar="SECONDS",
                    help="without --once: a new call this often (default 8)")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    parts, token, how = start_no_sso() if args.no_sso else start_sso()
    # from here on Ctrl-C (or SIGTERM) is the way to stop, not a failure:
    # stop the parts in order and remove the temp dir
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    sf, conn = parts["sf"], parts["conn"]
    contacts = [r for r in sf.records("Contact") if r.get("Id")]
    contact = next(r for r in contacts if r.get("LastName") == "Doe")
    tab = conn.events(token)
    tab.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] in
             ("NOT_READY", "READY"), what="signed in")
    try:
        first_call(parts, token, tab, contact)
        if not args.no_sso:
            print_sso_token(parts["st"])
        print()
        if args.once:
            print("quickstart: ok")
            return
        print("Watch it in a browser: open")
        print("  %s" % softphone_url(sf, conn))
        print("and sign in to the softphone with %s." % how)
        print("A customer call reaches agent 1001 every %g s: answer it there (or the "
              "quickstart does),\nsee the screen pop, and the call's Task in Salesforce "
              "(%s/sim/tasks). Ctrl-C stops everything." % (args.every, sf.api_url))
        print()
        call_loop(parts, token, tab, contacts, args.every)
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        tab.close()
        for name in ("conn", "fin", "sf", "st", "redis"):
            if name in parts:
                parts[name].stop()


if __name__ == "__main__":
    main()
