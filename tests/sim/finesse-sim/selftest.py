#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Self-test of finesse-sim: two prosodies + the simulator via tests/lib/stack.py,
a minimal raw-socket XMPP client (stream, SASL PLAIN, bind, presence), REST calls.
Exits non-zero on the first failure. ~25 s."""

import base64
import os
import queue
import socket
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
import stack  # noqa: E402

NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"


class AuthFailed(Exception):
    pass


class Xmpp:
    """Just enough XMPP client: plain TCP, SASL PLAIN, bind, <presence/>."""

    def __init__(self, addr, user, domain, password, resource="selftest"):
        self.sock = socket.create_connection(addr, timeout=5)
        self.domain, self.user = domain, user
        self.updates = queue.Queue()
        self.stanzas = queue.Queue()
        self.closed = threading.Event()
        self._open()
        feats = self._next()
        mechs = [m.text for m in feats.iter("{urn:ietf:params:xml:ns:xmpp-sasl}mechanism")]
        assert mechs == ["PLAIN"], "mechanisms offered: %r" % mechs
        cred = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        self.sock.sendall(("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>"
                           % cred).encode())
        r = self._next()
        if not r.tag.endswith("success"):
            raise AuthFailed(ET.tostring(r)[:200])
        self._open()
        self._next()   # features
        self.sock.sendall(("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                           "<resource>%s</resource></bind></iq>" % resource).encode())
        r = self._next()
        assert r.get("type") == "result", ET.tostring(r)
        self.sock.sendall(b"<presence/>")
        self.sock.settimeout(None)
        threading.Thread(target=self._reader, daemon=True).start()

    def _open(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.pending = []
        self.sock.sendall(("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
                           "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
                           % self.domain).encode())

    def _events(self):
        for ev, el in self.parser.read_events():
            if ev == "start":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.pending.append(el)
                elif self.depth == 0:      # </stream:stream>: close our side too
                    self.sock.close()
                    raise ConnectionError("stream ended by the server")

    def _next(self):
        while True:
            self._events()
            if self.pending:
                return self.pending.pop(0)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("stream closed")
            self.parser.feed(data)

    def _reader(self):
        try:
            while True:
                el = self._next()
                self.stanzas.put(el)
                ev = el.find("{%s}event" % NS_EVENT)
                if el.tag.endswith("message") and ev is not None:
                    items = ev.find("{%s}items" % NS_EVENT)
                    for it in items.findall("{%s}item" % NS_EVENT):
                        n = it.find("{%s}notification" % NS_PUBSUB)
                        self.updates.put((items.get("node"), n.text or "", el.get("from")))
        except (OSError, ConnectionError, ET.ParseError):
            pass
        finally:
            self.closed.set()

    def wait(self, pred, timeout=5.0, what="update"):
        """Next Update (parsed) for which pred(node, upd) is true; others skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s" % what)
            try:
                node, txt, frm = self.updates.get(timeout=left)
            except queue.Empty:
                continue
            try:
                upd = ET.fromstring(txt)
            except ET.ParseError:
                continue
            if pred(node, upd):
                assert frm == "pubsub." + self.domain, frm
                return upd

    def drain(self):
        while not self.updates.empty():
            self.updates.get_nowait()

    def close(self):
        try:
            self.sock.sendall(b"</stream:stream>")
            self.sock.close()
        except OSError:
            pass


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    print("ok  ", msg, flush=True)


def rest(method, url, auth, body=None, rid=None):
    h = dict(auth)
    if body is not None:
        h["Content-Type"] = "application/xml"
    if rid:
        h["requestId"] = rid
    return stack.http(method, url, headers=h, body=body)


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
    print("selftest passed in %.1f s" % (time.monotonic() - t0))
    fin.stop()
    ids.stop()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        stack.mark_failed()
        raise
