# SPDX-License-Identifier: AGPL-3.0-or-later
"""The README's main job keeps working: deploy/quickstart.py --once brings
up Redis, ids-sim, fsc-sso A and B behind HAProxy, finesse-sim, sf-sim and
fsc-connector, signs the demo agent in through the load balancer, and
prints the call, its screen pop, the call's Task in Salesforce and the
token, which has the shape Cisco documents (the user inside a JSON-string
sub, RS256, verified with the key IdS serves)."""
import os
import re
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def main():
    out = subprocess.run(
        ["/usr/bin/python3", os.path.join(ROOT, "deploy", "quickstart.py"), "--once"],
        capture_output=True, text=True, timeout=120)
    print(out.stdout)
    assert out.returncode == 0, "quickstart exit %d: %s" % (out.returncode, out.stderr[-2000:])
    assert "quickstart: ok" in out.stdout, "quickstart finished"
    assert re.search(r"access_token=eyJ\S+ +user=agent1001@example.com", out.stdout), \
        "the demo agent's token is printed"
    assert re.search(r'Cisco\'s shape: header \{"cty":"JWT","alg":"RS256"\}, claims iss=\S+, sub '
                     r'\(a JSON string\) user_id=agent1001@example.com', out.stdout), \
        "the token has Cisco's shape (the user inside sub)"
    assert re.search(r"screen pop for the Salesforce tab: SOBJECT \{\"recordId\": \"003\w+\"\}",
                     out.stdout), "the screen pop is printed"
    assert re.search(r"Inbound call from \+14155550100 \| CallType Inbound \| \d+ s \| "
                     r"WhoId 003\w+ \| Status Completed", out.stdout), "the call's Task is printed"
    assert "did not stop" not in out.stdout + out.stderr, "every component stopped on SIGTERM"
    print("PASS")


if __name__ == "__main__":
    sys.exit(main())
