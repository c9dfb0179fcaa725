# SPDX-License-Identifier: ISC
"""Where a value comes from: GATEHOUSE_<KEY> for every key the binary lists,
.env, errors that name their source, sample placeholders, and what --check
finds on this machine (session paths, sign-in off).  All through the real
binary."""
import os
import re
import shutil
import subprocess
import tempfile

import atexit

import pytest
import requests

from certs import Credential
from conftest import BIN, free_port
from test_config import check, help_keys

# A usable certificate and key for client_certificate(_key), made once.
CERT_DIR = tempfile.mkdtemp(prefix="gh-env-cert-")
atexit.register(shutil.rmtree, CERT_DIR, True)
CERT, CERT_KEY = Credential().write(CERT_DIR)
# A client secret in a file, for client_secret_file.
SECRET_FILE = os.path.join(CERT_DIR, "client-secret")
with open(SECRET_FILE, "w") as _f:
    _f.write("s3cr3t~from~a~file\n")

PROVIDER = {
    "authority": "http://127.0.0.1:9/contoso.onmicrosoft.com",
    "client_id": "11111111-2222-3333-4444-555555555555",
    "client_secret": "s3cr3t~value",
    "redirect_uri": "http://127.0.0.1:8080/.auth/callback",
}

# A valid value for each key that has no default (a default is valid by
# definition), and the other keys it needs to be valid, also given through
# the environment.  A new key without a default fails
# test_every_key_has_a_value until it gets a line here.
NO_DEFAULT = {
    "upstream": {"upstream": "http://127.0.0.1:9"},
    "authority": dict(PROVIDER),
    "oidc_issuer": dict({k: v for k, v in PROVIDER.items()
                         if k != "authority"},
                        oidc_issuer="http://127.0.0.1:9/tenant/v2.0"),
    "client_id": dict(PROVIDER),
    "client_secret": dict(PROVIDER),
    "client_secret_file": dict({k: v for k, v in PROVIDER.items()
                                if k != "client_secret"},
                               client_secret_file=SECRET_FILE),
    "client_certificate": dict(PROVIDER, client_certificate=CERT,
                               client_certificate_key=CERT_KEY),
    "client_certificate_key": dict(PROVIDER, client_certificate=CERT,
                                   client_certificate_key=CERT_KEY),
    "redirect_uri": dict(PROVIDER),
    "api_audience": {"api_audience": "api://my-api"},
    "ca_file": {"ca_file": "/etc/ssl/certs/ca-certificates.crt"},
    "provider_resolve": {
        "provider_resolve": "contoso.ciamlogin.com:443:127.0.0.1"},
    "post_logout_redirect_uri": {
        "post_logout_redirect_uri": "http://127.0.0.1:8080/bye"},
    "cookie_domain": {"cookie_domain": "example.com"},
    "metrics_listen": {"metrics_listen": "127.0.0.1:9090"},
    # The same certificate serves as the TLS listener's.
    "tls_certificate": {"listen": "127.0.0.1:8443 tls",
                        "tls_certificate": CERT,
                        "tls_certificate_key": CERT_KEY},
    "tls_certificate_key": {"listen": "127.0.0.1:8443 tls",
                            "tls_certificate": CERT,
                            "tls_certificate_key": CERT_KEY},
    "listen_http_redirect": {"listen": "127.0.0.1:8443 tls",
                             "tls_certificate": CERT,
                             "tls_certificate_key": CERT_KEY,
                             "listen_http_redirect": "127.0.0.1:8080"},
    "brand_logo_url": {"brand_logo_url": "https://cdn.example.com/logo.png"},
    "brand_name": {"brand_name": "Contoso Portal"},
    "brand_support": {"brand_support": "help@example.com"},
    # A directory without page.html: the built-in page, branded.
    "error_page_dir": {"error_page_dir": os.path.dirname(
        os.path.abspath(BIN))},
    # Read for a Redis store: any readable file; its first line is the
    # password (this file's will do).
    "redis_password_file": {"session_store": "redis://127.0.0.1:6379",
                            "redis_password_file": os.path.abspath(__file__)},
    "redis_sentinel_password_file": {
        "session_store": "redis-sentinel://127.0.0.1:26379/mymaster",
        "redis_sentinel_password_file": os.path.abspath(__file__)},
}
# Words for people (CONFIG_TEXT): "<...>" in them is a real value.
TEXT_KEYS = {"brand_name", "brand_support"}
# Repeatable keys: their order matters, so one variable cannot set them.
FILE_ONLY = {"route"}

KEYS = help_keys()
NAMES = [k for k, _, _ in KEYS]


def env_name(key):
    return "GATEHOUSE_" + key.upper()


def valid_values(key):
    """{key: value} that makes `key` valid, `key` itself included."""
    if key in NO_DEFAULT:
        return dict(NO_DEFAULT[key])
    default = dict((k, d) for k, d, _ in KEYS)[key]
    return {key: default}


def base_file(tmp, without=None, extra=None):
    lines = {"upstream": "http://127.0.0.1:9", "workers": "2",
             "session_store": os.path.join(tmp, "sessions"),
             "session_key_file": os.path.join(tmp, "keys", "session.key")}
    lines.update(extra or {})
    return "".join("%s = %s\n" % (k, v) for k, v in lines.items()
                   if k != without)


def test_every_key_has_a_value():
    assert len(NAMES) >= 40, NAMES
    for key, default, _ in KEYS:
        assert default is not None or key in NO_DEFAULT or \
            key in FILE_ONLY, "add a valid value for %s to NO_DEFAULT" % key


@pytest.mark.parametrize("key", NAMES)
def test_each_key_through_the_environment(tmp, key):
    """GATEHOUSE_<KEY> sets the key whether or not the file sets it too,
    and a bad value is blamed on the variable, with no follow-on error."""
    var = env_name(key)
    if key in FILE_ONLY:
        rc, out, _ = check(tmp, base_file(tmp), env={var: "/* deny"})
        assert rc != 0
        assert re.search(r"^%s \(environment\): %s lines are read from the "
                         r"file only" % (var, key), out, re.M), out
        return
    values = valid_values(key)
    env = {env_name(k): v for k, v in values.items()}
    # Only the environment sets it.
    rc, out, path = check(tmp, base_file(tmp, without=key), env=env)
    assert rc == 0, out
    # The file sets it too (to the same valid value): no "already set".
    rc, out, path = check(tmp, base_file(tmp, extra={key: values[key]}),
                          env=env)
    assert rc == 0, out
    # The file's valid value, the environment's placeholder: the variable
    # wins, and it is the variable that is named.
    bad = dict(env, **{var: "<%s>" % key.replace("_", " ")})
    rc, out, path = check(tmp, base_file(tmp, extra={key: values[key]}),
                          env=bad)
    if key in TEXT_KEYS:
        assert rc == 0, out
        return
    assert rc != 0
    assert re.search(r"^%s \(environment\): .*placeholder" % var, out,
                     re.M), out
    assert "missing required key" not in out, out
    assert "neither authority nor oidc_issuer" not in out, out
    if not key.endswith("secret"):
        assert "<%s>" % key.replace("_", " ") in out
    # Nothing is blamed on a line of the file that does not hold it.
    assert not re.search(r"^%s:\d+: " % re.escape(path), out, re.M), out


def test_listen_and_workers_take_effect(tmp):
    rc, out, _ = check(tmp, base_file(tmp, extra={"listen": "127.0.0.1:1234"}),
                       env={"GATEHOUSE_LISTEN": "127.0.0.1:4321",
                            "GATEHOUSE_WORKERS": "3"})
    assert rc == 0 and "listen 127.0.0.1:4321, 3 workers" in out, out


def test_upstream_from_the_environment_serves(tmp, upstream, gatehouse):
    """The issue's own case, on a real start: the file names no upstream
    (or a dead one) and GATEHOUSE_UPSTREAM names the real one."""
    g = gatehouse(["route /* allow anonymous"],
                  env={"GATEHOUSE_UPSTREAM": upstream.url})
    r = requests.get(g.url + "/hello", timeout=5)
    assert r.status_code == 200 and r.json()["path"] == "/hello", r.text
    g.stop()
    g = gatehouse(["upstream = http://127.0.0.1:9",
                   "route /* allow anonymous"],
                  env={"GATEHOUSE_UPSTREAM": upstream.url}, name="gw2")
    r = requests.get(g.url + "/again", timeout=5)
    assert r.status_code == 200 and r.json()["path"] == "/again", r.text


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_dotenv_errors_name_the_dotenv_line(tmp):
    write(os.path.join(tmp, ".env"),
          "# the MSAL sample's .env\nCLIENT_ID=abc\nAUTHORITY=ftp://nope\n")
    rc, out, path = check(tmp, base_file(tmp) + "route /* allow authenticated\n")
    assert rc != 0
    assert re.search(r"^\S*\.env:3 AUTHORITY: expected an http:// or "
                     r"https:// URL", out, re.M), out
    # The one mistake, said once: no "neither authority nor oidc_issuer".
    assert "neither authority nor oidc_issuer" not in out, out
    assert not re.search(r"^%s(:\d+)?: authority" % re.escape(path), out,
                         re.M), out


def test_environment_error_names_the_variable(tmp):
    rc, out, path = check(tmp, base_file(tmp),
                          env={"GATEHOUSE_LISTEN": "nohost"})
    assert rc != 0
    assert re.search(r"^GATEHOUSE_LISTEN \(environment\): expected host:port",
                     out, re.M), out
    assert not re.search(r"^%s(:\d+)?: listen" % re.escape(path), out, re.M)


def test_sample_placeholders_are_refused(tmp):
    """The MSAL sample's .env.sample, copied and not filled in."""
    write(os.path.join(tmp, ".env"),
          "CLIENT_ID=<client id>\n"
          "CLIENT_SECRET=<client secret>\n"
          "AUTHORITY=https://<your subdomain>.ciamlogin.com/"
          "<your subdomain>.onmicrosoft.com\n"
          "REDIRECT_URI=http://localhost:5000/getAToken\n")
    rc, out, _ = check(tmp, base_file(tmp))
    assert rc != 0
    assert re.search(r"^\S*\.env:1 CLIENT_ID: \"<client id>\" is a "
                     r"placeholder", out, re.M), out
    assert re.search(r"^\S*\.env:2 CLIENT_SECRET: the value is a "
                     r"placeholder", out, re.M), out
    assert re.search(r"^\S*\.env:3 AUTHORITY: .*placeholder", out, re.M), out
    # The Node.js sample's style, in the file itself.
    os.remove(os.path.join(tmp, ".env"))
    rc, out, path = check(tmp, base_file(tmp, extra=dict(
        PROVIDER, client_id="Enter_the_Application_Id_Here")))
    assert rc != 0
    assert re.search(r"^%s:\d+: client_id: .*placeholder" % re.escape(path),
                     out, re.M), out


def test_check_says_sign_in_is_off(tmp):
    rc, out, _ = check(tmp, "upstream = http://127.0.0.1:9\n")
    assert rc == 0
    assert "sign-in is off: neither authority nor oidc_issuer is set" in out


def provider_file(tmp, store, key):
    return base_file(tmp, extra=dict(PROVIDER, session_store=store,
                                     session_key_file=key))


def test_check_refuses_session_paths_under_a_file(tmp):
    write(os.path.join(tmp, "plain"), "not a directory\n")
    bad = os.path.join(tmp, "plain", "sessions")
    rc, out, _ = check(tmp, provider_file(tmp, bad, os.path.join(tmp, "k")))
    assert rc != 0
    assert "session_store: %s cannot be made: %s is not a directory" % (
        bad, os.path.join(tmp, "plain")) in out, out
    bad = os.path.join(tmp, "plain", "keys", "session.key")
    rc, out, _ = check(tmp, provider_file(tmp, os.path.join(tmp, "s"), bad))
    assert rc != 0 and "session_key_file:" in out and \
        "is not a directory" in out, out
    # Nothing was made by the check.
    assert sorted(os.listdir(tmp)) == ["plain", "t.conf"], os.listdir(tmp)


def run_as_nobody(argv, cwd):
    def drop():
        if os.getuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("GATEHOUSE_")}
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd,
                          preexec_fn=drop, timeout=20, env=e)


def test_check_refuses_what_start_up_refuses_unwritable():
    """A store and key file under a directory this user cannot write: --check
    says so, as start-up does (run as nobody when the tests run as root)."""
    d = tempfile.mkdtemp(prefix="gh-ro-")
    try:
        os.chmod(d, 0o755)
        ro = os.path.join(d, "ro")
        os.mkdir(ro)
        os.chmod(ro, 0o555)
        rw = os.path.join(d, "rw")
        os.mkdir(rw)
        os.chmod(rw, 0o777)
        conf = os.path.join(d, "gw.conf")
        for store, key, name in (
                (os.path.join(ro, "sessions"), os.path.join(rw, "s.key"),
                 "session_store"),
                (os.path.join(rw, "sessions"), os.path.join(ro, "k", "s.key"),
                 "session_key_file")):
            write(conf, "upstream = http://127.0.0.1:9\nworkers = 1\n"
                  "listen = 127.0.0.1:%d\nroute /* allow anonymous\n"
                  % free_port() +
                  "".join("%s = %s\n" % kv for kv in PROVIDER.items()) +
                  "session_store = %s\nsession_key_file = %s\n" % (store, key))
            p = run_as_nobody([BIN, "-c", conf, "--check"], d)
            assert p.returncode != 0, p.stdout + p.stderr
            assert re.search(r"%s: .*%s.* cannot be written" % (name,
                             re.escape(ro)), p.stderr), p.stderr
            # Start-up refuses the same file.
            p = run_as_nobody([BIN, "-c", conf], d)
            assert p.returncode != 0 and ro in p.stderr, p.stderr
            assert sorted(os.listdir(ro)) == []
    finally:
        shutil.rmtree(d)
