# SPDX-License-Identifier: AGPL-3.0-or-later
"""Operations on the Salesforce side of fsc-connector:
- a call log Salesforce refuses for good (a 400) lands in the dead-letter
  list with the reason, is visible to admins (GET /admin/v1/outbox, admin
  key only, and through the admin CLI fscctl) and, once replayed, written
  exactly once;
- an entry queued in the outbox by someone with write access to Redis but
  not the outbox key (no MAC, or a genuine entry's MAC on other fields) is
  dead-lettered as unauthenticated and never written to Salesforce;
  fscctl replay refuses it (409) unless --force;
- when every tab of an agent has been closed for tabs_closed_after_s, the
  agent goes to the configured state (NOT_READY here) and no calls are
  routed to a desk nobody sits at."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402


def fscctl(*args):
    exe = os.path.join(os.path.dirname(stack.FSC_CONNECTOR), "fscctl")
    return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=30)


def main():
    tmp = stack.session_tmp()
    admin_key = "admin-key-0123456789abcdef"
    key_file = tmp.write("secrets/admin.key", admin_key + "\n", 0o600)
    redis = stack.Redis(name="redis")
    sf = stack.SfSim()
    fin = stack.FinesseSim(agents=2, presence_grace_s=60)
    conn = stack.Connector(fin, log_level="info", extra={
        "server": {"admin_key_file": key_file, "tabs_closed_after_s": "2",
                   "tabs_closed_state": "NOT_READY", "tabs_closed_reason_code_id": "1",
                   "sse_ping_s": "1"},
        "redis": {"url": redis.url, "prefix": "fsc:"},
        "salesforce": {"login_url": sf.login_url, "client_id": sf.consumer_key,
                       "jwt_key_file": sf.key_file, "integration_user": sf.integration_user,
                       "org_origins": sf.ui_url},
    })
    status, body = conn.login("1001", "pw1001", "1001")
    assert status == 200, body
    token = body["token"]
    sse = conn.events(token)
    stack.wait_until(lambda: fin.agent("1001")["state"] == "NOT_READY", 10, what="signed in")
    conn.api("POST", "/api/v1/state", token, {"state": "READY"})
    stack.wait_until(lambda: fin.agent("1001")["state"] == "READY", 10, what="READY")

    # a permanent refusal: dead letter, visible, replayable
    sf.fault(status=400, count=1, path_contains="/sobjects/Task/")
    did = fin.call("1001")
    sse.wait(lambda e: e.get("event") == "dialog" and e["data"]["id"] == did, what="ringing")
    fin.action(did, "1001", "ANSWER")
    fin.hangup(did)
    sse.wait(lambda e: e.get("event") == "dialog" and e["data"]["state"] == "DROPPED",
             what="ended")
    h = {"Authorization": "Bearer " + admin_key}
    stack.wait_until(lambda: conn.api("GET", "/admin/v1/outbox", headers=h)[1]["dead"], 20,
                     what="dead letter")
    status, ob = conn.api("GET", "/admin/v1/outbox", headers=h)
    dead = ob["dead"][0]
    assert status == 200 and dead["dialog_id"] == did and dead.get("reason"), \
        "dead letter with its reason: %r" % ob
    assert sf.tasks(external_id=did) == [], "nothing written while refused"
    for bad in (None, "wrong-key-0123456789"):
        hdr = {"Authorization": "Bearer " + bad} if bad else {}
        status, r = conn.api("GET", "/admin/v1/outbox", headers=hdr)
        assert status == 401, "admin endpoints need the admin key: %d" % status
    # the admin CLI sees the same, from the connector's own config file
    out = fscctl("--config", conn.cfg, "outbox")
    assert out.returncode == 0 and "dead letters 1" in out.stdout and did in out.stdout \
        and dead["reason"][:30] in out.stdout, "fscctl outbox: %r" % (out.stdout + out.stderr)
    assert admin_key not in out.stdout + out.stderr, "fscctl never prints the key"
    bad_key = tmp.write("secrets/wrong.key", "wrong-key-0123456789\n", 0o600)
    out = fscctl("--url", conn.url, "--key-file", bad_key, "outbox")
    assert out.returncode == 1 and "401" in out.stderr, "fscctl with a wrong key: %r" % (
        out.stdout + out.stderr)
    out = fscctl("--config", conn.cfg, "replay", "7")
    assert out.returncode == 1 and "404" in out.stderr, "replay of no such index: %r" % (
        out.stdout + out.stderr)
    out = fscctl("--config", conn.cfg, "status")
    assert out.returncode == 0 and "agents       1" in out.stdout, "fscctl status: %r" % (
        out.stdout + out.stderr)
    out = fscctl("--config", conn.cfg, "replay", "0")
    assert out.returncode == 0 and "replayed 1" in out.stdout, "fscctl replay 0: %r" % (
        out.stdout + out.stderr)
    print("ok  fscctl: outbox lists the dead letter and its reason, a wrong key -> 401, "
          "status, replay 0")
    stack.wait_until(lambda: len(sf.tasks(external_id=did)) == 1, 20, what="Task after replay")
    status, ob = conn.api("GET", "/admin/v1/outbox", headers=h)
    assert ob["dead"] == [] and ob["pending"] == 0, "dead list empty, nothing pending: %r" % ob
    print("ok  refused Task -> dead letter (%s) -> replayed -> written once" % dead["reason"][:60])

    # entries queued straight into Redis, without the outbox key
    entries = redis.cli("XRANGE", "fsc:outbox", "-", "+")
    assert entries == [], "the outbox is empty: %r" % entries
    fields = '{"Subject":"Call","Status":"Completed","Finesse_Call_Id__c":"%s"}'
    redis.cli("XADD", "fsc:outbox", "*", "dialog", "9990001", "fields", fields % "9990001",
              "ts", "1")
    # a genuine entry's MAC on other fields (the first call's Task, to be
    # overwritten)
    fin.set_state("1001", "READY")
    stack.wait_until(lambda: fin.agent("1001")["state"] == "READY", 10, what="READY")
    did2 = fin.call("1001")
    fin.action(did2, "1001", "ANSWER")
    # hold the consumers off the next entry: Salesforce answers 503 for a while
    sf.fault(status=503, for_s=3, path_contains="/sobjects/Task")
    fin.hangup(did2)

    def queued_entry():
        for _, kv in redis.cli("XRANGE", "fsc:outbox", "-", "+"):
            d = stack.pairs(kv)
            if d.get("dialog") == did2 and "mac" in d:
                return d
        return None
    genuine = stack.wait_until(queued_entry, 10, what="the call's outbox entry")
    redis.cli("XADD", "fsc:outbox", "*", "dialog", did, "fields",
              '{"Subject":"Overwritten","Status":"Completed"}', "ts", "1", "mac", genuine["mac"])
    stack.wait_until(lambda: len(conn.api("GET", "/admin/v1/outbox", headers=h)[1]["dead"]) >= 2,
                     20, what="unauthenticated entries dead-lettered")
    stack.wait_until(lambda: len(sf.tasks(external_id=did2)) == 1, 20, what="the genuine Task")
    status, ob = conn.api("GET", "/admin/v1/outbox", headers=h)
    reasons = {d["dialog_id"]: d["reason"] for d in ob["dead"]}
    assert sorted(reasons) == sorted(["9990001", did]) and \
        reasons["9990001"].startswith("unauthenticated: no MAC") and \
        reasons[did].startswith("unauthenticated: MAC does not verify"), reasons
    assert sf.tasks(external_id="9990001") == [], "a forged entry never reaches Salesforce"
    assert [t["Subject"] for t in sf.tasks(external_id=did)] != ["Overwritten"], \
        "a genuine MAC on other fields overwrites nothing"
    assert conn.metric("fsc_connector_sf_outbox_unauthenticated_total") == 2
    assert "event=sf_outbox_unauthenticated" in conn.log_text()
    forged = next(i for i, d in enumerate(ob["dead"]) if d["dialog_id"] == "9990001")
    out = fscctl("--config", conn.cfg, "replay", str(forged))
    assert out.returncode == 1 and "409" in out.stderr and "not authenticated" in out.stderr, \
        "replay of an unauthenticated dead letter: %r" % (out.stdout + out.stderr)
    out = fscctl("--config", conn.cfg, "replay", "all")
    assert out.returncode == 0 and "replayed 0" in out.stdout and \
        "left 2 unauthenticated" in out.stdout, "replay all: %r" % (out.stdout + out.stderr)
    out = fscctl("--config", conn.cfg, "replay", str(forged), "--force")
    assert out.returncode == 0 and "replayed 1" in out.stdout, "--force: %r" % (
        out.stdout + out.stderr)
    stack.wait_until(lambda: len(sf.tasks(external_id="9990001")) == 1, 20,
                     what="the checked entry, forced")
    print("ok  entries queued in Redis without the outbox key (no MAC; a genuine MAC on other "
          "fields) dead-lettered as unauthenticated, never written; replay refused (409) "
          "unless --force")

    # every tab closed: NOT_READY after tabs_closed_after_s
    fin.set_state("1001", "READY")
    stack.wait_until(lambda: fin.agent("1001")["state"] == "READY", 10, what="READY again")
    sse.close()
    t0 = time.time()
    stack.wait_until(lambda: fin.agent("1001")["state"] == "NOT_READY", 15,
                     what="NOT_READY after every tab closed")
    took = time.time() - t0
    assert fin.agent("1001").get("reasonCodeId", fin.agent("1001").get("reason_code_id")) in \
        ("1", 1, None), fin.agent("1001")
    print("ok  every tab closed: agent NOT_READY after %.1f s (tabs_closed_after_s=2)" % took)
    conn.stop()
    fin.stop()
    sf.stop()
    redis.stop()
    print("PASS")


if __name__ == "__main__":
    main()
