# SPDX-License-Identifier: AGPL-3.0-or-later
"""[ids] verify = auto | required | off when IdS's key endpoint is down at
start (Cisco-shaped RS256 tokens; A and B behind HAProxy in auto mode).

- auto: A and B log once that IdS serves no key and that tokens are not
  verified, are ready, and sign-ins work (the user still read from sub).
- required: an instance refuses to be ready (/readyz 503 saying why: the
  load balancer's health check) while IdS serves no key; once IdS serves it again
  the instance fetches it by itself, becomes ready and verifies tokens.
  An opaque token is refused by it (it cannot be verified).
- auto instances pick the key up from Redis (sealed) at their next
  sign-in once one instance has it: from then on they verify too; a key
  planted in Redis without the pair's seal key is refused.
- off: logged once as such at start; tokens are read, not checked.
- --check-config accepts each mode and refuses a wrong one, naming file,
  line and key; it never calls IdS."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

USER = "agent1001@example.com"


def verification_lines(inst):
    return re.findall(r"event=token_verification [^\n]*", inst.log_text())


def extra(st, name, verify, start=True):
    """Another fsc-sso on the same Redis, IdS and secrets, outside the LB;
    its redirect_uri is the LB's (the one registered at IdS)."""
    return stack.SsoInstance(name, st.redis, st.ids, public_url=st.url,
                             allowed_return_to=[st.return_to], secrets=st.secrets,
                             extra={"ids": {"verify": verify}}, tmp=st.tmp, start=start)


def ready(inst):
    status, body = stack.json_body("GET", inst.url + "/readyz")
    return status, body


def check_auto_goes_on_unverified(st):
    for inst in (st.a, st.b):
        lines = verification_lines(inst)
        assert len(lines) == 1, "%s logs its mode once: %r" % (inst.name, lines)
        assert "mode=off verify=auto" in lines[0] and "HTTP 503" in lines[0] and \
            "tokens are not verified" in lines[0], "%s: %s" % (inst.name, lines[0])
        status, body = ready(inst)
        assert status == 200, "auto without a key is ready: %d %r" % (status, body)
    s = st.session()
    assert s["user"] == USER, "sign-in works unverified, user read from sub: %r" % s
    print("ok  auto, key endpoint down at start: A and B log it once, stay ready, sign-ins "
          "work unverified")


def check_planted_key_refused(st):
    """Redis holds the key one instance fetched, sealed: a key planted by
    someone who can write to Redis is not taken."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key() \
        .public_bytes(serialization.Encoding.PEM,
                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    st.redis.cli("SET", "fsc:sso:idskey", json.dumps({"cur": pem}), "EX", "600")
    code = stack.login_flow(st.url, st.return_to, callback_url=st.a.url)
    status, s = st.client().handoff(code)
    assert status == 200, "the sign-in goes on unverified: %d %r" % (status, s)
    log = st.a.log_text()
    assert "event=ids_key_cache_unreadable rc=invalid" in log and \
        "event=ids_key_adopted" not in log, "the planted key is refused, not adopted"
    st.redis.cli("DEL", "fsc:sso:idskey")
    print("ok  a key planted in Redis (not sealed with the pair's key) is refused")


def check_required_waits_for_key(st):
    inst = extra(st, "req", "required")
    try:
        status, body = ready(inst)
        assert status == 503 and body["status"] == "unready" and \
            "verify = required" in body["detail"] and "HTTP 503" in body["detail"], \
            "required, no key: /readyz 503 saying why: %d %r" % (status, body)
        lines = verification_lines(inst)
        assert len(lines) == 1 and "mode=required ready=false" in lines[0], lines
        # (ha/haproxy-sso.cfg.in health-checks /readyz: no traffic for it)
        assert ready(inst)[0] == 503, "still unready while IdS serves no key"
        fetches = st.ids.stats()["key_fetches"]
        st.ids.config(keys_status=0)   # IdS serves its key again
        stack.wait_until(lambda: ready(inst)[0] == 200, 20, what="required instance ready")
        assert st.ids.stats()["key_fetches"] == fetches + 1, "it fetched the key itself, once"
        assert "mode=on verify=required ready=true" in inst.log_text()
        code = stack.login_flow(st.url, st.return_to, callback_url=inst.url)
        status, s = st.client(inst.url).handoff(code)
        assert status == 200 and s["user"] == USER, "required, key served: %d %r" % (status, s)
        assert "reason=token_verification" not in inst.log_text()

        # an opaque token cannot be verified: refused under required
        st.ids.config(token_shape="opaque")
        cb = stack.start_login(st.url, st.return_to)
        status, _, data = stack.http("GET", stack._rebase(cb, inst.url), timeout=15.0,
                                     cookies=cb.browser)
        assert status == 502, "required + opaque token: 502, got %d %r" % (status, data[:200])
        assert re.search(r'reason=token_verification detail="the token cannot be read', inst.log_text())
        st.ids.config(token_shape="cisco")
    finally:
        inst.stop()
    print("ok  required, key endpoint down: not ready (/readyz 503 + reason); "
          "fetches the key once IdS serves it, becomes ready, verifies; refuses opaque tokens")


def check_auto_picks_key_up(st):
    """The required instance cached the key in Redis: A and B adopt it."""
    fetches = st.ids.stats()["key_fetches"]
    for inst in (st.a, st.b):
        code = stack.login_flow(st.url, st.return_to, callback_url=inst.url)
        status, s = st.client().handoff(code)
        assert status == 200, "%s: %d %r" % (inst.name, status, s)
        assert re.search(r"event=ids_key_adopted source=redis key=\S+ previous=- reason=no_key",
                         inst.log_text()), "%s took the key from Redis" % inst.name
    assert st.ids.stats()["key_fetches"] == fetches, "from Redis, no fetch"
    # and now they verify: a token signed by a key IdS does not serve is refused
    st.ids.rotate_key(publish=False)
    cb = stack.start_login(st.url, st.return_to)
    status, _, _ = stack.http("GET", stack._rebase(cb, st.a.url), timeout=15.0,
                              cookies=cb.browser)
    assert status == 502, "A verifies now: a foreign-key token is refused (%d)" % status
    print("ok  auto instances take the key from Redis once another has it, and verify from "
          "then on")


def check_off_and_config(st):
    inst = extra(st, "off", "off")
    try:
        lines = verification_lines(inst)
        assert len(lines) == 1 and "mode=off verify=off" in lines[0], lines
        # off reads the claims without checking: the foreign-key token passes
        code = stack.login_flow(st.url, st.return_to, callback_url=inst.url)
        status, s = st.client(inst.url).handoff(code)
        assert status == 200 and s["user"] == USER, "verify=off: %d %r" % (status, s)
    finally:
        inst.stop()
    fetches = st.ids.stats()["key_requests"]
    for mode in ("auto", "required", "off"):
        inst = extra(st, "chk-" + mode, mode, start=False)
        rc, out = inst.check_config()
        assert rc == 0, "--check-config accepts verify = %s: %s" % (mode, out)
    assert st.ids.stats()["key_requests"] == fetches, "--check-config never calls IdS"
    inst = extra(st, "chk-bad", "sometimes", start=False)
    rc, out = inst.check_config()
    assert rc != 0 and re.search(r"fsc-sso\.ini:\d+: \[ids\] verify: expected auto, required or "
                                 r"off", out), "a wrong mode names file, line and key: %r" % out
    inst = stack.SsoInstance("chk-bad2", st.redis, st.ids, public_url=st.url,
                             allowed_return_to=[st.return_to], secrets=st.secrets,
                             extra={"ids": {"verify": "off",
                                            "jwt_public_key_file": st.ids.public_key_path}},
                             tmp=st.tmp, start=False)
    rc, out = inst.check_config()
    assert rc != 0 and "[ids] verify: off contradicts jwt_public_key_file" in out, out
    print("ok  verify=off logged as such and reads tokens unchecked; --check-config accepts "
          "auto/required/off, refuses others (file:line: [ids] verify), never calls IdS")


def main():
    with stack.Stack(token_shape="cisco", keys_status=503, user=USER) as st:
        check_auto_goes_on_unverified(st)
        check_planted_key_refused(st)
        check_required_waits_for_key(st)
        check_auto_picks_key_up(st)
        check_off_and_config(st)
    print("PASS it_ids_verify_modes")


if __name__ == "__main__":
    main()
