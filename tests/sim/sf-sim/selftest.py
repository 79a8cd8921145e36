#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Self-test for sf_sim.py: starts it through tests/lib/stack.py (SfSim) and
exercises the JWT bearer login, REST, faults, control API, the host page and
the opencti_min.js stand-in (in node's vm when there is no Chromium). Run with
/usr/bin/python3; exits non-zero on failure. --bench N times N upserts."""

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "lib"))
import stack  # noqa: E402

FAILS = []
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


class Client:
    """One keep-alive connection to the API origin."""

    def __init__(self, base, token=None):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        self.token = token

    def req(self, method, path, body=None, headers=None, raw=False):
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        if raw:
            return r.status, r, data
        try:
            obj = json.loads(data) if data else None
        except ValueError:
            obj = data
        return r.status, obj, r


def token_request(sf, key_pem, **over):
    claims = {"iss": sf.consumer_key, "sub": sf.integration_user, "aud": sf.login_url,
              "exp": int(time.time()) + 180}
    claims.update(over)
    claims = {k: v for k, v in claims.items() if v is not None}
    assertion = jwt.encode(claims, key_pem, algorithm="RS256")
    body = urllib.parse.urlencode({"grant_type": JWT_GRANT, "assertion": assertion})
    return stack.json_body("POST", sf.token_url,
                           {"Content-Type": "application/x-www-form-urlencoded"}, body)


V = "/services/data/v60.0"


def main():
    bench = int(sys.argv[sys.argv.index("--bench") + 1]) if "--bench" in sys.argv else 500
    sf = stack.SfSim()
    with open(sf.key_file, "rb") as f:
        key_pem = f.read()
    check(os.stat(sf.key_file).st_mode & 0o777 == 0o600, "key file mode 0600")
    check(sf.api_url != sf.ui_url, "API and UI are different origins (%s, %s)" % (sf.api_url, sf.ui_url))

    # ---- JWT bearer flow -----------------------------------------------------
    st, tok = token_request(sf, key_pem)
    check(st == 200 and tok.get("token_type") == "Bearer" and tok.get("scope") == "web api"
          and tok.get("instance_url") == sf.api_url and "refresh_token" not in tok
          and tok.get("id", "").startswith(sf.login_url + "/id/00D"),
          "JWT bearer: token minted, no refresh token: %s" % {k: v for k, v in tok.items() if k != "access_token"})
    token = tok["access_token"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    for what, key, over in (("wrong key", other, {}), ("wrong iss", key_pem, {"iss": "nope"}),
                            ("wrong aud", key_pem, {"aud": "https://evil.example.com"}),
                            ("unknown sub", key_pem, {"sub": "someone@example.com"}),
                            ("expired", key_pem, {"exp": int(time.time()) - 5}),
                            ("exp too far", key_pem, {"exp": int(time.time()) + 3600}),
                            ("no exp", key_pem, {"exp": None})):
        s, b = token_request(sf, key, **over)
        check(s == 400 and b.get("error") == "invalid_grant",
              "JWT %s -> 400 invalid_grant (%s)" % (what, b.get("error_description")))
    s, b = token_request(sf, key_pem, aud="https://login.salesforce.com")
    check(s == 200, "aud https://login.salesforce.com accepted")
    s, b = stack.json_body("POST", sf.token_url, {"Content-Type": "application/x-www-form-urlencoded"},
                           "grant_type=password&username=x&password=y")
    check(s == 400 and b["error"] == "unsupported_grant_type", "other grant types refused")
    s, b = sf.mint_token()
    check(s == 200, "openssl-signed assertion (the C connector's way) accepted")

    # ---- auth on REST ---------------------------------------------------------
    anon = Client(sf.api_url)
    s, b, _ = anon.req("GET", V + "/sobjects/Task/00T000000000000")
    check(s == 401 and b == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
          "no token -> 401 INVALID_SESSION_ID")
    c = Client(sf.api_url, token)

    # ---- upsert -----------------------------------------------------------------
    users = sf.records("User")
    agent_uid = next(u["Id"] for u in users if u.get("Finesse_Agent_Id__c") == "1001")
    contacts = {r["Name"]: r for r in sf.records("Contact")}
    accounts = {r["Name"]: r for r in sf.records("Account")}
    jane = contacts["Jane Doe"]["Id"]
    path = V + "/sobjects/Task/Finesse_Call_Id__c/dlg-1001"
    s, b, r = c.req("PATCH", path, {"Subject": "Call +14155550100", "CallType": "Inbound",
                                    "CallObject": "dlg-1001", "TaskSubtype": "Call",
                                    "WhoId": jane, "OwnerId": agent_uid[:15]})
    check(s == 201 and b.get("created") is True and b.get("success") is True and b.get("errors") == []
          and b["id"].startswith("00T") and len(b["id"]) == 18, "upsert creates: 201 %s" % b)
    check(r.getheader("Sforce-Limit-Info", "").startswith("api-usage="),
          "Sforce-Limit-Info header: %s" % r.getheader("Sforce-Limit-Info"))
    task_id = b["id"]
    s, b, _ = c.req("PATCH", path, {"CallDurationInSeconds": 93, "Status": "Completed",
                                    "CallDisposition": "Sales", "TaskSubtype": "Call",
                                    "WhatId": accounts["Acme Corporation"]["Id"]})
    check(s == 200 and b == {"id": task_id, "success": True, "errors": [], "created": False},
          "upsert updates: 200 created:false")
    s, _, _ = c.req("PATCH", path.replace("v60.0", "v45.0"), {"Description": "notes"})
    check(s == 204, "v45.0 update -> 204 no body")
    t = sf.tasks(external_id="dlg-1001")
    check(len(t) == 1 and t[0]["Subject"] == "Call +14155550100" and t[0]["CallDurationInSeconds"] == 93
          and t[0]["Status"] == "Completed" and t[0]["Description"] == "notes"
          and t[0]["writes"] == 3 and t[0]["OwnerId"] == agent_uid and t[0]["WhoId"] == jane
          and t[0]["Finesse_Call_Id__c"] == "dlg-1001" and t[0]["CreatedDate"] and t[0]["LastModifiedDate"],
          "/sim/tasks: fields merged, writes=3, 15-char OwnerId stored as 18")
    s, b, _ = c.req("GET", V + "/sobjects/Task/" + task_id)
    check(s == 200 and b["Id"] == task_id and b["attributes"]["type"] == "Task" and b["CallType"] == "Inbound",
          "GET /sobjects/Task/<id>")
    s, b, _ = c.req("GET", V + "/sobjects/Task/00T5g00000zzzzz")
    check(s == 404 and b[0]["errorCode"] == "NOT_FOUND", "GET unknown id -> 404 NOT_FOUND")

    bad_cases = [
        ({"Bogus__c": 1}, 400, "INVALID_FIELD", "No such column 'Bogus__c' on sobject of type Task"),
        ({"CallType": "Sideways"}, 400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", None),
        ({"CallDurationInSeconds": "93"}, 400, "JSON_PARSER_ERROR", None),
        ({"CallDurationInSeconds": 1.5}, 400, "JSON_PARSER_ERROR", None),
        ({"WhoId": "not-an-id"}, 400, "MALFORMED_ID", None),
        ({"WhoId": "0035g0000000zzzQQQ"}, 400, "MALFORMED_ID", None),  # bad checksum
        ({"WhoId": "0035g00000zzzzz"}, 400, "INVALID_CROSS_REFERENCE_KEY", None),
        ({"WhoId": agent_uid}, 400, "INVALID_CROSS_REFERENCE_KEY", None),
        ({"Subject": "x" * 256}, 400, "STRING_TOO_LONG", None),
        ({"Description": "x" * 32001}, 400, "STRING_TOO_LONG", None),
        ({"ActivityDate": "2024-13-01"}, 400, "JSON_PARSER_ERROR", None),
        ({"CreatedDate": "2024-01-01T00:00:00.000+0000"}, 400, "INVALID_FIELD_FOR_INSERT_UPDATE", None),
        ({"Status": None}, 400, "REQUIRED_FIELD_MISSING", None),
        ({"TaskSubtype": "Email"}, 400, "INVALID_FIELD_FOR_INSERT_UPDATE", None),
    ]
    for body, code, err, msg in bad_cases:
        s, b, _ = c.req("PATCH", path, body)
        check(s == code and isinstance(b, list) and b[0]["errorCode"] == err
              and (msg is None or b[0]["message"] == msg),
              "bad body %s -> %d %s" % (json.dumps(body)[:50], code, err))
    s, b, _ = c.req("PATCH", V + "/sobjects/Task/Other_Id__c/x", {"Subject": "x"})
    check(s == 404 and b == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}],
          "upsert on another external id field -> 404 NOT_FOUND")
    s, b, _ = c.req("PATCH", V + "/sobjects/Task/Finesse_Call_Id__c/nope?updateOnly=true", {"Subject": "x"})
    check(s == 404, "updateOnly=true on a missing record -> 404")
    s, b, _ = c.req("PATCH", path, b"{not json", {"Content-Type": "application/json"})
    check(s == 400 and b[0]["errorCode"] == "JSON_PARSER_ERROR", "non-JSON body -> JSON_PARSER_ERROR")
    check(len(sf.tasks(external_id="dlg-1001")) == 1 and sf.tasks(external_id="dlg-1001")[0]["writes"] == 3,
          "rejected writes change nothing")

    dup = sf.duplicate("dlg-1001")
    check(len(dup["ids"]) == 2, "/sim/duplicate makes a second Task")
    s, b, _ = c.req("PATCH", path, {"Subject": "again"})
    check(s == 300 and isinstance(b, list) and len(b) == 2
          and all(u.startswith(V + "/sobjects/Task/00T") for u in b), "2 matches -> 300 with the list")
    check(all(x["Subject"] != "again" for x in sf.tasks(external_id="dlg-1001")), "300 writes nothing")

    # ---- SOSL -------------------------------------------------------------------
    def sosl(term, scope="PHONE", returning="Contact(Id,Name,Phone),Lead(Id,Name,Phone),Account(Id,Name,Phone)"):
        q = "FIND {%s} IN %s FIELDS RETURNING %s" % (term, scope, returning)
        return c.req("GET", V + "/search/?" + urllib.parse.urlencode({"q": q}))

    s, b, _ = sosl("+14155550100")
    recs = b["searchRecords"] if s == 200 else []
    check(s == 200 and len(recs) == 1 and recs[0]["attributes"]["type"] == "Contact"
          and recs[0]["Name"] == "Jane Doe" and recs[0]["attributes"]["url"].startswith(V + "/sobjects/Contact/"),
          "SOSL +14155550100 -> exactly one Contact")
    s, b, _ = sosl("4155550111")
    check(s == 200 and sorted(x["attributes"]["type"] for x in b["searchRecords"]) == ["Account", "Contact"],
          "SOSL 4155550111 -> two records (Contact + Account)")
    s, b, _ = sosl("+14155550199")
    check(s == 200 and b == {"searchRecords": []}, "SOSL +14155550199 -> none")
    s, b, _ = sosl("(650) 555-0123", returning="Lead(Id)")
    check(s == 200 and len(b["searchRecords"]) == 1 and set(b["searchRecords"][0]) == {"attributes", "Id"},
          "SOSL returns only the requested fields")
    s, b, _ = c.req("GET", V + "/search/?q=" + urllib.parse.quote("FIND 4155550100 RETURNING Contact"))
    check(s == 400 and b[0]["errorCode"] == "MALFORMED_SEARCH", "malformed SOSL -> 400 MALFORMED_SEARCH")
    s, b, _ = sosl("4155550100", returning="Widget__c(Id)")
    check(s == 400 and b[0]["errorCode"] == "INVALID_TYPE", "SOSL unknown object -> INVALID_TYPE")

    # ---- SOQL -------------------------------------------------------------------
    q = "SELECT Id FROM User WHERE Finesse_Agent_Id__c = '1001'"
    s, b, _ = c.req("GET", V + "/query/?" + urllib.parse.urlencode({"q": q}))
    check(s == 200 and b["totalSize"] == 1 and b["done"] is True and b["records"][0]["Id"] == agent_uid
          and b["records"][0]["attributes"]["type"] == "User", "SOQL User by Finesse_Agent_Id__c")
    s, b, _ = c.req("GET", V + "/query/?" + urllib.parse.urlencode(
        {"q": "SELECT Id FROM User WHERE Finesse_Agent_Id__c = '9999'"}))
    check(s == 200 and b["totalSize"] == 0 and b["records"] == [], "SOQL no match -> totalSize 0")
    s, b, _ = c.req("GET", V + "/query/?" + urllib.parse.urlencode(
        {"q": "SELECT Id FROM User WHERE Name LIKE 'A%' ORDER BY Name"}))
    check(s == 400 and b[0]["errorCode"] == "MALFORMED_QUERY", "other SOQL -> 400 MALFORMED_QUERY")

    # ---- faults -------------------------------------------------------------------
    sf.fault(status=503, for_s=30)
    s, b, _ = c.req("PATCH", V + "/sobjects/Task/Finesse_Call_Id__c/dlg-f", {"Subject": "x"})
    check(s == 503 and b[0]["errorCode"] == "SERVER_UNAVAILABLE", "fault 503 -> Salesforce error array")
    s, _ = sf.mint_token()
    check(s == 200, "a REST fault leaves the token endpoint alone")
    sf.clear_faults()
    sf.fault(status=403, error_code="REQUEST_LIMIT_EXCEEDED", count=1)
    s, b, _ = c.req("PATCH", V + "/sobjects/Task/Finesse_Call_Id__c/dlg-f", {"Subject": "x"})
    check(s == 403 and b == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
          "fault 403 REQUEST_LIMIT_EXCEEDED")
    s, b, _ = c.req("PATCH", V + "/sobjects/Task/Finesse_Call_Id__c/dlg-f", {"Subject": "x"})
    check(s == 201, "count=1 fault served once, then the upsert works")
    sf.fault(status=500, path_contains="/search/", count=1)
    s, _, _ = c.req("PATCH", V + "/sobjects/Task/Finesse_Call_Id__c/dlg-f", {"Subject": "y"})
    s2, b2, _ = sosl("4155550100")
    check(s == 200 and s2 == 500 and b2[0]["errorCode"] == "UNKNOWN_EXCEPTION", "path_contains filters faults")
    sf.fault(status=503, path_contains="/services/oauth2/token", count=1)
    s, b = sf.mint_token()
    check(s == 503 and b.get("error") == "unknown_error", "token endpoint fault (OAuth error body)")
    sf.fault(delay_ms=600, count=1)
    t0 = time.monotonic()
    s, _, _ = c.req("GET", V + "/sobjects/Task/" + task_id)
    check(s == 200 and time.monotonic() - t0 >= 0.55, "delay_ms fault delays, then answers")
    r = sf.fault(expire_tokens=True)
    s, b, _ = c.req("GET", V + "/sobjects/Task/" + task_id)
    check(r["expired"] >= 1 and s == 401 and b[0]["errorCode"] == "INVALID_SESSION_ID",
          "expire_tokens -> old token 401 INVALID_SESSION_ID")
    s, tok = sf.mint_token()
    c.token = tok["access_token"]
    s, b, _ = c.req("GET", V + "/sobjects/Task/" + task_id)
    check(s == 200, "re-minted token works")
    st = sf.stats()
    check(st["upserts"]["created"] >= 2 and st["upserts"]["updated"] >= 2 and st["upserts"]["multiple"] == 1
          and st["faults_served"] >= 5 and st["tokens_minted"] >= 4 and st["requests"].get("upsert", 0) > 0,
          "/sim/stats: %s" % json.dumps(st)[:300])
    reqs = sf.requests()
    check(any(x["status"] == 300 and x["kind"] == "upsert" for x in reqs), "/sim/requests records status per request")

    # ---- host page + stand-in -------------------------------------------------------
    softphone = "http://127.0.0.1:9/softphone/?lang=en#top"
    url = sf.host_page_url(softphone, tab="t1")
    s, h, page = stack.http("GET", url)
    page = page.decode()
    exp_q = urllib.parse.urlencode({"sfdcIFrameOrigin": sf.ui_url})
    check(s == 200 and exp_q in page and "sfdcIFrameHost=web" in page and "mode=Lightning" in page
          and "/softphone/?lang=en&sfdcIFrameOrigin=" in page and "#top" in page,
          "host page frames the softphone with sfdcIFrameOrigin/sfdcIFrameHost/mode (own query kept)")
    check('title="Softphone"' in page and 'id="softphone"' in page,
          "host page has the softphone iframe")
    s, h, js = stack.http("GET", sf.ui_url + "/support/api/60.0/lightning/opencti_min.js")
    js = js.decode()
    check(s == 200 and "javascript" in h["content-type"] and "API_VERSION = 60;" in js
          and "Failed to initialize Open CTI" in js, "opencti_min.js served (version from the URL)")
    s, _, _ = stack.http("GET", sf.ui_url + "/support/api/45.0/lightning/opencti_min.js")
    check(s == 200, "any API version is served")
    node = shutil.which("node")
    if node:
        script = page.split("<script>")[1].split("</script>")[0]
        tmpjs = os.path.join(sf.dir, "host-inline.js")
        with open(tmpjs, "w") as f:
            f.write(script)
        r = subprocess.run([node, "--check", tmpjs], capture_output=True, text=True)
        check(r.returncode == 0, "host page script parses (node --check) %s" % r.stderr[:200])
        node_tests(node, sf, js)
    else:
        print("skip node-based stand-in tests (no node)")

    # ---- container side (what the host page asks sf-sim), without a browser ----------
    sf.clear_opencti()
    frame_origin = "http://127.0.0.1:9"

    def cti(method, args, tab="t1", **kw):
        body = dict(kind="call", tab=tab, method=method, callId=1, args=args, isCallbackRegistered=True,
                    apiVersion=60, frame_origin=frame_origin, **kw)
        return stack.json_body("POST", sf.ui_url + "/sim/opencti", body=body)[1]

    r = cti("screenPop", {"params": {"recordId": jane}})
    check(r["response"]["success"] is False and r["response"]["errors"][0]["code"] == "INVALID_PARAM"
          and "parameter type" in r["response"]["errors"][0]["description"]
          and "UNDEFINED" in r["response"]["errors"][0]["description"],
          "screenPop without type -> INVALID_PARAM: %s" % r["response"]["errors"][0]["description"])
    r = cti("searchAndScreenPop", {"searchParams": "+14155550100"})
    check(r["response"]["errors"][0]["code"] == "INVALID_PARAM", "searchAndScreenPop without callType -> INVALID_PARAM")
    r = cti("setSoftphonePanelVisibility", {"visible": "yes"})
    check(r["response"]["errors"][0]["code"] == "INVALID_PARAM", "setSoftphonePanelVisibility visible:'yes' -> INVALID_PARAM")
    r = cti("searchAndScreenPop", {"searchParams": "+14155550100", "callType": "inbound"}, tab="t2")
    rv = r["response"]["returnValue"]
    check(r["response"]["success"] and list(rv) == [jane] and rv[jane]["Name"] == "Jane Doe",
          "searchAndScreenPop single match -> map keyed by Id")
    check(sf.ui_state("t2")["view"]["recordId"] == jane, "... and pops the record in that tab only")
    r = cti("searchAndScreenPop", {"searchParams": "4155550111", "callType": "inbound", "deferred": True})
    rv = r["response"]["returnValue"]
    check(len([k for k in rv if k != "SCREEN_POP_DATA"]) == 2 and rv["SCREEN_POP_DATA"]["type"] == "search",
          "deferred multi match -> SCREEN_POP_DATA (search), no pop")
    r = cti("searchAndScreenPop", {"searchParams": "+14155550199", "callType": "inbound",
                                   "defaultFieldValues": {"Phone": "+14155550199"}})
    check(r["response"]["returnValue"] == {} and r["response"]["success"], "no match -> empty map")
    check(sf.ui_state("t1")["view"]["modal"]["entityName"] == "Contact", "no match pops NEW_RECORD_MODAL Contact (layout)")
    sf.view(recordId=accounts["Acme Corporation"]["Id"], tab="t1")
    r = cti("getAppViewInfo", {})
    check(r["response"]["returnValue"] == {"url": "%s/lightning/r/Account/%s/view" % (sf.ui_url, accounts["Acme Corporation"]["Id"]),
                                           "recordId": accounts["Acme Corporation"]["Id"],
                                           "recordName": "Acme Corporation", "objectType": "Account"},
          "getAppViewInfo returns the record set by /sim/view")
    s, polled = stack.json_body("GET", sf.ui_url + "/sim/ui/poll?tab=t1&since=0&wait=0")
    check(any(cm["type"] == "view" and cm["source"] == "control" for cm in polled["commands"]),
          "/sim/ui/poll hands view changes to the host page")
    r = cti("saveLog", {"object": {"entityApiName": "Task", "Subject": "browser log", "CallType": "Inbound"}})
    check(r["response"]["success"] and r["response"]["returnValue"].startswith("00T")
          and any(t["source"] == "saveLog" for t in sf.tasks()), "saveLog creates a Task (source=saveLog)")
    r = cti("getSoftphoneLayout", {})
    check("Inbound" in r["response"]["returnValue"], "getSoftphoneLayout")
    r = cti("getCallCenterSettings", {})
    check(r["response"]["returnValue"]["/reqGeneralInfo/reqAdapterUrl"] == softphone, "getCallCenterSettings (adapter URL of the tab)")
    calls = sf.opencti_calls(tab="t2")
    check(len(calls) == 1 and calls[0]["method"] == "searchAndScreenPop" and calls[0]["pop"]["type"] == "sobject"
          and calls[0]["frame_origin"] == frame_origin and calls[0]["args"]["callType"] == "inbound",
          "/sim/opencti?tab=t2 shows which tab popped")
    # CORS preflight + beacon (no container)
    s, h, _ = stack.http("OPTIONS", sf.ui_url + "/sim/opencti/beacon",
                         {"Origin": frame_origin, "Access-Control-Request-Method": "POST"})
    check(s == 204 and h.get("access-control-allow-origin") == frame_origin, "CORS preflight answered")
    s, _, _ = stack.http("POST", sf.ui_url + "/sim/opencti/beacon", {"Origin": frame_origin, "Content-Type": "text/plain"},
                         json.dumps({"method": "enableClickToDial", "args": {}}))
    last = sf.opencti_calls()[-1]
    check(s == 204 and last["no_container"] and last["errors"][0]["code"] == "SOFTPHONE_CONTAINER_ERROR"
          and last["frame_origin"] == frame_origin, "beacon from a frame without container recorded")

    # ---- browser (optional) ---------------------------------------------------------
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if chrome and "--no-browser" not in sys.argv:
        browser_tests(chrome, sf)
    else:
        print("skip browser part (no Chromium)")

    # ---- throughput ---------------------------------------------------------------
    n_threads = 4
    per = max(1, bench // n_threads)
    errors = []

    def worker(k):
        cl = Client(sf.api_url, c.token)
        for i in range(per):
            s, _, _ = cl.req("PATCH", V + "/sobjects/Task/Finesse_Call_Id__c/bench-%d-%d" % (k, i % 50),
                             {"Subject": "bench", "CallType": "Inbound", "CallDurationInSeconds": i})
            if s not in (200, 201):
                errors.append(s)
    t0 = time.monotonic()
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    dt = time.monotonic() - t0
    rate = per * n_threads / dt
    check(not errors and rate >= 200, "throughput: %d upserts in %.2f s = %.0f/s (4 keep-alive clients)"
          % (per * n_threads, dt, rate))

    sf.stop()
    print("\n%d failure(s)" % len(FAILS) if FAILS else "\nall ok")
    if FAILS:
        stack.mark_failed()
    return 1 if FAILS else 0


NODE_TEST = r"""
const vm = require('vm');
const src = require('fs').readFileSync(process.argv[2], 'utf8');
const UI = process.argv[3];
const out = [];
function ok(c, what) { out.push([!!c, what]); }
function ctx(search, withParent) {
  const posted = [], beacons = [], handlers = [];
  const win = { addEventListener: (t, f) => { if (t === 'message') handlers.push(f); } };
  win.parent = withParent ? { postMessage: (m, o) => posted.push([m, o]) } : win;
  const c = { window: win, location: { search, protocol: 'http:', href: 'http://127.0.0.1:9/softphone/' + search },
    document: { currentScript: { src: UI + '/support/api/60.0/lightning/opencti_min.js' } },
    navigator: { sendBeacon: (u, b) => { beacons.push(u); return true; } },
    Blob: function (parts) { this.parts = parts; }, URL, JSON, setTimeout, console };
  c.parent = win.parent;
  vm.createContext(c);
  return { c, win, posted, beacons, handlers,
    deliver: (data, origin) => handlers.forEach(h => h({ data, origin })) };
}
// 1. no Salesforce parameters -> throws the real library's string
let e1 = null; const x = ctx('?lang=en', true);
try { vm.runInContext(src, x.c); } catch (e) { e1 = e; }
ok(typeof e1 === 'string' && e1.startsWith('Failed to initialize Open CTI'), 'stand-in refuses to initialise without sfdcIFrameOrigin/mode');
ok(x.win.sforce === undefined, 'sforce.opencti not defined after a failed init');
ok(x.beacons.length === 1 && x.beacons[0] === UI + '/sim/opencti/beacon', 'failed init reported by beacon');
// 2. with parameters
const q = '?lang=en&sfdcIFrameOrigin=' + encodeURIComponent(UI) + '&sfdcIFrameHost=web&mode=Lightning';
const y = ctx(q, true);
vm.runInContext(src, y.c);
const o = y.win.sforce && y.win.sforce.opencti;
const methods = ['notifyInitializationComplete','enableClickToDial','disableClickToDial','onClickToDial','onNavigationChange','screenPop','searchAndScreenPop','saveLog','refreshView','getAppViewInfo','setSoftphonePanelVisibility','isSoftphonePanelVisible','setSoftphoneItemIcon','setSoftphoneItemLabel','getCallCenterSettings','getSoftphoneLayout'];
ok(o && methods.every(m => typeof o[m] === 'function'), 'all sforce.opencti methods defined');
ok(o.SCREENPOP_TYPE.NEW_RECORD_MODAL === 'newRecord' && o.SCREENPOP_TYPE.SOBJECT === 'sobject' && o.SCREENPOP_TYPE.FLOW === 'flow' && o.CALL_TYPE.INBOUND === 'inbound', 'SCREENPOP_TYPE / CALL_TYPE constants');
ok(y.posted.length === 1 && y.posted[0][0].methodName === '__simFrameInit' && y.posted[0][1] === UI, 'init announces itself to the parent (targetOrigin = sfdcIFrameOrigin)');
let got = null, sync = true;
o.screenPop({ type: o.SCREENPOP_TYPE.SOBJECT, params: { recordId: '003' }, callback: r => { got = r; ok(!sync, 'callback is asynchronous'); } });
sync = false;
const m = y.posted[1][0];
ok(m.methodName === 'screenPop' && m.apiType === 'opencti' && m.apiVersion === 60 && m.isCallbackRegistered === true && m.args.type === 'sobject' && m.args.callback === undefined && !('callback' in m.args), 'call posted without the callback: ' + JSON.stringify(m));
y.deliver({ apiVersion: 60, apiType: 'opencti', methodName: 'screenPop', callId: m.callId, response: { success: true, returnValue: null, errors: null } }, 'http://evil.example');
ok(got === null, 'responses from another origin are ignored');
setTimeout(() => {
  y.deliver({ apiVersion: 60, apiType: 'opencti', methodName: 'screenPop', callId: m.callId, response: { success: true, returnValue: null, errors: null } }, UI);
  ok(got && got.success === true, 'callback gets the response envelope');
  const events = [];
  o.onClickToDial({ listener: p => events.push(p) });
  const reg = y.posted[y.posted.length - 1][0];
  ok(reg.isListenerRegistered && reg.methodName === 'onClickToDial', 'listener registration posted');
  y.deliver({ apiVersion: 60, apiType: 'opencti', methodName: 'onClickToDial', callId: null, response: { number: '+14155550100', recordId: '003x' } }, UI);
  ok(events.length === 1 && events[0].number === '+14155550100', 'onClickToDial payload reaches the listener');
  let t1 = null; try { o.getAppViewInfo({ x: 1 }); } catch (e) { t1 = e.message; }
  ok(t1 === 'Missing the required argument `callback`!', 'getter without callback throws like the real library');
  let t2 = null; try { o.onNavigationChange({ x: 1 }); } catch (e) { t2 = e.message; }
  ok(t2 === 'Missing the required argument `listener`!', 'listener missing throws');
  let t3 = null; try { o.screenPop(); } catch (e) { t3 = e.message; }
  ok(t3 && t3.startsWith('Must pass in only one object'), 'no argument object throws');
  o.enableClickToDial();
  ok(y.posted[y.posted.length - 1][0].methodName === 'enableClickToDial', 'optional-arg methods work without arguments');
  o.saveLog({ value: { entityApiName: 'Task', Subject: 'x' } });
  ok(y.posted[y.posted.length - 1][0].args.object.Subject === 'x', 'saveLog sends {object: value}');
  // 3. no parent container -> beacon, no callback
  const z = ctx(q, false);
  vm.runInContext(src, z.c);
  z.win.sforce.opencti.enableClickToDial({ callback: () => ok(false, 'no callback without container') });
  ok(z.beacons.length === 1 && z.beacons[0] === UI + '/sim/opencti/beacon', 'without a container the call is beaconed to sf-sim');
  console.log(JSON.stringify(out));
}, 5);
"""


SOFTPHONE_HTML = b"""<!DOCTYPE html><html><head><title>test softphone</title></head><body><p>test softphone</p>
<script>
var q = new URLSearchParams(location.search);
var s = document.createElement('script');
s.src = q.get('sfdcIFrameOrigin') + '/support/api/60.0/lightning/opencti_min.js';
s.onload = function () {
  var o = sforce.opencti;
  function label(x) { o.setSoftphoneItemLabel({ label: x }); }
  o.notifyInitializationComplete();
  o.onClickToDial({ listener: function (p) { label('dial:' + p.number + ':' + (p.recordId || '')); } });
  o.onNavigationChange({ listener: function (p) { label('nav:' + (p.recordId || p.url)); } });
  o.enableClickToDial({ callback: function (r) { label('c2d:' + r.success); } });
  o.getAppViewInfo({ callback: function (r) { label('view:' + r.returnValue.url); } });
  o.screenPop({ params: {}, callback: function (r) { label('bad:' + r.errors[0].code); } });
  o.searchAndScreenPop({ searchParams: '+14155550100', callType: o.CALL_TYPE.INBOUND,
    callback: function (r) { o.setSoftphoneItemIcon({ key: 'pop:' + Object.keys(r.returnValue).join(',') }); } });
};
document.head.appendChild(s);
</script></body></html>"""


def browser_tests(chrome, sf):
    """Headless Chromium: host page (UI origin) frames a test softphone served
    from a third origin; the stand-in's calls and events must reach sf-sim."""
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(SOFTPHONE_HTML)))
            self.end_headers()
            self.wfile.write(SOFTPHONE_HTML)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    softphone = "http://127.0.0.1:%d/softphone/" % srv.server_address[1]
    sf.clear_opencti()
    procs = []   # headless Chromium opens one target per process: one per "tab"
    for tab in ("b1", "b2"):
        argv = [chrome, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--user-data-dir=" + os.path.join(sf.dir, "chromium-" + tab),
                "--remote-debugging-port=0", sf.host_page_url(softphone, tab=tab)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        def calls(tab, method=None):
            return sf.opencti_calls(tab=tab, method=method)

        def labels(tab):
            return [c["args"].get("label") for c in calls(tab, "setSoftphoneItemLabel")]
        try:
            stack.wait_until(lambda: any(str(x).startswith("view:") for x in labels("b1"))
                             and any(str(x).startswith("view:") for x in labels("b2")),
                             20, what="both tabs' softphones initialised")
        except TimeoutError:
            check(False, "browser: softphones in 2 tabs called sforce.opencti (got %s)"
                  % [(c["tab"], c["method"]) for c in sf.opencti_calls()][:20])
            return
        b1 = calls("b1")
        check(any(c["kind"] == "frame" for c in b1) and
              all(c["frame_origin"] == softphone.rstrip("/").rsplit("/", 1)[0] for c in b1 if c["kind"] == "call"),
              "browser: host page records calls with the softphone frame's origin")
        check("c2d:true" in labels("b1") and "view:%s/lightning/page/home" % sf.ui_url in labels("b1"),
              "browser: callbacks delivered (enableClickToDial, getAppViewInfo)")
        check("bad:INVALID_PARAM" in labels("b1"), "browser: screenPop without type -> INVALID_PARAM in callback")
        icons = [c["args"].get("key") for c in calls("b1", "setSoftphoneItemIcon")]
        jane = next(r["Id"] for r in sf.records("Contact") if r["Name"] == "Jane Doe")
        check("pop:" + jane in icons, "browser: searchAndScreenPop returns the single match")
        sf.click("+14155550111", recordId=jane, tab="b2")
        stack.wait_until(lambda: "dial:+14155550111:" + jane in labels("b2"), 10, what="click-to-dial in b2")
        check("dial:+14155550111:" + jane not in labels("b1"), "browser: onClickToDial delivered to tab b2 only")
        acct = next(r["Id"] for r in sf.records("Account") if r["Name"] == "Acme Corporation")
        sf.view(recordId=acct, tab="b1")
        stack.wait_until(lambda: "nav:" + acct in labels("b1"), 10, what="onNavigationChange in b1")
        check(True, "browser: /sim/view fires onNavigationChange in the tab")
        ev = sf.opencti_calls(kind="event")
        check(any(e["method"] == "onClickToDial" and e["delivered"] and e["tab"] == "b2" for e in ev),
              "browser: delivered events recorded (kind=event)")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        srv.shutdown()


def node_tests(node, sf, js):
    p_js = os.path.join(sf.dir, "opencti_min.js")
    p_test = os.path.join(sf.dir, "stand-in-test.js")
    with open(p_js, "w") as f:
        f.write(js)
    with open(p_test, "w") as f:
        f.write(NODE_TEST)
    r = subprocess.run([node, p_test, p_js, sf.ui_url], capture_output=True, text=True, timeout=30)
    try:
        results = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        check(False, "node stand-in test ran: %s %s" % (r.stdout[-300:], r.stderr[-500:]))
        return
    for good, what in results:
        check(good, "stand-in (node vm): " + what)


if __name__ == "__main__":
    sys.exit(main())
