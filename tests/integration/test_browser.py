# SPDX-License-Identifier: ISC
"""The browser test: Debian's Chromium, headless, walks the demo as a
person would: the example app's public page and its "Sign in" link, the
demo OpenID Provider's real sign-in page (examples/demo-op, panva's
oidc-provider), the app greeting the user, the downstream API (the app's
Graph call gets a token the Graph stand-in accepts), sign-out ending on
gatehouse's signed-out page, "Sign in again" from there, and a new account
signed up through the provider's create-account page.

Starts on free loopback ports the demo OP, the Graph stand-in, the example
app (examples/upstream-app/app.py) and build/gatehouse with a configuration
in the test's temporary directory (as examples/demo.py does), then runs
tests/browser/signin.mjs (playwright-core driving /usr/bin/chromium; no
browser is ever downloaded).  Everything is stopped by PID.

This test never skips: a missing /usr/bin/chromium (`make deps` installs
it), node/npm or npm packages that cannot be installed are failures.
A screenshot of every page goes to the test's output directory,
test-output/browser/ (browser-certificate/ for the run with a
certificate) beside the binary under test (build/test-output/
browser/ for `make test`), or to $BROWSER_TEST_SCREENSHOTS when that is
set: for a person to look at; the path is printed."""
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import BIN, PY, Proc, free_port, wait_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OPDIR = os.path.join(ROOT, "examples", "demo-op")
BROWSERDIR = os.path.join(ROOT, "tests", "browser")
APP = os.path.join(ROOT, "examples", "upstream-app", "app.py")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TENANT = "gatehousedemo"
SCRIPT_TIMEOUT = 90  # a hang guard, not a speed check


def need_tools():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("%s is missing: the browser test needs Debian's Chromium "
                    "(`make deps`, or apt-get install chromium)" % CHROMIUM)
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            pytest.fail("%s is missing: the browser test needs Node.js and npm "
                        "(`make deps`, or apt-get install nodejs npm)" % tool)


def npm_ci(where, marker):
    """npm ci in where unless a finished one left node_modules/<marker>.
    The plain and the sanitizer runs of make test share the checkout and
    run side by side: one waits on the lock while the other installs (npm
    ci empties node_modules first, so using it meanwhile would fail), and
    a stamp written last tells a whole install from one cut short."""
    stamp = os.path.join(where, "node_modules", ".gatehouse-npm-ci")
    with open(os.path.join(where, ".npm-ci.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(os.path.join(where, "node_modules", marker)) \
                and os.path.exists(stamp):
            return
        r = subprocess.run(
            [shutil.which("npm"), "ci", "--no-audit", "--no-fund"],
            cwd=where, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=300)
        if r.returncode != 0:
            pytest.fail("npm ci failed in %s (is the npm registry "
                        "reachable?):\n%s"
                        % (os.path.relpath(where, ROOT),
                           r.stdout.decode("utf-8", "replace")[-2000:]))
        open(stamp, "w").close()


def tail(proc, n=40):
    try:
        lines = proc.log().splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    " + l for l in lines[-n:])


def run_browser(url, shots, extra=()):
    """Run signin.mjs in a process group of its own, so that on a timeout
    node and the Chromium it started are stopped together (by that group's
    id, which is node's PID)."""
    p = subprocess.Popen(
        ["node", os.path.join(BROWSERDIR, "signin.mjs"), url, "ada.lovelace",
         "--signup-name", "Grace Hopper", "--screenshots", shots,
         "--chromium", CHROMIUM] + list(extra),
        cwd=BROWSERDIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=SCRIPT_TIMEOUT)
        return out.decode("utf-8", "replace"), p.returncode
    except subprocess.TimeoutExpired:
        for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, _ = p.communicate(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                out = b""
        return (out.decode("utf-8", "replace"),
                "timeout after %d s" % SCRIPT_TIMEOUT)


class Stack:
    """Demo OP, Graph stand-in and example app, stopped by PID."""

    def __init__(self, tmp, gw_port, scheme="http", cert=None):
        self.procs = {}
        base = "%s://127.0.0.1:%d" % (scheme, gw_port)
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(32)
        node = shutil.which("node")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("GATEHOUSE_")}

        pf = os.path.join(tmp, "op.port")
        self.start("op", [node, os.path.join(OPDIR, "server.js"),
                          "--port", "0", "--port-file", pf,
                          "--client-id", self.client_id,
                          "--redirect-uri", base + "/.auth/callback",
                          "--post-logout-redirect-uri",
                          base + "/.auth/logout/complete",
                          "--tenant-name", TENANT]
                   + (["--client-certificate", cert] if cert else []),
                   tmp, env if cert else
                   dict(env, DEMO_OP_CLIENT_SECRET=self.client_secret))
        op_port = int(self.wait("op", pf))
        self.authority = "http://127.0.0.1:%d/%s.onmicrosoft.com" % (op_port, TENANT)

        gpf = os.path.join(tmp, "graph.port")
        self.start("graph", [node, os.path.join(OPDIR, "graph.js"),
                             "--port", "0", "--port-file", gpf,
                             "--authority", self.authority], tmp, env)
        self.graph = "http://127.0.0.1:%d/v1.0" % int(self.wait("graph", gpf))

        apf = os.path.join(tmp, "app.port")
        self.start("app", [PY, APP, "--port", "0", "--port-file", apf], tmp,
                   dict(env, GRAPH_ENDPOINT=self.graph))
        self.app_port = int(self.wait("app", apf))

    def start(self, name, argv, tmp, env):
        self.procs[name] = Proc(argv, os.path.join(tmp, name + ".log"), env=env)

    def wait(self, name, path):
        try:
            return wait_file(path, 20)
        except TimeoutError:
            p = self.procs[name]
            raise AssertionError("%s did not start (exit %s):\n%s"
                                 % (name, p.p.poll(), tail(p)))

    def logs(self):
        return "\n".join("--- %s log:\n%s" % (n, tail(p))
                         for n, p in self.procs.items())

    def stop(self):
        for p in reversed(list(self.procs.values())):
            p.stop()


@pytest.mark.parametrize("credential", ["secret", "certificate"])
def test_browser_signin_graph_signout_signup(tmp, gatehouse, credential):
    """With a client secret, and with a certificate (private_key_jwt: the
    demo provider registers the certificate and no secret, so every token
    request there is a signed client assertion)."""
    t0 = time.time()
    need_tools()
    npm_ci(OPDIR, "oidc-provider")
    npm_ci(BROWSERDIR, "playwright-core")

    gw_port = free_port()
    cert = key_file = None
    if credential == "certificate":
        from certs import Credential
        cert, key_file = Credential().write(tmp)
    stack = Stack(tmp, gw_port, cert=cert)
    shots = os.environ.get("BROWSER_TEST_SCREENSHOTS") or os.path.join(
        os.path.dirname(os.path.abspath(BIN)), "test-output", "browser")
    if credential == "certificate":
        shots += "-certificate"
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    try:
        base = "http://127.0.0.1:%d" % gw_port
        key = os.path.join(tmp, "session.key")
        store = os.path.join(tmp, "sessions")
        os.makedirs(store)
        gw = gatehouse([
            "upstream = http://127.0.0.1:%d" % stack.app_port,
            "authority = " + stack.authority,
            "client_id = " + stack.client_id,
        ] + ([
            "client_certificate = " + cert,
            "client_certificate_key = " + key_file,
        ] if cert else ["client_secret = " + stack.client_secret]) + [
            "redirect_uri = %s/.auth/callback" % base,
            "scopes = User.Read",
            "forward_access_token = on",
            "session_store = " + store,
            "session_key_file = " + key,
            "route /healthz allow anonymous",
            "route / allow anonymous",
            "route /* allow authenticated",
        ], port=gw_port)
        started = time.time()

        out, rc = run_browser(gw.url, shots)
        print(out)
        print("browser test: stack up in %.1f s, browser run %.1f s; "
              "screenshots in %s" % (started - t0, time.time() - started,
                                     shots))

        assert rc == 0, ("tests/browser/signin.mjs failed (%s); screenshots "
                         "kept in %s\n%s\n--- gatehouse log:\n%s\n%s"
                         % (rc, shots, out, tail(gw.proc), stack.logs()))
        assert "PASS:" in out, out
        # signin.mjs checked that the app's Graph call got a 200 with the
        # user's displayName and id; neither Node server may have crashed
        # or logged an error on the way.
        for name in ("op", "graph"):
            log = stack.procs[name].log()
            assert "server_error" not in log and "Error:" not in log, \
                "%s logged an error:\n%s" % (name, tail(stack.procs[name]))
        assert len([f for f in os.listdir(shots) if f.endswith(".png")]) \
            >= 10, os.listdir(shots)
    finally:
        stack.stop()
