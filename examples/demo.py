#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""Start the gatehouse demo (what `make demo` and `make run` run).

    /usr/bin/python3 examples/demo.py               # local demo: OP + Graph + app + gatehouse
    /usr/bin/python3 examples/demo.py --tenant      # real tenant from .env: app + gatehouse
    /usr/bin/python3 examples/demo.py --check-only  # start, probe, print OK, stop
    ... --upstream http://127.0.0.1:8000           # your own app instead of the example
    (--no-gateway leaves build/gatehouse out; so does its absence.)

The local demo starts, on free loopback ports:
  - examples/demo-op/server.js, an OpenID Provider dressed as an Entra
    External ID tenant (npm ci runs there first when node_modules is missing),
  - examples/demo-op/graph.js, a stand-in for Microsoft Graph /v1.0/me,
  - examples/upstream-app/app.py, with GRAPH_ENDPOINT pointing at the stand-in,
  - build/gatehouse with demo-data/gatehouse.conf, generated on every run,
and stops them all by PID on Ctrl-C or SIGTERM.  Logs: demo-data/logs/
($DEMO_DATA_DIR/logs/ when that is set).
Python standard library only.
"""
import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OPDIR = os.path.join(HERE, "demo-op")
APP = os.path.join(HERE, "upstream-app", "app.py")
# DEMO_DATA_DIR moves the generated config, stores and logs elsewhere (the
# tests run the demo in a temporary directory this way).
DATA = os.environ.get("DEMO_DATA_DIR") or os.path.join(ROOT, "demo-data")
LOGS = os.path.join(DATA, "logs")
GATEHOUSE = os.environ.get("GATEHOUSE_BIN") or os.path.join(ROOT, "build", "gatehouse")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TENANT_NAME = "gatehousedemo"
NODE_MIN = (18, 12)


def say(msg=""):
    print(msg, flush=True)


def die(msg):
    sys.stderr.write("demo: %s\n" % msg)
    sys.exit(1)


def free_port(prefer=None):
    for port in ([prefer] if prefer else []) + [0]:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def http_get(url, timeout=5.0):
    """(status, body) of a GET; status None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(getattr(e, "reason", e)).encode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def http_head_noredirect(url, timeout=5.0):
    """(status, Location) of a GET that does not follow redirects."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status, r.headers.get("Location", "")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location", "") or ""
    except (urllib.error.URLError, OSError) as e:
        return None, str(getattr(e, "reason", e))


class Child:
    """A process we started; stopped by its PID, never by name."""

    def __init__(self, name, argv, log=None, env=None, cwd=None):
        self.name = name
        self.log_path = log
        out = open(log, "wb") if log else None
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT if out else None,
                                  env=env, cwd=cwd, start_new_session=True)
        if out:
            out.close()
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=10.0):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
        return self.p.returncode

    def tail(self, n=30):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join("    " + l for l in lines[-n:])


class Demo:
    def __init__(self):
        self.children = []

    def start(self, name, argv, log=True, **kw):
        path = os.path.join(LOGS, name + ".log") if log else None
        c = Child(name, argv, path, **kw)
        self.children.append(c)
        return c

    def stop_all(self):
        for c in reversed(self.children):
            rc = c.stop()
            if rc not in (0, -signal.SIGTERM):
                say("demo: %s (pid %d) exited with %s" % (c.name, c.pid, rc))
        self.children = []

    def wait_port_file(self, child, path, timeout=20.0):
        end = time.time() + timeout
        while time.time() < end:
            if not child.alive():
                raise RuntimeError("%s exited with %s:\n%s"
                                   % (child.name, child.p.returncode, child.tail()))
            try:
                with open(path) as f:
                    data = f.read().strip()
                if data:
                    return int(data)
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("%s did not start in %d s:\n%s"
                           % (child.name, timeout, child.tail()))

    def wait_port(self, child, port, timeout=20.0):
        end = time.time() + timeout
        while time.time() < end:
            if not child.alive():
                raise RuntimeError("%s exited with %s:\n%s"
                                   % (child.name, child.p.returncode, child.tail()))
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("%s is not listening on port %d after %d s:\n%s"
                           % (child.name, port, timeout, child.tail()))


# ------------------------------------------------------------------ setup

def ensure_node():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        die("the demo OpenID Provider needs Node.js and npm: "
            "apt-get install nodejs npm  (Debian 12's Node 18 is enough)")
    out = subprocess.run([node, "--version"], stdout=subprocess.PIPE,
                         universal_newlines=True).stdout.strip()
    try:
        ver = tuple(int(x) for x in out.lstrip("v").split(".")[:2])
    except ValueError:
        ver = (0, 0)
    if ver < NODE_MIN:
        die("node %s is too old for the demo OP (needs %d.%d or later)"
            % (out, NODE_MIN[0], NODE_MIN[1]))
    if not os.path.isdir(os.path.join(OPDIR, "node_modules", "oidc-provider")):
        say("demo: installing the demo OP's packages (npm ci in examples/demo-op)")
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=OPDIR)
        if r.returncode != 0:
            die("npm ci failed in examples/demo-op (is the npm registry reachable?)")
    return node


def read_dotenv(path):
    vals = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            if line.startswith("export "):
                line = line[7:]
            k, v = line.split("=", 1)
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            vals[k.strip()] = v
    return vals


def write_config(path, lines):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Generated by examples/demo.py on every run; edits are lost.\n")
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def clean_env(extra=None):
    """The environment for children: no GATEHOUSE_* overrides leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env.update(extra or {})
    return env


def common_config(listen_port, upstream, prefix=""):
    return [
        "listen = 127.0.0.1:%d" % listen_port,
        "upstream = " + upstream,
        "session_store = %s" % os.path.join(DATA, prefix + "sessions"),
        "session_key_file = %s" % os.path.join(DATA, prefix + "session.key"),
        "forward_access_token = on",
    ]


# The app's home page is public: it greets a signed-in visitor by name
# (gatehouse forwards a valid session's identity on anonymous routes) and
# offers everyone else a "Sign in" link.  Everything else needs sign-in.
ROUTES = ["route /healthz allow anonymous", "route / allow anonymous",
          "route /* allow authenticated"]
# In front of your own app: everything behind a sign-in; edit the routes in
# a copy of the generated config once you know which paths are public.
OWN_ROUTES = ["route /* allow authenticated"]


def upstream_url(url):
    """The --upstream value, checked enough to fail here with a clear word
    rather than in gatehouse's --check."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http" or not u.hostname or u.path not in ("", "/") \
            or u.query or u.fragment:
        die("--upstream %r: give the app's address as http://HOST:PORT "
            "(gatehouse forwards the request path unchanged)" % url)
    return "http://%s" % u.netloc


def start_app(demo, args, env):
    """The example app, or (with --upstream) the user's own app, which we
    only name.  Returns (upstream URL for the config, app URL, app port or
    None)."""
    if args.upstream:
        url = upstream_url(args.upstream)
        return url, url + "/", None
    apf = os.path.join(DATA, "app.port")
    if os.path.exists(apf):
        os.unlink(apf)
    app = demo.start("app", [PY, APP, "--port", "0", "--port-file", apf],
                     env=clean_env(env))
    app_port = demo.wait_port_file(app, apf)
    url = "http://127.0.0.1:%d" % app_port
    return url, url + "/", app_port


# ------------------------------------------------------------------ modes

def start_local(demo, args):
    node = ensure_node()
    gw_port = args.port or free_port(prefer=8080)
    base = "http://127.0.0.1:%d" % gw_port
    client_id = str(uuid.uuid4())
    client_secret = secrets.token_urlsafe(32)

    pf = os.path.join(DATA, "op.port")
    for f in ("op.port", "graph.port", "app.port"):
        if os.path.exists(os.path.join(DATA, f)):
            os.unlink(os.path.join(DATA, f))
    op = demo.start("op", [node, os.path.join(OPDIR, "server.js"),
                           "--port", "0", "--port-file", pf,
                           "--client-id", client_id,
                           "--redirect-uri", base + "/.auth/callback",
                           "--post-logout-redirect-uri",
                           base + "/.auth/logout/complete",
                           "--tenant-name", TENANT_NAME],
                    env=clean_env({"DEMO_OP_CLIENT_SECRET": client_secret}))
    op_port = demo.wait_port_file(op, pf)
    authority = "http://127.0.0.1:%d/%s.onmicrosoft.com" % (op_port, TENANT_NAME)

    gpf = os.path.join(DATA, "graph.port")
    graph = demo.start("graph", [node, os.path.join(OPDIR, "graph.js"),
                                 "--port", "0", "--port-file", gpf,
                                 "--authority", authority], env=clean_env())
    graph_url = "http://127.0.0.1:%d/v1.0" % demo.wait_port_file(graph, gpf)

    upstream, app_url, app_port = start_app(
        demo, args, {"GRAPH_ENDPOINT": graph_url})

    info = {"url": base + "/", "authority": authority, "graph": graph_url,
            "app": app_url, "gw_port": gw_port, "app_port": app_port,
            "own": bool(args.upstream)}

    # Sessions name refresh tokens of an OP that no longer exists: start clean.
    shutil.rmtree(os.path.join(DATA, "sessions"), ignore_errors=True)
    os.makedirs(os.path.join(DATA, "sessions"), exist_ok=True)
    conf = os.path.join(DATA, "gatehouse.conf")
    write_config(conf, common_config(gw_port, upstream) + [
        "authority = " + authority,
        "client_id = " + client_id,
        "client_secret = " + client_secret,
        "redirect_uri = %s/.auth/callback" % base,
        "scopes = User.Read",
    ] + (OWN_ROUTES if args.upstream else ROUTES))
    info["conf"] = conf
    # No .env beside the config or in gatehouse's working directory
    # (demo-data/), so a .env meant for `make run` cannot leak in.
    return info, DATA


def start_tenant(demo, args):
    envfile = None
    for d in (os.getcwd(), ROOT):
        if os.path.isfile(os.path.join(d, ".env")):
            envfile = os.path.join(d, ".env")
            break
    if not envfile:
        die("--tenant needs a .env (CLIENT_ID, CLIENT_SECRET, AUTHORITY, "
            "REDIRECT_URI, optional SCOPE) in %s or %s" % (os.getcwd(), ROOT))
    env = read_dotenv(envfile)
    missing = [k for k in ("CLIENT_ID", "CLIENT_SECRET", "AUTHORITY", "REDIRECT_URI")
               if not env.get(k)]
    if missing:
        die("%s lacks %s" % (envfile, ", ".join(missing)))
    ru = urllib.parse.urlsplit(env["REDIRECT_URI"])
    if ru.scheme not in ("http", "https") or not ru.hostname:
        die("REDIRECT_URI %r is not an http(s) URL" % env["REDIRECT_URI"])
    gw_port = ru.port or (443 if ru.scheme == "https" else 80)
    if ru.scheme == "https":
        say("demo: note: REDIRECT_URI is https; gatehouse listens with plain "
            "HTTP on 127.0.0.1:%d, so put a TLS proxy in front of it" % gw_port)
    host = ru.hostname if ":" not in ru.hostname else "[%s]" % ru.hostname
    base = "%s://%s%s" % (ru.scheme, host, "" if ru.port is None else ":%d" % ru.port)

    app_env = {"GRAPH_ENDPOINT": env["GRAPH_ENDPOINT"]} if env.get("GRAPH_ENDPOINT") else {}
    upstream, app_url, app_port = start_app(demo, args, app_env)

    # Kept apart from the local demo's store, which is wiped on every run.
    os.makedirs(os.path.join(DATA, "tenant-sessions"), exist_ok=True)
    conf = os.path.join(DATA, "gatehouse-tenant.conf")
    lines = common_config(gw_port, upstream, prefix="tenant-")
    # CLIENT_ID, CLIENT_SECRET, AUTHORITY and REDIRECT_URI come from the
    # .env, which gatehouse reads from its working directory.
    if env.get("SCOPE"):
        lines.append("scopes = " + env["SCOPE"])
    # No post_logout_redirect_uri: sign-out ends on gatehouse's signed-out
    # page, {base}/.auth/logout/complete, which the tenant must list.
    write_config(conf, lines + (OWN_ROUTES if args.upstream else ROUTES))
    info = {"url": base + "/", "authority": env["AUTHORITY"], "graph": None,
            "app": app_url, "gw_port": gw_port, "app_port": app_port,
            "conf": conf, "envfile": envfile, "scope": env.get("SCOPE"),
            "own": bool(args.upstream)}
    return info, os.path.dirname(envfile)


def start_gatehouse(demo, info, cwd, quiet, skip=False):
    if skip:
        say("demo: --no-gateway: not starting gatehouse")
        return None
    if not os.access(GATEHOUSE, os.X_OK):
        say("demo: %s is not built yet: not starting the gateway "
            "(run `make` first)" % GATEHOUSE)
        return None
    r = subprocess.run([GATEHOUSE, "-c", info["conf"], "--check"], cwd=cwd,
                       env=clean_env(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    if r.returncode != 0:
        raise RuntimeError("gatehouse --check refused %s:\n%s"
                           % (info["conf"], r.stdout))
    gw = demo.start("gatehouse", [GATEHOUSE, "-c", info["conf"]], log=quiet,
                    env=clean_env(), cwd=cwd)
    demo.wait_port(gw, info["gw_port"])
    return gw


def check(info, gw, tenant):
    problems = []
    if not tenant:
        url = info["authority"] + "/v2.0/.well-known/openid-configuration"
        status, body = http_get(url)
        if status != 200 or b'"issuer"' not in body:
            problems.append("OP discovery %s: %s %s" % (url, status, body[:200]))
        else:
            say("demo: OP discovery      %s  OK" % url)
        status, body = http_get(info["graph"] + "/me")
        if status != 401:
            problems.append("Graph stand-in without a token: %s (wanted 401)" % status)
        else:
            say("demo: Graph stand-in    %s/me  401 without a token  OK" % info["graph"])
    if info.get("own"):
        # Any answer will do: your app's / may well want a signed-in user.
        status, body = http_get(info["app"])
        if status is None:
            problems.append("your app at %s does not answer: %s (start it "
                            "first)" % (info["app"], body[:200].decode(
                                "utf-8", "replace")))
        else:
            say("demo: your app          %s  answers %d  OK"
                % (info["app"], status))
    else:
        status, body = http_get(info["app"] + "healthz")
        if status != 200:
            problems.append("app %shealthz: %s %s" % (info["app"], status, body[:200]))
        else:
            say("demo: upstream app      %shealthz  OK" % info["app"])
    if gw is not None and info.get("own"):
        # Through gatehouse, an anonymous visitor is sent to sign in.
        url = "http://127.0.0.1:%d/" % info["gw_port"]
        status, where = http_head_noredirect(url)
        # Straight to the provider's authorization endpoint (its origin:
        # the endpoint's path is the metadata's, not the authority's).
        op = urllib.parse.urlsplit(info["authority"])
        to = urllib.parse.urlsplit(where)
        if status != 302 or (to.scheme, to.netloc) != (op.scheme, op.netloc) \
                or not to.path.endswith("/authorize"):
            problems.append("gatehouse %s: %s %s (wanted a redirect to "
                            "sign in)" % (url, status, where[:200]))
        else:
            say("demo: gatehouse         %s  302 to sign in  OK" % url)
    if gw is not None:
        url = "http://127.0.0.1:%d/.auth/healthz" % info["gw_port"]
        status, body = http_get(url)
        if status != 200:
            problems.append("gatehouse %s: %s %s" % (url, status, body[:200]))
        else:
            say("demo: gatehouse         %s  OK" % url)
    return problems


def banner(info, gw, tenant):
    say()
    say("=" * 72)
    if gw is None:
        say("  gatehouse is not running, only its neighbours: %s will not answer."
            % info["url"])
    say("  Open   %s" % info["url"])
    if not tenant:
        say("         (use 127.0.0.1, not localhost: cookies belong to one host name)")
        say("  Sign in with any name and any password, e.g. alice / secret.")
        say("  The password 'wrong' is refused; 'Cancel' shows a denied sign-in.")
        say("  Sign up: %s.auth/login?prompt=create&post_login_redirect_uri=/"
            % info["url"])
        if not info.get("own"):
            say("  Then try 'Call a downstream API' (Graph /me) and 'Sign out'.")
        say()
        say("  demo OP    %s" % info["authority"])
        say("  Graph      %s/me" % info["graph"])
    else:
        say("  Sign in with an account of your tenant (%s)." % info["authority"])
        if not info.get("scope"):
            say("  .env has no SCOPE: 'Call a downstream API' needs SCOPE=User.Read.")
        say("  .env       %s" % info["envfile"])
    say("  app        %s  (direct, without gatehouse)" % info["app"])
    say("  config     %s" % os.path.relpath(info["conf"], ROOT))
    say("  logs       %s/" % os.path.relpath(LOGS, ROOT))
    say("  Press Ctrl-C to stop.")
    say("=" * 72)


def main():
    ap = argparse.ArgumentParser(description="Run the gatehouse demo.")
    ap.add_argument("--tenant", action="store_true",
                    help="use the real tenant in .env instead of the local OP")
    ap.add_argument("--check-only", action="store_true",
                    help="start everything, probe it, print OK and stop")
    ap.add_argument("--no-gateway", action="store_true",
                    help="do not start build/gatehouse, only its neighbours")
    ap.add_argument("--upstream", metavar="URL",
                    help="put gatehouse in front of your own app at URL "
                         "(http://HOST:PORT) instead of examples/upstream-app")
    ap.add_argument("--port", type=int, default=0,
                    help="gatehouse's port for the local demo (default 8080 "
                         "when free, else any free port)")
    args = ap.parse_args()

    os.makedirs(LOGS, exist_ok=True)
    demo = Demo()
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        if args.tenant:
            info, cwd = start_tenant(demo, args)
        else:
            info, cwd = start_local(demo, args)
        gw = start_gatehouse(demo, info, cwd, quiet=args.check_only,
                             skip=args.no_gateway)
        if args.check_only:
            problems = check(info, gw, args.tenant)
            if problems:
                for p in problems:
                    say("demo: FAIL " + p)
                rc = 1
            else:
                say("OK" + ("" if gw else " (without gatehouse)"))
            return rc
        banner(info, gw, args.tenant)
        while not stop.wait(0.5):
            for c in demo.children:
                if not c.alive():
                    say("demo: %s (pid %d) exited with %s; stopping the demo"
                        % (c.name, c.pid, c.p.returncode))
                    if c.log_path:
                        say(c.tail())
                    return 1
        say("\ndemo: stopping")
        return 0
    except RuntimeError as e:
        say("demo: %s" % e)
        return 1
    finally:
        demo.stop_all()


if __name__ == "__main__":
    sys.exit(main())
