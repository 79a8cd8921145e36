# SPDX-License-Identifier: AGPL-3.0-or-later
"""Self-test for ids_sim.py: starts it on a free port and exercises the
OAuth2 endpoints and the /sim control API. Run with /usr/bin/python3;
exits non-zero on failure. Add --bench N to time N code exchanges."""

import base64
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "ids_sim.py")
CID, SECRET = "fsc-connector", "s3cr:et+/x"
REDIRECT = "https://sso.example.com/sso/callback"
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def pkce():
    v = b64url(secrets.token_bytes(32))
    return v, b64url(hashlib.sha256(v.encode()).digest())


class Sim:
    def __init__(self, tmp, *extra, tls=None):
        self.tmp = tmp
        secret_file = os.path.join(tmp, "secret")
        with open(secret_file, "w") as f:
            f.write(SECRET + "\n")
        self.port_file = os.path.join(tmp, "port%d" % id(self))
        self.pub_file = os.path.join(tmp, "pub%d.pem" % id(self))
        args = ["/usr/bin/python3", SIM, "--port", "0", "--port-file", self.port_file,
                "--client-id", CID, "--client-secret-file", secret_file,
                "--redirect-uri", REDIRECT, "--redirect-uri", "http://127.0.0.1:1/cb",
                "--public-key-out", self.pub_file] + list(extra)
        self.tls = tls
        if tls:
            args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("ids-sim listening port="), line
        self.port = int(line.strip().split("=")[1])
        with open(self.port_file) as f:
            assert int(f.read()) == self.port
        self.conn = self.new_conn()

    def new_conn(self):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            return http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def req(self, method, path, body=None, headers=None, conn=None):
        c = conn or self.conn
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def jreq(self, method, path, obj=None):
        st, _, data = self.req(method, path, json.dumps(obj) if obj is not None else None,
                               {"Content-Type": "application/json"})
        return st, json.loads(data)

    def authorize(self, challenge=None, state="s t&=/é", **extra):
        q = {"client_id": CID, "redirect_uri": REDIRECT, "response_type": "code", "state": state}
        if challenge:
            q.update(code_challenge=challenge, code_challenge_method="S256")
        q.update(extra)
        st, h, _ = self.req("GET", "/ids/v1/oauth/authorize?" + urllib.parse.urlencode(q))
        assert st == 302, st
        loc = urllib.parse.urlsplit(h["location"])
        return loc, dict(urllib.parse.parse_qsl(loc.query))

    def token(self, form, basic=True, secret=SECRET, conn=None):
        hdr = {"Content-Type": "application/x-www-form-urlencoded"}
        if basic:
            cred = urllib.parse.quote_plus(CID) + ":" + urllib.parse.quote_plus(secret)
            hdr["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        st, h, data = self.req("POST", "/ids/v1/oauth/token", urllib.parse.urlencode(form), hdr, conn)
        try:
            return st, h, json.loads(data)
        except ValueError:
            return st, h, data

    def code(self, verifier=None):
        challenge = None
        if verifier:
            challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        return self.authorize(challenge)[1]["code"]

    def exchange(self, code, verifier=None, **kw):
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        if verifier:
            form["code_verifier"] = verifier
        return self.token(form, **kw)

    def stats(self):
        return self.jreq("GET", "/sim/stats")[1]

    def key(self, path="/ids/v1/keys/token/public", auth=True):
        """GET a key endpoint with the client credentials (IdS asks for them)."""
        hdr = {}
        if auth:
            cred = CID + ":" + SECRET
            hdr["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        return self.req("GET", path, headers=hdr)

    def stop(self):
        self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)


def test_flow(sim):
    v, c = pkce()
    loc, q = sim.authorize(c, login_hint="bob@example.com")
    check(loc.scheme + "://" + loc.netloc + loc.path == REDIRECT, "redirects to redirect_uri")
    check(q.get("state") == "s t&=/é", "state preserved exactly")
    st, h, tok = sim.exchange(q["code"], v)
    check(st == 200, "code exchange with PKCE -> 200")
    check(h.get("content-type") == "application/json;charset=UTF-8", "token content type")
    check(h.get("cache-control") == "no-store", "Cache-Control: no-store")
    check(tok.get("token_type") == "Bearer" and tok.get("scope") == "cc_onprem_apps"
          and tok.get("expires_in") == 3600 and tok.get("refresh_token_expires_in") == 36000
          and tok.get("refresh_token"), "token response fields")

    st, _, pem = sim.key()
    check(st == 200 and pem.startswith(b"-----BEGIN PUBLIC KEY-----"), "public key PEM served")
    st, _, _ = sim.key(auth=False)
    check(st == 401, "public key without client credentials -> 401")
    with open(sim.pub_file, "rb") as f:
        check(f.read() == pem, "--public-key-out matches served key")
    check(jwt.get_unverified_header(tok["access_token"]) ==
          {"alg": "RS256", "typ": "JWT", "kid": "ids-sim-1"}, "JWT header")
    claims = jwt.decode(tok["access_token"], pem, algorithms=["RS256"], audience=CID, issuer="ids.sim")
    check(claims["sub"] == claims["user_id"] == claims["upn"] == "bob@example.com"
          and claims["realm"] == "sim" and claims["scope"] == ["cc_onprem_apps"]
          and claims["exp"] - claims["iat"] == 3600 and claims.get("jti"), "JWT verifies, claims")

    st, _, err = sim.exchange(q["code"], v)
    check(st == 400 and err.get("error") == "invalid_grant", "code reuse -> invalid_grant")

    code = sim.code(pkce()[0])
    st, _, err = sim.exchange(code, pkce()[0])
    check(st == 400 and err.get("error") == "invalid_grant", "wrong code_verifier -> invalid_grant")
    st, _, err = sim.exchange(code)
    check(st == 400 and err.get("error") == "invalid_grant", "missing code_verifier -> invalid_grant")

    st, _, r1 = sim.token({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
    check(st == 200 and r1["refresh_token"] != tok["refresh_token"]
          and r1["access_token"] != tok["access_token"], "refresh rotates both tokens")
    st, _, err = sim.token({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
    check(st == 400 and err.get("error") == "invalid_grant", "old refresh token reuse -> invalid_grant")
    s = sim.stats()
    check(s["reuse_attempts"] == 2, "reuse_attempts counts code reuse + refresh reuse (%d)" % s["reuse_attempts"])
    st, _, r2 = sim.token({"grant_type": "refresh_token", "refresh_token": r1["refresh_token"],
                           "client_id": CID, "client_secret": SECRET}, basic=False)
    check(st == 200, "client_secret_post accepted")

    _, info = sim.jreq("GET", "/sim/tokens/introspect?token=" + r2["access_token"])
    check(info.get("active") is True and info.get("user") == "bob@example.com", "introspect active")
    st, _, _ = sim.req("POST", "/ids/v1/oauth/revoke", urllib.parse.urlencode({"token": r2["refresh_token"]}),
                       {"Authorization": "Basic " + base64.b64encode(
                           (CID + ":" + urllib.parse.quote_plus(SECRET)).encode()).decode(),
                        "Content-Type": "application/x-www-form-urlencoded"})
    check(st == 200, "revoke -> 200")
    st, _, err = sim.token({"grant_type": "refresh_token", "refresh_token": r2["refresh_token"]})
    check(st == 400 and err.get("error") == "invalid_grant", "revoked refresh token -> invalid_grant")

    s = sim.stats()
    check(s["grants"] == {"authorization_code": 1, "refresh_token": 2}, "stats grants %s" % s["grants"])
    check(s["reuse_attempts"] == 2 and s["invalid_grant"] == 5 and s["revocations"] == 1
          and s["active_refresh_tokens"] == 0 and s["token_requests"] == 8, "stats counters %s" % s)


def test_refresh_reuse_count(sim):
    sim.jreq("POST", "/sim/reset")
    v = pkce()[0]
    _, _, tok = sim.exchange(sim.code(v), v)
    sim.token({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
    st, _, err = sim.token({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
    s = sim.stats()
    check(st == 400 and err["error"] == "invalid_grant" and s["reuse_attempts"] == 1,
          "refresh reuse after reset: reuse_attempts == 1")
    check(s["active_refresh_tokens"] == 1, "one active refresh token")


def test_errors(sim):
    v = pkce()[0]
    code = sim.code(v)
    st, h, err = sim.exchange(code, v, secret="wrong")
    check(st == 401 and err["error"] == "invalid_client"
          and h.get("www-authenticate") == 'Basic realm="ids"', "bad secret -> 401 invalid_client")
    c2 = sim.code(v)
    raw = {"Content-Type": "application/x-www-form-urlencoded",
           "Authorization": "Basic " + base64.b64encode((CID + ":" + SECRET).encode()).decode()}
    st, _, _ = sim.req("POST", "/ids/v1/oauth/token", urllib.parse.urlencode(
        {"grant_type": "authorization_code", "code": c2, "redirect_uri": REDIRECT, "code_verifier": v}), raw)
    check(st == 200, "raw (libcurl-style, not form-encoded) Basic credentials accepted")
    st, _, err = sim.exchange(code, v, basic=False)
    check(st == 401 and err["error"] == "invalid_client", "no client auth -> 401")
    st, _, err = sim.token({"grant_type": "password"})
    check(st == 400 and err["error"] == "unsupported_grant_type", "unsupported_grant_type")
    hdr = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic " +
           base64.b64encode(b"fsc-connector:" + urllib.parse.quote_plus(SECRET).encode()).decode()}
    st, _, data = sim.req("POST", "/ids/v1/oauth/token", "grant_type=a&&&=&%ff", hdr)
    check(st == 400 and json.loads(data)["error"] == "invalid_request", "malformed body -> invalid_request")
    st, _, err = sim.exchange(code, v)
    check(st == 200, "code still valid after failed attempts")
    c = sim.new_conn()
    st, _, _ = sim.req("POST", "/ids/v1/oauth/token", b"x" * (65 * 1024), hdr, conn=c)
    c.close()
    check(st == 413, "oversized body -> 413")
    for q, what in (({"client_id": "evil", "redirect_uri": REDIRECT}, "unknown client"),
                    ({"client_id": CID, "redirect_uri": "https://evil.example/cb"}, "bad redirect_uri")):
        q["response_type"] = "code"
        st, h, body = sim.req("GET", "/ids/v1/oauth/authorize?" + urllib.parse.urlencode(q))
        check(st == 400 and "location" not in h and b"<html" in body, "authorize %s -> HTML 400" % what)
    loc, q = sim.authorize(response_type="token")
    check(q.get("error") == "unsupported_response_type", "response_type=token -> error redirect")
    loc, q = sim.authorize(code_challenge="a" * 43, code_challenge_method="plain")
    check(q.get("error") == "invalid_request", "PKCE plain rejected")
    _, q = sim.authorize()
    check(jwt.decode(sim.exchange(q["code"])[2]["access_token"], options={"verify_signature": False})["sub"]
          == "agent1@example.com", "default --user without login_hint, no PKCE")


def test_faults(sim):
    sim.jreq("DELETE", "/sim/faults")
    sim.jreq("POST", "/sim/reset")
    st, r = sim.jreq("POST", "/sim/faults", {"status": 503, "for_s": 1})
    check(st == 200 and r == {"ok": True}, "POST /sim/faults ok")
    v = pkce()[0]
    code = sim.code(v)
    st, _, err = sim.exchange(code, v)
    check(st == 503 and err.get("error") == "temporarily_unavailable", "503 fault within window")
    time.sleep(1.1)
    st, _, tok = sim.exchange(code, v)
    check(st == 200, "fault window over; code not consumed by fault")

    sim.jreq("POST", "/sim/faults", {"error": "invalid_grant", "count": 2, "grant_type": "refresh_token"})
    code = sim.code(v)
    st, _, _ = sim.exchange(code, v)
    check(st == 200, "grant_type-filtered fault skips authorization_code")
    rt = tok["refresh_token"]
    for i in range(2):
        st, _, err = sim.token({"grant_type": "refresh_token", "refresh_token": rt})
        check(st == 400 and err.get("error") == "invalid_grant", "count fault %d/2" % (i + 1))
    st, _, r = sim.token({"grant_type": "refresh_token", "refresh_token": rt})
    check(st == 200, "count exhausted; refresh token still valid")

    sim.jreq("POST", "/sim/faults", {"malformed": True, "count": 1})
    st, h, body = sim.token({"grant_type": "refresh_token", "refresh_token": r["refresh_token"]})
    check(st == 200 and isinstance(body, bytes), "malformed fault -> 200 non-JSON")

    sim.jreq("POST", "/sim/faults", {"delay_ms": 300, "count": 1})
    t0 = time.time()
    st, _, r2 = sim.token({"grant_type": "refresh_token", "refresh_token": r["refresh_token"]})
    check(st == 200 and time.time() - t0 >= 0.3, "delay fault delays then succeeds")

    # Delay + client gives up: the code must not be redeemed.
    sim.jreq("POST", "/sim/faults", {"delay_ms": 800, "for_s": 5})
    code = sim.code(v)
    s0 = sim.stats()
    body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": REDIRECT, "code_verifier": v})
    cred = base64.b64encode((CID + ":" + urllib.parse.quote_plus(SECRET)).encode()).decode()
    raw = socket.create_connection(("127.0.0.1", sim.port))
    raw.sendall(("POST /ids/v1/oauth/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n"
                 "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
                 % (cred, len(body), body)).encode())
    time.sleep(0.2)
    raw.close()
    time.sleep(1.0)
    s1 = sim.stats()
    check(s1.get("aborted_after_delay") == 1, "aborted_after_delay counted")
    check(s1["grants"] == s0["grants"], "aborted request redeemed nothing")
    sim.jreq("DELETE", "/sim/faults")
    st, _, _ = sim.exchange(code, v)
    check(st == 200, "code still redeemable after aborted request")
    s = sim.stats()
    check(s["faults_served"] == 6, "faults_served == 6 (%d)" % s["faults_served"])
    st, r = sim.jreq("POST", "/sim/faults", {"status": 503, "bogus": 1})
    check(st == 400 and r.get("ok") is False, "bad fault spec -> 400")


def test_config_and_introspect(sim):
    st, r = sim.jreq("POST", "/sim/config", {"access_ttl": 1, "refresh_ttl": 2})
    check(st == 200 and r == {"ok": True}, "POST /sim/config")
    v = pkce()[0]
    _, _, tok = sim.exchange(sim.code(v), v)
    check(tok["expires_in"] == 1 and tok["refresh_token_expires_in"] == 2, "new TTLs applied")
    time.sleep(2.1)
    _, info = sim.jreq("GET", "/sim/tokens/introspect?token=" + tok["access_token"])
    check(info.get("active") is False and info.get("user") == "agent1@example.com", "expired access token inactive")
    st, _, err = sim.token({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
    check(st == 400 and err["error"] == "invalid_grant", "expired refresh token -> invalid_grant")
    _, info = sim.jreq("GET", "/sim/tokens/introspect?token=garbage")
    check(info == {"active": False}, "introspect garbage -> inactive")
    sim.jreq("POST", "/sim/config", {"access_ttl": 3600, "refresh_ttl": 36000})


def b64d(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def new_token(sim, hint="sjefferson"):
    v, c = pkce()
    _, q = sim.authorize(c, login_hint=hint)
    st, _, tok = sim.exchange(q["code"], v)
    assert st == 200, tok
    return tok


def introspect(sim, token):
    return sim.jreq("GET", "/sim/tokens/introspect?" + urllib.parse.urlencode({"token": token}))[1]


def test_shapes_and_keys(sim):
    st, r = sim.jreq("POST", "/sim/config", {"token_shape": "cisco"})
    check(st == 200 and sim.stats()["token_shape"] == "cisco", "token_shape cisco")
    tok = new_token(sim)
    h, p, _ = tok["access_token"].split(".")
    check(json.loads(b64d(h)) == {"cty": "JWT", "alg": "RS256"}, "Cisco header cty JWT, RS256")
    claims = json.loads(b64d(p))
    inner = json.loads(claims["sub"])
    check(isinstance(claims["sub"], str) and inner["user_id"] == "sjefferson"
          and inner["upn"] == "sjefferson@example.com" and inner["scope"] == ["cc_onprem_apps"]
          and inner["realm"] == "example.com" and inner.get("rt")
          and "user_id" not in claims and "upn" not in claims,
          "Cisco claims: user inside the JSON-string sub only")
    _, _, pem = sim.key()
    claims = jwt.decode(tok["access_token"], pem, algorithms=["RS256"], issuer="ids.sim",
                        options={"verify_aud": False})
    check(claims["exp"] - claims["iat"] == 3600, "Cisco token verifies with the served key")
    info = introspect(sim, tok["access_token"])
    check(info.get("active") is True and info.get("user") == "sjefferson", "introspect: user_id")
    st, _, cert = sim.key("/ids/v1/keys/token/x509")
    served = x509.load_pem_x509_certificate(cert).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    check(st == 200 and served == pem, "/x509 certificate carries the same key")

    fetches = sim.stats()["key_fetches"]
    st, r = sim.jreq("POST", "/sim/keys/rotate", {})
    check(st == 200 and r["signing"] == r["published"] == "ids-sim-2", "rotate: new key published")
    _, _, pem2 = sim.key()
    check(pem2 != pem, "the endpoint serves the new key")
    with open(sim.pub_file, "rb") as f:
        check(f.read() == pem2, "--public-key-out follows the rotation")
    tok2 = new_token(sim)
    jwt.decode(tok2["access_token"], pem2, algorithms=["RS256"], options={"verify_aud": False})
    check(introspect(sim, tok["access_token"]).get("active") is True,
          "a token signed with the old key stays valid")
    st, r = sim.jreq("POST", "/sim/keys/rotate", {"publish": False})
    check(st == 200 and r["signing"] == "ids-sim-3" and r["published"] == "ids-sim-2",
          "rotate without publishing: a key nobody can fetch")
    tok3 = new_token(sim)
    try:
        jwt.decode(tok3["access_token"], pem2, algorithms=["RS256"], options={"verify_aud": False})
        check(False, "a token of the unpublished key does not verify with the served key")
    except jwt.InvalidSignatureError:
        check(True, "a token of the unpublished key does not verify with the served key")
    check(sim.stats()["key_fetches"] == fetches + 1, "key_fetches counted")
    st, r = sim.jreq("POST", "/sim/keys/sign", {"kid": "ids-sim-1"})
    check(st == 200 and r["signing"] == "ids-sim-1" and r["published"] == "ids-sim-2",
          "sign with an earlier key again")
    tok1 = new_token(sim)
    jwt.decode(tok1["access_token"], pem, algorithms=["RS256"], options={"verify_aud": False})
    st, r = sim.jreq("POST", "/sim/keys/sign", {"kid": "nope"})
    check(st == 400, "unknown kid -> 400")

    sim.jreq("POST", "/sim/config", {"keys_status": 503})
    st, _, _ = sim.key()
    check(st == 503, "keys_status 503: the key endpoint is down")
    st, r = sim.jreq("POST", "/sim/config", {"keys_status": 7})
    check(st == 400, "keys_status must be an HTTP status")
    sim.jreq("POST", "/sim/config", {"keys_status": 0, "token_shape": "opaque"})
    tok = new_token(sim, hint="1003")
    parts = tok["access_token"].split(".")
    check(len(parts) == 5 and json.loads(b64d(parts[0])) == {"alg": "dir", "enc": "A256GCM"},
          "opaque: a compact JWE (5 parts, dir/A256GCM)")
    info = introspect(sim, tok["access_token"])
    check(info.get("active") is True and info.get("user") == "1003", "introspect opaque: user")
    st, _, _ = sim.key()
    check(st == 404, "opaque (IdS before 12.6(2)): no key endpoint")
    tampered = parts[:3] + ["A" + parts[3][1:]] + parts[4:]
    check(introspect(sim, ".".join(tampered)) == {"active": False}, "tampered opaque: inactive")
    st, r = sim.jreq("POST", "/sim/config", {"token_shape": "square"})
    check(st == 400, "unknown token_shape -> 400")
    sim.jreq("POST", "/sim/config", {"token_shape": "top-level"})


def test_form(tmp):
    sim = Sim(tmp, "--form")
    q = {"client_id": CID, "redirect_uri": REDIRECT, "response_type": "code", "state": "xyz"}
    st, _, page = sim.req("GET", "/ids/v1/oauth/authorize?" + urllib.parse.urlencode(q))
    check(st == 200 and b"<form" in page, "--form shows login form")
    q["username"] = "carol@example.com"
    st, h, _ = sim.req("POST", "/ids/v1/oauth/authorize", urllib.parse.urlencode(q),
                       {"Content-Type": "application/x-www-form-urlencoded"})
    p = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(h.get("location", "")).query))
    check(st == 302 and p.get("state") == "xyz", "form POST redirects with code")
    _, _, tok = sim.exchange(p["code"])
    user = jwt.decode(tok["access_token"], options={"verify_signature": False})["sub"]
    check(user == "carol@example.com", "form username becomes user")
    check(sim.stop() == 0, "SIGTERM -> exit 0")


def test_tls(tmp):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cf, kf = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
    with open(cf, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(kf, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    sim = Sim(tmp, tls=(cf, kf))
    v = pkce()[0]
    st, _, tok = sim.exchange(sim.code(v), v)
    check(st == 200 and "access_token" in tok, "TLS code exchange")
    check(sim.stop() == 0, "TLS sim exits 0")


def bench(sim, n, threads=8):
    v, c = pkce()
    per = n // threads
    errors = []

    def worker():
        conn = sim.new_conn()
        for _ in range(per):
            conn.request("GET", "/ids/v1/oauth/authorize?" + urllib.parse.urlencode(
                {"client_id": CID, "redirect_uri": REDIRECT, "response_type": "code",
                 "state": "b", "code_challenge": c, "code_challenge_method": "S256"}))
            r = conn.getresponse()
            r.read()
            code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.getheader("Location")).query))["code"]
            st, _, _ = sim.exchange(code, v, conn=conn)
            if st != 200:
                errors.append(st)
        conn.close()

    t0 = time.time()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.time() - t0
    print("bench: %d code exchanges (authorize+token) in %.2fs = %.0f/s, errors=%d"
          % (per * threads, dt, per * threads / dt, len(errors)))
    check(not errors, "bench without errors")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        sim = Sim(tmp)
        try:
            test_flow(sim)
            test_refresh_reuse_count(sim)
            test_errors(sim)
            test_faults(sim)
            test_config_and_introspect(sim)
            test_shapes_and_keys(sim)
            if "--bench" in sys.argv:
                bench(sim, int(sys.argv[sys.argv.index("--bench") + 1]))
        finally:
            check(sim.stop() == 0, "SIGTERM -> exit 0")
        test_form(tmp)
        test_tls(tmp)
    print("selftest: %s (%d failures)" % ("FAIL" if FAILS else "PASS", len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
