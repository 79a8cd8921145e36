#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Self-test of finesse-sim: two prosodies + the simulator via tests/lib/stack.py,
a minimal XMPP client (xmpp_test_client.py: stream, SASL PLAIN, bind, presence),
REST calls. Then the three XMPP transports of a Finesse 12.5+ (STARTTLS,
direct TLS, WebSocket on the REST port) end to end, the WebSocket knobs
(404, no_subprotocol, drop, inject) seen from the client, and a stock
configuration whose c2s port is closed.
Exits non-zero on the first failure. ~20 s."""

import base64
import os
import queue
import socket
import ssl
import sys
import threading
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
import stack  # noqa: E402
from xmpp_test_client import (AuthFailed, HandshakeRefused, NoSubprotocol, StreamLink,  # noqa: E402
                              WsLink, Xmpp)


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    print("ok  ", msg, flush=True)


def rest(method, url, auth, body=None, rid=None, context=None):
    h = dict(auth)
    if body is not None:
        h["Content-Type"] = "application/xml"
    if rid:
        h["requestId"] = rid
    return stack.http(method, url, headers=h, body=body, context=context)


def main():
    tmp = stack.TempDir("fsc-finsim-")
    ids = stack.IdsSim("fsc-connector", "s3cret", ["http://127.0.0.1:9/cb"], user="agent1001@example.com",
                       tmp=tmp)
    fin = stack.FinesseSim(agents=5, ids=ids, presence_grace_s=3, wrap_up="REQUIRED", tmp=tmp)
    A, B = fin.url_a + "/finesse/api", fin.url_b + "/finesse/api"
    au = basic("1001", "pw1001")
    t0 = time.monotonic()

    # SystemInfo
    s, _, body = stack.http("GET", A + "/SystemInfo")
    si = ET.fromstring(body)
    check(s == 200 and si.findtext("status") == "IN_SERVICE" and si.findtext("deploymentType") == "UCCE"
          and si.findtext("xmppPubSubDomain") == "pubsub.finesse.test"
          and si.findtext("secondaryNode/xmppPort") == str(fin.xmpp_b[1]), "SystemInfo on A")

    # XMPP: bad password refused, good one accepted
    try:
        Xmpp(fin.xmpp_a, "1001", fin.domain, "wrong")
        check(False, "XMPP wrong password refused")
    except AuthFailed:
        check(True, "XMPP wrong password refused")
    x = Xmpp(fin.xmpp_a, "1001", fin.domain, "pw1001")
    stack.wait_until(lambda: fin.agent("1001")["presence"]["A"] == 1, 5, what="presence A")
    check(True, "XMPP login (PLAIN, bind, presence) on node A; sim sees presence")

    # auth errors
    s, _, body = rest("GET", A + "/User/1001", basic("1001", "nope"))
    check(s == 401 and b"<ErrorType>Authorization Failure</ErrorType>" in body, "wrong password -> 401 ApiErrors")
    s, _, body = rest("GET", A + "/User/1002", au)
    check(s == 401, "reading another user -> 401")
    s, _, body = rest("GET", A + "/User/9999", au)
    check(s == 404 and b"Not Found" in body, "unknown user -> 404")

    # LOGIN -> NOT_READY, notification with requestId
    s, h, body = rest("PUT", A + "/User/1001", au, "<User><state>LOGIN</state><extension>1001</extension></User>",
                      rid="rq-login")
    check(s == 202 and body == b"" and h.get("requestid") == "rq-login", "PUT LOGIN -> 202, requestId echoed")
    u = x.wait(lambda n, u: n == "/finesse/api/User/1001" and u.findtext("requestId") == "rq-login")
    check(u.findtext("data/user/state") == "NOT_READY" and u.findtext("event") == "PUT"
          and u.findtext("source") == "/finesse/api/User/1001", "User Update NOT_READY via XMPP")
    s, _, body = rest("PUT", A + "/User/1001", au, "<User><state>NOT_READY</state><reasonCodeId>2</reasonCodeId></User>",
                      rid="rq-nr")
    u = x.wait(lambda n, u: u.findtext("requestId") == "rq-nr")
    check(u.findtext("data/user/reasonCodeId") == "2" and u.findtext("data/user/ReasonCode/label") == "Lunch",
          "NOT_READY with reason code 2 (Lunch)")
    s, _, body = rest("PUT", A + "/User/1001", au, "<User><state>BOGUS</state></User>")
    check(s == 400 and b"Invalid Input" in body, "bad state -> 400 Invalid Input")
    s, _, body = rest("GET", A + "/User/1001/ReasonCodes?category=LOGOUT", au)
    check(s == 200 and b"End of shift" in body, "ReasonCodes LOGOUT")
    s, _, body = rest("GET", A + "/User/1001/WrapUpReasons", au)
    check(s == 200 and b"<label>Sales</label>" in body, "WrapUpReasons")
    s, _, body = rest("PUT", A + "/User/1001", au, "<User><state>READY</state></User>", rid="rq-ready")
    x.wait(lambda n, u: u.findtext("requestId") == "rq-ready" and u.findtext("data/user/state") == "READY")
    check(True, "READY")
    s, _, body = rest("PUT", A + "/User/1001", au, "<User><state>LOGOUT</state></User>")
    check(s == 400 and b"Invalid State" in body, "LOGOUT from READY -> 400 Invalid State")

    # inbound call with variables
    did = fin.call("1001", ani="+14155550100", dnis="8000", queue="Sales",
                   callvariables={"callVariable1": "Chuck & <Smith>"}, ecc={"user.sf_recordId": "001XYZ"})
    u = x.wait(lambda n, u: n == "/finesse/api/User/1001/Dialogs" and u.findtext("event") == "POST")
    dlg = u.find("data/dialogs/Dialog")
    cvs = {c.findtext("name"): c.findtext("value") for c in dlg.iter("CallVariable")}
    check(dlg.findtext("id") == did and dlg.findtext("state") == "ALERTING"
          and dlg.findtext("fromAddress") == "+14155550100"
          and cvs == {"callVariable1": "Chuck & <Smith>", "user.sf_recordId": "001XYZ"}
          and dlg.findtext("mediaProperties/queueName") == "Sales", "Dialogs POST ALERTING with variables")
    check(fin.agent("1001")["state"] == "RESERVED", "agent RESERVED while alerting")
    s, _, body = rest("PUT", A + "/Dialog/%s" % did, au,
                      "<Dialog><targetMediaAddress>1001</targetMediaAddress><requestedAction>ANSWER"
                      "</requestedAction></Dialog>", rid="rq-ans")
    u = x.wait(lambda n, u: u.findtext("requestId") == "rq-ans")
    check(s == 202 and u.findtext("data/dialog/state") == "ACTIVE"
          and u.findtext("source") == "/finesse/api/Dialog/%s" % did, "ANSWER -> dialog ACTIVE (PUT)")
    x.wait(lambda n, u: u.findtext("data/user/state") == "TALKING")
    check(True, "agent TALKING")
    s, _, _ = rest("PUT", A + "/Dialog/%s" % did, au,
                   "<Dialog><targetMediaAddress>1001</targetMediaAddress><requestedAction>HOLD"
                   "</requestedAction></Dialog>", rid="rq-hold")
    u = x.wait(lambda n, u: u.findtext("requestId") == "rq-hold")
    me = [p for p in u.iter("Participant") if p.findtext("mediaAddress") == "1001"][0]
    check(me.findtext("state") == "HELD" and "RETRIEVE" in [a.text for a in me.iter("action")],
          "HOLD -> participant HELD, RETRIEVE offered")
    s, _, _ = rest("PUT", A + "/Dialog/%s" % did, au,
                   "<Dialog><targetMediaAddress>1001</targetMediaAddress><requestedAction>ANSWER"
                   "</requestedAction></Dialog>", rid="rq-bad")
    u = x.wait(lambda n, u: u.findtext("requestId") == "rq-bad")
    check(s == 202 and u.findtext("data/apiErrors/apiError/errorMessage") == "CF_INVALID_OBJECT_STATE"
          and u.findtext("data/apiErrors/apiError/errorData") == "22", "ANSWER on held call -> 202 + async apiErrors")
    rest("PUT", A + "/Dialog/%s" % did, au, "<Dialog><targetMediaAddress>1001</targetMediaAddress>"
         "<requestedAction>RETRIEVE</requestedAction></Dialog>", rid="rq-ret")
    x.wait(lambda n, u: u.findtext("requestId") == "rq-ret")
    rest("PUT", A + "/Dialog/%s" % did, au, "<Dialog><targetMediaAddress>1001</targetMediaAddress>"
         "<requestedAction>SEND_DTMF</requestedAction><actionParams><ActionParam><name>dtmfString</name>"
         "<value>12#</value></ActionParam></actionParams></Dialog>")
    s, _, _ = rest("PUT", A + "/Dialog/%s" % did, au, "<Dialog><requestedAction>UPDATE_CALL_DATA</requestedAction>"
                   "<mediaProperties><callvariables><CallVariable><name>callVariable2</name><value>v2</value>"
                   "</CallVariable></callvariables></mediaProperties></Dialog>", rid="rq-ucd")
    u = x.wait(lambda n, u: u.findtext("requestId") == "rq-ucd")
    check(fin.dialog(did)["dtmf"] == "12#" and fin.dialog(did)["callvariables"]["callVariable2"] == "v2",
          "SEND_DTMF recorded, UPDATE_CALL_DATA callvariables")

    # failover: A out of service, B serves the same call
    fin.node("OUT_OF_SERVICE")
    u = x.wait(lambda n, u: n == "/finesse/api/SystemInfo")
    check(u.findtext("data/systemInfo/status") == "OUT_OF_SERVICE", "SystemInfo OUT_OF_SERVICE Update via A")
    s, _, body = rest("GET", A + "/User/1001", au)
    check(s == 503 and b"SERVER_OUT_OF_SERVICE" in body, "A -> 503 SERVER_OUT_OF_SERVICE")
    s, _, body = rest("GET", B + "/User/1001/Dialogs", au)
    d2 = ET.fromstring(body).find("Dialog")
    cvs = {c.findtext("name"): c.findtext("value") for c in d2.iter("CallVariable")}
    check(s == 200 and d2.findtext("id") == did and d2.findtext("state") == "ACTIVE"
          and cvs.get("user.sf_recordId") == "001XYZ", "B GET Dialogs shows the live call with variables")
    x2 = Xmpp(fin.xmpp_b, "1001", fin.domain, "pw1001", resource="b")
    fin.node("IN_SERVICE")
    u = x.wait(lambda n, u: n == "/finesse/api/SystemInfo")
    check(u.findtext("data/systemInfo/status") == "IN_SERVICE", "IN_SERVICE Update")

    # wrap-up (REQUIRED): hangup -> DROPPED, participant WRAP_UP, agent WORK_READY
    x.drain()
    fin.hangup(did)
    u = x.wait(lambda n, u: u.findtext("data/dialog/state") == "DROPPED")
    check(True, "hangup -> dialog DROPPED (PUT)")
    u = x2.wait(lambda n, u: u.findtext("data/user/state") == "WORK_READY")
    check(True, "agent WORK_READY after the call (delivered through B as well)")
    rest("PUT", A + "/Dialog/%s" % did, au, "<Dialog><requestedAction>UPDATE_CALL_DATA</requestedAction>"
         "<mediaProperties><wrapUpReason>Sales</wrapUpReason></mediaProperties></Dialog>", rid="rq-wu")
    u = x.wait(lambda n, u: u.findtext("requestId") == "rq-wu")
    check(u.findtext("data/dialog/mediaProperties/wrapUpReason") == "Sales", "wrap-up reason set in WRAP_UP")
    rest("PUT", A + "/User/1001", au, "<User><state>READY</state></User>")
    u = x.wait(lambda n, u: u.findtext("event") == "DELETE")
    check(u.find("data/dialogs/Dialog").findtext("id") == did, "Dialogs DELETE after wrap-up")
    x2.close()

    # outbound + consult + transfer to agent 1002 (driven through the control API)
    fin.set_state("1002", "LOGIN", extension="1002")
    rest("PUT", A + "/User/1001", au, "<User><state>NOT_READY</state></User>")
    rest("POST", A + "/User/1001/Dialogs", au, "<Dialog><requestedAction>MAKE_CALL</requestedAction>"
         "<toAddress>5551234</toAddress><fromAddress>1001</fromAddress></Dialog>", rid="rq-mk")
    u = x.wait(lambda n, u: u.findtext("requestId") == "rq-mk" and u.findtext("event") == "POST")
    out = u.find("data/dialogs/Dialog").findtext("id")
    x.wait(lambda n, u: u.findtext("data/dialog/state") == "ACTIVE", what="outbound ACTIVE")
    check(True, "MAKE_CALL -> INITIATED -> ACTIVE (remote auto-answer)")
    rest("PUT", A + "/Dialog/%s" % out, au, "<Dialog><targetMediaAddress>1001</targetMediaAddress>"
         "<toAddress>1002</toAddress><requestedAction>CONSULT_CALL</requestedAction></Dialog>", rid="rq-cons")
    u = x.wait(lambda n, u: u.findtext("requestId") == "rq-cons" and u.findtext("event") == "POST")
    cons = u.find("data/dialogs/Dialog")
    check(cons.findtext("mediaProperties/callType") == "CONSULT", "CONSULT_CALL -> second dialog (CONSULT)")
    stack.wait_until(lambda: [d for d in fin.agent("1002")["dialogs"] if d["id"] == cons.findtext("id")],
                     3, what="consult ringing at 1002")
    fin.action(cons.findtext("id"), "1002", "ANSWER")
    x.wait(lambda n, u: u.findtext("data/dialog/id") == cons.findtext("id")
           and u.findtext("data/dialog/state") == "ACTIVE")
    rest("PUT", A + "/Dialog/%s" % out, au, "<Dialog><targetMediaAddress>1001</targetMediaAddress>"
         "<requestedAction>TRANSFER</requestedAction></Dialog>", rid="rq-xfer")
    x.wait(lambda n, u: u.findtext("event") == "DELETE" and u.find("data/dialogs/Dialog").findtext("id") == out)
    a2 = fin.agent("1002")
    check(fin.agent("1001")["dialogs"] == [] and a2["state"] == "TALKING"
          and a2["dialogs"][0]["id"] == out and a2["dialogs"][0]["secondary_id"] == cons.findtext("id"),
          "TRANSFER: the call moved to 1002 (surviving dialog, secondaryId = consult id)")
    fin.hangup(out)

    # Bearer token from ids-sim: REST and XMPP password
    br = stack.Browser()
    import hashlib, secrets as _s, urllib.parse
    ver = _s.token_urlsafe(32)
    chal = base64.urlsafe_b64encode(hashlib.sha256(ver.encode()).digest()).rstrip(b"=").decode()
    s, h, _ = br.get(ids.authorize_url + "?" + urllib.parse.urlencode(
        {"client_id": "fsc-connector", "redirect_uri": "http://127.0.0.1:9/cb", "response_type": "code",
         "state": "st", "code_challenge": chal, "code_challenge_method": "S256"}))
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(h["location"]).query)["code"][0]
    s, tok = stack.json_body("POST", ids.token_url, {"Content-Type": "application/x-www-form-urlencoded",
                             **basic("fsc-connector", "s3cret")},
                             urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                                     "redirect_uri": "http://127.0.0.1:9/cb",
                                                     "code_verifier": ver}))
    bearer = {"Authorization": "Bearer " + tok["access_token"]}
    s, _, body = rest("GET", A + "/User?loginName=agent1001@example.com", bearer)
    check(s == 200 and ET.fromstring(body).findtext("loginId") == "1001", "Bearer: GET User?loginName -> 1001")
    s, _, _ = rest("GET", A + "/User/1002", bearer)
    check(s == 401, "Bearer for 1001 cannot read 1002")
    s, _, _ = rest("GET", A + "/User/1001", {"Authorization": "Bearer " + tok["access_token"][:-4] + "AAAA"})
    check(s == 401, "tampered Bearer -> 401")
    x3 = Xmpp(fin.xmpp_b, "1001", fin.domain, tok["access_token"], resource="sso")
    check(True, "XMPP login with the access token as password")
    x3.close()

    # throughput: 200 notifications/s for 3 s to one client
    x.drain()
    n = 600
    t1 = time.monotonic()
    for i in range(n):
        fin.fault(agent="1001", node="A", notification="<Update><data/><event>PUT</event>"
                  "<requestId>bench-%d</requestId><source>/finesse/api/User/1001</source></Update>" % i)
        delay = t1 + (i + 1) / 200.0 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    got = set()
    deadline = time.monotonic() + 5
    while len(got) < n and time.monotonic() < deadline:
        try:
            _, txt, _ = x.updates.get(timeout=0.5)
        except queue.Empty:
            continue
        if "bench-" in txt:
            got.add(txt)
    check(len(got) == n, "throughput: %d/%d notifications at 200/s received (%.1f s)"
          % (len(got), n, time.monotonic() - t1))

    # malformed notification is sent verbatim
    fin.fault(agent="1001", node="A", notification="<Update><data><user>broken")
    _, txt, _ = x.updates.get(timeout=3)
    check(txt == "<Update><data><user>broken", "fault: malformed payload delivered verbatim")

    # xmpp drop + presence grace -> forced LOGOUT 255
    rest("PUT", A + "/User/1001", au, "<User><state>NOT_READY</state></User>")
    fin.node("OUT_OF_SERVICE", xmpp="drop")
    x.closed.wait(3)
    check(x.closed.is_set(), "node A xmpp=drop closed the client session")
    fin.node("IN_SERVICE")
    xb = Xmpp(fin.xmpp_b, "1001", fin.domain, "pw1001", resource="b2")
    time.sleep(4.0)
    check(fin.agent("1001")["state"] == "NOT_READY", "connected to B only: not logged out after grace")
    xb.close()
    time.sleep(1.0)
    check(fin.agent("1001")["state"] == "NOT_READY", "still logged in within the grace period")
    stack.wait_until(lambda: fin.agent("1001")["state"] == "LOGOUT", 6, what="forced logout")
    check(fin.agent("1001")["reason_code_id"] == "255", "presence lost > grace -> LOGOUT reasonCodeId 255")

    st = fin.stats()
    check(st["notifications"]["A"] > n and st["async_errors"] >= 1, "stats: %r" % {
        k: st[k] for k in ("notifications", "async_errors")})
    plain_websocket(fin)
    fin.stop()
    ids.stop()

    pki = stack.TestPki(tmp=tmp)
    three_transports(tmp, pki)
    stock_finesse(tmp, pki)
    print("selftest passed in %.1f s" % (time.monotonic() - t0))
    return 0


# --------------------------------------------------------------------------
# The three transports of a Finesse 12.5+ (5222 STARTTLS, 5223 TLS, 8445/ws)

def plain_websocket(fin):
    """ws:// on a default FinesseSim's REST port (no TLS anywhere)."""
    check(fin.ws_url_b == fin.url_b.replace("http://", "ws://") + "/ws", "ws_url_b is node B's REST port + /ws")
    x = Xmpp(None, "1003", fin.domain, "pw1003", link=WsLink(fin.ws_url_b), resource="ws")
    stack.wait_until(lambda: fin.agent("1003")["presence"]["B"] == 1, 5, what="presence over ws")
    fin.set_state("1003", "LOGIN", extension="1003")
    x.wait(lambda n, u: n == "/finesse/api/User/1003" and u.findtext("data/user/state") == "NOT_READY")
    check(True, "ws:// on node B's REST port: SASL PLAIN, bind, presence, then a User Update")
    s, _, body = stack.http("GET", fin.url_b + "/ws")
    check(s == 400 and b"Invalid Input" in body, "GET /ws without Upgrade: websocket -> 400 ApiErrors")
    fin.node("OUT_OF_SERVICE", node="B", xmpp="drop")
    x.closed.wait(5)
    err = next_in(x.stanzas, lambda el: el.tag == "{http://etherx.jabber.org/streams}error", 1, "stream error")
    check(x.closed.is_set() and "<close/>" in str(x.end)
          and err.find("{urn:ietf:params:xml:ns:xmpp-streams}system-shutdown") is not None,
          "node B xmpp=drop ends WebSocket sessions too (stream error system-shutdown, then <close/>)")
    fin.node("IN_SERVICE", node="B")
    fin.set_state("1003", "LOGOUT")


def signed_in(fin, ctx, agent, link, **kw):
    """Sign agent in over link, LOGIN by REST (HTTPS); return the client once
    the NOT_READY Update arrived over that link."""
    x = Xmpp(None, agent, fin.domain, "pw" + agent, link=link, **kw)
    assert x.secure, "the link is not encrypted"
    s, _, _ = rest("PUT", fin.url_a + "/finesse/api/User/" + agent, basic(agent, "pw" + agent),
                   "<User><state>LOGIN</state><extension>%s</extension></User>" % agent,
                   rid="rq-" + agent, context=ctx)
    assert s == 202, s
    u = x.wait(lambda n, u: u.findtext("requestId") == "rq-" + agent, what="LOGIN Update for " + agent)
    assert u.findtext("data/user/state") == "NOT_READY", ET.tostring(u)
    return x


def certificate_refused(connect):
    try:
        connect().close()
    except ssl.SSLCertVerificationError:
        return True
    return False


def next_in(q, pred, timeout, what):
    """The next item of queue q for which pred(item) is true (others dropped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for %s" % what)
        try:
            item = q.get(timeout=left)
        except queue.Empty:
            continue
        if pred(item):
            return item


def drain(q):
    while not q.empty():
        q.get_nowait()


def three_transports(tmp, pki):
    """STARTTLS, direct TLS and wss:// on one FinesseSim, each end to end."""
    ctx = pki.client_context()
    impostor = pki.client_context(pki.other_ca_file)
    fin = stack.FinesseSim(agents=4, presence_grace_s=30, transports=("starttls", "tls", "websocket"),
                           xmpp_tls=pki.server, rest_tls=pki.server, tmp=tmp)
    s, _, body = stack.http("GET", fin.url_a + "/finesse/api/SystemInfo", context=ctx)
    check(fin.url_a.startswith("https://") and s == 200
          and ET.fromstring(body).findtext("primaryNode/xmppPort") == str(fin.xmpp_a[1]),
          "REST over HTTPS (test CA); SystemInfo's xmppPort is the c2s port, as before")

    # STARTTLS (5222-like): required, PLAIN only inside it
    link = StreamLink(fin.xmpp_a)
    link.open(fin.domain)
    feats = link.next()
    link.close()
    check(feats.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls/{urn:ietf:params:xml:ns:xmpp-tls}required")
          is not None and not list(feats.iter("{urn:ietf:params:xml:ns:xmpp-sasl}mechanism")),
          "starttls: before TLS the c2s port offers STARTTLS (required) and no SASL mechanism")
    x1 = signed_in(fin, ctx, "1001", StreamLink(fin.xmpp_a, ctx=ctx), starttls=True)
    check(True, "starttls: TLS, SASL PLAIN, bind, presence on node A; User Update after REST LOGIN")

    # direct TLS (5223-like), node B
    check(certificate_refused(lambda: StreamLink(fin.xmpp_tls_b, ctx=impostor, direct_tls=True)),
          "tls: a client that trusts another CA refuses the certificate")
    x2 = signed_in(fin, ctx, "1002", StreamLink(fin.xmpp_tls_b, ctx=ctx, direct_tls=True))
    check(True, "tls: direct TLS on node B, SASL PLAIN, bind, presence; User Update after REST LOGIN")

    # WebSocket on the REST port (8445/ws-like), node A
    check(certificate_refused(lambda: WsLink(fin.ws_url_a, ctx=impostor)),
          "wss: a client that trusts another CA refuses the REST port's certificate")
    plain = WsLink(fin.prosody_a.ws_url)          # prosody's own port: no TLS in front of it
    plain.open(fin.domain)
    err = plain.next()
    plain.close()
    check(err.tag == "{http://etherx.jabber.org/streams}error" and "No stream features" in ET.tostring(err).decode(),
          "ws:// straight to prosody (no TLS) is refused with a stream error: no clear-text PLAIN")
    x3 = signed_in(fin, ctx, "1003", WsLink(fin.ws_url_a, ctx=ctx))
    ws = fin.websocket_stats("A")
    check(fin.ws_url_a.startswith("wss://") and ws["accepted"] == 1 and ws["live"] == 1
          and ws["live_agents"] == ["1003"],
          "wss: /ws on node A's REST port, proxied to prosody, knows the agent from the bind result")
    websocket_knobs(fin, ctx, x3)
    for x in (x1, x2):
        check(not x.closed.is_set(), "agent %s's %s session outlived the WebSocket knobs"
              % (x.user, "STARTTLS" if x is x1 else "direct TLS"))
        x.close()
    fin.stop()


def websocket_knobs(fin, ctx, x):
    """404, no_subprotocol, inject and drop, each as the client sees it."""
    A = fin.url_a + "/finesse/api"
    au = basic(x.user, "pw" + x.user)

    fin.websocket_mode("404", node="A")
    try:
        WsLink(fin.ws_url_a, ctx=ctx).close()
        check(False, "mode 404: the upgrade is refused")
    except HandshakeRefused as e:
        check(e.status == 404 and b"<ErrorType>Not Found</ErrorType>" in e.body,
              "mode 404 on A: the upgrade gets HTTP 404 with ApiErrors")
    other = WsLink(fin.ws_url_b, ctx=ctx)
    check(other.status == 101, "node B still upgrades while A answers 404")
    other.close()

    fin.websocket_mode("no_subprotocol", node="A")
    before = fin.websocket_stats("A")
    try:
        WsLink(fin.ws_url_a, ctx=ctx).close()
        check(False, "mode no_subprotocol: 101 without Sec-WebSocket-Protocol")
    except NoSubprotocol as e:
        check(e.headers.get("upgrade", "").lower() == "websocket" and "sec-websocket-protocol" not in e.headers,
              "mode no_subprotocol: 101 Switching Protocols without Sec-WebSocket-Protocol (the client closes)")
    ws = stack.wait_until(lambda: [w for w in [fin.websocket_stats("A")] if w["live"] == before["live"]],
                          5, what="the no_subprotocol connection to end")[0]
    check(ws["no_subprotocol_answered"] == before["no_subprotocol_answered"] + 1
          and ws["data_frames_after_no_subprotocol"] == 0,
          "stats: one no_subprotocol answer, no XMPP frame from the client after it")
    fin.websocket_mode("ok")

    def then_update(tag):
        """A REST state change whose Update must still reach x after an injection."""
        state = "READY" if tag % 2 else "NOT_READY"
        rest("PUT", A + "/User/" + x.user, au, "<User><state>%s</state></User>" % state,
             rid="rq-inj-%d" % tag, context=ctx)
        x.wait(lambda n, u: u.findtext("requestId") == "rq-inj-%d" % tag, what="the Update after injection %d" % tag)

    n = fin.websocket_inject(x.user, "malformed")
    got = x.bad.get(timeout=5)
    then_update(1)
    check(n == 1 and got == ("text", b"<message><a></b>"),
          "inject malformed: <message><a></b> arrived as a text frame; the next Update still arrives")

    n = fin.websocket_inject(x.user, "binary", nbytes=32)
    got = x.bad.get(timeout=5)
    then_update(2)
    check(n == 1 and got[0] == "binary" and len(got[1]) == 32,
          "inject binary: one 32-byte binary frame; the next Update still arrives")

    text = ("<message xmlns='jabber:client' from='pubsub.%s' to='%s@%s'><body>injected text</body></message>"
            % (fin.domain, x.user, fin.domain))
    n = fin.websocket_inject(x.user, "text", text=text)
    next_in(x.stanzas, lambda el: el.findtext("{jabber:client}body") == "injected text", 5, "the injected text")
    check(n == 1, "inject text: the given stanza arrived as one text frame")

    drain(x.link.frames)
    size = 4 * 1024 * 1024
    n = fin.websocket_inject(x.user, "oversized", nbytes=size, fragments=4)
    op, payload = next_in(x.link.frames, lambda f: len(f[1]) > 1024 * 1024, 30, "the oversized message")
    then_update(3)
    check(n == 1 and op == 0x1 and len(payload) == size and payload.startswith(b"<message"),
          "inject oversized: one 4 MiB text message in 4 frames (text + continuations)")

    s, _, _ = stack.http("POST", fin.control + "/sim/websocket/inject", body={"agent": x.user, "kind": "bogus"})
    check(s == 400 and fin.websocket_inject("9999", "text", text="<x/>") == 0,
          "inject: unknown kind -> 400; an agent without a connection -> injected 0")

    # injections land between prosody's frames while large notifications flow
    drain(x.updates)
    drain(x.stanzas)
    burst, mids, pad = 40, 20, 120 * 1024

    def publish():
        for i in range(burst):
            fin.fault(agent=x.user, node="A", size=pad,
                      notification="<Update><data/><event>PUT</event><requestId>burst-%d</requestId>"
                                   "<source>/finesse/api/User/%s</source></Update>" % (i, x.user))
    t = threading.Thread(target=publish)
    t.start()
    injected = sum(fin.websocket_inject(x.user, "text", text="<message xmlns='jabber:client'><body>mid-%d</body>"
                                                              "</message>" % i) for i in range(mids))
    t.join()
    seen_burst, seen_mid = set(), set()
    deadline = time.monotonic() + 20
    while (len(seen_burst) < burst or len(seen_mid) < mids) and time.monotonic() < deadline:
        try:
            el = x.stanzas.get(timeout=0.5)
        except queue.Empty:
            continue
        body = el.findtext("{jabber:client}body") or ""
        if body.startswith("mid-"):
            seen_mid.add(body)
        for n_el in el.iter("{http://jabber.org/protocol/pubsub}notification"):
            if "burst-" in (n_el.text or ""):
                seen_burst.add(n_el.text[:120])
    check(injected == mids and len(seen_mid) == mids and len(seen_burst) == burst and x.bad.empty()
          and not x.closed.is_set(),
          "%d frames injected while %d notifications of 120 KiB flowed: all arrived intact (%d, %d)"
          % (mids, burst, len(seen_mid), len(seen_burst)))

    n = fin.websocket_drop(x.user)
    x.closed.wait(5)
    check(n == 1 and x.closed.is_set() and not x.link.close_frame
          and isinstance(x.end, (ConnectionError, ssl.SSLEOFError)),
          "drop: the connection went away mid-session without a close frame (%r)" % x.end)
    stack.wait_until(lambda: fin.agent(x.user)["presence"]["A"] == 0, 5, what="presence gone after the drop")
    ws = fin.websocket_stats("A")
    check(ws["live"] == 0 and ws["dropped"] == 1 and ws["refused"] == 1,
          "after the drop prosody saw the session end; stats %r" % {k: ws[k] for k in ("accepted", "refused",
                                                                                        "live", "dropped", "injected")})


def stock_finesse(tmp, pki):
    """transports=("tls", "websocket"): c2s closed on both nodes, like a stock
    Finesse 12.5+ with 5222 disabled; TLS and wss still work."""
    ctx = pki.client_context()
    fin = stack.FinesseSim(agents=2, presence_grace_s=30, transports=("tls", "websocket"),
                           xmpp_tls=pki.server, rest_tls=pki.server, tmp=tmp)
    for node, addr, prosody in (("A", fin.xmpp_a, fin.prosody_a), ("B", fin.xmpp_b, fin.prosody_b)):
        try:
            socket.create_connection(addr, timeout=2).close()
            refused = False
        except ConnectionRefusedError:
            refused = True
        check(refused and "Activated service 'c2s' on no ports" in prosody.log_text(),
              "c2s off: nothing listens on node %s's c2s port %d" % (node, addr[1]))
    x1 = signed_in(fin, ctx, "1001", WsLink(fin.ws_url_a, ctx=ctx))
    x2 = signed_in(fin, ctx, "1002", StreamLink(fin.xmpp_tls_b, ctx=ctx, direct_tls=True))
    check(True, "c2s off: wss on node A and direct TLS on node B still carry notifications")
    x1.close()
    x2.close()
    fin.stop()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        stack.mark_failed()
        raise
