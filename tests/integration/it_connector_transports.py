# SPDX-License-Identifier: AGPL-3.0-or-later
"""fsc-connector's XMPP transports against finesse-sim set up like a stock
Finesse 12.5+ (REST and wss://<node>/ws on the HTTPS port, direct TLS on a
5223-like port, 5222 closed), with a test CA:

1. the same agent day over each transport - sign-in, READY, an inbound call
   with its variables, answer, hold, drop - with 5222 closed for the
   websocket and tls runs;
2. websocket faults, each as a user would meet it:
   - an endpoint that answers the upgrade 404, or 101 without the xmpp
     subprotocol: sign-in refused with a reason that says so, and Finesse
     never asked to LOGIN;
   - a certificate from another CA, over websocket (a TLS front with
     another CA's certificate before /ws) and over tls (prosody's direct
     TLS port): refused the same way;
   - the server closing the WebSocket mid-session: the agent reconnects and
     stays signed in (as after a dropped TCP stream);
   - malformed, binary and oversized frames into one agent's connection:
     that session ends cleanly and comes back, the worker process survives,
     the other agent on it never noticed;
   - node A out of service mid-call: the agent moves to B over websocket,
     the call and its variables are kept, no logout;
3. an SSO agent over websocket: the IdS token as the XMPP password."""
import os
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402


def is_agent(state):
    return lambda ev: ev.get("event") == "agent" and ev["data"].get("state") == state


def is_dialog(did, state=None, pred=None):
    def check(ev):
        if ev.get("event") != "dialog" or ev["data"].get("id") != did:
            return False
        if state is not None and ev["data"].get("state") != state:
            return False
        return pred(ev["data"]) if pred else True
    return check


def part_of(agent):
    return lambda d: next(p for p in d["participants"] if p["address"] == agent)


def port_closed(hostport):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(hostport)
        return False
    except OSError:
        return True
    finally:
        s.close()


def sign_in(conn, agent):
    status, body = conn.login(agent, "pw" + agent, agent)
    assert status == 200, "%s sign-in: %d %r" % (agent, status, body)
    sse = conn.events(body["token"])
    sse.wait(is_agent("NOT_READY"), what="%s NOT_READY" % agent)
    return body["token"], sse


def call_day(conn, agent, token, sse):
    """READY, an inbound call with variables, answer, hold, drop."""
    fin = conn.fin
    status, r = conn.api("POST", "/api/v1/state", token, {"state": "READY"})
    assert status == 202, "READY: %d %r" % (status, r)
    sse.wait(is_agent("READY"), what="READY")
    did = fin.call(agent, ani="+14155550100", callvariables={"callVariable1": "4711"},
                   ecc={"user.sf_recordId": "001xx000003DGb2"})
    ev = sse.wait(is_dialog(did, "ALERTING"), what="ALERTING")
    assert ev["data"]["callvariables"].get("callVariable1") == "4711", ev["data"]
    act = lambda a: conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": a})
    assert act("answer")[0] == 202
    sse.wait(is_dialog(did, "ACTIVE"), what="ACTIVE")
    assert act("hold")[0] == 202
    sse.wait(is_dialog(did, pred=lambda d: part_of(agent)(d)["state"] == "HELD"), what="HELD")
    assert act("retrieve")[0] == 202
    sse.wait(is_dialog(did, pred=lambda d: part_of(agent)(d)["state"] == "ACTIVE"),
             what="retrieved")
    assert act("drop")[0] == 202
    sse.wait(is_dialog(did, "DROPPED"), what="DROPPED")


def refused_sign_in(conn, agent, why):
    """A sign-in the XMPP side refuses: 502 naming the reason, no LOGIN."""
    status, body = conn.login(agent, "pw" + agent, agent)
    assert status == 502 and body["error"] == "xmpp_unavailable", \
        "%s: want 502 xmpp_unavailable, got %d %r" % (why, status, body)
    assert why in body["detail"], "the reason says %r: %r" % (why, body["detail"])
    assert conn.fin.agent(agent)["state"] == "LOGOUT", "Finesse was never asked to LOGIN"
    return body["detail"]


def worker_pids(conn):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == conn.proc.pid and b"--xmpp-worker" in argv:
            pids.append(int(d))
    return sorted(pids)


# -- 1: the same day over each transport --------------------------------------

def run_transport(pki, transport):
    opened = {"websocket": ("websocket", "tls"), "tls": ("tls", "websocket"),
              "starttls": ("starttls",)}[transport]
    fin = stack.FinesseSim(agents=3, presence_grace_s=3, xmpp_tls=pki.server,
                           rest_tls=pki.server, transports=opened)
    conn = stack.Connector(fin, transport=transport, ca_file=pki.ca_file)
    if transport != "starttls":
        assert port_closed(fin.xmpp_a), "5222 is closed like on a stock Finesse"
    token, sse = sign_in(conn, "1001")
    assert "transport=%s" % transport in conn.log_text(), "the worker speaks %s" % transport
    call_day(conn, "1001", token, sse)
    if transport == "websocket":
        assert "1001" in fin.websocket_stats("A").get("live_agents", []), \
            "1001's notifications ride the proxied /ws: %r" % fin.websocket_stats("A")
    print("ok  %-9s sign-in, READY, call with variables, answer, hold, retrieve, drop%s"
          % (transport, "" if transport == "starttls" else " (5222 closed)"))
    return fin, conn, token, sse


# -- 2: websocket faults ----------------------------------------------------------

class TlsFront:
    """A TLS-terminating front (like another HTTPS port of a node, 7443, or a
    TLS-inspecting middlebox) that presents another CA's certificate and
    forwards to a TLS upstream: the connector must refuse it whatever is
    behind."""

    def __init__(self, cert, upstream, upstream_ca):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*cert)
        self.up_ctx = ssl.create_default_context(cafile=upstream_ca)
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.bind((stack.HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handshakes = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            t = self.ctx.wrap_socket(c, server_side=True)
            self.handshakes += 1
        except (OSError, ssl.SSLError):
            self.handshakes += 1
            c.close()
            return
        try:
            up = self.up_ctx.wrap_socket(socket.create_connection(self.upstream),
                                         server_hostname=stack.HOST)
        except OSError:
            t.close()
            return
        for a, b in ((t, up), (up, t)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.close()
            except OSError:
                pass


def check_refusals(pki, fin):
    fin.websocket_mode("404")
    conn = stack.Connector(fin, transport="websocket", ca_file=pki.ca_file, name="conn-404")
    d = refused_sign_in(conn, "1002", "websocket upgrade refused")
    assert "404" in d, d
    fin.websocket_mode("no_subprotocol")
    refused_sign_in(conn, "1002", "did not accept the xmpp subprotocol")
    fin.websocket_mode("ok")
    conn.stop()
    print("ok  /ws answering 404, or 101 without the xmpp subprotocol: sign-in refused "
          "(502, reason given), no LOGIN at Finesse")

    other = stack.TestPki(domain=fin.domain, name="other-pki")
    front = TlsFront(other.server, (stack.HOST, int(fin.url_a.rsplit(":", 1)[1])), pki.ca_file)
    urls = "wss://127.0.0.1:%d/ws" % front.port
    if fin.url_b:
        urls += ", wss://127.0.0.1:%d/ws" % front.port
    conn = stack.Connector(fin, transport="websocket", ca_file=pki.ca_file, name="conn-ca",
                           extra={"finesse": {"xmpp_websocket_urls": urls}})
    refused_sign_in(conn, "1002", "tls certificate rejected")
    assert front.handshakes >= 1, "the connector did reach the front"
    assert "event=tls_cert_rejected" in conn.log_text()
    conn.stop()
    # tls: the same kind of front before prosody's direct TLS port
    front_tls = TlsFront(other.server, fin.xmpp_tls_a, pki.ca_file)
    conn = stack.Connector(fin, transport="tls", ca_file=pki.ca_file, name="conn-ca-tls",
                           extra={"finesse": {"xmpp_addresses": ", ".join(
                               ["127.0.0.1:%d" % front_tls.port] * (2 if fin.url_b else 1))}})
    refused_sign_in(conn, "1002", "tls certificate rejected")
    conn.stop()
    print("ok  a certificate from another CA: refused over websocket and over tls "
          "(sign-in refused, no LOGIN)")


def check_websocket_faults(fin, conn, token, sse):
    # a second agent on the same worker, to see that it never notices
    token2, sse2 = sign_in(conn, "1002")
    pids = worker_pids(conn)
    assert len(pids) == 1, "one worker holds both agents: %r" % pids

    def offline_count(agent):
        return conn.log_text().count("event=xmpp_offline agent=%s " % agent)

    def online_count(agent):
        return conn.log_text().count("event=xmpp_online agent=%s" % agent)

    # the server closes the WebSocket mid-session
    on = online_count("1001")
    assert fin.websocket_drop("1001") >= 1
    stack.wait_until(lambda: online_count("1001") > on, 15, what="1001 back online after a drop")
    status, r = conn.api("POST", "/api/v1/state", token, {"state": "NOT_READY"})
    assert status == 202, "state change after the reconnect: %d %r" % (status, r)
    sse.wait(is_agent("NOT_READY"), what="NOT_READY after the drop")
    assert fin.agent("1001")["state"] == "NOT_READY", "still signed in"
    print("ok  the server closed the WebSocket: reconnected, still signed in, events flow")

    # malformed, binary and oversized frames into 1001's connection only
    for kind, kw, why in (("malformed", {}, "bad XML from the server"),
                          ("binary", {"nbytes": 32}, "binary message"),
                          ("oversized", {"nbytes": (4 << 20) + 1024, "fragments": 4},
                           "message larger than")):
        off, on = offline_count("1001"), online_count("1001")
        assert fin.websocket_inject("1001", kind, **kw) >= 1, kind
        stack.wait_until(lambda: offline_count("1001") > off, 15, what="1001 offline (%s)" % kind)
        tail = conn.log_text().rsplit("event=xmpp_offline agent=1001 ", 1)[1].split("\n", 1)[0]
        assert why in tail, "%s: the reason says %r: %s" % (kind, why, tail)
        stack.wait_until(lambda: online_count("1001") > on, 15, what="1001 back (%s)" % kind)
    assert worker_pids(conn) == pids, "the worker survived: %r -> %r" % (pids, worker_pids(conn))
    assert offline_count("1002") == 0, "1002 never went offline"
    status, r = conn.api("POST", "/api/v1/state", token2, {"state": "READY"})
    assert status == 202
    sse2.wait(is_agent("READY"), what="1002 READY, untouched")
    status, r = conn.api("POST", "/api/v1/state", token, {"state": "READY"})
    assert status == 202
    sse.wait(is_agent("READY"), what="1001 READY again")
    print("ok  malformed, binary and 4 MiB frames: that session ended and came back, the "
          "worker (pid %d) survived, the other agent on it never noticed" % pids[0])
    sse2.close()


def check_failover(conn, token, sse):
    fin = conn.fin
    did = fin.call("1001", ani="+14155550111", callvariables={"callVariable1": "fo"})
    sse.wait(is_dialog(did, "ALERTING"), what="ALERTING before failover")
    assert conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": "answer"})[0] == 202
    sse.wait(is_dialog(did, "ACTIVE"), what="ACTIVE before failover")
    fin.node("OUT_OF_SERVICE", node="A", xmpp="drop")
    stack.wait_until(lambda: conn.api("GET", "/readyz")[1].get("active_node") == 1, 20,
                     what="connector on node B")
    stack.wait_until(lambda: "1001" in fin.websocket_stats("B").get("live_agents", []), 15,
                     what="1001 on B's /ws")
    assert conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": "hold"})[0] == 202
    ev = sse.wait(is_dialog(did, pred=lambda d: part_of("1001")(d)["state"] == "HELD"),
                  what="HELD via B")
    assert ev["data"]["callvariables"].get("callVariable1") == "fo", ev["data"]
    time.sleep(4)  # past the presence grace: A must not log the agent out
    assert fin.agent("1001")["state"] != "LOGOUT", "no spurious logout"
    assert conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": "drop"})[0] == 202
    sse.wait(is_dialog(did, "DROPPED"), what="DROPPED via B")
    fin.node("IN_SERVICE", node="A")
    print("ok  node A out of service mid-call: on B over websocket, call variables kept, "
          "no logout")


# -- 3: SSO over websocket --------------------------------------------------------

def check_sso_websocket(pki):
    sso = stack.Stack(haproxy=False, user="agent1002@example.com")
    fin = stack.FinesseSim(agents=3, ids=sso.ids, presence_grace_s=10, xmpp_tls=pki.server,
                           rest_tls=pki.server, transports=("websocket",), tmp=sso.tmp)
    conn = stack.Connector(fin, transport="websocket", ca_file=pki.ca_file, name="conn-sso",
                           sso_url=sso.a.url, service_key_file=sso.secrets.service_key_file)
    code = sso.login()
    status, body = conn.api("POST", "/api/v1/login", body={"handoff": code, "extension": "1002"})
    assert status == 200, "SSO sign-in over websocket: %d %r" % (status, body)
    token = body["token"]
    sse = conn.events(token)
    sse.wait(is_agent("NOT_READY"), what="NOT_READY (SSO)")
    assert conn.api("POST", "/api/v1/state", token, {"state": "READY"})[0] == 202
    sse.wait(is_agent("READY"), what="READY (SSO)")
    assert "1002" in fin.websocket_stats("A").get("live_agents", []), \
        "the SSO agent's XMPP (token as password) rides /ws"
    print("ok  SSO agent over websocket: the IdS token as the XMPP password, READY")
    sse.close()
    conn.stop()
    fin.stop()
    sso.stop()


def main():
    pki = stack.TestPki(domain="finesse.test")
    for transport in ("starttls", "tls"):
        fin, conn, _, sse = run_transport(pki, transport)
        sse.close()
        if transport == "tls":
            check_refusals(pki, fin)
        conn.stop()
        fin.stop()
    fin, conn, token, sse = run_transport(pki, "websocket")
    check_websocket_faults(fin, conn, token, sse)
    check_failover(conn, token, sse)
    sse.close()
    conn.stop()
    fin.stop()
    check_sso_websocket(pki)
    print("PASS")


if __name__ == "__main__":
    main()
