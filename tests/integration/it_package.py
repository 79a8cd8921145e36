# SPDX-License-Identifier: AGPL-3.0-or-later
"""The Debian package (cmake/Package.cmake) as an admin gets it:

  - cpack builds fsc_<version>_<arch>.deb from this build;
  - `dpkg-deb -c` lists the binaries in /usr/bin, the units in
    /lib/systemd/system, the softphone in /usr/share/fsc/web, the sample
    configs, the call-center XML and the ha/ configs under
    /usr/share/doc/fsc/examples, and /etc/fsc as 0750; `dpkg-deb -f`
    shows dependencies computed from the binaries (libsystemd0,
    libmicrohttpd12, ...) plus adduser;
  - `dpkg -x` into a scratch root: the installed binaries run
    --check-config on the installed sample configs and refuse them naming
    the missing key files (fscctl check-config agrees); the installed
    units pass `systemd-analyze verify` with the installed binaries; the
    installed fsc-connector, with no web_dir set, serves the softphone
    from the package's /usr/share/fsc/web (a marker added there shows up);
  - the maintainer scripts, run with stand-ins for getent, addgroup,
    adduser, dpkg-statoverride and systemctl: a first configure creates
    the system group and user fsc and makes /etc/fsc 0750 root:fsc; a
    second one changes nothing; removal stops the units; purge drops the
    override."""
import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402


def sh(*argv, check=True, env=None, timeout=300):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d\n%s\n%s" % (" ".join(argv), r.returncode,
                                                       r.stdout[-3000:], r.stderr[-3000:]))
    return r


def build_package(tmp):
    out = tmp.sub("package")
    sh("cpack", "-G", "DEB", "-B", out, "--config",
       os.path.join(stack.BUILD_DIR, "CPackConfig.cmake"))
    debs = glob.glob(os.path.join(out, "fsc_*.deb"))
    assert len(debs) == 1, "one .deb: %s" % os.listdir(out)
    return debs[0]


def check_contents(deb):
    listing = sh("dpkg-deb", "-c", deb).stdout
    entries = {}
    for line in listing.splitlines():
        f = line.split()
        entries[f[-1].rstrip("/")] = (f[0], f[1])
    want = ["./usr/bin/fsc-sso", "./usr/bin/fsc-connector", "./usr/bin/fscctl",
            "./lib/systemd/system/fsc-connector.service",
            "./lib/systemd/system/fsc-sso@.service",
            "./usr/share/fsc/web/index.html", "./usr/share/fsc/web/softphone.js",
            "./usr/share/fsc/web/softphone.css", "./usr/share/fsc/web/sso-done.html",
            "./usr/share/doc/fsc/examples/fsc-connector.ini.sample",
            "./usr/share/doc/fsc/examples/fsc-sso.ini.sample",
            "./usr/share/doc/fsc/examples/fsc-call-center.xml",
            "./usr/share/doc/fsc/examples/ha/haproxy-sso.cfg",
            "./usr/share/doc/fsc/examples/ha/keepalived/keepalived-lb1.conf",
            "./usr/share/doc/fsc/examples/ha/keepalived/keepalived-lb2.conf",
            "./usr/share/doc/fsc/examples/ha/redis/sentinel.conf",
            "./usr/share/doc/fsc/README.md", "./usr/share/doc/fsc/copyright", "./etc/fsc"]
    missing = [w for w in want if w not in entries]
    assert not missing, "missing from the package: %s" % missing
    for b in want[:3]:
        assert entries[b][0] == "-rwxr-xr-x" and entries[b][1] == "root/root", (b, entries[b])
    assert entries["./etc/fsc"][0] == "drwxr-x---", "/etc/fsc 0750: %s" % (entries["./etc/fsc"],)
    stray = [e for e in entries if re.search(r"/(test_|fuzz_|bench|it_)", e)]
    assert not stray, "no test files in the package: %s" % stray
    print("ok  dpkg-deb -c: %d entries; binaries in /usr/bin, units in /lib/systemd/system, "
          "the softphone in /usr/share/fsc/web, examples, /etc/fsc drwxr-x---" % len(entries))

    depends = sh("dpkg-deb", "-f", deb, "Depends").stdout.strip()
    for lib in ("adduser", "libsystemd0", "libmicrohttpd12", "libcurl4", "libhiredis0.14",
                "libwebsockets17", "libssl3", "libinih1", "libjansson4", "libxml2"):
        assert re.search(r"(^|, )%s( |,|$)" % re.escape(lib), depends), \
            "Depends has %s: %s" % (lib, depends)
    print("ok  Depends (dpkg-shlibdeps + adduser): %s" % depends)
    for script in ("postinst", "prerm", "postrm"):
        text = sh("dpkg-deb", "-I", deb, script).stdout
        assert text.startswith("#!/bin/sh"), script
    info = sh("dpkg-deb", "-I", deb).stdout
    assert re.search(r"\*\s+postinst", info), "postinst is executable in the control archive"


def check_installed(tmp, deb):
    root = tmp.sub("root")
    sh("dpkg", "-x", deb, root)
    bin_ = os.path.join(root, "usr", "bin")
    examples = os.path.join(root, "usr", "share", "doc", "fsc", "examples")
    for daemon, sample, keyfile in (
            ("fsc-sso", "fsc-sso.ini.sample", "/etc/fsc/ids-client-secret"),
            ("fsc-connector", "fsc-connector.ini.sample", "/etc/fsc/salesforce-jwt.key")):
        cfg = os.path.join(examples, sample)
        r = sh(os.path.join(bin_, daemon), "--check-config", "--config", cfg, check=False)
        assert r.returncode == 1 and keyfile in r.stderr and "No such file" in r.stderr, \
            "%s --check-config on the installed sample: %d %r" % (daemon, r.returncode, r.stderr)
        c = sh(os.path.join(bin_, "fscctl"), "check-config", cfg, check=False)
        assert (c.returncode, c.stderr) == (r.returncode, r.stderr), "fscctl agrees"
        print("ok  installed %s --check-config on the installed %s: %s"
              % (daemon, sample, r.stderr.strip().replace(root, "")))

    # the installed units, with the installed binaries
    vdir = tmp.sub("units")
    for name in ("fsc-connector.service", "fsc-sso@.service"):
        text = open(os.path.join(root, "lib", "systemd", "system", name)).read()
        assert "ExecStart=/usr/bin/" in text, name
        target = os.path.join(vdir, name.replace("@.", "@a."))
        with open(target, "w") as f:
            f.write(text.replace("/usr/bin/", bin_ + "/"))
    r = sh("systemd-analyze", "verify", "--man=no",
           *[os.path.join(vdir, n) for n in sorted(os.listdir(vdir))], check=False)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), \
        "systemd-analyze verify: %s %s" % (r.stdout, r.stderr)
    print("ok  systemd-analyze verify: the installed units with the installed binaries")

    # the installed connector serves the package's softphone by default
    web = os.path.join(root, "usr", "share", "fsc", "web")
    marker = "/* fsc-it-package %d */" % os.getpid()
    with open(os.path.join(web, "softphone.css"), "a") as f:
        f.write("\n" + marker + "\n")
    port = stack.free_port()
    cfg = tmp.write("connector.ini", "[server]\nlisten = 127.0.0.1:%d\n[finesse]\n"
                    "nodes = http://127.0.0.1:1, http://127.0.0.1:2\n" % port)
    p = stack.Proc("installed-fsc-connector", [os.path.join(bin_, "fsc-connector"), "--config",
                                               cfg], tmp.file("installed-connector.log"),
                   tmp=tmp).start()
    try:
        stack.wait_http("http://127.0.0.1:%d/healthz" % port, timeout=30, proc=p)
        status, _, body = stack.http("GET", "http://127.0.0.1:%d/softphone/softphone.css" % port)
        assert status == 200 and marker in body.decode(), \
            "the installed connector serves %s by default (%d)" % (web, status)
    finally:
        p.stop()
    print("ok  the installed fsc-connector (no web_dir) serves the softphone from the "
          "package's /usr/share/fsc/web")
    return root


STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
case "$(basename "$0")" in
getent) grep -qx "$1 $2" "$STUB_STATE" 2>/dev/null ;;
addgroup) for a; do last=$a; done; echo "group $last" >> "$STUB_STATE" ;;
adduser) for a; do last=$a; done; echo "passwd $last" >> "$STUB_STATE" ;;
dpkg-statoverride)
    case "$1" in
    --list) grep -q "^override $2" "$STUB_STATE" 2>/dev/null ;;
    --update) echo "override $6 $3:$4 $5" >> "$STUB_STATE" ;;
    --remove) sed -i "\\|^override $2|d" "$STUB_STATE" ;;
    esac ;;
esac
"""


def check_maintainer_scripts(tmp, deb):
    ctl = tmp.sub("control")
    sh("dpkg-deb", "-e", deb, ctl)
    stubs = tmp.sub("stubs")
    for tool in ("getent", "addgroup", "adduser", "dpkg-statoverride", "systemctl"):
        path = os.path.join(stubs, tool)
        with open(path, "w") as f:
            f.write(STUB)
        os.chmod(path, 0o755)
    log, state = tmp.file("stub.log"), tmp.file("stub.state")
    env = dict(os.environ, PATH=stubs + ":/usr/bin:/bin", STUB_LOG=log, STUB_STATE=state)

    def run(script, *args):
        open(log, "w").close()
        sh("sh", "-e", os.path.join(ctl, script), *args, env=env)
        return open(log).read()

    calls = run("postinst", "configure", "")
    assert "addgroup --system --quiet fsc" in calls, calls
    assert re.search(r"adduser --system --quiet --ingroup fsc --no-create-home "
                     r"--home /var/lib/fsc --shell /usr/sbin/nologin .* fsc\n", calls), calls
    assert "dpkg-statoverride --update --add root fsc 0750 /etc/fsc" in calls, calls
    st = open(state).read()
    assert "group fsc" in st and "passwd fsc" in st and "override /etc/fsc root:fsc 0750" in st
    again = run("postinst", "configure", "0.10.0")
    assert "addgroup" not in again and "adduser" not in again and "--update" not in again, \
        "a second configure (upgrade) creates nothing and keeps the override: %s" % again
    assert "systemctl stop" not in again and "restart" not in again, \
        "an upgrade leaves the running daemons to the admin"
    print("ok  postinst configure: system group and user fsc (no home, nologin), /etc/fsc "
          "0750 root:fsc via dpkg-statoverride; again on upgrade: nothing created, no restart")
    calls = run("prerm", "upgrade", "0.12.0")
    assert "systemctl" not in calls, "prerm upgrade leaves the daemons running"
    if os.path.isdir("/run/systemd/system"):
        calls = run("prerm", "remove")
        assert "systemctl stop fsc-connector.service fsc-sso@*.service" in calls, calls
    calls = run("postrm", "purge")
    assert "dpkg-statoverride --remove /etc/fsc" in calls, calls
    assert "override" not in open(state).read()
    print("ok  prerm upgrade: daemons left alone; postrm purge: the override dropped")


def main():
    for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps", "systemd-analyze"):
        assert shutil.which(tool), "%s is needed (deploy/install-deps.sh)" % tool
    tmp = stack.TempDir(prefix="fsc-it-pkg-")
    deb = build_package(tmp)
    print("ok  cpack: %s" % os.path.basename(deb))
    check_contents(deb)
    check_installed(tmp, deb)
    check_maintainer_scripts(tmp, deb)
    print("PASS")


if __name__ == "__main__":
    main()
