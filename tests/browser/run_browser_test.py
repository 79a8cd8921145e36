# SPDX-License-Identifier: AGPL-3.0-or-later
"""Run one headless-Chromium test of the softphone page against a real stack.

    /usr/bin/python3 tests/browser/run_browser_test.py standalone.test.js [--wrap-up REQUIRED] [--sf]
        [--cross-site] [--profile normal|blocked] [--sso [top-level|cisco|opaque]]
        [--sso-user USER] [--name NAME]

Starts finesse-sim (nodes A and B, a prosody each) and fsc-connector (and,
with --sf, sf-sim: the Salesforce host page + opencti_min.js stand-in; with
--sso SHAPE, Redis + ids-sim issuing that token shape + fsc-sso A and B,
the connector's [sso]) on free loopback ports through tests/lib/stack.py, then runs the node test
script with the URLs in the environment:

    FSC_CONNECTOR_URL   http://127.0.0.1:N (the page is FSC_CONNECTOR_URL/softphone/)
    FSC_FINESSE_CONTROL finesse-sim control API (/sim/...)
    FSC_SF_URL          sf-sim's UI origin (--sf only)
    FSC_SF_CONTROL      sf-sim's control base URL (--sf only)
    FSC_IDS_URL         ids-sim's base URL (--sso only; fsc-sso A is the [sso] url)
    FSC_ORG_ORIGIN      the origin in [salesforce] org_origins
    FSC_SCREENSHOT_DIR  $FSC_BUILD_DIR/browser-screenshots/<test>/
    FSC_CHROMIUM        /usr/bin/chromium (override with FSC_CHROMIUM)
    FSC_PROFILE         the browser profile (--profile; lib.js launch())
    FSC_CHROMIUM_ARGS   extra Chromium switches, one per line (--cross-site)
    FSC_PROXY_LOG       haproxy's log, every request line the page sent (--proxy:
                        FSC_CONNECTOR_URL is then haproxy in front of the connector)

--cross-site frames the softphone the way Salesforce does in a real org:
sf-sim's Lightning host page on https://acme.lightning.force.test:P and the
connector on https://connector.example.test:Q (both serve TLS with a
certificate made here for both names; Chromium maps *.test to 127.0.0.1
with --host-resolver-rules and accepts the certificate by its key with
--ignore-certificate-errors-spki-list), so the frame is cross-site, in a
secure context, as in production.
--profile normal: third-party cookies and storage allowed (Chrome's and
Edge's default); --profile blocked: a private window (an off-the-record
context; Chromium blocks third-party cookies and storage there, as Chrome's
incognito windows and Safari do). --sso adds fsc-sso + ids-sim (Redis,
fsc-sso A and B, no HAProxy) and the connector's [sso] section.

playwright-core (tests/browser/package-lock.json) is installed with `npm ci`
into $FSC_BUILD_DIR/tests/browser/node_modules the first time. Exit status:
the node script's; 77 (ctest: skipped) when --sf is asked for and stack.py
has no SfSim yet."""
import argparse
import base64
import fcntl
import filecmp
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import stack  # noqa: E402

CHROMIUM = os.environ.get("FSC_CHROMIUM", "/usr/bin/chromium")
SKIP = 77
# --cross-site: a Salesforce org and the connector, as in production
ORG_HOST = "acme.lightning.force.test"
CONNECTOR_HOST = "connector.example.test"
SSO_USER = "agent1003@example.com"  # finesse-sim's agent 1003


def node_modules():
    """npm ci into the build dir (once; serialised by a lock file)."""
    dest = os.path.join(stack.BUILD_DIR, "tests", "browser")
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, ".npm.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fresh = True
        for f in ("package.json", "package-lock.json"):
            src, dst = os.path.join(HERE, f), os.path.join(dest, f)
            if not os.path.exists(dst) or not filecmp.cmp(src, dst, shallow=False):
                shutil.copyfile(src, dst)
                fresh = False
        pw = os.path.join(dest, "node_modules", "playwright-core", "package.json")
        if not fresh or not os.path.exists(pw):
            stack.log("npm ci (playwright-core) in %s" % dest)
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts",
                            "--loglevel=error"], cwd=dest, check=True)
    return os.path.join(dest, "node_modules")


def tls_for_test_sites(tmp):
    """A CA and one certificate for ORG_HOST and CONNECTOR_HOST -> (cert,
    key, ca, spki): spki is the base64 SHA-256 of the certificate's public
    key, what Chromium's --ignore-certificate-errors-spki-list takes."""
    d = tmp.sub("browser-pki")

    def openssl(*a, **kw):
        return subprocess.run(["openssl"] + list(a), check=True, stderr=subprocess.PIPE,
                              stdout=kw.get("stdout", subprocess.DEVNULL)).stdout
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, "sites." + x) for x in ("key", "csr", "crt"))
    ext = tmp.write("browser-pki/sites.ext",
                    "subjectAltName=DNS:%s,DNS:%s\n" % (ORG_HOST, CONNECTOR_HOST))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
            "-subj", "/CN=fsc browser-test CA", "-keyout", ca_key, "-out", ca)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", "/CN=%s" % CONNECTOR_HOST,
            "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-days", "2", "-sha256", "-extfile", ext, "-out", crt)
    for f in (key, crt):
        os.chmod(f, 0o600)  # fsc-connector wants its TLS files private
    der = openssl("x509", "-in", crt, "-noout", "-pubkey", stdout=subprocess.PIPE)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der,
                         check=True, stdout=subprocess.PIPE).stdout
    spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
    return crt, key, ca, spki


def wait_https(port, ca, proc, timeout=15.0):
    """GET /healthz over TLS, as the browser will: the certificate checked
    against the test CA for CONNECTOR_HOST."""
    ctx = ssl.create_default_context(cafile=ca)
    req = ("GET /healthz HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
           % (CONNECTOR_HOST, port)).encode()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((stack.HOST, port), timeout=1.0) as raw:
                with ctx.wrap_socket(raw, server_hostname=CONNECTOR_HOST) as conn:
                    conn.sendall(req)
                    if conn.recv(64).startswith(b"HTTP/1.1 200"):
                        return
        except OSError:
            pass
        stack._check_alive(proc)
        if time.monotonic() > deadline:
            raise TimeoutError("the connector did not answer over TLS on port %d" % port)
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test", help="a *.test.js file in tests/browser/, or a path to one elsewhere")
    ap.add_argument("--wrap-up", default=None, help="finesse-sim --wrap-up mode")
    ap.add_argument("--sf", action="store_true", help="start sf-sim (Salesforce host page)")
    ap.add_argument("--cross-site", action="store_true",
                    help="host page and connector on two sites (implies --sf)")
    ap.add_argument("--profile", choices=("default", "normal", "blocked"), default="default",
                    help="browser profile: third-party storage allowed or blocked")
    ap.add_argument("--sso", nargs="?", const="top-level", choices=("top-level", "cisco", "opaque"),
                    help="an SSO site: fsc-sso + ids-sim issuing this token shape ([sso])")
    ap.add_argument("--sso-user", default=SSO_USER, help="the user IdS signs every sign-in in as")
    ap.add_argument("--proxy", action="store_true",
                    help="the page reaches the connector through haproxy, which logs every "
                         "request line (FSC_PROXY_LOG)")
    ap.add_argument("--name", help="screenshot dir name (default: the script's)")
    args = ap.parse_args()
    args.sf = args.sf or args.cross_site
    name = args.name or os.path.basename(args.test).replace(".test.js", "")
    script = os.path.join(HERE, os.path.basename(args.test))
    if os.path.sep in args.test and os.path.exists(args.test):
        script = os.path.abspath(args.test)  # a script elsewhere (tests/bench/)

    if not os.path.exists(CHROMIUM):
        print("FAIL: %s is missing (bash deploy/install-deps.sh installs chromium)" % CHROMIUM)
        return 1
    if args.sf and not hasattr(stack, "SfSim"):
        print("SKIP: tests/lib/stack.py has no SfSim (the Salesforce simulator) yet")
        return SKIP
    modules = node_modules()
    shots = os.path.join(stack.BUILD_DIR, "browser-screenshots", name)
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)

    tmp = stack.session_tmp()
    env = dict(os.environ, NODE_PATH=modules, FSC_SCREENSHOT_DIR=shots, FSC_CHROMIUM=CHROMIUM,
               FSC_TMP=tmp.sub("browser"), FSC_PROFILE=args.profile)
    conn_port = stack.free_port()
    tls = tls_for_test_sites(tmp) if args.cross_site else None
    # the origin the browser uses for the connector (--cross-site: a name of
    # its own, over TLS, like https://connector.example.com)
    conn_public = ("https://%s:%d" % (CONNECTOR_HOST, conn_port) if tls
                   else "http://%s:%d" % (stack.HOST, conn_port))
    sso = None
    if args.sso:
        # the popup's return_to is the softphone's own sso-done page
        sso = stack.Stack(haproxy=False, user=args.sso_user, token_shape=args.sso, tmp=tmp,
                          sso_extra={"login": {"allowed_return_to": conn_public + "/softphone/"}})
        env["FSC_IDS_URL"] = sso.ids.url
    with stack.FinesseSim(agents=4, wrap_up=args.wrap_up, tmp=tmp,
                          ids=sso.ids if sso else None) as fin:
        env["FSC_FINESSE_CONTROL"] = fin.control
        sf = redis = None
        extra = {}
        if args.sf:
            # a Salesforce org: the page's org_origins, and the connector's
            # call logging (which needs Redis for its outbox)
            redis = stack.Redis(tmp=tmp)
            if tls:
                sf = stack.SfSim(tmp=tmp, ui_host=ORG_HOST,
                                 extra_args=["--ui-tls-cert", tls[0], "--ui-tls-key", tls[1]])
                origin = "https://%s:%d" % (ORG_HOST, sf.ports["ui"])
            else:
                sf = stack.SfSim(tmp=tmp)
                origin = sf.ui_url
            env["FSC_SF_URL"] = origin
            env["FSC_SF_CONTROL"] = sf.api_url
            extra = {"redis": {"url": redis.url},
                     "salesforce": {"org_origins": origin, "login_url": sf.login_url,
                                    "client_id": sf.consumer_key,
                                    "integration_user": sf.integration_user,
                                    "jwt_key_file": sf.key_file}}
        else:
            origin = ""  # no Salesforce: the page runs standalone
        env["FSC_ORG_ORIGIN"] = origin
        if tls:
            extra["server"] = {"tls_cert_file": tls[0], "tls_key_file": tls[1],
                               "public_url": conn_public}
            env["FSC_CHROMIUM_ARGS"] = "\n".join([
                "--host-resolver-rules=MAP *.test %s" % stack.HOST,
                "--ignore-certificate-errors-spki-list=%s" % tls[3]])
        conn = stack.Connector(fin, tmp=tmp, extra=extra, port=conn_port, start=not tls,
                               sso_url=sso.a.url if sso else None,
                               service_key_file=sso.secrets.service_key_file if sso else None)
        if tls:
            conn.proc.start()
            wait_https(conn_port, tls[2], conn.proc)
        env["FSC_CONNECTOR_URL"] = conn_public
        proxy = None
        if args.proxy and not tls:
            proxy = stack.HttpProxy(conn, tmp=tmp)
            env["FSC_CONNECTOR_URL"] = proxy.url
            env["FSC_PROXY_LOG"] = proxy.proc.log_path
        try:
            rc = subprocess.run(["node", script], env=env, cwd=HERE, timeout=400).returncode
        except subprocess.TimeoutExpired:
            print("FAIL: %s timed out" % name)
            rc = 1
        finally:
            conn.stop()
            for c in (sf, redis, sso, proxy):
                if c is not None:
                    c.stop()
        if rc != 0:
            stack.mark_failed()
            print("--- fsc-connector log (tail) ---")
            print(conn.proc.log_tail(60))
    print("screenshots: %s" % shots)
    return rc


if __name__ == "__main__":
    sys.exit(main())
