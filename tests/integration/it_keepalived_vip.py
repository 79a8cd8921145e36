# SPDX-License-Identifier: AGPL-3.0-or-later
"""ha/keepalived: the floating IP in front of two HAProxy nodes, with the
shipped files, in network namespaces on this host (reference/runtime.md
§5.3): two "load balancer" namespaces and a client on one bridge, each
balancer running real haproxy (with the fe_monitor frontend of
ha/haproxy-sso.cfg that keepalived's check asks) and keepalived with
ha/keepalived/keepalived-lb1.conf / -lb2.conf as shipped (same addresses:
the namespaces are private).

  1. `keepalived -t` accepts both files, and refuses a broken copy;
  2. cold start: the VIP 10.0.0.100 lands on lb1 (priority 150) and the
     client reaches lb1's HAProxy through it;
  3. lb1's HAProxy dies: its check fails (fall 2), lb1 gives the VIP up
     and the client reaches lb2 through the same address;
  4. lb1's HAProxy is back and lb1 is BACKUP again: with nopreempt the VIP
     stays on lb2 (no second move);
  5. keepalived on lb2 stops (an upgrade, a reboot): the VIP moves to lb1.
Needs root (network namespaces), keepalived, haproxy and curl; CI is root."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
KA_DIR = os.path.join(ROOT, "ha", "keepalived")
VIP = "10.0.0.100"
ADDR = {"lb1": "10.0.0.11/24", "lb2": "10.0.0.12/24", "cl": "10.0.0.50/24"}


def sh(*argv, check=True, timeout=30):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d %s" % (" ".join(argv), r.returncode, r.stderr))
    return r


def config_test(path):
    """keepalived -t: (ok, diagnostics). keepalived 2.2.7 ends a valid
    file whose script_user is not root with SIGTERM to itself (exit 143)
    instead of 0; every problem it finds is printed, with exit 1-6."""
    r = subprocess.run(["keepalived", "-t", "-f", path], capture_output=True, text=True,
                       timeout=30, start_new_session=True)
    diag = [l for l in (r.stdout + r.stderr).splitlines() if l.strip() and l != "Terminated"]
    return r.returncode in (0, 143, -15) and not diag, diag


class Lab:
    """Namespaces <tag>-lb1, -lb2, -cl with eth0 each on one bridge."""

    def __init__(self, tmp):
        self.tmp = tmp
        tag = "fka%d" % (os.getpid() % 10000000)
        self.ns = {n: "%s-%s" % (tag, n) for n in ADDR}
        self.bridge = "%sbr" % tag
        self.procs = []
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "link", "set", self.bridge, "up")
        for n, ns in self.ns.items():
            host_end = "%s%s" % (tag, n)
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", host_end, "master", self.bridge, "up")
            sh("ip", "-n", ns, "addr", "add", ADDR[n], "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def run(self, n, name, argv):
        p = stack.Proc(name, ["ip", "netns", "exec", self.ns[n]] + argv,
                       self.tmp.file("%s.log" % name), tmp=self.tmp).start()
        self.procs.append(p)
        return p

    def has_vip(self, n):
        out = sh("ip", "-n", self.ns[n], "-brief", "addr", "show", "eth0").stdout
        return (VIP + "/") in out

    def get(self, url):
        r = sh("ip", "netns", "exec", self.ns["cl"], "curl", "-s", "-m", "1", url, check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def close(self):
        for p in self.procs:
            p.stop()
        for ns in self.ns.values():
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", self.bridge, check=False)


def monitor_frontend():
    """The fe_monitor section of the production HAProxy sample."""
    text = open(os.path.join(ROOT, "ha", "haproxy-sso.cfg")).read()
    m = re.search(r"^frontend fe_monitor\n(?:    .*\n)+", text, re.M)
    assert m and "monitor-uri /healthz" in m.group(0), "ha/haproxy-sso.cfg has fe_monitor"
    return m.group(0)


def haproxy_cfg(tmp, n):
    return tmp.write("haproxy-%s.cfg" % n, (
        "global\n    maxconn 100\n"
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n"
        "    timeout server 5s\n"
        "frontend fe_sso\n    bind :80\n"
        "    http-request return status 200 content-type text/plain string %s\n"
        "%s") % (n, monitor_frontend()))


def main():
    if os.geteuid() != 0:
        print("SKIP: network namespaces need root (CI runs as root)")
        sys.exit(77)
    tmp = stack.TempDir(prefix="fsc-it-ka-")
    for n in ("lb1", "lb2"):
        ok, diag = config_test(os.path.join(KA_DIR, "keepalived-%s.conf" % n))
        assert ok, "keepalived -t keepalived-%s.conf: %s" % (n, diag)
    broken = tmp.write("broken.conf", open(os.path.join(KA_DIR, "keepalived-lb1.conf")).read()
                       .replace("virtual_router_id 51", "virtual_router_id 300"))
    ok, diag = config_test(broken)
    assert not ok and any("300" in l for l in diag), "a broken copy is refused: %s" % diag
    print("ok  keepalived -t: keepalived-lb1.conf and -lb2.conf valid; a broken copy refused "
          "(%s)" % diag[0])

    lab = Lab(tmp)
    try:
        hx = {}
        for n in ("lb1", "lb2"):
            cfg = haproxy_cfg(tmp, n)
            sh("haproxy", "-c", "-f", cfg)
            hx[n] = lab.run(n, "haproxy-%s" % n, ["haproxy", "-f", cfg, "-db"])
        ka = {}
        t0 = time.monotonic()
        for n in ("lb1", "lb2"):
            d = tmp.sub("ka-%s" % n)
            ka[n] = lab.run(n, "keepalived-%s" % n, [
                "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
                "-f", os.path.join(KA_DIR, "keepalived-%s.conf" % n),
                "-p", os.path.join(d, "keepalived.pid"), "-r", os.path.join(d, "vrrp.pid")])

        stack.wait_until(lambda: lab.has_vip("lb1"), timeout=30, what="VIP on lb1")
        cold = time.monotonic() - t0
        stack.wait_until(lambda: lab.get("http://%s/" % VIP) == "lb1", timeout=15,
                         what="client reaches lb1 through the VIP")
        assert not lab.has_vip("lb2"), "one holder"
        print("ok  cold start: %s on lb1 (priority 150) after %.1f s; the client gets lb1's "
              "HAProxy" % (VIP, cold))

        t0 = time.monotonic()
        hx["lb1"].stop()
        stack.wait_until(lambda: lab.get("http://%s/" % VIP) == "lb2", timeout=30,
                         what="client reaches lb2 through the VIP after lb1's HAProxy died")
        moved = time.monotonic() - t0
        assert lab.has_vip("lb2") and not lab.has_vip("lb1")
        print("ok  lb1's HAProxy killed: the VIP moved to lb2, the client reached lb2 after "
              "%.1f s (check interval 1 s, fall 2)" % moved)

        log_lb1 = ka["lb1"].log_path
        backups = open(log_lb1).read().count("Entering BACKUP STATE")
        hx["lb1"] = lab.run("lb1", "haproxy-lb1-again", ["haproxy", "-f", tmp.file(
            "haproxy-lb1.cfg"), "-db"])
        stack.wait_until(lambda: open(log_lb1).read().count("Entering BACKUP STATE") > backups,
                         timeout=30, what="lb1 BACKUP again once its HAProxy is back")
        assert lab.has_vip("lb2") and not lab.has_vip("lb1"), "nopreempt: the VIP stays on lb2"
        assert lab.get("http://%s/" % VIP) == "lb2"
        print("ok  lb1's HAProxy back, lb1 BACKUP: nopreempt keeps the VIP on lb2")

        t0 = time.monotonic()
        ka["lb2"].stop()
        stack.wait_until(lambda: lab.get("http://%s/" % VIP) == "lb1", timeout=30,
                         what="client reaches lb1 after keepalived on lb2 stopped")
        print("ok  keepalived on lb2 stopped: the VIP moved to lb1, the client reached lb1 "
              "after %.1f s" % (time.monotonic() - t0))
    finally:
        lab.close()
    print("PASS")


if __name__ == "__main__":
    main()
