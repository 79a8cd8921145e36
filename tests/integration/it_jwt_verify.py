# SPDX-License-Identifier: AGPL-3.0-or-later
"""JWT verification of IdS access tokens ([ids] jwt_public_key_file,
jwt_issuer, jwt_audience).

With ids-sim's real public key, issuer and audience, sign-in, handoff and
token fetch work and the token served is an RS256 JWT that verifies (checked
here independently with python3-cryptography). An instance that expects
another issuer, another audience, or holds another RSA public key refuses
the sign-in at the callback with a 502 page: no session and no handoff code
is stored, and the login state is consumed. With short-lived access tokens
(access_ttl=4 s) a fetch past 75 % of the lifetime refreshes the token with
verification on, and the refreshed token verifies too. Last, a refresh whose
new token fails verification on one instance must not cost the session: the
refresh token IdS rotated must not be lost (the next refresh elsewhere works)."""
import base64
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

ACCESS_TTL = 4
FAILURES = []


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_jwt(token, ids, audience):
    """RS256 signature with ids-sim's public key, iss, aud, exp; returns claims."""
    parts = token.split(".")
    assert len(parts) == 3, "an access token is a JWT of 3 parts: %d" % len(parts)
    header, claims = json.loads(b64d(parts[0])), json.loads(b64d(parts[1]))
    assert header.get("alg") == "RS256", "JWT alg: want RS256, got %r" % header
    with open(ids.public_key_path, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    try:
        key.verify(b64d(parts[2]), (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(),
                   hashes.SHA256())
    except InvalidSignature:
        raise AssertionError("the access token's signature does not verify with ids-sim's key")
    assert claims.get("iss") == ids.issuer, "iss: want %r, got %r" % (ids.issuer, claims.get("iss"))
    aud = claims.get("aud")
    assert aud == audience or (isinstance(aud, list) and audience in aud), \
        "aud: want %r, got %r" % (audience, aud)
    assert claims.get("exp", 0) > time.time(), "exp in the future: %r" % claims.get("exp")
    return claims


def redis_kinds(st):
    keys = st.redis.cli("KEYS", "fsc:*") or []
    out = {"sess": set(), "handoff": set(), "state": set(), "other": set()}
    for k in keys:
        parts = k.split(":")
        kind = parts[2] if len(parts) > 3 and parts[1] == "sso" else "other"
        out.get(kind, out["other"]).add(k)
    return out


def extra_instance(st, name, ids_overrides):
    """Another fsc-sso sharing Redis, secrets and ids-sim, whose redirect_uri
    is the registered one (A's callback URL): its callbacks are rebased to it."""
    extra = {"ids": dict(ids_overrides)}
    inst = stack.SsoInstance(name, st.redis, st.ids, public_url=st.a.url,
                             allowed_return_to=[st.return_to], secrets=st.secrets,
                             jwt=True, extra=extra, tmp=st.tmp)
    inst.wait_ready()
    return inst


def soft(fn, *args):
    """Record a failure and go on (reported at the end)."""
    try:
        return fn(*args)
    except AssertionError as e:
        stack.mark_failed()
        FAILURES.append("%s: %s" % (fn.__name__, e))
        print("FAIL %s: %s" % (fn.__name__, e))
        return None


# --------------------------------------------------------------------------

def check_good_verification(st):
    cfg = st.a.sections["ids"]
    assert cfg.get("jwt_public_key_file") == st.ids.public_key_path and \
        cfg.get("jwt_issuer") == st.ids.issuer and cfg.get("jwt_audience") == st.CLIENT_ID, \
        "the harness configured verification: %r" % cfg
    s = st.session()
    status, t = st.client().token(s["session"])
    assert status == 200, "token with verification on: %d %r" % (status, t)
    claims = verify_jwt(t["access_token"], st.ids, st.CLIENT_ID)
    assert claims.get("upn") == "agent1@example.com" == t["user"] == s["user"], \
        "user from the verified token: claims %r, reply %r" % (claims.get("upn"), t["user"])
    assert t["expires_at"] == s["expires_at"] and abs(t["expires_at"] - claims["exp"]) <= 2, \
        "expires_at matches the token's exp: %r vs %r" % (t["expires_at"], claims["exp"])
    assert st.ids.introspect(t["access_token"]).get("active") is True, "IdS: token active"
    print("ok  jwt on: sign-in, handoff, token; the token verifies (RS256, iss=%s, aud=%s)"
          % (claims["iss"], claims["aud"]))
    return s, t


def check_refused_by(st, inst, what, reason):
    before = redis_kinds(st)
    grants = st.ids.stats()["grants"]["authorization_code"]
    cb = stack.start_login(inst.url, st.return_to)
    mid = redis_kinds(st)
    assert len(mid["state"]) == len(before["state"]) + 1, "login on %s stored a state" % inst.name
    status, hdrs, data = stack.http("GET", stack._rebase(cb, inst.url), timeout=10.0,
                                    cookies=cb.browser)
    assert status == 502, "%s: callback want 502, got %d %r" % (what, status, data[:200])
    assert hdrs.get("content-type", "").startswith("text/html") and "location" not in hdrs, \
        "%s: an HTML error page, no redirect: %r" % (what, hdrs)
    assert b"handoff" not in data, "%s: no handoff code on the page" % what
    assert st.ids.stats()["grants"]["authorization_code"] == grants + 1, \
        "%s: IdS did issue the token (it is the verification that refused it)" % what
    after = redis_kinds(st)
    assert after["sess"] == before["sess"], "%s: no session stored: %r" % (what, after["sess"] - before["sess"])
    assert after["handoff"] == before["handoff"], "%s: no handoff stored" % what
    assert after["state"] == before["state"], "%s: the login state is consumed" % what
    status, _, _ = stack.http("GET", stack._rebase(cb, inst.url), timeout=10.0,
                              cookies=cb.browser)
    assert status == 400, "%s: replaying the callback: want 400, got %d" % (what, status)
    log = inst.log_text()
    assert "event=login_failed reason=token_verification" in log, \
        "%s: log says why (reason=token_verification)" % what
    assert re.search(r'reason=token_verification detail="[^"]*%s' % reason, log), \
        "%s: log detail should name %r" % (what, reason)
    print("ok  %s -> callback 502, no session or handoff stored, state consumed (%s)"
          % (what, reason))


def check_wrong_issuer(st):
    inst = extra_instance(st, "wrong-iss", {"jwt_issuer": "wrong-issuer"})
    try:
        check_refused_by(st, inst, "jwt_issuer=wrong-issuer", "issuer mismatch")
    finally:
        inst.stop()


def check_wrong_audience(st):
    inst = extra_instance(st, "wrong-aud", {"jwt_audience": "wrong"})
    try:
        check_refused_by(st, inst, "jwt_audience=wrong", "audience mismatch")
    finally:
        inst.stop()


def other_public_key(tmp):
    priv = tmp.file("other-key", "private.pem")
    pub = tmp.file("other-key", "public.pem")
    for argv in (["openssl", "genrsa", "-out", priv, "2048"],
                 ["openssl", "rsa", "-in", priv, "-pubout", "-out", pub]):
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        assert r.returncode == 0, "%s: %s" % (" ".join(argv), r.stdout.decode())
    return pub


def check_wrong_key(st, pub):
    inst = extra_instance(st, "wrong-key", {"jwt_public_key_file": pub})
    try:
        check_refused_by(st, inst, "another RSA public key", "signature")
    finally:
        inst.stop()


def check_refresh_verified(st, s, t):
    """Past 75 % of a 4 s token, the next fetch refreshes (verification on)."""
    before = st.ids.stats()["grants"]["refresh_token"]
    issued = t["expires_at"] - ACCESS_TTL
    delay = issued + ACCESS_TTL * 0.75 + 0.3 - time.time()
    if delay > 0:
        time.sleep(delay)
    status, t2 = st.client().token(s["session"])
    assert status == 200, "token past 75 %%: %d %r" % (status, t2)
    assert t2["access_token"] != t["access_token"] and t2["expires_at"] > t["expires_at"], \
        "past 75 %% the token is refreshed: old exp %r, new %r" % (t["expires_at"], t2["expires_at"])
    assert st.ids.stats()["grants"]["refresh_token"] == before + 1, \
        "one refresh grant at IdS: %r" % st.ids.stats()["grants"]
    verify_jwt(t2["access_token"], st.ids, st.CLIENT_ID)
    for inst in (st.a, st.b):
        status, t3 = st.client(inst.url).token(s["session"])
        assert status == 200 and t3["access_token"] == t2["access_token"], \
            "%s serves the refreshed token: %d %r" % (inst.name, status, t3)
    assert "event=ids_token_rejected" not in st.a.log_text() + st.b.log_text(), \
        "no refreshed token was rejected by A or B"
    print("ok  refresh past 75 % with verification on: new token verifies, served by A and B")


def check_failed_verification_keeps_session(st, pub):
    """Instance K (other key) does the refresh: IdS rotates the refresh token,
    K rejects the new access token. The session must survive that: a later
    refresh on A must not present the spent refresh token (invalid_grant)."""
    s = st.session(via=st.a.url)
    status, t = st.client(st.a.url).token(s["session"])
    assert status == 200, "fresh session: %d %r" % (status, t)
    inst = extra_instance(st, "wrong-key-2", {"jwt_public_key_file": pub})
    try:
        issued = t["expires_at"] - ACCESS_TTL
        delay = issued + ACCESS_TTL * 0.75 + 0.3 - time.time()
        if delay > 0:
            time.sleep(delay)
        reuse0 = st.ids.stats()["reuse_attempts"]
        status, tk = st.client(inst.url).token(s["session"])
        assert status in (200, 503), "fetch through the mis-keyed instance: %d %r" % (status, tk)
        if status == 200:
            assert tk["access_token"] == t["access_token"], \
                "the mis-keyed instance never serves the token it could not verify"
        assert "event=ids_token_rejected" in inst.log_text(), "K rejected the refreshed token"
    finally:
        inst.stop()
    # A (right key) takes over once K's retry pause is over
    deadline = time.monotonic() + 10.0
    last = None
    while time.monotonic() < deadline:
        status, ta = st.client(st.a.url).token(s["session"])
        last = (status, ta)
        if status == 200 and ta["access_token"] != t["access_token"]:
            break
        if status == 401:
            break
        time.sleep(0.25)
    status, ta = last
    stats = st.ids.stats()
    assert status == 200 and ta["access_token"] != t["access_token"], \
        "after a refresh rejected by verification on another instance, A must still refresh " \
        "the session; got %d %r (IdS reuse_attempts %d -> %d: the rotated refresh token was " \
        "dropped and the spent one presented again)" % (status, ta, reuse0, stats["reuse_attempts"])
    verify_jwt(ta["access_token"], st.ids, st.CLIENT_ID)
    print("ok  a refresh rejected by verification on one instance does not cost the session")


def start_stack():
    try:
        return stack.Stack(jwt=True, haproxy=False, access_ttl=ACCESS_TTL)
    except RuntimeError as e:
        stack.mark_failed()
        raise AssertionError("fsc-sso with [ids] jwt_public_key_file = ids-sim's PEM public key "
                             "must start; it did not:\n%s" % e)


def main():
    with start_stack() as st:
        s, t = check_good_verification(st)
        check_wrong_issuer(st)
        check_wrong_audience(st)
        pub = other_public_key(st.tmp)
        check_wrong_key(st, pub)
        check_refresh_verified(st, s, t)
        soft(check_failed_verification_keeps_session, st, pub)
        assert st.a.alive() and st.b.alive(), "A and B still running"
    assert not FAILURES, "%d check(s) failed:\n  %s" % (len(FAILURES), "\n  ".join(FAILURES))
    print("PASS it_jwt_verify")


if __name__ == "__main__":
    main()
