# SPDX-License-Identifier: AGPL-3.0-or-later
"""fsc-connector with several browser tabs on one agent (finesse-sim, a real
prosody per node): two SSE streams get the same events with the same ids;
a tab reopened with Last-Event-ID gets exactly the events it missed, in
order, and no snapshot; a Last-Event-ID older than the event ring (64
events), unknown to this process, or not a number gets a snapshot (the
agent and the live dialogs, without ids) followed by live numbered events;
the ring boundary is exact; a second sign-in with the same credentials
joins the running session (a new token, the same events, no second
Finesse LOGIN); closing every tab keeps the Finesse session (agent signed
in, XMPP up past the presence grace) and a new tab picks it up. Every
connection opens with its own `stream` event (its id); that and `pop`
(offered to one tab: it_connector_pops.py) are per tab, not part of the
numbered log these checks compare."""
import os
import queue
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

AGENT = "1001"
RING = 64


def is_agent(state):
    return lambda ev: ev.get("event") == "agent" and ev["data"].get("state") == state


PER_TAB = ("stream", "pop")  # one connection's own events, never replayed


def drain(sse, seconds=0.5):
    out = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            ev = sse.events.get(timeout=max(0.01, deadline - time.time()))
        except queue.Empty:
            break
        if ev.get("event") not in PER_TAB:
            out.append(ev)
    return out


def take(sse, n, timeout=10.0, what="events"):
    """Exactly the next n events."""
    out = []
    deadline = time.time() + timeout
    while len(out) < n:
        left = deadline - time.time()
        try:
            ev = sse.events.get(timeout=max(0.01, left))
        except queue.Empty:
            raise AssertionError("%s: got %d of %d: %r" % (what, len(out), n, out))
        if ev.get("event") not in PER_TAB:
            out.append(ev)
    return out


def ids(evs):
    return [int(e["id"]) if "id" in e else None for e in evs]


def toggle(conn, token, sse, n):
    """n state changes NOT_READY/READY, each waited for -> the events."""
    out = []
    status, r = conn.api("GET", "/api/v1/reason-codes?category=NOT_READY", token)
    assert status == 200
    for i in range(n):
        state = "READY" if i % 2 == 0 else "NOT_READY"
        status, r = conn.api("POST", "/api/v1/state", token, {"state": state})
        assert status == 202, "state %s: %d %r" % (state, status, r)
        out.append(sse.wait(is_agent(state), what="%s (%d)" % (state, i)))
    return out


def resume(conn, token, last_id, settle=0.5):
    sse = conn.events(token, last_event_id=last_id)
    assert sse.status == 200, "resume from %r: %r" % (last_id, sse.status)
    evs = drain(sse, settle)
    return sse, evs


def check_two_tabs_and_replay(conn, fin, token):
    t1 = conn.events(token)
    t2 = conn.events(token)
    firsts = [t.events.get(timeout=5) for t in (t1, t2)]
    assert [e["event"] for e in firsts] == ["stream", "stream"] and \
        "id" not in firsts[0] and firsts[0]["data"]["stream"] != firsts[1]["data"]["stream"], \
        "each connection opens with its own stream id: %r" % firsts
    for t in (t1, t2):
        t.wait(is_agent("NOT_READY"), what="snapshot NOT_READY")
    time.sleep(0.3)
    drain(t1, 0.1)
    drain(t2, 0.1)
    a = toggle(conn, token, t1, 4)
    b = take(t2, 4, what="tab 2")
    assert [(e["id"], e["event"], e["data"]) for e in a] == \
        [(e["id"], e["event"], e["data"]) for e in b], "both tabs, same events, same ids"
    assert ids(a) == list(range(ids(a)[0], ids(a)[0] + 4)), "ids are consecutive: %r" % ids(a)
    a += toggle(conn, token, t1, 1)
    b += take(t2, 1, what="tab 2")
    assert a[-1]["data"]["state"] == "READY"
    # tab 2 goes away (a refresh) while things happen
    seen = ids(b)[-1]
    t2.close()
    fin_did = fin.call(AGENT, callvariables={"callVariable1": "resume-me"})
    missed = toggle_call(conn, token, t1, fin_did)
    t3, evs = resume(conn, token, seen)
    assert evs == missed, "the refreshed tab gets exactly what it missed, in order:\n%r\n%r" % (
        evs, missed)
    assert ids(evs) == list(range(seen + 1, seen + 1 + len(evs))), ids(evs)
    assert all("id" in e for e in evs), "no un-numbered (snapshot) events on a replay"
    # from there on it is live like the others
    status, r = conn.api("POST", "/api/v1/calls/%s/actions" % fin_did, token, {"action": "hold"})
    assert status == 202
    e1 = t1.wait(lambda e: e.get("event") == "dialog", what="HELD on tab 1")
    e3 = take(t3, 1, what="HELD on tab 3")[0]
    assert e1 == e3, "the resumed tab is live: %r vs %r" % (e1, e3)
    h1, h3 = t1.wait(is_agent("HOLD"), what="HOLD on tab 1"), t3.wait(is_agent("HOLD"))
    assert h1 == h3, (h1, h3)
    # resuming from the newest id replays nothing; twice from the same id, the same
    t4, evs4 = resume(conn, token, h1["id"])
    assert evs4 == [], "nothing missed: %r" % evs4
    t5, evs5 = resume(conn, token, seen)
    assert evs5[:len(missed)] == missed and e1 in evs5 and \
        ids(evs5) == list(range(seen + 1, seen + 1 + len(evs5))), \
        "a second replay from the same id: the same events, then the newer ones: %r" % evs5
    for t in (t3, t4, t5):
        t.close()
    print("ok  two tabs: same %d events, same ids; refresh with Last-Event-ID %d -> "
          "the %d missed events, in order, no snapshot" % (len(a), seen, len(missed)))
    return t1, fin_did


def toggle_call(conn, token, sse, did):
    """Answer the ringing call while tab 2 is away -> the events tab 1 saw."""
    out = []
    deadline = time.time() + 5
    while not (out and out[-1].get("event") == "dialog" and out[-1]["data"]["state"] == "ALERTING"):
        ev = sse.events.get(timeout=max(0.01, deadline - time.time()))
        if ev.get("event") not in PER_TAB:
            out.append(ev)
    status, r = conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": "answer"})
    assert status == 202, "answer: %d %r" % (status, r)
    while True:
        ev = sse.events.get(timeout=max(0.01, deadline - time.time()))
        if ev.get("event") in PER_TAB:
            continue
        out.append(ev)
        if ev.get("event") == "dialog" and ev["data"]["state"] == "ACTIVE" and \
                any(p["address"] == AGENT and p["state"] == "ACTIVE"
                    for p in ev["data"]["participants"]):
            break
    # the agent event TALKING may follow the dialog event
    out += drain(sse, 0.5)
    assert any(e.get("event") == "dialog" and e["data"]["state"] == "ALERTING" for e in out)
    return out


def check_ring_overflow(conn, fin, token, t1, did):
    # the call is HELD; retrieve it so that the snapshot shows it ACTIVE
    status, r = conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": "retrieve"})
    assert status == 202
    t1.wait(lambda e: e.get("event") == "dialog" and any(
        p["address"] == AGENT and p["state"] == "ACTIVE" for p in e["data"]["participants"]),
        what="retrieved")
    drain(t1, 0.3)
    # > 64 events: hold/retrieve (a dialog event and an agent event each)
    last = None
    n = 0
    while last is None or last < RING + 10:
        action = "hold" if n % 2 == 0 else "retrieve"
        status, r = conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": action})
        assert status == 202, "%s: %d %r" % (action, status, r)
        want = "HELD" if action == "hold" else "ACTIVE"
        ev = t1.wait(lambda e: e.get("event") == "dialog" and any(
            p["address"] == AGENT and p["state"] == want for p in e["data"]["participants"]),
            what="%s %d" % (want, n))
        ag = t1.wait(lambda e: e.get("event") == "agent", what="agent after %s" % action)
        evs = drain(t1, 0.05)
        last = max([int(ev["id"]), int(ag["id"])] + [int(e["id"]) for e in evs if "id" in e])
        n += 1
    time.sleep(0.3)
    last = max([last] + [int(e["id"]) for e in drain(t1, 0.3) if "id" in e])
    # the call ends on the held state or active state: snapshot shows it as Finesse has it
    sim_state = next(p["state"] for p in fin.dialog(did)["participants"] if p["address"] == AGENT)
    agent_state = fin.agent(AGENT)["state"]

    def is_snapshot(evs, why):
        assert len(evs) >= 3, "%s: a snapshot (marker + agent + dialog): %r" % (why, evs)
        assert evs[0]["event"] == "snapshot" and "id" not in evs[0] and \
            evs[0]["data"] == {"dialogs": [did]}, \
            "%s: opens with the snapshot marker naming the live call: %r" % (why, evs[0])
        evs = evs[1:]
        assert evs[0]["event"] == "agent" and "id" not in evs[0] and \
            evs[0]["data"]["state"] == agent_state, "%s: agent first, no id: %r" % (why, evs[0])
        dialogs = [e for e in evs[1:] if e["event"] == "dialog"]
        assert len(dialogs) == 1 and "id" not in dialogs[0] and dialogs[0]["data"]["id"] == did, \
            "%s: the live dialog, no id: %r" % (why, evs)
        d = dialogs[0]["data"]
        assert d["callvariables"] == {"callVariable1": "resume-me"} and \
            next(p["state"] for p in d["participants"] if p["address"] == AGENT) == sim_state, \
            "%s: the dialog as it is now: %r" % (why, d)
        assert len(evs) == 2, "%s: nothing but the snapshot: %r" % (why, evs)

    for last_id, why in ((1, "Last-Event-ID 1 (older than the ring)"),
                         (last - RING - 1, "one before the ring's oldest"),
                         (last + 1000, "an id this process never sent"),
                         ("abc", "not a number"), ("", "empty")):
        t, evs = resume(conn, token, last_id)
        is_snapshot(evs, why)
        t.close()
    # the ring's exact boundary: the last 64 are replayed
    t, evs = resume(conn, token, last - RING)
    assert ids(evs) == list(range(last - RING + 1, last + 1)), \
        "Last-Event-ID %d (ring holds %d..%d): replay all %d: got %r" % (
            last - RING, last - RING + 1, last, RING, ids(evs))
    t.close()
    # a snapshot tab goes on with live, numbered events
    t, evs = resume(conn, token, 1)
    status, r = conn.api("POST", "/api/v1/calls/%s/actions" % did, token,
                         {"action": "retrieve" if sim_state == "HELD" else "hold"})
    assert status == 202
    ev = t.wait(lambda e: e.get("event") == "dialog", what="live after the snapshot")
    assert int(ev["id"]) == last + 1, "numbering goes on: %r" % ev
    t.close()
    drain(t1, 0.5)
    print("ok  %d events; Last-Event-ID 1 / before the ring / unknown / junk -> snapshot "
          "(agent %s + dialog, no ids); Last-Event-ID last-64 -> exactly 64 replayed" % (
              last, agent_state))


def check_second_login(conn, fin, token, t1):
    puts0 = fin.stats()["requests"].get("PUT User", 0)
    state0 = fin.agent(AGENT)["state"]
    status, body = conn.login(AGENT, "pw1001", AGENT)
    assert status == 200 and body["token"] != token, "second sign-in: %d %r" % (status, body)
    token2 = body["token"]
    assert body["agent"]["state"] == state0, "joins the running session: %r" % body
    t2 = conn.events(token2)
    snap = drain(t2, 0.5)
    assert len(snap) >= 2 and snap[0]["event"] == "snapshot" and \
        snap[1]["event"] == "agent" and "id" not in snap[1], snap
    assert fin.stats()["requests"].get("PUT User", 0) == puts0, \
        "no second LOGIN at Finesse: %r" % fin.stats()["requests"]
    assert fin.agent(AGENT)["state"] == state0
    assert conn.api("GET", "/readyz")[1]["agents"] == 1, "one session"
    # an action with either token shows on both tokens' streams, same id
    drain(t1, 0.3)
    dids = [e["data"]["id"] for e in snap if e["event"] == "dialog"]
    did = dids[0]
    for tok in (token2, token):
        held = fin.dialog(did)["participants"][1]["state"] == "HELD"
        status, r = conn.api("POST", "/api/v1/calls/%s/actions" % did, tok,
                             {"action": "retrieve" if held else "hold"})
        assert status == 202, "action with %s token: %d %r" % (
            "new" if tok == token2 else "old", status, r)
        e1 = t1.wait(lambda e: e.get("event") == "dialog", what="dialog on the first token")
        e2 = t2.wait(lambda e: e.get("event") == "dialog", what="dialog on the second token")
        assert e1 == e2, "same event, same id: %r vs %r" % (e1, e2)
    t2.close()
    print("ok  second sign-in: new token, same session (PUT User count %d unchanged, "
          "state %s), events on both tokens' streams with the same ids" % (puts0, state0))
    return token2


def check_close_all_tabs(conn, fin, token, token2, t1, did):
    t1.close()
    time.sleep(4.5)   # past the simulator's presence grace (3 s)
    st = fin.agent(AGENT)
    assert st["state"] != "LOGOUT" and st["presence"]["A"] + st["presence"]["B"] >= 1, \
        "no tab open, the Finesse session stays: %r" % st
    ready = conn.api("GET", "/readyz")[1]
    assert ready["agents"] == 1 and ready["xmpp_online"] == 1, ready
    assert fin.stats()["counters"].get("forced_logouts", 0) == 0
    # events produced while no tab was open are there for the next one
    fin.hangup(did)
    stack.wait_until(lambda: fin.agent(AGENT)["dialogs"] == [], 5, what="call over")
    want = fin.agent(AGENT)["state"]

    def snap(tok):
        t = conn.events(tok)
        evs = drain(t, 0.3)
        t.close()
        # a snapshot opens with its marker; [] here while the call is live
        if not evs or evs[0] != {"event": "snapshot", "data": {"dialogs": []}}:
            return []
        return evs[1:]
    # the connector gets the hang-up through XMPP with no tab open; a new tab
    # (either token) then shows the agent as Finesse has it and no call
    stack.wait_until(lambda: [(e["event"], e["data"]["state"], "id" in e) for e in snap(token)]
                     == [("agent", want, False)], 5, what="new tab: agent %s, no call" % want)
    evs = snap(token2)
    assert [(e["event"], e["data"]["state"], "id" in e) for e in evs] == \
        [("agent", want, False)], "second token's new tab: %r" % evs
    status, r = conn.api("POST", "/api/v1/state", token2, {"state": "NOT_READY"})
    assert status == 202, "the session still acts: %d %r" % (status, r)
    stack.wait_until(lambda: fin.agent(AGENT)["state"] == "NOT_READY", 5, what="NOT_READY")
    print("ok  every tab closed for 4.5 s: agent %s, XMPP up, no forced logout; "
          "new tabs get the current state" % st["state"])


def main():
    t0 = time.time()
    fin = stack.FinesseSim(agents=2, presence_grace_s=3)
    conn = stack.Connector(fin)
    status, body = conn.login(AGENT, "pw1001", AGENT)
    assert status == 200, body
    token = body["token"]
    stack.wait_until(lambda: fin.agent(AGENT)["state"] == "NOT_READY", 5, what="signed in")
    t1, did = check_two_tabs_and_replay(conn, fin, token)
    check_ring_overflow(conn, fin, token, t1, did)
    token2 = check_second_login(conn, fin, token, t1)
    check_close_all_tabs(conn, fin, token, token2, t1, did)
    conn.stop()
    fin.stop()
    print("PASS (%.1f s)" % (time.time() - t0))


if __name__ == "__main__":
    main()
