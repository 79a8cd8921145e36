# SPDX-License-Identifier: AGPL-3.0-or-later
"""fsc-connector call control between two agents (finesse-sim, a real
prosody per node), both signed in through the connector with their own SSE
stream: an inbound call with call variables answered by 1001, a consult to
1002 (original HELD, consult dialog ALERTING at 1002, answered by 1002
through the connector), transfer (1001's dialogs DROPPED, the customer's
call with its id and variables now at 1002), conference (three parties),
DTMF "12#" reaching Finesse, a blind transfer (TRANSFER_SST) answered by
1002, and wrap-up on a second simulator with wrap-up REQUIRED
(UPDATE_CALL_DATA wrapUpReason, then READY). Every action is checked on
both sides: the Finesse request the simulator counted and the state it now
holds, and the SSE events each agent's tab received."""
import os
import queue
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

A1, A2 = "1001", "1002"
VARS = {"callVariable1": "4711", "callVariable2": "Gold customer"}
ECC = {"user.sf_recordId": "001xx000003DGb2"}


def is_agent(state):
    return lambda ev: ev.get("event") == "agent" and ev["data"].get("state") == state


def is_dialog(dialog_id=None, state=None, pred=None):
    def check(ev):
        if ev.get("event") != "dialog":
            return False
        if dialog_id is not None and ev["data"].get("id") != dialog_id:
            return False
        if state is not None and ev["data"].get("state") != state:
            return False
        return pred(ev["data"]) if pred else True
    return check


def part(d, address):
    return next((p for p in d["participants"] if p["address"] == address), None)


def part_state(d, address):
    p = part(d, address)
    return p["state"] if p else None


def no_error(sse, seconds=0.3):
    """No `error` event arrives within `seconds` (other events are dropped)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            ev = sse.events.get(timeout=max(0.01, deadline - time.time()))
        except queue.Empty:
            return
        assert ev.get("event") != "error", "unexpected error event %r" % ev


class Agent:
    """One agent signed in through the connector, with its SSE stream."""

    def __init__(self, conn, agent_id):
        self.conn, self.id = conn, agent_id
        status, body = conn.login(agent_id, "pw" + agent_id, agent_id)
        assert status == 200, "login %s: %d %r" % (agent_id, status, body)
        self.token = body["token"]
        self.sse = conn.events(self.token)
        assert self.sse.status == 200, "SSE %s: %r" % (agent_id, self.sse.status)
        self.sse.wait(is_agent("NOT_READY"), what="%s NOT_READY after sign-in" % agent_id)

    def state(self, state):
        status, r = self.conn.api("POST", "/api/v1/state", self.token, {"state": state})
        assert status == 202, "%s state %s: %d %r" % (self.id, state, status, r)
        self.sse.wait(is_agent(state), what="%s %s" % (self.id, state))

    def act(self, dialog_id, action, **kw):
        status, r = self.conn.api("POST", "/api/v1/calls/%s/actions" % dialog_id, self.token,
                                  dict(action=action, **kw))
        assert status == 202 and r.get("request_id"), \
            "%s %s on %s: %d %r" % (self.id, action, dialog_id, status, r)
        return r["request_id"]


def snapshot(conn, token, seconds=0.5):
    """A fresh tab (no Last-Event-ID): the snapshot it gets, as a list."""
    sse = conn.events(token)
    out = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            out.append(sse.events.get(timeout=max(0.01, deadline - time.time())))
        except queue.Empty:
            break
    sse.close()
    return out


def live_dialogs(conn, token):
    return sorted(ev["data"]["id"] for ev in snapshot(conn, token) if ev.get("event") == "dialog")


def counters(fin):
    return fin.stats()["counters"]


def delta(fin, before, name):
    return counters(fin).get(name, 0) - before.get(name, 0)


def expect_counter(fin, before, name, n=1):
    stack.wait_until(lambda: delta(fin, before, name) == n, 5,
                     what="finesse-sim %s +%d (got +%d)" % (name, n, delta(fin, before, name)))


def inbound(fin, a, **kw):
    """An ACD call to agent a (READY), answered through the connector."""
    did = fin.call(a.id, ani=kw.get("ani", "+14155550100"), callvariables=VARS, ecc=ECC)
    ev = a.sse.wait(is_dialog(did, "ALERTING"), what="%s ALERTING %s" % (a.id, did))
    assert ev["data"]["callvariables"] == VARS and ev["data"]["ecc"] == ECC, \
        "call data on the ALERTING dialog: %r" % ev["data"]
    before = counters(fin)
    a.act(did, "answer")
    a.sse.wait(is_dialog(did, "ACTIVE", lambda d: part_state(d, a.id) == "ACTIVE"),
               what="%s ACTIVE" % a.id)
    expect_counter(fin, before, "action_ANSWER")
    return did


def consult(fin, a1, a2, did):
    """a1 consults a2 through the connector; a2 answers through the connector.
    -> consult dialog id."""
    before = counters(fin)
    a1.act(did, "consult", to=a2.id)
    a1.sse.wait(is_dialog(did, pred=lambda d: part_state(d, a1.id) == "HELD"),
                what="original HELD at %s" % a1.id)
    ev = a1.sse.wait(is_dialog(pred=lambda d: d["id"] != did and d["call_type"] == "CONSULT"),
                     what="consult dialog at %s" % a1.id)
    cid = ev["data"]["id"]
    assert ev["data"]["callvariables"] == VARS, \
        "the consult carries the call variables (copied by Finesse): %r" % ev["data"]
    expect_counter(fin, before, "action_CONSULT_CALL")
    sim = fin.dialog(cid)
    assert sim["to"] == a2.id and sim["call_type"] == "CONSULT" and \
        sim["associated_dialog"] == did, "CONSULT_CALL toAddress reached Finesse: %r" % sim
    assert fin.dialog(did)["associated_dialog"] == cid, "associated both ways"
    ev = a2.sse.wait(is_dialog(cid, "ALERTING"), what="consult ALERTING at %s" % a2.id)
    assert ev["data"]["call_type"] == "CONSULT" and ev["data"]["from"] == a1.id, \
        "consult as %s sees it: %r" % (a2.id, ev["data"])
    assert part_state(ev["data"], a2.id) == "ALERTING", "ringing at %s: %r" % (a2.id, ev["data"])
    before = counters(fin)
    a2.act(cid, "answer")
    a2.sse.wait(is_dialog(cid, "ACTIVE", lambda d: part_state(d, a2.id) == "ACTIVE"),
                what="consult ACTIVE at %s" % a2.id)
    a1.sse.wait(is_dialog(cid, "ACTIVE", lambda d: part_state(d, a2.id) == "ACTIVE" and
                          part_state(d, a1.id) == "ACTIVE"), what="consult connected at %s" % a1.id)
    expect_counter(fin, before, "action_ANSWER")
    sim = fin.dialog(did)
    assert part(sim, a1.id)["state"] == "HELD" and \
        {"TRANSFER", "CONFERENCE"} <= set(part(sim, a1.id)["actions"]), \
        "Finesse offers TRANSFER and CONFERENCE on the held call: %r" % sim
    return cid


def check_consult_transfer(fin, a1, a2):
    did = inbound(fin, a1)
    cid = consult(fin, a1, a2, did)
    before = counters(fin)
    a1.act(did, "transfer")
    # 1001: both dialogs end
    a1.sse.wait(is_dialog(cid, "DROPPED"), what="consult DROPPED at 1001")
    a1.sse.wait(is_dialog(did, "DROPPED"), what="original DROPPED at 1001")
    a1.sse.wait(is_agent("READY"), what="1001 back to READY")
    expect_counter(fin, before, "action_TRANSFER")
    # 1002: the consult leg ends, the customer's call (same id) arrives
    a2.sse.wait(is_dialog(cid, "DROPPED"), what="consult DROPPED at 1002")
    ev = a2.sse.wait(is_dialog(did, "ACTIVE"), what="customer call at 1002")
    d = ev["data"]
    assert d["from"] == "+14155550100" and d["call_type"] == "ACD_IN", \
        "the customer's call at 1002 (original id, ANI, call type): %r" % d
    assert d["callvariables"] == VARS and d["ecc"] == ECC, \
        "call variables and ECC kept through the transfer: %r" % d
    assert part_state(d, A2) == "ACTIVE" and part_state(d, "+14155550100") == "ACTIVE", \
        "1002 talks to the customer: %r" % d
    sim = fin.dialog(did)
    assert sim["secondary_id"] == cid, "Finesse merged the consult (secondaryId): %r" % sim
    assert [p["address"] for p in sim["participants"] if p["state"] == "ACTIVE"] == \
        ["+14155550100", A2], "Finesse: customer and 1002 left on the call: %r" % sim
    assert fin.agent(A1)["dialogs"] == [] and fin.agent(A1)["state"] == "READY", \
        "Finesse: 1001 is off the call"
    assert fin.agent(A2)["state"] == "TALKING", "Finesse: 1002 TALKING"
    assert live_dialogs(a1.conn, a1.token) == [], "a new tab of 1001 shows no call"
    assert live_dialogs(a2.conn, a2.token) == [did], "a new tab of 1002 shows the customer call"
    fin.hangup(did)
    a2.sse.wait(is_dialog(did, "DROPPED"), what="customer hangs up at 1002")
    a2.sse.wait(is_agent("READY"), what="1002 READY after the call")
    print("ok  consult 1001 -> 1002 (HELD + CONSULT dialog, ALERTING at 1002, answered), "
          "transfer: 1001 DROPPED x2, 1002 has dialog %s with the call variables" % did)


def check_conference_dtmf(fin, a1, a2):
    did = inbound(fin, a1)
    cid = consult(fin, a1, a2, did)
    before = counters(fin)
    a1.act(cid, "conference")     # from the consult leg this time
    a1.sse.wait(is_dialog(cid, "DROPPED"), what="consult merged (DROPPED) at 1001")
    three = lambda d: (d["call_type"] == "CONFERENCE" and
                       sorted(p["address"] for p in d["participants"] if p["state"] == "ACTIVE")
                       == sorted(["+14155550100", A1, A2]))
    ev = a1.sse.wait(is_dialog(did, "ACTIVE", three), what="three parties at 1001")
    assert ev["data"]["callvariables"] == VARS, "conference keeps the variables: %r" % ev["data"]
    a2.sse.wait(is_dialog(cid, "DROPPED"), what="consult merged (DROPPED) at 1002")
    a2.sse.wait(is_dialog(did, "ACTIVE", three), what="three parties at 1002")
    expect_counter(fin, before, "action_CONFERENCE")
    assert fin.dialog(did)["call_type"] == "CONFERENCE"
    # DTMF: Finesse publishes nothing; the digits are in the simulator
    before = counters(fin)
    a1.act(did, "dtmf", digits="12#")
    expect_counter(fin, before, "action_SEND_DTMF")
    assert fin.dialog(did)["dtmf"] == "12#", "digits at Finesse: %r" % fin.dialog(did)
    no_error(a1.sse)
    # 1001 leaves; 1002 and the customer stay connected
    before = counters(fin)
    a1.act(did, "drop")
    a1.sse.wait(is_dialog(did, "DROPPED"), what="1001 left the conference")
    a2.sse.wait(is_dialog(did, "ACTIVE", lambda d: part_state(d, A1) == "DROPPED" and
                          part_state(d, A2) == "ACTIVE"), what="1002 still on the call")
    expect_counter(fin, before, "action_DROP")
    fin.hangup(did)
    a2.sse.wait(is_dialog(did, "DROPPED"), what="conference over at 1002")
    a1.sse.wait(is_agent("READY"), what="1001 READY")
    a2.sse.wait(is_agent("READY"), what="1002 READY")
    print("ok  conference: 3 parties at both agents, DTMF 12# at Finesse, 1001 drops, "
          "1002 stays")


def check_blind_transfer(fin, a1, a2):
    did = inbound(fin, a1)
    before = counters(fin)
    a1.act(did, "transfer_sst", to=A2)
    a1.sse.wait(is_dialog(did, "DROPPED"), what="1001 off the call after TRANSFER_SST")
    expect_counter(fin, before, "action_TRANSFER_SST")
    ev = a2.sse.wait(is_dialog(did, "ALERTING"), what="transferred call ringing at 1002")
    d = ev["data"]
    assert d["call_type"] == "TRANSFER" and d["from"] == "+14155550100" and \
        d["callvariables"] == VARS and d["ecc"] == ECC, "blind-transferred call: %r" % d
    a2.sse.wait(is_agent("RESERVED"), what="1002 RESERVED")
    before = counters(fin)
    a2.act(did, "answer")
    a2.sse.wait(is_dialog(did, "ACTIVE", lambda d: part_state(d, A2) == "ACTIVE"),
                what="1002 answered the transfer")
    expect_counter(fin, before, "action_ANSWER")
    assert fin.agent(A1)["state"] == "READY" and fin.agent(A2)["state"] == "TALKING"
    fin.hangup(did)
    a2.sse.wait(is_dialog(did, "DROPPED"), what="transferred call over")
    a2.sse.wait(is_agent("READY"), what="1002 READY")
    print("ok  blind transfer (TRANSFER_SST to 1002): 1001 DROPPED, 1002 rings "
          "(TRANSFER, variables kept), answers")


def check_wrapup():
    fin = stack.FinesseSim(agents=2, presence_grace_s=3, wrap_up="REQUIRED")
    conn = stack.Connector(fin)
    a1 = Agent(conn, A1)
    a1.state("READY")
    did = inbound(fin, a1)
    fin.hangup(did)
    a1.sse.wait(is_dialog(did, "DROPPED"), what="call over (wrap-up)")
    a1.sse.wait(is_agent("WORK_READY"), what="WORK_READY (wrap-up REQUIRED)")
    sim = fin.dialog(did)
    assert part_state(sim, A1) == "WRAP_UP", "Finesse keeps the dialog in WRAP_UP: %r" % sim
    status, w = conn.api("GET", "/api/v1/wrapup-reasons", a1.token)
    assert status == 200 and "Sales" in [x["label"] for x in w["wrapup_reasons"]], w
    before = counters(fin)
    status, r = conn.api("POST", "/api/v1/calls/%s/wrapup" % did, a1.token, {"reason": "Sales"})
    assert status == 202 and r.get("request_id"), "wrap-up: %d %r" % (status, r)
    expect_counter(fin, before, "action_UPDATE_CALL_DATA")
    assert fin.dialog(did)["wrap_up_reason"] == "Sales", "wrapUpReason at Finesse: %r" % \
        fin.dialog(did)
    no_error(a1.sse)
    # Finesse refuses a reason over 39 bytes (sync 400): passed on, nothing changes
    status, r = conn.api("POST", "/api/v1/calls/%s/wrapup" % did, a1.token, {"reason": "x" * 60})
    assert status == 400, "over-long wrap-up reason: %d %r" % (status, r)
    status, r = conn.api("POST", "/api/v1/calls/%s/wrapup" % did, a1.token, {})
    assert status == 400, "wrap-up without a reason: %d %r" % (status, r)
    assert fin.dialog(did)["wrap_up_reason"] == "Sales"
    a1.state("READY")
    stack.wait_until(lambda: fin.agent(A1)["dialogs"] == [], 5, what="wrap-up dialog removed")
    assert fin.agent(A1)["state"] == "READY"
    print("ok  wrap-up REQUIRED: DROPPED + WORK_READY, wrapup Sales -> 202, "
          "UPDATE_CALL_DATA wrapUpReason=Sales at Finesse, READY")

    # wrap-up after a transfer: 1001 leaves a call that goes on (participant
    # WRAP_UP, dialog still ACTIVE at Finesse), wraps up, then READY ends it
    a2 = Agent(conn, A2)
    a2.state("READY")
    did = inbound(fin, a1)
    consult(fin, a1, a2, did)
    a1.act(did, "transfer")
    ev = a1.sse.wait(is_dialog(did, pred=lambda d: part_state(d, A1) == "WRAP_UP"),
                     what="1001 in WRAP_UP on the transferred call")
    a1.sse.wait(is_agent("WORK_READY"), what="1001 WORK_READY after the transfer")
    a2.sse.wait(is_dialog(did, "ACTIVE", lambda d: part_state(d, A2) == "ACTIVE"),
                what="1002 has the customer")
    before = counters(fin)
    status, r = conn.api("POST", "/api/v1/calls/%s/wrapup" % did, a1.token,
                         {"reason": "Support"})
    assert status == 202, "wrap-up after transfer: %d %r" % (status, r)
    expect_counter(fin, before, "action_UPDATE_CALL_DATA")
    assert fin.dialog(did)["wrap_up_reason"] == "Support"
    no_error(a1.sse)
    a1.state("READY")
    a1.sse.wait(is_dialog(did, "DROPPED"), what="wrap-up over: the call leaves 1001's tab")
    assert live_dialogs(conn, a1.token) == [], "1001 has no call left"
    assert fin.agent(A2)["state"] == "TALKING" and live_dialogs(conn, a2.token) == [did], \
        "1002 still talks to the customer"
    fin.hangup(did)
    for a in (a1, a2):
        a.sse.close()
    conn.stop()
    fin.stop()
    print("ok  wrap-up after a transfer: 1001 WRAP_UP on the live call, wrapup Support -> "
          "202, READY -> DROPPED at 1001, 1002 keeps the customer")


def main():
    t0 = time.time()
    fin = stack.FinesseSim(agents=3, presence_grace_s=3)
    conn = stack.Connector(fin)
    a1, a2 = Agent(conn, A1), Agent(conn, A2)
    a1.state("READY")
    a2.state("READY")
    check_consult_transfer(fin, a1, a2)
    check_conference_dtmf(fin, a1, a2)
    check_blind_transfer(fin, a1, a2)
    for a in (a1, a2):
        a.sse.close()
    conn.stop()
    fin.stop()
    check_wrapup()
    print("PASS (%.1f s)" % (time.time() - t0))


if __name__ == "__main__":
    main()
