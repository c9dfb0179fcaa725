# SPDX-License-Identifier: ISC
"""What the MSAL sample's identity package does, through the real binary
against tests/op/op.py:

- msal_sample_paths: with the sample's .env (or = on), /login and /logout
  beside REDIRECT_URI's path are gatehouse's sign-in and sign-out; without
  it they are the app's paths like any other.
- session_lifetime = id_token: the session lasts until the ID token's exp
  plus 210 s (the identity package's allowance), a refresh that brings a
  new ID token extends it, and a session past it is no session."""
import calendar
import os
import time

import pytest
import requests

from conftest import Gatehouse, free_port
from op_client import OP
from signin import (authorize, begin_login, complete, echo_headers, sign_in,
                    to_sign_in,
                    start_gateway)


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def sample_gateway(op, tmp, upstream, dotenv=True, extra=()):
    """A gateway configured like the sample: REDIRECT_URI's path is
    /app/getAToken; the keys come from .env beside the file, or from the
    file itself."""
    port = free_port()
    redirect = "http://127.0.0.1:%d/app/getAToken" % port
    op.config(redirect_uris=[redirect])
    keys = {"AUTHORITY": op.authority, "CLIENT_ID": op.client_id,
            "CLIENT_SECRET": op.client_secret, "REDIRECT_URI": redirect}
    lines = ["upstream = " + upstream.url,
             "session_store = " + os.path.join(tmp, "sessions"),
             "session_key_file = " + os.path.join(tmp, "session.key")]
    if dotenv:
        with open(os.path.join(tmp, ".env"), "w") as f:
            for k, v in keys.items():
                f.write("%s=%s\n" % (k, v))
    else:
        lines += ["authority = " + keys["AUTHORITY"],
                  "client_id = " + keys["CLIENT_ID"],
                  "client_secret = " + keys["CLIENT_SECRET"],
                  "redirect_uri = " + redirect]
    lines += list(extra) + ["route /app/login allow anonymous",
                            "route /app/logout allow anonymous",
                            "route /* allow authenticated"]
    g = Gatehouse(tmp, lines, port=port)
    for w in range(2):
        assert g.loggrep(r"provider ready worker=%d" % w, timeout=10), g.log()
    return g


@pytest.mark.parametrize("how", ["dotenv", "on"])
def test_sample_login_and_logout_are_gatehouses(op, tmp, upstream, how):
    g = sample_gateway(op, tmp, upstream, dotenv=how == "dotenv",
                       extra=["msal_sample_paths = on"] if how == "on"
                       else [])
    s = requests.Session()
    r = s.get(g.url + "/app/login?post_login_redirect_uri=/app/page",
              allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert r.headers["Location"].startswith(op.endpoint("authorize"))
    r = complete(g, s, authorize(s, r.headers["Location"], "ann@contoso.com"))
    assert r.status_code == 302 and r.headers["Location"] == "/app/page"
    r = s.get(g.url + "/app/page", timeout=10)
    assert r.status_code == 200
    assert echo_headers(r)["x-forwarded-user"] == ["ann@contoso.com"]
    # /app/logout ends the session here and at the provider, as
    # /.auth/logout does.
    r = s.get(g.url + "/app/logout", allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert r.headers["Location"].startswith(op.endpoint("logout"))
    r = s.get(g.url + "/app/page", allow_redirects=False, timeout=10)
    assert to_sign_in(r), (r.status_code, r.headers)


@pytest.mark.parametrize("how", ["file", "off"])
def test_sample_paths_are_the_apps_otherwise(op, tmp, upstream, how):
    """From the file alone, or with msal_sample_paths = off beside a .env,
    /app/login and /app/logout go to the app."""
    g = sample_gateway(op, tmp, upstream, dotenv=how == "off",
                       extra=["msal_sample_paths = off"] if how == "off"
                       else [])
    for path in ("/app/login", "/app/logout"):
        r = requests.get(g.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        assert r.json()["path"] == path


def me(g, s):
    r = s.get(g.url + "/.auth/me", timeout=10)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def iso(t):
    return calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))


def test_session_follows_id_token(op, tmp, upstream):
    op.config(id_token_lifetime=600)
    g = start_gateway(op, tmp, upstream, ["session_lifetime = id_token",
                                          "forward_access_token = on"])
    s, _ = sign_in(g, "bo@contoso.com")
    m = me(g, s)
    exp = m["user_claims"]["exp"]
    assert iso(m["session_expires_on"]) == exp + 210, m
    # A refresh that brings a new ID token extends the session.
    op.config(id_token_lifetime=1800)
    r = s.post(g.url + "/.auth/refresh", timeout=10)
    assert r.status_code == 200, r.text[:300]
    m = me(g, s)
    assert m["user_claims"]["exp"] >= exp + 1000
    assert iso(m["session_expires_on"]) == m["user_claims"]["exp"] + 210


def test_session_lifetime_default_is_not_the_id_token(op, tmp, upstream):
    op.config(id_token_lifetime=600)
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "cy@contoso.com")
    m = me(g, s)
    assert iso(m["session_expires_on"]) >= time.time() + 23 * 3600


def test_session_past_id_token_allowance_is_no_session(op, tmp, upstream):
    """The provider's clock 400 s behind: an ID token whose exp was 220 s
    ago passes the 5-minute clock_skew, but exp + 210 s is already past,
    so the session the sign-in made is over at once; without
    session_lifetime = id_token the same sign-in lasts."""
    op.config(time_offset=-400, id_token_lifetime=180)
    g = start_gateway(op, tmp, upstream, ["session_lifetime = id_token"])
    s, r = sign_in(g, "di@contoso.com")
    r = s.get(g.url + "/private", allow_redirects=False, timeout=10)
    assert to_sign_in(r), (r.status_code, r.headers)
    g.stop()
    g2 = start_gateway(op, tmp, upstream, name="gw2")
    s, r = sign_in(g2, "di@contoso.com")
    r = s.get(g2.url + "/private", allow_redirects=False, timeout=10)
    assert r.status_code == 200


@pytest.mark.parametrize("extra,asked", [
    # session_revalidate (1h by default) redeems it.
    ([], True),
    (["session_revalidate = off"], False),
    (["forward_access_token = on"], True),
    (["me_includes_tokens = on"], True),
    (["session_lifetime = id_token"], True),
    (["offline_access = on"], True),
    (["forward_access_token = on", "offline_access = off"], False),
])
def test_offline_access_only_when_a_refresh_is_needed(op, tmp, upstream,
                                                      extra, asked):
    """offline_access = auto (the default): the sign-in asks for a refresh
    token only when gatehouse will use one; without it the provider issues
    none and none is stored."""
    if not any(l.startswith("offline_access") for l in extra):
        extra = ["offline_access = auto"] + extra
    g = start_gateway(op, tmp, upstream, extra)
    s, _ = sign_in(g, "ed@contoso.com")
    scope = op.last("authorize")["query"]["scope"].split()
    assert ("offline_access" in scope) == asked, scope
    assert {"openid", "profile", "User.Read"} <= set(scope)
    r = s.post(g.url + "/.auth/refresh", timeout=10)
    assert (r.status_code == 200) == asked, (r.status_code, r.text[:300])
    assert op.counter("token_refresh") == (1 if asked else 0)
