# SPDX-License-Identifier: AGPL-3.0-or-later
"""Finesse notifications over TLS, as Finesse serves them (STARTTLS required
on the XMPP port): prosody with a certificate for the XMPP domain issued by
a test CA.
1. [finesse] xmpp_tls = true with ca_file = that CA: agents sign in, and
   a call's notifications reach the agent's stream through TLS.
2. ca_file = another CA (an impostor, or a wrong CA file): the certificate
   is rejected, the sign-in is refused with a clear 502 (no agent signed in
   blind to every event), and Finesse is not asked to sign the agent in.
3. xmpp_tls = false against a server that requires TLS: refused as well
   (the connector never falls back to a clear-text password)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402


def connector(fin, name, tls, ca):
    finesse = {"xmpp_tls": "true" if tls else "false"}
    if ca:
        finesse["ca_file"] = ca
    return stack.Connector(fin, name=name, extra={"finesse": finesse})


def main():
    pki = stack.TestPki("finesse.test")
    ca_crt, other_crt = pki.ca_file, pki.other_ca_file
    fin = stack.FinesseSim(agents=3, presence_grace_s=30, xmpp_tls=pki.server)

    # --- 1. trusted: signed in, notifications over TLS
    conn = connector(fin, "connector-tls", True, ca_crt)
    status, body = conn.login("1001", "pw1001", "1001")
    assert status == 200, "sign-in over XMPP TLS: %d %r" % (status, body)
    sse = conn.events(body["token"])
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "NOT_READY",
             what="NOT_READY")
    conn.api("POST", "/api/v1/state", body["token"], {"state": "READY"})
    sse.wait(lambda e: e.get("event") == "agent" and e["data"]["state"] == "READY", what="READY")
    did = fin.call("1001")
    sse.wait(lambda e: e.get("event") == "dialog" and e["data"]["id"] == did, what="the call")
    assert "Authenticated as 1001@finesse.test" in fin.prosody_a.log_text() or \
        "Authenticated as 1001@finesse.test" in open(fin.prosody_a.log_path).read()
    assert "tls_cert_rejected" not in conn.log_text()
    fin.hangup(did)
    conn.api("POST", "/api/v1/logout", body["token"])
    sse.close()
    conn.stop()
    print("ok  xmpp_tls with the Finesse CA: signed in, state and call notifications over TLS")

    # --- 2. untrusted certificate: refused, nothing done at Finesse
    puts = fin.stats()["requests"].get("PUT User", 0)
    conn = connector(fin, "connector-impostor", True, other_crt)
    status, body = conn.login("1002", "pw1002", "1002")
    assert status == 502 and body["error"] == "xmpp_unavailable" and \
        "certificate" in body["detail"], "an untrusted certificate: %d %r" % (status, body)
    assert "event=tls_cert_rejected" in conn.log_text(), "the rejection is logged"
    assert fin.agent("1002")["state"] == "LOGOUT", "the agent was not signed in blind"
    assert fin.stats()["requests"].get("PUT User", 0) == puts, "no LOGIN sent to Finesse"
    assert "pw1002" not in conn.log_text(), "no password in the log"
    conn.stop()
    print("ok  certificate from another CA: sign-in refused (502 %s), no LOGIN at Finesse"
          % body["detail"][:60])

    # --- 3. TLS off against a server that requires it: no clear-text fallback
    conn = connector(fin, "connector-plain", False, None)
    status, body = conn.login("1003", "pw1003", "1003")
    assert fin.agent("1003")["presence"]["A"] == 0, "no XMPP session without TLS"
    if status == 200:
        raise AssertionError("signed in although XMPP never came up: %r" % body)
    conn.stop()
    fin.stop()
    print("ok  xmpp_tls = false against a TLS-only server: no session, sign-in refused (%d %s)"
          % (status, body.get("error")))
    print("PASS")


if __name__ == "__main__":
    main()
