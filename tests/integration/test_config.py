# SPDX-License-Identifier: ISC
"""The configuration file and the command line, through the real binary."""
import os
import re
import subprocess

import pytest

from conftest import BIN, ROOT


def check(tmp, text, env=None, name="t.conf"):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    e = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")
         or k == "GATEHOUSE_BIN"}
    e.update(env or {})
    p = subprocess.run([BIN, "-c", path, "--check"], capture_output=True,
                       text=True, env=e, cwd=tmp, timeout=10)
    return p.returncode, p.stdout + p.stderr, path


GOOD = "upstream = http://127.0.0.1:9\n"


def test_good_file_one_line_summary(tmp):
    rc, out, path = check(tmp, GOOD)
    assert rc == 0
    assert out.strip().splitlines() == [
        "%s: configuration OK (listen 127.0.0.1:8080, %d workers); sign-in "
        "is off: neither authority nor oidc_issuer is set, so only \"allow "
        "anonymous\" routes let anyone in" % (path, os.cpu_count())]


@pytest.mark.parametrize("line,msg", [
    ("bogus = 1", r'unknown key "bogus"'),
    ("workers = lots", r"workers: expected auto or a number"),
    ("workers = 0", r"workers: expected auto or a number"),
    ("max_request_body = 12X", r"max_request_body: expected a size"),
    ("idle_timeout = soon", r"idle_timeout: expected a duration"),
    ("upstream = ftp://x", r"upstream: expected an http:// or https:// URL"),
    ("upstream = http://", r"upstream: URL has no host"),
    ("upstream = http://h:99999", r"upstream: URL has a bad port"),
    ("upstream = http://u:p@h", r"must not contain user information"),
    ("upstream = https://h", r"https upstreams are not supported"),
    ("upstream = unix:relative", r"expected unix:/absolute/path"),
    ("listen = nohost", r"listen: expected host:port"),
    ("listen = 127.0.0.1:0", r"listen: expected host:port with a port"),
    ("listen = example.com:80", r"listen: the host must be an IPv4"),
    ("trusted_proxies = 10.0.0.0/33", r"trusted_proxies: expected IP"),
    ("log_level = loud", r"log_level: expected error, warn, info"),
    ("justakey", r'expected "key = value"'),
    ("auth_prefix = /.auth/", r"auth_prefix must be a path"),
    ("x = ${GATEHOUSE_TEST_UNSET_VAR}", r"\$\{GATEHOUSE_TEST_UNSET_VAR\} is not set"),
])
def test_each_error_names_its_line(tmp, line, msg):
    first = "workers = 2\n" if line.startswith("upstream") else GOOD
    rc, out, path = check(tmp, "# comment\n" + first + line + "\n")
    assert rc != 0
    if "auth_prefix" in line:
        assert re.search(re.escape(path) + r": " + msg, out), out
    else:
        assert re.search(re.escape(path) + r":3: .*" + msg, out), out
    assert "u:p@" not in out  # a password in a URL is never echoed
    assert "configuration has errors" in out


def test_missing_required_key(tmp):
    rc, out, path = check(tmp, "workers = 2\n")
    assert rc != 0
    assert '%s: missing required key "upstream"' % path in out


def test_every_error_reported_at_once(tmp):
    text = ("bogus = 1\n"          # line 1
            "workers = many\n"      # line 2
            "listen = :\n"          # line 3
            "upstream = gopher://x\n"  # line 4
            "idle_timeout = 1\n"    # fine
            "workers = 3\n"         # line 6: already set? no, line 2 failed
            "workers = 4\n")        # line 7: duplicate of line 6
    rc, out, path = check(tmp, text)
    assert rc != 0
    for n in (1, 2, 3, 4, 7):
        assert re.search(r"%s:%d: " % (re.escape(path), n), out), (n, out)
    assert "already set on line 6" in out


def test_env_expansion_and_overrides(tmp):
    rc, out, _ = check(tmp, "upstream = http://${UP_HOST}:9\n",
                       env={"UP_HOST": "127.0.0.2"})
    assert rc == 0, out
    rc, out, _ = check(tmp, GOOD, env={"GATEHOUSE_LISTEN": "127.0.0.1:9999",
                                       "GATEHOUSE_WORKERS": "3"})
    assert rc == 0 and "listen 127.0.0.1:9999, 3 workers" in out, out
    rc, out, _ = check(tmp, GOOD, env={"GATEHOUSE_WORKERS": "nope"})
    assert rc != 0 and "GATEHOUSE_WORKERS (environment): expected auto" in out


def test_comments_and_hash_in_values(tmp):
    rc, out, _ = check(tmp, "# top\n\n  upstream = http://127.0.0.1:9/p#x  "
                       "# trailing comment\n")
    # '#' inside a value is kept (and a fragment in a URL is refused).
    assert rc != 0 and "must not contain a fragment" in out
    rc, out, _ = check(tmp, "upstream = http://127.0.0.1:9/p # comment\n")
    assert rc == 0, out


def test_version_and_help_list_every_key():
    v = subprocess.run([BIN, "--version"], capture_output=True, text=True)
    assert v.returncode == 0 and re.match(r"gatehouse \d+\.\d+\.\d+", v.stdout)
    h = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert h.returncode == 0
    for key in ("listen", "upstream", "workers", "max_request_body",
                "trusted_proxies", "upstream_timeout", "drain_timeout"):
        assert re.search(r"^  %s\s" % key, h.stdout, re.M), key
    bad = subprocess.run([BIN], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage:" in bad.stderr


def help_keys():
    """(key, default or None, required) from --help, which the key tables
    produce."""
    out = subprocess.run([BIN, "--help"], capture_output=True,
                         text=True).stdout
    keys = []
    # The keys follow "Keys:"; the commands before them are not keys.
    lines = out.split("Keys:\n", 1)[1].splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^  (\w+)\s+\S", line)
        if not m:
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        d = re.match(r"^\s+default: ?(.*)$", nxt)
        keys.append((m.group(1), d.group(1) if d else None,
                     "(required)" in nxt))
    return keys


def test_sample_documents_every_key_and_checks_clean():
    sample = os.path.join(ROOT, "gateway.conf.sample")
    text = open(sample).read()
    keys = help_keys()
    assert len(keys) >= 10
    for key, default, required in keys:
        if required:
            assert re.search(r"^%s\s*=" % key, text, re.M), key
        elif default is not None:
            assert re.search(r"^#\s*%s =\s?%s\s*$" % (key, re.escape(default)),
                             text, re.M), "%s = %s not in sample" % (key, default)
    names = {k for k, _, _ in keys}
    for m in re.finditer(r"^#?\s*(\w+) = ", text, re.M):
        assert m.group(1) in names, "sample documents unknown key " + m.group(1)
    p = subprocess.run([BIN, "-c", sample, "--check"], capture_output=True,
                       text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr


def test_msal_sample_dotenv_is_read(tmp):
    """The .env written for the MSAL sample works unchanged beside the
    config; the file's own keys win over it."""
    with open(os.path.join(tmp, ".env"), "w") as f:
        f.write('CLIENT_ID="11111111-2222-3333-4444-555555555555"\n'
                "CLIENT_SECRET=s3cr3t~value\n"
                "AUTHORITY=http://127.0.0.1:9/contoso.onmicrosoft.com\n"
                "REDIRECT_URI=http://localhost:5000/getAToken\n"
                "# a comment\nexport SCOPE=User.Read\n")
    rc, out, _ = check(tmp, GOOD + "session_store = %s/s\n"
                       "session_key_file = %s/k\n" % (tmp, tmp))
    assert rc == 0, out
    # Without the .env the same file lacks the provider's keys.
    os.rename(os.path.join(tmp, ".env"), os.path.join(tmp, "env.off"))
    rc, out, _ = check(tmp, GOOD + "authority = http://127.0.0.1:9/t\n"
                       "client_secret = x\n")
    assert rc != 0 and "client_id is required" in out
    assert "x\n" not in out  # the secret is never echoed
    # A bad value from .env is reported like any other.
    with open(os.path.join(tmp, ".env"), "w") as f:
        f.write("AUTHORITY=ftp://nope\n")
    rc, out, _ = check(tmp, GOOD)
    assert rc != 0 and ".env:1 AUTHORITY: expected an http:// or https:// " \
        "URL" in out, out
