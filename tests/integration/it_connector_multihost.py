# SPDX-License-Identifier: AGPL-3.0-or-later
"""Two fsc-connector hosts sharing one site's agents through Redis: each
agent's Finesse session lives on exactly one host (a lease in Redis); a
sign-in reaching the other host is told where the agent is (409 with the
owner's URL) and changes nothing; each host serves its own agents; when a
host dies (kill -9) its lease runs out and the other host takes the agent
over, inside Finesse's presence grace, without a logout."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

LEASE_S = 3


def host(fin, redis, name):
    port = stack.free_port()
    return stack.Connector(fin, port=port, name="connector-" + name, extra={
        "server": {"public_url": "http://%s:%d" % (stack.HOST, port),
                   "agent_lease_s": str(LEASE_S)},
        "redis": {"url": redis.url, "prefix": "fsc:"},
    })


def main():
    redis = stack.Redis(name="redis")
    fin = stack.FinesseSim(agents=3, presence_grace_s=15)
    one = host(fin, redis, "one")
    two = host(fin, redis, "two")

    status, a1 = one.login("1001", "pw1001", "1001")
    assert status == 200, "1001 on host one: %d %r" % (status, a1)
    status, b = two.login("1001", "pw1001", "1001")
    assert status == 409 and b["error"] == "agent_elsewhere" and b["owner"] == one.url, \
        "1001 on host two is sent to host one: %d %r" % (status, b)
    status, a2 = two.login("1002", "pw1002", "1002")
    assert status == 200, "1002 on host two: %d %r" % (status, a2)
    owner = redis.cli("GET", "fsc:agent:1001:owner")
    assert owner == one.url, "the lease names host one: %r" % owner
    assert redis.cli("PTTL", "fsc:agent:1001:owner") > 0, "the lease has a TTL"
    print("ok  1001 on host one, 1002 on host two; 1001 at host two -> 409 owner=%s" % one.url)

    sse = one.events(a1["token"])
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "NOT_READY",
             what="1001 signed in")
    time.sleep(LEASE_S + 1)  # renewals keep the lease past its TTL
    status, b = two.login("1001", "pw1001", "1001")
    assert status == 409, "still host one's after %d s (renewed): %d %r" % (LEASE_S + 1, status, b)
    print("ok  host one renews the lease: still its agent after %d s" % (LEASE_S + 1))
    sse.close()

    one.kill()
    t0 = time.time()
    status, b = None, None
    while time.time() - t0 < LEASE_S + 10:
        status, b = two.login("1001", "pw1001", "1001")
        if status == 200:
            break
        time.sleep(0.5)
    took = time.time() - t0
    assert status == 200, "host two takes 1001 over after host one died: %d %r" % (status, b)
    assert redis.cli("GET", "fsc:agent:1001:owner") == two.url, "the lease moved to host two"
    sse = two.events(b["token"])
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] in
             ("NOT_READY", "READY"), what="1001 on host two")
    status, r = two.api("POST", "/api/v1/state", b["token"], {"state": "READY"})
    assert status == 202, "1001 works on host two: %d %r" % (status, r)
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "READY", what="READY")
    assert fin.agent("1001")["state"] == "READY", "no logout at Finesse"
    print("ok  host one killed: host two took 1001 over after %.1f s, READY, no logout" % took)
    status, r = two.api("POST", "/api/v1/logout", b["token"])
    assert status == 200
    assert redis.cli("GET", "fsc:agent:1001:owner") is None, "logout releases the lease"
    sse.close()
    two.stop()
    fin.stop()
    redis.stop()
    print("PASS")


if __name__ == "__main__":
    main()
