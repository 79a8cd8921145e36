# SPDX-License-Identifier: AGPL-3.0-or-later
"""SAML Single Logout (HTTP-Redirect) on fsc-sso A and B behind HAProxy, one
Redis, against messages made at test time by an independent implementation
(python3-pysaml2 + xmlsec1, tests/sim/saml-idp).

Agents sign in the whole way (IdP -> ACS -> IdS -> handoff), on A and on B.
IdP-initiated: the IdP's LogoutRequest ends every session of that NameID on
both instances, and only those (another user's stay; with a SessionIndex
only that IdP session's), their refresh tokens revoked at IdS; the answer
is a LogoutResponse pysaml2 verifies (signature with our metadata
certificate, InResponseTo, Success, RelayState echoed). Refused, each with
its reason in the log and in /metrics and nothing ended: unsigned, another
key, SHA-1, a signature over another RelayState, expired (IssueInstant,
NotOnOrAfter), not yet valid, wrong Destination and Issuer, a comment in
the NameID, DOCTYPE, a deflate bomb, a parameter twice, replays to A then B.
A query signed with lowercase percent-escapes is accepted (verified as
received). SP-initiated: the service API ends a session and mints a
one-time logout code, the browser goes to the IdP with our signed
LogoutRequest (NameID, Format, SessionIndex as asserted), the IdP's
LogoutResponse (on the other instance) ends at return_to; a reused or
unknown InResponseTo, another RelayState, a reused code are refused; bad
input to the service API changes nothing. Redis down: the IdP gets
Responder, never Success; a LogoutResponse gets 503. Redis holds only
hashes of NameIDs and session ids. A LogoutRequest also stops an assertion
posted after it and an IdS leg completing after it. Without sp_key_file no
SLO is offered."""

import datetime
import os
import re
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "sim", "saml-idp"))
import stack  # noqa: E402
import saml_idp  # noqa: E402
from saml2 import samlp  # noqa: E402
from saml2.saml import NAMEID_FORMAT_UNSPECIFIED  # noqa: E402

SP = "https://sso.test/sso/saml/metadata"
ACS = "https://sso.test/sso/saml/acs"
SLO = "https://sso.test/sso/saml/slo"
UTC = datetime.timezone.utc
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"


def now():
    return datetime.datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def counters(inst, family):
    _, _, data = stack.http("GET", inst.url + "/metrics")
    out = {}
    for m in re.finditer(rb'fsc_sso_%s\{([^}]*)\} (\d+)' % family.encode(), data):
        out[m.group(1).decode()] = int(m.group(2))
    return out


def refused(inst, reason):
    return counters(inst, "saml_logout_refused_total").get('reason="%s"' % reason, 0)


def outcome(inst, initiator, status):
    return counters(inst, "saml_logouts_total").get(
        'initiator="%s",status="%s"' % (initiator, status), 0)


class Slo:
    def __init__(self, st, idp, sp_crt):
        self.st, self.idp, self.sp_crt = st, idp, sp_crt
        self.failures = []

    def fail(self, what):
        self.failures.append(what)
        stack.log("FAIL " + what)

    # --- a whole sign-in: IdP -> ACS -> IdS -> handoff ---------------------
    def acs(self, user, session_index, via=None, authn_at=None):
        """Start a sign-in and post the IdP's Response (AuthnInstant
        authn_at, default now): returns (status, headers, body, browser)."""
        base = via.url if via else self.st.url
        browser = stack.Browser()
        q = urllib.parse.urlencode({"return_to": self.st.return_to})
        status, hdrs, body = browser.get(base + "/sso/saml/login?" + q)
        assert status == 302, (status, body[:200])
        p = dict(urllib.parse.parse_qsl(hdrs["location"].split("?", 1)[1]))
        rid = self.idp.parse_authn_request(p["SAMLRequest"], p["RelayState"])[0]
        xml = self.idp.response(rid, user=user, session_index=session_index, now=authn_at)
        status, hdrs, body = stack.http(
            "POST", base + "/sso/saml/acs", {"Content-Type": "application/x-www-form-urlencoded"},
            urllib.parse.urlencode({"SAMLResponse": saml_idp.post_form(xml),
                                    "RelayState": p["RelayState"]}), cookies=browser)
        return status, hdrs, body, browser

    def ids_leg(self, hdrs, browser, via=None):
        """From the ACS's 302 to IdS through the callback: (status, headers,
        body) of the callback."""
        base = via.url if via else self.st.url
        status, h, body = browser.get(hdrs["location"])     # ids-sim approves login_hint
        assert status == 302, (status, body[:200])
        url = stack._rebase(h["location"], base) if via else h["location"]
        return browser.get(url)

    def sign_in(self, user, session_index, via=None):
        """Returns the session id; via: the instance that runs every step
        (default: through HAProxy)."""
        base = via.url if via else self.st.url
        status, hdrs, body, browser = self.acs(user, session_index, via)
        assert status == 302 and hdrs["location"].startswith(self.st.ids.authorize_url), \
            (status, body[:300])
        status, hdrs, body = browser.get(hdrs["location"])     # ids-sim approves login_hint
        assert status == 302, (status, body[:200])
        cb = stack.CallbackUrl(hdrs["location"])
        cb.browser = browser
        code = stack.finish_login(cb, base if via else None, browser=browser)
        status, obj = self.st.client(base).handoff(code)
        assert status == 200 and obj["user"] == user, (status, obj)
        return obj["session"]

    def alive(self, session):
        status, obj = self.st.client().token(session)
        assert status in (200, 404), (status, obj)
        return status == 200

    # --- IdP-initiated -------------------------------------------------------
    def send_request(self, query, inst):
        return stack.http("GET", inst.url + "/sso/saml/slo?" + query)

    def refused_request(self, name, reason, query, inst, keep=()):
        """The LogoutRequest is refused on inst with reason (log + metric),
        and the sessions in keep are still alive."""
        before = refused(inst, reason)
        status, hdrs, body = self.send_request(query, inst)
        after = refused(inst, reason)
        line = "event=saml_logout_refused reason=%s " % reason
        if status != 403 or after != before + 1 or line not in inst.log_text():
            self.fail("%s: want 403 reason=%s; got %d, metric %d->%d, log line %s, %r"
                      % (name, reason, status, before, after, line in inst.log_text(),
                         (hdrs.get("location") or body)[:160]))
            return
        gone = [s for s in keep if not self.alive(s)]
        if gone:
            self.fail("%s: refused, yet %d session(s) ended" % (name, len(gone)))
            return
        stack.log("ok   %-34s refused: %s" % (name, reason))

    def logout_response_of(self, hdrs, rid, relay, status_want=samlp.STATUS_SUCCESS,
                           sub_want=None):
        """fsc-sso's answer to LogoutRequest rid, as the IdP reads it."""
        loc = hdrs.get("location", "")
        if not loc.startswith(self.idp.slo_url + "?"):
            self.fail("LogoutRequest %s: expected a redirect to the IdP, got %r" % (rid, loc[:200]))
            return None
        r = self.idp.read_redirect(loc, self.sp_crt)
        m = r.msg
        want = ("LogoutResponse", True, rid, self.idp.slo_url, SP, relay, (status_want, sub_want))
        got = (r.kind, r.signature_ok, m.in_response_to, m.destination, m.issuer.text,
               r.relay_state, r.status)
        if got != want:
            self.fail("LogoutResponse to %s: want %r, got %r" % (rid, want, got))
            return None
        return r


def main():
    tmp = stack.session_tmp()
    d = tmp.sub("saml")
    sp_key, sp_crt = saml_idp.make_keypair(d, "sp", "sso.test")
    evil_key, evil_crt = saml_idp.make_keypair(d, "evil", "idp.test")
    idp = saml_idp.Idp(d, SP, ACS, sp_crt)
    md = idp.metadata()
    saml = {"idp_metadata_file": md, "sp_entity_id": SP, "acs_url": ACS, "slo_url": SLO,
            "sp_key_file": sp_key, "sp_cert_file": sp_crt, "gate_agents": "true",
            "clock_skew_s": "60"}
    with stack.Stack(sso_extra={"saml": saml}) as st:
        t = Slo(st, idp, sp_crt)
        a, b = st.a, st.b

        # --- our metadata names the SLO endpoint ---
        status, _, body = stack.http("GET", st.url + "/sso/saml/metadata")
        assert status == 200 and (b'SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:'
                                  b'bindings:HTTP-Redirect" Location="%s"' % SLO.encode()) in body, body

        # --- IdP-initiated: every session of the NameID, on A and on B ---
        revoked0 = st.ids.stats()["revocations"]
        alice_a = t.sign_in("alice@example.com", "idp-sess-1", via=a)
        alice_b = t.sign_in("alice@example.com", "idp-sess-2", via=b)
        bob = t.sign_in("bob@example.com", "idp-sess-3")
        assert t.alive(alice_a) and t.alive(alice_b) and t.alive(bob)
        stack.log("ok   signed in: alice on A and on B, bob")

        # no secret or NameID in the clear in Redis; the index is hashes
        keys = st.redis.cli("KEYS", "fsc:sso:samlsub:*")
        members = [m for k in keys for m in st.redis.cli("SMEMBERS", k)]
        ttls = [st.redis.cli("TTL", k) for k in keys]
        assert len(keys) == 2 and all(re.fullmatch(r"fsc:sso:samlsub:[0-9a-f]{64}", k) for k in keys), keys
        assert len(members) == 3 and all(re.fullmatch(r"[0-9a-f]{64}", m) for m in members), members
        assert all(0 < x <= 43200 for x in ttls), ttls
        for k in st.redis.cli("KEYS", "*"):
            typ = st.redis.cli("TYPE", k)
            vals = [st.redis.cli("GET", k)] if typ == "string" else \
                st.redis.cli("SMEMBERS", k) if typ == "set" else []
            blob = (k + "".join(v if isinstance(v, str) else v.decode("latin-1") for v in vals))
            assert "alice" not in blob and "bob@" not in blob and alice_a not in blob, (k, typ)
        stack.log("ok   Redis: samlsub index of hashes (TTL <= max_lifetime_s), no NameID or id in the clear")

        rid, q = idp.logout_request(SLO, user="alice@example.com", relay_state="idp-relay/1")
        status, hdrs, _ = t.send_request(q, b)
        if t.logout_response_of(hdrs, rid, "idp-relay/1"):
            ended = (not t.alive(alice_a), not t.alive(alice_b), t.alive(bob))
            if ended != (True, True, True):
                t.fail("IdP-initiated logout: alice A/B ended, bob alive: %r" % (ended,))
            else:
                stack.log("ok   LogoutRequest on B: alice's sessions (A, B) ended, bob's not; "
                          "Success, signed, RelayState echoed")
        stack.wait_until(lambda: st.ids.stats()["revocations"] >= revoked0 + 2, 10,
                         what="IdS saw alice's refresh tokens revoked")
        if outcome(b, "idp", "success") != 1:
            t.fail("metric idp/success on B: %r" % counters(b, "saml_logouts_total"))

        # --- SessionIndex: only that IdP session ---
        c1 = t.sign_in("carol@example.com", "carol-1", via=a)
        c2 = t.sign_in("carol@example.com", "carol-2", via=b)
        rid, q = idp.logout_request(SLO, user="carol@example.com", session_indexes=["carol-2"])
        status, hdrs, _ = t.send_request(q, a)
        if t.logout_response_of(hdrs, rid, None):
            if (t.alive(c1), t.alive(c2)) != (True, False):
                t.fail("SessionIndex carol-2: alive %r" % ((t.alive(c1), t.alive(c2)),))
            else:
                stack.log("ok   LogoutRequest with SessionIndex: only that IdP session's fsc-sso session")
        # a NameID with nothing signed in: Success, nothing ended
        rid, q = idp.logout_request(SLO, user="nobody@example.com")
        status, hdrs, _ = t.send_request(q, a)
        if t.logout_response_of(hdrs, rid, None) and not (t.alive(c1) and t.alive(bob)):
            t.fail("a LogoutRequest for nobody ended someone")

        # --- a LogoutRequest also stops what is on its way (core §3.7.3.1) ---
        T = now()
        second = datetime.timedelta(seconds=1)
        # an assertion posted after the logout: refused at the ACS
        bid, q = idp.logout_request(SLO, user="hank@example.com", now=T)
        status, hdrs, _ = t.send_request(q, b)
        t.logout_response_of(hdrs, bid, None)
        before = counters(a, "saml_refused_total").get('reason="logged_out"', 0)
        status, hdrs, body, _ = t.acs("hank@example.com", "hank-1", via=a, authn_at=T - 5 * second)
        after = counters(a, "saml_refused_total").get('reason="logged_out"', 0)
        if status != 403 or after != before + 1:
            t.fail("assertion after its logout: %d, metric %d->%d %r" % (status, before, after, body[:200]))
        else:
            stack.log("ok   assertion authenticated before the IdP's logout, posted after: refused logged_out")
        # a new authentication after the logout is not affected
        if t.acs("hank@example.com", "hank-2", via=a, authn_at=T + 2 * second)[0] != 302:
            t.fail("a sign-in authenticated after the logout was refused")
        # the IdS leg on its way when the logout comes: no session at the end
        status, hdrs, body, browser = t.acs("ivan@example.com", "ivan-1", via=a)
        assert status == 302, (status, body[:200])
        rid, q = idp.logout_request(SLO, user="ivan@example.com", session_indexes=["ivan-1"])
        status, h2, _ = t.send_request(q, a)
        t.logout_response_of(h2, rid, None)
        before = counters(b, "saml_refused_total").get('reason="logged_out"', 0)
        status, h3, body = t.ids_leg(hdrs, browser, via=b)
        after = counters(b, "saml_refused_total").get('reason="logged_out"', 0)
        if status != 403 or "handoff" in h3.get("location", "") or after != before + 1:
            t.fail("IdS leg after the logout: %d %r, metric %d->%d" % (status, h3.get("location"),
                                                                      before, after))
        else:
            stack.log("ok   IdS leg in flight during the logout: callback 403, no session, logged_out")

        # --- refused LogoutRequests: reason in log and metrics, nothing ended ---
        keep = (c1, bob)
        carol = dict(user="carol@example.com")
        T = now()
        minute = datetime.timedelta(minutes=1)
        t.refused_request("unsigned", "signature_missing",
                          idp.logout_request(SLO, sign=False, **carol)[1], a, keep)
        t.refused_request("signed by another key", "signature_invalid",
                          idp.logout_request(SLO, key_file=evil_key, cert_file=evil_crt, **carol)[1],
                          a, keep)
        t.refused_request("SHA-1", "signature_algorithm",
                          idp.logout_request(SLO, sha1=True, **carol)[1], b, keep)
        _, q = idp.logout_request(SLO, relay_state="one", **carol)
        t.refused_request("RelayState changed after signing", "signature_invalid",
                          q.replace("RelayState=one", "RelayState=two"), a, keep)
        _, q = idp.logout_request(SLO, **carol)
        t.refused_request("SigAlg removed", "signature_missing",
                          re.sub(r"&SigAlg=[^&]*", "", q), a, keep)
        t.refused_request("IssueInstant 20 min old", "expired",
                          idp.logout_request(SLO, now=T - 20 * minute, **carol)[1], a, keep)
        t.refused_request("NotOnOrAfter passed", "expired",
                          idp.logout_request(SLO, not_on_or_after=T - 5 * minute, **carol)[1], a, keep)
        t.refused_request("IssueInstant in 10 min", "not_yet_valid",
                          idp.logout_request(SLO, now=T + 10 * minute, **carol)[1], a, keep)
        t.refused_request("wrong Destination", "destination",
                          idp.logout_request(SLO, destination="https://evil.test/slo", **carol)[1],
                          a, keep)
        t.refused_request("no Destination", "destination",
                          idp.logout_request(SLO, mutate=lambda x: x.replace(
                              ' Destination="%s"' % SLO, ""), **carol)[1], a, keep)
        t.refused_request("wrong Issuer", "issuer",
                          idp.logout_request(SLO, issuer="https://evil.test/idp", **carol)[1], a, keep)
        t.refused_request("comment in NameID", "nameid",
                          idp.logout_request(SLO, mutate=lambda x: x.replace(
                              ">carol@example.com<", ">carol@<!---->example.com<"), **carol)[1],
                          a, keep)
        t.refused_request("DOCTYPE", "doctype", idp.logout_request(SLO, mutate=lambda x: (
            '<!DOCTYPE r [<!ENTITY x "carol@example.com">]>' +
            re.sub(r"^<\?xml[^>]*>\s*", "", x).replace(">carol@example.com<", ">&x;<")), **carol)[1],
            a, keep)
        t.refused_request("deflate bomb (signed)", "too_large", idp.logout_request(SLO, mutate=lambda x: (
            x.replace("</ns0:LogoutRequest>", "<!--" + "A" * 200000 + "--></ns0:LogoutRequest>")),
            **carol)[1], a, keep)
        _, q = idp.logout_request(SLO, **carol)
        t.refused_request("SAMLRequest twice", "bad_query",
                          q + "&" + q.split("&")[0], a, keep)
        t.refused_request("an AuthnRequest-shaped message", "not_a_logout_message",
                          idp.logout_request(SLO, mutate=lambda x: x.replace(
                              "LogoutRequest", "AuthnRequest"), **carol)[1], a, keep)
        # a replay: the first delivery on A ends carol-1, the same on B is refused
        rid, q = idp.logout_request(SLO, **carol)
        status, hdrs, _ = t.send_request(q, a)
        if t.logout_response_of(hdrs, rid, None) and t.alive(c1):
            t.fail("carol-1 should have ended")
        t.refused_request("replay to B after A", "replay", q, b, (bob,))
        t.refused_request("replay to A again", "replay", q, a, (bob,))
        # verified as received: lowercase escapes, a RelayState with '/' and '+'
        d1 = t.sign_in("dave@example.com", "dave-1")
        rid, q = idp.logout_request(SLO, user="dave@example.com", relay_state="r/1+x",
                                    lowercase_escapes=True)
        assert "%2f" in q and "%2F" not in q, q[:200]
        status, hdrs, _ = t.send_request(q, a)
        if t.logout_response_of(hdrs, rid, "r/1+x") and t.alive(d1):
            t.fail("lowercase-escaped LogoutRequest did not end dave's session")
        else:
            stack.log("ok   query signed with lowercase %-escapes verified as received")

        # --- SP-initiated round trip ---
        erin = t.sign_in("erin@example.com", "erin-idp-1")
        cl = st.client()
        status, obj = cl.call("POST", "/v1/saml-logout",
                              {"session": erin, "return_to": "https://evil.test/"})
        assert status == 400 and obj["error"] == "invalid_request" and t.alive(erin), (status, obj)
        status, obj = cl.call("POST", "/v1/saml-logout", {"session": erin}, key="wrong")
        assert status == 401 and t.alive(erin), (status, obj)
        status, obj = cl.call("POST", "/v1/saml-logout", {"session": "x" * 43})
        assert status == 404 and obj["error"] == "unknown_session", (status, obj)
        status, obj = cl.call("POST", "/v1/saml-logout", {"session": "../x"})
        assert status == 404 and obj["error"] == "unknown_session", (status, obj)
        status, obj = cl.call("POST", "/v1/saml-logout", {"return_to": st.return_to})
        assert status == 400 and obj["error"] == "invalid_request", (status, obj)
        stack.log("ok   service API: foreign return_to 400, wrong key 401, unknown or malformed "
                  "session 404, no session 400; session untouched")
        revoked0 = st.ids.stats()["revocations"]
        status, obj = cl.call("POST", "/v1/saml-logout",
                              {"session": erin, "return_to": st.return_to + "?tab=1"})
        assert status == 200 and obj["user"] == "erin@example.com", (status, obj)
        url = obj["saml_logout_url"]
        assert url.startswith(st.url + "/sso/saml/logout?code=") and erin not in url, url
        assert not t.alive(erin), "the session ends at once"
        stack.wait_until(lambda: st.ids.stats()["revocations"] > revoked0, 10,
                         what="IdS saw erin's refresh token revoked")
        status, obj2 = cl.call("POST", "/v1/saml-logout", {"session": erin})
        assert status == 404, (status, obj2)
        # the browser, on A: on to the IdP with our LogoutRequest
        code_url = url.replace(st.url, a.url)
        status, hdrs, body = stack.http("GET", code_url)
        assert status == 302, (status, body[:200])
        r = idp.read_redirect(hdrs["location"], sp_crt)
        m = r.msg
        got = (r.kind, r.signature_ok, m.issuer.text, m.destination, m.name_id.text,
               m.name_id.format, [si.text for si in m.session_index])
        want = ("LogoutRequest", True, SP, idp.slo_url, "erin@example.com",
                NAMEID_FORMAT_UNSPECIFIED, ["erin-idp-1"])
        assert got == want, (got, want, r.xml)
        assert outcome(a, "sp", "started") == 1
        stack.log("ok   SP-initiated: LogoutRequest signed (pysaml2 verified), NameID/Format/"
                  "SessionIndex as asserted")
        status, _, _ = stack.http("GET", code_url)          # the code again
        if status != 403 or refused(a, "unknown_logout_code") != 1:
            t.fail("reused logout code: %d, metric %d" % (status, refused(a, "unknown_logout_code")))
        # the IdP's LogoutResponse, delivered on B
        q = idp.logout_response(SLO, m.id, relay_state=r.relay_state)
        status, hdrs, _ = stack.http("GET", b.url + "/sso/saml/slo?" + q)
        loc = hdrs.get("location", "")
        if status != 302 or loc != st.return_to + "?tab=1&saml_logout=success":
            t.fail("LogoutResponse on B: %d %r" % (status, loc))
        else:
            stack.log("ok   LogoutResponse on B (request from A): back to return_to, saml_logout=success")
        if outcome(b, "sp", "success") != 1:
            t.fail("metric sp/success on B")
        t.refused_request("LogoutResponse reused", "unknown_in_response_to", q, a)
        t.refused_request("LogoutResponse, unknown InResponseTo", "unknown_in_response_to",
                          idp.logout_response(SLO, "_0123456789abcdef", relay_state=r.relay_state), b)
        t.refused_request("LogoutResponse, unsigned", "signature_missing",
                          idp.logout_response(SLO, "_x", sign=False), b)
        # another round: a RelayState of someone else's, then an IdP that failed
        for case in ("relay", "responder"):
            s = t.sign_in("frank@example.com", "frank-%s" % case)
            status, obj = cl.call("POST", "/v1/saml-logout", {"session": s})
            assert status == 200 and obj["saml_logout_url"], (status, obj)
            status, hdrs, _ = stack.http("GET", obj["saml_logout_url"])
            r = idp.read_redirect(hdrs["location"], sp_crt)
            if case == "relay":
                t.refused_request("LogoutResponse, another RelayState", "relay_state",
                                  idp.logout_response(SLO, r.msg.id, relay_state="not-ours"), a)
            else:
                q = idp.logout_response(SLO, r.msg.id, relay_state=r.relay_state, status=RESPONDER)
                status, hdrs, _ = stack.http("GET", a.url + "/sso/saml/slo?" + q)
                if status != 302 or not hdrs["location"].endswith("saml_logout=failed") or \
                        outcome(a, "sp", "not_success") != 1:
                    t.fail("IdP answered Responder: %d %r" % (status, hdrs.get("location")))
                else:
                    stack.log("ok   IdP answered Responder: return_to with saml_logout=failed, counted")

        # --- Redis down: fail closed ---
        g1 = t.sign_in("gina@example.com", "gina-1")
        status, obj = cl.call("POST", "/v1/saml-logout", {"session": g1})
        status, hdrs, _ = stack.http("GET", obj["saml_logout_url"])
        r = idp.read_redirect(hdrs["location"], sp_crt)
        resp_q = idp.logout_response(SLO, r.msg.id, relay_state=r.relay_state)
        rid, req_q = idp.logout_request(SLO, user="bob@example.com")
        st.redis.stop()
        before = refused(a, "store_unavailable")
        status, hdrs, _ = t.send_request(req_q, a)
        if t.logout_response_of(hdrs, rid, None, status_want=RESPONDER):
            if refused(a, "store_unavailable") != before + 1 or outcome(a, "idp", "responder") != 1:
                t.fail("Redis down: not counted")
            else:
                stack.log("ok   Redis down: the IdP's LogoutRequest answered Responder (never Success)")
        status, _, _ = stack.http("GET", a.url + "/sso/saml/slo?" + resp_q)
        if status != 503:
            t.fail("Redis down: LogoutResponse got %d, want 503" % status)
        status, obj = cl.call("POST", "/v1/saml-logout", {"session": bob})
        if status != 503:
            t.fail("Redis down: saml-logout got %d %r, want 503" % (status, obj))
        st.redis.start()
        a.wait_ready()
        b.wait_ready()
        stack.log("ok   Redis down: LogoutResponse 503, service API 503")

        # --- SLO only where messages can be signed; slo_url checked ---
        nokey = stack.SsoInstance("nokey", st.redis, st.ids, allowed_return_to=[st.return_to],
                                  secrets=st.secrets, extra={"saml": dict(
                                      saml, sp_key_file=None, sp_cert_file=None)})
        nokey.wait_ready()
        status, _, body = stack.http("GET", nokey.url + "/sso/saml/metadata")
        assert status == 200 and b"SingleLogoutService" not in body, body
        status, _, _ = stack.http("GET", nokey.url + "/sso/saml/slo?" + idp.logout_request(SLO)[1])
        assert status == 404, status
        nokey.stop()
        bad = stack.SsoInstance("badslo", st.redis, st.ids, allowed_return_to=[st.return_to],
                                secrets=st.secrets, start=False,
                                extra={"saml": dict(saml, slo_url="sso.test/slo")})
        rc, out = bad.check_config()
        assert rc != 0 and "[saml] slo_url: expected an absolute http(s) URL" in out, (rc, out)
        stack.log("ok   without sp_key_file no SLO (metadata, 404); a bad slo_url refused by --check-config")

        if t.failures:
            stack.mark_failed()
            for f in t.failures:
                stack.log("FAILED: " + f)
            return 1
    stack.log("it_saml_slo: all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
