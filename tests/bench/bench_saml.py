# SPDX-License-Identifier: AGPL-3.0-or-later
"""ACS verifications per second on one fsc-sso instance (RSA-2048,
SHA-256), next to `openssl speed -seconds 3 rsa2048`'s verify rate (the
ceiling: each verification is at least one RSA verify).

One fsc-sso (SAML-only, IdP-initiated allowed, [server] threads = 2) with a
real redis-server; a Response signed by pysaml2/xmlsec1 (signed Response,
RSA-SHA256) is POSTed to /sso/saml/acs by wrk for DURATION seconds. The
first post is accepted; every later one goes through the whole verifier
(parse, IDs, structure, signature, every check) and is then refused by the
Redis replay cache (SET NX): so the figure is verification + one Redis
round trip per request, without session creation. The last line is
key=value:
  acs_verifications_per_s=... openssl_rsa2048_verify_per_s=... p99_ms=...

Usage: /usr/bin/python3 tests/bench/bench_saml.py [--duration 10]
"""
import argparse
import os
import re
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "sim", "saml-idp"))
import stack  # noqa: E402
import saml_idp  # noqa: E402

SP, ACS = "https://sso.test/sso/saml/metadata", "https://sso.test/sso/saml/acs"


def openssl_verify_rate():
    r = subprocess.run(["openssl", "speed", "-seconds", "3", "rsa2048"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, timeout=120)
    m = re.search(r"rsa 2048 bits\s+\S+\s+\S+\s+\S+\s+(\S+)", r.stdout)
    return float(m.group(1)) if m else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    a = ap.parse_args()
    tmp = stack.session_tmp()
    d = tmp.sub("saml")
    idp = saml_idp.Idp(d, SP, ACS)
    md = idp.metadata()
    redis = stack.Redis(tmp=tmp)
    sso = stack.SsoInstance("bench", redis, None, allowed_return_to=["https://connector.test/softphone/"],
                            log_level="warn", extra={
                                "server": {"threads": "2"},
                                "saml": {"idp_metadata_file": md, "sp_entity_id": SP, "acs_url": ACS,
                                         "allow_idp_initiated": "true"}})
    sso.wait_ready()
    body = urllib.parse.urlencode({"SAMLResponse": saml_idp.post_form(idp.response(None))})
    body_file = tmp.write("saml/body.form", body)
    status, _, _ = stack.http("POST", sso.url + "/sso/saml/acs",
                              {"Content-Type": "application/x-www-form-urlencoded"}, body)
    assert status == 302, status
    out = subprocess.run(["wrk", "-t", "2", "-c", str(a.connections), "-d", "%ds" % a.duration,
                          "--latency", "-s", os.path.join(HERE, "saml_post.lua"),
                          sso.url + "/sso/saml/acs", "--", body_file],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=a.duration + 60).stdout
    sys.stderr.write(out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)] if p99 else -1
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    _, _, metrics = stack.http("GET", sso.url + "/metrics")
    replays = re.search(rb'fsc_sso_saml_refused_total\{reason="replay"\} (\d+)', metrics)
    other = sum(int(v) for k, v in re.findall(rb'fsc_sso_saml_refused_total\{reason="([a-z_]+)"\} (\d+)',
                                              metrics) if k != b"replay")
    sso.stop()
    redis.stop()
    ceiling = openssl_verify_rate()
    print("acs_verifications_per_s=%.0f openssl_rsa2048_verify_per_s=%.0f p99_ms=%.2f "
          "refused_replay=%s refused_other=%d non_3xx=%s duration_s=%d"
          % (rps, ceiling, p99_ms, replays.group(1).decode() if replays else "?", other,
             non2xx.group(1) if non2xx else "0", a.duration))
    return 0 if other == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
