# SPDX-License-Identifier: AGPL-3.0-or-later
"""The event stream's credential never rides in a URL: fsc-connector behind
a real haproxy that logs every request line (option httplog), as a site's
reverse proxy would.

1. POST /api/v1/events/ticket (Bearer token) gives a ticket; GET
   /api/v1/events?ticket= through the proxy opens the stream (its `stream`
   and `agent` events arrive), and ?last_event_id= resumes where a tab
   left off (the page reconnects with a new ticket);
2. the same ticket again: 401 invalid_ticket;
3. a ticket older than [server] stream_ticket_s (2 s here): 401;
4. ?token= on the stream URL: 400 token_in_url, the stream is not opened;
   no ticket for a bad token; a ticket is bound to the token it was issued
   for (a sign-out ends it);
5. haproxy's log: many request lines, /api/v1/events?ticket= among them,
   and the API token in none of them."""
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

TICKET_S = 2


def is_agent(state):
    return lambda ev: ev.get("event") == "agent" and ev["data"].get("state") == state


def main():
    fin = stack.FinesseSim(agents=2)
    conn = stack.Connector(fin, extra={"server": {"stream_ticket_s": str(TICKET_S),
                                                  "trusted_proxies": "127.0.0.1"}})
    proxy = stack.HttpProxy(conn)
    via = proxy.url

    status, body = conn.login("1001", "pw1001", "1001", via=via)
    assert status == 200, "sign-in through the proxy: %d %r" % (status, body)
    token = body["token"]

    # --- 1. ticket, stream, resume
    status, t = conn.ticket(token, via)
    assert status == 200 and len(t["ticket"]) == 43 and t["expires_in"] == TICKET_S, (status, t)
    ticket = t["ticket"]
    url = via + "/api/v1/events?ticket=" + urllib.parse.quote(ticket)
    sse = stack.SseClient(url)
    assert sse.status == 200, "stream with a ticket: %d" % sse.status
    sse.wait(lambda ev: ev.get("event") == "stream", what="stream event")
    sse.wait(lambda ev: ev.get("event") == "agent", what="agent snapshot")
    conn.api("POST", "/api/v1/state", token, {"state": "READY"}, via=via)
    ready = sse.wait(is_agent("READY"), what="READY")
    last_id = int(ready["id"])
    sse.close()
    conn.api("POST", "/api/v1/state", token, {"state": "NOT_READY", "reason_code_id": "1"},
             via=via)
    # a tab that was away reconnects with a new ticket and where it was
    status, t2 = conn.ticket(token, via)
    assert status == 200 and t2["ticket"] != ticket
    resumed = stack.SseClient(via + "/api/v1/events?ticket=%s&last_event_id=%d"
                              % (urllib.parse.quote(t2["ticket"]), last_id))
    ev = resumed.wait(lambda e: e.get("event") in ("agent", "snapshot"), what="resume")
    assert ev.get("event") == "agent" and ev["data"]["state"] == "NOT_READY" and \
        int(ev["id"]) == last_id + 1, "resumed after event %d: %r" % (last_id, ev)
    resumed.close()
    print("ok  ticket -> stream through haproxy; a new ticket + last_event_id resumes (event %d)"
          % (last_id + 1))

    # --- 2. replayed
    status, hdrs, data = stack.http("GET", url, headers={"Accept": "text/event-stream"})
    assert status == 401 and b"invalid_ticket" in data and \
        "bearer" in hdrs.get("www-authenticate", "").lower(), \
        "the same ticket twice: %d %r" % (status, data[:200])
    print("ok  a ticket replayed: 401 invalid_ticket")

    # --- 3. expired: issued, then not used within its lifetime
    status, t3 = conn.ticket(token, via)
    assert status == 200
    issued = time.monotonic()
    time.sleep(TICKET_S + 0.5)
    assert time.monotonic() - issued > TICKET_S
    status, _, data = stack.http("GET", via + "/api/v1/events?ticket=" + t3["ticket"],
                                 headers={"Accept": "text/event-stream"})
    assert status == 401 and b"invalid_ticket" in data, "an expired ticket: %d %r" % (status,
                                                                                     data)
    # ...while a fresh one still works
    fresh = conn.events(token, via=via)
    assert fresh.status == 200
    fresh.wait(lambda ev: ev.get("event") == "agent", what="agent")
    fresh.close()
    print("ok  a ticket older than stream_ticket_s (%d s): 401; a fresh one opens" % TICKET_S)

    # --- 4. the token itself in the URL; bad tokens; sign-out
    status, _, data = stack.http("GET", conn.url + "/api/v1/events?token=" + token,
                                 headers={"Accept": "text/event-stream"})
    assert status == 400 and b"token_in_url" in data, "?token=: %d %r" % (status, data[:200])
    status, body = conn.ticket("A" * 43, via)
    assert status == 401, "ticket for an unknown token: %d %r" % (status, body)
    status, body = conn.ticket(None, via)
    assert status == 401, "ticket without a token: %d %r" % (status, body)
    status, t4 = conn.ticket(token, via)
    assert status == 200
    status, _ = conn.api("POST", "/api/v1/logout", token, via=via)
    assert status == 200
    status, _, data = stack.http("GET", via + "/api/v1/events?ticket=" + t4["ticket"],
                                 headers={"Accept": "text/event-stream"})
    assert status == 401, "a ticket of a signed-out token: %d %r" % (status, data[:200])
    print("ok  ?token= on the stream URL: 400 token_in_url; no ticket without a live token; "
          "a sign-out ends the tickets it had")

    # --- 5. what the proxy logged
    stack.wait_until(lambda: sum("/api/v1/events?ticket=" in l
                                 for l in proxy.request_lines()) >= 6, 10,
                     what="haproxy's log lines")
    lines = proxy.request_lines()
    leaked = [l for l in lines if token in l]
    assert len(lines) >= 12 and not leaked, "token in haproxy's log: %r" % leaked
    print("ok  haproxy logged %d request lines, %d of them stream URLs with a ticket; the "
          "API token is in none" % (len(lines),
                                    sum("events?ticket=" in l for l in lines)))
    proxy.stop()
    conn.stop()
    fin.stop()
    print("PASS")


if __name__ == "__main__":
    main()
