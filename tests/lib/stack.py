# SPDX-License-Identifier: AGPL-3.0-or-later
"""Start real components on loopback for the integration tests, stop them all.

Python 3 standard library only; run with /usr/bin/python3.

Every component runs as a child in its own process group, with its output in
a log file of one temp dir (TempDir). Everything started is stopped at exit,
on SIGTERM/SIGINT/SIGHUP, and (as a safety net) when this process dies
(PR_SET_PDEATHSIG). The temp dir is removed unless FSC_KEEP_TMP=1 or the
test failed (an uncaught exception, or mark_failed()); then its path and the
tail of every log are printed.

Pieces, one job each:
  free_port, wait_port, wait_http      ports and readiness
  TempDir, Proc                        files and child processes
  RespClient, Redis, Sentinels         redis-server / redis-sentinel
  IdsSim                               tests/sim/ids-sim/ids_sim.py
  SsoSecrets, SsoInstance              fsc-sso daemons sharing secrets
  Haproxy                              ha/haproxy-sso.cfg.in in front of A, B
  HttpProxy                            haproxy in front of one server, request
                                       lines logged (a reverse proxy's view)
  http, json_body, Browser             HTTP client helpers (http.client)
  start_login, finish_login, login_flow  a browser's sign-in against ids-sim
  SsoClient                            the service API, as fsc-connector uses it
  Stack                                the usual topology in one call

Environment: FSC_SOURCE_DIR (repo root), FSC_BUILD_DIR (cmake build dir with
sso-server/fsc-sso); defaults: the repo this file is in, and <root>/build.
"""

import atexit
import ctypes
from http import client as httpclient
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

SOURCE_DIR = os.path.abspath(os.environ.get("FSC_SOURCE_DIR") or
                             os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD_DIR = os.path.abspath(os.environ.get("FSC_BUILD_DIR") or os.path.join(SOURCE_DIR, "build"))
HA_DIR = os.path.join(SOURCE_DIR, "ha")
PYTHON = "/usr/bin/python3"
IDS_SIM = os.path.join(SOURCE_DIR, "tests", "sim", "ids-sim", "ids_sim.py")
FSC_SSO = os.path.join(BUILD_DIR, "sso-server", "fsc-sso")
HOST = "127.0.0.1"


def log(msg):
    """One line to stderr with a timestamp (ctest shows it on failure)."""
    sys.stderr.write("[stack %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Ports and readiness

_given_ports = set()


def free_port():
    """A TCP port free on 127.0.0.1 now, never handed out twice by us."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port
    raise RuntimeError("no free port found")


def _check_alive(proc):
    if proc is not None and not proc.alive():
        raise RuntimeError("%s exited with status %s while we waited for it; log %s:\n%s"
                           % (proc.name, proc.returncode(), proc.log_path, proc.log_tail()))


def wait_port(port, timeout=10.0, host=HOST, proc=None):
    """Wait until host:port accepts TCP connections; raise TimeoutError.
    proc: a Proc that must stay alive meanwhile (fail fast if it dies)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        _check_alive(proc)
        if time.monotonic() > deadline:
            raise TimeoutError("%s:%d not accepting connections after %.1f s" % (host, port, timeout))
        time.sleep(0.05)


def wait_http(url, timeout=10.0, expect_status=None, proc=None):
    """Poll GET url until it answers (with expect_status, if given).
    Returns the status; raises TimeoutError with the last outcome."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            status, _, _ = http("GET", url, timeout=1.0)
            if expect_status is None or status == expect_status:
                return status
            last = "status %d" % status
        except OSError as e:
            last = repr(e)
        _check_alive(proc)
        if time.monotonic() > deadline:
            raise TimeoutError("GET %s: no %s after %.1f s (last: %s)"
                               % (url, expect_status or "answer", timeout, last))
        time.sleep(0.05)


def wait_until(pred, timeout=10.0, interval=0.05, what="condition"):
    """Poll pred() until truthy; return its value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("%s not met after %.1f s" % (what, timeout))
        time.sleep(interval)


# --------------------------------------------------------------------------
# Cleanup: every Proc and TempDir registers here

class _Reaper:
    """Stops all children and cleans temp dirs once: at exit or on a signal."""

    def __init__(self):
        self.procs = []
        self.tmpdirs = []
        self.failed = False
        self.done = False
        self.lock = threading.RLock()
        self.installed = False

    def install(self):
        if self.installed:
            return
        self.installed = True
        atexit.register(self.cleanup)
        prev_hook = sys.excepthook

        def hook(*exc):
            self.failed = True
            prev_hook(*exc)
        sys.excepthook = hook
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, self.on_signal)

    def on_signal(self, sig, _frame):
        log("got signal %d, stopping everything" % sig)
        self.failed = True
        self.cleanup()
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)

    def cleanup(self):
        with self.lock:
            if self.done:
                return
            self.done = True
            for p in reversed(self.procs):
                try:
                    p.stop()
                except Exception as e:  # keep going: stop the others
                    log("stopping %s: %r" % (p.name, e))
            for t in self.tmpdirs:
                t.cleanup(failed=self.failed)


_REAPER = _Reaper()


def mark_failed():
    """Keep the temp dir and print the logs at exit (a test failed)."""
    _REAPER.failed = True


def stop_all():
    """Stop every process and clean up now (also runs at exit)."""
    _REAPER.cleanup()


# --------------------------------------------------------------------------
# Files and processes

class TempDir:
    """One directory for a test run's configs, data and logs."""

    def __init__(self, prefix="fsc-it-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        self.logs = []          # (name, path), printed on failure
        self.keep = os.environ.get("FSC_KEEP_TMP") == "1"
        _REAPER.install()
        _REAPER.tmpdirs.append(self)

    def sub(self, *parts):
        """A subdirectory (created)."""
        p = os.path.join(self.path, *parts)
        os.makedirs(p, exist_ok=True)
        return p

    def file(self, *parts):
        """A path inside the dir (parent created, file not)."""
        p = os.path.join(self.path, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def write(self, name, data, mode=0o644):
        """Write str/bytes to a file with the given mode (set before data)."""
        p = self.file(name)
        if isinstance(data, str):
            data = data.encode()
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.fchmod(fd, mode)
            os.write(fd, data)
        finally:
            os.close(fd)
        return p

    def add_log(self, name, path):
        self.logs.append((name, path))

    def cleanup(self, failed=False):
        if not os.path.isdir(self.path):
            return
        if failed or self.keep:
            if failed:
                for name, path in self.logs:
                    sys.stderr.write("----- %s: %s (last 40 lines) -----\n%s\n"
                                     % (name, path, _tail(path, 40)))
            log("kept temp dir with logs: %s" % self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


_session_tmp = None


def session_tmp():
    """The TempDir shared by components that were not given one."""
    global _session_tmp
    if _session_tmp is None:
        _session_tmp = TempDir()
    return _session_tmp


def _tail(path, n):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return "(%s)" % e


_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def _child_setup():
    # Runs in the child between fork and exec: its own session/process group
    # (so killpg reaches everything it forks) and SIGKILL when we die, even by
    # SIGKILL (ctest timeout), so no server is left behind.
    os.setsid()
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Proc:
    """One child process in its own process group, stdout+stderr to a log."""

    def __init__(self, name, argv, log_path, env=None, cwd=None, tmp=None):
        self.name, self.argv, self.log_path = name, list(argv), log_path
        self.env, self.cwd = env, cwd
        self.popen = None
        if tmp is not None:
            tmp.add_log(name, log_path)

    def start(self):
        _REAPER.install()
        with open(self.log_path, "ab") as logf:
            logf.write(("=== %s start %s: %s\n" % (time.strftime("%H:%M:%S"), self.name,
                                                    " ".join(self.argv))).encode())
            logf.flush()
            self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf,
                                          stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                                          preexec_fn=_child_setup, close_fds=True)
        if self not in _REAPER.procs:
            _REAPER.procs.append(self)
        return self

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def returncode(self):
        return self.popen.poll() if self.popen else None

    def send_signal(self, sig):
        """Send sig to the whole process group (no wait)."""
        if self.popen is None:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self, timeout=10.0):
        """Wait for exit; returns the status or raises subprocess.TimeoutExpired."""
        return self.popen.wait(timeout)

    def kill(self, sig=signal.SIGKILL, timeout=10.0):
        """Send sig to the group; for terminating signals also wait for exit.
        SIGSTOP/SIGCONT (a hung process) return at once."""
        self.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self.popen.wait(timeout)

    def stop(self, timeout=5.0):
        """SIGTERM (and SIGCONT, in case it was stopped), then SIGKILL."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.send_signal(signal.SIGTERM)
            self.send_signal(signal.SIGCONT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log("%s did not stop on SIGTERM in %.0f s, SIGKILL" % (self.name, timeout))
        self.send_signal(signal.SIGKILL)     # leftovers in the group, if any
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            log("%s (pid %d) did not exit after SIGKILL" % (self.name, self.popen.pid))

    def log_tail(self, n=40):
        return _tail(self.log_path, n)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def fill_template(src, dst, values, mode=0o644):
    """Copy src to dst replacing @KEY@ for each KEY in values; fail on leftovers."""
    with open(src, encoding="utf-8") as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise ValueError("%s: unfilled placeholders %s" % (src, sorted(set(left))))
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return dst


# --------------------------------------------------------------------------
# Redis

class _ProcBacked:
    """A component run as one Proc (self.proc): kill, stop and its log."""

    def kill(self, sig=signal.SIGKILL):
        self.proc.kill(sig)

    def stop(self):
        self.proc.stop()

    def log_text(self):
        return self.proc.log_text()


class RespError(Exception):
    """An error reply (-ERR ...) from Redis."""


class RespClient:
    """A tiny blocking RESP2 client: call(*args) -> reply.
    Bulk strings are returned as str (bytes if not UTF-8), arrays as lists."""

    def __init__(self, port, host=HOST, timeout=2.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("redis closed the connection")
        self.buf += data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            try:
                return data.decode()
            except UnicodeDecodeError:
                return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError("bad RESP reply %r" % line[:80])


def resp_call(port, *args, timeout=2.0):
    """One command on a fresh connection."""
    with RespClient(port, timeout=timeout) as c:
        return c.call(*args)


def pairs(flat):
    """['k1', 'v1', 'k2', 'v2'] -> {'k1': 'v1', 'k2': 'v2'}"""
    return dict(zip(flat[0::2], flat[1::2]))


class Redis(_ProcBacked):
    """redis-server from ha/redis/{master,replica}.conf.in (no persistence).
    replica_of: a Redis or a port number."""

    def __init__(self, port=None, replica_of=None, name=None, tmp=None, start=True):
        self.tmp = tmp or session_tmp()
        self.port = port or free_port()
        self.name = name or "redis-%d" % self.port
        self.dir = self.tmp.sub(self.name)
        self.conf = os.path.join(self.dir, "redis.conf")
        master_port = replica_of.port if isinstance(replica_of, Redis) else replica_of
        if master_port:
            fill_template(os.path.join(HA_DIR, "redis", "replica.conf.in"), self.conf,
                          {"PORT": self.port, "DIR": self.dir, "MASTER_PORT": master_port})
        else:
            fill_template(os.path.join(HA_DIR, "redis", "master.conf.in"), self.conf,
                          {"PORT": self.port, "DIR": self.dir})
        self.tmp.add_log(self.name, os.path.join(self.dir, "redis.log"))
        self.proc = Proc(self.name, ["redis-server", self.conf],
                         os.path.join(self.dir, "stdout.log"), tmp=self.tmp)
        if start:
            self.start()

    @property
    def url(self):
        return "redis://%s:%d/0" % (HOST, self.port)

    @property
    def addr(self):
        return "%s:%d" % (HOST, self.port)

    def start(self, timeout=10.0):
        self.proc.start()
        wait_until(self._pong, timeout, what="%s PING" % self.name)
        _check_alive(self.proc)
        return self

    def _pong(self):
        _check_alive(self.proc)
        try:
            return self.cli("PING") == "PONG"
        except (OSError, RespError):     # not listening yet / LOADING
            return False

    def cli(self, *args, timeout=2.0):
        """Run one command, e.g. r.cli("SET", "k", "v"); returns the reply."""
        return resp_call(self.port, *args, timeout=timeout)

    def restart(self, timeout=10.0):
        """Stop (if running) and start again on the same port and config
        (which Sentinel may have rewritten)."""
        self.proc.stop()
        return self.start(timeout)

    def role(self):
        """'master' or 'slave'."""
        return self.cli("ROLE")[0]

    def info(self, section="replication"):
        text = self.cli("INFO", section)
        return dict(l.split(":", 1) for l in text.splitlines() if ":" in l and not l.startswith("#"))

    def wait_synced(self, timeout=15.0):
        """For a replica: wait until master_link_status is up."""
        wait_until(lambda: self.info().get("master_link_status") == "up", timeout,
                   what="%s replication link up" % self.name)

    def log_text(self):
        return _tail(os.path.join(self.dir, "redis.log"), 100000)


class Sentinels:
    """n redis-sentinel processes from ha/redis/sentinel.conf.in, monitoring
    master_name at 127.0.0.1:master_port (quorum 2, down-after 1000 ms,
    failover-timeout 5000 ms)."""

    def __init__(self, master_name, master_port, n=3, tmp=None, start=True):
        if isinstance(master_port, Redis):
            master_port = master_port.port
        self.tmp = tmp or session_tmp()
        self.master_name, self.master_port, self.n = master_name, master_port, n
        self.ports = [free_port() for _ in range(n)]
        self.procs = []
        for i, port in enumerate(self.ports):
            d = self.tmp.sub("sentinel-%d" % port)
            conf = fill_template(os.path.join(HA_DIR, "redis", "sentinel.conf.in"),
                                 os.path.join(d, "sentinel.conf"),
                                 {"PORT": port, "DIR": d, "MASTER_NAME": master_name,
                                  "MASTER_PORT": master_port})
            self.tmp.add_log("sentinel-%d" % port, os.path.join(d, "sentinel.log"))
            self.procs.append(Proc("sentinel-%d" % port, ["redis-sentinel", conf],
                                   os.path.join(d, "stdout.log"), tmp=self.tmp))
        if start:
            self.start()

    @property
    def addrs(self):
        """['127.0.0.1:p1', ...]"""
        return ["%s:%d" % (HOST, p) for p in self.ports]

    @property
    def spec(self):
        """'127.0.0.1:p1, 127.0.0.1:p2, ...' as [redis] sentinels wants it."""
        return ", ".join(self.addrs)

    def start(self, timeout=10.0):
        for p, port in zip(self.procs, self.ports):
            if not p.alive():
                p.start()
                wait_port(port, timeout, proc=p)
        return self

    def cli(self, i, *args, timeout=2.0):
        """A command on sentinel i, e.g. s.cli(0, "SENTINEL", "MASTERS")."""
        return resp_call(self.ports[i], *args, timeout=timeout)

    def master_info(self, i=0):
        return pairs(self.cli(i, "SENTINEL", "MASTER", self.master_name))

    def wait_ready(self, timeout=20.0, replicas=1):
        """Every sentinel sees the n-1 others and at least `replicas` replicas."""
        def ready():
            for i in range(self.n):
                if not self.procs[i].alive():
                    continue
                try:
                    m = self.master_info(i)
                except (OSError, RespError):
                    return False
                if (int(m.get("num-other-sentinels", 0)) < self.n - 1 or
                        int(m.get("num-slaves", 0)) < replicas):
                    return False
            return True
        return wait_until(ready, timeout, 0.1, "sentinels ready (%d, replicas>=%d)"
                          % (self.n, replicas))

    def master_addr(self):
        """(host, port) of the master per the first sentinel that answers."""
        last = None
        for i in range(self.n):
            if not self.procs[i].alive():
                continue
            try:
                r = self.cli(i, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
                if r:
                    return r[0], int(r[1])
            except (OSError, RespError) as e:
                last = e
        raise ConnectionError("no sentinel answered (%r)" % (last,))

    def wait_master(self, port, timeout=20.0):
        """Wait until the sentinels name 127.0.0.1:port as master; returns seconds."""
        if isinstance(port, Redis):
            port = port.port
        t0 = time.monotonic()
        wait_until(lambda: self._master_port() == port, timeout, 0.05,
                   "sentinels naming port %d as master" % port)
        return time.monotonic() - t0

    def _master_port(self):
        try:
            return self.master_addr()[1]
        except ConnectionError:
            return None

    def kill(self, i, sig=signal.SIGKILL):
        self.procs[i].kill(sig)

    def stop(self):
        for p in self.procs:
            p.stop()


# --------------------------------------------------------------------------
# ids-sim

class IdsSim(_ProcBacked):
    """tests/sim/ids-sim/ids_sim.py: Cisco IdS-like OAuth2 server (auto-approve).
    redirect_uris: one URL or a list. token_shape: "top-level" (default),
    "cisco" (the user inside a JSON-string sub, RS256, key endpoint) or
    "opaque" (encrypted, no key endpoint: IdS before 12.6(2)). keys_status:
    the key endpoint answers that HTTP status instead of the key. Extra
    command-line args via extra_args."""

    def __init__(self, client_id, client_secret, redirect_uris, user=None, access_ttl=None,
                 refresh_ttl=None, issuer=None, extra_args=(), tmp=None, start=True,
                 token_shape=None, keys_status=None):
        self.tmp = tmp or session_tmp()
        self.client_id, self.client_secret = client_id, client_secret
        self.redirect_uris = [redirect_uris] if isinstance(redirect_uris, str) else list(redirect_uris)
        self.user, self.issuer = user, issuer or "ids.sim"
        self.dir = self.tmp.sub("ids-sim")
        self.secret_file = self.tmp.write("ids-sim/client-secret", client_secret + "\n", 0o600)
        self.port_file = os.path.join(self.dir, "port")
        self.public_key_path = os.path.join(self.dir, "token-public.pem")
        self.port = None
        self.access_ttl, self.refresh_ttl = access_ttl, refresh_ttl
        self.extra_args = list(extra_args)
        if token_shape:
            self.extra_args += ["--token-shape", token_shape]
        if keys_status:
            self.extra_args += ["--keys-status", str(keys_status)]
        self.proc = None
        if start:
            self.start()

    def _argv(self):
        argv = [PYTHON, IDS_SIM, "--port", str(self.port or 0), "--port-file", self.port_file,
                "--client-id", self.client_id, "--client-secret-file", self.secret_file,
                "--public-key-out", self.public_key_path, "--issuer", self.issuer]
        for u in self.redirect_uris:
            argv += ["--redirect-uri", u]
        if self.user:
            argv += ["--user", self.user]
        if self.access_ttl:
            argv += ["--access-ttl", str(self.access_ttl)]
        if self.refresh_ttl:
            argv += ["--refresh-ttl", str(self.refresh_ttl)]
        return argv + self.extra_args

    def start(self, timeout=15.0):
        """Start; reuses the previous port on a restart."""
        if not os.path.exists(IDS_SIM):
            raise FileNotFoundError("ids-sim not found at %s" % IDS_SIM)
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.proc = Proc("ids-sim", self._argv(), os.path.join(self.dir, "ids-sim.log"),
                         tmp=self.tmp if self.port is None else None)
        self.proc.start()

        def port_written():
            _check_alive(self.proc)
            try:
                with open(self.port_file) as f:
                    return int(f.read().strip() or 0)
            except (OSError, ValueError):
                return 0
        self.port = wait_until(port_written, timeout, what="ids-sim port file")
        wait_http(self.url + "/sim/stats", timeout, 200, proc=self.proc)
        return self

    @property
    def url(self):
        return "http://%s:%d" % (HOST, self.port)

    authorize_url = property(lambda self: self.url + "/ids/v1/oauth/authorize")
    token_url = property(lambda self: self.url + "/ids/v1/oauth/token")
    revoke_url = property(lambda self: self.url + "/ids/v1/oauth/revoke")

    def _control(self, method, path, body=None):
        status, _, data = http(method, self.url + path, body=body)
        if status != 200:
            raise RuntimeError("ids-sim %s %s -> %d %r" % (method, path, status, data[:200]))
        return json.loads(data or b"null")

    def stats(self):
        """GET /sim/stats (grants by type, reuse attempts, ...)."""
        return self._control("GET", "/sim/stats")

    def settings(self, agent_id, **kw):
        """POST /sim/agents/{id}/settings (wrap_up_on_incoming=, password=,
        drop_notifications=)."""
        return self._control("POST", "/sim/agents/%s/settings" % agent_id, kw)

    def fault(self, **kw):
        """POST /sim/faults, e.g. fault(status=503, for_s=5) or fault(delay_ms=3000)."""
        return self._control("POST", "/sim/faults", kw)

    def clear_faults(self):
        return self._control("DELETE", "/sim/faults")

    def config(self, **kw):
        """POST /sim/config, e.g. config(access_ttl=5), config(token_shape="cisco"),
        config(keys_status=503) (0: serve the key again)."""
        return self._control("POST", "/sim/config", kw)

    def rotate_key(self, publish=True):
        """POST /sim/keys/rotate: sign with a new key; publish=False keeps
        the key endpoint on the old one (tokens signed by a key nobody
        can fetch)."""
        return self._control("POST", "/sim/keys/rotate", {"publish": publish})

    def sign_with(self, kid):
        """POST /sim/keys/sign: sign with an earlier key again ("ids-sim-1"),
        like an IdS node that has not switched over yet."""
        return self._control("POST", "/sim/keys/sign", {"kid": kid})

    def reset_stats(self):
        return self._control("POST", "/sim/reset")

    def introspect(self, token):
        """GET /sim/tokens/introspect?token= -> {"active": bool, ...}"""
        return self._control("GET", "/sim/tokens/introspect?" + urllib.parse.urlencode({"token": token}))

    def restart(self, timeout=15.0):
        """Same port; note a restart forgets every code and token."""
        self.proc.stop()
        return self.start(timeout)


# --------------------------------------------------------------------------
# fsc-sso

class SsoSecrets:
    """The files an fsc-sso pair shares: IdS client secret, 32-byte seal key,
    service key (what fsc-connector sends as Bearer). Mode 0600."""

    def __init__(self, client_secret=None, tmp=None):
        self.tmp = tmp or session_tmp()
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.service_key = secrets.token_urlsafe(32)
        self.seal_key = secrets.token_bytes(32)
        self.client_secret_file = self.tmp.write("secrets/ids-client-secret",
                                                 self.client_secret + "\n", 0o600)
        self.seal_key_file = self.tmp.write("secrets/seal.key", self.seal_key, 0o600)
        self.service_key_file = self.tmp.write("secrets/service.key", self.service_key + "\n", 0o600)


class SsoInstance(_ProcBacked):
    """One fsc-sso daemon.

    redis: a Redis, a redis:// URL, or a Sentinels (then [redis] sentinels and
    master are used). ids: an IdsSim. public_url: how browsers reach the pair
    (the HAProxy URL; default: this instance's own URL). allowed_return_to:
    str or list. secrets: an SsoSecrets shared by the pair (created if None).
    extra: {"section": {"key": "value" | None}} to override/add (None
    removes). The INI uses the keys of deploy/fsc-sso.ini.sample. Two
    test defaults differ from the daemon's: [login] starts_per_minute is
    high (tests start far more sign-ins from 127.0.0.1 than a site's
    address does; remove it with extra={"login": {"starts_per_minute":
    None}} for the shipped limit), and [server] trusted_proxies is
    127.0.0.1 (the HAProxy of Stack connects from there)."""

    def __init__(self, name, redis, ids, public_url=None, allowed_return_to=(),
                 secrets=None, extra=None, port=None, client_id=None, log_level="debug",
                 jwt=False, tmp=None, start=True):
        self.tmp = tmp or session_tmp()
        self.name = name
        self.port = port or free_port()
        self.public_url = (public_url or self.url).rstrip("/")
        self.secrets = secrets or SsoSecrets(ids.client_secret if ids else None, tmp=self.tmp)
        self.dir = self.tmp.sub("sso-%s" % name)
        self.conf = os.path.join(self.dir, "fsc-sso.ini")
        if isinstance(allowed_return_to, str):
            allowed_return_to = [allowed_return_to]
        sections = {
            "server": {"listen": "%s:%d" % (HOST, self.port), "public_url": self.public_url,
                       "instance": name, "log_level": log_level,
                       "trusted_proxies": HOST},
            "redis": self._redis_keys(redis),
            "ids": {"authorize_url": ids.authorize_url, "token_url": ids.token_url,
                    "revoke_url": ids.revoke_url,
                    "client_id": client_id or ids.client_id,
                    "client_secret_file": self.secrets.client_secret_file} if ids else {},
            "session": {"seal_key_file": self.secrets.seal_key_file},
            "service": {"key_file": self.secrets.service_key_file},
            "login": {"allowed_return_to": ", ".join(allowed_return_to),
                      "starts_per_minute": "100000"},
        }
        if jwt and ids:
            sections["ids"].update({"jwt_public_key_file": ids.public_key_path,
                                    "jwt_issuer": ids.issuer,
                                    "jwt_audience": client_id or ids.client_id})
        for sec, kv in (extra or {}).items():
            dst = sections.setdefault(sec, {})
            for k, v in kv.items():
                if v is None:
                    dst.pop(k, None)
                else:
                    dst[k] = v
        self.sections = sections
        self.write_config()
        self.proc = Proc("fsc-sso-%s" % name, [FSC_SSO, "--config", self.conf],
                         os.path.join(self.dir, "fsc-sso.log"), tmp=self.tmp)
        if start:
            self.start()

    @staticmethod
    def _redis_keys(redis):
        if isinstance(redis, Sentinels):
            return {"sentinels": redis.spec, "master": redis.master_name, "prefix": "fsc:"}
        url = redis.url if isinstance(redis, Redis) else str(redis)
        return {"url": url, "prefix": "fsc:"}

    def write_config(self):
        """(Re)write the INI from self.sections (edit them, then restart())."""
        lines = ["; generated by tests/lib/stack.py"]
        for sec, kv in self.sections.items():
            if not kv:
                continue
            lines.append("\n[%s]" % sec)
            lines += ["%s = %s" % (k, v) for k, v in kv.items()]
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def url(self):
        return "http://%s:%d" % (HOST, self.port)

    @staticmethod
    def check_binary():
        if not os.access(FSC_SSO, os.X_OK):
            raise FileNotFoundError("fsc-sso not built: %s (set FSC_BUILD_DIR)" % FSC_SSO)

    def check_config(self):
        """Run fsc-sso --check-config; returns (exit status, output)."""
        self.check_binary()
        r = subprocess.run([FSC_SSO, "--check-config", "--config", self.conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def start(self, timeout=15.0):
        """Start and wait for GET /healthz 200."""
        self.check_binary()
        self.proc.start()
        wait_http(self.url + "/healthz", timeout, 200, proc=self.proc)
        return self

    def wait_ready(self, timeout=15.0):
        """Wait for GET /readyz 200 (Redis reachable)."""
        wait_http(self.url + "/readyz", timeout, 200, proc=self.proc)

    def restart(self, timeout=15.0):
        self.proc.stop()
        return self.start(timeout)

    def alive(self):
        return self.proc.alive()


# --------------------------------------------------------------------------
# HAProxy

class Haproxy(_ProcBacked):
    """haproxy from ha/haproxy-sso.cfg.in in front of exactly two backends
    (server names "a" and "b", backend "be_sso"). backends: two URLs or
    host:port strings (or SsoInstances)."""

    BACKEND = "be_sso"
    # not 127.0.0.0/8: every /metrics through the LB is refused in tests
    MONITORING_NETS = "192.0.2.0/24"

    @staticmethod
    def production_login_rate():
        """The sign-in starts per minute ha/haproxy-sso.cfg allows one
        address (the test that floods uses the shipped value)."""
        with open(os.path.join(HA_DIR, "haproxy-sso.cfg"), encoding="utf-8") as f:
            return int(re.search(r"sc_http_req_rate\(0\) gt (\d+)", f.read()).group(1))

    def __init__(self, backends, port=None, tmp=None, start=True, login_rate=100000):
        """login_rate: sign-in starts per client address and minute (the
        shipped config's is production_login_rate(); tests that sign in
        often keep the default, high)."""
        if len(backends) != 2:
            raise ValueError("the template has exactly two servers (a, b)")
        self.tmp = tmp or session_tmp()
        self.port = port or free_port()
        self.dir = self.tmp.sub("haproxy")
        self.socket_path = os.path.join(self.dir, "admin.sock")
        if len(self.socket_path) > 100:      # sun_path is 108 bytes
            self.socket_path = os.path.join(tempfile.mkdtemp(prefix="fsc-hx-"), "admin.sock")
        self.cfg = fill_template(os.path.join(HA_DIR, "haproxy-sso.cfg.in"),
                                 os.path.join(self.dir, "haproxy.cfg"),
                                 {"BIND": "%s:%d" % (HOST, self.port),
                                  "SSO_A": _hostport(backends[0]),
                                  "SSO_B": _hostport(backends[1]),
                                  "STATS_SOCKET": self.socket_path,
                                  "MONITORING_NETS": self.MONITORING_NETS,
                                  "LOGIN_STARTS_PER_MIN": str(login_rate)})
        r = subprocess.run(["haproxy", "-c", "-f", self.cfg], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("haproxy -c -f %s failed:\n%s" % (self.cfg, r.stdout.decode()))
        self.proc = Proc("haproxy", ["haproxy", "-f", self.cfg, "-db"],
                         os.path.join(self.dir, "haproxy.log"), tmp=self.tmp)
        if start:
            self.start()

    @property
    def url(self):
        return "http://%s:%d" % (HOST, self.port)

    def start(self, timeout=10.0):
        self.proc.start()
        wait_port(self.port, timeout, proc=self.proc)
        wait_until(lambda: os.path.exists(self.socket_path), timeout, what="haproxy stats socket")
        return self

    def admin(self, command, timeout=2.0):
        """One command on the stats socket; returns the text answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.socket_path)
            s.sendall(command.encode() + b"\n")
            out = b""
            while True:
                data = s.recv(65536)
                if not data:
                    break
                out += data
        return out.decode("utf-8", "replace")

    def server_state(self):
        """{"a": {"op_state": 2, "admin_state": 0, "addr": "...", ...}, "b": ...}
        op_state: 0 = DOWN, 1 = starting, 2 = UP, 3 = stopping."""
        text = self.admin("show servers state %s" % self.BACKEND)
        lines = [l for l in text.splitlines() if l.strip()]
        header = next(l for l in lines if l.startswith("#")).lstrip("# ").split()
        out = {}
        for l in lines:
            if l.startswith("#") or len(l.split()) < len(header) or not l[0].isdigit():
                continue
            row = dict(zip(header, l.split()))
            out[row["srv_name"]] = {"op_state": int(row["srv_op_state"]),
                                    "admin_state": int(row["srv_admin_state"]),
                                    "addr": row["srv_addr"], "port": row.get("srv_port"),
                                    "raw": row}
        return out

    def is_up(self, name):
        return self.server_state()[name]["op_state"] == 2

    def wait_up(self, name, timeout=15.0):
        """Wait until server `name` ("a"/"b") is UP; returns seconds waited."""
        t0 = time.monotonic()
        wait_until(lambda: self.is_up(name), timeout, 0.05, "haproxy %s UP" % name)
        return time.monotonic() - t0

    def wait_down(self, name, timeout=15.0):
        t0 = time.monotonic()
        wait_until(lambda: self.server_state()[name]["op_state"] == 0, timeout, 0.05,
                   "haproxy %s DOWN" % name)
        return time.monotonic() - t0

    def set_maint(self, name, maint=True):
        """Put a server into/out of maintenance (drain without killing it)."""
        return self.admin("set server %s/%s state %s" % (self.BACKEND, name,
                                                          "maint" if maint else "ready"))

    def restart(self, timeout=10.0):
        self.proc.stop()
        return self.start(timeout)


class HttpProxy(_ProcBacked):
    """haproxy as a plain reverse proxy in front of one HTTP server (e.g.
    fsc-connector): X-Forwarded-For added (option forwardfor), every
    request logged with its request line (option httplog) to its log, as a
    site's proxy would, as soon as its answer starts (option logasap: event
    streams too); long server timeout for event streams.
    request_lines() returns what it logged."""

    def __init__(self, backend, port=None, tmp=None, start=True, name="proxy"):
        self.tmp = tmp or session_tmp()
        self.port = port or free_port()
        self.dir = self.tmp.sub(name)
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write("\n".join([
                "global", "    log stdout format raw local0 info", "    maxconn 2000",
                "defaults", "    mode http", "    log global", "    option httplog",
                # a stream is logged when its answer starts, not when it ends
                "    option logasap",
                "    option forwardfor", "    timeout connect 1s", "    timeout client 60s",
                "    timeout server 60s", "    timeout http-request 10s",
                "frontend fe", "    bind %s:%d" % (HOST, self.port), "    default_backend be",
                "backend be", "    server s1 %s" % _hostport(backend), ""]))
        self.proc = Proc("haproxy-" + name, ["haproxy", "-f", self.cfg, "-db"],
                         os.path.join(self.dir, "haproxy.log"), tmp=self.tmp)
        if start:
            self.start()

    @property
    def url(self):
        return "http://%s:%d" % (HOST, self.port)

    def start(self, timeout=10.0):
        self.proc.start()
        wait_port(self.port, timeout, proc=self.proc)
        return self

    def request_lines(self):
        """The quoted request line of every logged request ("GET /x?y HTTP/1.1")."""
        return re.findall(r'"([A-Z]+ [^"]*)"', self.proc.log_text())


def _hostport(x):
    if isinstance(x, SsoInstance) or hasattr(x, "port") and not isinstance(x, str):
        return "%s:%d" % (HOST, x.port)
    if "://" in x:
        u = urllib.parse.urlsplit(x)
        return "%s:%d" % (u.hostname, u.port or (443 if u.scheme == "https" else 80))
    return x


# --------------------------------------------------------------------------
# HTTP helpers

def http(method, url, headers=None, body=None, timeout=5.0, follow=False, cookies=None,
         context=None, source=None):
    """One HTTP request with http.client. body: bytes, str, or dict/list (sent
    as JSON). follow: follow redirects (GET after 301/302/303). cookies: a
    Browser whose cookie jar is used. context: an ssl.SSLContext for https
    (e.g. TestPki.client_context()). source: the local address to send
    from (another loopback address, "127.0.0.2", is another client).
    Returns (status, headers, body bytes);
    header names are lower-case, repeated headers joined with ", " except
    set-cookie (joined with "\\n")."""
    for _ in range(10):
        status, hdrs, data = _request_once(method, url, headers, body, timeout, cookies, context,
                                           source)
        if not follow or status not in (301, 302, 303, 307, 308) or "location" not in hdrs:
            return status, hdrs, data
        url = urllib.parse.urljoin(url, hdrs["location"])
        if status in (301, 302, 303):
            method, body = "GET", None
    raise RuntimeError("too many redirects")


def _request_once(method, url, headers, body, timeout, cookies, context=None, source=None):
    u = urllib.parse.urlsplit(url)
    source = source or getattr(cookies, "source", None)
    src = (source, 0) if source else None
    if u.scheme == "https":
        conn = httpclient.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=context,
                                          source_address=src)
    else:
        conn = httpclient.HTTPConnection(u.hostname, u.port, timeout=timeout,
                                         source_address=src)
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    if cookies is not None:
        c = cookies.cookie_header(u.hostname)
        if c:
            hdrs["Cookie"] = c
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        out = {}
        for k, v in resp.getheaders():
            k = k.lower()
            if k in out:
                out[k] += ("\n" if k == "set-cookie" else ", ") + v
            else:
                out[k] = v
        if cookies is not None:
            for v in resp.headers.get_all("Set-Cookie") or []:
                cookies.set_cookie(u.hostname, v)
        return resp.status, out, data
    finally:
        conn.close()


def json_body(method, url, headers=None, body=None, timeout=5.0, source=None):
    """http() and parse the body as JSON: returns (status, obj or None)."""
    status, _, data = http(method, url, headers=headers, body=body, timeout=timeout,
                           source=source)
    try:
        return status, json.loads(data) if data else None
    except ValueError:
        return status, None


class Browser:
    """A cookie jar, per host name (ports ignored, like browsers do, so
    instances A and B on 127.0.0.1 share cookies as they would behind one
    load balancer). Path, Secure, SameSite are not enforced. source: the
    local address its requests come from (another loopback address is
    another client)."""

    def __init__(self, source=None):
        self.jar = {}       # host -> {name: value}
        self.source = source
        self.set_cookies = []   # every Set-Cookie header received, in order

    def set_cookie(self, host, header):
        self.set_cookies.append(header)
        nv = header.split(";", 1)[0]
        name, _, value = nv.partition("=")
        attrs = header.lower()
        jar = self.jar.setdefault(host, {})
        if re.search(r";\s*max-age=(0|-\d+)\b", attrs) or "expires=thu, 01 jan 1970" in attrs:
            jar.pop(name.strip(), None)
        else:
            jar[name.strip()] = value.strip()

    def cookie_header(self, host):
        return "; ".join("%s=%s" % kv for kv in self.jar.get(host, {}).items())

    def get(self, url, **kw):
        return http("GET", url, cookies=self, **kw)


def _rebase(url, base):
    """url with scheme://host:port taken from base."""
    u, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit((b.scheme, b.netloc, u.path, u.query, u.fragment))


class CallbackUrl(str):
    """The IdS redirect to /sso/callback?code&state, carrying the Browser
    (cookies) of the sign-in that produced it."""
    browser = None


class LoginError(AssertionError):
    pass


def start_login(sso_url, return_to, login_hint=None, popup=False, browser=None):
    """GET {sso_url}/sso/login?return_to=... -> 302 to IdS authorize -> (ids-sim
    auto-approves) 302 to .../sso/callback?code&state. Returns that callback
    URL (a CallbackUrl, not followed)."""
    browser = browser or Browser()
    q = {"return_to": return_to}
    if login_hint:
        q["login_hint"] = login_hint
    if popup:
        q["mode"] = "popup"
    url = sso_url.rstrip("/") + "/sso/login?" + urllib.parse.urlencode(q)
    status, hdrs, data = browser.get(url)
    if status != 302 or "location" not in hdrs:
        raise LoginError("GET %s -> %d %r" % (url, status, data[:300]))
    authorize = urllib.parse.urljoin(url, hdrs["location"])
    status, hdrs, data = browser.get(authorize)
    if status != 302 or "location" not in hdrs:
        raise LoginError("GET %s -> %d %r" % (authorize, status, data[:300]))
    cb = CallbackUrl(urllib.parse.urljoin(authorize, hdrs["location"]))
    cb.browser = browser
    return cb


def finish_login(callback_url, sso_url=None, browser=None, popup=None):
    """GET the callback (on sso_url's host:port if given, e.g. instance B)
    -> 302 to return_to?...&handoff=CODE, or (popup) a page that postMessages
    {"handoff": CODE}. Returns CODE. Raises LoginError otherwise."""
    browser = browser or getattr(callback_url, "browser", None) or Browser()
    url = _rebase(callback_url, sso_url) if sso_url else str(callback_url)
    status, hdrs, data = browser.get(url)
    if status == 302 and "location" in hdrs:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(hdrs["location"]).query)
        if "handoff" in q:
            return q["handoff"][0]
        raise LoginError("callback redirected without handoff: %s" % hdrs["location"])
    if status == 200 and popup is not False:
        m = re.search(rb'"handoff"\s*:\s*"([^"\\]+)"', data)
        if m:
            return m.group(1).decode()
    raise LoginError("GET %s -> %d %r" % (url, status, data[:300]))


def login_flow(sso_url, return_to, login_hint=None, popup=False, callback_url=None, browser=None):
    """A full sign-in; returns the handoff code. callback_url: send the
    callback to this base URL instead (e.g. instance B)."""
    cb = start_login(sso_url, return_to, login_hint, popup, browser)
    return finish_login(cb, callback_url)


class SsoClient:
    """The fsc-sso service API as fsc-connector calls it."""

    def __init__(self, base_url, service_key, timeout=10.0):
        self.base, self.key, self.timeout = base_url.rstrip("/"), service_key, timeout

    def call(self, method, path, body=None, key=None):
        """Returns (status, JSON object or None)."""
        hdrs = {"Authorization": "Bearer %s" % (self.key if key is None else key)}
        return json_body(method, self.base + path, hdrs, body, self.timeout)

    def handoff(self, code):
        """POST /v1/handoff -> (status, {"session", "user", "expires_at"})"""
        return self.call("POST", "/v1/handoff", {"handoff": code})

    def token(self, session):
        """GET /v1/sessions/{id}/token -> (status, {"access_token", "user", "expires_at"})"""
        return self.call("GET", "/v1/sessions/%s/token" % urllib.parse.quote(session, safe=""))

    def logout(self, session):
        """DELETE /v1/sessions/{id} -> (status, obj)"""
        return self.call("DELETE", "/v1/sessions/%s" % urllib.parse.quote(session, safe=""))


# --------------------------------------------------------------------------
# The usual topology

class Stack:
    """Redis master (+ replica + 3 sentinels if sentinel=True), ids-sim,
    fsc-sso A and B sharing secrets, HAProxy in front (public_url).

        with Stack() as st:
            code = st.login()                       # through HAProxy
            status, s = st.client().handoff(code)

    Attributes: tmp, redis, replica, sentinels, ids, secrets, a, b, lb,
    public_url, return_to, service_key. sso_extra: extra INI for both.
    token_shape, keys_status: see IdsSim. lb_login_rate: HAProxy's sign-in
    starts per client address and minute (Haproxy.production_login_rate()
    for the shipped value).
    """

    CLIENT_ID = "fsc-connector"
    RETURN_TO = "https://connector.test/softphone/"
    MASTER_NAME = "fsc"

    def __init__(self, sentinel=False, haproxy=True, user="agent1@example.com",
                 access_ttl=None, refresh_ttl=None, sso_extra=None, jwt=False, tmp=None,
                 token_shape=None, keys_status=None, lb_login_rate=100000):
        self.tmp = tmp or session_tmp()
        self.return_to = self.RETURN_TO
        self.redis = Redis(name="redis-master", tmp=self.tmp)
        self.replica = self.sentinels = None
        if sentinel:
            self.replica = Redis(replica_of=self.redis, name="redis-replica", tmp=self.tmp)
            self.sentinels = Sentinels(self.MASTER_NAME, self.redis.port, tmp=self.tmp)
            self.replica.wait_synced()
            self.sentinels.wait_ready(replicas=1)
        lb_port = free_port()
        self.public_url = "http://%s:%d" % (HOST, lb_port) if haproxy else None
        self.secrets = SsoSecrets(tmp=self.tmp)
        self.service_key = self.secrets.service_key
        a_port = free_port()
        redirect = (self.public_url or "http://%s:%d" % (HOST, a_port)) + "/sso/callback"
        self.ids = IdsSim(self.CLIENT_ID, self.secrets.client_secret, [redirect], user=user,
                          access_ttl=access_ttl, refresh_ttl=refresh_ttl, tmp=self.tmp,
                          token_shape=token_shape, keys_status=keys_status)
        public = self.public_url or "http://%s:%d" % (HOST, a_port)
        kw = dict(ids=self.ids, public_url=public, allowed_return_to=[self.return_to],
                  secrets=self.secrets, extra=sso_extra, jwt=jwt, tmp=self.tmp)
        store = self.sentinels or self.redis
        self.a = SsoInstance("a", store, port=a_port, **kw)
        self.b = SsoInstance("b", store, **kw)
        self.a.wait_ready()
        self.b.wait_ready()
        self.lb = None
        if haproxy:
            self.lb = Haproxy([self.a.url, self.b.url], port=lb_port, tmp=self.tmp,
                              login_rate=lb_login_rate)
            self.lb.wait_up("a")
            self.lb.wait_up("b")

    @property
    def url(self):
        """Where clients go: HAProxy, or instance A without it."""
        return self.lb.url if self.lb else self.a.url

    def client(self, base_url=None):
        return SsoClient(base_url or self.url, self.service_key)

    def login(self, via=None, callback_via=None, **kw):
        """A sign-in through `via` (default: the LB); returns the handoff code."""
        return login_flow(via or self.url, self.return_to, callback_url=callback_via, **kw)

    def session(self, via=None):
        """Sign in and redeem the handoff; returns the /v1/handoff JSON."""
        status, obj = self.client(via).handoff(self.login(via))
        if status != 200:
            raise LoginError("POST /v1/handoff -> %d %r" % (status, obj))
        return obj

    def stop(self):
        for c in (self.lb, self.a, self.b, self.ids, self.sentinels, self.replica, self.redis):
            if c is not None:
                c.stop()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None:
            mark_failed()
        self.stop()


# --------------------------------------------------------------------------
# Throwaway test PKI (openssl CLI)

def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class TestPki:
    """A throwaway certificate authority, a server certificate it issued, and a
    second, unrelated CA (an impostor, or a wrong ca_file), under tmp/pki/<name>:

        pki = TestPki(domain="finesse.test")
        pki.ca_file         the CA to trust (PEM)
        pki.server          (certificate, key) for DNS:<domain>, DNS:localhost and
                            IP:127.0.0.1, so both the XMPP domain check and a
                            https://127.0.0.1 check pass
        pki.other_ca_file   a CA that issued nothing the servers present

    RSA 2048, valid 2 days; keys are 0600."""

    __test__ = False   # not a pytest test class, despite the name

    def __init__(self, domain="finesse.test", tmp=None, name="pki"):
        self.tmp = tmp or session_tmp()
        self.domain = domain
        self.dir = self.tmp.sub(name)
        ca_key, self.ca_file = self._ca("test-ca")
        _, self.other_ca_file = self._ca("impostor-ca")
        self.server = self._server_cert(ca_key, self.ca_file, domain)

    def _ca(self, cn):
        key, crt = (os.path.join(self.dir, cn + ext) for ext in (".key", ".crt"))
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                 "-subj", "/CN=%s (fsc tests)" % cn, "-keyout", key, "-out", crt)
        os.chmod(key, 0o600)
        return key, crt

    def _server_cert(self, ca_key, ca_crt, domain):
        key, csr, crt = (os.path.join(self.dir, "server" + ext) for ext in (".key", ".csr", ".crt"))
        ext = os.path.join(self.dir, "server.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:%s,DNS:localhost,IP:%s\nextendedKeyUsage=serverAuth\n"
                    % (domain, HOST))
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", "/CN=%s" % domain,
                 "-keyout", key, "-out", csr)
        _openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
                 "-days", "2", "-sha256", "-extfile", ext, "-out", crt)
        os.chmod(key, 0o600)
        return crt, key

    def client_context(self, ca_file=None):
        """An ssl.SSLContext that trusts only ca_file (default: this CA) and
        checks host names."""
        import ssl
        return ssl.create_default_context(cafile=ca_file or self.ca_file)


# --------------------------------------------------------------------------
# Finesse: prosody per node + tests/sim/finesse-sim/finesse_sim.py

FINESSE_SIM_DIR = os.path.join(SOURCE_DIR, "tests", "sim", "finesse-sim")
FINESSE_SIM = os.path.join(FINESSE_SIM_DIR, "finesse_sim.py")


def _open_for_prosody(path):
    """Let the prosody user traverse every parent dir of path (temp dirs are 0700)."""
    p = os.path.abspath(path)
    while p not in ("/", ""):
        try:
            st = os.stat(p)
            if st.st_uid == os.getuid() and not st.st_mode & 0o001:
                os.chmod(p, (st.st_mode & 0o7777) | 0o011)
        except OSError:
            pass
        p = os.path.dirname(p)


class Prosody(_ProcBacked):
    """prosody 0.12 for one Finesse node: the finesse-sim auth module
    (authentication = "fsc_sim", files in auth_dir), mod_fsc_sim (presence
    reports / kill-sessions for the simulator), an external component port for
    pubsub.<domain>; no s2s, no offline storage, no smacks; ping loaded;
    storage in memory. Runs as the `prosody` user through setpriv with a
    raised open-file limit (reference/runtime.md addendum).

    The three ways a client reaches the notification service, each on/off:
      c2s=True          XMPP on TCP (Finesse 5222): plain with PLAIN allowed, or,
                        with tls, STARTTLS required and PLAIN only inside it.
                        c2s=False: nothing listens on c2s_port (the port number
                        is still reserved, so tests can point a client at a
                        closed port, like a stock Finesse's 5222).
      direct_tls=True   XMPP on TCP with TLS from the first byte (Finesse 5223):
                        c2s_direct_tls_ports (the 0.12 name; legacy_ssl_ports is
                        its deprecated alias). Needs tls.
      websocket=True    XMPP over WebSocket (RFC 7395, subprotocol "xmpp"):
                        mod_websocket at ws_path on prosody's plain HTTP port
                        (127.0.0.1:http_port). A request from 127.0.0.1 (a
                        trusted proxy by default) with X-Forwarded-Proto: https
                        counts as secure, which is how finesse_sim.py's wss://
                        proxy tells prosody the client used TLS."""

    def __init__(self, name="prosody", domain="finesse.test", component_secret=None,
                 auth_dir=None, c2s_port=None, component_port=None, nofile=20000,
                 log_level="info", tmp=None, start=True, tls=None, c2s=True,
                 direct_tls=False, direct_tls_port=None, websocket=False, http_port=None,
                 ws_path="/ws", wss=False):
        """tls: (certificate, key) PEM files for the domain: c2s then requires
        STARTTLS (as Finesse's 5222 does) and PLAIN only inside it, and the
        direct TLS port presents it. wss: prosody also serves the WebSocket
        itself over HTTPS (https_port, wss_url), without the simulator's
        proxy in between (benchmarks: the proxy, not the connector, would
        be measured)."""
        if direct_tls and not tls:
            raise ValueError("direct_tls needs tls=(certificate, key)")
        if not ws_path.startswith("/"):
            raise ValueError("ws_path must start with /: %r" % ws_path)
        self.tmp = tmp or session_tmp()
        self.name, self.domain = name, domain
        self.c2s_enabled = bool(c2s)
        self.c2s_port = c2s_port or free_port()
        self.direct_tls_port = (direct_tls_port or free_port()) if direct_tls else None
        self.http_port = (http_port or free_port()) if websocket else None
        if wss and not (tls and websocket):
            raise ValueError("wss needs websocket and tls")
        self.https_port = free_port() if wss else None
        self.ws_path = ws_path
        self.component_port = component_port or free_port()
        self.component_secret = component_secret or secrets.token_urlsafe(18)
        self.dir = self.tmp.sub(name)
        self.auth_dir = auth_dir or self.tmp.sub(name, "auth")
        self.nofile = nofile
        self.cfg = os.path.join(self.dir, "prosody.cfg.lua")
        self.log_path = os.path.join(self.dir, "prosody.log")
        self.tmp.add_log(name, self.log_path)
        lua = lambda s: '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')
        os.makedirs(os.path.join(self.dir, "certs"), exist_ok=True)
        # prosody runs as user prosody: its plugins are copied next to its
        # config, since the checkout may not be readable by others (a clone
        # in a mktemp -d directory is 0700)
        plugins = os.path.join(self.dir, "plugins")
        os.makedirs(plugins, exist_ok=True)
        for mod in ("mod_fsc_sim.lua", "mod_auth_fsc_sim.lua"):
            shutil.copyfile(os.path.join(FINESSE_SIM_DIR, mod), os.path.join(plugins, mod))
        modules = ["roster", "saslauth", "disco", "ping", "posix", "admin_shell", "fsc_sim"]
        extra = []
        if tls:
            crt, key = (os.path.join(self.dir, "certs", domain + ext) for ext in (".crt", ".key"))
            shutil.copyfile(tls[0], crt)
            shutil.copyfile(tls[1], key)
            modules.append("tls")
            extra += ["c2s_require_encryption = true", "allow_unencrypted_plain_auth = false",
                      "ssl = { certificate = %s; key = %s }" % (lua(crt), lua(key))]
        else:
            extra += ["c2s_require_encryption = false", "allow_unencrypted_plain_auth = true"]
        if direct_tls:
            extra += ["c2s_direct_tls_ports = { %d }" % self.direct_tls_port,
                      'c2s_direct_tls_interfaces = { "127.0.0.1" }']
        if websocket:
            # mod_http serves mod_websocket; no https port (the simulator's REST
            # listener is the TLS end), requests for any Host go to the domain.
            modules.append("websocket")
            extra += ["http_ports = { %d }" % self.http_port, 'http_interfaces = { "127.0.0.1" }',
                      "https_ports = { %s }" % (self.https_port or ""),
                      'https_interfaces = { "127.0.0.1" }',
                      "http_paths = { websocket = %s }" % lua(ws_path),
                      "http_default_host = %s" % lua(domain)]
            if wss:
                extra.append("https_ssl = { certificate = %s; key = %s }" % (lua(crt), lua(key)))
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write("""-- generated by tests/lib/stack.py
pidfile = %(pid)s
data_path = %(data)s
plugin_paths = { %(plugins)s }
admins = { }
modules_enabled = { %(modules)s }
modules_disabled = { "s2s"; "offline"; "smacks" }
interfaces = { "127.0.0.1" }
c2s_ports = { %(c2s)s }
c2s_interfaces = { "127.0.0.1" }
component_ports = { %(comp)d }
component_interfaces = { "127.0.0.1" }
s2s_ports = { }
s2s_require_encryption = false
authentication = "fsc_sim"
fsc_sim_auth_dir = %(auth)s
fsc_sim_component = %(pubsub)s
storage = "memory"
log = { %(level)s = %(log)s; error = "*stderr" }
%(extra)s
VirtualHost %(domain)s
Component %(pubsub)s
    component_secret = %(secret)s
    component_conflict_resolve = "kick_old"
""" % {"pid": lua(os.path.join(self.dir, "prosody.pid")), "data": lua(os.path.join(self.dir, "data")),
       "plugins": lua(plugins), "modules": "; ".join(lua(m) for m in modules),
       "c2s": self.c2s_port if c2s else "", "comp": self.component_port,
       "auth": lua(self.auth_dir), "pubsub": lua("pubsub." + domain), "level": log_level,
       "log": lua(self.log_path), "domain": lua(domain), "secret": lua(self.component_secret),
       "extra": "\n".join(extra)})
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.proc = Proc(name, ["sh", "-c", 'ulimit -n %d 2>/dev/null || ulimit -n 4096; exec setpriv '
                                '--reuid=prosody --regid=prosody --init-groups --pdeathsig SIGKILL prosody --config "$0" -F'
                                % nofile, self.cfg],
                         os.path.join(self.dir, "stdout.log"), tmp=self.tmp)
        if start:
            self.start()

    @property
    def c2s(self):
        """(host, port) where XMPP clients connect (STARTTLS or plain); nothing
        listens there with c2s=False."""
        return (HOST, self.c2s_port)

    @property
    def direct_tls(self):
        """(host, port) of XMPP with direct TLS, or None."""
        return (HOST, self.direct_tls_port) if self.direct_tls_port else None

    @property
    def ws_url(self):
        """ws://127.0.0.1:<http_port><ws_path> (prosody's own WebSocket endpoint), or None."""
        return "ws://%s:%d%s" % (HOST, self.http_port, self.ws_path) if self.http_port else None

    @property
    def ws_upstream(self):
        """host:port of prosody's HTTP listener (finesse_sim.py --ws-upstream-*), or None."""
        return "%s:%d" % (HOST, self.http_port) if self.http_port else None

    @property
    def wss_url(self):
        """wss://127.0.0.1:<https_port><ws_path>: prosody's own WebSocket over TLS
        (wss=True), or None."""
        return "wss://%s:%d%s" % (HOST, self.https_port, self.ws_path) if self.https_port else None

    def _chown(self):
        subprocess.run(["chown", "-R", "prosody:prosody", self.dir], check=True)
        os.chmod(self.auth_dir, 0o755)
        _open_for_prosody(self.dir)
        _open_for_prosody(self.auth_dir)

    def start(self, timeout=10.0):
        self._chown()
        self.proc.start()
        for port in (self.c2s_port if self.c2s_enabled else None, self.direct_tls_port,
                     self.http_port, self.component_port):
            if port:
                wait_port(port, timeout, proc=self.proc)
        return self

    def shell(self, command, timeout=10.0):
        """One admin-shell command (e.g. '> return 1'); returns its output."""
        r = subprocess.run(["setpriv", "--reuid=prosody", "--regid=prosody", "--init-groups",
                            "prosodyctl", "--config", self.cfg, "shell"], input=command.encode() + b"\n",
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return r.stdout.decode("utf-8", "replace")

    def kill_sessions(self, user=None):
        """Close every c2s session (or one user's) from the server side."""
        cond = ' and s.username == "%s"' % user if user else ""
        return self.shell('> local n=0 for _,s in pairs(prosody.full_sessions) do if s.host == "%s"%s '
                          'then s:close() n=n+1 end end return n' % (self.domain, cond))

    def restart(self, timeout=10.0):
        """Stop (waits for the old pid to exit), start on the same ports."""
        self.proc.stop()
        return self.start(timeout)

    def log_text(self):
        return _tail(self.log_path, 100000)


FINESSE_TRANSPORTS = ("starttls", "tls", "websocket")


class FinesseSim:
    """Finesse nodes A and B (finesse_sim.py) with a prosody per node.

        fin = FinesseSim(agents=10, ids=ids_sim, presence_grace_s=3)
        fin.url_a, fin.url_b       REST base URLs (http(s)://127.0.0.1:N; /finesse/api/...)
        fin.control                control API base URL (/sim/...)
        fin.xmpp_a, fin.xmpp_b     (host, port) of each node's XMPP c2s (5222-like:
                                   plain or STARTTLS); closed without "starttls"
        fin.xmpp_tls_a, _b         (host, port) of XMPP with direct TLS (5223-like), or None
        fin.ws_url_a, _b           ws(s)://127.0.0.1:<REST port>/ws (8445/ws-like), or None
        fin.domain                 XMPP domain (agents are <id>@domain)
        fin.call("1001", ani=..., callvariables={...}, ecc={...}) -> dialog id
        fin.websocket_mode("404"), fin.websocket_drop("1001"),
        fin.websocket_inject("1001", "malformed")

    Agents 1001..(1000+agents): password pw<id>, extension <id>, loginName
    agent<id>@example.com. ids: an IdsSim (Bearer tokens checked with it,
    any shape). nodes=1 starts prosody for A only.

    transports: which of "starttls" (c2s), "tls" (direct TLS, needs xmpp_tls)
    and "websocket" (each node's REST port proxies /ws to its prosody) are
    open. The default, ("starttls", "websocket"), keeps c2s as it always was;
    a stock Finesse 12.5+ is ("tls", "websocket") with both TLS pairs given."""

    def __init__(self, agents=10, ids=None, presence_grace_s=3, nodes=2, domain="finesse.test",
                 wrap_up=None, remote_answer_ms=None, auth_mode=None, extra_args=(),
                 verbose=False, tmp=None, start=True, xmpp_tls=None,
                 transports=("starttls", "websocket"), rest_tls=None, ws_path="/ws",
                 prosody_wss=False):
        """xmpp_tls: (certificate, key) for both prosodies: STARTTLS required on
        c2s, and the direct TLS port's certificate. rest_tls: (certificate, key)
        for the REST ports (https://, and wss:// for /ws). prosody_wss: each
        prosody also serves wss:// itself (Prosody(wss=True)); benchmarks
        point the connector there, past the simulator's Python proxy."""
        transports = tuple(transports)
        bad = [t for t in transports if t not in FINESSE_TRANSPORTS]
        if bad:
            raise ValueError("unknown transport(s) %r; choose from %r" % (bad, FINESSE_TRANSPORTS))
        if "tls" in transports and not xmpp_tls:
            raise ValueError('transport "tls" needs xmpp_tls=(certificate, key)')
        self.tmp = tmp or session_tmp()
        self.domain = domain
        self.xmpp_tls = xmpp_tls
        self.transports = transports
        self.rest_tls = rest_tls
        self.ws_path = ws_path
        self.dir = self.tmp.sub("finesse-sim")
        self.data_dir = self.tmp.sub("finesse-sim", "data")
        self.auth_dir = self.tmp.sub("finesse-sim", "data", "auth")
        self.secret = secrets.token_urlsafe(18)
        self.secret_file = self.tmp.write("finesse-sim/component-secret", self.secret + "\n", 0o600)
        level = "debug" if verbose else "info"

        def prosody(name):
            return Prosody(name, domain, self.secret, self.auth_dir, log_level=level, tmp=self.tmp,
                           start=False, tls=xmpp_tls, c2s="starttls" in transports,
                           direct_tls="tls" in transports, websocket="websocket" in transports,
                           ws_path=ws_path, wss=prosody_wss)
        self.prosody_a = prosody("prosody-a")
        self.prosody_b = prosody("prosody-b") if nodes >= 2 else None
        self.port_file = os.path.join(self.dir, "ports.json")
        argv = [PYTHON, FINESSE_SIM, "--port-file", self.port_file, "--xmpp-domain", domain,
                "--component-secret-file", self.secret_file, "--data-dir", self.data_dir,
                "--agents", str(agents), "--presence-grace-s", str(presence_grace_s),
                "--prosody-a", "%s:%d" % (HOST, self.prosody_a.component_port),
                "--xmpp-port-a", str(self.prosody_a.c2s_port)]
        if self.prosody_b:
            argv += ["--prosody-b", "%s:%d" % (HOST, self.prosody_b.component_port),
                     "--xmpp-port-b", str(self.prosody_b.c2s_port)]
        if "websocket" in transports:
            argv += ["--ws-path", ws_path, "--ws-upstream-a", self.prosody_a.ws_upstream]
            if self.prosody_b:
                argv += ["--ws-upstream-b", self.prosody_b.ws_upstream]
        if rest_tls:
            argv += ["--tls-cert", rest_tls[0], "--tls-key", rest_tls[1]]
        if ids is not None:
            # Bearer tokens are checked with ids-sim, as Finesse asks IdS:
            # any token shape, through key rotations
            argv += ["--ids-url", ids.url]
        if wrap_up:
            argv += ["--wrap-up", wrap_up]
        if remote_answer_ms is not None:
            argv += ["--remote-answer-ms", str(remote_answer_ms)]
        if auth_mode:
            argv += ["--auth-mode", auth_mode]
        if verbose:
            argv.append("--verbose")
        self.argv = argv + list(extra_args)
        self.ports = None
        self.proc = None
        if start:
            self.start()

    def start(self, timeout=15.0):
        for p in (self.prosody_a, self.prosody_b):
            if p is not None and not p.proc.alive():
                p.start(timeout)
        # the sim writes auth files the prosody user must read
        _open_for_prosody(self.auth_dir)
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.proc = Proc("finesse-sim", self.argv, os.path.join(self.dir, "finesse-sim.log"),
                         tmp=self.tmp if self.ports is None else None)
        self.proc.start()

        def ports():
            _check_alive(self.proc)
            try:
                with open(self.port_file) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None
        self.ports = wait_until(ports, timeout, what="finesse-sim port file")
        self.wait_xmpp(timeout)
        return self

    def wait_xmpp(self, timeout=15.0):
        """Wait until the simulator's component links to the running prosodies are up."""
        want = [n for n, p in (("A", self.prosody_a), ("B", self.prosody_b))
                if p is not None and p.proc.alive()]

        def up():
            _check_alive(self.proc)
            st = self.stats()["nodes"]
            return all(st[n]["xmpp_connected"] for n in want)
        wait_until(up, timeout, what="finesse-sim component links %s" % want)

    _scheme = property(lambda self: "https" if self.rest_tls else "http")
    url_a = property(lambda self: "%s://%s:%d" % (self._scheme, HOST, self.ports["a"]))
    url_b = property(lambda self: "%s://%s:%d" % (self._scheme, HOST, self.ports["b"]))
    control = property(lambda self: "http://%s:%d" % (HOST, self.ports["control"]))
    xmpp_a = property(lambda self: self.prosody_a.c2s)
    xmpp_b = property(lambda self: self.prosody_b.c2s if self.prosody_b else None)
    xmpp_tls_a = property(lambda self: self.prosody_a.direct_tls)
    xmpp_tls_b = property(lambda self: self.prosody_b.direct_tls if self.prosody_b else None)

    def _ws_url(self, port_key, prosody):
        if "websocket" not in self.transports or prosody is None:
            return None
        return "%s://%s:%d%s" % ("wss" if self.rest_tls else "ws", HOST, self.ports[port_key], self.ws_path)
    ws_url_a = property(lambda self: self._ws_url("a", self.prosody_a))
    ws_url_b = property(lambda self: self._ws_url("b", self.prosody_b))

    def _control(self, method, path, body=None, ok=(200,)):
        status, _, data = http(method, self.control + path, body=body)
        obj = json.loads(data) if data else None
        if status not in ok:
            raise RuntimeError("finesse-sim %s %s -> %d %r" % (method, path, status, obj))
        return obj

    def call(self, agent, ani="+14155550100", dnis="8000", queue="Sales", callvariables=None,
             ecc=None, call_type=None):
        """POST /sim/calls (inbound ACD call ringing at a READY agent) -> dialog id."""
        body = {"agent": str(agent), "ani": ani, "dnis": dnis, "queue": queue,
                "callvariables": callvariables or {}, "ecc": ecc or {}}
        if call_type:
            body["call_type"] = call_type
        return self._control("POST", "/sim/calls", body)["dialog_id"]

    def hangup(self, dialog_id):
        """POST /sim/calls/{id}/hangup (the remote party hangs up)."""
        return self._control("POST", "/sim/calls/%s/hangup" % dialog_id)

    def dialog(self, dialog_id):
        """GET /sim/calls/{id} -> the dialog as JSON."""
        return self._control("GET", "/sim/calls/%s" % dialog_id)

    def action(self, dialog_id, agent, action, **kw):
        """POST /sim/calls/{id}/action: act for an agent without auth (to=, digits=,
        wrap_up_reason=, callvariables=)."""
        body = dict(kw, agent=str(agent), action=action)
        return self._control("POST", "/sim/calls/%s/action" % dialog_id, body)

    def node(self, status, node="A", xmpp=None):
        """POST /sim/node; xmpp="drop" also closes that node's client sessions."""
        body = {"node": node, "status": status}
        if xmpp:
            body["xmpp"] = xmpp
        return self._control("POST", "/sim/node", body)

    def agent(self, agent_id):
        """GET /sim/agents/{id} -> the agent as Finesse sees it (JSON)."""
        return self._control("GET", "/sim/agents/%s" % agent_id)

    def add_agent(self, agent_id, password, extension=None, login_name=None, first_name=None,
                  last_name=None, **kw):
        body = dict(kw, id=str(agent_id), password=password, extension=extension or str(agent_id),
                    login_name=login_name or str(agent_id), first_name=first_name or "",
                    last_name=last_name or "")
        return self._control("POST", "/sim/agents", body)

    def set_state(self, agent_id, state, reason_code_id=None, extension=None):
        """POST /sim/agents/{id}/state: the REST state change, without auth."""
        body = {"state": state}
        if reason_code_id:
            body["reason_code_id"] = str(reason_code_id)
        if extension:
            body["extension"] = str(extension)
        return self._control("POST", "/sim/agents/%s/state" % agent_id, body)

    def settings(self, agent_id, **kw):
        """POST /sim/agents/{id}/settings (wrap_up_on_incoming=, password=,
        drop_notifications=)."""
        return self._control("POST", "/sim/agents/%s/settings" % agent_id, kw)

    def fault(self, **kw):
        """POST /sim/faults, e.g. fault(agent="1001", notification="<Update><bad")."""
        return self._control("POST", "/sim/faults", kw)

    def rest_delay(self, ms, for_s=60):
        """POST /sim/rest_delay: every REST request waits ms for for_s seconds."""
        return self._control("POST", "/sim/rest_delay", {"ms": ms, "for_s": for_s})

    def stats(self):
        return self._control("GET", "/sim/stats")

    def websocket_mode(self, mode, node=None):
        """POST /sim/websocket: how new /ws upgrades are answered on node A, B or
        both (None): "ok" (proxied), "404", or "no_subprotocol" (101 without
        Sec-WebSocket-Protocol: xmpp)."""
        return self._control("POST", "/sim/websocket", {"node": node, "mode": mode})

    def websocket_drop(self, agent=None, node=None):
        """POST /sim/websocket/drop: close the agent's (or every) proxied
        connection abruptly; returns how many were closed."""
        return self._control("POST", "/sim/websocket/drop", {"node": node, "agent": agent})["dropped"]

    def websocket_inject(self, agent, kind, nbytes=None, text=None, fragments=None, node=None):
        """POST /sim/websocket/inject: one frame (or fragmented message) to the
        agent's proxied connection(s), between two of prosody's frames. kind:
        "malformed", "oversized" (nbytes, default 4 MiB; fragments), "binary"
        (nbytes), "text" (text). Returns how many connections got it."""
        body = {"node": node, "agent": agent, "kind": kind}
        for k, v in (("bytes", nbytes), ("text", text), ("fragments", fragments)):
            if v is not None:
                body[k] = v
        return self._control("POST", "/sim/websocket/inject", body)["injected"]

    def websocket_stats(self, node="A"):
        """The node's websocket counters from /sim/stats (accepted, refused,
        live, live_agents, mode, injected, dropped, ...), or None."""
        return self.stats()["nodes"][node]["websocket"]

    def kill(self, sig=signal.SIGKILL):
        """Kill the simulator process (prosodies keep running)."""
        self.proc.kill(sig)

    def stop(self):
        for c in (self.proc, self.prosody_a, self.prosody_b):
            if c is not None:
                c.stop()

    def log_text(self):
        return self.proc.log_text()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None:
            mark_failed()
        self.stop()


# --------------------------------------------------------------------------
# fsc-connector

FSC_CONNECTOR = os.path.join(BUILD_DIR, "connector", "fsc-connector")


def outbox_key_file(tmp=None):
    """[salesforce] outbox_key_file: 32 random bytes (0600), one per temp
    dir, so that every connector a test starts shares it (as every host of
    a site must)."""
    tmp = tmp or session_tmp()
    path = tmp.file("secrets", "outbox.key")
    if not os.path.exists(path):
        tmp.write("secrets/outbox.key", secrets.token_bytes(32), 0o600)
    return path


class Connector(_ProcBacked):
    """fsc-connector in front of a FinesseSim (nodes A and B), optionally
    with fsc-sso (sso=an SsoInstance or Stack, for the [sso] section).

        conn = Connector(fin)
        status, body = conn.login("1001", "pw1001", "1001")
        conn.api("POST", "/api/v1/state", token, {"state": "READY"})"""

    def __init__(self, fin, sso_url=None, service_key_file=None, extra=None, port=None,
                 log_level="debug", tmp=None, start=True, name="connector",
                 transport="starttls", ca_file=None):
        """transport: [finesse] xmpp_transport: "starttls" (c2s, the
        default here, TLS required only when fin has xmpp_tls), "tls" (each
        node's direct TLS port) or "websocket" (the URL derived from each
        node's REST URL, i.e. the sim's /ws). ca_file: [finesse] ca_file."""
        self.tmp = tmp or session_tmp()
        self.fin = fin
        self.port = port or free_port()
        self.name = name
        self.dir = self.tmp.sub(name)
        nodes = [fin.url_a] + ([fin.url_b] if fin.prosody_b else [])
        finesse = {"nodes": ", ".join(nodes), "xmpp_transport": transport,
                   "ping_interval_s": "2", "rest_timeout_ms": "3000",
                   "failover_check_ms": "500"}
        if transport in ("starttls", "tls"):
            ends = [fin.xmpp_a, fin.xmpp_b] if transport == "starttls" else \
                [fin.xmpp_tls_a, fin.xmpp_tls_b]
            finesse["xmpp_addresses"] = ", ".join("%s:%d" % e for e in ends[:len(nodes)])
        if transport == "starttls":
            finesse["xmpp_tls"] = "true" if getattr(fin, "xmpp_tls", None) else "false"
        if ca_file:
            finesse["ca_file"] = ca_file
        self.sections = {
            "server": {"listen": "%s:%d" % (HOST, self.port), "log_level": log_level,
                       "threads": "2"},
            "finesse": finesse,
        }
        if sso_url:
            self.sections["sso"] = {"url": sso_url, "service_key_file": service_key_file}
        for sec, kv in (extra or {}).items():
            for k, v in kv.items():
                if v is None:
                    self.sections.get(sec, {}).pop(k, None)
                else:
                    self.sections.setdefault(sec, {})[k] = v
        sf = self.sections.get("salesforce")
        if sf is not None and "outbox_key_file" not in sf:
            # one key per test run: every connector of a site shares it
            sf["outbox_key_file"] = outbox_key_file(self.tmp)
        self.cfg = os.path.join(self.dir, "fsc-connector.ini")
        self.write_config()
        self.proc = Proc("fsc-" + name, [FSC_CONNECTOR, "--config", self.cfg],
                         os.path.join(self.dir, "fsc-connector.log"), tmp=self.tmp)
        if start:
            self.start()

    def write_config(self):
        lines = []
        for sec, kv in self.sections.items():
            lines.append("[%s]" % sec)
            lines += ["%s = %s" % (k, v) for k, v in kv.items()]
            lines.append("")
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines))

    url = property(lambda self: "http://%s:%d" % (HOST, self.port))

    def start(self, timeout=15.0):
        self.proc.start()
        wait_http(self.url + "/healthz", timeout, expect_status=200, proc=self.proc)
        return self

    def api(self, method, path, token=None, body=None, timeout=10.0, headers=None, via=None,
            source=None):
        """-> (status, JSON or None). via: a base URL in front of the
        connector (an HttpProxy's); source: the local address to send from."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer %s" % token
        return json_body(method, (via or self.url) + path, h, body, timeout, source=source)

    def login(self, agent, password, extension, via=None, source=None, headers=None, **kw):
        """POST /api/v1/login -> (status, JSON)"""
        return self.api("POST", "/api/v1/login", body=dict(agent=agent, password=password,
                                                          extension=extension, **kw),
                        via=via, source=source, headers=headers)

    def metric(self, name):
        """One sample of GET /metrics, e.g. metric("fsc_connector_agents")
        (0.0 when absent)."""
        _, _, text = http("GET", self.url + "/metrics")
        for line in text.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.split()[-1])
        return 0.0

    def ticket(self, token, via=None):
        """POST /api/v1/events/ticket -> (status, JSON): a single-use
        ticket that opens one event stream."""
        return self.api("POST", "/api/v1/events/ticket", token, via=via)

    def events(self, token, last_event_id=None, via=None):
        """An SseClient on /api/v1/events?ticket=..., with a fresh ticket
        for token (as the page does: the token itself never goes in a
        URL). When the ticket is refused, an SseClient that never opened,
        with .status the ticket request's status and .body its JSON."""
        status, body = self.ticket(token, via)
        if status != 200:
            return SseClient.refused(status, body)
        return SseClient((via or self.url) + "/api/v1/events?ticket=" +
                         urllib.parse.quote(body["ticket"]), last_event_id=last_event_id)


class SseClient:
    """Reads a Server-Sent Events stream on a thread; events land in a queue
    as dicts {"id", "event", "data" (parsed JSON)}."""

    @classmethod
    def refused(cls, status, body=None):
        """A stream that was never opened (its ticket was refused)."""
        import queue
        c = cls.__new__(cls)
        c.events = queue.Queue()
        c.status, c.body, c.conn, c.resp = status, body, None, None
        c.closed = threading.Event()
        c.closed.set()
        return c

    def __init__(self, url, last_event_id=None, timeout=30.0):
        import queue
        self.body = None
        self.events = queue.Queue()
        self.status = None
        self.closed = threading.Event()
        parts = urllib.parse.urlsplit(url)
        self.conn = httpclient.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""),
                          headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        ev = {}
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if "data" in ev:
                        try:
                            ev["data"] = json.loads(ev["data"])
                        except ValueError:
                            pass
                        self.events.put(ev)
                    ev = {}
                elif line.startswith(":"):
                    continue
                else:
                    k, _, v = line.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    if k == "data" and "data" in ev:
                        ev["data"] += "\n" + v
                    else:
                        ev[k] = v
        except (OSError, ValueError, AttributeError, httpclient.HTTPException):
            pass  # closed by close() or by the server: the stream is over
        self.closed.set()

    def wait(self, pred, timeout=10.0, what="event"):
        """Next event for which pred(ev) is true (earlier ones are dropped)."""
        import queue
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("timed out waiting for %s" % what)
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                raise AssertionError("timed out waiting for %s" % what)
            if pred(ev):
                return ev

    def close(self):
        if self.conn is None:
            return
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.conn.close()


# --------------------------------------------------------------------------
# sf-sim

SF_SIM = os.path.join(SOURCE_DIR, "tests", "sim", "sf-sim", "sf_sim.py")


class SfSim(_ProcBacked):
    """tests/sim/sf-sim/sf_sim.py: Salesforce REST subset (JWT bearer login,
    Task upsert, SOSL, SOQL) + a Lightning host page with an opencti_min.js
    stand-in that records every sforce.opencti call.

        sf = SfSim()
        sf.api_url / sf.login_url   API origin (token endpoint + REST; instance_url)
        sf.ui_url                   "Lightning" origin (host page, opencti_min.js)
        sf.key_file, sf.cert_file   RSA key (0600, the connector's jwt_key_file) + cert
        sf.consumer_key, sf.integration_user
        sf.host_page_url("http://127.0.0.1:8444/softphone/", tab="t1")
        sf.tasks(); sf.fault(status=503, for_s=30); sf.opencti_calls(tab="t1")

    extra_args go to sf_sim.py (e.g. ["--token-ttl", "5"])."""

    def __init__(self, tmp=None, consumer_key="fsc-test", integration_user="integration@example.com",
                 start=True, token_ttl=None, external_id_field=None, seed=None, ui_host=None,
                 extra_args=(), verbose=False):
        self.tmp = tmp or session_tmp()
        self.consumer_key, self.integration_user = consumer_key, integration_user
        self.dir = self.tmp.sub("sf-sim")
        self.key_file = os.path.join(self.dir, "jwt-key.pem")
        self.cert_file = os.path.join(self.dir, "jwt-cert.pem")
        self._make_key()
        self.port_file = os.path.join(self.dir, "ports.json")
        argv = [PYTHON, SF_SIM, "--port-file", self.port_file, "--consumer-key", consumer_key,
                "--jwt-cert", self.cert_file, "--integration-user", integration_user]
        if token_ttl:
            argv += ["--token-ttl", str(token_ttl)]
        if external_id_field:
            argv += ["--task-external-id-field", external_id_field]
        if seed is not None:
            argv += ["--seed", seed if isinstance(seed, str)
                     else self.tmp.write("sf-sim/seed.json", json.dumps(seed))]
        self.ui_host = ui_host or HOST
        argv += ["--ui-host", self.ui_host]
        if verbose:
            argv.append("--verbose")
        self.argv = argv + list(extra_args)
        self.ports = None
        self.proc = None
        if start:
            self.start()

    def _make_key(self):
        if os.path.exists(self.key_file):
            return
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                        "-days", "2", "-subj", "/CN=fsc-connector JWT bearer (sf-sim)",
                        "-keyout", self.key_file, "-out", self.cert_file],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.chmod(self.key_file, 0o600)

    def start(self, timeout=15.0):
        """Start; a restart reuses the previous ports."""
        if not os.path.exists(SF_SIM):
            raise FileNotFoundError("sf-sim not found at %s" % SF_SIM)
        argv = list(self.argv)
        if self.ports:
            argv += ["--api-port", str(self.ports["api"]), "--ui-port", str(self.ports["ui"])]
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.proc = Proc("sf-sim", argv, os.path.join(self.dir, "sf-sim.log"),
                         tmp=self.tmp if self.ports is None else None)
        self.proc.start()

        def ports():
            _check_alive(self.proc)
            try:
                with open(self.port_file) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None
        self.ports = wait_until(ports, timeout, what="sf-sim port file")
        wait_http(self.api_url + "/sim/stats", timeout, 200, proc=self.proc)
        return self

    api_url = property(lambda self: "http://%s:%d" % (HOST, self.ports["api"]))
    login_url = api_url
    token_url = property(lambda self: self.api_url + "/services/oauth2/token")
    ui_url = property(lambda self: "http://%s:%d" % (self.ui_host, self.ports["ui"]))
    _control_url = property(lambda self: "http://%s:%d" % (HOST, self.ports["api"]))

    def _control(self, method, path, body=None):
        status, _, data = http(method, self._control_url + path, body=body)
        if status not in (200, 204):
            raise RuntimeError("sf-sim %s %s -> %d %r" % (method, path, status, data[:300]))
        return json.loads(data) if data else None

    def tasks(self, external_id=None, history=False):
        """GET /sim/tasks: every Task as stored (+ Id, CreatedDate, LastModifiedDate,
        writes, source; history=True adds each write)."""
        q = {}
        if external_id is not None:
            q["external_id"] = external_id
        if history:
            q["history"] = "1"
        return self._control("GET", "/sim/tasks" + ("?" + urllib.parse.urlencode(q) if q else ""))

    def stats(self):
        return self._control("GET", "/sim/stats")

    def requests(self):
        """GET /sim/requests: [{ts, method, path, status, kind, ms}, ...]"""
        return self._control("GET", "/sim/requests")

    def settings(self, agent_id, **kw):
        """POST /sim/agents/{id}/settings (wrap_up_on_incoming=, password=,
        drop_notifications=)."""
        return self._control("POST", "/sim/agents/%s/settings" % agent_id, kw)

    def fault(self, **kw):
        """POST /sim/faults: fault(status=503, for_s=30), fault(status=403,
        error_code="REQUEST_LIMIT_EXCEEDED", count=2), fault(expire_tokens=True),
        fault(delay_ms=2000, for_s=5, path_contains="/sobjects/Task")."""
        return self._control("POST", "/sim/faults", kw)

    def clear_faults(self):
        return self._control("DELETE", "/sim/faults")

    def duplicate(self, external_id):
        """POST /sim/duplicate: a second Task with that external id (-> 300 on upsert)."""
        return self._control("POST", "/sim/duplicate", {"external_id": external_id})

    def reset(self, tokens=False):
        return self._control("POST", "/sim/reset", {"tokens": tokens})

    def records(self, type=None):
        return self._control("GET", "/sim/records" + ("?type=" + type if type else ""))

    def add_record(self, type, **fields):
        """POST /sim/records -> id, e.g. add_record("Contact", LastName="X", Phone="+1...")."""
        return self._control("POST", "/sim/records", {"type": type, "fields": fields})["id"]

    def user_id(self, agent_id):
        """Id of the User whose Finesse_Agent_Id__c is agent_id."""
        for u in self.records("User"):
            if u.get("Finesse_Agent_Id__c") == str(agent_id):
                return u["Id"]
        return None

    def opencti_calls(self, tab=None, method=None, kind=None):
        """GET /sim/opencti: what the host page(s) recorded, oldest first."""
        q = {k: v for k, v in (("tab", tab), ("method", method), ("kind", kind)) if v}
        return self._control("GET", "/sim/opencti" + ("?" + urllib.parse.urlencode(q) if q else ""))

    def clear_opencti(self):
        return self._control("DELETE", "/sim/opencti")

    def view(self, **kw):
        """POST /sim/view: the record "open" in the org UI, e.g.
        view(recordId="003...", tab="t1") (no tab: every tab); fires onNavigationChange."""
        return self._control("POST", "/sim/view", kw)

    def click(self, number, **kw):
        """POST /sim/click: as if the agent clicked a click-to-dial number
        (recordId=, tab=)."""
        return self._control("POST", "/sim/click", dict(kw, number=number))

    def ui_state(self, tab=None):
        return self._control("GET", "/sim/ui/state" + ("?tab=" + urllib.parse.quote(tab) if tab else ""))

    def host_page_url(self, softphone_url, tab=None, record_id=None, object_type=None):
        """The Lightning host page framing softphone_url (one browser tab each)."""
        q = {"softphone": softphone_url}
        if tab:
            q["tab"] = tab
        path = "/lightning/page/home"
        if record_id:
            path = "/lightning/r/%s/%s/view" % (object_type or "Contact", record_id)
        return self.ui_url + path + "?" + urllib.parse.urlencode(q)

    def mint_token(self, sub=None, iss=None, aud=None, exp_in=180, key_file=None):
        """A JWT bearer token request done the connector's way (openssl for RS256);
        returns (status, JSON)."""
        import base64

        def b64(b):
            return base64.urlsafe_b64encode(b).rstrip(b"=")
        header = b64(json.dumps({"alg": "RS256"}).encode())
        claims = b64(json.dumps({"iss": iss or self.consumer_key, "sub": sub or self.integration_user,
                                 "aud": aud or self.login_url,
                                 "exp": int(time.time()) + exp_in}).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_file or self.key_file],
                             input=header + b"." + claims, stdout=subprocess.PIPE, check=True).stdout
        assertion = (header + b"." + claims + b"." + b64(sig)).decode()
        body = urllib.parse.urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                       "assertion": assertion})
        return json_body("POST", self.token_url,
                         {"Content-Type": "application/x-www-form-urlencoded"}, body)

    def restart(self, timeout=15.0):
        """Same ports; a restart forgets tokens, Tasks and recorded calls."""
        self.proc.stop()
        return self.start(timeout)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None:
            mark_failed()
        self.stop()
