# SPDX-License-Identifier: AGPL-3.0-or-later
"""/metrics is not reachable through the load balancer, whatever the
spelling, and both daemons can serve it on an address of its own.

1. Through HAProxy (ha/haproxy-sso.cfg.in's frontend, the shipped rule
   with a monitoring network no test client is in): /metrics, /%6detrics,
   /%6Detrics, /m%65trics, /%6d%65%74%72%69%63%73, /metrics?x -> 403;
   fsc-sso itself decodes them all to /metrics (200 straight at A), which
   is why the rule matches the decoded path.
2. [server] metrics_listen on fsc-sso: /metrics on listen 404, on the
   metrics address 200 with fsc_sso_ series (and /healthz), nothing else
   there; the same on fsc-connector.
3. --check-config: metrics_listen equal to listen, and a trusted_proxies
   entry that is no network, are refused naming file, line and key."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

SPELLINGS = ("/metrics", "/%6detrics", "/%6Detrics", "/m%65trics", "/%6d%65%74%72%69%63%73",
             "/metrics?x=1")


def main():
    with stack.Stack() as st:
        # --- 1. through the load balancer
        for path in SPELLINGS:
            status, _, body = stack.http("GET", st.url + path)
            assert status == 403 and b"fsc_sso" not in body, \
                "%s through HAProxy: %d %r" % (path, status, body[:100])
            status, _, body = stack.http("GET", st.a.url + path)
            assert status == 200 and b"fsc_sso_logins_total" in body, \
                "%s straight at A (the daemon decodes it): %d" % (path, status)
        status, _, _ = stack.http("GET", st.url + "/readyz")
        assert status == 200, "the LB still serves the rest"
        print("ok  %d spellings of /metrics through HAProxy: 403 (fsc-sso reads each as "
              "/metrics: 200 straight at A)" % len(SPELLINGS))

        # --- 2. metrics_listen, fsc-sso
        mport = stack.free_port()
        inst = stack.SsoInstance("m", st.redis, st.ids, allowed_return_to=[st.return_to],
                                 secrets=st.secrets, extra={"server": {
                                     "metrics_listen": "%s:%d" % (stack.HOST, mport)}})
        inst.wait_ready()
        murl = "http://%s:%d" % (stack.HOST, mport)
        for path in SPELLINGS[:2]:
            status, _, _ = stack.http("GET", inst.url + path)
            assert status == 404, "%s on listen with metrics_listen: %d" % (path, status)
        status, _, body = stack.http("GET", murl + "/metrics")
        assert status == 200 and b"fsc_sso_logins_total" in body, status
        assert stack.http("GET", murl + "/healthz")[0] == 200
        assert stack.http("GET", murl + "/sso/login")[0] == 404, "only metrics there"
        assert stack.http("GET", inst.url + "/readyz")[0] == 200
        inst.stop()
        print("ok  fsc-sso metrics_listen: /metrics 404 on listen, 200 on its own address "
              "(with /healthz; nothing else there)")

        # --- 3. config errors
        bad = stack.SsoInstance("bad", st.redis, st.ids, allowed_return_to=[st.return_to],
                                secrets=st.secrets, start=False)
        for key, value, why in (("metrics_listen", bad.sections["server"]["listen"], "differ"),
                                ("trusted_proxies", "10.0.0.1, lb.example", "lb.example")):
            bad.sections["server"][key] = value
            bad.write_config()
            rc, out = bad.check_config()
            assert rc != 0 and "[server] %s:" % key in out and why in out and \
                "fsc-sso.ini:" in out, "%s: %d %r" % (key, rc, out)
            del bad.sections["server"][key]
        print("ok  --check-config: metrics_listen = listen and a bad trusted_proxies entry "
              "refused with file:line: [server] key")

    # --- 2'. fsc-connector
    fin = stack.FinesseSim(agents=1)
    mport = stack.free_port()
    conn = stack.Connector(fin, extra={"server": {"metrics_listen": "%s:%d" % (stack.HOST,
                                                                                 mport)}})
    murl = "http://%s:%d" % (stack.HOST, mport)
    assert stack.http("GET", conn.url + "/metrics")[0] == 404
    assert stack.http("GET", conn.url + "/%6detrics")[0] == 404
    status, _, body = stack.http("GET", murl + "/metrics")
    assert status == 200 and b"fsc_connector_agents" in body, status
    assert stack.http("GET", murl + "/api/v1/config")[0] == 404
    conn.stop()
    conn.sections["server"]["metrics_listen"] = conn.sections["server"]["listen"]
    conn.write_config()
    r = subprocess.run([stack.FSC_CONNECTOR, "--check-config", "--config", conn.cfg],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode != 0 and "[server] metrics_listen:" in r.stdout, r.stdout
    fin.stop()
    print("ok  fsc-connector metrics_listen: /metrics 404 on listen, 200 on its own address; "
          "= listen refused by --check-config")
    print("PASS")


if __name__ == "__main__":
    main()
