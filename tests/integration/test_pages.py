# SPDX-License-Identifier: ISC
"""The pages a person meets, through the real binary: the signed-out page
at the end of a sign-out, the next step each error page offers (sign in,
sign out or switch account, try again), the cancel page's heading, and the
operator's branding (error_page_dir, brand_*)."""
import html
import os
import re
import subprocess
import time
from urllib.parse import urljoin

import pytest
import requests

from conftest import BIN, free_port
from op_client import OP
from signin import (authorize, begin_login, complete, query, sign_in,
                    start_gateway)

HTML = {"Accept": "text/html"}


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def link(r, ident):
    """The href of the page's <a id=ident>, unescaped as a browser reads
    it; None when the page has no such link."""
    m = re.search(r'<a id="%s" href="([^"]*)">' % ident, r.text)
    return html.unescape(m.group(1)) if m else None


def assert_signed_out_page(r):
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.headers["Cache-Control"] == "no-store"
    assert "<h1>You are signed out</h1>" in r.text
    assert link(r, "action") == "/.auth/login"
    assert ">Sign in again</a>" in r.text


# -- the signed-out page -----------------------------------------------------
def test_signout_via_provider_ends_on_signed_out_page(op, tmp, upstream):
    """Without a return path the provider is asked to send the browser to
    the signed-out page (the URI the operator registers), not to / (which
    sends a signed-out person straight back to the provider's sign-in)."""
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "erin@contoso.com")
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    q = query(r.headers["Location"])
    assert q["post_logout_redirect_uri"] == g.url + "/.auth/logout/complete"
    r = s.get(r.headers["Location"], allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == g.url + "/.auth/logout/complete"
    r = s.get(r.headers["Location"], allow_redirects=False, timeout=5)
    assert_signed_out_page(r)
    # Its link signs in again, from the start.
    r = s.get(urljoin(g.url, link(r, "action")), allow_redirects=False,
              timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"].startswith(op.endpoint("authorize"))


def test_local_signout_ends_on_signed_out_page(op, tmp, upstream):
    """A provider without end_session_endpoint: the sign-out is local and
    lands on the same page; an explicit return path still wins."""
    op.fault("discovery_drop_fields", fields=["end_session_endpoint"],
             sticky=True)
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "frank@contoso.com")
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == "/.auth/logout/complete"
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    assert_signed_out_page(s.get(urljoin(g.url, r.headers["Location"]),
                                 allow_redirects=False, timeout=5))
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401
    s, _ = sign_in(g, "frank@contoso.com", s=s)
    r = s.get(g.url + "/.auth/logout?post_logout_redirect_uri=/bye",
              allow_redirects=False, timeout=5)
    assert r.headers["Location"] == "/bye"


def test_local_signout_goes_to_configured_post_logout_uri(op, tmp, upstream):
    """post_logout_redirect_uri (the key) is the default end of every
    sign-out, also one that does not pass through the provider."""
    op.fault("discovery_drop_fields", fields=["end_session_endpoint"],
             sticky=True)
    g = start_gateway(op, tmp, upstream, extra=[
        "post_logout_redirect_uri = https://portal.example.com/bye"])
    s, _ = sign_in(g)
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == "https://portal.example.com/bye"


@pytest.mark.parametrize("suffix", [
    "?x=%3Cscript%3Ealert(1)%3C/script%3E",
    "?post_login_redirect_uri=https://evil.example/&state=%22%3E%3Cimg",
    "?error=%3Csvg%20onload=alert(1)%3E",
])
def test_signed_out_page_reflects_nothing(tmp, upstream, gatehouse, suffix):
    """Whatever a provider or another site appends, the page and its link
    stay the same: no markup, no foreign URL, never cached."""
    g = gatehouse(["upstream = " + upstream.url])
    r = requests.get(g.url + "/.auth/logout/complete" + suffix, headers=HTML,
                     allow_redirects=False, timeout=5)
    assert_signed_out_page(r)
    assert "<script" not in r.text and "<img" not in r.text
    assert "<svg" not in r.text and "evil" not in r.text
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "Location" not in r.headers
    r = requests.post(g.url + "/.auth/logout/complete", timeout=5)
    assert r.status_code == 405


# -- the next step on error pages --------------------------------------------
def test_401_page_links_to_sign_in_with_this_path(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    # A form POST from a page whose session has ended: not a navigation
    # gatehouse can redirect, so a page.
    r = requests.post(g.url + "/private/x?y=1&z=%3Cb%3E", headers=HTML,
                      data="a=1", allow_redirects=False, timeout=5)
    assert r.status_code == 401
    assert link(r, "signin") == \
        "/.auth/login?post_login_redirect_uri=%2Fprivate%2Fx%3Fy%3D1%26z" \
        "%3D%253Cb%253E"
    assert ">Sign in</a>" in r.text and "<b>" not in r.text
    # Following it signs in and returns to that path.
    s = requests.Session()
    url = begin_login(g, s, login_url=urljoin(g.url, link(r, "signin")))
    r2 = complete(g, s, authorize(s, url, "gina@contoso.com"))
    assert r2.headers["Location"] == "/private/x?y=1&z=%3Cb%3E"
    # gatehouse's own endpoints are never the way back.
    r = requests.get(g.url + "/.auth/me", headers=HTML, timeout=5)
    assert r.status_code == 401
    assert link(r, "signin") == "/.auth/login?post_login_redirect_uri=%2F"
    # JSON keeps its shape.
    r = requests.post(g.url + "/private/x",
                      headers={"Accept": "application/json"}, timeout=5)
    assert r.status_code == 401
    assert sorted(r.json()) == ["error", "message", "request_id", "status"]


def test_403_page_names_user_and_offers_switch(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, routes=[
        "route /admin/* allow role:Admin", "route /* allow authenticated"])
    op.user("eve@contoso.com", name="<b>Eve</b> & \"Co\"")
    s, _ = sign_in(g, "eve@contoso.com", "/home")
    r = s.get(g.url + "/admin/x?tab=1", headers=HTML, timeout=5)
    assert r.status_code == 403
    assert 'Signed in as <strong id="user">&lt;b&gt;Eve&lt;/b&gt; &amp; ' \
        '&quot;Co&quot;</strong>' in r.text
    assert link(r, "signout") == "/.auth/logout"
    switch = link(r, "switch")
    assert switch == "/.auth/logout?prompt=select_account&" \
        "post_logout_redirect_uri=%2Fadmin%2Fx%3Ftab%3D1"
    r = s.get(g.url + "/admin/x", headers={"Accept": "application/json"},
              timeout=5)
    assert sorted(r.json()) == ["error", "message", "request_id", "status"]
    # Switch account: the session ends here, and sign-in starts again with
    # the provider's account picker, back to the same page.
    r = s.get(urljoin(g.url, switch), allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == "/.auth/login?prompt=select_account&" \
        "post_login_redirect_uri=%2Fadmin%2Fx%3Ftab%3D1"
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401
    url = begin_login(g, s, login_url=urljoin(g.url, r.headers["Location"]))
    assert query(url)["prompt"] == "select_account"
    op.user("root@contoso.com", roles=["Admin"])
    r = complete(g, s, authorize(s, url, "root@contoso.com"))
    assert r.headers["Location"] == "/admin/x?tab=1"
    assert s.get(g.url + "/admin/x?tab=1", timeout=5).status_code == 200


def test_403_switch_from_another_site_asks_first(op, tmp, upstream):
    """The switch link is a sign-out: from another site it is a question,
    whose button keeps the switch."""
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g)
    r = s.get(g.url + "/.auth/logout?prompt=select_account&"
              "post_logout_redirect_uri=%2Fa",
              headers={"Sec-Fetch-Site": "cross-site"},
              allow_redirects=False, timeout=5)
    assert r.status_code == 200
    m = re.search(r'<form method="post" action="([^"]*)">', r.text)
    assert html.unescape(m.group(1)) == \
        "/.auth/logout?prompt=select_account&post_logout_redirect_uri=%2Fa"
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 200


def test_502_504_pages_offer_try_again(tmp, upstream, gatehouse):
    dead = "http://127.0.0.1:%d" % free_port()
    g = gatehouse(["upstream = " + dead])
    r = requests.get(g.url + "/a/b?c=1&d=%22x", headers=HTML, timeout=5)
    assert r.status_code == 502
    assert link(r, "retry") == "/a/b?c=1&d=%22x"
    assert ">Try again</a>" in r.text
    # Repeating a POST is the person's call, not a link's.
    r = requests.post(g.url + "/a/b", headers=HTML, data="x", timeout=5)
    assert r.status_code == 502 and link(r, "retry") is None
    r = requests.get(g.url + "/a/b", headers={"Accept": "application/json"},
                     timeout=5)
    assert sorted(r.json()) == ["error", "message", "request_id", "status"]
    g2 = gatehouse(["upstream = " + upstream.url, "upstream_timeout = 1s"],
                   name="gw2")
    r = requests.get(g2.url + "/slow?ms=5000", headers=HTML, timeout=15)
    assert r.status_code == 504
    assert link(r, "retry") == "/slow?ms=5000"


def test_cancel_page_heading(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    url = begin_login(g, s, "/private")
    op.fault("authorize_error", error="access_denied",
             error_description="the user cancelled")
    r = complete(g, s, authorize(s, url, "quinn@x.com"))
    assert r.status_code == 401
    assert "<h1>Sign-in was cancelled</h1>" in r.text
    assert "Sign-in required" not in r.text
    assert link(r, "action") == \
        "/.auth/login?post_login_redirect_uri=%2Fprivate"


# -- branding ----------------------------------------------------------------
BRAND = [
    'brand_name = Contoso <Portal> & "Co"',
    "brand_logo_url = /static/logo.png?a=1&b=2",
    "brand_support = <helpdesk@contoso.com>",
]
TEMPLATE = """<!doctype html><html><head><title>{{title}}</title></head>
<body class="custom"><img src="{{ logo_url }}"><p id="product">{{product}}</p>
<h1>{{heading}}</h1><p id="msg">{{message}}</p>{{actions}}
<footer>{{support}} {{status}} {{request_id}}</footer></body></html>
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_branding_template_values_escaped(tmp, upstream, gatehouse):
    d = os.path.join(tmp, "pages")
    write(os.path.join(d, "page.html"), TEMPLATE)
    g = gatehouse(["upstream = " + upstream.url, "error_page_dir = " + d]
                  + BRAND + ["route /x/* deny", "route /* allow anonymous"])
    r = requests.get(g.url + "/x/%3Cscript%3E", headers=HTML, timeout=5)
    assert r.status_code == 403
    t = r.text
    assert '<body class="custom">' in t
    assert '<img src="/static/logo.png?a=1&amp;b=2">' in t
    assert '<p id="product">Contoso &lt;Portal&gt; &amp; &quot;Co&quot;</p>' \
        in t
    assert "<footer>&lt;helpdesk@contoso.com&gt; 403 " in t
    assert "<title>403 Access denied - Contoso &lt;Portal&gt;" in t
    assert "<h1>Access denied</h1>" in t and "<script>" not in t
    assert "{{" not in t
    # The signed-out page wears the same template, with its link.
    r = requests.get(g.url + "/.auth/logout/complete", timeout=5)
    assert '<body class="custom">' in r.text
    assert link(r, "action") == "/.auth/login"


def test_branding_without_template_uses_builtin_page(tmp, upstream,
                                                     gatehouse):
    d = os.path.join(tmp, "empty")
    os.makedirs(d)
    g = gatehouse(["upstream = " + upstream.url, "error_page_dir = " + d]
                  + BRAND + ["route /x/* deny", "route /* allow anonymous"])
    r = requests.get(g.url + "/x/y", headers=HTML, timeout=5)
    assert r.status_code == 403
    t = r.text
    assert "<h1>Access denied</h1>" in t
    assert "<span>Contoso &lt;Portal&gt; &amp; &quot;Co&quot;</span>" in t
    assert '<img src="/static/logo.png?a=1&amp;b=2" alt="">' in t
    assert "Need help? &lt;helpdesk@contoso.com&gt;" in t
    assert "<Portal>" not in t and "<helpdesk" not in t


def run_check(tmp, lines):
    conf = os.path.join(tmp, "check.conf")
    write(conf, "\n".join(["upstream = http://127.0.0.1:9"] + lines) + "\n")
    p = subprocess.run([BIN, "-c", conf, "--check"], capture_output=True,
                       text=True, cwd=tmp, timeout=10)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("text,why", [
    ("<p>{{message}} {{actions}} {{titel}}</p>", "{{titel}}"),
    ("<p>{{message}}\n{{actions}}\n{{title</p>", ":3:"),
    ("<p>{{title}}</p>", "needs {{message}} and {{actions}}"),
])
def test_bad_template_refused_by_check(tmp, text, why):
    d = os.path.join(tmp, "pages")
    write(os.path.join(d, "page.html"), text)
    rc, out = run_check(tmp, ["error_page_dir = " + d])
    assert rc != 0, out
    assert os.path.join(d, "page.html") in out and why in out, out


@pytest.mark.parametrize("lines,why", [
    (["error_page_dir = /nonexistent/pages"], "/nonexistent/pages"),
    (["brand_logo_url = javascript:alert(1)"],
     "brand_logo_url must be an http(s) URL"),
])
def test_bad_branding_refused_by_check(tmp, lines, why):
    rc, out = run_check(tmp, lines)
    assert rc != 0 and why in out, out


def test_good_branding_passes_check(tmp):
    d = os.path.join(tmp, "pages")
    write(os.path.join(d, "page.html"), TEMPLATE)
    rc, out = run_check(tmp, ["error_page_dir = " + d] + BRAND)
    assert rc == 0, out
