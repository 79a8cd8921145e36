# SPDX-License-Identifier: AGPL-3.0-or-later
"""fscctl finesse-check against finesse-sim in the three set-ups a first
deployment meets, asserting its verdict lines and exit status:

1. everything open (REST on HTTPS, /ws, direct TLS, STARTTLS), with an
   agent's password: every transport PASS on both nodes, SASL PASS, exit 0,
   and the configured transport printed;
2. a stock Finesse 12.5+ (only the HTTPS port: 5222 and 5223 closed) and a
   connector configured for starttls, as an admin's first try: starttls
   FAIL with "use xmpp_transport = websocket", websocket PASS, exit 0 and a
   websocket configuration printed;
3. a ca_file that does not hold the nodes' CA: the REST certificate and the
   XMPP ones rejected with "unknown CA: set [finesse] ca_file", exit 1.
The password is never printed."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

FSCCTL = os.path.join(stack.BUILD_DIR, "connector", "fscctl")


def check(conn, *args):
    r = subprocess.run([FSCCTL, "finesse-check", "--config", conn.cfg, "--timeout-s", "5"]
                       + list(args), capture_output=True, text=True, timeout=120)
    out = r.stdout
    sys.stderr.write(out + r.stderr)
    return r.returncode, out


def lines(out, verdict, what):
    """The verdict lines for one check, node by node."""
    return re.findall(r"^  %s\s+%s\s+(.*)$" % (verdict, re.escape(what)), out, re.M)


def main():
    pki = stack.TestPki(domain="finesse.test")

    # 1. everything open, with an agent; the TCP transports' ports are the
    #    sim's (not 5222/5223), so each is checked as the configured one
    fin = stack.FinesseSim(agents=3, xmpp_tls=pki.server, rest_tls=pki.server,
                           transports=("starttls", "tls", "websocket"))
    for transport in ("websocket", "tls", "starttls"):
        conn = stack.Connector(fin, transport=transport, ca_file=pki.ca_file, start=False,
                               name="connector-" + transport)
        pw = conn.tmp.write("check/pw", "pw1001\n", 0o600)
        rc, out = check(conn, "--agent", "1001", "--password-file", pw)
        assert rc == 0, "%s: exit 0 when everything works: %d" % (transport, rc)
        for what in ("dns", "tcp", "systeminfo", "agent", "websocket", transport, "sasl"):
            assert len(lines(out, "PASS", what)) >= 2, "%s: %s PASS on both nodes" % (transport, what)
        assert len(lines(out, "PASS", "sasl")) == 2 + 2 * (transport != "websocket"), \
            "SASL over websocket and %s, per node" % transport
        assert "IN_SERVICE" in lines(out, "PASS", "systeminfo")[0]
        assert "cert 0: /CN=finesse.test" in out, "the certificate chain is printed"
        assert "xmpp_transport = %s\n" % transport in out and \
            "result: a configuration that works" in out
        assert "FAIL" not in out and "pw1001" not in out, "no failure, no password printed"
    print("ok  everything open: every check PASS on A and B for websocket, tls and starttls, "
          "SASL as 1001, exit 0")
    fin.stop()

    # 2. a stock Finesse: only the HTTPS port; the connector set up for 5222
    fin = stack.FinesseSim(agents=3, xmpp_tls=pki.server, rest_tls=pki.server,
                           transports=("websocket",), tmp=conn.tmp)
    conn = stack.Connector(fin, transport="starttls", ca_file=pki.ca_file, start=False,
                           name="connector-stock")
    rc, out = check(conn)
    assert rc == 0, "a working transport exists: exit 0, got %d" % rc
    fails = lines(out, "FAIL", "starttls")
    assert len(fails) == 2 and "Connection refused" in fails[0], fails
    assert out.count("closed: Finesse 12.5+ disables 5222 by default; use xmpp_transport = "
                     "websocket") == 2, "the fix under each starttls failure"
    assert len(lines(out, "PASS", "websocket")) == 2, "websocket PASS on both nodes"
    assert len(lines(out, "WARN", "tls")) == 2, "5223 closed: a warning (not configured)"
    assert re.search(r"xmpp_transport = websocket\n", out) and \
        "(the configuration has xmpp_transport = starttls)" in out, "websocket recommended"
    print("ok  stock Finesse (8445 only), connector on starttls: starttls FAIL with the fix, "
          "websocket PASS, exit 0 and the websocket configuration printed")

    # 3. a ca_file without the nodes' CA
    conn = stack.Connector(fin, transport="websocket", ca_file=pki.other_ca_file, start=False,
                           name="connector-bad-ca")
    rc, out = check(conn)
    assert rc == 1, "nothing works: exit 1, got %d" % rc
    rest = lines(out, "FAIL", "tls")
    assert len(rest) == 2 and "certificate rejected" in rest[0], rest
    assert "fix: certificate signed by an unknown CA: set [finesse] ca_file" in out
    ws = lines(out, "FAIL", "websocket")
    assert len(ws) == 2 and "tls certificate rejected" in ws[0], ws
    assert "result: no transport worked on every node" in out
    print("ok  wrong ca_file: REST and wss certificates rejected with the ca_file fix, exit 1")
    fin.stop()
    print("PASS")


if __name__ == "__main__":
    main()
