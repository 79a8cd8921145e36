# SPDX-License-Identifier: AGPL-3.0-or-later
"""Agent sessions that outlive the connector process ([server]
session_key_file + [redis]):

1. Two agents sign in; what Redis holds is sealed (no password, no token in
   the clear).
2. kill -9 of the connector; a new process on the same address picks its
   agents up by itself (no request needed), well inside Finesse's presence
   grace: no logout at Finesse, the call that was ringing is still there,
   and the tabs' old tokens work (REST and the event stream) without a new
   sign-in.
3. An agent not in the restarted host's set (as if another host had died)
   is resumed when its tab presents its token: 503 session_resuming first,
   then the token works.
4. A tampered record is refused (the token gets 401), an unknown token gets
   401, a token mapping planted in Redis (plain, or a real token's sealed
   value copied under another token's key) gets 401, and a sign-out removes
   everything the agent had in Redis.
5. Two hosts: a token presented to the host that does not drive the agent
   gets 409 agent_elsewhere with the owner; when the owner is killed, the
   other host resumes the agent with that same token once the lease runs
   out.
"""
import hashlib
import os
import secrets
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402


def keys_and_values(redis):
    out = {}
    for k in redis.cli("KEYS", "fsc:*"):
        t = redis.cli("TYPE", k)
        if t == "string":
            out[k] = redis.cli("GET", k)
        elif t == "set":
            out[k] = " ".join(redis.cli("SMEMBERS", k))
    return out


def connector(fin, redis, tmp, key_file, port, name):
    return stack.Connector(fin, port=port, name=name, tmp=tmp, extra={
        "server": {"session_key_file": key_file, "agent_lease_s": "4"},
        "redis": {"url": redis.url, "prefix": "fsc:"},
    })


def wait_token_ok(conn, token, what, timeout=15):
    seen = []

    def ok():
        status, body = conn.api("GET", "/api/v1/reason-codes?category=NOT_READY", token)
        seen.append(status)
        return status == 200
    stack.wait_until(ok, timeout, 0.2, what)
    return seen


def main():
    tmp = stack.session_tmp()
    redis = stack.Redis(name="redis", tmp=tmp)
    fin = stack.FinesseSim(agents=4, presence_grace_s=20, tmp=tmp)
    key_file = tmp.write("secrets/session.key", secrets.token_bytes(32), 0o600)
    port = stack.free_port()
    conn = connector(fin, redis, tmp, key_file, port, "connector-1")

    # --- 1. sign-ins; Redis holds nothing in the clear
    tokens = {}
    for agent in ("1001", "1002", "1003"):
        status, body = conn.login(agent, "pw" + agent, agent)
        assert status == 200, "login %s: %d %r" % (agent, status, body)
        tokens[agent] = body["token"]
    status, r = conn.api("POST", "/api/v1/state", tokens["1001"], {"state": "READY"})
    assert status == 202, "READY: %d %r" % (status, r)
    stack.wait_until(lambda: fin.agent("1001")["state"] == "READY", 5, what="1001 READY")
    kv = keys_and_values(redis)
    blob = " ".join("%s=%s" % (k, v) for k, v in kv.items())
    for agent, tok in tokens.items():
        assert "pw" + agent not in blob, "a password in the clear in Redis"
        assert tok not in blob, "a token in the clear in Redis"
    assert "fsc:agent:1001:session" in kv and "fsc:agent:1001:tokens" in kv, sorted(kv)
    host_set = [k for k in kv if k.startswith("fsc:host:") and k.endswith(":agents")]
    assert len(host_set) == 1 and set(kv[host_set[0]].split()) == {"1001", "1002", "1003"}, kv
    print("ok  3 agents signed in; Redis holds sealed records and token hashes only (%d keys)"
          % len(kv))

    did = fin.call("1001")
    sse = conn.events(tokens["1001"])
    sse.wait(lambda e: e.get("event") == "dialog" and e["data"].get("id") == did,
             what="the call rings at 1001")

    # --- 2. kill -9; a new process picks its agents up by itself
    redis.cli("SREM", host_set[0], "1003")  # 1003: as if another host had it
    sse.close()
    conn.kill()
    t_kill = time.time()
    conn2 = connector(fin, redis, tmp, key_file, port, "connector-2")
    stack.wait_until(lambda: "event=session_resumed agent=1001" in conn2.log_text() and
                     "event=session_resumed agent=1002" in conn2.log_text(), 15,
                     what="1001 and 1002 resumed without any request")
    took = time.time() - t_kill
    assert "event=session_resumed agent=1003" not in conn2.log_text(), "1003 was not ours"
    assert conn2.metric("fsc_connector_sessions_resumed_total") == 2, "metric: 2 resumed"
    stack.wait_until(lambda: fin.agent("1001")["presence"]["A"] > 0, 10,
                     what="1001's XMPP presence back at Finesse")
    a = fin.agent("1001")
    assert a["state"] == "RESERVED", "no logout at Finesse (ringing): %r" % a["state"]
    assert [d["id"] for d in a["dialogs"]] == [did], "the ringing call is still there"
    seen = wait_token_ok(conn2, tokens["1001"], "1001's old token works")
    assert seen[-1] == 200
    sse = conn2.events(tokens["1001"])
    assert sse.status == 200, "the stream with the old token: %r" % sse.status
    ev = sse.wait(lambda e: e.get("event") == "dialog" and e["data"].get("id") == did,
                  what="the ringing call on the resumed stream")
    status, r = conn2.api("POST", "/api/v1/calls/%s/actions" % did, tokens["1001"],
                          {"action": "answer"})
    assert status in (200, 202), "answer after the restart: %d %r" % (status, r)
    stack.wait_until(lambda: any(p.get("state") == "ACTIVE" for p in
                                 fin.dialog(did).get("participants", [])
                                 if p.get("address") == "1001"), 5, what="ACTIVE")
    sse.close()
    print("ok  kill -9 + restart: 1001 and 1002 resumed in %.1f s with no request; no logout, "
          "the ringing call answered with the old token" % took)

    # --- 3. 1003: resumed when its tab comes
    status, body = conn2.api("GET", "/api/v1/reason-codes?category=NOT_READY", tokens["1003"])
    assert status == 503 and body["error"] == "session_resuming", \
        "first request with 1003's token: %d %r" % (status, body)
    wait_token_ok(conn2, tokens["1003"], "1003's token works once resumed")
    assert fin.agent("1003")["state"] == "NOT_READY", "1003 kept its state"
    print("ok  an agent this host did not drive is resumed when its tab comes: 503 "
          "session_resuming, then 200")

    # --- 4. tampering, unknown tokens, sign-out
    status, _ = conn2.api("GET", "/api/v1/reason-codes?category=NOT_READY",
                          secrets.token_urlsafe(32)[:43])
    assert status == 401, "unknown token: %d" % status
    # someone who can write to Redis plants their own token for agent 1002
    forged = secrets.token_urlsafe(32)[:43]
    fkey = "fsc:token:" + hashlib.sha256(forged.encode()).hexdigest()
    for value in ("1002", redis.cli("GET", "fsc:token:" + hashlib.sha256(
            tokens["1002"].encode()).hexdigest())):
        redis.cli("SET", fkey, value)
        status, _ = conn2.api("GET", "/api/v1/reason-codes?category=NOT_READY", forged)
        assert status == 401, "a planted token mapping (%s) is refused: %d" % (
            "plain" if value == "1002" else "copied from a real token", status)
    status, _ = conn2.api("POST", "/api/v1/logout", tokens["1001"], {})
    assert status == 200, "logout: %d" % status
    left = [k for k in keys_and_values(redis) if ":1001:" in k]
    assert left == [], "1001 left keys behind: %r" % left
    assert not redis.cli("SISMEMBER", host_set[0], "1001"), "1001 still in the host set"
    conn2.kill()
    rec = redis.cli("GET", "fsc:agent:1002:session")
    redis.cli("SET", "fsc:agent:1002:session", rec[:-4] + ("AAAA" if rec[-4:] != "AAAA" else "BBBB"))
    conn3 = connector(fin, redis, tmp, key_file, port, "connector-3")
    stack.wait_until(lambda: "event=resume_record_rejected agent=1002" in conn3.log_text(), 10,
                     what="the tampered record rejected")
    status, _ = conn3.api("GET", "/api/v1/reason-codes?category=NOT_READY", tokens["1002"])
    assert status == 401, "token of a tampered record: %d" % status
    assert redis.cli("GET", "fsc:agent:1002:session") is None, "the tampered record is dropped"
    print("ok  unknown token 401; planted token mappings 401; sign-out removes the agent's "
          "keys; a tampered record is refused and dropped (its token 401)")

    # --- 5. two hosts: a token at the wrong host is sent to the owner; when
    # the owner dies, the other host takes the agent over with that token
    status, body = conn3.login("1004", "pw1004", "1004")
    assert status == 200, "login 1004: %d %r" % (status, body)
    tok4 = body["token"]
    two = connector(fin, redis, tmp, key_file, stack.free_port(), "connector-two")
    status, body = two.api("GET", "/api/v1/reason-codes?category=NOT_READY", tok4)
    assert status == 409 and body["error"] == "agent_elsewhere" and \
        body["owner"] == "%s:%d" % (stack.HOST, port), "the other host names the owner: %d %r" % (
            status, body)
    conn3.kill()
    t0 = time.time()
    seen = wait_token_ok(two, tok4, "host two takes 1004 over with its token", timeout=20)
    assert fin.agent("1004")["state"] != "LOGOUT", "no logout at Finesse"
    print("ok  two hosts: the token at the other host -> 409 owner; owner killed -> the other "
          "host resumes 1004 with the same token after %.1f s (%s)"
          % (time.time() - t0, ", ".join(str(x) for x in sorted(set(seen)))))
    two.stop()
    fin.stop()
    redis.stop()
    print("PASS")


if __name__ == "__main__":
    main()
