# SPDX-License-Identifier: AGPL-3.0-or-later
"""fsc-sso as a SAML 2.0 SP, against responses made at test time by an
independent implementation (python3-pysaml2 + xmlsec1, tests/sim/saml-idp),
on instances A and B behind HAProxy sharing one Redis.

Valid: signed Response, signed Assertion, both, encrypted Assertion
(AES-128-GCM and AES-256-CBC), a rollover key. Each attack is refused with
its own reason, checked in the log line and in /metrics: XSW1-8, comment
injection in NameID, DOCTYPE/XXE/billion laughs, duplicate IDs, attacker
KeyInfo, an unsigned second Assertion, SHA-1, RSA 1.5 and 3DES, an
encrypted Assertion not signed itself, expired, not yet valid, wrong
Audience/Recipient/Destination/Issuer, unknown/reused InResponseTo,
unsolicited, a RelayState of another request, a Response posted from
another browser than the one that started the sign-in (no binding cookie,
or another browser's: login CSRF), a group outside allowed_groups, a
replay to A then B, concurrent posts to A and B (exactly one wins), IdS
signing in another user than the IdP, and a Redis outage (fail closed). Then a SAML-only instance (no [ids]) with IdP-initiated
sign-in ending in a handoff, and fscctl saml-verify on the same files."""

import base64
import datetime
import os
import re
import subprocess
import sys
import threading
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "sim", "saml-idp"))
import stack  # noqa: E402
import saml_idp  # noqa: E402

SP = "https://sso.test/sso/saml/metadata"
ACS = "https://sso.test/sso/saml/acs"
FSCCTL = os.path.join(stack.BUILD_DIR, "connector", "fscctl")
UTC = datetime.timezone.utc


def now():
    return datetime.datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def refused_counts(inst):
    _, _, data = stack.http("GET", inst.url + "/metrics")
    out = {}
    for m in re.finditer(rb'fsc_sso_saml_refused_total\{reason="([a-z_0-9]+)"\} (\d+)', data):
        out[m.group(1).decode()] = int(m.group(2))
    return out


class Case:
    def __init__(self, st, idp, a, b):
        self.st, self.idp, self.a, self.b = st, idp, a, b
        self.failures = []
        # the agent's browser: its binding cookies go from the sign-in's
        # start to the ACS and the IdS callback
        self.browser = stack.Browser()

    def begin(self, via=None, browser=None):
        """GET /sso/saml/login -> 302 to the IdP: returns (request id,
        RelayState). Checks the AuthnRequest and its query signature."""
        via = via or self.st.url
        q = urllib.parse.urlencode({"return_to": self.st.return_to})
        status, hdrs, body = stack.http("GET", via + "/sso/saml/login?" + q,
                                        cookies=browser or self.browser)
        assert status == 302, (status, body[:300])
        loc = hdrs["location"]
        assert loc.startswith(self.idp.sso_url + "?"), loc
        raw = loc.split("?", 1)[1]
        p = dict(urllib.parse.parse_qsl(raw))
        rid, acs, dest, issuer = self.idp.parse_authn_request(p["SAMLRequest"], p["RelayState"])
        assert acs == ACS and dest == self.idp.sso_url and issuer == SP, (acs, dest, issuer)
        # the query signature, checked with openssl (saml-bindings §3.4.4.1)
        signed = raw.split("&Signature=")[0].encode()
        sig = base64.b64decode(p["Signature"])
        tmp = stack.session_tmp()
        tmp.write("authn-signed.bin", signed)
        tmp.write("authn-sig.bin", sig)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", self.sp_pub, "-signature",
                            tmp.file("authn-sig.bin"), tmp.file("authn-signed.bin")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert r.returncode == 0, r.stdout
        return rid, p["RelayState"]

    def post(self, xml, relay=None, via=None, browser=None):
        via = via or self.st.url
        form = {"SAMLResponse": saml_idp.post_form(xml)}
        if relay is not None:
            form["RelayState"] = relay
        return stack.http("POST", via + "/sso/saml/acs",
                          {"Content-Type": "application/x-www-form-urlencoded"},
                          urllib.parse.urlencode(form), timeout=15,
                          cookies=browser or self.browser)

    def accepted(self, name, xml, relay, via=None):
        status, hdrs, body = self.post(xml, relay, via)
        if status != 302 or not hdrs.get("location", "").startswith(self.st.ids.authorize_url):
            self.failures.append("%s: expected 302 to IdS, got %d %r" % (name, status, body[:200]))
            return None
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(hdrs["location"]).query))
        if q.get("login_hint") != "agent1@example.com":
            self.failures.append("%s: login_hint %r" % (name, q.get("login_hint")))
        stack.log("ok   %-28s accepted -> IdS authorize" % name)
        return hdrs["location"]

    def refused(self, name, reason, xml, relay=None, via=None, status_want=403, browser=None):
        inst = via or self.a
        before = refused_counts(inst).get(reason, 0)
        log_before = len(self.a.log_text()) + len(self.b.log_text())
        status, _, body = self.post(xml, relay, inst.url, browser)
        after = refused_counts(inst).get(reason, 0)
        logs = (self.a.log_text() + self.b.log_text())
        line = "event=saml_refused reason=%s " % reason
        if status != status_want or after != before + 1 or line not in logs:
            self.failures.append("%s: want %d reason=%s; got %d, metric %d->%d, log line %s; %r"
                                 % (name, status_want, reason, status, before, after,
                                    line in logs, body[:160]))
            stack.log("FAIL %-28s %d (want reason %s)" % (name, status, reason))
        else:
            stack.log("ok   %-28s refused: %s" % (name, reason))
        del log_before


# ---------------------------------------------------------------------------
# XSW1-8 (Somorovsky et al., "On Breaking SAML", USENIX Security 2012), made
# by moving signed pieces of a genuine response around as the paper's
# figures show; the evil Assertion names "admin" and carries a fresh ID.

# pysaml2 declares the dsig prefix on the Signature element itself
SIG_RE = re.compile(r'<(ns\d):Signature [^>]*xmldsig#[^>]*>.*?</\1:Signature>', re.S)


def with_object(sig, content):
    """sig with <Object>content</Object> appended inside it."""
    p = SIG_RE.match(sig).group(1)
    return sig[:-len("</%s:Signature>" % p)] + "<%s:Object>%s</%s:Object></%s:Signature>" % (
        p, content, p, p)


def _parts(xml):
    a0 = xml.index("<ns1:Assertion ")
    a1 = xml.index("</ns1:Assertion>") + len("</ns1:Assertion>")
    return a0, a1


def evil_assertion(xml, strip_sig=True):
    a0, a1 = _parts(xml)
    ev = xml[a0:a1]
    ev = re.sub(r'ID="[^"]+"', 'ID="id-evil-assertion"', ev, count=1)
    ev = ev.replace("agent1@example.com", "admin@example.com")
    if strip_sig:
        ev = SIG_RE.sub("", ev)
    return ev


def xsw(n, resp_signed, assert_signed):
    """Returns the attack document built from a genuine response."""
    body = re.sub(r"^<\?xml[^>]*>\s*", "", resp_signed)
    if n in (1, 2):
        # the signed Response kept whole (in the Signature's Object, or as
        # a sibling); a new root with an evil assertion
        root_open = re.match(r"<ns0:Response [^>]*>", body).group(0)
        evil_root = re.sub(r'ID="[^"]+"', 'ID="id-evil-response"', root_open, count=1)
        sig = SIG_RE.search(body).group(0)
        issuer = re.search(r"<ns1:Issuer[^>]*>.*?</ns1:Issuer>", body).group(0)
        status = re.search(r"<ns0:Status>.*?</ns0:Status>", body).group(0)
        ev = evil_assertion(body)
        if n == 1:
            sig2 = with_object(sig, body)
            return evil_root + issuer + sig2 + status + ev + "</ns0:Response>"
        return evil_root + issuer + sig + body + status + ev + "</ns0:Response>"
    body = re.sub(r"^<\?xml[^>]*>\s*", "", assert_signed)
    a0, a1 = _parts(body)
    orig = body[a0:a1]
    sig = SIG_RE.search(orig).group(0)
    ev = evil_assertion(body)
    if n == 3:       # evil assertion before the signed one
        return body[:a0] + ev + body[a0:]
    if n == 4:       # evil assertion wrapping the signed one
        return body[:a0] + ev.replace("</ns1:Assertion>", orig + "</ns1:Assertion>") + body[a1:]
    ev_with_sig = ev.replace("</ns1:Issuer>", "</ns1:Issuer>" + sig, 1)
    if n == 5:       # evil assertion with the copied signature, original at the end
        return body[:a0] + ev_with_sig + body[a1:].replace("</ns0:Response>", orig + "</ns0:Response>")
    if n == 6:       # original inside the copied signature's Object
        ev6 = ev.replace("</ns1:Issuer>", "</ns1:Issuer>" + with_object(sig, orig), 1)
        return body[:a0] + ev6 + body[a1:]
    if n == 7:       # original hidden in Extensions, evil one in its place
        return body[:a0].replace("<ns0:Status>", "<ns0:Extensions>%s</ns0:Extensions><ns0:Status>" % orig) \
            + ev + body[a1:]
    if n == 8:       # evil assertion whose Signature's Object holds the original without its signature
        orig_nosig = orig.replace(sig, "")
        ev8 = ev.replace("</ns1:Issuer>", "</ns1:Issuer>" + with_object(sig, orig_nosig), 1)
        return body[:a0] + ev8 + body[a1:]
    raise ValueError(n)


# The first check each variant trips: a wrapped copy keeps the signed
# element's IDs (the signature must still find it), so 1, 2, 5 and 6 repeat
# an ID; the others carry a second Assertion.
XSW_REASONS = {1: "duplicate_id", 2: "duplicate_id", 3: "assertion_count", 4: "assertion_count",
               5: "duplicate_id", 6: "duplicate_id", 7: "assertion_count", 8: "assertion_count"}


def main():
    tmp = stack.session_tmp()
    d = tmp.sub("saml")
    sp_key, sp_crt = saml_idp.make_keypair(d, "sp", "sso.test")
    sp_pub = os.path.join(d, "sp.pub")
    subprocess.run(["openssl", "x509", "-in", sp_crt, "-pubkey", "-noout", "-out", sp_pub], check=True)
    evil_key, evil_crt = saml_idp.make_keypair(d, "evil", "idp.test")
    roll_key, roll_crt = saml_idp.make_keypair(d, "rollover", "idp.test")
    idp = saml_idp.Idp(d, SP, ACS, sp_crt)
    md = idp.metadata(extra_cert_files=[roll_crt])
    saml = {"idp_metadata_file": md, "sp_entity_id": SP, "acs_url": ACS,
            "sp_key_file": sp_key, "sp_cert_file": sp_crt, "groups_attribute": "groups",
            "allowed_groups": "agents, supervisors", "gate_agents": "true",
            "clock_skew_s": "60"}
    with stack.Stack(sso_extra={"saml": saml}) as st:
        c = Case(st, idp, st.a, st.b)
        c.sp_pub = sp_pub

        # --- metadata and the gate on /sso/login ---
        status, hdrs, body = stack.http("GET", st.url + "/sso/saml/metadata")
        assert status == 200 and SP.encode() in body and ACS.encode() in body, body[:300]
        assert saml_idp.cert_b64(sp_crt).encode() in body
        q = urllib.parse.urlencode({"return_to": st.return_to})
        status, hdrs, _ = stack.http("GET", st.url + "/sso/login?" + q)
        assert status == 302 and hdrs["location"].startswith(idp.sso_url), hdrs.get("location")

        # --- valid shapes, each for its own request ---
        ok = {}
        for name, kw in [("signed response", dict(sign_response=True)),
                         ("signed assertion", dict(sign_response=False, sign_assertion=True)),
                         ("both signed", dict(sign_response=True, sign_assertion=True)),
                         ("encrypted aes128-gcm", dict(sign_response=False, sign_assertion=True,
                                                       encrypt=saml_idp.AES128_GCM)),
                         ("encrypted aes256-cbc", dict(sign_response=True, sign_assertion=True,
                                                       encrypt=saml_idp.AES256_CBC))]:
            rid, relay = c.begin()
            ok[name] = c.accepted(name, idp.response(rid, **kw), relay)
        rid, relay = c.begin()
        c.accepted("rollover key", idp.response(rid, key_file=roll_key, cert_file=roll_crt), relay)

        # one of them all the way: IdS signs the same user in -> handoff
        loc = ok["signed response"]
        status, hdrs, _ = stack.http("GET", loc)
        assert status == 302, status
        code = stack.finish_login(urllib.parse.urljoin(loc, hdrs["location"]), st.url,
                                  browser=c.browser)
        status, sess = st.client().handoff(code)
        assert status == 200 and sess["user"] == "agent1@example.com", (status, sess)
        stack.log("ok   full chain: IdP -> ACS -> IdS -> handoff as %s" % sess["user"])

        # IdS signs in someone else than the IdP vouched for -> refused
        rid, relay = c.begin()
        loc = c.accepted("mismatch (accepted at ACS)", idp.response(rid), relay)
        before = refused_counts(st.a).get("ids_user_mismatch", 0) + \
            refused_counts(st.b).get("ids_user_mismatch", 0)
        loc2 = loc.replace("login_hint=agent1%40example.com", "login_hint=agent2%40example.com")
        assert loc2 != loc
        status, hdrs, _ = stack.http("GET", loc2)
        status, _, body = stack.http("GET", urllib.parse.urljoin(loc2, hdrs["location"]),
                                     cookies=c.browser)
        after = refused_counts(st.a).get("ids_user_mismatch", 0) + \
            refused_counts(st.b).get("ids_user_mismatch", 0)
        if status != 403 or after != before + 1:
            c.failures.append("ids user mismatch: %d, metric %d->%d %r" % (status, before, after, body[:200]))
        else:
            stack.log("ok   %-28s refused: ids_user_mismatch" % "IdS user != IdP user")

        # --- XSW1-8 ---
        for n in range(1, 9):
            rid, relay = c.begin()
            rs = idp.response(rid, sign_response=True)
            sa = idp.response(rid, sign_response=False, sign_assertion=True)
            c.refused("XSW%d" % n, XSW_REASONS[n], xsw(n, rs, sa), relay)

        # --- parser and structure ---
        rid, relay = c.begin()
        good = idp.response(rid, sign_response=False, sign_assertion=True)
        # CVE-2017-11427 & co: the IdP signs "agent1@example.com.evil.com"
        # (an account the attacker registered); a comment inserted after
        # signing leaves the signature valid (exc-c14n drops comments) and
        # makes a naive first-text-node read "agent1@example.com"
        evil = idp.response(rid, sign_response=False, sign_assertion=True,
                            user="agent1@example.com.evil.com")
        c.refused("comment in NameID", "nameid",
                  evil.replace(">agent1@example.com.evil.com<", ">agent1@example.com<!---->.evil.com<"),
                  relay)
        body = re.sub(r"^<\?xml[^>]*>\s*", "", good)
        c.refused("DOCTYPE", "doctype", '<!DOCTYPE r [<!ENTITY x "y">]>' + body, relay)
        c.refused("XXE", "doctype", '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' +
                  body.replace("agent1@example.com", "&x;"), relay)
        laughs = '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">' + "".join(
            '<!ENTITY %s "%s">' % (chr(98 + i), ("&%s;" % chr(97 + i)) * 10) for i in range(9)) + ']>'
        c.refused("billion laughs", "doctype", laughs + body.replace("agent1@example.com", "&j;"), relay)
        aid = re.search(r'<ns1:Assertion [^>]*ID="([^"]+)"', body).group(1)
        c.refused("duplicate IDs", "duplicate_id", body.replace(
            "<ns0:Status>", '<ns0:Extensions><ns0:X ID="%s"/></ns0:Extensions><ns0:Status>' % aid), relay)
        c.refused("attacker KeyInfo", "signature_invalid",
                  idp.response(rid, key_file=evil_key, cert_file=evil_crt), relay)
        c.refused("unsigned 2nd assertion", "assertion_count", body.replace(
            "</ns0:Response>", evil_assertion(body) + "</ns0:Response>"), relay)
        c.refused("SHA-1", "signature_algorithm", idp.response(rid, sha1=True), relay)
        c.refused("RSA 1.5 key transport", "encryption_algorithm",
                  idp.response(rid, sign_response=False, sign_assertion=True,
                               encrypt=saml_idp.AES128_CBC, key_enc=saml_idp.RSA_1_5), relay)
        c.refused("3DES", "encryption_algorithm",
                  idp.response(rid, sign_response=False, sign_assertion=True,
                               encrypt=saml_idp.TRIPLEDES_CBC), relay)
        c.refused("encrypted, unsigned inside", "signature_missing",
                  idp.response(rid, sign_response=True, sign_assertion=False,
                               encrypt=saml_idp.AES128_GCM), relay)
        c.refused("nothing signed", "signature_missing",
                  idp.response(rid, sign_response=False), relay)
        # --- meaning (valid signatures, wrong content) ---
        t = now()
        m = datetime.timedelta(minutes=1)
        c.refused("expired", "expired",
                  idp.response(rid, now=t - 20 * m, not_on_or_after=t - 10 * m), relay)
        c.refused("not yet valid", "not_yet_valid",
                  idp.response(rid, not_before=t + 10 * m, not_on_or_after=t + 20 * m), relay)
        c.refused("wrong Audience", "audience", idp.response(rid, audience="https://other.test/sp"), relay)
        c.refused("wrong Recipient", "recipient", idp.response(rid, recipient="https://evil.test/acs"), relay)
        c.refused("wrong Destination", "destination",
                  idp.response(rid, destination="https://evil.test/acs"), relay)
        c.refused("wrong Issuer", "issuer", idp.response(rid, assertion_issuer="https://evil.test/idp"),
                  relay)
        c.refused("no AuthnStatement", "no_authn_statement", idp.response(rid, authn_statement=False), relay)
        c.refused("Status not Success", "status_not_success",
                  idp.response(rid, status="urn:oasis:names:tc:SAML:2.0:status:Requester"), relay)
        c.refused("group not allowed", "group_not_allowed", idp.response(rid, groups=("others",)), relay)
        # --- InResponseTo, RelayState, replay ---
        c.refused("unknown InResponseTo", "unknown_in_response_to", idp.response("_deadbeef"), relay)
        c.refused("unsolicited", "unsolicited", idp.response(None), relay)
        rid2, relay2 = c.begin()
        c.refused("RelayState of another", "relay_state", idp.response(rid2), relay)
        # login CSRF: the attacker's own Response, posted from the victim's
        # browser (which has no binding cookie for it, or its own)
        rid, relay = c.begin()
        c.refused("posted by a cookieless browser", "browser_mismatch", idp.response(rid), relay,
                  browser=stack.Browser())
        victim = stack.Browser()
        c.begin(browser=victim)           # the victim has a sign-in of their own going
        rid, relay = c.begin()
        c.refused("posted by another browser", "browser_mismatch", idp.response(rid), relay,
                  browser=victim)
        rid, relay = c.begin(via=st.a.url)       # issued on A, answered on B
        first = idp.response(rid)
        c.accepted("request on A, ACS on B", first, relay, via=st.b.url)
        c.refused("reused InResponseTo", "unknown_in_response_to", idp.response(rid), relay, via=st.a)
        c.refused("replay to A after B", "replay", first, relay, via=st.a)

        # concurrent posts of one response to A and B: exactly one wins
        for round_ in range(3):
            rid, relay = c.begin()
            xml = idp.response(rid)
            results = {}
            go = threading.Barrier(2)

            def send(inst):
                go.wait()
                results[inst.name] = c.post(xml, relay, inst.url)[0]
            ts = [threading.Thread(target=send, args=(i,)) for i in (st.a, st.b)]
            for th in ts:
                th.start()
            for th in ts:
                th.join()
            codes = sorted(results.values())
            if codes != [302, 403]:
                c.failures.append("concurrent round %d: %r" % (round_, results))
        stack.log("ok   concurrent A+B x3: exactly one 302 each time")

        # Redis down: fail closed (503, nothing accepted), then back
        rid, relay = c.begin()
        xml = idp.response(rid)
        st.redis.stop()
        c.refused("Redis outage", "store_unavailable", xml, relay, status_want=503)
        st.redis.start()
        st.a.wait_ready()

        # fscctl saml-verify on the same kind of files
        good_file = tmp.write("saml/good.xml", idp.response("_x"))
        bad_file = tmp.write("saml/xsw3.b64", saml_idp.post_form(xsw(3, "", idp.response(
            "_x", sign_response=False, sign_assertion=True))))
        r = subprocess.run([FSCCTL, "saml-verify", "--metadata", md, "--sp-entity-id", SP, "--acs-url", ACS,
                            good_file], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 0 and "ACCEPTED user=agent1@example.com" in r.stdout, r.stdout
        assert "response_signature     PASS" in r.stdout, r.stdout
        r = subprocess.run([FSCCTL, "saml-verify", "--metadata", md, bad_file],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 1 and "REFUSED  reason=assertion_count" in r.stdout, r.stdout
        r = subprocess.run([FSCCTL, "saml-verify", "--metadata", md, "--at", "2001-01-01T00:00:00Z",
                            "--sp-entity-id", SP, "--acs-url", ACS, good_file],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 1 and "reason=not_yet_valid" in r.stdout, r.stdout
        stack.log("ok   fscctl saml-verify: accepted / assertion_count / not_yet_valid")

        # --- a SAML-only instance (no [ids]): IdP-initiated -> handoff ---
        only = stack.SsoInstance("saml-only", st.redis, None, allowed_return_to=[st.return_to],
                                 secrets=st.secrets, extra={"saml": dict(
                                     saml, gate_agents="false", allow_idp_initiated="true")})
        only.wait_ready()
        status, hdrs, body = c.post(idp.response(None), "https://evil.test/", only.url)
        assert status == 302, (status, body[:300])
        loc = hdrs["location"]
        assert loc.startswith(st.return_to) and "handoff=" in loc, loc
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))["handoff"]
        status, sess = stack.SsoClient(only.url, st.service_key).handoff(code)
        assert status == 200 and sess["user"] == "agent1@example.com", (status, sess)
        status, obj = stack.SsoClient(only.url, st.service_key).token(sess["session"])
        assert status == 409 and obj["error"] == "no_token", (status, obj)
        stack.log("ok   SAML-only, IdP-initiated: handoff as %s, token 409" % sess["user"])
        only.stop()

        if c.failures:
            stack.mark_failed()
            for f in c.failures:
                stack.log("FAILED: " + f)
            return 1
    stack.log("it_saml_sp: all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
