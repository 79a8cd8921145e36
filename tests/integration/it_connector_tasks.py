# SPDX-License-Identifier: AGPL-3.0-or-later
"""Call logging: every call leaves exactly one Salesforce Task, written by
the connector through the durable outbox (Redis stream + consumer group)
with an idempotent upsert on Finesse_Call_Id__c.

1. A call with a record opened by the agent and a wrap-up reason: one Task
   with the fields the issue lists (owner resolved by the agent's User
   field, WhoId from the context, CallDisposition from the wrap-up).
2. Durability: sf-sim answers 503 while a burst of calls ends, the
   connector is killed (-9) with entries taken but not written, a new
   connector starts on the same Redis: after the outage every call has
   exactly one Task, none lost, none doubled."""
import collections
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

AGENTS = [str(1001 + i) for i in range(8)]
CALLS_PER_AGENT = 6


def connector(fin, sf, redis, name):
    return stack.Connector(fin, name=name, log_level="info", extra={
        "redis": {"url": redis.url, "prefix": "fsc:"},
        "salesforce": {"login_url": sf.login_url, "client_id": sf.consumer_key,
                       "jwt_key_file": sf.key_file, "integration_user": sf.integration_user,
                       "org_origins": sf.ui_url, "outbox_reclaim_ms": "2000",
                       "outbox_backoff_max_ms": "1000",
                       "spool_dir": os.path.join(stack.session_tmp().sub(name), "spool")},
    })


def sign_in_ready(conn, agent):
    status, body = conn.login(agent, "pw" + agent, agent)
    assert status == 200, "login %s: %d %r" % (agent, status, body)
    token = body["token"]
    stack.wait_until(lambda: conn.fin.agent(agent)["state"] == "NOT_READY", 10,
                     what="%s NOT_READY" % agent)
    status, r = conn.api("POST", "/api/v1/state", token, {"state": "READY"})
    assert status == 202, "READY %s: %d %r" % (agent, status, r)
    stack.wait_until(lambda: conn.fin.agent(agent)["state"] == "READY", 10,
                     what="%s READY" % agent)
    return token


def one_call(fin, agent, **kw):
    did = fin.call(agent, **kw)
    fin.action(did, agent, "ANSWER")
    fin.hangup(did)
    return did


def check_task_fields(fin, sf, conn):
    agent = AGENTS[0]
    token = sign_in_ready(conn, agent)
    sse = conn.events(token)
    did = fin.call(agent, ani="+14155550100", dnis="8000", queue="Sales",
                   callvariables={"callVariable1": "Order 4711"})
    sse.wait(lambda e: e.get("event") == "dialog" and e["data"]["id"] == did, what="ring")
    contact = next(r["Id"] for r in sf.records("Contact"))
    status, r = conn.api("POST", "/api/v1/calls/%s/context" % did, token, {"who_id": contact})
    assert status == 200, "context: %d %r" % (status, r)
    status, r = conn.api("POST", "/api/v1/calls/%s/actions" % did, token, {"action": "answer"})
    assert status == 202
    time.sleep(1.1)
    fin.hangup(did)
    sse.wait(lambda e: e.get("event") == "dialog" and e["data"]["id"] == did and
             e["data"]["state"] == "DROPPED", what="dropped")
    stack.wait_until(lambda: sf.tasks(external_id=did), 15, what="Task written")
    status, r = conn.api("POST", "/api/v1/calls/%s/wrapup" % did, token, {"reason": "Sales"})
    assert status == 202, "wrap-up accepted: %d %r" % (status, r)
    stack.wait_until(lambda: (sf.tasks(external_id=did) or [{}])[0].get("CallDisposition")
                     == "Sales", 15, what="Task updated with the wrap-up reason")
    tasks = sf.tasks(external_id=did)
    assert len(tasks) == 1, "one Task per call: %r" % tasks
    t = tasks[0]
    want = {"CallType": "Inbound", "CallObject": did, "Status": "Completed",
            "TaskSubtype": "Call", "WhoId": contact, "CallDisposition": "Sales",
            "OwnerId": sf.user_id(agent)}
    got = {k: t.get(k) for k in want}
    assert got == want, "Task fields: %r, want %r" % (got, want)
    assert t["CallDurationInSeconds"] >= 1, "duration counted from answer: %r" % t
    assert "+14155550100" in t["Subject"] and "Order 4711" in t["Description"] and \
        "Sales" in t["Description"] and "8000" in t["Description"], "Subject/Description: %r" % t
    assert t["ActivityDate"] == time.strftime("%Y-%m-%d", time.gmtime()), t["ActivityDate"]
    print("ok  one Task with owner %s, WhoId from context, duration %ss, disposition "
          "from wrap-up, %d writes (upserted by %s)" % (t["OwnerId"], t["CallDurationInSeconds"],
                                                        t.get("_writes", t.get("writes", 0)), did))
    status, r = conn.api("POST", "/api/v1/state", token, {"state": "READY"})
    sse.close()


def check_durability(fin, sf, redis, conn):
    for agent in AGENTS[1:]:
        sign_in_ready(conn, agent)
    sf.fault(status=503, for_s=300)
    dialogs = []
    for n in range(CALLS_PER_AGENT):
        for agent in AGENTS[1:]:
            dialogs.append(one_call(fin, agent, ani="+1415555%04d" % len(dialogs)))
            fin.set_state(agent, "READY")
    # every call end is accepted by the outbox (Redis) while Salesforce is down
    stack.wait_until(lambda: redis.cli("XLEN", "fsc:outbox") == len(dialogs), 30,
                     what="%d Tasks queued" % len(dialogs))
    time.sleep(1.5)  # the consumer has taken entries and is retrying them
    pending = redis.cli("XPENDING", "fsc:outbox", "fsc")
    conn.kill()
    print("    %d call ends queued during a 503 outage; connector killed with %s entries "
          "taken" % (len(dialogs), pending[0] if pending else "?"))
    fresh = connector(fin, sf, redis, "connector-2")
    sf.clear_faults()
    stack.wait_until(lambda: redis.cli("XLEN", "fsc:outbox") == 0, 60,
                     what="outbox drained")
    tasks = sf.tasks()
    counts = collections.Counter(t.get("Finesse_Call_Id__c") for t in tasks)
    lost = [d for d in dialogs if counts[d] == 0]
    doubled = [d for d, c in counts.items() if c > 1]
    assert not lost and not doubled, "lost %r, duplicated %r" % (lost, doubled)
    assert redis.cli("LLEN", "fsc:outbox:dead") == 0, "nothing dead-lettered"
    st = sf.stats()
    batches, singles = st["upserts"]["collections"], st["requests"].get("upsert", 0)
    print("    Salesforce requests for them: %d sObject Collections upserts, %d single upserts"
          % (batches, singles))
    assert batches >= 1, "the queued call ends were written in batches"
    print("ok  after the outage and a kill -9: %d calls -> %d Tasks, lost=0 duplicates=0"
          % (len(dialogs), sum(1 for d in dialogs if counts[d] == 1)))
    fresh.stop()


def check_redis_down(fin, sf, redis, conn):
    """Redis is gone when calls end: the call logs wait in the local spool
    (fdatasync'd) and reach Salesforce, once each, when Redis is back."""
    spare = [str(1001 + len(AGENTS) + i) for i in range(4)]  # not signed in before
    tokens = [sign_in_ready(conn, agent) for agent in spare]
    before = {t.get("Finesse_Call_Id__c") for t in sf.tasks()}
    redis.kill()
    dialogs = []
    for agent in spare:
        dialogs.append(one_call(fin, agent, ani="+1415666%04d" % len(dialogs)))
        fin.set_state(agent, "READY")
    stack.wait_until(lambda: conn.log_text().count("event=task_spooled") >= len(dialogs), 30,
                     what="%d call logs spooled while Redis is down" % len(dialogs))
    assert not set(dialogs) & {t.get("Finesse_Call_Id__c") for t in sf.tasks()}, \
        "nothing can have reached Salesforce without Redis"
    redis.start()
    stack.wait_until(lambda: {t.get("Finesse_Call_Id__c") for t in sf.tasks()} >= set(dialogs),
                     60, what="the spooled call logs written after Redis came back")
    time.sleep(1.0)
    counts = collections.Counter(t.get("Finesse_Call_Id__c") for t in sf.tasks())
    assert all(counts[d] == 1 for d in dialogs), "one Task each: %r" % [counts[d] for d in dialogs]
    assert "event=spool_drained" in conn.log_text(), "the spool was drained"
    assert conn.metric("fsc_connector_tasks_spooled_total") >= len(dialogs)
    stack.wait_until(lambda: conn.metric("fsc_connector_spool_waiting") == 0, 5,
                     what="metric: spool empty")
    assert not before & set(dialogs)
    print("ok  Redis down at call end: %d call logs spooled on disk, written once each when "
          "Redis came back" % len(dialogs))
    return tokens


def main():
    redis = stack.Redis(name="redis")
    sf = stack.SfSim()
    fin = stack.FinesseSim(agents=len(AGENTS) + 4, presence_grace_s=60, wrap_up="REQUIRED")
    conn = connector(fin, sf, redis, "connector")
    check_task_fields(fin, sf, conn)
    check_durability(fin, sf, redis, conn)
    conn = connector(fin, sf, redis, "connector-3")
    check_redis_down(fin, sf, redis, conn)
    conn.stop()
    fin.stop()
    sf.stop()
    redis.stop()
    print("PASS")


if __name__ == "__main__":
    main()
