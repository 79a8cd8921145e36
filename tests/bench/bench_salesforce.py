#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""fsc-connector benchmark, Salesforce side: screen-pop latency, Task
upserts per second through the durable outbox (Redis) to sf-sim, and
lost/duplicated Tasks after a kill -9 of the connector during a Salesforce
outage. Not pass/fail; the figures are on the last line:

    tasks_per_s=... pop_p50_ms=... pop_p99_ms=... lost=... duplicates=...

Redis, sf-sim, finesse-sim (nodes A and B, one prosody each) and ONE
fsc-connector with [redis] + [salesforce] (log_level warn, threads 2), all
on loopback through tests/lib/stack.py. N agents (default 50) sign in, get
a User record in sf-sim (Finesse_Agent_Id__c), open one SSE stream each and
go READY. The client is this one Python process (nbhttp.py: one epoll loop,
no threads). A call = POST /sim/calls -> POST /sim/calls/{id}/action ANSWER
-> POST /sim/calls/{id}/hangup at finesse-sim; no wrap-up, so the agent is
READY again at once and the connector queues one Task per call end.

  1. pop: --pop-calls calls at --pop-rate/s to idle agents, half carrying
     ECC user.sf_recordId (a seeded Contact -> pop SOBJECT), half only the
     ANI (-> SEARCH_AND_POP). Latency = arrival of the "pop" SSE event with
     that dialog_id on the agent's stream - the moment the /sim/calls
     request was written to finesse-sim's socket (so it includes the sim,
     prosody, the XMPP worker, the connector's job thread and the SSE
     write). ALERTING on the same stream is timed too, for comparison.
  2. sustained: every agent runs calls back to back (closed loop) for
     --duration s with sf-sim healthy; Tasks/s in sf-sim (GET /sim/stats
     upserts, every 0.5 s) and XLEN of the outbox over time.
  3. drain (the last line's tasks_per_s): sf-sim answers 503 (fault, no
     expiry) while --drain-k call ends are queued (XLEN checked); then the
     fault is cleared and tasks_per_s = K / (last - first successful upsert
     of the drain), from sf-sim's own request log (GET /sim/requests).
  4. kill: the issue's scenario. POST /sim/faults {"status": 503, "for_s":
     --outage-s}; a burst of --burst call ends; XLEN == burst; the consumer
     holds entries (XPENDING > 0); kill -9 of the connector (its process
     group: workers too); a fresh connector on the same Redis; the fault
     runs out by itself; wait until the outbox is empty. Then, from GET
     /sim/tasks: lost = call ends queued in the stream (XRANGE before the
     kill) without a Task, duplicates = Tasks beyond one per
     Finesse_Call_Id__c. The summary also checks every call end of the
     whole run.

CPU per process (utime+stime from /proc, 100 % = one core) for every phase.
FSC_KEEP_TMP=1 keeps the temp dir (logs, pop.csv, samples.csv).
Run with /usr/bin/python3 after building (build/connector/fsc-connector).
"""

import argparse
import collections
import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import stack  # noqa: E402
from nbhttp import Loop, HttpConn, SseConn, now  # noqa: E402
from bench_connector import CpuMeter, fmt_cpu, pct, children, proc_status, kb  # noqa: E402

HOST = "127.0.0.1"
PREFIX = "fsc:"
STREAM = PREFIX + "outbox"


def say(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def connector(fin, sf, redis, tmp, name, args):
    sfc = {"login_url": sf.login_url, "client_id": sf.consumer_key,
           "jwt_key_file": sf.key_file, "integration_user": sf.integration_user,
           "org_origins": sf.ui_url}
    for key, v in (("outbox_reclaim_ms", args.reclaim_ms),
                   ("outbox_backoff_max_ms", args.backoff_max_ms),
                   ("outbox_max_attempts", args.max_attempts),
                   ("outbox_upsert_batch", args.upsert_batch),
                   ("outbox_writers", args.writers)):
        if v:
            sfc[key] = str(v)
    return stack.Connector(fin, name=name, log_level="warn", tmp=tmp, extra={
        "finesse": {"ping_interval_s": "10"},
        "redis": {"url": redis.url, "prefix": PREFIX},
        "salesforce": sfc,
    })


class Bench:
    def __init__(self, args, fin, sf, redis, conn):
        self.args, self.fin, self.sf, self.redis, self.conn = args, fin, sf, redis, conn
        self.n = args.agents
        self.ids = [str(1001 + i) for i in range(self.n)]
        self.loop = Loop()
        self.sim = [HttpConn(self.loop, HOST, fin.ports["control"])
                    for _ in range(args.sim_connections)]
        self.sfc = HttpConn(self.loop, HOST, sf.ports["api"])
        self.busy = [None] * self.n          # dialog id in progress (ours)
        self.tokens = [None] * self.n
        self.sse = [None] * self.n
        self.pop_t = {}                      # dialog id -> (t, type)
        self.alert_t = {}
        self.dropped_t = {}
        self.on_drop = {}                    # dialog id -> callback once DROPPED is on SSE
        self.no_drop = 0
        self.sse_closes = 0
        self.sse_closes_before_kill = None
        self.ended = []                      # (dialog id, phase) of every call end we caused
        self.phase = None
        self.rejects = collections.Counter()
        self.contact = next(r["Id"] for r in sf.records("Contact")
                            if r.get("Name") == "Jane Doe")

    # ---- helpers
    def simreq(self, method, path, body, cb):
        min(self.sim, key=lambda c: c.load).request(method, path, body, cb=cb)

    def get_json(self, c, path, timeout=30.0):
        box = []
        c.request("GET", path, cb=box.append)
        self.loop.run_until(lambda: box, timeout, "GET %s" % path)
        if box[0].error is not None or box[0].status != 200:
            raise RuntimeError("GET %s: %r %s" % (path, box[0].error, box[0].status))
        return box[0].json()

    def rcli(self, *a):
        return self.redis.cli(*a, timeout=10.0)

    def xlen(self):
        return self.rcli("XLEN", STREAM)

    def xpending(self):
        try:
            p = self.rcli("XPENDING", STREAM, "fsc")
        except stack.RespError:
            return 0, []
        return p[0], p[3] or []

    # ---- SSE
    def on_event(self, c, etype, data, t):
        if etype == "pop":
            try:
                d = json.loads(data)
            except ValueError:
                return
            self.pop_t.setdefault(d.get("dialog_id"), (t, d.get("type")))
        elif etype == "dialog":
            try:
                d = json.loads(data)
            except ValueError:
                return
            if d.get("state") == "ALERTING":
                self.alert_t.setdefault(d.get("id"), t)
            elif d.get("state") == "DROPPED":
                did = d.get("id")
                self.dropped_t.setdefault(did, t)
                cb = self.on_drop.pop(did, None)
                if cb:
                    cb()

    def on_sse_close(self, c, why):
        self.sse_closes += 1
        if self.sse_closes <= 5:
            say("SSE stream of %s closed: %r" % (self.ids[c.tag], why))
        if self.phase != "kill":
            self.loop.later(1.0, self.open_sse, c.tag)

    def open_sse(self, i):
        c = SseConn(self.loop, HOST, self.conn.port, "/api/v1/events", self.on_event,
                    on_close=self.on_sse_close, tag=i,
                    ticket=("/api/v1/events/ticket", self.tokens[i]))
        self.sse[i] = c
        c.start()

    # ---- setup
    def sign_in(self):
        t0 = now()
        self.login_lat = []
        for i, a in enumerate(self.ids):
            t1 = now()
            st, body = self.conn.login(a, "pw" + a, a)
            self.login_lat.append(now() - t1)
            self.loop.run_once(0)            # keep the streams already opened moving
            if st != 200:
                raise RuntimeError("login %s: %d %r" % (a, st, body))
            self.tokens[i] = body["token"]
            self.open_sse(i)
        self.loop.run_until(lambda: all(s.open for s in self.sse), 30, "SSE streams open")
        for i, a in enumerate(self.ids):
            stack.wait_until(lambda: self.fin.agent(a)["state"] == "NOT_READY", 15,
                             what="%s NOT_READY" % a)
            st, r = self.conn.api("POST", "/api/v1/state", self.tokens[i], {"state": "READY"})
            if st != 202:
                raise RuntimeError("READY %s: %d %r" % (a, st, r))
        for a in self.ids:
            stack.wait_until(lambda: self.fin.agent(a)["state"] == "READY", 15,
                             what="%s READY" % a)
        return now() - t0

    # ---- one call: /sim/calls -> ANSWER -> hangup
    def place(self, i, on_end, ecc=False, ring_s=0.0, talk_s=0.0, info=None, paced=False):
        a = self.ids[i]
        body = {"agent": a, "ani": "+14155550100", "dnis": "8000", "queue": "Sales",
                "callvariables": {"callVariable1": "bench"},
                "ecc": {"user.sf_recordId": self.contact} if ecc else {}}
        self.busy[i] = "?"

        def created(r):
            if r.status != 200:
                self.rejects["calls %s" % (r.status if r.error is None else "error")] += 1
                self.busy[i] = None
                on_end(i, None, r)
                return
            did = r.json()["dialog_id"]
            self.busy[i] = did
            if info is not None:
                info.update(did=did, t_sent=r.t_sent, t_resp=r.t_done)
            if ring_s:
                self.loop.later(ring_s, answer, did)
            else:
                answer(did)

        def answer(did):
            self.simreq("POST", "/sim/calls/%s/action" % did, {"agent": a, "action": "ANSWER"},
                        lambda r: answered(did, r))

        def answered(did, r):
            if r.status != 200:
                self.rejects["answer %s" % r.status] += 1
            if talk_s:
                self.loop.later(talk_s, hangup, did)
            else:
                hangup(did)

        def hangup(did):
            self.simreq("POST", "/sim/calls/%s/hangup" % did, None, lambda r: hung(did, r))

        def hung(did, r):
            if r.status != 200:
                self.rejects["hangup %s" % r.status] += 1
            self.ended.append((did, self.phase))
            if paced and did not in self.dropped_t:
                # next call only once the connector has shown this one DROPPED
                # on the agent's stream: generation then runs at the pace
                # the notification path (sim, prosody, worker, connector)
                # sustains instead of piling notifications up in the sim
                state = {"done": False}

                def go(timed_out=False):
                    if state["done"]:
                        return
                    state["done"] = True
                    if timed_out:
                        self.no_drop += 1
                        self.on_drop.pop(did, None)
                    self.busy[i] = None
                    on_end(i, did, r)
                self.on_drop[did] = go
                self.loop.later(15.0, go, True)
                return
            self.busy[i] = None
            on_end(i, did, r)

        self.simreq("POST", "/sim/calls", body, created)

    # ---- phase 1: pop latency (open loop)
    def pop_phase(self):
        a = self.args
        self.phase = "pop"
        calls = []
        interval = 1.0 / a.pop_rate
        t0 = now()
        k = [0]

        def tick():
            if k[0] >= a.pop_calls:
                return
            idle = [i for i in range(self.n) if self.busy[i] is None]
            self.loop.at(t0 + (k[0] + 1) * interval, tick)
            if not idle:
                self.rejects["no idle agent"] += 1
                return
            info = {"ecc": k[0] % 2 == 0}
            calls.append(info)
            self.place(random.choice(idle), lambda *x: None, ecc=info["ecc"],
                       ring_s=a.ring_s, talk_s=a.talk_s, info=info)
            k[0] += 1
        tick()
        self.loop.run_until(lambda: k[0] >= a.pop_calls and all(b is None for b in self.busy),
                            a.pop_calls * interval + 60, "pop calls done")
        self.loop.run_for(0.5)
        return calls, now() - t0

    # ---- closed-loop generation: every agent back to back
    def closed_loop(self, stop, phase):
        """Runs calls until stop(count) is true; returns (count, seconds)."""
        self.phase = phase
        count = [0]
        started = [0]
        t0 = now()

        def next_call(i, did=None, r=None):
            if did is not None:
                count[0] += 1
            if r is not None and r.status == 409:
                self.loop.later(0.02, next_call, i)       # not READY yet at the sim
                return
            if stop(started[0]):
                return
            started[0] += 1
            self.place(i, next_call, paced=True)
        for i in range(self.n):
            next_call(i)
        self.loop.run_until(lambda: stop(started[0]) and all(b is None for b in self.busy),
                            3600, "%s calls" % phase)
        return count[0], now() - t0

    def sample(self, samples, t0, sf_stats_box):
        """Every 0.5 s: (t, Tasks created+updated at sf-sim, XLEN)."""
        def got(r):
            j = r.json() or {}
            u = j.get("upserts", {})
            samples.append((now() - t0, u.get("created", 0) + u.get("updated", 0),
                            self.xlen(), j.get("tasks", 0)))
            sf_stats_box[:] = [j]
        self.sfc.request("GET", "/sim/stats", cb=got)

    def sustained_phase(self):
        d = self.args.duration
        samples = []
        box = []
        t0 = now()
        state = {"on": True}

        def poll():
            self.sample(samples, t0, box)
            if state["on"]:
                self.loop.later(0.5, poll)
        poll()
        n, gen_s = self.closed_loop(lambda started: now() - t0 >= d, "sustained")
        gen_end = now() - t0
        # the backlog left when generation stopped, and its drain
        self.loop.run_until(lambda: self.xlen() == 0, 120, "outbox empty after sustained")
        self.loop.run_for(1.0)
        state["on"] = False
        self.loop.run_for(0.6)
        return n, gen_s, gen_end, samples

    def upserts_of(self, phase):
        """sf-sim's log of the Task writes of this phase's dialogs: one entry
        per single upsert, and one per record a collections upsert wrote
        (with that request's ts, status and ms)."""
        dids = {d for d, ph in self.ended if ph == phase}
        reqs = self.get_json(self.sfc, "/sim/requests", 60)
        out = []
        for q in reqs:
            if q.get("kind") == "upsert":
                if q["path"].split("?")[0].rsplit("/", 1)[-1] in dids:
                    out.append(q)
            elif q.get("kind") == "upsert_collection":
                out.extend(dict(q, ext=x) for x in q.get("written") or [] if x in dids)
        return out

    def requests_of(self, kind, since):
        """How many sf-sim requests of a kind arrived since a wall time."""
        reqs = self.get_json(self.sfc, "/sim/requests", 60)
        return sum(1 for q in reqs if q.get("kind") == kind and q["ts"] >= since)


def rate_between(samples, t_from, t_to):
    s = [x for x in samples if t_from <= x[0] <= t_to]
    if len(s) < 2:
        return float("nan")
    return (s[-1][1] - s[0][1]) / (s[-1][0] - s[0][0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--pop-calls", type=int, default=400)
    ap.add_argument("--pop-rate", type=float, default=20.0, help="calls/s in the pop phase")
    ap.add_argument("--ring-s", type=float, default=0.3, help="pop phase: ringing before ANSWER")
    ap.add_argument("--talk-s", type=float, default=0.2, help="pop phase: ANSWER -> hangup")
    ap.add_argument("--duration", type=float, default=20.0, help="sustained phase seconds")
    ap.add_argument("--drain-k", type=int, default=2000)
    ap.add_argument("--drain-delays", default="20,100",
                    help="extra drains with sf-sim answering each upsert after D ms (comma list; "
                         "'' for none), as a real org's latency would")
    ap.add_argument("--drain-delay-k", type=int, default=200, help="entries per delayed drain")
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--outage-s", type=float, default=30.0)
    ap.add_argument("--sim-connections", type=int, default=8)
    ap.add_argument("--reclaim-ms", type=int, default=0,
                    help="[salesforce] outbox_reclaim_ms (default: the daemon's, 30000)")
    ap.add_argument("--backoff-max-ms", type=int, default=0,
                    help="[salesforce] outbox_backoff_max_ms (default: the daemon's, 60000)")
    ap.add_argument("--max-attempts", type=int, default=0,
                    help="[salesforce] outbox_max_attempts (default: the daemon's, 20)")
    ap.add_argument("--upsert-batch", type=int, default=0,
                    help="[salesforce] outbox_upsert_batch (default: the daemon's, 50; 1 = one "
                         "PATCH per Task)")
    ap.add_argument("--writers", type=int, default=0,
                    help="[salesforce] outbox_writers (default: the daemon's, 8)")
    ap.add_argument("--skip", default="", help="comma list of phases to skip: pop,sustained,drain,kill")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    random.seed(args.seed)
    skip = set(x for x in args.skip.split(",") if x)
    if not os.access(stack.FSC_CONNECTOR, os.X_OK):
        sys.exit("%s not built (cmake --build build)" % stack.FSC_CONNECTOR)

    tmp = stack.TempDir(prefix="fsc-bench-sf-")
    say("temp dir %s" % tmp.path)
    redis = stack.Redis(name="redis", tmp=tmp)
    sf = stack.SfSim(tmp=tmp)
    # one Finesse node: node B (its prosody bouncing every copy of every
    # notification) only costs CPU here; bench_connector.py covers failover
    fin = stack.FinesseSim(agents=args.agents, presence_grace_s=600, nodes=1, tmp=tmp)
    # every agent has its Salesforce User (Task owner); 1001-1010 are seeded
    have = {u.get("Finesse_Agent_Id__c") for u in sf.records("User")}
    for i in range(args.agents):
        a = str(1001 + i)
        if a not in have:
            sf.add_record("User", Username="agent%s@example.com" % a, LastName="Agent " + a,
                          Finesse_Agent_Id__c=a)
    conn = connector(fin, sf, redis, tmp, "connector", args)
    b = Bench(args, fin, sf, redis, conn)
    say("redis %d, sf-sim %d, finesse-sim %d, prosody %d, fsc-connector %d"
        % (redis.proc.pid, sf.proc.pid, fin.proc.pid, fin.prosody_a.proc.pid, conn.proc.pid))
    login_s = b.sign_in()
    say("%d agents signed in, streams open, READY in %.1f s" % (args.agents, login_s))
    b.loop.run_for(1.0)

    def groups(c):
        return {"fsc-connector": [c.proc.pid], "xmpp workers": children(c.proc.pid),
                "redis": [redis.proc.pid], "sf-sim": [sf.proc.pid], "finesse-sim": [fin.proc.pid],
                "prosody": [fin.prosody_a.proc.pid], "bench client": [os.getpid()]}
    out = []

    def p(s=""):
        out.append(s)

    # ---- 1. pop
    pop_lat, pop_p50, pop_p99 = [], float("nan"), float("nan")
    if "pop" not in skip:
        say("pop: %d calls at %.0f/s (half ECC user.sf_recordId, half ANI only)"
            % (args.pop_calls, args.pop_rate))
        m = CpuMeter(groups(conn)).start()
        calls, secs = b.pop_phase()
        cpu = m.stop()
        ok = [c for c in calls if c.get("did")]
        by = collections.defaultdict(list)
        alert = []
        for c in ok:
            if c["did"] in b.pop_t:
                t, typ = b.pop_t[c["did"]]
                ms = (t - c["t_sent"]) * 1000
                pop_lat.append(ms)
                by[typ].append(ms)
            if c["did"] in b.alert_t:
                alert.append((b.alert_t[c["did"]] - c["t_sent"]) * 1000)
        pop_lat.sort()
        alert.sort()
        pop_p50, pop_p99 = pct(pop_lat, 50), pct(pop_lat, 99)
        sim_rt = sorted((c["t_resp"] - c["t_sent"]) * 1000 for c in ok)
        gap = sorted((b.pop_t[c["did"]][0] - b.alert_t[c["did"]]) * 1000 for c in ok
                     if c["did"] in b.pop_t and c["did"] in b.alert_t)
        wrong = sum(1 for c in ok if c["did"] in b.pop_t and
                    b.pop_t[c["did"]][1] != ("SOBJECT" if c["ecc"] else "SEARCH_AND_POP"))
        with open(tmp.file("pop.csv"), "w") as f:
            f.write("dialog,ecc,pop_type,pop_ms,alerting_ms,sim_rt_ms\n")
            for c in ok:
                pt = b.pop_t.get(c["did"])
                f.write("%s,%d,%s,%s,%s,%.2f\n" % (
                    c["did"], c["ecc"], pt[1] if pt else "",
                    "%.2f" % ((pt[0] - c["t_sent"]) * 1000) if pt else "",
                    "%.2f" % ((b.alert_t[c["did"]] - c["t_sent"]) * 1000)
                    if c["did"] in b.alert_t else "", (c["t_resp"] - c["t_sent"]) * 1000))
        p("1. screen pop: %d calls at %.0f/s over %.1f s, %d placed, %d pops (%d of the wrong "
          "type), %d ALERTING" % (args.pop_calls, args.pop_rate, secs, len(ok), len(pop_lat),
                                  wrong, len(alert)))
        p("   /sim/calls written -> pop on SSE: p50 %.1f ms p90 %.1f p99 %.1f max %.1f"
          % (pop_p50, pct(pop_lat, 90), pop_p99, pop_lat[-1] if pop_lat else float("nan")))
        for typ, v in sorted(by.items()):
            v.sort()
            p("     %-15s %3d calls: p50 %.1f ms p99 %.1f max %.1f"
              % (typ, len(v), pct(v, 50), pct(v, 99), v[-1]))
        p("   same calls, -> ALERTING dialog event: p50 %.1f ms p99 %.1f; pop after ALERTING: "
          "p50 %.2f ms p99 %.2f; finesse-sim /sim/calls round trip p50 %.1f p99 %.1f"
          % (pct(alert, 50), pct(alert, 99), pct(gap, 50), pct(gap, 99), pct(sim_rt, 50),
             pct(sim_rt, 99)))
        p("   CPU: %s" % fmt_cpu(cpu))
        b.loop.run_until(lambda: b.xlen() == 0, 60, "outbox empty after pop")

    # ---- 2. sustained
    sus = None
    if "sustained" not in skip:
        say("sustained: %d agents back to back for %.0f s" % (args.agents, args.duration))
        st0 = sf.stats()
        m = CpuMeter(groups(conn)).start()
        n, gen_s, gen_end, samples = b.sustained_phase()
        cpu = m.stop()
        st1 = sf.stats()
        with open(tmp.file("samples.csv"), "w") as f:
            f.write("t_s,upserts_ok,xlen,tasks\n")
            for s in samples:
                f.write("%.2f,%d,%d,%d\n" % s)
        up = lambda st: st["upserts"]["created"] + st["upserts"]["updated"]  # noqa: E731
        saturated = rate_between(samples, 2.0, gen_end)
        max_xlen = max((s[2] for s in samples), default=0)
        t_last = next((s[0] for s in samples if s[1] >= samples[-1][1]), samples[-1][0])
        sus = dict(n=n, gen_rate=n / gen_s, tasks_rate=saturated)
        p("2. sustained: %d agents back to back for %.1f s: %d call ends (%.0f/s generated); "
          "Tasks upserted at sf-sim %.0f/s (2 s .. end of generation); outbox XLEN max %d; "
          "all %d Tasks in by %.1f s; sf-sim upserts +%d created +%d updated, requests %s"
          % (args.agents, gen_s, n, n / gen_s, saturated, max_xlen, up(st1) - up(st0), t_last,
             st1["upserts"]["created"] - st0["upserts"]["created"],
             st1["upserts"]["updated"] - st0["upserts"]["updated"],
             {k: v - st0["requests"].get(k, 0) for k, v in st1["requests"].items()
              if v - st0["requests"].get(k, 0)}))
        p("   CPU: %s" % fmt_cpu(cpu))

    # ---- 3. drain
    drain_rate = float("nan")
    if "drain" not in skip:
        k = args.drain_k
        say("drain: sf-sim 503, queue %d call ends, clear, time the drain" % k)
        assert b.xlen() == 0
        sf.fault(status=503)
        m = CpuMeter(groups(conn)).start()
        n, gen_s = b.closed_loop(lambda started: started >= k, "drain")
        gen_cpu = m.stop()
        b.loop.run_until(lambda: b.xlen() >= n, 60, "%d queued" % n)
        queued = b.xlen()
        held, _ = b.xpending()
        b.loop.run_for(1.0)
        wall_clear = time.time()
        t_clear = now()
        m = CpuMeter(groups(conn)).start()
        b.rcli("CONFIG", "RESETSTAT")
        sf.clear_faults()
        first_t = [None]

        def drained():
            x = b.xlen()
            if first_t[0] is None and x < queued:
                first_t[0] = now()
            return x == 0
        b.loop.run_until(drained, 600, "drain")
        t_empty = now()
        cpu = m.stop()
        cmdstats = {}
        for l in b.rcli("INFO", "commandstats").splitlines():
            if l.startswith("cmdstat_"):
                name, _, rest = l[8:].partition(":")
                cmdstats[name] = int(dict(x.split("=") for x in rest.split(","))["calls"])
        ups = sorted((q for q in b.upserts_of("drain") if q["ts"] >= wall_clear - 0.001),
                     key=lambda q: q["ts"])
        ok = [q for q in ups if q["status"] in (200, 201, 204)]
        with open(tmp.file("drain-requests.csv"), "w") as f:
            f.write("ts_from_clear_s,kind,status,ms,records\n")
            for q in b.get_json(b.sfc, "/sim/requests", 60):
                if q["ts"] >= wall_clear - 1 and q.get("kind", "").startswith("upsert"):
                    f.write("%.3f,%s,%d,%.2f,%d\n" % (q["ts"] - wall_clear, q["kind"], q["status"],
                                                     q["ms"], len(q.get("written") or [])))
        d_s = ok[-1]["ts"] - ok[0]["ts"] if len(ok) > 1 else float("nan")
        drain_rate = len(ok) / d_s if d_s == d_s and d_s > 0 else float("nan")
        ms = sorted(q["ms"] for q in ok if q.get("ms") is not None)
        p("3. drain: %d call ends generated in %.1f s (%.0f/s) while sf-sim answered 503; "
          "XLEN %d, consumer holding %d" % (n, gen_s, n / gen_s, queued, held))
        p("   fault cleared -> first upsert 2xx %.2f s, -> XLEN 0 %.2f s; %d upserts OK (%d not "
          "2xx) from first to last in %.2f s = %.0f Tasks/s; sf-sim time per upsert p50 %.2f "
          "ms p99 %.2f" % (ok[0]["ts"] - wall_clear if ok else float("nan"), t_empty - t_clear,
                           len(ok), len(ups) - len(ok), d_s, drain_rate, pct(ms, 50),
                           pct(ms, 99)))
        p("   Redis commands during the drain, per Task: %s" % ", ".join(
            "%s %.2f" % (k, v / max(1, len(ok))) for k, v in
            sorted(cmdstats.items(), key=lambda kv: -kv[1]) if k not in ("info", "config")))
        p("   CPU while generating: %s" % fmt_cpu(gen_cpu))
        p("   CPU while draining (clear -> empty): %s" % fmt_cpu(cpu))
        for dms in [int(x) for x in args.drain_delays.split(",") if x.strip()]:
            ph = "drain-%dms" % dms
            say("drain with sf-sim answering after %d ms: %d entries" % (dms, args.drain_delay_k))
            sf.fault(status=503)
            n, _ = b.closed_loop(lambda started: started >= args.drain_delay_k, ph)
            b.loop.run_until(lambda: b.xlen() >= n, 60, "%d queued" % n)
            sf.clear_faults()
            sf.fault(delay_ms=dms, path_contains="/sobjects/Task")
            t1, t1w = now(), time.time()
            m = CpuMeter(groups(conn)).start()
            b.loop.run_until(lambda: b.xlen() == 0, 600, "delayed drain")
            cpu = m.stop()
            sf.clear_faults()
            okd = sorted(q["ts"] for q in b.upserts_of(ph) if q["status"] in (200, 201, 204))
            dd = okd[-1] - okd[0] if len(okd) > 1 else float("nan")
            nreq = b.requests_of("upsert", t1w) + b.requests_of("upsert_collection", t1w)
            p("   with sf-sim answering upserts after %d ms: %d Tasks in %.2f s (first to last) = "
              "%.1f Tasks/s (%.1f ms per Task; clear -> empty %.1f s; %d requests); CPU: %s"
              % (dms, len(okd), dd, (len(okd) - 1) / dd if dd > 0 else float("nan"),
                 1000 * dd / max(1, len(okd) - 1), now() - t1, nreq, fmt_cpu(cpu)))

    # ---- 4. kill -9 during a burst in an outage
    lost = dups = None
    if "kill" not in skip:
        B = args.burst
        say("kill: 503 for %.0f s, burst of %d call ends, kill -9, fresh connector" % (args.outage_s, B))
        assert b.xlen() == 0
        wall_fault = time.time()
        t_fault = now()
        sf.fault(status=503, for_s=args.outage_s)
        n, gen_s = b.closed_loop(lambda started: started >= B, "kill")
        phase_ends = {d for d, ph in b.ended if ph == "kill"}
        box = {}

        def all_queued():
            # every call end of the burst is in the stream (accepted by the outbox)
            box["e"] = b.rcli("XRANGE", STREAM, "-", "+")
            return phase_ends <= {stack.pairs(e[1]).get("dialog") for e in box["e"]}
        try:
            b.loop.run_until(all_queued, 60, "the burst's %d call ends queued" % n)
        except TimeoutError as e:
            say(str(e))
        t_queued = now() - t_fault
        b.loop.run_until(lambda: b.xpending()[0] > 0, 30, "consumer holds entries")
        held, consumers = b.xpending()
        entries = b.rcli("XRANGE", STREAM, "-", "+")
        queued_ids = [stack.pairs(e[1]).get("dialog") for e in entries]
        t_kill = now() - t_fault
        if t_kill > args.outage_s:
            say("WARNING: the kill comes %.1f s after the fault began, after the outage" % t_kill)
        b.sse_closes_before_kill = b.sse_closes
        conn.kill()
        say("killed with %d entries held by %r, XLEN %d" % (held, consumers, len(entries)))
        conn2 = connector(fin, sf, redis, tmp, "connector-2", args)
        t_fresh = now() - t_fault
        m = CpuMeter(groups(conn2)).start()
        empty = [None]

        def done():
            if b.xlen() == 0 and b.xpending()[0] == 0:
                empty[0] = now() - t_fault
                return True
            return False
        stack.wait_until(done, 900, 0.2, "outbox drained by the fresh connector")
        cpu = m.stop()
        time.sleep(1.0)
        tasks = sf.tasks()
        cnt = collections.Counter(t.get("Finesse_Call_Id__c") for t in tasks)
        lost_ids = [d for d in queued_ids if cnt[d] == 0]
        lost = len(lost_ids)
        dups = sum(cnt[d] - 1 for d in set(queued_ids) if cnt[d] > 1)
        never_queued = phase_ends - set(queued_ids)
        dead = b.rcli("LLEN", PREFIX + "outbox:dead")
        ups = b.upserts_of("kill")
        ok = sorted(q["ts"] for q in ups if q["status"] in (200, 201, 204))
        _, _, mtext = stack.http("GET", conn2.url + "/metrics")
        reclaimed = next((l.split()[-1] for l in mtext.decode().splitlines()
                          if l.startswith("fsc_connector_sf_outbox_reclaimed_total")), "?")
        p("4. kill -9: sf-sim 503 for %.0f s; %d call ends in %.1f s (%.0f/s), XLEN %d at "
          "%.1f s; connector killed at %.1f s holding %d entries; fresh connector up at %.1f s"
          % (args.outage_s, n, gen_s, n / gen_s, len(entries), t_queued, t_kill, held, t_fresh))
        p("   outbox empty at %.1f s after the fault began (fault ended at %.0f s); first Task "
          "write at %.1f s, last at %.1f s; %d upserts OK%s"
          % (empty[0], args.outage_s, ok[0] - wall_fault if ok else float("nan"),
             ok[-1] - wall_fault if ok else float("nan"), len(ok),
             "" if not ok else " (fresh connector's reclaimed_total: %s)" % reclaimed))
        p("   %d queued -> %d with exactly one Task, lost %d, duplicates %d; dead-lettered %d; "
          "call ends of the phase not in the stream %d" % (len(queued_ids),
                                                          sum(1 for d in queued_ids if cnt[d] == 1),
                                                          lost, dups, dead, len(never_queued)))
        p("   CPU (fresh connector up -> empty): %s" % fmt_cpu(cpu))
        if lost_ids:
            p("   lost: %s" % " ".join(lost_ids[:20]))
        # every call end of the whole run
        allcnt = [cnt[d] for d, _ in b.ended]
        p("   whole run: %d call ends, %d without a Task, %d Tasks beyond one per call"
          % (len(allcnt), sum(1 for c in allcnt if c == 0), sum(c - 1 for c in allcnt if c > 1)))
        conn = conn2

    b.sse_closes_at_kill = (b.sse_closes - b.sse_closes_before_kill
                            if b.sse_closes_before_kill is not None else 0)
    log = conn.log_text() + (b.conn.log_text() if b.conn is not conn else "")
    warns = collections.Counter()
    for l in log.splitlines():
        f = dict(x.split("=", 1) for x in l.split() if "=" in x)
        if "level" in f:
            warns["%s %s" % (f.get("level"), f.get("event", "?"))] += 1
    rss = kb(proc_status(conn.proc.pid).get("VmHWM")) / 1024.0
    print("fsc-connector Salesforce benchmark, %s, %d CPUs; redis, sf-sim, finesse-sim (node A, "
          "one prosody), one connector ([redis] outbox, [salesforce] JWT bearer, log_level warn)"
          % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count()))
    ll = sorted(b.login_lat)
    print("%d agents signed in with SSE streams, READY, in %.1f s (POST /api/v1/login one at a "
          "time: p50 %.0f ms, max %.0f ms); rejects %s; SSE closes %d (%d at the kill)"
          % (args.agents, login_s, pct(ll, 50) * 1000, ll[-1] * 1000, dict(b.rejects) or "none",
             b.sse_closes, b.sse_closes_at_kill))
    for l in out:
        print(l)
    print("connector log (level event x count): %s; connector VmHWM %.1f MB"
          % (", ".join("%s x%d" % kv for kv in warns.most_common(8)) or "nothing", rss))
    if sus:
        print("tasks_per_s below is the drain figure (3.); sustained with call generation: %.0f/s"
              % sus["tasks_rate"])
    print("tasks_per_s=%.0f pop_p50_ms=%.1f pop_p99_ms=%.1f lost=%s duplicates=%s"
          % (drain_rate, pop_p50, pop_p99, lost, dups))
    sys.stdout.flush()
    stack.stop_all()


if __name__ == "__main__":
    main()
