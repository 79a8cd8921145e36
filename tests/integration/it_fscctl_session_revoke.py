# SPDX-License-Identifier: AGPL-3.0-or-later
"""fscctl session revoke USER ends every fsc-sso session of one user, on
the real HA pair (Redis, ids-sim, fsc-sso A and B behind HAProxy):

  - alice signs in twice (two sessions, started on either instance), bob
    once; `fscctl --url <load balancer> --key-file <service key> session
    revoke alice@example.com` says 2 were revoked; both of alice's
    sessions answer 404 unknown_session, bob's still gets its token; IdS
    saw the refresh tokens revoked; a second revoke finds nothing;
  - --config takes fsc-sso's INI (that instance's listen address and
    [service] key_file) or fsc-connector's ([sso] url, service_key_file);
  - Redis holds no user name and no session id in the clear for it;
  - a wrong key is refused (exit 1, HTTP 401); a bad user is refused (400);
  - a daemon that cannot be reached gives exit 3 and a line saying which
    daemon at which address, for this command and for the connector's
    `status`."""
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

FSCCTL = os.path.join(os.path.dirname(stack.FSC_CONNECTOR), "fscctl")


def fscctl(*args):
    r = subprocess.run([FSCCTL] + list(args), capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def sign_in(st, user):
    status, body = st.client().handoff(stack.login_flow(st.url, st.return_to, login_hint=user))
    assert status == 200 and body["user"] == user, (status, body)
    return body["session"]


def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()       # nothing listens there now
    return port


def main():
    st = stack.Stack(user="alice@example.com")
    alice = [sign_in(st, "alice@example.com"), sign_in(st, "alice@example.com")]
    bob = sign_in(st, "bob@example.com")
    for sid in alice + [bob]:
        status, _ = st.client().token(sid)
        assert status == 200, status
    revocations = st.ids.stats()["revocations"]

    keys = [k.decode() if isinstance(k, bytes) else k
            for k in stack.resp_call(st.redis.port, "KEYS", "*")]
    assert not [k for k in keys if "alice" in k or "bob" in k], "no user name in a key: %s" % keys
    index = [k for k in keys if ":sso:user:" in k]
    assert len(index) == 2, "one index per user: %s" % keys
    members = stack.resp_call(st.redis.port, "SMEMBERS", index[0])
    for m in members:
        m = m.decode() if isinstance(m, bytes) else m
        assert m not in alice + [bob] and len(m) == 64, "members are hashes, not ids"
    print("ok  Redis: one index set per user, keyed and filled with hashes only")

    rc, out, err = fscctl("--url", st.url, "--key-file", st.secrets.service_key_file,
                          "session", "revoke", "alice@example.com")
    assert rc == 0 and "revoked 2 sessions of alice@example.com" in out, (rc, out, err)
    for sid in alice:
        status, body = st.client().token(sid)
        assert status == 404 and body["error"] == "unknown_session", (status, body)
    status, body = st.client().token(bob)
    assert status == 200 and body["user"] == "bob@example.com", "bob keeps his session"
    stack.wait_until(lambda: st.ids.stats()["revocations"] >= revocations + 2, timeout=10,
                     what="IdS saw both refresh tokens revoked")
    assert st.service_key not in out + err
    print("ok  %s" % out.strip())
    print("ok  alice's two sessions: 404 unknown_session; bob's: token; IdS revocations +2")

    rc, out, err = fscctl("--config", st.a.conf, "session", "revoke", "alice@example.com")
    assert rc == 0 and "no session of alice@example.com" in out, (rc, out, err)
    conn_ini = st.tmp.write("fsc-connector.ini", (
        "[server]\nlisten = 127.0.0.1:0\n[finesse]\nnodes = http://127.0.0.1:1\n"
        "[sso]\nurl = %s\nservice_key_file = %s\n") % (st.url, st.secrets.service_key_file))
    rc, out, err = fscctl("session", "revoke", "bob@example.com", "--config", conn_ini)
    assert rc == 0 and "revoked 1 session of bob@example.com" in out, (rc, out, err)
    status, _ = st.client().token(bob)
    assert status == 404, status
    print("ok  --config with fsc-sso's INI (instance a's listen) and with fsc-connector's "
          "([sso] url); options before or after the command")

    bad_key = st.tmp.write("secrets/wrong.key", "not-the-service-key\n", 0o600)
    rc, out, err = fscctl("--url", st.url, "--key-file", bad_key, "session", "revoke", "x@y")
    assert rc == 1 and "401" in err and "unauthorized" in err, (rc, out, err)
    rc, out, err = fscctl("--url", st.url, "--key-file", st.secrets.service_key_file,
                          "session", "revoke", "tab\there")
    assert rc == 1 and "400" in err and "invalid_request" in err, (rc, out, err)
    rc, out, err = fscctl("--url", st.url, "session", "revoke", "x@y")
    assert rc == 2 and "usage" in err, "--url needs --key-file"
    print("ok  wrong key: exit 1, HTTP 401; a user with a control character: 400")

    port = dead_port()
    rc, out, err = fscctl("--url", "http://127.0.0.1:%d" % port, "--key-file",
                          st.secrets.service_key_file, "session", "revoke", "x@y")
    assert rc == 3 and "cannot reach fsc-sso at http://127.0.0.1:%d" % port in err, (rc, err)
    admin_key = st.tmp.write("secrets/admin.key", "admin-key-xyz\n", 0o600)
    dead_conn = st.tmp.write("dead-connector.ini", (
        "[server]\nlisten = 127.0.0.1:%d\nadmin_key_file = %s\n[finesse]\n"
        "nodes = http://127.0.0.1:1\n") % (port, admin_key))
    rc, out, err = fscctl("--config", dead_conn, "status")
    assert rc == 3 and ("cannot reach fsc-connector at http://127.0.0.1:%d" % port) in err \
        and "[server] listen of %s" % dead_conn in err, (rc, err)
    print("ok  nothing listening: exit 3, %r" % err.splitlines()[0])
    st.stop()
    print("PASS")


if __name__ == "__main__":
    main()
