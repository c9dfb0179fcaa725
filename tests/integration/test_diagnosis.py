# SPDX-License-Identifier: ISC
"""What the log tells an operator, through the real binary: provider
failures with their URL and cause (once per change, and the recovery),
access lines naming the user, the route line and the criterion that
refused, and one rate-limited line for a refused return URL or a session
cookie that names no session.  Also identity on anonymous routes and
same-origin absolute return URLs (the sample's public page)."""
import os
import re
import sys
import time

import pytest
import requests

from conftest import PY, ROOT, Gatehouse, Proc, free_port, wait_file
from op_client import OP
from signin import (authorize, begin_login, complete, echo_headers,
                    gateway_lines, principal, query, sign_in, start_gateway)


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def conf_line(g, text):
    """The 1-based line of the config file that reads `text`."""
    with open(g.conf) as f:
        for i, line in enumerate(f, 1):
            if line.strip() == text:
                return i
    raise AssertionError("no line %r in %s" % (text, g.conf))


def access_lines(g, path):
    return [l for l in g.log().splitlines()
            if " access " in l and 'path="%s"' % path in l]


def wait_access(g, path, n=1, timeout=5.0):
    """The access lines for path once there are n (they are buffered up
    to the worker's flush timer)."""
    end = time.time() + timeout
    while True:
        lines = access_lines(g, path)
        if len(lines) >= n or time.time() > end:
            return lines
        time.sleep(0.05)


# -- provider failures -----------------------------------------------------
def test_provider_dns_failure_names_url_and_curl_text_once(tmp, upstream):
    """A DNS failure says so, with the URL fetched, and the retries while
    it stays the same add no line."""
    port = free_port()
    g = Gatehouse(tmp, [
        "upstream = " + upstream.url,
        "oidc_issuer = https://nosuch.invalid/tenant",
        "client_id = x", "client_secret = y",
        "redirect_uri = http://127.0.0.1:%d/.auth/callback" % port,
        "session_store = %s/sessions" % tmp,
        "session_key_file = %s/session.key" % tmp,
        "workers = 1",
        "route /* allow anonymous",
    ], port=port)
    m = g.loggrep(r'provider_error what=discovery reason="([^"]*)" '
                  r'kind=(\w+) url="([^"]*)"', timeout=10)
    assert m, g.log()
    assert "resolve" in m.group(1).lower(), m.group(0)
    assert m.group(3) == ("https://nosuch.invalid/tenant/.well-known/"
                          "openid-configuration")
    # Retries after 1 s and 2 s fail the same way: still one line.
    time.sleep(3.5)
    assert g.log().count("provider_error") == 1, g.log()


def test_provider_failure_then_recovery(op, tmp, upstream):
    port = free_port()
    op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % port])
    op.fault("discovery_down", sticky=True)
    g = Gatehouse(tmp, gateway_lines(op, tmp, port, upstream.url),
                  port=port)
    m = g.loggrep(r'provider_error what=discovery reason="answered HTTP '
                  r'(\d+)" kind=http url="([^"]*)"', timeout=10)
    assert m, g.log()
    assert m.group(2) == op.authority + "/v2.0/.well-known/openid-configuration"
    end = time.time() + 10
    while op.counter("discovery") < 3 and time.time() < end:
        time.sleep(0.1)
    assert op.counter("discovery") >= 3
    assert g.log().count("provider_error") == 1, g.log()
    op.clear_faults()
    assert g.loggrep(r"provider_recovered issuer=\S+ after_failures=\d+",
                     timeout=15), g.log()
    assert g.loggrep(r"provider ready worker=1", timeout=5)


# -- access lines ----------------------------------------------------------
ROUTES = ["route /public/* allow anonymous",
          "route /admin/* allow role:Admin role:Ops",
          "route /closed/* deny",
          "route /* allow authenticated"]


def test_access_line_user_route_and_denial(op, tmp, upstream):
    op.user("alice@contoso.com", roles=["Reader"])
    g = start_gateway(op, tmp, upstream, routes=ROUTES)
    s, _ = sign_in(g, "alice@contoso.com", "/private")
    r = s.get(g.url + "/private/page", timeout=5)
    assert r.status_code == 200
    sub = {c["typ"]: c["val"]
           for c in principal(echo_headers(r))["claims"]}["sub"]
    line = wait_access(g, "/private/page")[0]
    assert ' user="%s"' % sub in line, line
    assert " route=%d " % conf_line(g, ROUTES[3]) in line, line
    assert re.search(r" up_ms=\d+\.\d ms=", line), line
    assert "alice" not in line  # the sub, never a name by default
    # A denial names the criterion that failed; no upstream, no up_ms.
    r = s.get(g.url + "/admin/x", timeout=5)
    assert r.status_code == 403
    line = wait_access(g, "/admin/x")[0]
    assert " deny=role:Admin|role:Ops" in line, line
    assert " route=%d " % conf_line(g, ROUTES[1]) in line, line
    assert "up_ms" not in line, line
    r = requests.get(g.url + "/closed/x", timeout=5)
    assert r.status_code == 403
    line = wait_access(g, "/closed/x")[0]
    assert " deny=route" in line and "user=" not in line, line
    # A request gatehouse answers itself carries no up_ms placeholder.
    r = requests.get(g.url + "/.auth/healthz", timeout=5)
    line = wait_access(g, "/.auth/healthz")[0]
    assert "up_ms" not in line, line


@pytest.mark.parametrize("mode", ["name", "off"])
def test_access_line_log_user(op, tmp, upstream, mode):
    g = start_gateway(op, tmp, upstream, extra=["log_user = " + mode])
    s, _ = sign_in(g, "alice@contoso.com", "/private")
    assert s.get(g.url + "/private/x", timeout=5).status_code == 200
    line = wait_access(g, "/private/x")[0]
    if mode == "name":
        assert ' user="alice@contoso.com"' in line, line
    else:
        assert "user=" not in line, line


def test_bad_session_cookie_one_line_rate_limited(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, extra=["workers = 1"])
    junk = "Zm9yZ2VkLWNvb2tpZS12YWx1ZQ"
    unknown = "A" * 43
    for value in (junk, unknown, junk, junk):
        r = requests.get(g.url + "/private", allow_redirects=False,
                         cookies={"gatehouse": value}, timeout=5)
        assert r.status_code == 302
    m = g.loggrep(r"session_cookie_rejected id=\w+ client=\S+ "
                  r'reason="malformed \(not a session id\)" suppressed=0')
    assert m, g.log()
    time.sleep(0.3)
    log = g.log()
    assert log.count("session_cookie_rejected") == 1, log
    assert junk not in log and unknown not in log


def test_refused_return_url_logged_without_query(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    r = requests.get(g.url + "/.auth/login", params={
        "post_login_redirect_uri": "https://evil.example/x?secret=s3"},
        allow_redirects=False, timeout=5)
    assert r.status_code == 302
    m = g.loggrep(r'return_url_refused id=\w+ client=\S+ '
                  r'url="https://evil.example/x" suppressed=0')
    assert m, g.log()
    assert "s3" not in g.log()


# -- identity on anonymous routes -----------------------------------------
FORGED = {"X-Forwarded-User": "mallory", "X-MS-CLIENT-PRINCIPAL-NAME":
          "mallory", "X-MS-CLIENT-PRINCIPAL": "e30="}


def test_anonymous_route_forwards_identity_of_valid_session(
        op, tmp, upstream):
    g = start_gateway(op, tmp, upstream,
                      extra=["forward_access_token = on"])
    s, _ = sign_in(g, "alice@contoso.com", "/private")
    r = s.get(g.url + "/public/home", headers=FORGED, timeout=5,
              allow_redirects=False)
    assert r.status_code == 200
    h = echo_headers(r)
    assert h["x-forwarded-user"] == ["alice@contoso.com"]
    assert h["x-ms-client-principal-name"] == ["alice@contoso.com"]
    assert principal(h)["auth_typ"] == "aad"
    # Identity only: no token on a route that never refreshes one.
    assert "x-ms-token-aad-access-token" not in h
    assert "authorization" not in h
    # No session: anonymous, and the forged headers are still dropped.
    r = requests.get(g.url + "/public/home", headers=FORGED, timeout=5)
    assert r.status_code == 200
    h = echo_headers(r)
    assert "x-forwarded-user" not in h and "x-ms-client-principal" not in h
    assert "x-ms-client-principal-name" not in h
    # A cookie that names no session: no identity, no redirect.
    for value in ("B" * 43, "junk"):
        r = requests.get(g.url + "/public/home", headers=FORGED,
                         cookies={"gatehouse": value}, timeout=5,
                         allow_redirects=False)
        assert r.status_code == 200
        h = echo_headers(r)
        assert "x-forwarded-user" not in h, h
        assert "x-ms-client-principal-name" not in h
    # After sign-out the same browser is anonymous there again.
    s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    r = s.get(g.url + "/public/home", timeout=5, allow_redirects=False)
    assert r.status_code == 200 and "x-forwarded-user" not in echo_headers(r)


def test_anonymous_route_identity_off(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, routes=[
        "route /public/* allow anonymous identity=off",
        "route /* allow authenticated"])
    s, _ = sign_in(g, "alice@contoso.com", "/private")
    r = s.get(g.url + "/public/home", headers=FORGED, timeout=5)
    assert r.status_code == 200
    h = echo_headers(r)
    assert "x-forwarded-user" not in h and "x-ms-client-principal" not in h
    assert s.get(g.url + "/private", timeout=5).status_code == 200


# -- same-origin absolute return URLs ---------------------------------------
def login_target(g, target):
    """Sign in through /.auth/login with post_login_redirect_uri=target;
    returns where the callback sends the browser."""
    s = requests.Session()
    url = g.url + "/.auth/login?" + requests.compat.urlencode(
        {"post_login_redirect_uri": target})
    auth = authorize(s, begin_login(g, s, login_url=url), "alice@contoso.com")
    r = complete(g, s, auth)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    return r.headers["Location"]


def test_same_origin_absolute_return_url_accepted(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    assert login_target(g, "http://127.0.0.1:%d/app/page?x=1" % g.port) \
        == "/app/page?x=1"
    assert login_target(g, "http://127.0.0.1:%d/" % g.port) == "/"


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{other}/app",      # another port
    "https://127.0.0.1:{port}/app",      # another scheme
    "http://evil.example/app",           # another host
    "http://127.0.0.1:{port}@evil.example/app",
    "http://127.0.0.1:{port}//evil.example/app",
    "http://127.0.0.1:{port}/.auth/logout",
])
def test_cross_origin_return_url_refused(op, tmp, upstream, target):
    g = start_gateway(op, tmp, upstream)
    t = target.format(port=g.port, other=g.port + 1)
    assert login_target(g, t) == "/"


# -- the sample's public page -------------------------------------------------
def test_sample_home_page_public_and_greets_signed_in_user(op, tmp):
    """examples/upstream-app behind gatehouse with the demo's route table:
    its home page is public, offers "Sign in" to a visitor and greets a
    signed-in user by name."""
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import demo
    finally:
        sys.path.pop(0)
    pf = os.path.join(tmp, "app.port")
    app = Proc([PY, os.path.join(ROOT, "examples", "upstream-app", "app.py"),
                "--port", "0", "--port-file", pf],
               os.path.join(tmp, "app.log"))
    try:
        class App:
            url = "http://127.0.0.1:%s" % wait_file(pf)
        g = start_gateway(op, tmp, App, routes=demo.ROUTES)
        r = requests.get(g.url + "/", allow_redirects=False, timeout=5)
        assert r.status_code == 200, r.status_code
        assert 'href="/.auth/login?post_login_redirect_uri=/"' in r.text
        assert "Hello," not in r.text
        s, r = sign_in(g, "alice@contoso.com", "/call-api")
        r = s.get(g.url + "/", allow_redirects=False, timeout=5)
        assert r.status_code == 200
        assert "Hello, alice@contoso.com" in r.text
        assert 'href="/.auth/logout"' in r.text
        # Sign-in from the public page comes back to it.
        s2 = requests.Session()
        auth = authorize(s2, begin_login(
            g, s2, login_url=g.url + "/.auth/login?post_login_redirect_uri=/"),
            "alice@contoso.com")
        assert complete(g, s2, auth).headers["Location"] == "/"
    finally:
        app.stop()
