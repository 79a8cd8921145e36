# SPDX-License-Identifier: AGPL-3.0-or-later
"""A minimal XMPP client for finesse-sim's self-test, over the three transports
a Finesse 12.5+ offers: TCP (plain or STARTTLS, 5222), TCP with direct TLS
(5223) and WebSocket (RFC 7395, 8445/ws). Python standard library only; the
WebSocket side (RFC 6455 framing, masking, the handshake checks) is written
out here on purpose, so the test does not depend on the code under test.

    link = StreamLink(fin.xmpp_tls_a, ctx=pki.client_context(), direct_tls=True)
    link = WsLink(fin.ws_url_a, ctx=pki.client_context())
    x = Xmpp(None, "1001", fin.domain, "pw1001", link=link)
    x.wait(lambda node, upd: ...)      # the next matching Finesse <Update>

It signs in with SASL PLAIN, binds a resource, sends presence, then reads on
a thread: pubsub notifications land in x.updates, every top-level element in
x.stanzas, and (WebSocket) every frame as it arrived in x.link.frames."""

import base64
import hashlib
import os
import queue
import socket
import ssl
import struct
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"       # RFC 6455 §1.3


class AuthFailed(Exception):
    pass


class HandshakeRefused(Exception):
    """The WebSocket upgrade was answered with something other than 101."""

    def __init__(self, status, headers, body):
        Exception.__init__(self, "upgrade refused: HTTP %d" % status)
        self.status, self.headers, self.body = status, headers, body


class NoSubprotocol(Exception):
    """101, but without Sec-WebSocket-Protocol: xmpp. RFC 7395 §3.1: then no
    XMPP WebSocket connection was established, and the client must close."""

    def __init__(self, headers):
        Exception.__init__(self, "101 without Sec-WebSocket-Protocol: xmpp")
        self.headers = headers


class StreamLink:
    """XMPP on TCP: one XML stream, parsed as it arrives; optional TLS from
    the first byte (direct_tls) or after STARTTLS (starttls())."""

    def __init__(self, addr, ctx=None, direct_tls=False, server_hostname="finesse.test", timeout=5):
        self.ctx, self.server_hostname = ctx, server_hostname
        self.sock = socket.create_connection(addr, timeout=timeout)
        if direct_tls:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.frames = None

    def open(self, domain):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.pending = []
        self.send("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" % domain)

    def send(self, text):
        self.sock.sendall(text.encode("utf-8"))

    def starttls(self):
        self.sock = self.ctx.wrap_socket(self.sock, server_hostname=self.server_hostname)

    @property
    def secure(self):
        return isinstance(self.sock, ssl.SSLSocket)

    def next(self):
        """The next top-level element of the stream."""
        while True:
            for ev, el in self.parser.read_events():
                if ev == "start":
                    self.depth += 1
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        self.pending.append(el)
                    elif self.depth == 0:
                        raise ConnectionError("stream ended by the server")
            if self.pending:
                return self.pending.pop(0)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("stream closed")
            self.parser.feed(data)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self, stream_end=True):
        try:
            if stream_end:
                self.send("</stream:stream>")
            self.sock.close()
        except OSError:
            pass


class WsLink:
    """XMPP over WebSocket (RFC 7395) with a hand-written RFC 6455 client.
    Every server frame is recorded in self.frames as (opcode, payload) after
    reassembly of fragments; self.close_frame tells whether the server ended
    with a close frame (False: the TCP connection just went away)."""

    def __init__(self, url, ctx=None, protocols="xmpp", timeout=5, headers=None):
        u = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((u.hostname, u.port or (443 if u.scheme == "wss" else 80)),
                                             timeout=timeout)
        if u.scheme == "wss":
            self.sock = (ctx or ssl.create_default_context()).wrap_socket(self.sock, server_hostname=u.hostname)
        self.frames = queue.Queue()
        self.close_frame = None
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % (u.path or "/"), "Host: %s" % u.netloc, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
        if protocols:
            lines.append("Sec-WebSocket-Protocol: %s" % protocols)
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the WebSocket handshake")
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split(" ")[1])
        self.headers = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        if self.status != 101:
            body = self.buf
            n = int(self.headers.get("content-length") or 0)
            while len(body) < n:
                data = self.sock.recv(65536)
                if not data:
                    break
                body += data
            self.sock.close()
            raise HandshakeRefused(self.status, self.headers, body)
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if self.headers.get("sec-websocket-accept") != want:
            self.sock.close()
            raise ConnectionError("bad Sec-WebSocket-Accept")
        if "xmpp" not in [p.strip() for p in self.headers.get("sec-websocket-protocol", "").split(",")]:
            self.sock.close()            # RFC 7395 §3.1: not an XMPP connection
            raise NoSubprotocol(self.headers)
        self.secure = isinstance(self.sock, ssl.SSLSocket)

    # ---- RFC 6455 framing -------------------------------------------------
    def send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def _need(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("WebSocket connection closed (no close frame)"
                                      if not self.close_frame else "WebSocket closed")
            self.buf += data

    def _frame(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise ConnectionError("the server masked a frame (RFC 6455 §5.1)")
        n, pos = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, pos = struct.unpack_from("!H", self.buf, 2)[0], 4
        elif n == 127:
            self._need(10)
            n, pos = struct.unpack_from("!Q", self.buf, 2)[0], 10
        self._need(pos + n)
        payload, self.buf = self.buf[pos:pos + n], self.buf[pos + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def message(self):
        """The next data message (opcode, payload), fragments joined; answers
        pings; ConnectionError after a close frame or a vanished connection."""
        parts, first = [], None
        while True:
            fin, opcode, payload = self._frame()
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                self.close_frame = True
                self.frames.put((0x8, payload))
                raise ConnectionError("WebSocket close frame")
            if first is None:
                first = opcode
            parts.append(payload)
            if fin:
                msg = (first, b"".join(parts))
                self.frames.put(msg)
                return msg

    # ---- the XMPP link interface ------------------------------------------
    def open(self, domain):
        self.send("<open xmlns='%s' to='%s' version='1.0'/>" % (NS_FRAMING, domain))

    def send(self, text):
        self.send_frame(0x1, text.encode("utf-8"))

    def next(self):
        """The next stanza: each text message is one element (RFC 7395 §3.3.3);
        the server's <open/> is skipped; <close/> ends the stream; a message
        that is not XML (or a binary one) raises ValueError with the bytes."""
        while True:
            opcode, payload = self.message()
            if opcode != 0x1:
                raise ValueError(("binary", payload))
            try:
                el = ET.fromstring(payload)
            except ET.ParseError:
                raise ValueError(("text", payload))
            if el.tag == "{%s}open" % NS_FRAMING:
                continue
            if el.tag == "{%s}close" % NS_FRAMING:
                raise ConnectionError("stream closed by the server (<close/>)")
            return el

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self, stream_end=True):
        try:
            if stream_end:
                self.send("<close xmlns='%s'/>" % NS_FRAMING)
                self.send_frame(0x8, struct.pack("!H", 1000))
            self.sock.close()
        except OSError:
            pass


class Xmpp:
    """Just enough XMPP client: SASL PLAIN, bind, <presence/>, then a reader.
    addr: (host, port) for plain TCP (the original self-test use); or link=
    a StreamLink/WsLink. starttls=True: negotiate STARTTLS first (link.ctx)."""

    def __init__(self, addr, user, domain, password, resource="selftest", link=None, starttls=False):
        self.link = link or StreamLink(addr)
        self.domain, self.user = domain, user
        self.updates = queue.Queue()
        self.stanzas = queue.Queue()
        self.bad = queue.Queue()       # WebSocket messages that were not stanzas
        self.closed = threading.Event()
        self.end = None                # why the reader stopped
        self.link.open(domain)
        feats = self._features()
        if starttls:
            assert feats.find("{%s}starttls" % NS_TLS) is not None, "STARTTLS not offered"
            self.link.send("<starttls xmlns='%s'/>" % NS_TLS)
            r = self.link.next()
            assert r.tag == "{%s}proceed" % NS_TLS, ET.tostring(r)
            self.link.starttls()
            self.link.open(domain)
            feats = self._features()
        mechs = [m.text for m in feats.iter("{%s}mechanism" % NS_SASL)]
        assert mechs == ["PLAIN"], "mechanisms offered: %r" % mechs
        cred = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
        self.link.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, cred))
        r = self.link.next()
        if not r.tag.endswith("success"):
            raise AuthFailed(ET.tostring(r)[:200])
        self.link.open(domain)
        self._features()
        # the explicit jabber:client namespace: over WebSocket each stanza is a
        # document of its own (RFC 7395 §3.3.3); on TCP it changes nothing
        self.link.send("<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                       "<resource>%s</resource></bind></iq>" % resource)
        r = self.link.next()
        assert r.get("type") == "result", ET.tostring(r)
        self.jid = r.findtext("{urn:ietf:params:xml:ns:xmpp-bind}bind/{urn:ietf:params:xml:ns:xmpp-bind}jid")
        self.link.send("<presence xmlns='jabber:client'/>")
        self.link.settimeout(None)
        threading.Thread(target=self._reader, daemon=True).start()

    def _features(self):
        el = self.link.next()
        assert el.tag == "{http://etherx.jabber.org/streams}features", ET.tostring(el)[:200]
        return el

    @property
    def secure(self):
        return self.link.secure

    def _reader(self):
        try:
            while True:
                try:
                    el = self.link.next()
                except ValueError as e:       # a WebSocket message that is no stanza
                    self.bad.put(e.args[0])
                    continue
                self.stanzas.put(el)
                ev = el.find("{%s}event" % NS_EVENT)
                if el.tag.endswith("message") and ev is not None:
                    items = ev.find("{%s}items" % NS_EVENT)
                    for it in items.findall("{%s}item" % NS_EVENT):
                        n = it.find("{%s}notification" % NS_PUBSUB)
                        self.updates.put((items.get("node"), n.text or "", el.get("from")))
        except (OSError, ConnectionError, ET.ParseError) as e:
            self.end = e
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
        self.link.close()
