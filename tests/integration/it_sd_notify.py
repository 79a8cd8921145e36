# SPDX-License-Identifier: AGPL-3.0-or-later
"""Type=notify: both daemons speak systemd's notification protocol.

A test listener stands in for systemd on NOTIFY_SOCKET (a datagram socket:
a path for fsc-connector, an abstract name for fsc-sso, the two forms
systemd uses). Each daemon is started with `[server] listen` on port 0, so
the port is known only once its listener is bound, and must then:
  - send READY=1 with MAINPID = its pid and a STATUS naming that bound
    port; the first GET /healthz sent right after READY answers 200;
  - with WATCHDOG_USEC set (WatchdogSec=), send WATCHDOG=1 every half
    interval; without it, never;
  - on SIGTERM send STOPPING=1, then exit 0.
"""
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402


class NotifyListener:
    """What systemd does with NOTIFY_SOCKET: receive datagrams of
    newline-separated KEY=VALUE assignments."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.messages = []      # (monotonic time, {key: value})
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def first(self, key, value="1"):
        with self.lock:
            for t, m in self.messages:
                if m.get(key) == value:
                    return t, m
        return None

    def count(self, key, value="1"):
        with self.lock:
            return sum(1 for _, m in self.messages if m.get(key) == value)

    def close(self):
        self.closed = True
        self.sock.close()


def check_daemon(tmp, name, exe, config, address, env_address, watchdog):
    listener = NotifyListener(address)
    env = dict(os.environ, NOTIFY_SOCKET=env_address)
    env.pop("WATCHDOG_USEC", None)
    env.pop("WATCHDOG_PID", None)
    if watchdog:
        env["WATCHDOG_USEC"] = "1000000"    # WatchdogSec=1s: a ping every 0.5 s
    proc = stack.Proc(name, [exe, "--config", config], tmp.file("%s%s.log" % (name, "-watchdog" if watchdog else "")),
                      env=env, tmp=tmp).start()
    try:
        _, ready = stack.wait_until(lambda: listener.first("READY"), timeout=30,
                                    what="%s: READY=1" % name)
        # the first request right after READY: no retry, no wait
        m = re.search(r"port (\d+)", ready.get("STATUS", ""))
        assert m and int(m.group(1)) > 0, "%s: STATUS names the bound port: %r" % (name, ready)
        port = int(m.group(1))
        status, _, _ = stack.http("GET", "http://127.0.0.1:%d/healthz" % port, timeout=5)
        assert status == 200, "%s: /healthz right after READY: %s" % (name, status)
        assert ready.get("MAINPID") == str(proc.pid), "%s: MAINPID %r, pid %d" % (
            name, ready.get("MAINPID"), proc.pid)
        print("ok  %s: READY=1 (MAINPID %s, STATUS %r) once the listener is bound; "
              "/healthz answered 200 at once" % (name, ready["MAINPID"], ready["STATUS"]))
        if watchdog:
            stack.wait_until(lambda: listener.count("WATCHDOG") >= 3, timeout=15,
                             what="%s: WATCHDOG=1 pings" % name)
            print("ok  %s: WATCHDOG_USEC=1000000 -> WATCHDOG=1 pings (%d so far)"
                  % (name, listener.count("WATCHDOG")))
        assert listener.first("STOPPING") is None, "%s: STOPPING before any signal" % name
        proc.send_signal(signal.SIGTERM)
        t_stop, _ = stack.wait_until(lambda: listener.first("STOPPING"), timeout=15,
                                     what="%s: STOPPING=1 on SIGTERM" % name)
        rc = proc.wait(timeout=30)
        assert rc == 0, "%s: exit %s after SIGTERM" % (name, rc)
        assert t_stop >= listener.first("READY")[0], "%s: STOPPING after READY" % name
        if not watchdog:
            assert listener.count("WATCHDOG") == 0, \
                "%s: no WATCHDOG=1 without WATCHDOG_USEC" % name
            assert "watchdog_on" not in proc.log_text(), name
        print("ok  %s: SIGTERM -> STOPPING=1, exit 0%s" % (
            name, "" if watchdog else "; no watchdog pings when systemd asked for none"))
    finally:
        proc.stop()
        listener.close()


def main():
    tmp = stack.TempDir(prefix="fsc-it-notify-")
    sec = stack.SsoSecrets(tmp=tmp)
    redis = stack.Redis(tmp=tmp)
    conn_ini = tmp.write("fsc-connector.ini", "[server]\nlisten = 127.0.0.1:0\n"
                         "[finesse]\nnodes = http://127.0.0.1:1, http://127.0.0.1:2\n")
    sso_ini = tmp.write("fsc-sso.ini", (
        "[server]\nlisten = 127.0.0.1:0\npublic_url = https://sso.example.com\n"
        "[redis]\nurl = %s\n"
        "[ids]\nauthorize_url = https://ids.example.com:8553/ids/v1/oauth/authorize\n"
        "token_url = https://ids.example.com:8553/ids/v1/oauth/token\nclient_id = fsc\n"
        "client_secret_file = %s\nverify = off\n[session]\nseal_key_file = %s\n"
        "[service]\nkey_file = %s\n"
        "[login]\nallowed_return_to = https://connector.example.com/softphone/\n")
        % (redis.url, sec.client_secret_file, sec.seal_key_file, sec.service_key_file))
    path = tmp.file("notify.sock")
    abstract = "fsc-it-notify-%d" % os.getpid()
    for watchdog in (True, False):
        check_daemon(tmp, "fsc-connector", stack.FSC_CONNECTOR, conn_ini, path, path, watchdog)
        os.unlink(path)
        check_daemon(tmp, "fsc-sso", stack.FSC_SSO, sso_ini, "\0" + abstract, "@" + abstract,
                     watchdog)
    print("PASS")


if __name__ == "__main__":
    main()
