# SPDX-License-Identifier: AGPL-3.0-or-later
"""The quickstart of a site without SSO, as the README runs it:

  - `bash deploy/quickstart.sh --no-sso --once` shows its steps (Debian
    packages, configure, build), then brings up Redis, finesse-sim,
    sf-sim and fsc-connector only (no IdS, no fsc-sso, no HAProxy); the
    demo agent signs in with its Finesse password, takes a call with its
    screen pop, and the call's Task is printed;
  - without --once it keeps placing calls (--every 1.5 here): each is
    answered for the agent, hung up and its Task printed; Ctrl-C (SIGINT)
    then stops every component cleanly, exit 0."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def once():
    env = dict(os.environ, BUILD_DIR=stack.BUILD_DIR)
    out = subprocess.run(["bash", os.path.join(ROOT, "deploy", "quickstart.sh"), "--no-sso",
                          "--once"], capture_output=True, text=True, timeout=300, env=env,
                         stdin=subprocess.DEVNULL)
    text = out.stdout
    print(text)
    assert out.returncode == 0, "quickstart.sh exit %d: %s" % (out.returncode, out.stderr[-2000:])
    for step in ("[1/3] Debian packages", "[2/3] configure", "[3/3] build",
                 "starting the stack"):
        assert step in text, "progress: %r" % step
    assert "quickstart: ok" in text
    assert "signed in with its Finesse password" in text
    assert "fsc-sso" not in text and "IdS" not in text and "HAProxy" not in text, \
        "no SSO part is started or printed"
    assert re.search(r"screen pop for the Salesforce tab: SOBJECT \{\"recordId\": \"003\w+\"\}",
                     text), "the screen pop is printed"
    assert re.search(r"Inbound call from \+14155550100 \| CallType Inbound \| \d+ s \| "
                     r"WhoId 003\w+ \| Status Completed", text), "the call's Task is printed"
    assert "did not stop" not in text + out.stderr
    print("ok  quickstart.sh --no-sso --once: steps shown, Finesse password sign-in, call, "
          "pop, Task")


def continuous():
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "deploy", "quickstart.py"),
                          "--no-sso", "--every", "1.5"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines, done = [], []

    def reader():
        for line in p.stdout:
            lines.append(line.rstrip("\n"))
        done.append(True)
    threading.Thread(target=reader, daemon=True).start()
    try:
        stack.wait_until(lambda: sum(1 for l in lines if re.match(
            r"call \d+: answered by the quickstart, hung up; Task 00T\w+ in Salesforce", l)) >= 2,
            timeout=120, interval=0.2, what="two looped calls with their Tasks")
        assert any("Watch it in a browser" in l for l in lines)
        assert any("Agent ID 1001, Password pw1001" in l for l in lines), \
            "how to sign in in the browser"
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=60)
        stack.wait_until(lambda: done, timeout=10, what="output closed")
    finally:
        if p.poll() is None:
            p.kill()
    text = "\n".join(lines)
    assert rc == 0, "exit %s after Ctrl-C:\n%s" % (rc, text[-3000:])
    assert "stopping ..." in text and "kept temp dir" not in text and "did not stop" not in text, \
        text[-3000:]
    calls = [l for l in lines if re.match(r"call \d+: ", l)]
    print("\n".join(calls[:4]))
    print("ok  without --once: a call every 1.5 s, each answered, hung up and its Task written; "
          "Ctrl-C stops everything, exit 0")


def main():
    once()
    t0 = time.time()
    continuous()
    print("(continuous part: %.0f s)" % (time.time() - t0))
    print("PASS")


if __name__ == "__main__":
    main()
