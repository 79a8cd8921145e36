# SPDX-License-Identifier: AGPL-3.0-or-later
"""Bad input changes nothing (DESIGN.md §5): every malformed, oversized,
unauthorised or replayed request to fsc-sso gets a clear 4xx (or the
documented 5xx for IdS failures) and leaves Redis exactly as it was.

"Nothing changed" is measured on Redis itself: the full key set and every
value under the fsc: prefix are compared before and after each bad request
(the login state a good /sso/login creates is the only expected change, and
it is compared precisely too). Covered: oversized header (431) and body (413,
with Content-Length and chunked), malformed/non-object JSON, bad and unknown
handoff codes, handoff reuse, service-key failures (401 + WWW-Authenticate,
nothing leaked), unknown/malformed session ids and path tricks (404), unknown
routes (404 JSON), wrong methods (405), return_to lookalikes, login_hint and
mode validation, callback state reuse/unknown/missing code/IdS error, and IdS
faults during the code exchange (invalid_grant 400, 503 -> 502, malformed ->
502, timeout -> 504) with the state consumed and no session created. Every
reply carries the security headers, no reply body holds a secret or token,
and the daemon's log holds no secret, token, code or session id."""
import base64
import json
import os
import re
import secrets
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

PREFIX = "fsc:"
REPLIES = []        # (what, status, headers, body) of every reply fsc-sso generated
SEEN_CODES = []     # handoff codes, session ids, states, IdS codes seen in this run


# --------------------------------------------------------------------------
# Helpers

def snapshot(st):
    """{key: value} of every key under the prefix (values compared too, so a
    bumped session version or rewritten record counts as a change)."""
    keys = st.redis.cli("KEYS", PREFIX + "*") or []
    out = {}
    for k in keys:
        t = st.redis.cli("TYPE", k)
        out[k] = st.redis.cli("GET", k) if t == "string" else ("<%s>" % t)
    return out


def kinds(snap, kind):
    return sorted(k for k in snap if k.startswith(PREFIX + "sso:%s:" % kind))


def diff_text(before, after):
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return "added %r, removed %r, changed %r" % (added, removed, changed)


def assert_unchanged(st, before, what):
    after = snapshot(st)
    assert after == before, "%s: Redis must not change; %s" % (what, diff_text(before, after))


def req(st, method, path, headers=None, body=None, what=None, timeout=10.0):
    """http() against instance A; the reply is recorded for the header and
    leak checks at the end."""
    status, hdrs, data = stack.http(method, st.url + path, headers=headers, body=body,
                                    timeout=timeout)
    REPLIES.append((what or "%s %s" % (method, path[:80]), status, hdrs, data))
    return status, hdrs, data


def jerr(data):
    try:
        obj = json.loads(data)
    except ValueError:
        raise AssertionError("want a JSON error body, got %r" % data[:200])
    assert isinstance(obj, dict) and isinstance(obj.get("error"), str) and \
        isinstance(obj.get("detail"), str), "want {error, detail}, got %r" % obj
    return obj


def bearer(st, key=None):
    return {"Authorization": "Bearer %s" % (st.service_key if key is None else key)}


def raw_request(port, data, timeout=10.0, chunks=None):
    """Send raw bytes (then optional chunk list) on one TCP connection and
    read the reply until the server closes or Content-Length is satisfied.
    Returns (status, headers dict lower-case, body bytes)."""
    s = socket.create_connection((stack.HOST, port), timeout=timeout)
    try:
        s.sendall(data)
        for c in chunks or ():
            try:
                s.sendall(c)
            except (BrokenPipeError, ConnectionResetError):
                break       # the server answered early and closed: read that
        buf = b""
        while True:
            if b"\r\n\r\n" in buf:
                head, _, body = buf.partition(b"\r\n\r\n")
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m and len(body) >= int(m.group(1)):
                    break
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            buf += d
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1."), "no HTTP reply: %r" % buf[:200]
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def open_session_record(st, key, value):
    """Decrypt a sealed session record ("<version>:" 0x01|nonce|ct|tag, aad =
    key:version) with the shared seal key: the refresh token is only known to
    Redis, and the leak checks need it."""
    if isinstance(value, str):
        value = value.encode("latin-1")
    version, _, sealed = value.partition(b":")
    assert sealed[:1] == b"\x01", "sealed record version byte: %r" % sealed[:1]
    pt = AESGCM(st.secrets.seal_key).decrypt(sealed[1:13], sealed[13:],
                                            (key + ":" + version.decode()).encode())
    return json.loads(pt)


def state_of(cb):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(cb).query)["state"][0]


def with_query(cb, drop=(), add=None):
    u = urllib.parse.urlsplit(cb)
    q = [(k, v) for k, v in urllib.parse.parse_qsl(u.query) if k not in drop]
    q += list((add or {}).items())
    return urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, urllib.parse.urlencode(q), ""))


def callback(st, url, what, browser=None):
    """GET the callback from the browser that started its sign-in (its
    binding cookie): url's own (a CallbackUrl) unless one is given."""
    browser = browser or getattr(url, "browser", None)
    status, hdrs, data = stack.http("GET", str(url), timeout=15.0, cookies=browser)
    REPLIES.append((what, status, hdrs, data))
    return status, hdrs, data


def new_login(st):
    """Start a sign-in (GET /sso/login + ids-sim approve); returns the
    callback URL and checks that exactly one state key was added."""
    before = snapshot(st)
    cb = stack.start_login(st.url, st.return_to)
    after = snapshot(st)
    added = sorted(set(after) - set(before))
    assert len(added) == 1 and added[0].startswith(PREFIX + "sso:state:") and \
        all(after[k] == before[k] for k in before), \
        "a good /sso/login adds exactly one state key: %s" % diff_text(before, after)
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(cb).query)
    SEEN_CODES.extend([q["state"][0], q["code"][0]])
    return cb


def assert_page(status, hdrs, data, want, what):
    assert status == want, "%s: want %d, got %d %r" % (what, want, status, data[:200])
    assert hdrs.get("content-type", "").startswith("text/html"), \
        "%s: want an HTML page, got %r" % (what, hdrs.get("content-type"))


# --------------------------------------------------------------------------
# Service API

def setup_session(st):
    """A live session S (redeemed) and a pending handoff code H (not
    redeemed), plus what is only known inside: the session's tokens."""
    code = stack.login_flow(st.url, st.return_to)
    status, s = st.client().handoff(code)
    assert status == 200, "setup handoff: %d %r" % (status, s)
    status, t = st.client().token(s["session"])
    assert status == 200, "setup token: %d %r" % (status, t)
    pending = stack.login_flow(st.url, st.return_to)
    SEEN_CODES.extend([code, s["session"], pending])
    snap = snapshot(st)
    secrets_seen = {"access": set(), "refresh": set()}
    for k in kinds(snap, "sess"):
        rec = open_session_record(st, k, snap[k])
        secrets_seen["access"].add(rec["at"])
        secrets_seen["refresh"].add(rec["rt"])
    assert t["access_token"] in secrets_seen["access"], "sealed record holds the token we got"
    assert len(kinds(snap, "handoff")) == 1, "one pending handoff key: %r" % list(snap)
    print("ok  setup: live session %s..., pending handoff, %d keys in Redis"
          % (s["session"][:6], len(snap)))
    return {"session": s["session"], "access_token": t["access_token"], "handoff": pending,
            "secrets": secrets_seen}


def check_oversized_header(st, ctx):
    before = snapshot(st)
    status, _, data = stack.http("GET", st.url + "/v1/sessions/%s/token" % ctx["session"],
                                 headers=dict(bearer(st), **{"X-Padding": "a" * 20480}))
    assert status == 431, "20 KiB header: want 431, got %d %r" % (status, data[:200])
    assert ctx["access_token"].encode() not in data, "431 must not carry the token"
    # the same with the oversized header on a handoff that would otherwise work
    # libmicrohttpd answers 431 and closes while the client may still be
    # sending: the client then meets a reset (which can discard the 431)
    # instead of the answer; both are a refusal, and Redis must not change
    try:
        status, _, data = stack.http("POST", st.url + "/v1/handoff",
                                     headers=dict(bearer(st), **{"X-Padding": "b" * 20480}),
                                     body={"handoff": ctx["handoff"]})
    except (BrokenPipeError, ConnectionResetError):
        status = 431
    assert status == 431, "20 KiB header on POST /v1/handoff: want 431, got %d" % status
    assert_unchanged(st, before, "oversized header")
    print("ok  20 KiB header -> 431, Redis unchanged (pending handoff not consumed)")


def check_oversized_body(st, ctx):
    before = snapshot(st)
    pad = "x" * (70 * 1024)
    big = json.dumps({"handoff": ctx["handoff"], "pad": pad}).encode()
    # declared with Content-Length
    status, hdrs, data = req(st, "POST", "/v1/handoff", headers=bearer(st), body=big,
                             what="413 content-length")
    assert status == 413 and jerr(data)["error"] == "payload_too_large", \
        "70 KiB body (Content-Length): want 413 payload_too_large, got %d %r" % (status, data[:200])
    assert_unchanged(st, before, "oversized body with Content-Length")
    # a huge declared length with no body sent: refused before reading it
    head = ("POST /v1/handoff HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
            % st.service_key).encode()
    status, hdrs, data = raw_request(st.a.port, head, timeout=5.0)
    REPLIES.append(("413 declared 100 MiB", status, hdrs, data))
    assert status == 413, "declared 100 MiB body: want an early 413, got %d %r" % (status, data[:200])
    # chunked: no length known up front, the cap applies while reading
    head = ("POST /v1/handoff HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n" % st.service_key).encode()
    chunks = [b"%x\r\n%s\r\n" % (len(big[i:i + 8192]), big[i:i + 8192])
              for i in range(0, len(big), 8192)] + [b"0\r\n\r\n"]
    status, hdrs, data = raw_request(st.a.port, head, chunks=chunks)
    REPLIES.append(("413 chunked", status, hdrs, data))
    assert status == 413 and jerr(data)["error"] == "payload_too_large", \
        "70 KiB chunked body: want 413 payload_too_large, got %d %r" % (status, data[:200])
    assert_unchanged(st, before, "oversized chunked body")
    # a small chunked body is fine (the cap, not chunking, is what refuses)
    small = json.dumps({"handoff": "A" * 43}).encode()
    status, hdrs, data = raw_request(st.a.port, head, chunks=[b"%x\r\n%s\r\n0\r\n\r\n"
                                                              % (len(small), small)])
    assert status == 400 and jerr(data)["error"] == "invalid_handoff", \
        "small chunked body with an unknown code: want 400 invalid_handoff, got %d %r" \
        % (status, data[:200])
    assert_unchanged(st, before, "small chunked body")
    print("ok  >64 KiB body -> 413 (Content-Length, declared 100 MiB, chunked), Redis unchanged")


def check_bad_json(st, ctx):
    before = snapshot(st)
    h = dict(bearer(st), **{"Content-Type": "application/json"})
    H = ctx["handoff"]
    cases = [
        ("malformed JSON", '{"handoff": "%s",' % H, "invalid_json"),
        ("garbage", "handoff=%s" % H, "invalid_json"),
        ("empty body", "", "invalid_json"),
        ("array", '["%s"]' % H, "invalid_json"),
        ("string", '"%s"' % H, "invalid_json"),
        ("number", "42", "invalid_json"),
        ("null", "null", "invalid_json"),
        ("duplicate key", '{"handoff": "%s", "handoff": "%s"}' % (H, H), "invalid_json"),
        ("NUL inside", '{"handoff": "%s\\u0000"}' % H, None),
        ("missing field", "{}", "invalid_request"),
        ("other field", '{"code": "%s"}' % H, "invalid_request"),
        ("number field", '{"handoff": 42}', "invalid_request"),
        ("object field", '{"handoff": {"code": "%s"}}' % H, "invalid_request"),
        ("empty field", '{"handoff": ""}', "invalid_request"),
        ("short code", '{"handoff": "abc"}', "invalid_request"),
        ("long code", '{"handoff": "%sx"}' % H, "invalid_request"),
        ("bad chars", '{"handoff": "%s"}' % ("../" * 14 + "a"), "invalid_request"),
        ("unknown code", '{"handoff": "%s"}' % secrets.token_urlsafe(32), "invalid_handoff"),
    ]
    for what, body, want in cases:
        status, _, data = req(st, "POST", "/v1/handoff", headers=h, body=body.encode(),
                              what="handoff " + what)
        err = jerr(data)
        assert status == 400, "handoff, %s: want 400, got %d %r" % (what, status, err)
        if want:
            assert err["error"] == want, "handoff, %s: want %s, got %r" % (what, want, err)
        assert "session" not in err, "handoff, %s: no session in an error: %r" % (what, err)
        assert_unchanged(st, before, "handoff, " + what)
    print("ok  %d malformed/invalid handoff bodies -> 400 (invalid_json / invalid_request / "
          "invalid_handoff), Redis unchanged" % len(cases))


def check_service_auth(st, ctx):
    before = snapshot(st)
    key = st.service_key
    bad = [
        ("no Authorization", {}),
        ("wrong key", bearer(st, secrets.token_urlsafe(32))),
        ("key minus one char", bearer(st, key[:-1])),
        ("key plus one char", bearer(st, key + "x")),
        ("key with a NUL-ish suffix", bearer(st, key + "%00")),
        ("empty Bearer", {"Authorization": "Bearer "}),
        ("Basic with the key", {"Authorization": "Basic " +
                                base64.b64encode((":" + key).encode()).decode()}),
        ("Basic raw key", {"Authorization": "Basic " + key}),
        ("key without scheme", {"Authorization": key}),
        ("key in another header", {"X-Service-Key": key}),
    ]
    targets = [
        ("POST", "/v1/handoff", {"handoff": ctx["handoff"]}),
        ("GET", "/v1/sessions/%s/token" % ctx["session"], None),
        ("DELETE", "/v1/sessions/%s" % ctx["session"], None),
    ]
    n = 0
    for what, h in bad:
        for method, path, body in targets:
            status, hdrs, data = req(st, method, path, headers=h, body=body,
                                     what="%s %s (%s)" % (method, path[:12], what))
            err = jerr(data)
            assert status == 401 and err["error"] == "unauthorized", \
                "%s %s with %s: want 401 unauthorized, got %d %r" % (method, path, what, status, err)
            assert hdrs.get("www-authenticate", "").startswith("Bearer"), \
                "%s %s with %s: want WWW-Authenticate: Bearer, got %r" \
                % (method, path, what, hdrs.get("www-authenticate"))
            for secret in (ctx["session"], ctx["access_token"], "agent1@example.com"):
                assert secret.encode() not in data, \
                    "%s %s with %s: 401 body leaks %r: %r" % (method, path, what, secret[:8], data)
            assert set(err) <= {"error", "detail", "request_id"}, "401 body: %r" % err
            n += 1
    assert_unchanged(st, before, "unauthorised requests")
    # the session survived the unauthorised DELETEs and the code the handoffs
    status, t = st.client().token(ctx["session"])
    assert status == 200 and t["access_token"] == ctx["access_token"], \
        "session intact after unauthorised DELETEs: %d %r" % (status, t)
    assert_unchanged(st, before, "token fetch after unauthorised requests")
    print("ok  %d unauthorised requests (no/wrong/Basic key) -> 401 + WWW-Authenticate, "
          "nothing leaked, Redis unchanged" % n)


def check_handoff_once(st, ctx):
    before = snapshot(st)
    status, s = st.client().handoff(ctx["handoff"])
    assert status == 200 and s["user"] == "agent1@example.com", \
        "the pending handoff still works after all the bad requests: %d %r" % (status, s)
    SEEN_CODES.append(s["session"])
    after = snapshot(st)
    want = dict(before)
    for k in kinds(before, "handoff"):
        del want[k]
    assert after == want, "a redeemed handoff removes exactly its key: %s" % diff_text(want, after)
    status, again = st.client().handoff(ctx["handoff"])
    assert status == 400 and again["error"] == "invalid_handoff", \
        "second use of a handoff code: want 400 invalid_handoff, got %d %r" % (status, again)
    assert_unchanged(st, after, "reused handoff")
    print("ok  pending handoff redeemed once (200, its key removed), second use 400 invalid_handoff")


def check_sessions_404(st, ctx):
    before = snapshot(st)
    S = ctx["session"]
    unknown = secrets.token_urlsafe(32)
    cases = [
        ("GET", "/v1/sessions/%s/token" % unknown, "unknown_session", "unknown id"),
        ("DELETE", "/v1/sessions/%s" % unknown, "unknown_session", "unknown id"),
        ("GET", "/v1/sessions/abc/token", "unknown_session", "short id"),
        ("GET", "/v1/sessions/%sA/token" % S, "unknown_session", "long id"),
        ("GET", "/v1/sessions/%s/token" % ("!" * 43), "unknown_session", "bad chars"),
        ("GET", "/v1/sessions/%s/token" % ("." * 43), "unknown_session", "dots"),
        ("GET", "/v1/sessions//token", "unknown_session", "empty id"),
        ("GET", "/v1/sessions/", "unknown_session", "no id"),
        ("GET", "/v1/sessions/../handoff", None, "traversal"),
        ("GET", "/v1/sessions/../../etc/passwd", None, "traversal"),
        ("GET", "/v1/sessions/%2e%2e%2f%2e%2e%2fetc%2fpasswd/token", None, "encoded traversal"),
        ("GET", "/v1/sessions/..%2F..%2F..%2F..%2Fetc%2Fpasswd%00AAAAAAAAAAAA/token", None,
         "encoded traversal"),
        ("GET", "/v1/sessions/%s/../token" % S, None, "traversal after id"),
        ("GET", "/v1/sessions/%s/../../handoff" % S, None, "traversal after id"),
        ("GET", "/v1/sessions/%s" % S, "not_found", "no /token"),
        ("GET", "/v1/sessions/%s/" % S, "not_found", "trailing slash"),
        ("GET", "/v1/sessions/%s/token/" % S, "not_found", "/token/"),
        ("GET", "/v1/sessions/%s/tokenx" % S, "not_found", "/tokenx"),
        ("GET", "/v1/sessions/%s/token/../token" % S, "not_found", "/token/../token"),
        ("DELETE", "/v1/sessions/%s/token" % S, "not_found", "DELETE .../token"),
        ("DELETE", "/v1/sessions/%s/" % S, "not_found", "DELETE trailing slash"),
    ]
    for method, path, want, what in cases:
        status, _, data = req(st, method, path, headers=bearer(st))
        err = jerr(data)
        assert status == 404, "%s %s (%s): want 404, got %d %r" % (method, path, what, status, err)
        if want:
            assert err["error"] == want, "%s %s (%s): want %s, got %r" % (method, path, what, want, err)
        assert ctx["access_token"].encode() not in data, "%s %s leaks the token" % (method, path)
        assert_unchanged(st, before, "%s %s" % (method, path))
    status, t = st.client().token(S)
    assert status == 200 and t["access_token"] == ctx["access_token"], \
        "session intact after DELETE .../token and friends: %d %r" % (status, t)
    print("ok  %d unknown/malformed/traversal session paths -> 404 JSON, session intact"
          % len(cases))


def check_routes(st, ctx):
    before = snapshot(st)
    for path in ("/", "/nope", "/v1", "/v1/handoffs", "/v1/handoff/x", "/sso/login/x",
                 "/sso/../v1/handoff", "/admin", "/%00", "/v2/sessions/x/token"):
        status, hdrs, data = req(st, "GET", path, headers=bearer(st))
        err = jerr(data)
        assert status == 404 and err["error"] == "not_found", \
            "GET %s: want 404 not_found JSON, got %d %r" % (path, status, err)
        assert hdrs.get("content-type", "").startswith("application/json"), \
            "GET %s: 404 is JSON, got %r" % (path, hdrs.get("content-type"))
    for method, path, allow in (("GET", "/v1/handoff", {"POST"}), ("PUT", "/v1/handoff", {"POST"}),
                                ("DELETE", "/v1/handoff", {"POST"}),
                                ("POST", "/sso/login", {"GET"}), ("POST", "/sso/callback", {"GET"}),
                                ("PUT", "/v1/sessions/%s" % ctx["session"], {"GET", "DELETE"}),
                                ("POST", "/v1/sessions/%s/token" % ctx["session"], {"GET", "DELETE"}),
                                ("POST", "/healthz", {"GET"})):
        status, hdrs, data = req(st, method, path, headers=bearer(st), body=b"{}")
        err = jerr(data)
        assert status == 405 and err["error"] == "method_not_allowed", \
            "%s %s: want 405 method_not_allowed, got %d %r" % (method, path, status, err)
        got = {m.strip() for m in hdrs.get("allow", "").split(",") if m.strip()}
        assert got == allow, "%s %s: want Allow %r, got %r" % (method, path, allow, got)
    assert_unchanged(st, before, "unknown routes and wrong methods")
    print("ok  unknown routes -> 404 JSON not_found, wrong methods -> 405 with Allow")


# --------------------------------------------------------------------------
# /sso/login

def login_url(st, **q):
    return "/sso/login?" + urllib.parse.urlencode(q)


def check_return_to(st):
    before = snapshot(st)
    lookalikes = [
        "https://evil.test/softphone/",
        "https://connector.test.evil.test/softphone/",
        "https://connector.test@evil.test/softphone/",
        "https://evil.test@connector.test/softphone/",
        "https://connector.test:x@evil.test/softphone/",
        "https://connector.test\\@evil.test/softphone/",
        "http://connector.test/softphone/",
        "https://connector.test:8443/softphone/",
        "https://connector.test/other/",
        "https://connector.test/softphonex/",
        "https://connector.test/softphone",
        "https://connector.test/",
        "https://connector.test/softphone/../admin/",
        "https://connector.test/softphone/./../admin/",
        "https://connector.test/softphone/..",
        "https://connector.test/softphone/%2e%2e/admin/",
        # a planted handoff the softphone might read before the real one
        "https://connector.test/softphone/?handoff=planted",
        "https://connector.test/softphone/?a=1&handoff=planted#x",
        "https://connector.test/softphone/%2E%2E%2Fadmin/",
        "https://connector.test/softphone/..%2fadmin/",
        "//connector.test/softphone/",
        "/softphone/",
        "connector.test/softphone/",
        "javascript:alert(1)//https://connector.test/softphone/",
        "data:text/html,https://connector.test/softphone/",
        "https://connector.test/softphone/\r\nSet-Cookie: x=1",
        "https://connector.test/softphone/ x",
        "https://connector.test/softphone/\"><script>",
        "https://connector.test%2eevil.test/softphone/",
        "https:/connector.test/softphone/",
        "ftp://connector.test/softphone/",
        "",
        "https://connector.test/softphone/" + "a" * 4000,
    ]
    for rt in lookalikes:
        status, hdrs, data = req(st, "GET", login_url(st, return_to=rt), what="return_to %r" % rt[:60])
        assert_page(status, hdrs, data, 400, "return_to %r" % rt[:80])
        assert "location" not in hdrs, "return_to %r: no redirect, got %r" % (rt, hdrs.get("location"))
        assert b"<script" not in data and b"evil" not in data, \
            "return_to %r is not reflected into the page: %r" % (rt, data[:300])
        assert_unchanged(st, before, "return_to %r" % rt[:80])
    status, hdrs, data = req(st, "GET", "/sso/login")
    assert_page(status, hdrs, data, 400, "no return_to")
    assert_unchanged(st, before, "no return_to")
    # control: the allowed prefix with a deeper path and a query is fine,
    # and adds exactly one state key
    status, hdrs, _ = req(st, "GET", login_url(st, return_to=st.return_to + "x/?a=1"))
    assert status == 302 and hdrs["location"].startswith(st.ids.authorize_url), \
        "allowed return_to: want 302 to IdS, got %d %r" % (status, hdrs.get("location"))
    after = snapshot(st)
    added = sorted(set(after) - set(before))
    assert len(added) == 1 and added[0].startswith(PREFIX + "sso:state:"), \
        "a good login adds one state key: %s" % diff_text(before, after)
    print("ok  %d return_to lookalikes (host, userinfo @, http, port, path, ../, %%2e, scheme) -> "
          "400 HTML, no state key; the allowed one -> 302 + one state key" % len(lookalikes))


def check_login_params(st):
    before = snapshot(st)
    cases = [
        ("login_hint", "agent\x01@example.com"),
        ("login_hint", "agent1@example.com\r\nX-Injected: 1"),
        ("login_hint", "agent\x7f"),
        ("login_hint", "\x00agent"),
        ("login_hint", "\t"),
        ("login_hint", ""),
        ("login_hint", "a" * 5000),
        ("mode", "bogus"),
        ("mode", "POPUP"),
        ("mode", ""),
        ("mode", "popup "),
    ]
    for name, value in cases:
        q = {"return_to": st.return_to, name: value}
        status, hdrs, data = req(st, "GET", login_url(st, **q), what="login %s=%r" % (name, value[:20]))
        assert_page(status, hdrs, data, 400, "%s=%r" % (name, value[:40]))
        assert b"X-Injected" not in data and "x-injected" not in hdrs, "%s reflected: %r" % (name, data)
        assert_unchanged(st, before, "%s=%r" % (name, value[:40]))
    print("ok  %d bad login_hint/mode values -> 400 HTML, no state key" % len(cases))


# --------------------------------------------------------------------------
# /sso/callback

def check_callback_state(st):
    before = snapshot(st)
    base = st.url + "/sso/callback"
    for what, q in (("unknown state", {"code": "abc", "state": secrets.token_urlsafe(32)}),
                    ("malformed state", {"code": "abc", "state": "../../x"}),
                    ("long state", {"code": "abc", "state": "A" * 5000}),
                    ("no state", {"code": "abc"}),
                    ("nothing", {})):
        status, hdrs, data = callback(st, base + ("?" + urllib.parse.urlencode(q) if q else ""),
                                      "callback " + what)
        assert_page(status, hdrs, data, 400, "callback with " + what)
        assert "location" not in hdrs, "callback with %s: no redirect" % what
        assert_unchanged(st, before, "callback with " + what)
    print("ok  callback with unknown/malformed/missing state -> 400 page, Redis unchanged")


def check_callback_replay(st):
    cb = new_login(st)
    before = snapshot(st)
    status, hdrs, data = callback(st, cb, "callback first use")
    assert status == 302 and "handoff=" in hdrs.get("location", ""), \
        "first use of a callback: want 302 with handoff, got %d %r" % (status, data[:200])
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(hdrs["location"]).query)["handoff"][0]
    SEEN_CODES.append(code)
    after = snapshot(st)
    assert len(kinds(after, "sess")) == len(kinds(before, "sess")) + 1 and \
        len(kinds(after, "handoff")) == len(kinds(before, "handoff")) + 1 and \
        len(kinds(after, "state")) == len(kinds(before, "state")) - 1, \
        "first callback: +1 session, +1 handoff, -1 state; %s" % diff_text(before, after)
    status, hdrs, data = callback(st, cb, "callback replay")
    assert_page(status, hdrs, data, 400, "replayed callback")
    assert "location" not in hdrs, "replayed callback: no redirect"
    assert_unchanged(st, after, "replayed callback (no second session)")
    status, s = st.client().handoff(code)
    assert status == 200, "the first callback's handoff works: %d %r" % (status, s)
    SEEN_CODES.append(s["session"])
    print("ok  callback used once (302 + handoff, +1 session), replay -> 400, no second session")


def expect_failed_callback(st, cb, want, what, url=None):
    """The callback (or url, a variant of it) fails with `want`; its state is
    consumed, no session/handoff is created, and the real callback URL then
    gets 400."""
    before = snapshot(st)
    st_key = [k for k in kinds(before, "state")]
    status, hdrs, data = callback(st, url or cb, "callback " + what, cb.browser)
    assert_page(status, hdrs, data, want, what)
    assert "location" not in hdrs, "%s: no redirect, got %r" % (what, hdrs.get("location"))
    after = snapshot(st)
    want_snap = {k: v for k, v in before.items()}
    gone = sorted(set(before) - set(after))
    assert len(gone) == 1 and gone[0] in st_key, \
        "%s: exactly the login's state key is consumed; %s" % (what, diff_text(before, after))
    del want_snap[gone[0]]
    assert after == want_snap, "%s: nothing but the state changes; %s" % (what, diff_text(want_snap, after))
    status, hdrs, data = callback(st, cb, "retry after " + what)
    assert_page(status, hdrs, data, 400, "retry of the callback after " + what)
    assert_unchanged(st, after, "retry after " + what)
    return data


def check_callback_missing_code(st):
    cb = new_login(st)
    expect_failed_callback(st, cb, 400, "missing code", with_query(cb, drop=("code",)))
    cb = new_login(st)
    expect_failed_callback(st, cb, 400, "empty code", with_query(cb, drop=("code",), add={"code": ""}))
    cb = new_login(st)
    expect_failed_callback(st, cb, 400, "code with control chars",
                           with_query(cb, drop=("code",), add={"code": "ab\x01cd"}))
    print("ok  callback without a usable code -> 400, state consumed, retry 400, no session")


def check_callback_ids_error(st):
    cb = new_login(st)
    url = with_query(cb, drop=("code",), add={"error": "access_denied",
                                              "error_description": "<script>alert(1)</script>"})
    data = expect_failed_callback(st, cb, 403, "error=access_denied", url)
    assert b"<script>" not in data, "IdS error text is not reflected: %r" % data[:300]
    print("ok  callback error=access_denied -> 403, state consumed, retry 400, no session")


def check_callback_ids_faults(st):
    cases = [
        ({"error": "invalid_grant", "count": 1}, 400, "IdS invalid_grant"),
        ({"status": 503, "count": 1}, 502, "IdS 503"),
        ({"status": 500, "count": 1}, 502, "IdS 500"),
        ({"status": 401, "count": 1}, 502, "IdS 401 invalid_client"),
        ({"malformed": True, "count": 1}, 502, "IdS malformed JSON"),
        ({"delay_ms": 4000, "count": 1}, 504, "IdS slower than timeout_ms"),
    ]
    for fault, want, what in cases:
        st.ids.clear_faults()
        cb = new_login(st)
        served = st.ids.stats()["faults_served"]
        st.ids.fault(**fault)
        t0 = time.monotonic()
        expect_failed_callback(st, cb, want, what)
        took = time.monotonic() - t0
        assert st.ids.stats()["faults_served"] == served + 1, \
            "%s: the fault was served exactly once (the retry never reached IdS)" % what
        if "delay_ms" in fault:
            assert took < 3.5, "%s: the 504 comes after timeout_ms=1000, took %.1f s" % (what, took)
        print("ok  %s during the callback -> %d page, state consumed, retry 400, no session"
              % (what, want))
    st.ids.clear_faults()
    # ids-sim saw the client go away after the delay and redeemed nothing
    stack.wait_until(lambda: st.ids.stats()["aborted_after_delay"] >= 1, 8.0,
                     what="ids-sim counting the abandoned delayed request")
    code = stack.login_flow(st.url, st.return_to)
    status, s = st.client().handoff(code)
    assert status == 200, "sign-in works again once the faults are gone: %d %r" % (status, s)
    SEEN_CODES.extend([code, s["session"]])
    print("ok  after the faults: ids-sim aborted the late request, sign-in works again")


# --------------------------------------------------------------------------
# Headers, bodies and logs

def check_reply_hygiene(st, ctx):
    secrets_list = [("service key", st.service_key), ("client secret", st.secrets.client_secret)]
    for tok in ctx["secrets"]["access"]:
        secrets_list.append(("access token", tok))
    for tok in ctx["secrets"]["refresh"]:
        secrets_list.append(("refresh token", tok))
    n = 0
    for what, status, hdrs, data in REPLIES:
        for h, want in (("x-content-type-options", "nosniff"), ("cache-control", "no-store")):
            assert hdrs.get(h) == want, "%s (%d): want %s: %s, got %r" % (what, status, h, want, hdrs.get(h))
        assert hdrs.get("content-security-policy"), "%s (%d): CSP header missing" % (what, status)
        assert "frame-ancestors 'none'" in hdrs["content-security-policy"], \
            "%s: CSP forbids framing: %r" % (what, hdrs["content-security-policy"])
        assert hdrs.get("x-request-id"), "%s: X-Request-Id missing" % what
        text = data + json.dumps(hdrs).encode()
        for name, secret in secrets_list:
            assert secret.encode() not in text, "%s (%d): reply carries the %s" % (what, status, name)
        n += 1
    print("ok  %d error replies: nosniff, no-store, CSP, X-Request-Id; none carries a key or token" % n)


def check_logs(st, ctx):
    text = st.a.log_text()
    forbidden = [("service key", st.service_key), ("client secret", st.secrets.client_secret)]
    forbidden += [("access token", t) for t in ctx["secrets"]["access"]]
    forbidden += [("refresh token", t) for t in ctx["secrets"]["refresh"]]
    forbidden += [("code/session/state", c) for c in SEEN_CODES]
    for name, secret in forbidden:
        assert secret not in text, "fsc-sso log contains a %s (%s...)" % (name, secret[:6])
    # a JWT's signature part alone would also be a leak
    for t in ctx["secrets"]["access"]:
        assert t.split(".")[-1] not in text, "fsc-sso log holds an access token signature"
    fps = re.findall(r"\b(session|code)=(\S+)", text)
    assert fps, "the log names sessions by fingerprint (login_ok/handoff_ok lines)"
    for k, v in fps:
        assert re.fullmatch(r"[0-9a-f]{12}", v), "log %s=%r: want a 12-hex fingerprint" % (k, v)
    print("ok  fsc-sso log (%d lines): no key, secret, token, code, state or session id; "
          "%d fingerprints all 12-hex" % (text.count("\n"), len(fps)))


def main():
    with stack.Stack(haproxy=False, sso_extra={"ids": {"timeout_ms": "1000"},
                                               "session": {"lock_ttl_ms": "3000"}}) as st:
        ctx = setup_session(st)
        check_oversized_header(st, ctx)
        check_oversized_body(st, ctx)
        check_bad_json(st, ctx)
        check_service_auth(st, ctx)
        check_handoff_once(st, ctx)
        check_sessions_404(st, ctx)
        check_routes(st, ctx)
        check_return_to(st)
        check_login_params(st)
        check_callback_state(st)
        check_callback_replay(st)
        check_callback_missing_code(st)
        check_callback_ids_error(st)
        check_callback_ids_faults(st)
        check_reply_hygiene(st, ctx)
        assert st.a.alive(), "fsc-sso A survived all of it"
        check_logs(st, ctx)
    print("PASS it_bad_input")


if __name__ == "__main__":
    main()
