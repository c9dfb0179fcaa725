# SPDX-License-Identifier: ISC
"""Helpers for sign-in tests: a gatehouse in front of the echo upstream,
signed in against the tests' own OpenID Provider (tests/op)."""
import base64
import json
import os
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

from conftest import Gatehouse, free_port
from op_client import read_auth_response, _with_param


def gateway_lines(op, tmp, port, upstream_url, extra=(), store=None):
    """store: a session_store value (a redis:// URL); None for LMDB in
    tmp.  The key file is tmp's either way, so gateways of one test share
    it, as replicas must."""
    return [
        "upstream = " + upstream_url,
        "authority = " + op.authority,
        "client_id = " + op.client_id,
        "client_secret = " + op.client_secret,
        "redirect_uri = http://127.0.0.1:%d/.auth/callback" % port,
        "session_store = " + (store or os.path.join(tmp, "sessions")),
        "session_key_file = " + os.path.join(tmp, "session.key"),
        "scopes = User.Read",
    ] + ([] if any(l.startswith("offline_access") for l in extra) else [
        # The tests refresh (POST /.auth/refresh) without forwarding
        # tokens too: always a refresh token (test_entra_sample.py checks
        # offline_access = auto).
        "offline_access = on",
    ]) + list(extra) + [
        "route /public/* allow anonymous",
        "route /* allow authenticated",
    ]


def start_gateway(op, tmp, upstream, extra=(), port=None, name="gw",
                  routes=None, store=None):
    port = port or free_port()
    # Every gateway of the test stays registered (replicas side by side).
    uris = getattr(op, "gateway_redirect_uris", [])
    uris.append("http://127.0.0.1:%d/.auth/callback" % port)
    op.gateway_redirect_uris = uris
    op.config(redirect_uris=uris)
    lines = gateway_lines(op, tmp, port, upstream.url, extra, store)
    if routes is not None:
        lines = lines[:-2] + list(routes)
    g = Gatehouse(tmp, lines, port=port, name=name)
    # The provider's metadata arrives asynchronously after start, in
    # every worker.
    workers = 2
    for l in lines + list(extra):
        if l.startswith("workers"):
            workers = int(l.split("=")[1])
    for w in range(workers):
        assert g.loggrep(r"provider ready worker=%d" % w, timeout=10), g.log()
    return g


def to_sign_in(r):
    """Whether r sends the browser to sign in: a 302 straight to the
    provider's authorization endpoint (a protected page answers it itself,
    without a hop through /.auth/login) with a flow cookie for it."""
    loc = r.headers.get("Location", "")
    return r.status_code == 302 and \
        urlsplit(loc).path.endswith("/oauth2/v2.0/authorize") and \
        "state" in query(loc) and any(
            "_flow_" in c for c in
            (v.split("=", 1)[0] for v in
             r.raw.headers.getlist("Set-Cookie")))


def begin_login(g, s, path="/private", login_url=None):
    """Walk from a protected path (or a login URL) to the OP's authorize
    URL; returns it."""
    if login_url is None:
        r = s.get(g.url + path, allow_redirects=False, timeout=10)
        assert to_sign_in(r), (r.status_code, r.headers, r.text[:300])
        return r.headers["Location"]
    r = s.get(login_url, allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    return r.headers["Location"]


def authorize(s, authorize_url, user):
    r = s.get(_with_param(authorize_url, "login_as", user),
              allow_redirects=False, timeout=10)
    return read_auth_response(r)


def complete(g, s, auth):
    """Deliver the OP's response to the gateway's callback (query or
    form_post); returns the gateway's response."""
    if auth["response_mode"] == "form_post":
        data = {k: v for k, v in auth.items()
                if k not in ("redirect_uri", "response_mode")}
        return s.post(auth["redirect_uri"], data=data, allow_redirects=False,
                      timeout=15)
    return s.get(auth["location"], allow_redirects=False, timeout=15)


def sign_in(g, user="alice@contoso.com", path="/private", s=None):
    s = s or requests.Session()
    auth = authorize(s, begin_login(g, s, path), user)
    r = complete(g, s, auth)
    assert r.status_code == 302, (r.status_code, r.text[:500], g.log()[-2000:])
    return s, r


def echo_headers(r):
    out = {}
    for k, v in r.json()["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def principal(h):
    return json.loads(base64.b64decode(h["x-ms-client-principal"][0]))


def query(url):
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
