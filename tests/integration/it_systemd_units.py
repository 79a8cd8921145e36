# SPDX-License-Identifier: AGPL-3.0-or-later
"""deploy/systemd/: the units admins install start the daemons the way the
daemons expect: --check-config before the start, the config path each
daemon takes, SIGTERM to stop (drain), SIGHUP to reload fsc-sso, the
connector's XMPP worker children stopped with it, a descriptor limit for
2,000 agents, and no privileges. The command lines are run against the
built binaries (with a valid config in place of /etc/fsc/...): a flag a
daemon does not know fails here. `systemd-analyze verify` runs too when the
machine has it."""
import configparser
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
UNITS = os.path.join(ROOT, "deploy", "systemd")
BINARIES = {"fsc-connector": stack.FSC_CONNECTOR, "fsc-sso": stack.FSC_SSO}


def unit(name):
    p = configparser.ConfigParser(strict=False, interpolation=None)
    p.optionxform = str
    with open(os.path.join(UNITS, name)) as f:
        p.read_string(f.read())
    return p["Service"]


def run_like_systemd(cmdline, config):
    """The unit's command with the built binary and a real config."""
    argv = shlex.split(cmdline)
    exe = BINARIES[os.path.basename(argv[0])]
    argv = [exe] + [config if a.startswith("/etc/fsc/") else a for a in argv[1:]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


def main():
    tmp = stack.TempDir(prefix="fsc-it-units-")
    sec = stack.SsoSecrets(tmp=tmp)
    conn_ini = tmp.write("fsc-connector.ini", "[server]\nlisten = 127.0.0.1:0\n"
                         "[finesse]\nnodes = http://127.0.0.1:1, http://127.0.0.1:2\n")
    sso_ini = tmp.write("fsc-sso-a.ini", (
        "[server]\nlisten = 127.0.0.1:0\npublic_url = https://sso.example.com\n"
        "[redis]\nurl = redis://127.0.0.1:1/0\n"
        "[ids]\nauthorize_url = https://ids.example.com:8553/ids/v1/oauth/authorize\n"
        "token_url = https://ids.example.com:8553/ids/v1/oauth/token\nclient_id = fsc\n"
        "client_secret_file = %s\n[session]\nseal_key_file = %s\n[service]\nkey_file = %s\n"
        "[login]\nallowed_return_to = https://connector.example.com/softphone/\n")
        % (sec.client_secret_file, sec.seal_key_file, sec.service_key_file))

    for name, config in (("fsc-connector.service", conn_ini), ("fsc-sso@.service", sso_ini)):
        s = unit(name)
        daemon = os.path.basename(shlex.split(s["ExecStart"])[0])
        assert "--check-config" in s["ExecStartPre"] and daemon in s["ExecStartPre"], \
            "%s: --check-config before the start" % name
        for key in ("ExecStartPre", "ExecStart"):
            if key == "ExecStart":
                continue  # runs the daemon; the flags are the same minus --check-config
            out = run_like_systemd(s[key], config)
            assert out.returncode == 0, "%s %s: exit %d %s" % (name, key, out.returncode,
                                                              out.stderr.strip())
        start = shlex.split(s["ExecStart"])
        pre = shlex.split(s["ExecStartPre"])
        assert [a for a in pre if a != "--check-config"] == start, \
            "%s: the start uses the config that was checked" % name
        bad = run_like_systemd(s["ExecStartPre"], tmp.write("bad.ini", "[server]\nnope = 1\n"))
        assert bad.returncode != 0, "%s: a bad config stops the start" % name
        assert s["Type"] == "notify" and s.get("NotifyAccess", "main") == "main", \
            "%s: Type=notify (the daemons send READY/STOPPING: it_sd_notify)" % name
        assert int(s["WatchdogSec"].rstrip("s")) >= 10, "%s: a watchdog, not a hair trigger" % name
        assert shlex.split(s["ExecStart"])[0].startswith("/usr/bin/"), \
            "%s: the package's binaries (/usr/bin)" % name
        assert s["KillSignal"] == "SIGTERM" and int(s["TimeoutStopSec"]) >= 10, name
        assert int(s["LimitNOFILE"]) >= 8192, "%s: descriptors for thousands of streams" % name
        assert s["User"] != "root" and s["NoNewPrivileges"] == "yes" and \
            s["ProtectSystem"] == "strict", "%s: unprivileged and read-only system" % name
        print("ok  %s: --check-config %s accepted by the built %s, a bad config refused; "
              "Type=notify, WatchdogSec %s, SIGTERM, LimitNOFILE %s, User %s, hardening"
              % (name, os.path.basename(config), daemon, s["WatchdogSec"], s["LimitNOFILE"],
                 s["User"]))
    conn = unit("fsc-connector.service")
    assert conn["KillMode"] == "control-group", "the XMPP workers stop with the connector"
    assert conn.get("StateDirectory") == "fsc", "a writable place for [salesforce] spool_dir"
    sso = unit("fsc-sso@.service")
    assert "-HUP" in sso["ExecReload"], "systemctl reload fsc-sso@a sends SIGHUP"
    assert "%i" in sso["ExecStart"], "one unit, instances a and b"
    print("ok  connector: KillMode control-group (XMPP workers), StateDirectory for the spool; "
          "fsc-sso: instances %i, reload = SIGHUP")

    tool = shutil.which("systemd-analyze")
    if tool:
        with tempfile.TemporaryDirectory() as d:
            for name in ("fsc-connector.service", "fsc-sso@.service"):
                text = open(os.path.join(UNITS, name)).read()
                text = text.replace("/usr/bin/fsc-connector", stack.FSC_CONNECTOR)
                text = text.replace("/usr/bin/fsc-sso", stack.FSC_SSO)
                target = os.path.join(d, name.replace("@.", "@a."))
                with open(target, "w") as f:
                    f.write(text)
                out = subprocess.run([tool, "verify", "--man=no", target], capture_output=True,
                                     text=True, timeout=60)
                problems = [l for l in (out.stdout + out.stderr).splitlines()
                            if name.split("@")[0] in l and "Unknown" in l or "Invalid" in l]
                assert not problems, "systemd-analyze verify %s: %s" % (name, problems)
        print("ok  systemd-analyze verify: no unknown or invalid settings")
    else:
        print("    (systemd-analyze not on this machine: not verified by systemd itself)")
    print("PASS")


if __name__ == "__main__":
    main()
