# SPDX-License-Identifier: ISC
"""Defences that face the browser, through the real binary and the tests'
own OpenID Provider (tests/op):

- referrer-policy-*: the callback's answers and every error page carry
  Referrer-Policy: no-referrer, so the code and state never leave in a
  Referer;
- return-url-own-endpoint-*: a return URL that leads back to gatehouse's
  own endpoints in any percent-encoding becomes "/";
- email-unverified-*: an email the provider marks email_verified: false
  matches no email: criterion and is not sent as X-Forwarded-Email (nor
  used as the user name), unless trust_unverified_email = on;
- logout-cross-site-*: a sign-out another site asked for (a link, an
  auto-posted form) is not carried out; a cross-site GET gets a
  confirmation page whose button POSTs from this site.
- logout-chromium-cross-site-link: the same with Debian's Chromium,
  headless, following a link from another origin.
"""
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urljoin, urlsplit

import pytest
import requests

from conftest import free_port
from op_client import OP
from signin import (authorize, begin_login, complete, echo_headers, query,
                    sign_in, start_gateway)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def header_values(r, name):
    return r.raw.headers.getlist(name)


# -- Referrer-Policy ---------------------------------------------------------
def test_referrer_policy_on_callback_redirect(op, tmp, upstream):
    """The callback's redirect onward (its URL holds the code and state)
    carries exactly one Referrer-Policy: no-referrer."""
    g = start_gateway(op, tmp, upstream)
    s, r = sign_in(g, "alice@contoso.com", "/private/page")
    assert r.headers["Location"] == "/private/page"
    assert header_values(r, "Referrer-Policy") == ["no-referrer"]


def test_referrer_policy_on_callback_error_pages(op, tmp, upstream):
    """A callback the gateway refuses (a page shown at the callback URL)
    and the restart redirect of an unknown state carry it once."""
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    r = s.get(g.url + "/.auth/callback?state=a&state=b&code=c",
              allow_redirects=False, timeout=5)
    assert r.status_code == 400
    assert header_values(r, "Referrer-Policy") == ["no-referrer"]
    r = s.get(g.url + "/.auth/callback?state=" + "x" * 43 + "&code=c",
              allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert header_values(r, "Referrer-Policy") == ["no-referrer"]


@pytest.mark.parametrize("path,status", [
    ("/.auth/nope", 404),
    ("/public/%2e%2e/%2e%2e/x", 400),
])
def test_referrer_policy_on_error_pages(op, tmp, upstream, path, status):
    g = start_gateway(op, tmp, upstream)
    r = requests.get(g.url + path, allow_redirects=False, timeout=5)
    assert r.status_code == status
    assert header_values(r, "Referrer-Policy") == ["no-referrer"]
    r = requests.get(g.url + path, headers={"Accept": "application/json"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == status
    assert header_values(r, "Referrer-Policy") == ["no-referrer"]


# -- return URLs -------------------------------------------------------------
OWN_ENDPOINTS = [
    "/%2Eauth/logout",
    "/%2eauth/logout",
    "/%252Eauth/logout",
    "/%252eauth/logout",
    "/%25252Eauth/logout",
    "/%2525252Eauth/me",
    "/.%2561uth/logout",
    "/.AUTH/logout",
    "/%252EAUTH/logout",
    "/.auth%252Flogout",
    "/.auth;x/logout",
    # Already refused before, by shape: kept as regression cases.
    "/%5C.auth/logout",
    "/%255C.auth/logout",
    "/x/%252E%252E/.auth/logout",
]


def login_to(g, op, s, target, user="alice@contoso.com", prefix="/.auth"):
    login = "%s%s/login?post_login_redirect_uri=%s" % (
        g.url, prefix, quote(target, safe=""))
    auth = authorize(s, begin_login(g, s, login_url=login), user)
    return complete(g, s, auth)


@pytest.mark.parametrize("target", OWN_ENDPOINTS)
def test_return_url_own_endpoint_lands_on_root(op, tmp, upstream, target):
    """After sign-in the browser lands on "/", never on a gatehouse
    endpoint however the return URL is encoded; the session works."""
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    r = login_to(g, op, s, target)
    assert r.status_code == 302, r.text[:300]
    assert r.headers["Location"] == "/", r.headers["Location"]
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 200


def test_return_url_app_paths_kept(op, tmp, upstream):
    """The app's own paths, encoded characters included, still work."""
    g = start_gateway(op, tmp, upstream)
    for target in ("/caf%C3%A9/x?q=a%20b", "/.authors/list",
                   "/docs/.auth/logout"):
        s = requests.Session()
        r = login_to(g, op, s, target)
        assert r.headers["Location"] == target


@pytest.mark.parametrize("target", [
    "/_gh/logout", "/%255Fgh/logout", "/_GH/logout", "/_gh%252Flogout",
])
def test_return_url_own_endpoint_configured_prefix(op, tmp, upstream, target):
    """The configured auth_prefix is what is refused, in any encoding."""
    g = start_gateway(op, tmp, upstream, extra=["auth_prefix = /_gh"])
    s = requests.Session()
    r = login_to(g, op, s, target, prefix="/_gh")
    assert r.status_code == 302, r.text[:300]
    assert r.headers["Location"] == "/", r.headers["Location"]


@pytest.mark.parametrize("target", ["/%252Eauth/logout", "/%2Eauth/login"])
def test_return_url_own_endpoint_after_logout(op, tmp, upstream, target):
    """post_logout_redirect_uri follows the same rule."""
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g)
    r = s.get(g.url + "/.auth/logout",
              params={"post_logout_redirect_uri": target},
              allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert query(r.headers["Location"])["post_logout_redirect_uri"] == \
        g.url + "/"


# -- email_verified ----------------------------------------------------------
EMAIL_ROUTES = [
    "route /mail/* allow email:*@contoso.com",
    "route /* allow authenticated",
]


@pytest.mark.parametrize("verified", [False, "false"])
def test_email_unverified_not_matched_nor_sent(op, tmp, upstream, verified):
    g = start_gateway(op, tmp, upstream, routes=EMAIL_ROUTES)
    op.user("mallory@contoso.com", email_verified=verified,
            preferred_username=None)
    s, _ = sign_in(g, "mallory@contoso.com", "/other")
    assert s.get(g.url + "/mail/inbox", timeout=5).status_code == 403
    r = s.get(g.url + "/other", timeout=5)
    assert r.status_code == 200
    h = echo_headers(r)
    assert "x-forwarded-email" not in h, h
    # Nor is it the user name shown upstream: the sub is.
    assert "@" not in h["x-forwarded-user"][0], h["x-forwarded-user"]
    assert h["x-ms-client-principal-name"] == h["x-forwarded-user"]


@pytest.mark.parametrize("verified", [True, "true", None])
def test_email_verified_or_absent_as_before(op, tmp, upstream, verified):
    g = start_gateway(op, tmp, upstream, routes=EMAIL_ROUTES)
    op.user("alice@contoso.com", email_verified=verified)
    s, _ = sign_in(g, "alice@contoso.com", "/other")
    assert s.get(g.url + "/mail/inbox", timeout=5).status_code == 200
    h = echo_headers(s.get(g.url + "/other", timeout=5))
    assert h["x-forwarded-email"] == ["alice@contoso.com"]


def test_email_unverified_trusted_by_key(op, tmp, upstream):
    """trust_unverified_email = on restores the old behaviour (the old
    binary does not know the key)."""
    g = start_gateway(op, tmp, upstream, routes=EMAIL_ROUTES,
                      extra=["trust_unverified_email = on"])
    op.user("mallory@contoso.com", email_verified=False)
    s, _ = sign_in(g, "mallory@contoso.com", "/other")
    assert s.get(g.url + "/mail/inbox", timeout=5).status_code == 200
    h = echo_headers(s.get(g.url + "/other", timeout=5))
    assert h["x-forwarded-email"] == ["mallory@contoso.com"]


# -- sign-out asked for by another site --------------------------------------
def assert_signed_in(g, s):
    r = s.get(g.url + "/.auth/me", timeout=5)
    assert r.status_code == 200, r.status_code


def assert_signed_out_at_provider(g, op, s, r):
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert r.headers["Location"].startswith(op.endpoint("logout") + "?")
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401


def confirm_form_action(r):
    m = re.search(r'<form method="post" action="([^"]*)">', r.text)
    assert m, r.text
    return m.group(1).replace("&amp;", "&")


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_logout_cross_site_get_asks(op, tmp, upstream, site):
    """A top-level navigation from another site gets a confirmation page;
    the session stays, here and at the provider."""
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g)
    before = op.counter("logout")
    r = s.get(g.url + "/.auth/logout",
              params={"post_logout_redirect_uri": "/bye"},
              headers={"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate",
                       "Accept": "text/html"},
              allow_redirects=False, timeout=5)
    assert r.status_code == 200, r.status_code
    assert "Location" not in r.headers
    assert not any(v.startswith("gatehouse=")
                   for v in header_values(r, "Set-Cookie"))
    assert r.headers["Cache-Control"] == "no-store"
    assert header_values(r, "Referrer-Policy") == ["no-referrer"]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert confirm_form_action(r) == \
        "/.auth/logout?post_logout_redirect_uri=%2Fbye"
    assert_signed_in(g, s)
    assert op.counter("logout") == before
    assert g.loggrep(r"logout id=\S+ result=confirm")


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},
    {},
])
def test_logout_same_origin_get_signs_out(op, tmp, upstream, headers):
    """From this site, a typed URL or bookmark, or a client that sends no
    Sec-Fetch-Site: signed out here and sent to the provider."""
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g)
    r = s.get(g.url + "/.auth/logout", headers=headers,
              allow_redirects=False, timeout=5)
    assert_signed_out_at_provider(g, op, s, r)


def test_referrer_policy_on_logout_redirect(op, tmp, upstream):
    """The redirect to the provider's end_session_endpoint (its URL holds
    the ID token) does not pass the page the person was on."""
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g)
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert header_values(r, "Referrer-Policy") == ["no-referrer"]


def test_logout_confirmation_button_signs_out(op, tmp, upstream):
    """The confirmation page's own POST (same origin, as a browser sends
    it) signs out, with the return path it carried."""
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g)
    r = s.get(g.url + "/.auth/logout?post_logout_redirect_uri=%2Fbye",
              headers={"Sec-Fetch-Site": "cross-site"},
              allow_redirects=False, timeout=5)
    action = urljoin(g.url + "/.auth/logout", confirm_form_action(r))
    r = s.post(action, headers={"Origin": g.url,
                                "Sec-Fetch-Site": "same-origin",
                                "Content-Type":
                                "application/x-www-form-urlencoded"},
               data="", allow_redirects=False, timeout=5)
    assert_signed_out_at_provider(g, op, s, r)
    assert query(r.headers["Location"])["post_logout_redirect_uri"] == \
        g.url + "/bye"


def test_logout_post_with_own_origin_only(op, tmp, upstream):
    """A browser without Sec-Fetch-Site: Origin naming this site is
    enough."""
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g)
    r = s.post(g.url + "/.auth/logout", headers={"Origin": g.url},
               allow_redirects=False, timeout=5)
    assert_signed_out_at_provider(g, op, s, r)


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "none"},
])
def test_logout_cross_site_post_refused(op, tmp, upstream, headers):
    """An auto-posted form on another site signs nobody out."""
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g)
    before = op.counter("logout")
    r = s.post(g.url + "/.auth/logout", headers=headers,
               data={"x": "1"}, allow_redirects=False, timeout=5)
    assert r.status_code == 403, r.status_code
    assert "Location" not in r.headers
    assert not any(v.startswith("gatehouse=")
                   for v in header_values(r, "Set-Cookie"))
    assert_signed_in(g, s)
    assert op.counter("logout") == before


# -- the same in Chromium ----------------------------------------------------
class _LinkPage(BaseHTTPRequestHandler):
    target = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = ('<!DOCTYPE html><html><body><a id="go" href="%s">x</a>'
                '<script>document.getElementById("go").click()</script>'
                '</body></html>' % self.target).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_logout_chromium_cross_site_link(op, tmp, upstream):
    """Headless Chromium on another origin (localhost, not 127.0.0.1)
    follows a link to /.auth/logout: the page it ends on is the
    confirmation, and gatehouse logged that it asked."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("no %s" % CHROMIUM)
    g = start_gateway(op, tmp, upstream)
    handler = type("LinkPage", (_LinkPage,),
                   {"target": g.url + "/.auth/logout"})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        page = "http://localhost:%d/" % srv.server_address[1]
        r = subprocess.run(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--user-data-dir=" + os.path.join(tmp, "chromium"),
             "--virtual-time-budget=5000", "--dump-dom", page],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    finally:
        srv.shutdown()
        srv.server_close()
    dom = r.stdout.decode("utf-8", "replace")
    assert "Do you want to sign out?" in dom, (r.returncode, dom[:2000],
                                               r.stderr[-2000:])
    assert 'action="/.auth/logout"' in dom
    assert g.loggrep(r"logout id=\S+ result=confirm")
