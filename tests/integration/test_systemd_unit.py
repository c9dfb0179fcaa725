# SPDX-License-Identifier: ISC
"""examples/systemd/gatehouse.service: `systemd-analyze verify` passes on
it and its sandbox scores as systemd's own offline analysis rates "OK".
verify insists that ExecStart's program exists, and /usr/local/bin/gatehouse
is not installed here: the unit is verified as a copy whose ExecStart names
the binary under test, every other line unchanged."""
import os
import re
import subprocess

from conftest import BIN

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
UNIT = os.path.join(ROOT, "examples", "systemd", "gatehouse.service")
INSTALLED = "/usr/local/bin/gatehouse"


def unit_copy(tmp, text=None):
    """The unit with ExecStart naming BIN, as tmp/gatehouse.service."""
    if text is None:
        with open(UNIT) as f:
            text = f.read()
    assert text.count("ExecStart=%s " % INSTALLED) == 1
    path = os.path.join(tmp, "gatehouse.service")
    with open(path, "w") as f:
        f.write(text.replace("ExecStart=%s " % INSTALLED,
                             "ExecStart=%s " % BIN))
    return path


def analyze(*args):
    r = subprocess.run(["systemd-analyze"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=60,
                       universal_newlines=True)
    return r.returncode, r.stdout


def settings():
    with open(UNIT) as f:
        return [l.strip() for l in f
                if l.strip() and not l.lstrip().startswith("#")]


def test_unit_has_the_sandbox_and_reload():
    s = settings()
    for line in ("DynamicUser=yes", "StateDirectory=gatehouse",
                 "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=", "SystemCallFilter=@system-service",
                 "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM"):
        assert line in s, line
    assert "ExecStart=%s -c /etc/gatehouse/gateway.conf" % INSTALLED in s


def test_systemd_analyze_verify_passes(tmp):
    rc, out = analyze("verify", unit_copy(tmp))
    # verify reports unknown or malformed settings as warnings and still
    # exits 0, so its silence is what counts.
    assert rc == 0 and out == "", out


def test_verify_would_catch_a_broken_unit(tmp):
    """The check above can fail: a misspelled setting and a bad value in
    the same unit are reported."""
    with open(UNIT) as f:
        text = f.read()
    text = text.replace("ProtectSystem=strict", "ProtectSystem=strikt")
    text = text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
    rc, out = analyze("verify", unit_copy(tmp, text))
    assert "Failed to parse protect system value" in out, out
    assert re.search(r"Unknown key 'NoNewPrivilege'", out), out


def test_sandbox_exposure_is_low(tmp):
    """systemd's offline security analysis: exposure 2.0 at most ("OK";
    an unsandboxed service scores 9.6)."""
    path = unit_copy(tmp)
    rc, out = analyze("security", "--offline=true", "--threshold=20", path)
    m = re.search(r"Overall exposure level for gatehouse\.service: "
                  r"(\d+\.\d+)", out)
    assert m, out
    assert rc == 0 and float(m.group(1)) <= 2.0, out
    # The same analysis without the sandbox fails the threshold.
    with open(UNIT) as f:
        bare = "".join(l for l in f if not re.match(
            r"(Protect|Private|Restrict|SystemCall|Capability|NoNewPriv|"
            r"DynamicUser|Lock|Memory|UMask|Device|Keyring|RemoveIPC|"
            r"ProcSubset)", l))
    rc, out = analyze("security", "--offline=true", "--threshold=20",
                      unit_copy(tmp, bare))
    assert rc != 0, out
