# SPDX-License-Identifier: AGPL-3.0-or-later
"""A small non-blocking HTTP/1.1 client on one selectors loop, for
benchmarks that hold thousands of connections from one Python thread.

    loop = Loop()
    c = HttpConn(loop, "127.0.0.1", 8080)          # keep-alive, one request at a time
    c.request("POST", "/x", {"a": 1}, cb=lambda r: ...)   # r: Response
    s = SseConn(loop, "127.0.0.1", 8080, "/api/v1/events", on_event=fn,
                ticket=("/api/v1/events/ticket", token))   # as the softphone
    loop.run_until(lambda: done, timeout=10)

Times are time.monotonic() taken when the bytes were written (Response.t_sent)
and when the loop read them (Response.t_done, the SSE event's t), so they
include this process's own queueing: keep the loop lean.
"""

import errno
import heapq
import itertools
import json
import selectors
import socket
import time

now = time.monotonic


class Loop:
    def __init__(self):
        self.sel = selectors.DefaultSelector()     # epoll: no FD_SETSIZE limit
        self.timers = []
        self.seq = itertools.count()

    def later(self, delay, fn, *args):
        heapq.heappush(self.timers, (now() + delay, next(self.seq), fn, args))

    def at(self, t, fn, *args):
        heapq.heappush(self.timers, (t, next(self.seq), fn, args))

    def run_once(self, max_wait=0.05):
        t = now()
        while self.timers and self.timers[0][0] <= t:
            _, _, fn, args = heapq.heappop(self.timers)
            fn(*args)
        wait = max_wait
        if self.timers:
            wait = max(0.0, min(wait, self.timers[0][0] - now()))
        for key, mask in self.sel.select(wait):
            key.data.on_ready(mask)

    def run_until(self, pred, timeout, what="condition"):
        """Run until pred() is true; raise TimeoutError after timeout s."""
        deadline = now() + timeout
        while not pred():
            if now() > deadline:
                raise TimeoutError("%s not met after %.1f s" % (what, timeout))
            self.run_once()

    def run_for(self, seconds):
        end = now() + seconds
        while now() < end:
            self.run_once(min(0.05, max(0.0, end - now())))


class Response:
    __slots__ = ("status", "headers", "body", "t_sent", "t_done", "error")

    def __init__(self):
        self.status, self.headers, self.body = None, {}, b""
        self.t_sent = self.t_done = None
        self.error = None

    def json(self):
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class _Sock:
    """Connection plumbing shared by HttpConn and SseConn."""

    def __init__(self, loop, host, port):
        self.loop, self.host, self.port = loop, host, port
        self.sock = None
        self.out = b""
        self.buf = b""
        self.connected = False
        self.mask = 0
        self.connects = 0

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rc = s.connect_ex((self.host, self.port))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            raise OSError(rc, "connect %s:%d: %s" % (self.host, self.port, errno.errorcode.get(rc)))
        self.sock = s
        self.connected = False
        self.buf = b""
        self.connects += 1
        self.mask = selectors.EVENT_WRITE
        self.loop.sel.register(s, self.mask, self)

    def _set_mask(self, mask):
        if self.sock is not None and mask != self.mask:
            self.mask = mask
            self.loop.sel.modify(self.sock, mask, self)

    def _close(self):
        if self.sock is not None:
            try:
                self.loop.sel.unregister(self.sock)
            except (KeyError, ValueError):
                pass
            self.sock.close()
            self.sock = None
        self.connected = False
        self.out = b""

    def _send(self, data):
        self.out += data
        if self.connected:
            self._flush()

    def _flush(self):
        while self.out:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                break
            self.out = self.out[n:]
        self._set_mask(selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0))

    def on_ready(self, mask):
        try:
            if not self.connected and mask & selectors.EVENT_WRITE:
                err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, "connect: %s" % errno.errorcode.get(err))
                self.connected = True
                self.on_connected()
                self._flush()
                return
            if mask & selectors.EVENT_WRITE:
                self._flush()
            if mask & selectors.EVENT_READ:
                while True:
                    try:
                        data = self.sock.recv(262144)
                    except BlockingIOError:
                        break
                    if not data:
                        raise ConnectionError("closed by peer")
                    self.on_data(data, now())
                    if self.sock is None or len(data) < 262144:
                        break
        except OSError as e:
            self.on_error(e)

    # subclasses
    def on_connected(self):
        pass

    def on_data(self, data, t):
        raise NotImplementedError

    def on_error(self, e):
        self._close()


def _parse_head(buf):
    """(status, headers, rest) once the header block is complete, else None."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    lines = buf[:i].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, buf[i + 4:]


class HttpConn(_Sock):
    """A keep-alive connection; requests queue and go one at a time. A
    connection the peer closed is reopened for the next request; the
    request in flight then fails (Response.error)."""

    def __init__(self, loop, host, port, default_headers=None):
        super().__init__(loop, host, port)
        self.queue = []           # (bytes, cb)
        self.inflight = None      # (cb, Response)
        self.default_headers = default_headers or {}
        self.errors = 0
        self.head = None

    @property
    def load(self):
        return len(self.queue) + (1 if self.inflight else 0)

    def request(self, method, path, body=None, headers=None, cb=None):
        h = dict(self.default_headers)
        h.update(headers or {})
        data = b""
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        h["Content-Length"] = str(len(data))
        h["Host"] = "%s:%d" % (self.host, self.port)
        req = ("%s %s HTTP/1.1\r\n%s\r\n" % (method, path, "".join(
            "%s: %s\r\n" % kv for kv in h.items()))).encode() + data
        self.queue.append((req, cb))
        self._next()

    def _next(self):
        if self.inflight is not None or not self.queue:
            return
        if self.sock is None:
            try:
                self._open()
            except OSError as e:
                req, cb = self.queue.pop(0)
                r = Response()
                r.error = e
                self.errors += 1
                if cb:
                    cb(r)
                return
        req, cb = self.queue.pop(0)
        r = Response()
        self.inflight = (cb, r)
        self.head = None
        if self.connected:
            r.t_sent = now()
        self._send(req)

    def on_connected(self):
        if self.inflight is not None and self.inflight[1].t_sent is None:
            self.inflight[1].t_sent = now()

    def on_data(self, data, t):
        self.buf += data
        if self.inflight is None:
            self.buf = b""
            return
        cb, r = self.inflight
        if self.head is None:
            h = _parse_head(self.buf)
            if h is None:
                return
            r.status, r.headers, self.buf = h
            self.head = True
        if r.headers.get("transfer-encoding", "").lower() == "chunked":
            body, rest, done = _dechunk_all(self.buf)
            if not done:
                return
            r.body, self.buf = body, rest
        else:
            n = int(r.headers.get("content-length", "0"))
            if len(self.buf) < n:
                return
            r.body, self.buf = self.buf[:n], self.buf[n:]
        r.t_done = t
        self.inflight = None
        if r.headers.get("connection", "").lower() == "close":
            self._close()
        if cb:
            cb(r)
        self._next()

    def on_error(self, e):
        self._close()
        if self.inflight is not None:
            cb, r = self.inflight
            self.inflight = None
            r.error = e
            self.errors += 1
            if cb:
                cb(r)
        self._next()


def _dechunk_all(buf):
    """Whole chunked body: (body, rest, True) or (None, buf, False)."""
    out = []
    pos = 0
    while True:
        i = buf.find(b"\r\n", pos)
        if i < 0:
            return None, buf, False
        size = int(buf[pos:i].split(b";")[0], 16)
        if size == 0:
            j = buf.find(b"\r\n", i + 2)       # trailers end with an empty line
            if j < 0:
                return None, buf, False
            return b"".join(out), buf[j + 2:], True
        if len(buf) < i + 2 + size + 2:
            return None, buf, False
        out.append(buf[i + 2:i + 2 + size])
        pos = i + 2 + size + 2


class SseConn(_Sock):
    """GET an event stream; on_event(conn, event_type, data_str, t) per
    event (data lines joined). on_close(conn, why) when it ends."""

    def __init__(self, loop, host, port, path, on_event, on_close=None, on_open=None, tag=None,
                 ticket=None):
        """ticket: (ticket path, API token): each start() first POSTs for a
        single-use ticket on the same connection (Bearer token) and opens
        path?ticket=..., as the softphone page does."""
        super().__init__(loop, host, port)
        self.path, self.on_event, self.on_close_cb, self.on_open = path, on_event, on_close, on_open
        self.tag = tag
        self.ticket = ticket
        self.ticketing = False  # the ticket's answer is being read
        self.status = None
        self.chunked = False
        self.raw = b""          # de-chunked text not yet split into events
        self.events = 0
        self.open = False

    def start(self):
        self.status = None
        self.raw = b""
        self._open()
        if self.ticket is not None:
            self.ticketing = True
            self._send(("POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                        "Content-Length: 0\r\n\r\n"
                        % (self.ticket[0], self.host, self.port, self.ticket[1])).encode())
        else:
            self._get(self.path)

    def _get(self, path):
        self._send(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n"
                    % (path, self.host, self.port)).encode())

    def _ticket_answer(self):
        """Reads the ticket's answer; False while it is incomplete."""
        h = _parse_head(self.buf)
        if h is None:
            return False
        status, headers, rest = h
        n = int(headers.get("content-length", "0"))
        if len(rest) < n:
            return False
        body, self.buf = rest[:n], rest[n:]
        self.ticketing = False
        try:
            ticket = json.loads(body)["ticket"] if status == 200 else None
        except (ValueError, KeyError, TypeError):
            ticket = None
        if ticket is None:
            self.status = status
            if self.on_open:
                self.on_open(self)
            self.on_error(ConnectionError("ticket: status %d" % status))
            return False
        sep = "&" if "?" in self.path else "?"
        self._get(self.path + sep + "ticket=" + ticket)
        return True

    def on_data(self, data, t):
        self.buf += data
        if self.ticketing and not self._ticket_answer():
            return
        if self.status is None:
            h = _parse_head(self.buf)
            if h is None:
                return
            self.status, headers, self.buf = h
            self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            self.open = self.status == 200
            if self.on_open:
                self.on_open(self)
            if self.status != 200:
                self.on_error(ConnectionError("status %d" % self.status))
                return
        if self.chunked:
            pos = 0
            buf = self.buf
            parts = []
            while True:
                i = buf.find(b"\r\n", pos)
                if i < 0:
                    break
                size = int(buf[pos:i].split(b";")[0], 16)
                if size == 0:
                    self.buf = b""
                    self.raw += b"".join(parts)
                    self._events(t)
                    self.on_error(ConnectionError("stream ended"))
                    return
                if len(buf) < i + 2 + size + 2:
                    break
                parts.append(buf[i + 2:i + 2 + size])
                pos = i + 2 + size + 2
            self.buf = buf[pos:]
            self.raw += b"".join(parts)
        else:
            self.raw += self.buf
            self.buf = b""
        self._events(t)

    def _events(self, t):
        raw = self.raw
        while True:
            i = raw.find(b"\n\n")
            if i < 0:
                break
            block, raw = raw[:i], raw[i + 2:]
            etype, data = "message", []
            for line in block.split(b"\n"):
                if not line or line[:1] == b":":
                    continue
                k, _, v = line.partition(b":")
                if v[:1] == b" ":
                    v = v[1:]
                if k == b"event":
                    etype = v.decode()
                elif k == b"data":
                    data.append(v)
            if data:
                self.events += 1
                self.on_event(self, etype, b"\n".join(data), t)
        self.raw = raw

    def on_error(self, e):
        was = self.sock is not None
        self._close()
        self.open = False
        if was and self.on_close_cb:
            self.on_close_cb(self, e)
