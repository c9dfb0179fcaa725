# SPDX-License-Identifier: ISC
"""Forward-auth: Debian's nginx (auth_request) in front of the echo
upstream, with build/gatehouse answering GET /.auth/verify.

nginx runs examples/nginx/nginx.conf.example itself (its three addresses
replaced by free ports) and gatehouse runs with the trusted_proxies,
forward_access_token and route lines of examples/nginx/gateway.conf, so
the example is what is tested.  Every server binds 127.0.0.1 on a free
port, is started here and is stopped by its PID."""
import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from conftest import (BIN, Gatehouse, Proc, Upstream, free_port, raw_request,
                      wait_port)
from op_client import (OP, full_sign_in, read_auth_response, _with_param,
                       verify_jwt)
from signin import sign_in, start_gateway

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
EXAMPLE = os.path.join(ROOT, "examples", "nginx")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

# The addresses nginx.conf.example is written with.
EX_LISTEN = "listen 127.0.0.1:8080;"
EX_GATEHOUSE = "server 127.0.0.1:4180;"
EX_APP = "server 127.0.0.1:3000;"
# gateway.conf keys the test takes from the example as they are.
EX_KEYS = ("trusted_proxies", "forward_access_token", "forward_auth_tokens",
           "route")

IDENTITY = ("x-forwarded-user", "x-forwarded-email",
            "x-ms-client-principal-name", "x-ms-client-principal-id",
            "x-ms-client-principal-idp", "x-ms-client-principal",
            "x-auth-request-user", "x-auth-request-email",
            "x-ms-token-aad-access-token", "x-auth-request-access-token")
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FORGED = {
    "X-Forwarded-User": "mallory@evil.example",
    "X-Forwarded-Email": "mallory@evil.example",
    "X-MS-CLIENT-PRINCIPAL-NAME": "mallory@evil.example",
    "X-MS-CLIENT-PRINCIPAL-ID": "00000000-0000-0000-0000-000000000bad",
    "X-MS-CLIENT-PRINCIPAL-IDP": "evil",
    "X-MS-CLIENT-PRINCIPAL": base64.b64encode(
        b'{"auth_typ":"aad","claims":[]}').decode(),
    "X-Auth-Request-User": "mallory@evil.example",
    "X-Auth-Request-Email": "mallory@evil.example",
    "X-MS-TOKEN-AAD-ACCESS-TOKEN": "forged.token.value",
    "X-Auth-Request-Access-Token": "forged.token.value",
    # And an attempt to make verify judge another (anonymous) path.
    "X-Forwarded-Uri": "/public/x",
    "X-Original-URI": "/public/x",
    "X-Forwarded-Method": "GET",
}


def render_nginx(tmp, nginx_port, gh_port, app_port):
    """The example with its addresses replaced, inside a minimal main
    configuration whose pid file, logs and temp files live in tmp."""
    with open(os.path.join(EXAMPLE, "nginx.conf.example")) as f:
        site = f.read()
    for old, new in ((EX_LISTEN, "listen 127.0.0.1:%d;" % nginx_port),
                     (EX_GATEHOUSE, "server 127.0.0.1:%d;" % gh_port),
                     (EX_APP, "server 127.0.0.1:%d;" % app_port)):
        assert site.count(old) == 1, "example lost %r" % old
        site = site.replace(old, new)
    site_path = os.path.join(tmp, "site.conf")
    with open(site_path, "w") as f:
        f.write(site)
    # examples/nginx/foreground.conf, the README's way to run nginx
    # without systemd, with its run-time directory in tmp.
    with open(os.path.join(EXAMPLE, "foreground.conf")) as f:
        main = f.read()
    assert main.count("/tmp/gatehouse-nginx") >= 7, "foreground.conf moved"
    assert main.count("include nginx.conf.example;") == 1
    main = main.replace("/tmp/gatehouse-nginx", tmp)
    main = main.replace("include nginx.conf.example;",
                        "include %s;" % site_path)
    main = main.replace("error_log stderr notice;",
                        "error_log %s/nginx-error.log info;" % tmp)
    main = main.replace("access_log /dev/stdout;",
                        "access_log %s/nginx-access.log;" % tmp)
    # As root the workers would otherwise switch to nobody, who cannot
    # enter the private temporary directory.
    if os.geteuid() == 0:
        main = "user root root;\n" + main
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(main)
    return conf


def example_gateway_lines():
    out = []
    with open(os.path.join(EXAMPLE, "gateway.conf")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and \
                    line.split()[0] in EX_KEYS:
                out.append(line)
    assert any(l.startswith("trusted_proxies") for l in out)
    assert any(l.startswith("route /admin/* allow role:Admin") for l in out)
    return out


def gateway_lines(op, tmp, name, callback, extra):
    return [
        "authority = " + op.authority,
        "client_id = " + op.client_id,
        "client_secret = " + op.client_secret,
        "redirect_uri = " + callback,
        "session_store = " + os.path.join(tmp, name + "-sessions"),
        "session_key_file = " + os.path.join(tmp, name + "-session.key"),
        "scopes = User.Read",
    ] + list(extra)


class Stack:
    pass


@pytest.fixture(scope="module")
def stack():
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    st = Stack()
    tmpdir = tempfile.TemporaryDirectory(prefix="gh-fwa-")
    tmp = st.tmp = tmpdir.name
    started = []
    try:
        st.op = OP()
        st.upstream = Upstream(tmp)
        started.append(st.upstream)
        st.nginx_port = free_port()
        st.url = "http://127.0.0.1:%d" % st.nginx_port
        callback = st.url + "/.auth/callback"
        st.op.config(redirect_uris=[callback])
        st.gw = Gatehouse(tmp, ["upstream = " + st.upstream.url] +
                          gateway_lines(st.op, tmp, "gw", callback,
                                        example_gateway_lines()),
                          name="gw")
        started.append(st.gw)
        # The same routes, but nobody's forwarded headers are believed.
        st.untrusted = Gatehouse(
            tmp, ["upstream = " + st.upstream.url] +
            gateway_lines(st.op, tmp, "untrusted", callback,
                          ["trusted_proxies = 10.9.9.9"] +
                          [l for l in example_gateway_lines()
                           if not l.startswith("trusted_proxies")]),
            name="untrusted")
        started.append(st.untrusted)
        for g in (st.gw, st.untrusted):
            assert g.loggrep(r"provider ready", timeout=10), g.log()
        conf = render_nginx(tmp, st.nginx_port, st.gw.port,
                            st.upstream.port)
        st.nginx_err = os.path.join(tmp, "nginx-error.log")
        st.nginx = Proc([NGINX, "-e", st.nginx_err, "-p", tmp + "/",
                         "-c", conf],
                        os.path.join(tmp, "nginx.out"))
        started.append(st.nginx)
        try:
            wait_port(st.nginx_port, st.nginx.p)
        except Exception:
            raise AssertionError("nginx did not start:\n%s\n%s" % (
                st.nginx.log(), _read(st.nginx_err)))
        yield st
    finally:
        errors = []
        for s in reversed(started):
            if isinstance(s, Gatehouse):
                if not s.stopped:
                    rc = s.stop()
                    if rc != 0:
                        errors.append("gatehouse exited %s:\n%s" % (
                            rc, s.log()[-3000:]))
            else:
                s.stop()
        if getattr(st, "op", None) is not None:
            st.op.stop()
        tmpdir.cleanup()
        assert not errors, "\n".join(errors)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def diag(st):
    """What went wrong, from the logs (printed: pytest shows captured
    output in full, an assertion message only in part)."""
    text = "nginx:\n%s\ngatehouse:\n%s" % (_read(st.nginx_err)[-4000:],
                                           st.gw.log()[-4000:])
    print(text)
    return text


def browser():
    s = requests.Session()
    s.headers["Accept"] = HTML
    return s


def echo_headers(r):
    out = {}
    for k, v in r.json()["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def upstream_requests(st):
    # /stats counts itself.
    return st.upstream.stats()["requests"]


def login_target(location):
    """The post_login_redirect_uri a sign-in URL carries."""
    parts = urlsplit(location)
    assert parts.path == "/.auth/login", location
    return parse_qs(parts.query)["post_login_redirect_uri"][0]


def nginx_sign_in(st, user, path="/private"):
    """A browser walks through nginx: path -> 302 sign-in URL ->
    gatehouse's /.auth/login -> the OP -> /.auth/callback -> back."""
    s = browser()
    r = s.get(st.url + path, allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, diag(st))
    assert login_target(r.headers["Location"]) == path
    r = s.get(urljoin(st.url, r.headers["Location"]), allow_redirects=False,
              timeout=10)
    assert r.status_code == 302, (r.status_code, diag(st))
    authorize_url = r.headers["Location"]
    assert authorize_url.startswith(st.op.base), authorize_url
    assert parse_qs(urlsplit(authorize_url).query)["redirect_uri"] == \
        [st.url + "/.auth/callback"]
    auth = read_auth_response(s.get(
        _with_param(authorize_url, "login_as", user), allow_redirects=False,
        timeout=10))
    assert auth["redirect_uri"] == st.url + "/.auth/callback"
    r = s.get(auth["location"], allow_redirects=False, timeout=15)
    assert r.status_code == 302, (r.status_code, diag(st))
    assert r.headers["Location"] == path
    assert s.cookies.get("gatehouse"), r.headers
    return s


def test_browser_signs_in_through_nginx(stack):
    st = stack
    # Not signed in, with a forged target: still sent to sign in, and the
    # app never sees the request.
    before = upstream_requests(st)
    r = browser().get(st.url + "/private/page?x=1&y=a%20b",
                      headers=FORGED, allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, diag(st))
    assert login_target(r.headers["Location"]) == "/private/page?x=1&y=a%20b"
    # The original URI is escaped into the query, not spliced in.
    assert "&y=" not in r.headers["Location"]
    assert upstream_requests(st) == before + 1

    s = nginx_sign_in(st, "alice@contoso.com", "/private/page?x=1")
    r = s.get(st.url + "/private/page?x=1", headers=FORGED, timeout=10)
    assert r.status_code == 200, (r.status_code, diag(st))
    # The app gets the URI gatehouse judged, as the client sent it.
    assert r.json()["path"] == "/private/page?x=1"
    h = echo_headers(r)
    for name in ("x-forwarded-user", "x-forwarded-email",
                 "x-ms-client-principal-name", "x-auth-request-user",
                 "x-auth-request-email"):
        assert h.get(name) == ["alice@contoso.com"], (name, h.get(name))
    assert h["x-ms-client-principal-idp"] == ["aad"]
    principal = json.loads(base64.b64decode(h["x-ms-client-principal"][0]))
    claims = {c["typ"]: c["val"] for c in principal["claims"]}
    assert claims["preferred_username"] == "alice@contoso.com"
    assert h["x-ms-client-principal-id"] == [claims["oid"]]
    # forward_access_token = on (gateway.conf): the real, signed token,
    # under both names, and never the forged one.
    token = h["x-ms-token-aad-access-token"]
    assert len(token) == 1 and token[0] != FORGED[
        "X-MS-TOKEN-AAD-ACCESS-TOKEN"]
    assert h["x-auth-request-access-token"] == token
    verify_jwt(token[0], st.op.jwks(), issuer=st.op.issuer)
    # The verify-only headers stop at nginx.
    for name in ("x-forwarded-uri", "x-original-uri", "x-forwarded-method"):
        assert name not in h, (name, h[name])
    # gatehouse's own endpoints answer through nginx.
    me = s.get(st.url + "/.auth/me", timeout=10)
    assert me.status_code == 200 and \
        me.json()["user_id"] == "alice@contoso.com"
    # Nothing secret in gatehouse's log.
    assert s.cookies.get("gatehouse") not in st.gw.log()
    assert st.op.client_secret not in st.gw.log()


def test_admin_route_needs_the_role(stack):
    st = stack
    s = nginx_sign_in(st, "carol@contoso.com", "/admin/x")
    before = upstream_requests(st)
    r = s.get(st.url + "/admin/x", timeout=10)
    assert r.status_code == 403, (r.status_code, diag(st))
    # A forged target does not turn the answer into a yes.
    r = s.get(st.url + "/admin/x", headers=FORGED, timeout=10)
    assert r.status_code == 403, (r.status_code, diag(st))
    # Nor does a path that gatehouse normalises onto /admin/.
    r = s.get(st.url + "/public/%2e%2e/admin/x", timeout=10)
    assert r.status_code == 403, r.status_code
    assert upstream_requests(st) == before + 1
    # Signed in as someone else, still allowed elsewhere.
    assert s.get(st.url + "/private", timeout=10).status_code == 200

    st.op.user("dave@contoso.com", roles=["Admin"])
    s = nginx_sign_in(st, "dave@contoso.com", "/admin/x")
    r = s.get(st.url + "/admin/x", headers=FORGED, timeout=10)
    assert r.status_code == 200, (r.status_code, diag(st))
    assert echo_headers(r)["x-forwarded-user"] == ["dave@contoso.com"]


def test_denied_page_is_gatehouses(stack):
    """nginx's error_page 403 shows gatehouse's own denial page (the same
    decision asked again), not nginx's bare 403, and leaks no identity or
    token header to the browser."""
    st = stack
    s = nginx_sign_in(st, "erin@contoso.com", "/admin/y")
    before = upstream_requests(st)
    for method in ("GET", "POST"):
        r = s.request(method, st.url + "/admin/y", timeout=10)
        assert r.status_code == 403, (method, r.status_code, diag(st))
        assert "<center>nginx" not in r.text, r.text[:400]
        assert "text/html" in r.headers.get("Content-Type", ""), r.headers
        assert "gatehouse" in r.text.lower() or "denied" in r.text.lower(), \
            r.text[:400]
        for h in r.headers:
            assert not h.lower().startswith(("x-ms-", "x-forwarded-",
                                             "x-auth-request-")), h
    # The app never saw the denied requests.
    assert upstream_requests(st) == before + 1


def test_anonymous_routes_and_api_clients(stack):
    st = stack
    # allow anonymous: through, with no identity header at all, forged
    # ones removed.
    r = requests.get(st.url + "/public/x", headers=FORGED, timeout=10)
    assert r.status_code == 200, (r.status_code, diag(st))
    h = echo_headers(r)
    for name in IDENTITY:
        assert name not in h, (name, h[name])
    # The method reaches gatehouse: GET /docs/* is anonymous, POST is not
    # (and a POST is never redirected to a sign-in page).
    assert requests.get(st.url + "/docs/a", timeout=10).status_code == 200
    before = upstream_requests(st)
    r = browser().post(st.url + "/docs/a", data=b"x" * 1000,
                       allow_redirects=False, timeout=10)
    assert r.status_code == 401, (r.status_code, diag(st))
    assert upstream_requests(st) == before + 1
    # An API client is told 401 (JSON), not redirected.
    r = requests.get(st.url + "/private",
                     headers={"Accept": "application/json"},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 401 and "Location" not in r.headers
    assert r.json()["error"] == "unauthenticated"
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="gatehouse"'
    r = requests.get(st.url + "/private", allow_redirects=False,
                     headers={"Accept": HTML, "X-Requested-With": "fetch"},
                     timeout=10)
    assert r.status_code == 401
    # The verify location is internal: clients cannot reach it via nginx.
    r = requests.get(st.url + "/.auth/verify", headers=FORGED, timeout=10)
    assert r.status_code == 404


def test_verify_believes_forwarded_headers_only_from_trusted_proxies(stack):
    st = stack
    fwd = {"X-Forwarded-Method": "GET", "X-Forwarded-Host": "app.example",
           "X-Forwarded-Proto": "https"}
    # Control: from a trusted peer (127.0.0.1 is in the example's
    # trusted_proxies) the headers name the request judged.
    r = requests.get(st.gw.url + "/.auth/verify",
                     headers=dict(fwd, **{"X-Forwarded-Uri": "/public/x"}),
                     timeout=10)
    assert r.status_code == 200, (r.status_code, diag(st))
    for name in IDENTITY:
        assert name not in {k.lower() for k in r.headers}, name
    r = requests.get(st.gw.url + "/.auth/verify",
                     headers=dict(fwd,
                                  **{"X-Original-URI": "/private?a=1&b=2"}),
                     timeout=10)
    assert r.status_code == 401, (r.status_code, diag(st))
    assert login_target(r.headers["X-Auth-Redirect"]) == "/private?a=1&b=2"
    # (The body never reaches the client through nginx; gatehouse picks
    # HTML or JSON by the forwarded Accept like its other error pages.)
    r = requests.get(st.gw.url + "/.auth/verify",
                     headers=dict(fwd, **{"X-Original-URI": "/private",
                                          "Accept": "application/json"}),
                     timeout=10)
    assert r.status_code == 401
    assert r.headers["Content-Type"].startswith("application/json")
    r.json()
    s = nginx_sign_in(st, "erin@contoso.com")
    cookie = {"Cookie": "gatehouse=" + s.cookies.get("gatehouse")}
    r = requests.get(st.gw.url + "/.auth/verify",
                     headers=dict(fwd, **cookie,
                                  **{"X-Original-URI": "/private"}),
                     timeout=10)
    assert r.status_code == 200, (r.status_code, diag(st))
    assert r.headers["X-Forwarded-User"] == "erin@contoso.com"
    assert r.headers["X-Auth-Request-User"] == "erin@contoso.com"
    r = requests.get(st.gw.url + "/.auth/verify",
                     headers=dict(fwd, **cookie,
                                  **{"X-Original-URI": "/admin/x"}),
                     timeout=10)
    assert r.status_code == 403, (r.status_code, diag(st))
    assert "/admin/*" in r.text

    # From an untrusted peer the same headers are ignored: no target, no
    # yes, whatever they name.
    for hdr in ("X-Forwarded-Uri", "X-Original-URI"):
        r = requests.get(st.untrusted.url + "/.auth/verify",
                         headers=dict(fwd, **{hdr: "/public/x"}), timeout=10)
        assert r.status_code == 403, (hdr, r.status_code, r.text[:300])
        for name in IDENTITY:
            assert name not in {k.lower() for k in r.headers}, name
    r = requests.get(st.untrusted.url + "/.auth/verify", timeout=10)
    assert r.status_code == 403, (r.status_code, r.text[:300])


def test_example_gateway_conf_is_valid():
    """examples/nginx/gateway.conf as a user runs it (with the .env
    variables set) passes --check."""
    env = dict(os.environ, AUTHORITY="https://contoso.ciamlogin.com/"
               "contoso.onmicrosoft.com", CLIENT_ID="11111111-2222-3333-"
               "4444-555555555555", CLIENT_SECRET="s3cret")
    for k in list(env):
        if k.startswith("GATEHOUSE_") and k not in ("GATEHOUSE_BIN",
                                                    "GATEHOUSE_SANITIZED"):
            del env[k]
    with tempfile.TemporaryDirectory(prefix="gh-fwa-") as d:
        r = subprocess.run([BIN, "-c", os.path.join(EXAMPLE, "gateway.conf"),
                            "--check"], env=env, cwd=d, capture_output=True,
                           text=True, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "configuration OK" in r.stdout + r.stderr


# -- forward-auth agrees with proxy mode -------------------------------------
# Every method gatehouse proxies: the standard ones, WebDAV's (RFC 4918,
# 3253, 5323, 3744, 5842) and a few invented upper-case tokens; then the two
# it never serves.
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
           "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK",
           "UNLOCK", "REPORT", "SEARCH", "ACL", "BIND", "MKCALENDAR",
           "FROB", "PURGE", "X-CUSTOM", "M-SEARCH", "BREW2", "A_B"]
NOT_SERVED = ["CONNECT", "TRACE"]
# Method-specific allows and denies in front of looser rules, so a method
# matched the wrong way falls through to a different verdict.
AGREE_ROUTES = [
    "route /anon/* allow anonymous",
    "route MKCOL,PROPFIND,FROB /dav/* deny",
    "route /dav/* allow anonymous",
    "route PUT,DELETE,MOVE,COPY,PROPPATCH /files/* allow role:Admin",
    "route /files/* allow authenticated",
    "route GET,HEAD /docs/* allow anonymous",
    "route /docs/* allow authenticated",
    "route LOCK,UNLOCK,X-CUSTOM,M-SEARCH /locks/* allow anonymous",
    "route /locks/* deny",
    "route /api/* bearer",
    "route POST,REPORT,SEARCH,BREW2 /closed/* allow anonymous",
    "route /closed/* deny",
    "route /* allow authenticated",
]
AGREE_PATHS = ["/anon/x", "/dav/x", "/files/x", "/docs/x", "/locks/x",
               "/api/x", "/closed/x", "/other?q=1"]


def _ask(port, method, path, headers):
    """One request on its own connection; (status, headers dict)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers=headers)
        r = c.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def _proxy_verdict(status):
    if 200 <= status < 300:
        return "allow"
    return {302: "login", 401: "login", 403: "deny", 405: "refused"}.get(
        status, "status %d" % status)


def _verify_verdict(status):
    if 200 <= status < 300:
        return "allow"
    return {401: "login", 403: "deny", 405: "refused"}.get(
        status, "status %d" % status)


@pytest.fixture
def agree(tmp, upstream):
    o = OP()
    o.config(access_token_audience=o.client_id)
    o.user("ada@contoso.com", roles=["Admin"])
    g = start_gateway(o, tmp, upstream, ["trusted_proxies = 127.0.0.1"],
                      routes=AGREE_ROUTES)
    yield o, g
    o.stop()


def test_verify_agrees_with_proxy_mode_for_every_method(agree, upstream):
    """For every method x route x who asks, /.auth/verify gives the
    verdict proxy mode gives: a route naming MKCOL or LOCK matches in both
    modes, never falling through to a looser rule in one."""
    op, g = agree
    user, _ = sign_in(g, "bob@contoso.com")
    admin, _ = sign_in(g, "ada@contoso.com")
    _, tok = full_sign_in(op, "bob@contoso.com")
    who = {
        "signed-out": {},
        "user": {"Cookie": "gatehouse=" + user.cookies.get("gatehouse")},
        "admin": {"Cookie": "gatehouse=" + admin.cookies.get("gatehouse")},
        "bearer": {"Authorization": "Bearer " + tok["access_token"]},
    }
    seen, mismatches = set(), []
    for method in METHODS + NOT_SERVED:
        for path in AGREE_PATHS:
            for name, hdrs in who.items():
                ps, _ = _ask(g.port, method, path, hdrs)
                vs, _ = _ask(g.port, "GET", "/.auth/verify", dict(
                    hdrs, **{"X-Forwarded-Method": method,
                             "X-Forwarded-Uri": path,
                             "X-Forwarded-Host": "app.example"}))
                p, v = _proxy_verdict(ps), _verify_verdict(vs)
                seen.add(p)
                if p != v:
                    mismatches.append((method, path, name, ps, vs))
    assert not mismatches, mismatches[:20]
    # The table exercises every verdict.
    assert seen == {"allow", "login", "deny", "refused"}, seen
    # The method-specific rules did decide (not only the catch-alls).
    assert _ask(g.port, "MKCOL", "/dav/x", {})[0] == 403
    assert _ask(g.port, "GET", "/dav/x", {})[0] == 200
    assert _ask(g.port, "LOCK", "/locks/x", {})[0] == 200
    assert _ask(g.port, "GET", "/locks/x", who["user"])[0] == 403


def test_verify_takes_its_own_method_without_x_forwarded_method(agree):
    """nginx's auth_request and Envoy's ext_authz send the original
    method: without X-Forwarded-Method that is the one judged."""
    _, g = agree
    fwd = {"X-Forwarded-Uri": "/dav/x"}
    assert _ask(g.port, "MKCOL", "/.auth/verify", fwd)[0] == 403
    assert _ask(g.port, "PROPPATCH", "/.auth/verify", fwd)[0] == 200
    assert _ask(g.port, "GET", "/.auth/verify", fwd)[0] == 200
    # The header, when present, wins over the verify request's own.
    assert _ask(g.port, "GET", "/.auth/verify",
                dict(fwd, **{"X-Forwarded-Method": "MKCOL"}))[0] == 403


def test_verify_refuses_ambiguous_or_invalid_targets(agree):
    """Two URI headers that disagree (one of them is the client's), a
    header repeated with another value, or a method proxy mode would not
    take: 400, never a guess.  CONNECT and TRACE: 405, as in proxy mode."""
    _, g = agree

    def raw(lines):
        head = "GET /.auth/verify HTTP/1.1\r\nHost: x\r\n" + "".join(
            l + "\r\n" for l in lines) + "Connection: close\r\n\r\n"
        out = raw_request(g.port, head.encode())
        return int(out.split(b" ", 2)[1])

    # Control: either header alone, or both equal, names the request.
    assert raw(["X-Original-URI: /anon/x"]) == 200
    assert raw(["X-Forwarded-Uri: /anon/x"]) == 200
    assert raw(["X-Forwarded-Uri: /anon/x", "X-Original-URI: /anon/x"]) == 200
    # The client adds X-Forwarded-Uri beside nginx's X-Original-URI (or
    # X-Original-URI beside Traefik's X-Forwarded-Uri).
    assert raw(["X-Original-URI: /closed/x",
                "X-Forwarded-Uri: /anon/x"]) == 400
    assert raw(["X-Forwarded-Uri: /closed/x",
                "X-Original-URI: /anon/x"]) == 400
    assert g.loggrep(r'verify id=\w+ result=uri_conflict')
    # Equal after normalisation is not equal: the strings differ.
    assert raw(["X-Forwarded-Uri: /anon/x",
                "X-Original-URI: /anon/./x"]) == 400
    # Repeated, with another value or the same: each of these fields may
    # appear once, so the parser refuses the request before forward-auth
    # reads any copy.
    assert raw(["X-Forwarded-Uri: /closed/x",
                "X-Forwarded-Uri: /anon/x"]) == 400
    assert raw(["X-Original-URI: /anon/x", "X-Original-URI: /anon/x"]) == 400
    assert raw(["X-Forwarded-Method: MKCOL", "X-Forwarded-Method: GET",
                "X-Forwarded-Uri: /dav/x"]) == 400
    assert g.loggrep(r'refused id=\w+ .*status=400 reason="a header field '
                     r'that may appear once is repeated"')
    # Methods proxy mode would not route.
    for m in ("get", "Mkcol", "G/T", "9X", "-X", "GET X", ""):
        assert raw(["X-Forwarded-Method: " + m,
                    "X-Forwarded-Uri: /anon/x"]) == 400, m
    assert g.loggrep(r'verify id=\w+ result=method_invalid')
    for m in NOT_SERVED:
        assert raw(["X-Forwarded-Method: " + m,
                    "X-Forwarded-Uri: /anon/x"]) == 405, m
        assert _ask(g.port, m, "/anon/x", {})[0] == 405
    # No target, or not origin-form.
    assert raw([]) == 400
    assert raw(["X-Forwarded-Uri: http://evil.example/anon/x"]) == 400
    assert raw(["X-Forwarded-Uri: /anon/..%2fclosed"]) == 400


# -- who may ask, and what the answer carries ---------------------------------
def _verify_from(port, source, headers):
    """GET /.auth/verify from the loopback address `source` (Linux routes
    all of 127/8 to lo); (status, headers)."""
    s = socket.socket()
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    head = "GET /.auth/verify HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
    s.sendall(head.encode())
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    lines = out.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    return int(lines[0].split(" ")[1]), {
        l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
        for l in lines[1:]}


def test_forward_auth_peers_is_not_trusted_proxies(tmp, upstream):
    """A peer whose X-Forwarded-* are believed (a TLS terminator) is not
    thereby allowed to ask /.auth/verify: only forward_auth_peers are."""
    o = OP()
    try:
        g = start_gateway(o, tmp, upstream,
                          ["trusted_proxies = 127.0.0.1 127.0.0.2",
                           "forward_auth_peers = 127.0.0.1"],
                          routes=AGREE_ROUTES)
        s, _ = sign_in(g, "bob@contoso.com")
        h = {"X-Forwarded-Uri": "/other", "X-Forwarded-Proto": "https",
             "Cookie": "gatehouse=" + s.cookies.get("gatehouse")}
        st, hdrs = _verify_from(g.port, "127.0.0.1", h)
        assert st == 200 and hdrs["x-forwarded-user"] == "bob@contoso.com"
        st, hdrs = _verify_from(g.port, "127.0.0.2", h)
        assert st == 403, st
        assert "x-forwarded-user" not in hdrs
        assert g.loggrep(r"verify id=\w+ client=127.0.0.2 "
                         r"result=not_forward_auth_peer")
        # Not a trusted proxy at all: refused as before, whatever
        # forward_auth_peers says.
        g.stop()
        g2 = start_gateway(o, tmp, upstream, ["trusted_proxies = 127.0.0.2",
                                              "forward_auth_peers = "
                                              "127.0.0.0/8"],
                           routes=AGREE_ROUTES, name="gw2")
        assert _verify_from(g2.port, "127.0.0.1", h)[0] == 403
        assert g2.loggrep(r"verify id=\w+ client=127.0.0.1 "
                          r"result=untrusted_peer")
        # (The same session store and key: the session holds.)
        st, hdrs = _verify_from(g2.port, "127.0.0.2", h)
        assert st == 200 and hdrs["x-forwarded-user"] == "bob@contoso.com"
    finally:
        o.stop()


TOKEN_HEADERS = ("x-ms-token-aad-access-token", "x-auth-request-access-token",
                 "x-ms-token-aad-expires-on", "authorization")


@pytest.mark.parametrize("tokens", ["default", "off", "on"])
def test_verify_answers_tokens_only_when_asked(tmp, upstream, tokens):
    """With forward_access_token on, the upstream gets the token in proxy
    mode; /.auth/verify's answer carries it only with forward_auth_tokens
    = on, and the identity headers either way."""
    o = OP()
    try:
        extra = ["trusted_proxies = 127.0.0.1", "forward_access_token = on",
                 "forward_authorization = on"]
        if tokens != "default":
            extra.append("forward_auth_tokens = " + tokens)
        g = start_gateway(o, tmp, upstream, extra, routes=AGREE_ROUTES)
        s, _ = sign_in(g, "bob@contoso.com")
        r = s.get(g.url + "/.auth/verify", timeout=10, headers={
            "X-Forwarded-Uri": "/other", "X-Forwarded-Method": "GET"})
        assert r.status_code == 200
        h = {k.lower(): v for k, v in r.headers.items()}
        assert h["x-forwarded-user"] == "bob@contoso.com"
        assert h["x-auth-request-user"] == "bob@contoso.com"
        assert "x-ms-client-principal" in h
        if tokens == "on":
            for name in TOKEN_HEADERS:
                assert name in h, name
            verify_jwt(h["x-ms-token-aad-access-token"], o.jwks(),
                       issuer=o.issuer)
        else:
            for name in TOKEN_HEADERS:
                assert name not in h, name
        # Proxy mode is unchanged: the upstream gets the token.
        r = s.get(g.url + "/other", timeout=10)
        assert r.status_code == 200
        seen = {k.lower() for k, _ in r.json()["headers"]}
        assert "x-ms-token-aad-access-token" in seen
    finally:
        o.stop()
