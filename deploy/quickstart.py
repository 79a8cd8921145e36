# SPDX-License-Identifier: AGPL-3.0-or-later
"""Quickstart: the whole SSO side on one machine, on simulators.

Starts Redis, the Cisco IdS simulator, fsc-sso A and B and HAProxy in front
of them (all on free loopback ports, in a temp dir), then walks a demo agent
through sign-in as a browser would: /sso/login on the load balancer, IdS
authorize, /sso/callback, the handoff code, and finally the access token
fsc-connector would use for Finesse. With --once it stops after that;
otherwise it keeps the stack up for you to try with curl until Ctrl-C."""
import argparse
import base64
import json
import os
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import stack  # noqa: E402


def claims(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--once", action="store_true", help="sign in, print, stop")
    args = ap.parse_args()

    print("starting Redis, ids-sim, fsc-sso A and B, HAProxy ...")
    st = stack.Stack(user="agent1001@example.com")
    login_url = "%s/sso/login?%s" % (st.url, urllib.parse.urlencode({"return_to": st.return_to}))
    print()
    print("  load balancer (HAProxy) : %s" % st.url)
    print("  fsc-sso A               : %s" % st.a.url)
    print("  fsc-sso B               : %s" % st.b.url)
    print("  IdS simulator           : %s" % st.ids.url)
    print("  Redis                   : %s" % st.redis.url)
    print()
    print("1. the softphone sends the agent to:\n   %s" % login_url)
    cb = stack.start_login(st.url, st.return_to)
    print("2. IdS signs the agent in and sends the browser back to:\n   %s"
          % cb.split("?")[0] + "?code=…&state=…")
    code = stack.finish_login(cb, st.url)
    print("3. fsc-sso redirects to the softphone with a one-time handoff code:\n"
          "   %s?handoff=%s…" % (st.return_to, code[:8]))
    status, s = st.client().handoff(code)
    assert status == 200, (status, s)
    print("4. fsc-connector redeems it (POST /v1/handoff): user=%s session=%s…"
          % (s["user"], s["session"][:8]))
    status, t = st.client().token(s["session"])
    assert status == 200, (status, t)
    c = claims(t["access_token"])
    print("5. and fetches the access token for Finesse (GET /v1/sessions/{id}/token):")
    print("   access_token=%s…%s  user=%s  expires in %d s"
          % (t["access_token"][:16], t["access_token"][-6:], t["user"],
             t["expires_at"] - int(time.time())))
    print("   claims: iss=%s aud=%s upn=%s" % (c["iss"], c["aud"], c["upn"]))
    print()
    if args.once:
        st.stop()
        print("quickstart: ok")
        return
    print("Try it yourself (service key in %s):" % st.secrets.service_key_file)
    print("  curl -s -H 'Authorization: Bearer %s' %s/v1/sessions/%s/token"
          % (st.service_key, st.url, s["session"]))
    print("Ctrl-C stops everything.")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    st.stop()


if __name__ == "__main__":
    main()
