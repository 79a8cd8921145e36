#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""fsc-connector benchmark: N agents on one connector, each with its XMPP
session and one SSE stream; inbound calls at R/s; notification-to-SSE
latency, RSS, CPU, sign-in time and failover re-sync time. Not pass/fail;
the figures are on the last line:

    agents=... p50_ms=... p99_ms=... rss_mb=... cpu_pct=... login_all_s=... resync_s=... transport=...

--transport picks how the connector receives notifications, as in its
[finesse] xmpp_transport:
  starttls   (default) prosody's c2s, plain (no TLS in the test set-up);
  tls        prosody's direct-TLS port (5223-like), certificate from a test CA;
  websocket  XMPP over WebSocket (RFC 7395) over TLS, to each prosody's own
             wss:// listener (xmpp_websocket_urls): the simulator's Python /ws
             proxy on the REST port would be measured instead of the
             connector.

finesse-sim (nodes A and B, one prosody each) and ONE fsc-connector
(log_level warn, threads 2) from tests/lib/stack.py, all on loopback. The
client is this one Python process: a selectors (epoll) loop holding every
SSE stream and every HTTP connection (nbhttp.py), no threads.

  1. Sign-in, timed (login_all_s): POST /api/v1/login for agents 1001..
     (password pw<id>, extension <id>) over --login-concurrency keep-alive
     connections; each agent's SSE stream is opened as soon as its sign-in
     answers (at most 64 stream opens pending). Done when every sign-in
     answered 200, every stream is open and GET /readyz says
     xmpp_online == N. Then every agent is set READY (POST /api/v1/state,
     untimed) and we wait for READY on every stream.
  2. Calls (--rate/s for --duration s): POST /sim/calls for a random agent
     that is READY and idle on its stream, hang up (POST
     /sim/calls/{id}/hangup) --hold-s after the answer. Latency = arrival
     of that dialog's first "dialog" event with state ALERTING on the
     agent's SSE stream - the moment the /sim/calls request was written to
     the socket. The simulator publishes the notification while handling
     that request, so this includes its HTTP handling (Python) as well as
     prosody, the XMPP worker, the connector and the SSE write.
  3. CPU (utime+stime from /proc) of the connector and its --xmpp-worker
     children over the call phase, % of one core; RSS = VmRSS of those
     processes summed at the end of the call phase. prosody A/B, the sim and
     this client are printed too.
  4. Failover, timed (resync_s): POST /sim/node {"node":"A",
     "status":"OUT_OF_SERVICE","xmpp":"drop"}; done when /readyz says
     active_node == 1, the simulator sees an available XMPP session on
     node B for all N agents (GET /sim/stats nodes.B.present, reported by
     prosody B) and the connector has re-read at least N Users
     (GET /finesse/api/User/{id} count at the sim). Then a probe: calls to
     --probe agents must reach their SSE streams through node B.

--observers K (diagnostic, off by default) adds K XMPP sessions of this
client, each a second resource of one agent's account on prosody A (over
STARTTLS with the test CA in the tls and websocket runs), to time when
prosody delivered the notification; the summary then splits the latency
into "sim + prosody" and "connector". FSC_KEEP_TMP=1 keeps the temp
dir: logs of every component and calls.csv (one line per call: send time,
latencies).

Run with /usr/bin/python3 after building (build/connector/fsc-connector).
"""

import argparse
import base64
import json
import os
import random
import re
import resource
import selectors
import socket
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import stack  # noqa: E402
import nbhttp  # noqa: E402
from nbhttp import Loop, HttpConn, SseConn, now  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"


def say(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# /proc

def proc_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])     # utime, stime
    except (OSError, IndexError, ValueError):
        return None


def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for l in f:
                k, _, v = l.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out


def kb(v):
    try:
        return int(v.split()[0])
    except (AttributeError, IndexError, ValueError):
        return 0


def children(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return sorted(set(out))


def system_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


class CpuMeter:
    """%CPU (100 = one core) of groups of processes between start() and stop()."""

    def __init__(self, groups):
        self.groups = groups          # name -> [pid]

    def start(self):
        self.t0 = now()
        self.sys0 = system_busy()
        self.ticks0 = {n: [proc_ticks(p) for p in ps] for n, ps in self.groups.items()}
        return self

    def stop(self):
        dt = now() - self.t0
        busy, total = system_busy()
        out = {}
        for n, ps in self.groups.items():
            t = 0
            for p, t0 in zip(ps, self.ticks0[n]):
                t1 = proc_ticks(p)
                if t1 is not None and t0 is not None:
                    t += t1 - t0
            out[n] = 100.0 * t / CLK_TCK / dt if dt > 0 else 0.0
        dtot = total - self.sys0[1]
        out["machine busy (% of all cores)"] = 100.0 * (busy - self.sys0[0]) / dtot if dtot else 0.0
        return out


def fmt_cpu(cpu):
    return ", ".join("%s %.0f%%" % (n, v) for n, v in sorted(cpu.items(), key=lambda kv: -kv[1]))


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


# --------------------------------------------------------------------------
# An optional XMPP observer: a second resource of an agent's account on
# node A's prosody, which then delivers every notification to it as well as
# to the connector's session. Its arrival time splits the latency into
# "sim + prosody" and "XMPP worker + connector + SSE".

class XmppObserver(nbhttp._Sock):
    HDR = ("<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
           "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")

    def __init__(self, loop, host, port, domain, user, password, seen):
        super().__init__(loop, host, port)
        self.domain, self.user, self.password, self.seen = domain, user, password, seen
        self.step = "features1"
        self.live = False
        self.dead = None

    def start(self):
        self._open()
        self._send((self.HDR % self.domain).encode())

    def on_data(self, data, t):
        self.buf += data
        if self.step == "features1" and b"</stream:features>" in self.buf:
            cred = base64.b64encode(b"\0" + self.user.encode() + b"\0" + self.password.encode())
            self.buf = b""
            self.step = "auth"
            self._send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                       + cred + b"</auth>")
        elif self.step == "auth" and (b"<success" in self.buf or b"<failure" in self.buf):
            if b"<failure" in self.buf:
                self.dead = "auth failed"
                return self._close()
            self.buf = b""
            self.step = "features2"
            self._send((self.HDR % self.domain).encode())
        elif self.step == "features2" and b"</stream:features>" in self.buf:
            self.buf = b""
            self.step = "bind"
            self._send(b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                       b"<resource>bench-observer</resource></bind></iq>")
        elif self.step == "bind" and b"</iq>" in self.buf:
            self.buf = b""
            self.step = "live"
            self.live = True
            self._send(b"<presence/>")
        elif self.step == "live":
            self.buf = observe_messages(self.buf, self.seen, t)

    def on_error(self, e):
        self.dead = repr(e)
        self._close()


class TlsXmppObserver:
    """The same observer where prosody requires TLS (the tls and websocket
    runs): STARTTLS on c2s with the test CA, set up blocking (a few ms per
    observer, before the call phase), then read without blocking on the
    bench's loop. Only the arrival of notifications matters here."""

    def __init__(self, loop, host, port, domain, user, password, seen, ca_file):
        self.loop, self.seen = loop, seen
        self.live, self.dead = False, None
        self.buf = b""
        try:
            self.sock = self._setup(host, port, domain, user, password, ca_file)
        except (OSError, ValueError) as e:
            self.dead = repr(e)
            return
        self.sock.setblocking(False)
        self.live = True
        loop.sel.register(self.sock, selectors.EVENT_READ, self)

    @staticmethod
    def _setup(host, port, domain, user, password, ca_file):
        hdr = (XmppObserver.HDR % domain).encode()

        def until(sock, marker):
            got = b""
            while marker not in got:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ValueError("closed waiting for %r" % marker)
                if b"<failure" in chunk:
                    raise ValueError("refused waiting for %r" % marker)
                got += chunk
            return got

        raw = socket.create_connection((host, port), timeout=10)
        raw.sendall(hdr)
        until(raw, b"</stream:features>")
        raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        until(raw, b"<proceed")
        sock = ssl.create_default_context(cafile=ca_file).wrap_socket(raw, server_hostname=domain)
        sock.sendall(hdr)
        until(sock, b"</stream:features>")
        cred = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
        sock.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                     + cred + b"</auth>")
        until(sock, b"<success")
        sock.sendall(hdr)
        until(sock, b"</stream:features>")
        sock.sendall(b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                     b"<resource>bench-observer</resource></bind></iq>")
        until(sock, b"</iq>")
        sock.sendall(b"<presence/>")
        return sock

    def on_ready(self, mask):
        t = now()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed by peer")
                self.buf += data
                if not self.sock.pending():
                    break
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        except OSError as e:
            self.dead = repr(e)
            self.loop.sel.unregister(self.sock)
            self.sock.close()
            return
        self.buf = observe_messages(self.buf, self.seen, t)


def observe_messages(buf, seen, t):
    """Notes the arrival time t of each Dialogs notification in buf (by
    dialog id); returns what is left of buf."""
    while True:
        i = buf.find(b"</message>")
        if i < 0:
            break
        msg, buf = buf[:i], buf[i + 10:]
        if b"/Dialogs" not in msg:
            continue
        m = OBS_ID.search(msg.replace(b"&lt;", b"<").replace(b"&gt;", b">"))
        if m:
            seen.setdefault(m.group(1).decode(), t)
    return buf[-65536:] if len(buf) > 1 << 20 else buf


OBS_ID = re.compile(rb"<Dialog><associatedDialogUri>[^<]*</associatedDialogUri><fromAddress>[^<]*"
                    rb"</fromAddress><id>(\d+)</id>")


class Bench:
    def __init__(self, args, fin, conn):
        self.args, self.fin, self.conn = args, fin, conn
        self.n = args.agents
        self.loop = Loop()
        n = self.n
        self.ids = [str(1001 + i) for i in range(n)]
        self.token = [None] * n
        self.sse = [None] * n
        self.state = [None] * n          # agent state seen on the stream
        self.busy = [None] * n           # dialog id of the bench's call in progress
        self.sse_closes = 0
        self.sse_open_n = 0
        self.sse_pending = 0
        self.sse_queue = []
        self.alert_t = {}                # dialog id -> first ALERTING on its stream
        self.dropped_t = {}
        self.agent_events_after = None   # failover: agent events seen after t
        self.events_after_failover = [0] * n
        self.api = [HttpConn(self.loop, HOST, conn.port) for _ in range(args.login_concurrency)]
        self.ctl_port = fin.ports["control"]
        self.simc = [HttpConn(self.loop, HOST, self.ctl_port) for _ in range(args.sim_connections)]
        self.readyz = HttpConn(self.loop, HOST, conn.port)
        self.simstats = HttpConn(self.loop, HOST, self.ctl_port)
        self.obs_seen = {}
        self.observers = []

    def start_observers(self, k, ca_file=None):
        """ca_file: prosody requires TLS (STARTTLS with that CA)."""
        host, port = self.fin.xmpp_a
        for i in random.sample(range(self.n), k):
            if ca_file:
                o = TlsXmppObserver(self.loop, host, port, self.fin.domain, self.ids[i],
                                    "pw" + self.ids[i], self.obs_seen, ca_file)
            else:
                o = XmppObserver(self.loop, host, port, self.fin.domain, self.ids[i],
                                 "pw" + self.ids[i], self.obs_seen)
                o.start()
            self.observers.append(o)
            self.loop.run_for(0.005)
        self.loop.run_until(lambda: all(o.live or o.dead for o in self.observers), 30,
                            "observers online")
        return sum(1 for o in self.observers if o.live)

    # ---- helpers
    def least_loaded(self, conns):
        return min(conns, key=lambda c: c.load)

    def get_json(self, c, path, timeout=10.0):
        box = []
        c.request("GET", path, cb=box.append)
        self.loop.run_until(lambda: box, timeout, "GET %s" % path)
        r = box[0]
        if r.error is not None:
            raise RuntimeError("GET %s: %r" % (path, r.error))
        return r.json()

    # ---- SSE
    def on_event(self, c, etype, data, t):
        i = c.tag
        if etype == "agent":
            try:
                d = json.loads(data)
            except ValueError:
                return
            self.state[i] = d.get("state")
            if self.agent_events_after is not None and t >= self.agent_events_after:
                self.events_after_failover[i] += 1
        elif etype == "dialog":
            try:
                d = json.loads(data)
            except ValueError:
                return
            did, st = d.get("id"), d.get("state")
            if st == "ALERTING":
                self.alert_t.setdefault(did, t)
            elif st == "DROPPED":
                self.dropped_t.setdefault(did, t)
                if self.busy[i] == did:
                    self.busy[i] = None

    def on_sse_open(self, c):
        self.sse_pending -= 1
        if c.status == 200:
            self.sse_open_n += 1
        self.sse_next()

    def on_sse_close(self, c, why):
        self.sse_closes += 1
        if c.status == 200:
            self.sse_open_n -= 1
        if c.status is None:
            self.sse_pending -= 1
        if self.sse_closes <= 10:
            say("SSE stream of agent %s closed: %r" % (self.ids[c.tag], why))
        # the page reconnects (a new ticket); so do we (snapshot, no Last-Event-ID)
        self.loop.later(1.0, self.sse_open, c.tag)

    def sse_open(self, i):
        self.sse_queue.append(i)
        self.sse_next()

    def sse_next(self):
        while self.sse_queue and self.sse_pending < 64:
            i = self.sse_queue.pop(0)
            c = SseConn(self.loop, HOST, self.conn.port, "/api/v1/events", self.on_event,
                        on_close=self.on_sse_close, on_open=self.on_sse_open, tag=i,
                        ticket=("/api/v1/events/ticket", self.token[i]))
            self.sse[i] = c
            self.sse_pending += 1
            try:
                c.start()
            except OSError as e:
                self.sse_pending -= 1
                say("SSE connect for %s failed: %r" % (self.ids[i], e))
                self.loop.later(1.0, self.sse_open, i)

    # ---- phase 1: sign-in
    def login_phase(self):
        n = self.n
        todo = list(range(n))
        tries = [0] * n
        self.login_fail = {}
        done = [0]
        t0 = now()
        self.login_lat = []

        def send(c):
            if not todo:
                return
            i = todo.pop(0)
            body = {"agent": self.ids[i], "password": "pw" + self.ids[i], "extension": self.ids[i]}
            c.request("POST", "/api/v1/login", body, cb=lambda r, i=i, c=c: answered(c, i, r))

        def answered(c, i, r):
            j = r.json() if r.error is None else None
            if r.status == 200 and j and j.get("token"):
                self.token[i] = j["token"]
                done[0] += 1
                self.login_lat.append(r.t_done - r.t_sent)
                self.sse_open(i)
            else:
                tries[i] += 1
                why = repr(r.error) if r.error else "%s %s" % (r.status, r.body[:200])
                self.login_fail[why] = self.login_fail.get(why, 0) + 1
                if tries[i] < 3:
                    todo.append(i)
                else:
                    done[0] += 1
            send(c)

        for c in self.api:
            send(c)
        xmpp = {"online": 0, "t": None, "agents": 0}
        self.t_logins_done = self.t_sse_done = None

        def ok_count():
            return sum(1 for t in self.token if t)

        def poll():
            def got(r):
                j = r.json() or {}
                xmpp["online"] = j.get("xmpp_online", 0)
                xmpp["agents"] = j.get("agents", 0)
                if done[0] >= n and xmpp["online"] >= ok_count() and xmpp["t"] is None:
                    xmpp["t"] = now()
                if xmpp["t"] is None:
                    self.loop.later(0.1, poll)
            self.readyz.request("GET", "/readyz", cb=got)
        poll()
        last = [now()]

        def progress():
            if now() - last[0] > 5:
                last[0] = now()
                say("  sign-in: %d/%d answered, %d streams open, xmpp_online %d"
                    % (done[0], n, self.sse_open_n, xmpp["online"]))
            if self.t_logins_done is None and done[0] >= n:
                self.t_logins_done = now()
            if self.t_sse_done is None and done[0] >= n and self.sse_open_n >= ok_count():
                self.t_sse_done = now()
            return self.t_sse_done is not None and xmpp["t"] is not None
        self.loop.run_until(progress, self.args.login_timeout, "sign-in of all agents")
        ok = ok_count()
        if ok < n:
            say("sign-in failures: %r" % self.login_fail)
        t_end = max(xmpp["t"], self.t_sse_done, self.t_logins_done)
        self.login_all_s = t_end - t0
        self.logins_done_s = self.t_logins_done - t0
        self.sse_done_s = (self.t_sse_done or t_end) - t0
        self.xmpp_done_s = xmpp["t"] - t0
        self.logins_ok = ok

    # ---- READY
    def ready_phase(self):
        todo = [i for i in range(self.n) if self.token[i]]
        fails = {}
        t0 = now()

        def send(c):
            if not todo:
                return
            i = todo.pop(0)
            c.request("POST", "/api/v1/state", {"state": "READY"},
                      headers={"Authorization": "Bearer " + self.token[i]},
                      cb=lambda r, c=c: answered(c, r))

        def answered(c, r):
            if r.status not in (200, 202):
                why = repr(r.error) if r.error else "%s %s" % (r.status, r.body[:120])
                fails[why] = fails.get(why, 0) + 1
            send(c)
        for c in self.api:
            send(c)
        self.loop.run_until(lambda: all(s == "READY" for s, t in zip(self.state, self.token) if t),
                            self.args.login_timeout, "READY on every stream")
        self.ready_s = now() - t0
        if fails:
            say("state failures: %r" % fails)

    # ---- phase 2: calls
    def call_phase(self, rate, duration, hold_s, calls=None, pick=None):
        """Returns list of call dicts."""
        calls = [] if calls is None else calls
        rej = {"409": 0, "other": 0, "no_idle_agent": 0}
        interval = 1.0 / rate
        t_start = now()
        t_end = t_start + duration
        nxt = [t_start]
        n = self.n
        eligible = [i for i in range(n) if self.token[i]]

        def pick_agent():
            for _ in range(50):
                i = random.choice(eligible)
                if self.busy[i] is None and self.state[i] == "READY" and self.sse[i].open:
                    return i
            return None

        def inject():
            t = now()
            if t >= t_end:
                return
            i = pick() if pick else pick_agent()
            if i is None:
                rej["no_idle_agent"] += 1
            else:
                self.busy[i] = "pending"
                call = {"agent": i, "did": None}
                calls.append(call)
                c = self.least_loaded(self.simc)
                call["queued"] = t
                c.request("POST", "/sim/calls", {"agent": self.ids[i], "ani": "+14155550100",
                                                 "dnis": "8000", "queue": "Sales",
                                                 "callvariables": {"callVariable1": "bench"}},
                          cb=lambda r, call=call: created(call, r))
            nxt[0] += interval
            self.loop.at(nxt[0], inject)

        def created(call, r):
            i = call["agent"]
            call["t_sent"], call["t_resp"] = r.t_sent, r.t_done
            j = r.json() if r.error is None else None
            if r.status == 200 and j:
                call["did"] = j["dialog_id"]
                if self.busy[i] == "pending":
                    self.busy[i] = call["did"]
                if call["did"] in self.dropped_t:      # (cannot happen: we hang up)
                    self.busy[i] = None
                self.loop.at(r.t_done + hold_s, hangup, call)
            else:
                self.busy[i] = None
                rej["409" if r.status == 409 else "other"] += 1
                if rej["other"] <= 5 and r.status != 409:
                    say("POST /sim/calls: %s %r" % (r.status, r.error or r.body[:200]))

        def hangup(call):
            c = self.least_loaded(self.simc)
            call["t_hangup"] = now()
            c.request("POST", "/sim/calls/%s/hangup" % call["did"], {},
                      cb=lambda r, call=call: hung(call, r))

        def hung(call, r):
            call["hangup_status"] = r.status
            if r.status != 200:
                self.busy[call["agent"]] = None

        self.loop.at(t_start, inject)
        self.loop.run_until(lambda: now() >= t_end, duration + 5, "call phase")
        self.call_phase_s = now() - t_start
        self.rejects = rej
        return calls

    def drain_calls(self, calls, timeout=20.0):
        def done():
            return all(c.get("did") is None or c.get("hangup_status") is not None and
                       (c["did"] in self.dropped_t or c["hangup_status"] != 200)
                       for c in calls if "t_resp" in c) and \
                all("t_resp" in c for c in calls)
        try:
            self.loop.run_until(done, timeout, "calls hung up and DROPPED on their streams")
        except TimeoutError as e:
            say(str(e))

    # ---- phase 4: failover
    def failover_phase(self):
        n = self.n
        stats0 = self.get_json(self.simstats, "/sim/stats")
        get_user0 = stats0["requests"].get("GET User", 0)
        samples = []
        st = {"ready": None, "stats": None, "min_online": None, "t_active": None,
              "t_present": None, "t_rest": None, "t_rest2": None, "t_online": None,
              "present_b": 0, "get_user": 0, "online": None}
        t0 = now()
        self.agent_events_after = t0
        box = []
        self.simc[0].request("POST", "/sim/node", {"node": "A", "status": "OUT_OF_SERVICE",
                                                   "xmpp": "drop"}, cb=box.append)

        def poll_ready():
            def got(r):
                j = r.json() or {}
                t = now()
                on = j.get("xmpp_online")
                st["online"] = on
                if on is not None:
                    st["min_online"] = on if st["min_online"] is None else min(st["min_online"], on)
                if j.get("active_node") == 1 and st["t_active"] is None:
                    st["t_active"] = t
                if on == n and st["t_active"] is not None and st["t_online"] is None:
                    st["t_online"] = t
                    st["present_b_at_online"] = st["present_b"]
                samples.append((t - t0, r.status, j.get("active_node"), on, st["present_b"]))
                if not finished():
                    self.loop.later(0.1, poll_ready)
            self.readyz.request("GET", "/readyz", cb=got)

        def poll_stats():
            def got(r):
                j = r.json() or {}
                t = now()
                if j:
                    st["present_b"] = j["nodes"]["B"]["present"]
                    st["present_a"] = j["nodes"]["A"]["present"]
                    st["get_user"] = j["requests"].get("GET User", 0) - get_user0
                    if st["present_b"] >= n and st["t_present"] is None:
                        st["t_present"] = t
                    if st["get_user"] >= n and st["t_rest"] is None:
                        st["t_rest"] = t
                    if st["get_user"] >= 2 * n and st["t_rest2"] is None:
                        st["t_rest2"] = t
                if not finished():
                    self.loop.later(0.1, poll_stats)
            self.simstats.request("GET", "/sim/stats", cb=got)

        def finished():
            return (st["t_active"] is not None and st["t_present"] is not None
                    and st["t_rest"] is not None)
        poll_ready()
        poll_stats()
        last = [now()]

        def progress():
            if now() - last[0] > 5:
                last[0] = now()
                say("  failover: active_node %s, xmpp_online %s, present on B %s, User re-reads %s"
                    % (samples[-1][1] if samples else "?", st["online"], st["present_b"],
                       st["get_user"]))
            return finished()
        try:
            self.loop.run_until(progress, self.args.failover_timeout, "failover re-sync")
            self.resync_s = max(st["t_active"], st["t_present"], st["t_rest"]) - t0
        except TimeoutError as e:
            say(str(e))
            self.resync_s = float("nan")
        # keep going a little: do the second round of re-reads (after XMPP online) finish?
        try:
            self.loop.run_until(lambda: st["t_rest2"] is not None or now() - t0 > self.resync_s + 15
                                if self.resync_s == self.resync_s else True, 20, "")
        except TimeoutError:
            pass
        self.fo = st
        self.fo_t0 = t0
        self.fo_samples = samples
        self.fo_node_reply = box[0].status if box else None
        self.fo_get_user_total = st["get_user"]

    def probe(self, k, timeout=10.0):
        """k calls to distinct idle READY agents after the failover; all must alert."""
        idle = [i for i in range(self.n) if self.token[i] and self.busy[i] is None
                and self.state[i] == "READY" and self.sse[i].open]
        random.shuffle(idle)
        pick_list = idle[:k]
        it = iter(pick_list)
        calls = []
        self.call_phase(max(1, min(k, 50)), len(pick_list) / max(1, min(k, 50)) + 0.01, 0.5,
                        calls=calls, pick=lambda: next(it, None))
        self.drain_calls(calls, timeout)
        lat = sorted((self.alert_t[c["did"]] - c["t_sent"]) * 1000 for c in calls
                     if c.get("did") in self.alert_t)
        return len(calls), sum(1 for c in calls if c.get("did")), len(lat), lat


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=100.0, help="inbound calls per second")
    ap.add_argument("--duration", type=float, default=20.0, help="call phase seconds")
    ap.add_argument("--hold-s", type=float, default=1.0, help="ringing time before the hangup")
    ap.add_argument("--login-concurrency", type=int, default=32)
    ap.add_argument("--sim-connections", type=int, default=8,
                    help="keep-alive connections to the simulator's control API")
    ap.add_argument("--ping-interval-s", type=int, default=10,
                    help="connector [finesse] ping_interval_s (the daemon's default; stack.py "
                         "uses 2 for tests, i.e. N/2 pings/s)")
    ap.add_argument("--agents-per-worker", type=int, default=None,
                    help="connector [finesse] agents_per_worker (default: the daemon's, 500)")
    ap.add_argument("--probe", type=int, default=100, help="calls after the failover")
    ap.add_argument("--login-timeout", type=float, default=300.0)
    ap.add_argument("--failover-timeout", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--transport", choices=("starttls", "tls", "websocket"), default="starttls",
                    help="the connector's [finesse] xmpp_transport")
    ap.add_argument("--observers", type=int, default=0,
                    help="diagnostic: K extra XMPP sessions (second resource of K agents, on "
                         "node A) that time the notification at prosody's output; adds load")
    args = ap.parse_args()
    random.seed(args.seed)
    n = args.agents

    if not os.access(stack.FSC_CONNECTOR, os.X_OK):
        sys.exit("%s not built (cmake --build build)" % stack.FSC_CONNECTOR)
    # SSE streams + keep-alive connections here; children inherit the limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n + 4096))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < n + 200:
        sys.exit("open-file limit %d too low for %d streams (raise the hard limit)" % (want, n))

    tmp = stack.TempDir(prefix="fsc-bench-conn-")
    say("temp dir %s, RLIMIT_NOFILE %d/%d" % (tmp.path, want, hard))
    # c2s stays open for --observers (plain XMPP sessions of this client)
    pki = None
    fin_kw = {}
    if args.transport != "starttls":
        pki = stack.TestPki(domain="finesse.test", tmp=tmp)
        fin_kw = {"xmpp_tls": pki.server,
                  "transports": ("starttls", args.transport) if args.transport == "tls"
                  else ("starttls", "websocket"),
                  "prosody_wss": args.transport == "websocket"}
    fin = stack.FinesseSim(agents=n, presence_grace_s=600, tmp=tmp, **fin_kw)
    finesse = {"ping_interval_s": str(args.ping_interval_s)}
    if args.agents_per_worker:
        finesse["agents_per_worker"] = str(args.agents_per_worker)
    if args.transport == "websocket":
        finesse["xmpp_websocket_urls"] = "%s, %s" % (fin.prosody_a.wss_url, fin.prosody_b.wss_url)
    # 2,000 desks come from one address here: the address's sign-in limit
    # (30 in flight or failed, README "Sign-in throttling") would hold the
    # sign-ins back to 30 at a time, which is not what is measured
    server = {"login_max_failures_per_address": str(max(100, 2 * args.login_concurrency))}
    conn = stack.Connector(fin, log_level="warn", extra={"finesse": finesse, "server": server},
                           tmp=tmp,
                           transport=args.transport, ca_file=pki.ca_file if pki else None)
    say("finesse-sim pid %d, prosody A %d, B %d, fsc-connector pid %d"
        % (fin.proc.pid, fin.prosody_a.proc.pid, fin.prosody_b.proc.pid, conn.proc.pid))
    b = Bench(args, fin, conn)

    # ---- 1. sign-in
    say("sign-in: %d agents, %d in flight" % (n, args.login_concurrency))
    meter = CpuMeter({"fsc-connector (+workers)": [conn.proc.pid],
                      "prosody A": [fin.prosody_a.proc.pid], "prosody B": [fin.prosody_b.proc.pid],
                      "finesse-sim": [fin.proc.pid], "bench client": [os.getpid()]}).start()
    b.login_phase()
    login_cpu = meter.stop()
    # the workers were born during the phase: all their CPU so far belongs to it
    workers = children(conn.proc.pid)
    wt = sum(proc_ticks(w) or 0 for w in workers)
    login_cpu["xmpp workers"] = 100.0 * wt / CLK_TCK / max(b.login_all_s, 1e-3)
    say("signed in %d/%d in %.2f s (all answered %.2f s, streams %.2f s, xmpp_online %.2f s); "
        "%d XMPP workers" % (b.logins_ok, n, b.login_all_s, b.logins_done_s, b.sse_done_s,
                             b.xmpp_done_s, len(workers)))
    st = b.get_json(b.simstats, "/sim/stats")
    say("sim: present A %d B %d, forced logouts %d" % (st["nodes"]["A"]["present"],
                                                      st["nodes"]["B"]["present"],
                                                      st["counters"].get("forced_logouts", 0)))
    b.ready_phase()
    say("all READY on their streams in %.2f s" % b.ready_s)
    b.loop.run_for(2.0)      # let the READY notifications settle
    if args.observers:
        say("observers: %d online" % b.start_observers(min(args.observers, n),
                                                       pki.ca_file if pki else None))

    # ---- 2./3. calls
    workers = children(conn.proc.pid)
    groups = {"fsc-connector": [conn.proc.pid], "xmpp workers": workers,
              "prosody A": [fin.prosody_a.proc.pid], "prosody B": [fin.prosody_b.proc.pid],
              "finesse-sim": [fin.proc.pid], "bench client": [os.getpid()]}
    st0 = b.get_json(b.simstats, "/sim/stats")
    say("calls: %.0f/s for %.0f s, hang-up after %.1f s" % (args.rate, args.duration, args.hold_s))
    meter = CpuMeter(groups).start()
    calls = b.call_phase(args.rate, args.duration, args.hold_s)
    cpu = meter.stop()
    rss = {}
    hwm = {}
    for name, pids in (("fsc-connector", [conn.proc.pid]), ("xmpp workers", workers)):
        rss[name] = sum(kb(proc_status(p).get("VmRSS")) for p in pids)
        hwm[name] = sum(kb(proc_status(p).get("VmHWM")) for p in pids)
    other_rss = {name: kb(proc_status(pids[0]).get("VmRSS"))
                 for name, pids in groups.items() if name not in rss}
    conn_threads = proc_status(conn.proc.pid).get("Threads")
    conn_fds = len(os.listdir("/proc/%d/fd" % conn.proc.pid))
    b.drain_calls(calls)
    st1 = b.get_json(b.simstats, "/sim/stats")
    ok_calls = [c for c in calls if c.get("did")]
    lat = sorted((b.alert_t[c["did"]] - c["t_sent"]) * 1000 for c in ok_calls if c["did"] in b.alert_t)
    lat_resp = sorted((b.alert_t[c["did"]] - c["t_resp"]) * 1000 for c in ok_calls
                      if c["did"] in b.alert_t)
    sim_rt = sorted((c["t_resp"] - c["t_sent"]) * 1000 for c in ok_calls)
    missing = [c["did"] for c in ok_calls if c["did"] not in b.alert_t]
    no_drop = [c["did"] for c in ok_calls if c["did"] not in b.dropped_t]
    cpu_conn = cpu["fsc-connector"] + cpu["xmpp workers"]
    obs = [c for c in ok_calls if c["did"] in b.obs_seen and c["did"] in b.alert_t]
    obs_in = sorted((b.obs_seen[c["did"]] - c["t_sent"]) * 1000 for c in obs)
    obs_out = sorted((b.alert_t[c["did"]] - b.obs_seen[c["did"]]) * 1000 for c in obs)
    t_first = min((c["t_sent"] for c in ok_calls), default=0)
    with open(tmp.file("calls.csv"), "w") as f:
        f.write("t_sent_s,t_sent_wall,agent,dialog,sse_ms,sim_rt_ms,observer_ms\n")
        wall = time.time() - now()
        for c in ok_calls:
            f.write("%.4f,%.6f,%s,%s,%s,%.2f,%s\n" % (
                c["t_sent"] - t_first, c["t_sent"] + wall, b.ids[c["agent"]], c["did"],
                "%.2f" % ((b.alert_t[c["did"]] - c["t_sent"]) * 1000) if c["did"] in b.alert_t else "",
                (c["t_resp"] - c["t_sent"]) * 1000,
                "%.2f" % ((b.obs_seen[c["did"]] - c["t_sent"]) * 1000) if c["did"] in b.obs_seen else ""))
    rss_mb = (rss["fsc-connector"] + rss["xmpp workers"]) / 1024.0
    notif = {k: st1["notifications"].get(k, 0) - st0["notifications"].get(k, 0) for k in ("A", "B")}

    # ---- 4. failover
    say("failover: node A OUT_OF_SERVICE, XMPP sessions dropped")
    meter = CpuMeter(groups).start()
    b.failover_phase()
    fo_cpu = meter.stop()
    say("re-synced in %.2f s" % b.resync_s)
    b.loop.run_for(1.0)
    agents_evented = sum(1 for x in b.events_after_failover if x)
    b.agent_events_after = None
    call_phase_s, rejects = b.call_phase_s, b.rejects
    pk = b.probe(min(args.probe, n // 2))
    st2 = b.get_json(b.simstats, "/sim/stats")
    log_warns = [l for l in conn.log_text().splitlines() if "level=" in l or "event=" in l]

    # ---- summary
    def p(s=""):
        print(s)
    p("fsc-connector benchmark, %s, %d CPUs, one connector, finesse-sim A/B + 2 prosody"
      % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count()))
    p("sign-in of %d agents (%d in flight): %d ok in %.2f s; all sign-ins answered %.2f s, "
      "all streams open %.2f s, readyz xmpp_online == N at %.2f s"
      % (n, args.login_concurrency, b.logins_ok, b.login_all_s, b.logins_done_s, b.sse_done_s,
         b.xmpp_done_s))
    ll = sorted(b.login_lat)
    p("  POST /api/v1/login latency p50 %.0f ms p99 %.0f ms; failures %r"
      % (pct(ll, 50) * 1000, pct(ll, 99) * 1000, b.login_fail or {}))
    p("  CPU during sign-in: %s" % fmt_cpu(login_cpu))
    p("  (xmpp workers: %d; their CPU since birth over login_all_s)" % len(workers))
    p("  set READY for all: %.2f s until READY on every stream" % b.ready_s)
    p("calls: %.0f/s for %.1f s: %d placed, %d rejected by the sim (409 %d, other %d), "
      "%d slots without an idle agent"
      % (args.rate, call_phase_s, len(ok_calls), rejects["409"] + rejects["other"],
         rejects["409"], rejects["other"], rejects["no_idle_agent"]))
    p("  notifications sent by the sim during the phase: A %d, B %d (B's bounce: nobody there)"
      % (notif["A"], notif["B"]))
    p("  ALERTING on the stream: %d of %d calls (%d missing); DROPPED seen for %d"
      % (len(lat), len(ok_calls), len(missing), len(ok_calls) - len(no_drop)))
    p("  latency /sim/calls sent -> ALERTING on SSE: p50 %.1f ms p90 %.1f p99 %.1f max %.1f"
      % (pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[-1] if lat else float("nan")))
    p("  (sim's /sim/calls round trip p50 %.1f ms p99 %.1f; from its answer -> SSE p50 %.1f ms "
      "p99 %.1f)" % (pct(sim_rt, 50), pct(sim_rt, 99), pct(lat_resp, 50), pct(lat_resp, 99)))
    if args.observers:
        p("  observer split (%d calls to observed agents): sent -> prosody A delivered p50 %.1f "
          "p99 %.1f ms; prosody delivered -> SSE p50 %.1f p99 %.1f ms"
          % (len(obs), pct(obs_in, 50), pct(obs_in, 99), pct(obs_out, 50), pct(obs_out, 99)))
    p("  CPU (100%% = one core) over the call phase: %s" % fmt_cpu(cpu))
    p("  RSS at the end: fsc-connector %.1f MB + %d workers %.1f MB = %.1f MB (VmHWM sum %.1f MB); "
      "connector threads %s, fds %d" % (rss["fsc-connector"] / 1024.0, len(workers),
                                         rss["xmpp workers"] / 1024.0, rss_mb,
                                         (hwm["fsc-connector"] + hwm["xmpp workers"]) / 1024.0,
                                         conn_threads, conn_fds))
    p("  RSS of the others: %s" % ", ".join("%s %.0f MB" % (k, v / 1024.0)
                                           for k, v in other_rss.items()))
    p("  SSE streams closed by the server during the run: %d" % b.sse_closes)
    fo = b.fo
    p("failover (A OUT_OF_SERVICE + XMPP drop): resync_s %.2f" % b.resync_s)
    t0 = b.fo_t0
    rel = lambda t: "%.2f s" % (t - t0) if t else "never"
    p("  active_node 1 at %s; every agent present on B at %s; >= N User re-reads at %s, "
      ">= 2N at %s (%d GET User in all)" % (rel(fo["t_active"]), rel(fo["t_present"]),
                                            rel(fo["t_rest"]), rel(fo["t_rest2"]),
                                            b.fo_get_user_total))
    p("  /readyz xmpp_online during the failover: min %s (of %d), == N with active_node 1 from %s, "
      "when the sim saw %s agents on B" % (fo["min_online"], n, rel(fo["t_online"]),
                                          fo.get("present_b_at_online", "?")))
    bad = [x for x in b.fo_samples if x[1] != 200]
    p("  /readyz answers during the failover: %d of %d not 200%s"
      % (len(bad), len(b.fo_samples), " (first at %.2f s, last at %.2f s, status %s)"
         % (bad[0][0], bad[-1][0], sorted(set(x[1] for x in bad))) if bad else ""))
    p("  agent events on the streams after the failover (before the probe): %d agents got one"
      % agents_evented)
    p("  CPU during the failover: %s" % fmt_cpu(fo_cpu))
    p("  probe after the failover: %d calls, %d placed, %d ALERTING on SSE; latency p50 %.1f ms "
      "p99 %.1f ms" % (pk[0], pk[1], pk[2], pct(pk[3], 50), pct(pk[3], 99)))
    p("  sim: present A %d B %d, forced logouts %d, bounces A %d B %d, dropped %d"
      % (st2["nodes"]["A"]["present"], st2["nodes"]["B"]["present"],
         st2["counters"].get("forced_logouts", 0), st2["counters"].get("bounces_A", 0),
         st2["counters"].get("bounces_B", 0), st2["counters"].get("notifications_dropped", 0)))
    warn_counts = {}
    for l in log_warns:
        f = dict(x.split("=", 1) for x in l.split() if "=" in x)
        key = "%s %s %s" % (f.get("level", "?"), f.get("proc", "?"), f.get("event", l[:40]))
        warn_counts[key] = warn_counts.get(key, 0) + 1
    p("  connector log lines (level proc event x count): %s"
      % (", ".join("%s x%d" % kv for kv in sorted(warn_counts.items(), key=lambda kv: -kv[1]))
         or "nothing"))
    p("agents=%d p50_ms=%.1f p99_ms=%.1f rss_mb=%.1f cpu_pct=%.1f login_all_s=%.2f resync_s=%.2f "
      "transport=%s"
      % (b.logins_ok, pct(lat, 50), pct(lat, 99), rss_mb, cpu_conn, b.login_all_s, b.resync_s,
         args.transport))
    sys.stdout.flush()
    stack.stop_all()


if __name__ == "__main__":
    main()
