# SPDX-License-Identifier: AGPL-3.0-or-later
"""finesse-sim: XMPP over WebSocket on a node's REST port, like Finesse's
https://<node>:8445/ws, by proxying the upgrade to that node's prosody
(mod_websocket, RFC 7395) and splicing the bytes both ways.

Why a proxy and not prosody's own port: Cisco documents the WebSocket for
third-party applications on the HTTPS REST port, so a client must find it at
the same host:port (and certificate) as /finesse/api. The proxy also lets a
test make the server misbehave in ways prosody never would: refuse the
upgrade, answer without the "xmpp" subprotocol, drop the connection, or slip a
bad frame in between two of prosody's frames.

One thread per proxied connection does all of that connection's I/O
(non-blocking sockets and select), because an ssl.SSLSocket must not be read
and written from two threads at once. Control requests (drop, inject) reach
that thread through a queue and a wake-up socket.

Framing (RFC 6455 §5): server frames are not masked, client frames are.
Prosody writes each stanza as one text frame, so the server->client side is
parsed into whole frames and only whole frames are queued for the client:
whatever is injected lands between two upstream frames.

Standard library only."""

import os
import queue
import re
import select
import socket
import ssl
import struct
import threading

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MODES = ("ok", "404", "no_subprotocol")
INJECT_KINDS = ("malformed", "oversized", "binary", "text")
MAX_INJECT = 64 * 1024 * 1024
MALFORMED = b"<message><a></b>"
QUEUE_LIMIT = 1024 * 1024        # stop reading a side while this much waits for the other
RE_BIND_JID = re.compile(rb"<jid>([^@<>]+)@[^<>]*</jid>")


class WsRefused(Exception):
    """The upgrade is answered with an HTTP error (nothing written yet)."""

    def __init__(self, status, etype, message):
        Exception.__init__(self, message)
        self.status, self.etype, self.message = status, etype, message


# --------------------------------------------------------------------------
# RFC 6455 frames

def build_frame(opcode, payload=b"", fin=True):
    """One unmasked (server->client) frame."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


def unmask(mask, data):
    """XOR data with the 4-byte mask (fast for megabytes, too)."""
    n = len(data)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class FrameReader:
    """Splits a byte stream into frames. feed() bytes, then frames() yields
    (fin, opcode, payload, raw) for every complete frame; raw is the frame as
    it was on the wire, payload is unmasked (None when want_payload is off)."""

    def __init__(self, want_payload=True):
        self.buf = bytearray()
        self.want_payload = want_payload

    def feed(self, data):
        self.buf += data

    def frames(self):
        while True:
            buf = self.buf
            if len(buf) < 2:
                return
            fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
            masked, n = bool(buf[1] & 0x80), buf[1] & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = struct.unpack_from("!H", buf, 2)[0]
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = struct.unpack_from("!Q", buf, 2)[0]
                pos = 10
            mask = None
            if masked:
                if len(buf) < pos + 4:
                    return
                mask = bytes(buf[pos:pos + 4])
                pos += 4
            end = pos + n
            if len(buf) < end:
                return
            raw = bytes(buf[:end])
            payload = None
            if self.want_payload:
                payload = raw[pos:end]
                if mask:
                    payload = unmask(mask, payload)
            del buf[:end]
            yield fin, opcode, payload, raw


def inject_frames(kind, nbytes=None, text=None, fragments=1, domain="finesse.test", agent=""):
    """The frame(s) of one injected message, as bytes.
    malformed   a text frame that is not well-formed XML (text overrides it)
    oversized   one text message of nbytes (default 4 MiB): a <message> padded
                with 'x', in `fragments` frames (text + continuations)
    binary      a binary frame of nbytes (default 16) bytes
    text        the given text as one text frame"""
    if kind not in INJECT_KINDS:
        raise ValueError("kind must be one of %s" % ", ".join(INJECT_KINDS))
    if nbytes is not None and not 0 <= nbytes <= MAX_INJECT:
        raise ValueError("bytes must be 0..%d" % MAX_INJECT)
    if not 1 <= int(fragments or 1) <= 1024:
        raise ValueError("fragments must be 1..1024")
    if kind == "malformed":
        return build_frame(OP_TEXT, text.encode("utf-8") if text else MALFORMED)
    if kind == "text":
        if text is None:
            raise ValueError("kind text needs \"text\"")
        return build_frame(OP_TEXT, text.encode("utf-8"))
    if kind == "binary":
        return build_frame(OP_BINARY, os.urandom(16 if nbytes is None else nbytes))
    n = 4 * 1024 * 1024 if nbytes is None else nbytes
    head = ("<message xmlns='jabber:client' from='pubsub.%s' to='%s@%s'><body>"
            % (domain, agent or "someone", domain)).encode()
    tail = b"</body></message>"
    body = head + b"x" * max(0, n - len(head) - len(tail)) + tail
    if len(body) > n:                    # smaller than the wrapper: just bytes
        body = b"x" * n
    k = min(int(fragments or 1), max(1, n))
    step = -(-len(body) // k) if body else 0
    parts = [body[i * step:(i + 1) * step] for i in range(k)] if step else [b""]
    out = []
    for i, part in enumerate(parts):
        out.append(build_frame(OP_TEXT if i == 0 else OP_CONT, part, fin=i == len(parts) - 1))
    return b"".join(out)


# --------------------------------------------------------------------------
# The proxy of one node

def _header_value(headers, name):
    return (headers.get(name) or "").strip()


def _has_token(value, token):
    return token in [t.strip().lower() for t in value.split(",")]


class Request:
    """A control request (drop, inject) for a connection's thread."""

    def __init__(self, kind, data):
        self.kind, self.data = kind, data
        self.taken = False
        self.done = threading.Event()

    def answer(self, taken):
        self.taken = taken
        self.done.set()


class Conn:
    """One proxied connection; all its socket I/O happens on its own thread."""

    def __init__(self, client, upstream, mode, peer):
        self.client, self.upstream, self.mode, self.peer = client, upstream, mode, peer
        self.agent = None
        self.requests = queue.Queue()
        self.wake_r, self.wake_w = socket.socketpair()
        self.tls = isinstance(client, ssl.SSLSocket)

    def post(self, kind, data=None, timeout=5.0):
        """Hand a request to the connection's thread; True once it acted on it
        (False if the connection ended first)."""
        req = Request(kind, data)
        self.requests.put(req)
        try:
            self.wake_w.send(b"x")
        except OSError:
            return False
        return req.done.wait(timeout) and req.taken


class WsProxy:
    """GET <path> with Upgrade: websocket on one node's REST listener, proxied
    to prosody's mod_websocket at upstream (host, port)."""

    def __init__(self, node, upstream, path="/ws", domain="finesse.test", log=None):
        self.node, self.upstream, self.path, self.domain = node, upstream, path, domain
        self.log = log or (lambda msg: None)
        self.lock = threading.Lock()
        self.mode = "ok"
        self.conns = set()
        self.counts = {"accepted": 0, "refused": 0, "injected": 0, "dropped": 0,
                       "no_subprotocol_answered": 0, "data_frames_after_no_subprotocol": 0}

    def matches(self, path):
        return path.rstrip("/") == self.path.rstrip("/")

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] += n

    def stats(self):
        with self.lock:
            return dict(self.counts, mode=self.mode, live=len(self.conns), upstream="%s:%d" % self.upstream,
                        live_agents=sorted(c.agent for c in self.conns if c.agent))

    def set_mode(self, mode):
        if mode not in MODES:
            raise ValueError("mode must be one of %s" % ", ".join(MODES))
        with self.lock:
            self.mode = mode

    def _select(self, agent):
        with self.lock:
            return [c for c in self.conns if agent is None or c.agent == agent]

    def drop(self, agent=None):
        """Close the proxied connection(s) abruptly (no close frame); returns how many."""
        n = sum(1 for c in self._select(agent) if c.post("drop"))
        self.count("dropped", n)
        return n

    def inject(self, agent, frame_bytes):
        """Queue bytes (whole frames) to the client side of the agent's (or every,
        agent=None) connection, at a frame boundary; returns how many took it."""
        n = sum(1 for c in self._select(agent) if c.post("inject", frame_bytes))
        self.count("injected", n)
        return n

    # ---- the upgrade ----------------------------------------------------
    def handle(self, handler):
        """Serve one upgrade request (a BaseHTTPRequestHandler that has read the
        request head). Raises WsRefused before anything is written; otherwise
        proxies until either side closes and returns."""
        h = handler.headers
        if not _has_token(_header_value(h, "Upgrade").lower(), "websocket"):
            raise WsRefused(400, "Invalid Input", "WebSocket upgrade required")
        with self.lock:
            mode = self.mode
        if mode == "404":
            self.count("refused")
            raise WsRefused(404, "Not Found", "Not Found")
        if not _header_value(h, "Sec-WebSocket-Key") or _header_value(h, "Sec-WebSocket-Version") != "13":
            self.count("refused")
            raise WsRefused(400, "Invalid Input", "Sec-WebSocket-Key and Sec-WebSocket-Version 13 required")
        try:
            up = socket.create_connection(self.upstream, timeout=5)
        except OSError as e:
            self.count("refused")
            raise WsRefused(503, "Service Unavailable", "notification service unreachable: %s" % e)
        try:
            head, rest = self._upstream_handshake(handler, up)
        except (OSError, ValueError) as e:
            up.close()
            self.count("refused")
            raise WsRefused(503, "Service Unavailable", "notification service handshake failed: %s" % e)
        status = head.split(b" ", 2)[1] if head.count(b" ") >= 1 else b""
        handler.close_connection = True
        client = handler.connection
        if status != b"101":
            # prosody said no (e.g. 501 without the xmpp subprotocol): pass it on
            self.count("refused")
            try:
                client.sendall(head + rest)
                up.settimeout(2)
                while True:
                    data = up.recv(65536)
                    if not data:
                        break
                    client.sendall(data)
            except OSError:
                pass
            up.close()
            return
        if mode == "no_subprotocol":
            head = b"\r\n".join(line for line in head.split(b"\r\n")
                                if not line.lower().startswith(b"sec-websocket-protocol:"))
            self.count("no_subprotocol_answered")
        try:
            client.sendall(head)
        except OSError:
            up.close()
            return
        conn = Conn(client, up, mode, handler.client_address)
        with self.lock:
            self.counts["accepted"] += 1
            self.conns.add(conn)
        try:
            self._splice(conn, handler.rfile, rest)
        finally:
            with self.lock:
                self.conns.discard(conn)
            for s in (conn.wake_w, conn.wake_r, up):      # wake_w first: later posts fail at once
                try:
                    s.close()
                except OSError:
                    pass
            while True:                                   # requests that came too late
                try:
                    conn.requests.get_nowait().answer(False)
                except queue.Empty:
                    break

    def _upstream_handshake(self, handler, up):
        """Send the client's upgrade request to prosody; return (response head
        incl. the blank line, bytes after it)."""
        tls = isinstance(handler.connection, ssl.SSLSocket)
        lines = ["GET %s HTTP/1.1" % handler.path, "Host: %s:%d" % self.upstream]
        for k, v in handler.headers.items():
            if k.lower() not in ("host", "x-forwarded-for", "x-forwarded-proto", "content-length"):
                lines.append("%s: %s" % (k, v))
        # prosody trusts 127.0.0.1 as a proxy: the client's TLS counts as its TLS
        lines.append("X-Forwarded-For: %s" % handler.client_address[0])
        lines.append("X-Forwarded-Proto: %s" % ("https" if tls else "http"))
        up.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = up.recv(16384)
            if not data:
                raise ValueError("closed before the response head")
            buf += data
            if len(buf) > 65536:
                raise ValueError("response head too large")
        end = buf.index(b"\r\n\r\n") + 4
        return buf[:end], buf[end:]

    # ---- the splice -----------------------------------------------------
    def _splice(self, conn, rfile, upstream_rest):
        client, up = conn.client, conn.upstream
        to_client = bytearray()
        to_up = bytearray()
        server_frames = FrameReader()
        client_frames = FrameReader(want_payload=False)

        def from_upstream(data):
            server_frames.feed(data)
            for _, opcode, payload, raw in server_frames.frames():
                to_client.extend(raw)
                if conn.agent is None and opcode == OP_TEXT and b"<jid>" in payload:
                    m = RE_BIND_JID.search(payload)
                    if m:
                        conn.agent = m.group(1).decode("utf-8", "replace")
                        self.log("ws %s: connection from %s:%d is agent %s"
                                 % (self.node, conn.peer[0], conn.peer[1], conn.agent))

        def from_client(data):
            to_up.extend(data)
            if conn.mode == "no_subprotocol":
                client_frames.feed(data)
                for _, opcode, _, _ in client_frames.frames():
                    if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                        self.count("data_frames_after_no_subprotocol")

        # bytes the HTTP layer read past the request head (a client that did
        # not wait for the 101), then everything else straight off the socket
        client.setblocking(False)
        try:
            early = rfile.peek(65536)
            if early:
                from_client(rfile.read1(len(early)))
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, ValueError):
            pass
        except OSError:
            return
        up.setblocking(False)
        if upstream_rest:
            from_upstream(upstream_rest)
        while True:
            # control requests first: they act at a frame boundary of to_client
            while True:
                try:
                    req = conn.requests.get_nowait()
                except queue.Empty:
                    break
                if req.kind == "drop":
                    self.log("ws %s: dropping agent %s's connection" % (self.node, conn.agent))
                    try:
                        socket.socket.shutdown(client, socket.SHUT_RDWR)   # no TLS alert, no close frame
                    except OSError:
                        pass
                    req.answer(True)
                    return
                to_client.extend(req.data)
                req.answer(True)
            rlist = [conn.wake_r]
            if len(to_client) < QUEUE_LIMIT:
                rlist.append(up)
            if len(to_up) < QUEUE_LIMIT:
                rlist.append(client)
            wlist = ([client] if to_client else []) + ([up] if to_up else [])
            pending = conn.tls and client.pending() > 0 and len(to_up) < QUEUE_LIMIT
            try:
                r, _, _ = select.select(rlist, wlist, [], 0 if pending else 5.0)
            except (OSError, ValueError):
                return
            if conn.wake_r in r:
                try:
                    conn.wake_r.recv(4096)
                except OSError:
                    pass
            if up in r:
                try:
                    data = up.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    data = b""
                if data == b"":                   # prosody closed: flush, then close the client
                    self._flush(client, to_client)
                    return
                if data:
                    from_upstream(data)
            if client in r or pending:
                closed = False
                while len(to_up) < QUEUE_LIMIT:
                    try:
                        data = client.recv(65536)
                    except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        break
                    except OSError:
                        data = b""
                    if not data:
                        closed = True
                        break
                    from_client(data)
                if closed:
                    self._flush(up, to_up)
                    return
            # non-blocking writes: whatever each socket takes now (select's
            # wlist only matters for waking up when a socket was full)
            if to_client and not self._send_some(client, to_client):
                return
            if to_up and not self._send_some(up, to_up):
                return

    @staticmethod
    def _send_some(sock, buf):
        """Write what the socket takes now; False when the peer is gone."""
        try:
            n = sock.send(bytes(buf[:65536]))
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return True
        except OSError:
            return False
        del buf[:n]
        return True

    @staticmethod
    def _flush(sock, buf):
        """Best effort: write what is left, blocking for at most 2 s."""
        try:
            sock.settimeout(2)
            if buf:
                sock.sendall(bytes(buf))
        except OSError:
            pass
