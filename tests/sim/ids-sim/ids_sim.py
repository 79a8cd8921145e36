# SPDX-License-Identifier: AGPL-3.0-or-later
"""ids-sim: a Cisco Identity Service (IdS)-like OAuth2 authorization server
for tests of fsc-sso.

Implements the authorization code grant (RFC 6749) with PKCE S256
(RFC 7636), one-time rotating refresh tokens, token revocation (RFC 7009),
access tokens in three shapes (top-level claims; Cisco's RS256 token whose
user is inside a JSON-string `sub`, as IdS 12.6(2)+ issues it, with its
public-key endpoint; opaque encrypted tokens like IdS before 12.6(2)), key
rotation, and a /sim/* control API for fault injection and statistics.
Binds 127.0.0.1 only. Needs the standard library and python3-cryptography.
See README.md next to this file.
"""

import argparse
import base64
import binascii
import hashlib
import heapq
import hmac
import html
import http.server
import json
import os
import re
import secrets
import select
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse

import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

MAX_BODY = 64 * 1024
CODE_TTL = 60
MAX_ENTRIES = 500_000          # per table; oldest-expiring evicted beyond this
SCOPE = "cc_onprem_apps"
SHAPES = ("top-level", "cisco", "opaque")
JSON_CT = "application/json;charset=UTF-8"
VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
FAULT_ERRORS = {400: "invalid_request", 401: "invalid_client",
                429: "temporarily_unavailable", 500: "server_error",
                502: "temporarily_unavailable", 503: "temporarily_unavailable",
                504: "temporarily_unavailable"}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response."""

    def __init__(self, error, description, status=400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


class Signer:
    """One RS256 signing key (RSA 2048) and its public forms."""

    def __init__(self, key_file=None, kid="ids-sim-1"):
        if key_file:
            with open(key_file, "rb") as f:
                self.key = serialization.load_pem_private_key(f.read(), None)
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid
        self.pub = self.key.public_key()
        self.public_pem = self.pub.public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        self._x509 = None

    def x509_pem(self):
        """A self-signed certificate for the key (IdS's /x509 endpoint)."""
        if self._x509 is None:
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ids-sim token signing")])
            now = datetime.datetime.now(datetime.timezone.utc)
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(self.pub).serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(days=1))
                    .not_valid_after(now + datetime.timedelta(days=365))
                    .sign(self.key, hashes.SHA256()))
            self._x509 = cert.public_bytes(serialization.Encoding.PEM)
        return self._x509

    def sign(self, claims, header):
        h = b64url(json.dumps(header, separators=(",", ":")).encode())
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = h + b"." + payload
        sig = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return (signing_input + b"." + b64url(sig)).decode()

    def verify(self, token):
        """Claims if the signature is ours, else None (expiry not checked)."""
        try:
            h, p, s = token.encode("ascii").split(b".")
            self.pub.verify(b64url_decode(s.decode()), h + b"." + p,
                            padding.PKCS1v15(), hashes.SHA256())
            return json.loads(b64url_decode(p.decode()))
        except (ValueError, InvalidSignature, binascii.Error, UnicodeError):
            return None


class Keys:
    """Every signing key this IdS used (old tokens stay verifiable), the one
    it signs with now, and the one its key endpoint publishes (normally the
    same; rotate(publish=False) signs with a key nobody can fetch)."""

    def __init__(self, key_file=None, public_key_out=None):
        self.signing = self.published = Signer(key_file)
        self.all = [self.signing]
        self.public_key_out = public_key_out
        self.enc_key = AESGCM.generate_key(bit_length=256)   # opaque tokens
        self._write()

    def _write(self):
        if self.public_key_out:
            write_atomic(self.public_key_out, self.published.public_pem)

    def rotate(self, publish=True):
        s = Signer(kid="ids-sim-%d" % (len(self.all) + 1))
        self.all.append(s)
        self.signing = s
        if publish:
            self.published = s
            self._write()
        return s

    def sign_with(self, kid):
        """Sign with an earlier key again (an IdS node that has not switched
        over yet); the key endpoint is unchanged. False for an unknown kid."""
        for s in self.all:
            if s.kid == kid:
                self.signing = s
                return True
        return False

    def verify(self, token):
        for s in reversed(self.all):
            claims = s.verify(token)
            if claims is not None:
                return claims
        return None

    # IdS before 12.6(2) encrypts its access tokens: a JWE in compact form
    # (RFC 7516: header.encrypted_key.iv.ciphertext.tag, here alg "dir",
    # enc "A256GCM"), opaque to everyone but IdS.
    def encrypt(self, claims):
        header = b64url(json.dumps({"alg": "dir", "enc": "A256GCM"},
                                   separators=(",", ":")).encode())
        iv = os.urandom(12)
        sealed = AESGCM(self.enc_key).encrypt(
            iv, json.dumps(claims, separators=(",", ":")).encode(), header)
        return b".".join([header, b"", b64url(iv), b64url(sealed[:-16]),
                          b64url(sealed[-16:])]).decode()

    def decrypt(self, token):
        try:
            h, _, iv, ct, tag = token.encode("ascii").split(b".")
            pt = AESGCM(self.enc_key).decrypt(b64url_decode(iv.decode()),
                                              b64url_decode(ct.decode()) + b64url_decode(tag.decode()),
                                              h)
            return json.loads(pt)
        except (ValueError, InvalidTag, binascii.Error, UnicodeError):
            return None

    def read(self, token):
        """(claims, user) of an access token this IdS issued, in any shape;
        (None, None) for anything else. Expiry not checked."""
        claims = self.decrypt(token) if token.count(".") == 4 else self.verify(token)
        if not isinstance(claims, dict):
            return None, None
        return claims, token_user(claims)


def token_user(claims):
    """The user a token of ours names: inside a JSON-string sub (Cisco's
    shape), else user_id, else sub."""
    sub = claims.get("sub")
    if isinstance(sub, str) and sub.lstrip().startswith("{"):
        try:
            inner = json.loads(sub)
        except ValueError:
            return None
        return inner.get("user_id") if isinstance(inner, dict) else None
    return claims.get("user_id") or sub


class Table:
    """A dict whose entries are dropped lazily once expired (heap by exp)."""

    def __init__(self):
        self.d, self.heap = {}, []

    def put(self, key, rec, now):
        self.d[key] = rec
        heapq.heappush(self.heap, (rec["exp"], key))
        while self.heap and (self.heap[0][0] < now or len(self.d) > MAX_ENTRIES):
            _, k = heapq.heappop(self.heap)
            self.d.pop(k, None)


class State:
    """All shared state; every access holds self.lock."""

    STAT_KEYS = ("reuse_attempts", "invalid_grant", "revocations",
                 "faults_served", "token_requests", "aborted_after_delay",
                 "key_requests", "key_fetches")

    def __init__(self, access_ttl, refresh_ttl, token_shape="top-level", keys_status=0):
        self.lock = threading.Lock()
        self.access_ttl, self.refresh_ttl = access_ttl, refresh_ttl
        self.token_shape, self.keys_status = token_shape, keys_status
        self.codes, self.refresh, self.revoked_jti = Table(), Table(), Table()
        self.faults = []
        self.reset_stats()

    def reset_stats(self):
        self.grants = {"authorization_code": 0, "refresh_token": 0}
        self.stats = dict.fromkeys(self.STAT_KEYS, 0)

    def snapshot(self):
        now = time.time()
        active = sum(1 for r in self.refresh.d.values()
                     if r["status"] == "active" and r["exp"] > now)
        out = {"grants": dict(self.grants), **self.stats}
        out["active_refresh_tokens"] = active
        out["token_shape"] = self.token_shape
        return out

    def take_fault(self, grant_type):
        """Pop/decrement the first fault rule matching this request."""
        now = time.time()
        self.faults = [f for f in self.faults
                       if (f["until"] is None or f["until"] > now)
                       and (f["count"] is None or f["count"] > 0)]
        for f in self.faults:
            if f["grant_type"] is None or f["grant_type"] == grant_type:
                if f["count"] is not None:
                    f["count"] -= 1
                self.stats["faults_served"] += 1
                return f
        return None


def parse_fault(obj):
    if not isinstance(obj, dict):
        raise ValueError("body must be a JSON object")
    known = {"status", "delay_ms", "error", "malformed", "for_s", "count", "grant_type"}
    unknown = set(obj) - known
    if unknown:
        raise ValueError("unknown keys: " + ", ".join(sorted(unknown)))
    kinds = [k for k in ("status", "error", "malformed") if obj.get(k) not in (None, False)]
    if len(kinds) > 1:
        raise ValueError("status, error and malformed are mutually exclusive")
    if not kinds and obj.get("delay_ms") is None:
        raise ValueError("need one of status, delay_ms, error, malformed")
    f = {"status": obj.get("status"), "error": obj.get("error"),
         "malformed": bool(obj.get("malformed")), "delay_ms": obj.get("delay_ms") or 0,
         "grant_type": obj.get("grant_type"), "count": obj.get("count"), "until": None}
    if f["status"] is not None and not (isinstance(f["status"], int) and 100 <= f["status"] <= 599):
        raise ValueError("status must be an integer 100..599")
    if f["error"] is not None and not isinstance(f["error"], str):
        raise ValueError("error must be a string")
    if not isinstance(f["delay_ms"], (int, float)) or f["delay_ms"] < 0:
        raise ValueError("delay_ms must be a non-negative number")
    if f["count"] is not None and not (isinstance(f["count"], int) and f["count"] > 0):
        raise ValueError("count must be a positive integer")
    if f["grant_type"] not in (None, "authorization_code", "refresh_token"):
        raise ValueError("grant_type must be authorization_code or refresh_token")
    if obj.get("for_s") is not None:
        if not isinstance(obj["for_s"], (int, float)) or obj["for_s"] <= 0:
            raise ValueError("for_s must be a positive number")
        f["until"] = time.time() + obj["for_s"]
    return f


def parse_form(body):
    """Strict application/x-www-form-urlencoded parse; no repeated names."""
    try:
        text = body.decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                                       errors="strict", max_num_fields=64)
    except (UnicodeError, ValueError):
        raise OAuthError("invalid_request", "malformed form body")
    out = {}
    for k, v in pairs:
        if k in out:
            raise OAuthError("invalid_request", "parameter %s repeated" % k)
        out[k] = v
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ids-sim"
    sys_version = ""
    timeout = 120                      # idle keep-alive connections

    # ---- plumbing -------------------------------------------------------

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(self.timeout)

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("ids-sim %s %s\n" % (self.address_string(), fmt % args))

    def send(self, code, body=b"", ctype=JSON_CT, headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.log_request(code)
        lines = ["HTTP/1.1 %d %s" % (code, self.responses.get(code, ("",))[0]),
                 "Server: ids-sim", "Date: " + self.date_time_string(),
                 "Content-Type: " + ctype, "Content-Length: %d" % len(body)]
        lines += ["%s: %s" % h for h in headers]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def send_json(self, code, obj, headers=()):
        self.send(code, json.dumps(obj, separators=(",", ":")), JSON_CT, headers)

    def send_oauth_error(self, e):
        hdrs = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]
        if e.status == 401:
            hdrs.append(("WWW-Authenticate", 'Basic realm="ids"'))
        self.send_json(e.status, {"error": e.error, "error_description": e.description}, hdrs)

    def read_body(self):
        """Body bytes, or None after answering 400/413 (connection closed)."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if te == "chunked":
            body = b""
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    return self.reject(400, "bad chunk")
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                if len(body) + n > MAX_BODY:
                    return self.reject(413, "request body too large")
                body += self.rfile.read(n)
                self.rfile.readline(1024)
        if te:
            return self.reject(400, "unsupported transfer-encoding")
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        if not cl.isdigit():
            return self.reject(400, "bad content-length")
        if int(cl) > MAX_BODY:
            return self.reject(413, "request body too large")
        return self.rfile.read(int(cl))

    def reject(self, code, msg):
        self.close_connection = True
        self.send_json(code, {"error": "invalid_request", "error_description": msg})
        return None

    def route(self, method):
        body = self.read_body()
        if body is None:
            return
        url = urllib.parse.urlsplit(self.path)
        self.query = url.query
        handlers = ROUTES.get(url.path)
        if handlers is None:
            return self.send_json(404, {"error": "not_found"})
        fn = handlers.get(method)
        if fn is None:
            return self.send_json(405, {"error": "method_not_allowed"},
                                  [("Allow", ", ".join(sorted(handlers)))])
        fn(self, body)

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def qparams(self):
        return parse_form(self.query.encode())

    def client_closed(self):
        """True if the peer has closed its side (FIN/RST) while we waited."""
        sock = self.connection
        try:
            p = select.poll()
            p.register(sock, select.POLLIN | getattr(select, "POLLRDHUP", 0))
            ev = p.poll(0)
            if not ev:
                return False           # nothing readable: still open
            if ev[0][1] & (getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR):
                return True
            if not isinstance(sock, ssl.SSLSocket):
                # readable, so this peek cannot block despite the socket timeout
                return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        return False

    # ---- IdS endpoints --------------------------------------------------

    def key_endpoint(self, body_of):
        """/ids/v1/keys/token/*: IdS 12.6(2)+ serves its token key to admin
        or client credentials (Finesse developer guide, "Client-side token
        validation"). IdS before 12.6(2) (opaque tokens) has no such
        endpoint: 404. keys_status makes it answer that status instead."""
        srv, st = self.server, self.server.state
        with st.lock:
            st.stats["key_requests"] += 1
            shape, status = st.token_shape, st.keys_status
        try:
            self.authenticate_client({})
        except OAuthError as e:
            return self.send_oauth_error(e)
        if status:
            return self.send_json(status, {"error": "unavailable", "error_description":
                                           "key endpoint answers %d (sim)" % status})
        if shape == "opaque":
            return self.send_json(404, {"error": "not_found"})
        with st.lock:
            st.stats["key_fetches"] += 1
            body = body_of(srv.keys.published)
        self.send(200, body, "application/x-pem-file", [("Cache-Control", "no-store")])

    def h_public_key(self, _body):
        self.key_endpoint(lambda signer: signer.public_pem)

    def h_x509(self, _body):
        self.key_endpoint(lambda signer: signer.x509_pem())

    def h_authorize_get(self, _body):
        try:
            p = self.qparams()
        except OAuthError as e:
            return self.html_error(e.description)
        self.authorize(p, p.get("login_hint") or self.server.default_user,
                       show_form=self.server.form)

    def h_authorize_post(self, body):
        try:
            p = parse_form(body)
        except OAuthError as e:
            return self.html_error(e.description)
        user = p.get("username", "").strip()
        self.authorize(p, user, show_form=not user)

    def html_error(self, msg):
        page = ("<!DOCTYPE html><html><head><title>IdS error</title></head><body>"
                "<h1>Authorization error</h1><p>%s</p></body></html>" % html.escape(msg))
        self.send(400, page, "text/html;charset=UTF-8")

    def authorize(self, p, user, show_form):
        srv = self.server
        if p.get("client_id") != srv.client_id:
            return self.html_error("unknown or missing client_id")
        redirect_uri = p.get("redirect_uri")
        if redirect_uri is None and len(srv.redirect_uris) == 1:
            redirect_uri = srv.redirect_uris[0]
        if not redirect_uri or not any(redirect_uri.startswith(r) for r in srv.redirect_uris):
            return self.html_error("redirect_uri is missing or not registered")
        state = p.get("state")

        def redirect(params):
            if state is not None:
                params["state"] = state
            sep = "&" if "?" in redirect_uri else "?"
            loc = redirect_uri + sep + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
            self.send(302, b"", "text/plain", [("Location", loc), ("Cache-Control", "no-store")])

        if p.get("response_type") != "code":
            return redirect({"error": "unsupported_response_type",
                             "error_description": "response_type must be code"})
        challenge, method = p.get("code_challenge"), p.get("code_challenge_method")
        if challenge is not None:
            if (method or "plain") != "S256" or not VERIFIER_RE.match(challenge):
                return redirect({"error": "invalid_request",
                                 "error_description": "only S256 code_challenge supported"})
        elif method is not None:
            return redirect({"error": "invalid_request",
                             "error_description": "code_challenge_method without code_challenge"})
        if show_form:
            return self.login_form(p)
        now = time.time()
        code = secrets.token_urlsafe(32)
        rec = {"exp": now + CODE_TTL, "client_id": srv.client_id, "redirect_uri": redirect_uri,
               "challenge": challenge, "user": user, "used": False}
        with srv.state.lock:
            srv.state.codes.put(code, rec, now)
        redirect({"code": code})

    def login_form(self, p):
        hidden = "".join('<input type="hidden" name="%s" value="%s">'
                         % (html.escape(k), html.escape(v)) for k, v in p.items()
                         if k != "username")
        page = ("<!DOCTYPE html><html><head><title>IdS sign in</title></head><body>"
                "<h1>Sign in (ids-sim)</h1><form method=\"post\" action=\"/ids/v1/oauth/authorize\">"
                "%s<label>Username <input name=\"username\" value=\"%s\"></label>"
                "<label>Password <input type=\"password\" name=\"password\"></label>"
                "<button type=\"submit\">Sign in</button></form></body></html>"
                % (hidden, html.escape(p.get("login_hint", self.server.default_user))))
        self.send(200, page, "text/html;charset=UTF-8", [("Cache-Control", "no-store")])

    def authenticate_client(self, form):
        srv = self.server
        auth = self.headers.get("Authorization")
        if auth is not None:
            if "client_secret" in form:
                raise OAuthError("invalid_request", "more than one client authentication method")
            scheme, _, cred = auth.partition(" ")
            if scheme.lower() != "basic":
                raise OAuthError("invalid_client", "unsupported authentication scheme", 401)
            try:
                raw = base64.b64decode(cred.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeError):
                raise OAuthError("invalid_client", "malformed Basic credentials", 401)
            cid, sep, secret = raw.partition(":")
            if not sep:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401)
            # RFC 6749 §2.3.1 form-encodes both parts; libcurl sends them raw.
            creds = [(cid, secret), (urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(secret))]
            if "client_id" in form and all(form["client_id"] != c for c, _ in creds):
                raise OAuthError("invalid_request", "client_id does not match credentials")
        elif "client_secret" in form:
            creds = [(form.get("client_id", ""), form["client_secret"])]
        else:
            raise OAuthError("invalid_client", "client authentication required", 401)
        for cid, secret in creds:
            ok = hmac.compare_digest(cid.encode(), srv.client_id.encode())
            ok &= hmac.compare_digest(secret.encode(), srv.client_secret.encode())
            if ok:
                return cid
        raise OAuthError("invalid_client", "client authentication failed", 401)

    def h_token(self, body):
        st = self.server.state
        with st.lock:
            st.stats["token_requests"] += 1
        try:
            ctype = self.headers.get("Content-Type", "application/x-www-form-urlencoded")
            if ctype.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
                raise OAuthError("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
            form = parse_form(body)
        except OAuthError as e:
            return self.send_oauth_error(e)
        grant_type = form.get("grant_type")
        with st.lock:
            fault = st.take_fault(grant_type) if st.faults else None
        if fault:
            if fault["delay_ms"]:
                time.sleep(fault["delay_ms"] / 1000.0)
                if self.client_closed():
                    with st.lock:
                        st.stats["aborted_after_delay"] += 1
                    self.close_connection = True
                    return
            if self.fault_response(fault):
                return
        try:
            cid = self.authenticate_client(form)
            if grant_type is None:
                raise OAuthError("invalid_request", "grant_type missing")
            if grant_type == "authorization_code":
                user = self.redeem_code(form, cid)
            elif grant_type == "refresh_token":
                user = self.redeem_refresh(form, cid)
            else:
                raise OAuthError("unsupported_grant_type", "grant_type %s not supported" % grant_type)
        except OAuthError as e:
            if e.error == "invalid_grant":
                with st.lock:
                    st.stats["invalid_grant"] += 1
            return self.send_oauth_error(e)
        self.send_json(200, self.issue(cid, user, grant_type),
                       [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    def fault_response(self, f):
        if f["malformed"]:
            self.send(200, b'{"access_token":"eyJhbGciOiJSUzI1NiIsInR5cCI6Ik', JSON_CT,
                      [("Cache-Control", "no-store")])
        elif f["error"]:
            self.send_oauth_error(OAuthError(f["error"], "injected fault"))
        elif f["status"]:
            st = f["status"]
            err = FAULT_ERRORS.get(st, "server_error" if st >= 500 else "invalid_request")
            self.send_oauth_error(OAuthError(err, "injected fault (HTTP %d)" % st, st))
        else:
            return False
        return True

    def redeem_code(self, form, cid):
        code = form.get("code")
        if not code:
            raise OAuthError("invalid_request", "code missing")
        verifier = form.get("code_verifier")
        st = self.server.state
        now = time.time()
        with st.lock:
            rec = st.codes.d.get(code)
            if rec is None or rec["exp"] <= now:
                raise OAuthError("invalid_grant", "authorization code is invalid or expired")
            if rec["used"]:
                st.stats["reuse_attempts"] += 1
                raise OAuthError("invalid_grant", "authorization code was already used")
            if rec["client_id"] != cid:
                raise OAuthError("invalid_grant", "code was issued to another client")
            if form.get("redirect_uri") != rec["redirect_uri"]:
                raise OAuthError("invalid_grant", "redirect_uri does not match authorization request")
            if rec["challenge"] is not None:
                if verifier is None or not VERIFIER_RE.match(verifier):
                    raise OAuthError("invalid_grant", "code_verifier missing or malformed")
                digest = b64url(hashlib.sha256(verifier.encode("ascii")).digest()).decode()
                if not hmac.compare_digest(digest, rec["challenge"]):
                    raise OAuthError("invalid_grant", "code_verifier does not match code_challenge")
            rec["used"] = True
            return rec["user"]

    def redeem_refresh(self, form, cid):
        token = form.get("refresh_token")
        if not token:
            raise OAuthError("invalid_request", "refresh_token missing")
        scope = form.get("scope")
        if scope is not None and scope not in ("", SCOPE):
            raise OAuthError("invalid_scope", "requested scope exceeds the granted scope")
        st = self.server.state
        now = time.time()
        with st.lock:
            rec = st.refresh.d.get(token)
            if rec is None or rec["exp"] <= now:
                raise OAuthError("invalid_grant", "refresh token is invalid or expired")
            if rec["status"] == "used":
                st.stats["reuse_attempts"] += 1
                raise OAuthError("invalid_grant", "refresh token was already used")
            if rec["status"] == "revoked":
                raise OAuthError("invalid_grant", "refresh token was revoked")
            if rec["client_id"] != cid:
                raise OAuthError("invalid_grant", "refresh token was issued to another client")
            rec["status"] = "used"
            return rec["user"]

    def access_token(self, cid, user, now, ttl, shape):
        """An access token of the given shape for user."""
        srv = self.server
        jti = secrets.token_hex(16)
        if shape == "top-level":
            claims = {"iss": srv.issuer, "aud": cid, "sub": user, "user_id": user, "upn": user,
                      "realm": "sim", "scope": [SCOPE], "iat": now, "exp": now + ttl, "jti": jti}
            with srv.state.lock:
                signer = srv.keys.signing
            return signer.sign(claims, {"alg": "RS256", "typ": "JWT", "kid": signer.kid})
        # Cisco's shape (Finesse developer guide, "REST API with SSO -
        # client integration"): header {"cty":"JWT","alg":"RS256"}, the
        # user inside sub, a JSON-encoded string with scope, rt, user_id,
        # realm and upn. user_id is the Finesse loginName (or loginId).
        upn = user if "@" in user else "%s@%s" % (user, srv.realm)
        inner = {"scope": [SCOPE], "rt": secrets.token_hex(16), "user_id": user,
                 "realm": srv.realm, "upn": upn}
        claims = {"iss": srv.issuer, "sub": json.dumps(inner, separators=(",", ":")),
                  "iat": now, "exp": now + ttl, "jti": jti}
        if shape == "opaque":
            return srv.keys.encrypt(claims)
        with srv.state.lock:
            signer = srv.keys.signing
        return signer.sign(claims, {"cty": "JWT", "alg": "RS256"})

    def issue(self, cid, user, grant_type):
        srv, st = self.server, self.server.state
        now = int(time.time())
        with st.lock:
            access_ttl, refresh_ttl = st.access_ttl, st.refresh_ttl
            shape = st.token_shape
        access = self.access_token(cid, user, now, access_ttl, shape)
        refresh = secrets.token_urlsafe(32)
        rec = {"exp": now + refresh_ttl, "client_id": cid, "user": user, "status": "active"}
        with st.lock:
            st.refresh.put(refresh, rec, now)
            st.grants[grant_type] += 1
        return {"access_token": access, "token_type": "Bearer", "expires_in": access_ttl,
                "refresh_token": refresh, "refresh_token_expires_in": refresh_ttl,
                "scope": SCOPE}

    def h_revoke(self, body):
        st = self.server.state
        try:
            form = parse_form(body)
            cid = self.authenticate_client(form)
            token = form.get("token")
            if not token:
                raise OAuthError("invalid_request", "token missing")
        except OAuthError as e:
            return self.send_oauth_error(e)
        now = time.time()
        with st.lock:
            rec = st.refresh.d.get(token)
            if rec is not None and rec["client_id"] == cid:
                if rec["status"] == "active":
                    rec["status"] = "revoked"
                    st.stats["revocations"] += 1
                token = None
        if token is not None:
            claims, _ = self.server.keys.read(token)
            if claims and claims.get("aud", cid) == cid and claims.get("exp", 0) > now:
                with st.lock:
                    if claims["jti"] not in st.revoked_jti.d:
                        st.revoked_jti.put(claims["jti"], {"exp": claims["exp"]}, now)
                        st.stats["revocations"] += 1
        self.send(200, b"", JSON_CT, [("Cache-Control", "no-store")])

    # ---- control API ----------------------------------------------------

    def json_body(self, body):
        try:
            return json.loads(body or b"{}")
        except (ValueError, UnicodeError):
            self.send_json(400, {"ok": False, "error": "body is not JSON"})
            return None

    def h_stats(self, _body):
        st = self.server.state
        with st.lock:
            snap = st.snapshot()
        self.send_json(200, snap)

    def h_faults_post(self, body):
        obj = self.json_body(body)
        if obj is None:
            return
        try:
            f = parse_fault(obj)
        except ValueError as e:
            return self.send_json(400, {"ok": False, "error": str(e)})
        with self.server.state.lock:
            self.server.state.faults.append(f)
        self.send_json(200, {"ok": True})

    def h_faults_delete(self, _body):
        with self.server.state.lock:
            self.server.state.faults = []
        self.send_json(200, {"ok": True})

    def h_config(self, body):
        obj = self.json_body(body)
        if obj is None:
            return
        if not isinstance(obj, dict) or set(obj) - {"access_ttl", "refresh_ttl", "token_shape",
                                                    "keys_status"}:
            return self.send_json(400, {"ok": False, "error": "expected access_ttl, refresh_ttl, "
                                        "token_shape or keys_status"})
        for k in ("access_ttl", "refresh_ttl"):
            v = obj.get(k, 1)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                return self.send_json(400, {"ok": False, "error": "%s: a positive integer" % k})
        if obj.get("token_shape", SHAPES[0]) not in SHAPES:
            return self.send_json(400, {"ok": False, "error": "token_shape: one of " + ", ".join(SHAPES)})
        ks = obj.get("keys_status", 0)
        if not isinstance(ks, int) or isinstance(ks, bool) or not (ks == 0 or 100 <= ks <= 599):
            return self.send_json(400, {"ok": False, "error": "keys_status: 0 or an HTTP status"})
        st = self.server.state
        with st.lock:
            st.access_ttl = obj.get("access_ttl", st.access_ttl)
            st.refresh_ttl = obj.get("refresh_ttl", st.refresh_ttl)
            st.token_shape = obj.get("token_shape", st.token_shape)
            st.keys_status = obj.get("keys_status", st.keys_status)
        self.send_json(200, {"ok": True})

    def h_rotate(self, body):
        obj = self.json_body(body)
        if obj is None:
            return
        if not isinstance(obj, dict) or set(obj) - {"publish"} or \
                not isinstance(obj.get("publish", True), bool):
            return self.send_json(400, {"ok": False, "error": "expected {\"publish\": bool}"})
        srv = self.server
        with srv.state.lock:
            s = srv.keys.rotate(obj.get("publish", True))
            published = srv.keys.published.kid
        self.send_json(200, {"ok": True, "signing": s.kid, "published": published})

    def h_sign_with(self, body):
        obj = self.json_body(body)
        if obj is None:
            return
        if not isinstance(obj, dict) or set(obj) != {"kid"} or not isinstance(obj["kid"], str):
            return self.send_json(400, {"ok": False, "error": "expected {\"kid\": \"ids-sim-N\"}"})
        srv = self.server
        with srv.state.lock:
            ok = srv.keys.sign_with(obj["kid"])
            published = srv.keys.published.kid
        if not ok:
            return self.send_json(400, {"ok": False, "error": "unknown kid"})
        self.send_json(200, {"ok": True, "signing": obj["kid"], "published": published})

    def h_reset(self, _body):
        with self.server.state.lock:
            self.server.state.reset_stats()
        self.send_json(200, {"ok": True})

    def h_introspect(self, _body):
        try:
            token = self.qparams().get("token", "")
        except OAuthError:
            token = ""
        st, now = self.server.state, time.time()
        with st.lock:
            rec = st.refresh.d.get(token)
            if rec is not None:
                return self.send_json(200, {
                    "active": rec["status"] == "active" and rec["exp"] > now,
                    "token_type": "refresh_token", "status": rec["status"],
                    "user": rec["user"], "exp": int(rec["exp"])})
        claims, user = self.server.keys.read(token) if token else (None, None)
        if not claims:
            return self.send_json(200, {"active": False})
        with st.lock:
            revoked = claims.get("jti") in st.revoked_jti.d
        self.send_json(200, {"active": not revoked and claims.get("exp", 0) > now and bool(user),
                             "token_type": "access_token", "user": user,
                             "exp": claims.get("exp")})


ROUTES = {
    "/ids/v1/oauth/authorize": {"GET": Handler.h_authorize_get, "POST": Handler.h_authorize_post},
    "/ids/v1/oauth/token": {"POST": Handler.h_token},
    "/ids/v1/oauth/revoke": {"POST": Handler.h_revoke},
    "/ids/v1/keys/token/public": {"GET": Handler.h_public_key},
    "/ids/v1/keys/token/x509": {"GET": Handler.h_x509},
    "/sim/keys/rotate": {"POST": Handler.h_rotate},
    "/sim/keys/sign": {"POST": Handler.h_sign_with},
    "/sim/stats": {"GET": Handler.h_stats},
    "/sim/faults": {"POST": Handler.h_faults_post, "DELETE": Handler.h_faults_delete},
    "/sim/config": {"POST": Handler.h_config},
    "/sim/reset": {"POST": Handler.h_reset},
    "/sim/tokens/introspect": {"GET": Handler.h_introspect},
}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Cisco IdS-like OAuth2 server for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret-file", required=True)
    ap.add_argument("--redirect-uri", action="append", required=True)
    ap.add_argument("--user", default="agent1@example.com")
    ap.add_argument("--access-ttl", type=int, default=3600)
    ap.add_argument("--refresh-ttl", type=int, default=36000)
    ap.add_argument("--issuer", default="ids.sim")
    ap.add_argument("--key", help="PEM RSA private key (default: generate 2048-bit)")
    ap.add_argument("--public-key-out", help="the published public key is (re)written here")
    ap.add_argument("--token-shape", choices=SHAPES, default="top-level",
                    help="access tokens: top-level claims, Cisco's sub-JSON RS256, or opaque")
    ap.add_argument("--realm", default="example.com", help="realm in Cisco-shaped tokens")
    ap.add_argument("--keys-status", type=int, default=0,
                    help="the key endpoint answers this HTTP status (0: serves the key)")
    ap.add_argument("--form", action="store_true", help="show a login form instead of auto-approving")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    if bool(a.tls_cert) != bool(a.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if a.access_ttl <= 0 or a.refresh_ttl <= 0:
        ap.error("TTLs must be positive")
    if a.keys_status and not 100 <= a.keys_status <= 599:
        ap.error("--keys-status: 0 or an HTTP status")
    with open(a.client_secret_file, encoding="utf-8") as f:
        secret = f.read().rstrip("\r\n")
    if not secret:
        ap.error("client secret file is empty")

    keys = Keys(a.key, a.public_key_out)
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.verbose, srv.keys, srv.form = a.verbose, keys, a.form
    srv.client_id, srv.client_secret = a.client_id, secret
    srv.redirect_uris, srv.default_user, srv.issuer = a.redirect_uri, a.user, a.issuer
    srv.realm = a.realm
    srv.state = State(a.access_ttl, a.refresh_ttl, a.token_shape, a.keys_status)
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)

    def stop(_sig, _frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    port = srv.server_address[1]
    if a.port_file:
        write_atomic(a.port_file, b"%d" % port)
    print("ids-sim listening port=%d" % port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.5)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
