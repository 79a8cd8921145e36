# SPDX-License-Identifier: AGPL-3.0-or-later
"""fscctl check-config FILE gives each daemon's own verdict: for a set of
good and broken configurations of both daemons (missing key files, a key
file readable by others, a bad value, an unknown key, a syntax error, the
shipped samples), its output lines and exit status are exactly those of
`fsc-sso --check-config` / `fsc-connector --check-config`. Which daemon a
file is for comes from its sections ([ids] / [finesse]) or from --for; a
file that says neither is refused with a message and exit 2, and nothing
is ever contacted (Redis, IdS and Finesse addresses here are dead ports).
It also proves that fsc-connector --check-config now checks [salesforce]
(its jwt_key_file), which it used to leave to the start."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FSCCTL = os.path.join(os.path.dirname(stack.FSC_CONNECTOR), "fscctl")
DAEMON = {"fsc-sso": stack.FSC_SSO, "fsc-connector": stack.FSC_CONNECTOR}


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def sso_ini(tmp, sec, name, **change):
    s = {"server": {"listen": "127.0.0.1:1", "public_url": "https://sso.example.com"},
         "redis": {"url": "redis://127.0.0.1:1/0"},
         "ids": {"authorize_url": "https://ids.example.com:8553/ids/v1/oauth/authorize",
                 "token_url": "https://ids.example.com:8553/ids/v1/oauth/token",
                 "client_id": "fsc", "client_secret_file": sec.client_secret_file},
         "session": {"seal_key_file": sec.seal_key_file},
         "service": {"key_file": sec.service_key_file},
         "login": {"allowed_return_to": "https://connector.example.com/softphone/"}}
    return write(tmp, name, s, change)


def connector_ini(tmp, jwt_key, name, **change):
    s = {"server": {"listen": "127.0.0.1:0"},
         "finesse": {"nodes": "http://127.0.0.1:1, http://127.0.0.1:2"},
         "redis": {"url": "redis://127.0.0.1:1/0"},
         "salesforce": {"org_origins": "https://acme.lightning.force.com",
                        "login_url": "https://login.salesforce.com", "client_id": "3MVG9x",
                        "jwt_key_file": jwt_key, "integration_user": "int@acme.example",
                        "outbox_key_file": stack.outbox_key_file(tmp)}}
    return write(tmp, name, s, change)


def write(tmp, name, sections, change):
    for k, v in change.items():      # section__key=value, None drops it
        sec, key = k.split("__")
        if v is None:
            sections[sec].pop(key, None)
        else:
            sections.setdefault(sec, {})[key] = v
    text = "".join("[%s]\n%s" % (s, "".join("%s = %s\n" % kv for kv in kv_.items()))
                   for s, kv_ in sections.items())
    return tmp.write(name, text)


def main():
    tmp = stack.TempDir(prefix="fsc-it-checkcfg-")
    sec = stack.SsoSecrets(tmp=tmp)
    jwt_key = tmp.write("secrets/sf-jwt.key", subprocess.run(
        ["openssl", "genrsa", "2048"], capture_output=True, check=True).stdout, 0o600)
    loose = tmp.write("secrets/loose.key", os.urandom(32), 0o644)
    cases = [
        ("fsc-sso", sso_ini(tmp, sec, "sso-ok.ini"), 0),
        ("fsc-sso", sso_ini(tmp, sec, "sso-no-seal.ini",
                            session__seal_key_file="/nonexistent/seal.key"), 1),
        ("fsc-sso", sso_ini(tmp, sec, "sso-loose.ini", session__seal_key_file=loose), 1),
        ("fsc-sso", sso_ini(tmp, sec, "sso-verify.ini", ids__verify="maybe"), 1),
        ("fsc-sso", sso_ini(tmp, sec, "sso-unknown.ini", ids__colour="blue"), 1),
        ("fsc-sso", sso_ini(tmp, sec, "sso-no-client.ini", ids__client_id=None), 1),
        ("fsc-sso", sso_ini(tmp, sec, "sso-saml.ini",
                            saml__idp_metadata_file="/nonexistent/idp-metadata.xml"), 1),
        ("fsc-sso", sso_ini(tmp, sec, "sso-http.ini",
                            server__public_url="http://sso.example.com"), 1),
        ("fsc-sso", os.path.join(ROOT, "deploy", "fsc-sso.ini.sample"), 1),
        ("fsc-connector", connector_ini(tmp, jwt_key, "conn-ok.ini"), 0),
        ("fsc-connector", connector_ini(tmp, jwt_key, "conn-no-jwt.ini",
                                        salesforce__jwt_key_file="/nonexistent/jwt.key"), 1),
        ("fsc-connector", connector_ini(tmp, jwt_key, "conn-jwt-not-key.ini",
                                        salesforce__jwt_key_file=sec.service_key_file), 1),
        ("fsc-connector", connector_ini(tmp, jwt_key, "conn-nodes.ini",
                                        finesse__nodes="ftp://finesse"), 1),
        ("fsc-connector", connector_ini(tmp, jwt_key, "conn-transport.ini",
                                        finesse__xmpp_transport="carrier-pigeon"), 1),
        ("fsc-connector", connector_ini(tmp, jwt_key, "conn-no-outbox-key.ini",
                                        salesforce__outbox_key_file=None), 1),
        ("fsc-connector", connector_ini(tmp, jwt_key, "conn-loose-outbox-key.ini",
                                        salesforce__outbox_key_file=loose), 1),
        ("fsc-connector", connector_ini(tmp, jwt_key, "conn-proxies.ini",
                                        server__trusted_proxies="10.0.0.0/33"), 1),
        ("fsc-connector", os.path.join(ROOT, "deploy", "fsc-connector.ini.sample"), 1),
    ]
    for daemon, path, want in cases:
        d_rc, d_out, d_err = run([DAEMON[daemon], "--check-config", "--config", path])
        c_rc, c_out, c_err = run([FSCCTL, "check-config", path])
        assert d_rc == want, "%s --check-config %s: exit %d, expected %d: %s" % (
            daemon, path, d_rc, want, d_err)
        assert (c_rc, c_out, c_err) == (d_rc, d_out, d_err), \
            "fscctl check-config %s differs from %s --check-config:\n%r\n%r" % (
                path, daemon, (c_rc, c_out, c_err), (d_rc, d_out, d_err))
        f_rc, f_out, f_err = run([FSCCTL, "check-config", "--for", daemon, path])
        assert (f_rc, f_out, f_err) == (d_rc, d_out, d_err), "--for %s %s" % (daemon, path)
        first = (d_out + d_err).strip().splitlines()[0]
        print("ok  %-13s exit %d  %s" % (daemon, d_rc, first.replace(tmp.path, "<tmp>")))

    sample = run([FSCCTL, "check-config", os.path.join(ROOT, "deploy", "fsc-sso.ini.sample")])
    assert "/etc/fsc/ids-client-secret" in sample[2], "the sample's refusal names the key file"
    sample = run([FSCCTL, "check-config",
                  os.path.join(ROOT, "deploy", "fsc-connector.ini.sample")])
    assert "/etc/fsc/salesforce-jwt.key" in sample[2], \
        "fsc-connector --check-config checks [salesforce] jwt_key_file: %r" % (sample,)
    print("ok  the samples' refusals name their missing key files")

    # a file for neither daemon, both, or unparsable: exit 2 and why
    neither = tmp.write("neither.ini", "[server]\nlisten = 127.0.0.1:1\n")
    both = tmp.write("both.ini", "[ids]\nclient_id = x\n[finesse]\nnodes = http://a:1\n")
    broken = tmp.write("broken.ini", "[server\nlisten = 1\n")
    for path, words in ((neither, "neither section"), (both, "both [ids] and [finesse]"),
                        (broken, "syntax")):
        rc, out, err = run([FSCCTL, "check-config", path])
        assert rc == 2 and words in err and "--for" in err, (path, rc, out, err)
    rc, out, err = run([FSCCTL, "check-config", "--for", "fsc-connector", broken])
    d = run([stack.FSC_CONNECTOR, "--check-config", "--config", broken])
    assert (rc, out, err) == d and rc == 1, "--for gives the daemon's own syntax error"
    rc, _, err = run([FSCCTL, "check-config"])
    assert rc == 2 and "usage" in err
    rc, _, err = run([FSCCTL, "check-config", "--for", "fsc-nothing", neither])
    assert rc == 2 and "usage" in err
    secrets_text = open(sec.service_key_file).read().strip()
    everything = run([FSCCTL, "check-config", sso_ini(tmp, sec, "x.ini")])
    assert secrets_text not in "".join(map(str, everything)), "no secret is printed"
    print("ok  neither/both sections or a syntax error: exit 2 naming --for; --for gives "
          "the daemon's own message; no secret printed")
    print("PASS")


if __name__ == "__main__":
    main()
