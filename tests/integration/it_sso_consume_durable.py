# SPDX-License-Identifier: AGPL-3.0-or-later
"""Consuming a sign-in state or a handoff code survives a failover: with
[redis] wait_replicas = 1 (Redis master + replica + Sentinel), every GETDEL
that consumes one is followed, on the same connection, by WAIT 1 <timeout>
before fsc-sso answers, as session writes are. Without it a failover to a
replica that had not yet seen the GETDEL would bring a used code back for
the rest of its 60 s. Checked with MONITOR on the master over whole
sign-ins (callback: the state; POST /v1/handoff: the code), on A and B; and
right after each answer the replica no longer has the key."""
import os
import re
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

LINE = re.compile(r'^\+?[\d.]+ \[\d+ ([^\]]+)\] (.*)$')


class Monitor:
    """MONITOR on a Redis: every command as (client, [args])."""

    def __init__(self, port):
        self.sock = socket.create_connection((stack.HOST, port))
        self.sock.sendall(b"MONITOR\r\n")
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                m = LINE.match(line.decode("utf-8", "replace"))
                if m:
                    self.lines.append((m.group(1), re.findall(r'"((?:[^"\\]|\\.)*)"',
                                                               m.group(2))))

    def close(self):
        self.sock.close()


def main():
    with stack.Stack(sentinel=True, sso_extra={"redis": {"wait_replicas": "1",
                                                         "wait_timeout_ms": "500"}}) as st:
        mon = Monitor(st.redis.port)

        def monitoring():
            st.redis.cli("ECHO", "monitor-ready")
            return any(a[:1] == ["ECHO"] for _, a in mon.lines)
        stack.wait_until(monitoring, 5, what="MONITOR running")
        for start, finish in ((st.a.url, st.a.url), (st.a.url, st.b.url), (st.b.url, st.a.url)):
            cb = stack.start_login(start, st.return_to)
            code = stack.finish_login(cb, finish)
            status, s = stack.SsoClient(finish, st.service_key).handoff(code)
            assert status == 200, (status, s)
        # every consuming GETDEL, and what its connection sent next
        stack.wait_until(lambda: sum(1 for _, a in mon.lines if a and a[0] == "GETDEL") >= 6,
                         5, what="the GETDELs in MONITOR")
        lines = list(mon.lines)
        mon.close()
        checked = {"state": 0, "handoff": 0}
        for i, (client, args) in enumerate(lines):
            if not args or args[0] != "GETDEL":
                continue
            kind = args[1].split(":")[2]
            nxt = next((a for c, a in lines[i + 1:] if c == client), None)
            assert nxt is not None and nxt[0] == "WAIT" and nxt[1:] == ["1", "500"], \
                "GETDEL %s on %s followed by %r, not WAIT 1 500" % (
                    args[1], client, nxt[:2] if nxt else None)
            checked[kind] = checked.get(kind, 0) + 1
            assert st.replica.cli("EXISTS", args[1]) == 0, "the replica still has " + args[1]
        assert checked["state"] == 3 and checked["handoff"] == 3, checked
        print("ok  3 sign-ins (A/A, A->B, B->A): each state and handoff GETDEL followed by "
              "WAIT 1 500 on its connection; the replica has none of the consumed keys")
    print("PASS")


if __name__ == "__main__":
    main()
