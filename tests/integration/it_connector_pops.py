# SPDX-License-Identifier: AGPL-3.0-or-later
"""Screen pops decided by the server, not by browser storage (DESIGN.md §5):
every SSE stream is told its id; tabs report focus and visibility (POST
/api/v1/tabs/{stream}/focus); a call's `pop` goes to one tab only (the
focused one, else the most recently visible, else the newest), which
claims it (POST /api/v1/calls/{id}/popped) before it pops and says "done"
after; a tab that does not claim within ~2 s loses it to the next tab, and
its late claim is refused; a tab that claims and closes before its done
(it never popped) hands the pop to the next tab, a done pop stays done; a
refresh mid-ring (every tab gone) hands the pop to the tab that comes
back, once; a tab outside Salesforce (can_pop false) is never offered one;
bad input gets 4xx and changes nothing. Across hosts: host
one pops a call and dies mid-ring; the agent signs in at host two, which
re-reads the ringing call and does not pop it again (the Redis mark, SET
NX), while its next call pops normally."""
import os
import queue
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

AGENT = "1001"
LEASE_S = 3
CONFIRM_S = 2.0


def host(fin, redis, name):
    port = stack.free_port()
    return stack.Connector(fin, port=port, name="connector-" + name, extra={
        "server": {"public_url": "http://%s:%d" % (stack.HOST, port),
                   "agent_lease_s": str(LEASE_S)},
        "redis": {"url": redis.url, "prefix": "fsc:"},
    })


class Tab:
    """One browser tab as the connector sees it: an SSE stream + its id."""

    def __init__(self, conn, token):
        self.conn, self.token = conn, token
        self.sse = conn.events(token)
        assert self.sse.status == 200, self.sse.status
        first = self.sse.events.get(timeout=5)
        assert first.get("event") == "stream" and "id" not in first and \
            len(first["data"]["stream"]) == 22, "a stream opens with its id: %r" % first
        self.id = first["data"]["stream"]

    def focus(self, focused, visible, **kw):
        status, r = self.conn.api("POST", "/api/v1/tabs/%s/focus" % self.id, self.token,
                                  dict(focused=focused, visible=visible, **kw))
        assert status == 200 and r == {"ok": True}, "focus report: %d %r" % (status, r)

    def pops(self, seconds):
        """The pop events that arrive within `seconds`."""
        out = []
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                ev = self.sse.events.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if ev.get("event") == "pop":
                assert "id" not in ev, "a pop is not a numbered (replayable) event: %r" % ev
                out.append(ev["data"])
        return out

    def wait_pop(self, did, timeout=8.0):
        ev = self.sse.wait(lambda e: e.get("event") == "pop" and e["data"]["dialog_id"] == did,
                           timeout=timeout, what="pop of %s" % did)
        return ev["data"]

    def claim(self, did, stream=None, done=None):
        """POST /popped: a claim, or with done=True "popped it"."""
        body = {"stream": stream or self.id}
        if done is not None:
            body["done"] = done
        return self.conn.api("POST", "/api/v1/calls/%s/popped" % did, self.token, body)

    def close(self):
        self.sse.close()


def signed_in(conn, agent=AGENT):
    status, body = conn.login(agent, "pw" + agent, agent)
    assert status == 200, "sign-in %s: %d %r" % (agent, status, body)
    return body["token"]


def ring(fin, agent=AGENT, **kw):
    did = fin.call(agent, **kw)
    stack.wait_until(lambda: any(d["id"] == did for d in fin.agent(agent)["dialogs"]), 5,
                     what="call %s ringing" % did)
    return did


def hang_up(fin, did, agent=AGENT):
    fin.hangup(did)
    stack.wait_until(lambda: not fin.agent(agent)["dialogs"], 5, what="call %s over" % did)


def check_focused_tab_pops_once(conn, fin, token):
    a, b = Tab(conn, token), Tab(conn, token)
    assert a.id != b.id
    a.focus(False, True)
    b.focus(True, True)   # the agent works in b (the older tab would not win by age)
    did = ring(fin)
    pop = b.wait_pop(did)
    assert pop["type"] == "SEARCH_AND_POP" and pop["searchParams"] == "+14155550100", pop
    assert a.pops(1.0) == [], "the other tab gets no pop"
    status, r = a.claim(did)
    assert status == 409 and r["error"] == "not_offered", "a tab not offered it: %d %r" % (status, r)
    status, r = b.claim(did, stream=a.id)
    assert status == 409 and r["error"] == "not_offered", "b naming a's stream: %d %r" % (status, r)
    status, r = b.claim(did)
    assert status == 200 and r == {"claimed": True}, "b claims: %d %r" % (status, r)
    status, r = b.claim(did)
    assert status == 200, "the same tab again (a retried request): %d %r" % (status, r)
    status, r = b.claim(did, done=True)
    assert status == 200 and r == {"claimed": True, "done": True}, "b popped it: %d %r" % (status, r)
    status, r = a.claim(did, done=True)
    assert status == 409 and r["error"] == "already_popped", "a's done: %d %r" % (status, r)
    time.sleep(CONFIRM_S + 1.2)
    assert a.pops(0.5) == [] and b.pops(0.1) == [], "claimed: nobody is offered it again"
    assert conn.metric("fsc_connector_pops_total") == 1
    hang_up(fin, did)
    # the connector hears of the hang-up by notification, a moment later
    status, r = stack.wait_until(lambda: (lambda x: x if x[0] == 404 else None)(b.claim(did)), 5,
                                 what="the call's pop forgotten")
    assert r["error"] == "no_pop", "the call is over: %d %r" % (status, r)
    print("ok  two tabs, b focused: one pop, to b only; a's claim -> 409 not_offered; "
          "b's claim -> 200 (again 200), its done -> 200; after the call -> 404 no_pop")
    return a, b


def check_unclaimed_moves_on(conn, fin, a, b):
    reoffers = conn.metric("fsc_connector_pop_reoffers_total")
    did = ring(fin)
    b.wait_pop(did)
    t0 = time.time()
    # b (focused) never claims: frozen, busy, or closed without the server noticing
    a.wait_pop(did, timeout=CONFIRM_S + 10)
    took = time.time() - t0
    # the tick (once a second) moves it: 2-3 s, later under load; never earlier
    assert took >= CONFIRM_S - 0.3, \
        "offered to the next tab only after ~%.0f s, took %.1f s" % (CONFIRM_S, took)
    status, r = a.claim(did)
    assert status == 200, "a claims: %d %r" % (status, r)
    status, r = b.claim(did)
    assert status == 409 and r["error"] == "already_popped", "b wakes up late: %d %r" % (status, r)
    assert conn.metric("fsc_connector_pop_reoffers_total") == reoffers + 1
    hang_up(fin, did)
    print("ok  b did not claim: after %.1f s the pop went to a (claimed); b's late claim -> "
          "409 already_popped" % took)


def check_refresh_mid_ring(conn, fin, token, a, b):
    did = ring(fin)
    b.wait_pop(did)
    # the agent refreshes: every tab of this session goes, one comes back
    a.close()
    b.close()
    c = Tab(conn, token)
    c.focus(True, True)
    c.wait_pop(did, timeout=CONFIRM_S + 4)
    status, r = c.claim(did)
    assert status == 200, "the tab that came back claims: %d %r" % (status, r)
    d = Tab(conn, token)
    d.focus(True, True)
    assert d.pops(CONFIRM_S + 1.2) == [] and c.pops(0.1) == [], "popped once: no second offer"
    hang_up(fin, did)
    d.close()
    print("ok  refresh mid-ring (every tab gone before claiming): the tab that came back got "
          "the pop, once; a newer tab gets nothing")
    return c


def check_outside_salesforce(conn, fin, token, c):
    # c: the page opened on its own (no Salesforce around it): never offered
    c.focus(True, True, can_pop=False)
    e = Tab(conn, token)          # never reports: ranks by age only
    did = ring(fin)
    e.wait_pop(did)
    assert c.pops(0.5) == [], "a tab that cannot pop is not offered one"
    assert e.claim(did)[0] == 200
    hang_up(fin, did)
    e.close()
    print("ok  a focused tab with can_pop false is skipped: the pop went to the other tab")


def check_claimant_gone_before_done(conn, fin, token, c):
    """x claims, then closes before it pops (the agent closed the tab while
    the claim was on its way): no done, so the pop goes to c."""
    reoffers = conn.metric("fsc_connector_pop_reoffers_total")
    x = Tab(conn, token)
    x.focus(True, True)  # after c's report: x is where the agent is
    did = ring(fin)
    x.wait_pop(did)
    status, r = x.claim(did)
    assert status == 200 and r == {"claimed": True}, "x claims: %d %r" % (status, r)
    assert c.pops(CONFIRM_S + 1.2) == [], "claimed, x still there: nobody else is offered it"
    x.close()
    t0 = time.time()
    c.wait_pop(did, timeout=8.0)
    took = time.time() - t0
    status, r = c.claim(did, done=True)
    assert status == 200 and r == {"claimed": True, "done": True}, \
        "c claims and pops at once: %d %r" % (status, r)
    status, r = x.claim(did, done=True)
    assert status == 409 and r["error"] == "already_popped", "x's done, too late: %d %r" % (status, r)
    assert conn.metric("fsc_connector_pop_reoffers_total") == reoffers + 1
    # done: a newer tab where the agent is gets nothing
    y = Tab(conn, token)
    y.focus(True, True)
    assert y.pops(CONFIRM_S + 1.2) == [] and c.pops(0.1) == [], "done: no second offer"
    hang_up(fin, did)
    y.close()
    c.focus(True, True)
    print("ok  x claimed and closed before it popped (no done): after %.1f s the pop went to c "
          "(claimed and done at once); x's late done -> 409 already_popped; a newer tab gets "
          "nothing" % took)


def check_bad_input(conn, token, other_token, c):
    base = "/api/v1/tabs/%s/focus" % c.id
    cases = [
        ("POST", base, None, {"focused": True, "visible": True}, 401, "unauthorized"),
        ("POST", base, token, {"focused": "yes", "visible": True}, 400, "invalid_request"),
        ("POST", base, token, {"focused": True}, 400, "invalid_request"),
        ("POST", base, token, {"focused": True, "visible": True, "can_pop": 1}, 400,
         "invalid_request"),
        ("POST", base, token, [True, True], 400, None),
        ("POST", "/api/v1/tabs/%s/focus" % ("A" * 22), token,
         {"focused": True, "visible": True}, 404, "unknown_stream"),
        ("POST", "/api/v1/tabs/%s/focus" % ("A" * 40), token,
         {"focused": True, "visible": True}, 404, "unknown_stream"),
        ("POST", "/api/v1/tabs/a%2F..%2Fb/focus", token, {"focused": True, "visible": True}, 404,
         None),
        ("POST", "/api/v1/tabs/%s/blur" % c.id, token, {"focused": True, "visible": True}, 404,
         "not_found"),
        # another agent's token does not reach this agent's tab
        ("POST", base, other_token, {"focused": True, "visible": True}, 404, "unknown_stream"),
        ("POST", "/api/v1/calls/123/popped", token, {}, 400, "invalid_request"),
        ("POST", "/api/v1/calls/123/popped", token, {"stream": "x" * 40}, 400, "invalid_request"),
        ("POST", "/api/v1/calls/123/popped", token, {"stream": 5}, 400, "invalid_request"),
        ("POST", "/api/v1/calls/123/popped", token, {"stream": c.id, "done": "yes"}, 400,
         "invalid_request"),
        ("POST", "/api/v1/calls/123/popped", token, {"stream": c.id, "done": 1}, 400,
         "invalid_request"),
        ("POST", "/api/v1/calls/123/popped", token, {"stream": c.id}, 404, "no_pop"),
        ("POST", "/api/v1/calls/123/popped", token, {"stream": c.id, "done": True}, 404,
         "no_pop"),
        ("POST", "/api/v1/calls/123/popped", None, {"stream": c.id}, 401, "unauthorized"),
    ]
    for method, path, tok, body, want, err in cases:
        status, r = conn.api(method, path, tok, body)
        assert status == want and (err is None or r.get("error") == err), \
            "%s %s %r -> %d %r (want %d %s)" % (method, path, body, status, r, want, err)
        assert r.get("detail"), "a clear error: %r" % r
    # and nothing changed: c is still there, reports still work
    c.focus(True, True, can_pop=True)
    print("ok  bad input: %d cases -> 4xx with error+detail; the tab still reports" % len(cases))


def check_across_hosts(one, two, fin, redis, token, c):
    did = ring(fin)
    c.wait_pop(did)
    assert c.claim(did)[0] == 200
    mark = "fsc:agent:%s:popped" % AGENT
    assert redis.cli("HEXISTS", mark, did) == 1 and 0 < redis.cli("TTL", mark) <= 8 * 3600, \
        "the pop is marked in Redis (the agent's hash, with a TTL)"
    # host one dies mid-ring; the agent (its browser) signs in at host two
    c.close()
    one.kill()
    t0 = time.time()
    status, body = None, None
    while time.time() - t0 < LEASE_S + 10:
        status, body = two.login(AGENT, "pw" + AGENT, AGENT)
        if status == 200:
            break
        time.sleep(0.5)
    assert status == 200, "host two takes the agent: %d %r" % (status, body)
    t = Tab(two, body["token"])
    t.focus(True, True)
    stack.wait_until(lambda: two.metric("fsc_connector_pops_skipped_total") == 1, 10,
                     what="host two skipped the pop of the call popped on host one")
    assert t.pops(CONFIRM_S + 0.5) == [], "no second pop of the ringing call on host two"
    assert any(d["id"] == did for d in fin.agent(AGENT)["dialogs"]), "the call still rings"
    status, r = t.claim(did)
    assert status == 404, "no pop waits for it on host two: %d %r" % (status, r)
    print("ok  host one popped %s and died mid-ring; host two (after %.1f s) re-read the call "
          "and did not pop it again (Redis mark)" % (did, time.time() - t0))
    hang_up(fin, did)
    stack.wait_until(lambda: redis.cli("HEXISTS", mark, did) == 0, 5,
                     what="the call's mark dropped when it ended")
    did2 = ring(fin)
    t.wait_pop(did2)
    assert t.claim(did2)[0] == 200
    assert two.metric("fsc_connector_pops_total") == 1
    hang_up(fin, did2)
    status, r = two.api("POST", "/api/v1/logout", body["token"])
    assert status == 200, "sign-out: %d %r" % (status, r)
    assert redis.cli("EXISTS", mark) == 0, "sign-out drops the agent's pop marks"
    t.close()
    print("ok  host two's next call pops normally; marks go with the call, and all of them "
          "with the sign-out")


def main():
    redis = stack.Redis(name="redis")
    fin = stack.FinesseSim(agents=3, presence_grace_s=15)
    one = host(fin, redis, "one")
    two = host(fin, redis, "two")
    token = signed_in(one)
    other = signed_in(one, "1002")
    stack.wait_until(lambda: fin.agent(AGENT)["state"] == "NOT_READY", 5, what="signed in")
    status, r = one.api("POST", "/api/v1/state", token, {"state": "READY"})
    assert status == 202, r
    stack.wait_until(lambda: fin.agent(AGENT)["state"] == "READY", 5, what="READY")

    a, b = check_focused_tab_pops_once(one, fin, token)
    check_unclaimed_moves_on(one, fin, a, b)
    c = check_refresh_mid_ring(one, fin, token, a, b)
    check_outside_salesforce(one, fin, token, c)
    check_bad_input(one, token, other, c)
    check_claimant_gone_before_done(one, fin, token, c)
    check_across_hosts(one, two, fin, redis, token, c)
    two.stop()
    fin.stop()
    redis.stop()
    print("PASS")


if __name__ == "__main__":
    main()
