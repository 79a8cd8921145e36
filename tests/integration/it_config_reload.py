# SPDX-License-Identifier: AGPL-3.0-or-later
"""Configuration and process lifecycle of fsc-sso.

(a) `fsc-sso --config F --check-config` refuses broken files with a non-zero
    exit and a "file:line: [section] key: why" message (unknown key, bad redis
    url, missing required key, inline secret, world-readable secret file,
    refresh_at out of range, lock_ttl_ms <= timeout_ms, allow-list entry that
    is not a URL), never echoing a secret, and accepts a good file with
    "configuration ok" (exit 0).
(b) SIGHUP reloads in place: a changed [login] allowed_return_to applies at
    once (new URL 302, old URL 400) with the same pid, existing sessions keep
    serving their token, and a sign-in started under the old allow-list is
    refused at the callback without leaving a session behind. A broken file
    on SIGHUP is refused (event=reload_refused, naming file:line and key) and
    the previous configuration keeps running.
(c) SIGTERM drains: a callback in flight (IdS delayed 1.5 s) still completes
    with its 302 + handoff (redeemable on B), the process exits 0, and new
    connections are refused once SIGTERM has been received."""
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

NEW_RETURN_TO = "https://connector2.test/app/"


# --------------------------------------------------------------------------
# (a) --check-config

def base_sections():
    return {
        "server": {"listen": "127.0.0.1:1", "public_url": "https://sso.example.com",
                   "instance": "cc"},
        "redis": {"url": "redis://127.0.0.1:1/0", "prefix": "fsc:"},
        "ids": {"authorize_url": "https://ids.example.com:8553/ids/v1/oauth/authorize",
                "token_url": "https://ids.example.com:8553/ids/v1/oauth/token",
                "client_id": "fsc-connector", "client_secret_file": "ids-client-secret"},
        "session": {"seal_key_file": "seal.key"},
        "service": {"key_file": "service.key"},
        "login": {"allowed_return_to": "https://connector.example.com/softphone/"},
    }


def write_ini(path, sections):
    """Writes the INI; returns {(section, key): line number} (1-based) and
    {section: header line}."""
    lines, where, headers = ["; it_config_reload"], {}, {}
    for sec, kv in sections.items():
        lines.append("")
        lines.append("[%s]" % sec)
        headers[sec] = len(lines)
        for k, v in kv.items():
            lines.append("%s = %s" % (k, v))
            where[(sec, k)] = len(lines)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return where, headers


def run_check(path):
    import subprocess
    stack.SsoInstance.check_binary()
    r = subprocess.run([stack.FSC_SSO, "--config", path, "--check-config"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def check_config_errors(tmp):
    d = tmp.sub("check-config")
    tmp.write("check-config/ids-client-secret", "s3cret-client-VALUE\n", 0o600)
    tmp.write("check-config/seal.key", os.urandom(32), 0o600)
    tmp.write("check-config/service.key", "service-key-VALUE-0123456789abcdef\n", 0o600)
    tmp.write("check-config/open-secret", "open-secret-VALUE\n", 0o644)
    tmp.write("check-config/group-secret", "group-secret-VALUE\n", 0o640)

    good = os.path.join(d, "good.ini")
    write_ini(good, base_sections())
    rc, out = run_check(good)
    assert rc == 0 and "configuration ok" in out, \
        "good config: want exit 0 + 'configuration ok', got %d %r" % (rc, out)
    print("ok  --check-config on a good file: exit 0, %r" % out.strip())

    def edit(sec, key, value, drop=None):
        def f(s):
            if drop:
                s[drop[0]].pop(drop[1])
            if key is not None:
                s[sec][key] = value
        return f

    # (name, edit, section, key reported, pattern the reason must match)
    cases = [
        ("unknown key (typo listne)", edit("server", "listne", "127.0.0.1:2"),
         "server", "listne", r"unknown key"),
        ("bad redis url", edit("redis", "url", "http://127.0.0.1:6379/0"),
         "redis", "url", r"redis://"),
        ("redis url with bad port", edit("redis", "url", "redis://127.0.0.1:notaport/0"),
         "redis", "url", r"port"),
        ("missing [ids] token_url", edit("ids", None, None, drop=("ids", "token_url")),
         "ids", "token_url", r"required"),
        ("inline secret", edit("ids", "client_secret", "inline-secret-VALUE",
                               drop=("ids", "client_secret_file")),
         "ids", "client_secret", r"client_secret_file"),
        ("secret file mode 0644", edit("ids", "client_secret_file", "open-secret"),
         "ids", "client_secret_file", r"chmod 600"),
        ("secret file mode 0640", edit("service", "key_file", "group-secret"),
         "service", "key_file", r"chmod 600"),
        ("missing secret file", edit("session", "seal_key_file", "no-such.key"),
         "session", "seal_key_file", r"no-such\.key"),
        ("refresh_at=1.5", edit("session", "refresh_at", "1.5"),
         "session", "refresh_at", r"between 0 and 1"),
        ("refresh_at=abc", edit("session", "refresh_at", "0.7x"),
         "session", "refresh_at", r"between 0 and 1"),
        ("lock_ttl_ms == timeout_ms", lambda s: (s["ids"].update(timeout_ms="5000"),
                                                 s["session"].update(lock_ttl_ms="5000")),
         "session", "lock_ttl_ms", r"timeout_ms"),
        ("lock_ttl_ms < timeout_ms", lambda s: (s["ids"].update(timeout_ms="8000"),
                                                s["session"].update(lock_ttl_ms="2000")),
         "session", "lock_ttl_ms", r"timeout_ms"),
        ("allowed_return_to not a URL",
         edit("login", "allowed_return_to", "https://ok.example.com/a/, connector.example.com/x/"),
         "login", "allowed_return_to", r"connector\.example\.com/x/.*not an absolute"),
        ("public_url not a URL", edit("server", "public_url", "sso.example.com"),
         "server", "public_url", r"URL"),
    ]
    for i, (name, mutate, sec, key, why) in enumerate(cases):
        s = base_sections()
        mutate(s)
        path = os.path.join(d, "bad-%02d.ini" % i)
        where, headers = write_ini(path, s)
        rc, out = run_check(path)
        assert rc != 0, "%s: want a non-zero exit, got 0 %r" % (name, out)
        assert "configuration ok" not in out, "%s: must not say ok: %r" % (name, out)
        m = re.search(r"%s:(?:(\d+):)? \[%s\] %s: (.*)" % (re.escape(path), sec, re.escape(key)), out)
        assert m, "%s: want '%s:LINE: [%s] %s: ...', got %r" % (name, path, sec, key, out)
        line = int(m.group(1)) if m.group(1) else None
        want_line = where.get((sec, key))
        if want_line is not None:
            assert line == want_line, "%s: want line %d (where %s is), got %r in %r" \
                % (name, want_line, key, line, out)
        else:
            # a missing key: no line of its own; the section's line at most
            assert line in (None, headers[sec]), "%s: line %r in %r" % (name, line, out)
        assert re.search(why, m.group(2)), "%s: reason should match %r: %r" % (name, why, out)
        for secret in ("inline-secret-VALUE", "open-secret-VALUE", "group-secret-VALUE",
                       "s3cret-client-VALUE", "service-key-VALUE"):
            assert secret not in out, "%s: the message echoes a secret: %r" % (name, out)
        print("ok  --check-config %-30s exit %d: %s" % (name, rc, out.strip().split(": ", 1)[-1]))


# --------------------------------------------------------------------------
# (b) SIGHUP reload

def login_status(inst, return_to):
    status, hdrs, _ = stack.http("GET", inst.url + "/sso/login?" +
                                 urllib.parse.urlencode({"return_to": return_to}))
    return status, hdrs


def count(text, event):
    return len(re.findall(r"\bevent=%s\b" % event, text))


def sighup_and_wait(inst, event):
    before = count(inst.log_text(), event)
    pid = inst.proc.pid
    os.kill(pid, signal.SIGHUP)
    stack.wait_until(lambda: count(inst.log_text(), event) > before, 10.0,
                     what="fsc-sso %s logging event=%s" % (inst.name, event))
    assert inst.alive() and inst.proc.pid == pid, "SIGHUP must not restart or kill fsc-sso"


def sess_keys(st):
    return sorted(st.redis.cli("KEYS", "fsc:sso:sess:*") or [])


def check_sighup_reload(st):
    a = st.a
    pid = a.proc.pid
    s = st.session(via=a.url)
    status, t0 = st.client(a.url).token(s["session"])
    assert status == 200, "token before reload: %d %r" % (status, t0)
    status, _ = login_status(a, NEW_RETURN_TO)
    assert status == 400, "before reload the new URL is not allowed: want 400, got %d" % status
    # a sign-in started under the old allow-list, finished after the reload
    pending = stack.start_login(a.url, st.return_to)

    a.sections["login"]["allowed_return_to"] = NEW_RETURN_TO
    a.write_config()
    sighup_and_wait(a, "reloaded")
    status, hdrs = login_status(a, NEW_RETURN_TO)
    assert status == 302 and hdrs["location"].startswith(st.ids.authorize_url), \
        "after reload the new URL: want 302 to IdS, got %d %r" % (status, hdrs.get("location"))
    status, _ = login_status(a, st.return_to)
    assert status == 400, "after reload the old URL: want 400, got %d" % status
    assert a.proc.pid == pid and a.alive(), "same process after SIGHUP (pid %d)" % pid
    status, t1 = st.client(a.url).token(s["session"])
    assert status == 200 and t1["access_token"] == t0["access_token"], \
        "the existing session still serves its token after reload: %d %r" % (status, t1)
    code = stack.login_flow(a.url, NEW_RETURN_TO)
    status, s2 = st.client(a.url).handoff(code)
    assert status == 200, "a full sign-in with the new return_to: %d %r" % (status, s2)
    print("ok  SIGHUP: new return_to 302, old 400, same pid %d, session still serves its token" % pid)
    return s, t0, pending


def check_stale_login_after_reload(st, pending):
    """The login was started with a return_to the reload removed: the
    callback refuses it, and must not leave a session (with a live refresh
    token nobody can reach or revoke) behind."""
    before = sess_keys(st)
    status, hdrs, data = stack.http("GET", str(pending), timeout=10.0, cookies=pending.browser)
    assert status == 400 and "location" not in hdrs and b"no longer" in data, \
        "callback for a return_to removed by the reload: want 400 page, got %d %r" \
        % (status, hdrs.get("location"))
    after = sess_keys(st)
    assert after == before, \
        "a callback refused for its return_to must not store a session: %d session keys " \
        "before, %d after (orphan %r)" % (len(before), len(after), sorted(set(after) - set(before)))
    print("ok  callback of a login whose return_to was removed by the reload -> 400, no session")


def check_sighup_broken(st, s, t0):
    a = st.a
    pid = a.proc.pid
    good_sections = {k: dict(v) for k, v in a.sections.items()}
    a.sections["session"]["refresh_at"] = "1.5"
    a.sections["server"]["listne"] = "127.0.0.1:1"
    a.write_config()
    with open(a.conf, encoding="utf-8") as f:
        listne_line = next(i for i, l in enumerate(f.read().splitlines(), 1) if l.startswith("listne"))
    sighup_and_wait(a, "reload_refused")
    line = [l for l in a.log_text().splitlines() if "event=reload_refused" in l][-1]
    assert re.search(r"%s:%d: \[server\] listne" % (re.escape(a.conf), listne_line), line), \
        "reload_refused names file:line and key: %r" % line
    status, hdrs = login_status(a, NEW_RETURN_TO)
    assert status == 302, "after a refused reload the previous config runs: new URL 302, got %d" % status
    status, _ = login_status(a, st.return_to)
    assert status == 400, "after a refused reload the old URL stays refused: got %d" % status
    status, t = st.client(a.url).token(s["session"])
    assert status == 200 and t["access_token"] == t0["access_token"], \
        "session still served after a refused reload: %d %r" % (status, t)
    code = stack.login_flow(a.url, NEW_RETURN_TO)
    status, _ = st.client(a.url).handoff(code)
    assert status == 200, "sign-in still works after a refused reload: %d" % status
    assert a.alive() and a.proc.pid == pid, "still the same process"
    # and a good file again is taken
    a.sections = good_sections
    a.write_config()
    sighup_and_wait(a, "reloaded")
    print("ok  SIGHUP with a broken file: event=reload_refused (%s), previous config keeps serving"
          % line.split("detail=", 1)[-1][:90])


# --------------------------------------------------------------------------
# (c) SIGTERM drain

def probe_new_connection(port):
    """What a client connecting now gets: 'refused', 'reset' (closed at once,
    no reply), 'served' (an HTTP reply) or 'hung' (accepted by the kernel,
    never answered within 1 s)."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection((stack.HOST, port), timeout=1.0)
    except ConnectionRefusedError:
        return "refused", time.monotonic() - t0
    except OSError as e:
        return "error %r" % e, time.monotonic() - t0
    try:
        s.settimeout(1.0)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = s.recv(100)
        return ("served" if data.startswith(b"HTTP/") else "reset"), time.monotonic() - t0
    except socket.timeout:
        return "hung", time.monotonic() - t0
    except OSError:
        return "reset", time.monotonic() - t0
    finally:
        s.close()


def check_sigterm_drain(st):
    a = st.a
    cb = stack.start_login(a.url, NEW_RETURN_TO)     # A's allow-list since the reload
    st.ids.clear_faults()
    st.ids.fault(delay_ms=1500, count=1)
    result = {}

    def do_callback():
        t0 = time.monotonic()
        try:
            result["reply"] = stack.http("GET", str(cb), timeout=15.0, cookies=cb.browser)
        except Exception as e:      # reported by the main thread
            result["error"] = e
        result["took"] = time.monotonic() - t0

    th = threading.Thread(target=do_callback)
    th.start()
    time.sleep(0.3)
    t_sig = time.monotonic()
    os.kill(a.proc.pid, signal.SIGTERM)
    stack.wait_until(lambda: "event=stopping" in a.log_text(), 2.0, 0.01,
                     what="fsc-sso logging event=stopping")
    probe = probe_new_connection(a.port) if a.alive() else ("exited early", 0.0)
    th.join(20)
    assert not th.is_alive(), "the in-flight callback did not finish"
    assert "error" not in result, "in-flight callback failed during the drain: %r" % result.get("error")
    status, hdrs, data = result["reply"]
    assert status == 302 and "handoff=" in hdrs.get("location", ""), \
        "in-flight callback during SIGTERM: want 302 with handoff, got %d %r" % (status, data[:200])
    assert result["took"] >= 1.4, "the callback really waited for IdS (%.2f s)" % result["took"]
    rc = a.proc.wait(15)
    waited = time.monotonic() - t_sig
    assert rc == 0, "fsc-sso exit status after SIGTERM: want 0, got %r" % rc
    assert waited < 9.0, "drain finished soon after the last request (%.1f s)" % waited
    try:
        socket.create_connection((stack.HOST, a.port), timeout=1.0).close()
        after = "accepted"
    except ConnectionRefusedError:
        after = "refused"
    assert after == "refused", "after exit the port refuses connections, got %s" % after
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(hdrs["location"]).query)["handoff"][0]
    status, s = st.client(st.b.url).handoff(code)
    assert status == 200 and s["user"] == "agent1@example.com", \
        "the handoff from the drained callback is redeemable on B: %d %r" % (status, s)
    log = a.log_text()
    assert "event=stopping" in log and "event=stopped" in log and "http_drain_timeout" not in log, \
        "stopping/stopped logged without a drain timeout"
    print("ok  SIGTERM mid-callback: callback completed (302 + handoff, %.1f s), exit 0, "
          "handoff redeemed on B" % result["took"])
    # last, so that the checks above report first
    kind, took = probe
    assert kind in ("refused", "reset") and took < 0.5, \
        "a new connection after SIGTERM (during the drain) must be refused at once; it was " \
        "%s after %.2f s (the listening socket still accepts into its backlog)" % (kind, took)
    print("ok  new connections after SIGTERM: %s (%.2f s)" % (kind, took))


FAILURES = []


def soft(fn, *args):
    """Run a check; a failure is recorded and reported at the end, so the
    checks after it still run (they need the same stack)."""
    try:
        return fn(*args)
    except AssertionError as e:
        stack.mark_failed()
        FAILURES.append("%s: %s" % (fn.__name__, e))
        print("FAIL %s: %s" % (fn.__name__, e))
        return None


def main():
    tmp = stack.session_tmp()
    check_config_errors(tmp)
    with stack.Stack(haproxy=False) as st:
        s, t0, pending = check_sighup_reload(st)
        soft(check_stale_login_after_reload, st, pending)
        check_sighup_broken(st, s, t0)
        soft(check_sigterm_drain, st)
    assert not FAILURES, "%d check(s) failed:\n  %s" % (len(FAILURES), "\n  ".join(FAILURES))
    print("PASS it_config_reload")


if __name__ == "__main__":
    main()
