# SPDX-License-Identifier: AGPL-3.0-or-later
"""Run one headless-Chromium test of the softphone page against a real stack.

    /usr/bin/python3 tests/browser/run_browser_test.py standalone.test.js [--wrap-up REQUIRED] [--sf]
        [--sso top-level|cisco|opaque]

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

playwright-core (tests/browser/package-lock.json) is installed with `npm ci`
into $FSC_BUILD_DIR/tests/browser/node_modules the first time. Exit status:
the node script's; 77 (ctest: skipped) when --sf is asked for and stack.py
has no SfSim yet."""
import argparse
import fcntl
import filecmp
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import stack  # noqa: E402

CHROMIUM = os.environ.get("FSC_CHROMIUM", "/usr/bin/chromium")
SKIP = 77


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test", help="a *.test.js file in tests/browser/, or a path to one elsewhere")
    ap.add_argument("--wrap-up", default=None, help="finesse-sim --wrap-up mode")
    ap.add_argument("--sf", action="store_true", help="start sf-sim (Salesforce host page)")
    ap.add_argument("--sso", choices=("top-level", "cisco", "opaque"),
                    help="an SSO site: ids-sim issuing this token shape + fsc-sso")
    args = ap.parse_args()
    name = os.path.basename(args.test).replace(".test.js", "")
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
               FSC_TMP=tmp.sub("browser"))
    sso = None
    conn_port = stack.free_port()
    if args.sso:
        # fsc-sso (instance A, no load balancer) sending the popup back to
        # the page's sso-done.html; IdS signs every sign-in in as 1002
        sso = stack.Stack(haproxy=False, user="agent1002@example.com", token_shape=args.sso,
                          tmp=tmp, sso_extra={"login": {"allowed_return_to":
                                                        "http://%s:%d/softphone/"
                                                        % (stack.HOST, conn_port)}})
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
        conn = stack.Connector(fin, tmp=tmp, extra=extra, port=conn_port,
                               sso_url=sso.url if sso else None,
                               service_key_file=sso.secrets.service_key_file if sso else None)
        env["FSC_CONNECTOR_URL"] = conn.url
        try:
            rc = subprocess.run(["node", script], env=env, cwd=HERE, timeout=400).returncode
        except subprocess.TimeoutExpired:
            print("FAIL: %s timed out" % name)
            rc = 1
        finally:
            conn.stop()
            for c in (sf, redis, sso):
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
