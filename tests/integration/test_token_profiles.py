# SPDX-License-Identifier: ISC
"""Per-route downstream tokens (token.NAME profiles, token=NAME routes):
each route receives the token of its own profile and no other, redeemed
with the session's refresh token for that profile's scopes, refreshed on
its own expiry, one refresh per profile under parallel requests (LMDB and
Redis), and incremental consent when the provider refuses a profile.  The
tests' own OP issues access tokens whose aud/scp follow the scope asked
for, and answers consent_required on purpose."""
import os
import subprocess
import threading
import time
from urllib.parse import urljoin

import pytest
import requests

from conftest import BIN
from op_client import OP, read_auth_response, verify_jwt, _with_param
from signin import echo_headers, query, sign_in, start_gateway

GRAPH_AUD = "00000003-0000-0000-c000-000000000000"
GRAPH = "https://graph.microsoft.com/User.Read"
ORDERS = "api://orders/Orders.Read"
HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}
PROFILES = [
    "forward_access_token = on",
    "token.graph = " + GRAPH,
    "token.orders = " + ORDERS,
]
ROUTES = [
    "route /graph/* allow authenticated token=graph",
    "route /orders/* allow authenticated token=orders",
    "route /* allow authenticated",
]


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def start(op, tmp, upstream, store=None, extra=()):
    return start_gateway(op, tmp, upstream, PROFILES + list(extra),
                         routes=ROUTES, store=store)


def refreshes(op, scope=None):
    """The refresh_token grants that reached the OP (for one profile:
    those whose scope names it)."""
    out = [r for r in op.requests("token")
           if r["form"].get("grant_type") == "refresh_token"]
    if scope is not None:
        out = [r for r in out if scope in r["form"].get("scope", "").split()]
    return out


def token_of(r, op):
    """The token the upstream got (Authorization and the Easy Auth header
    carry the same one), its claims checked against the OP's keys."""
    assert r.status_code == 200, (r.status_code, r.text[:300])
    h = echo_headers(r)
    tok = h["x-ms-token-aad-access-token"][0]
    assert h["authorization"] == ["Bearer " + tok], h.get("authorization")
    return tok, verify_jwt(tok, op.jwks(), issuer=op.issuer)


def test_check_names_unknown_profile_and_bad_lines(tmp):
    conf = os.path.join(tmp, "t.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:9\nupstream = http://127.0.0.1:9\n"
                "oidc_issuer = https://op.example.com\nclient_id = a\n"
                "client_secret = b\n"
                "redirect_uri = http://127.0.0.1:9/.auth/callback\n"
                "session_store = %s/s\nsession_key_file = %s/k\n"
                "token.graph = %s\n"                       # 9
                "token.both = api://a/x api://b/y\n"       # 10
                "token.openid = openid\n"                  # 11
                "token.empty =\n"                          # 12
                "token.b@d = api://a/x\n"                  # 13
                "route /g/* allow authenticated token=graph\n"
                "route /h/* allow authenticated token=nope\n"   # 15
                "route /p/* allow anonymous token=graph\n"      # 16
                "route /* allow authenticated\n" % (tmp, tmp, GRAPH))
    p = subprocess.run([BIN, "-c", conf, "--check"], capture_output=True,
                       text=True)
    assert p.returncode != 0
    err = p.stderr
    assert ":10: token.both: the scopes name two resources" in err, err
    assert ":11: token.openid: openid, profile" in err, err
    assert ":12: " in err and "token.empty" in err, err
    assert ':13: "token.b@d": the name after "token."' in err, err
    assert ":15: route: token=nope names no profile" in err, err
    assert ":16: route: token= only goes on a route for signed-in" in err
    assert ":9:" not in err and ":14:" not in err, err


def test_each_route_gets_its_own_token(op, tmp, upstream, session_store):
    """Graph's route gets a Graph token, the orders route an orders one,
    the other routes the session's own token and never a profile's; each
    profile is refreshed on its own expiry."""
    op.config(expires_in=8)
    g = start(op, tmp, upstream, session_store)
    s, _ = sign_in(g, "ada@contoso.com")
    forged = {"Authorization": "Bearer forged"}
    gtok, gc = token_of(s.get(g.url + "/graph/me", headers=forged,
                              timeout=10), op)
    assert gc["aud"] == GRAPH_AUD and gc["scp"] == "User.Read", gc
    otok, oc = token_of(s.get(g.url + "/orders/1", timeout=10), op)
    assert oc["aud"] == "api://orders" and oc["scp"] == "Orders.Read", oc
    r = s.get(g.url + "/private", headers=forged, timeout=10)
    h = echo_headers(r)
    own = h["x-ms-token-aad-access-token"][0]
    assert own not in (gtok, otok)
    assert h["authorization"] == ["Bearer forged"]  # not forward_authorization
    assert "Orders.Read" not in verify_jwt(own, op.jwks())["scp"]
    assert len(refreshes(op, GRAPH)) == 1 and len(refreshes(op, ORDERS)) == 1
    # Tokens for the same profile are reused while they last.
    assert token_of(s.get(g.url + "/orders/2", timeout=10), op)[0] == otok
    assert len(refreshes(op)) == 2
    # 8 s tokens: within 5 s of expiry a request waits for a new one.
    time.sleep(4.6)  # under 3.4 s left
    otok2, _ = token_of(s.get(g.url + "/orders/3", timeout=10), op)
    assert otok2 != otok
    assert len(refreshes(op, ORDERS)) == 2 and len(refreshes(op, GRAPH)) == 1
    gtok2, _ = token_of(s.get(g.url + "/graph/me", timeout=10), op)
    assert gtok2 != gtok and len(refreshes(op, GRAPH)) == 2
    # Every profile refresh rotated the refresh token, and the session
    # kept the newest: the session's own refresh still works.
    r = s.post(g.url + "/.auth/refresh", timeout=10)
    assert r.status_code == 200, r.text[:300]
    assert "result=ended" not in g.log()


def test_one_refresh_per_profile_under_parallel_requests(
        op, tmp, upstream, session_store):
    """20 parallel requests, half for each profile, on a fresh session:
    exactly one refresh per profile reaches the provider (the refresh
    token rotates, so two at once would burn it), and every request
    carries its own route's token."""
    g = start(op, tmp, upstream, session_store)
    s, _ = sign_in(g, "bob@contoso.com")
    jar = {"gatehouse": s.cookies.get("gatehouse")}
    results, lock = [], threading.Lock()

    def hit(path):
        r = requests.get(g.url + path, cookies=jar, timeout=60)
        with lock:
            results.append((path, r))

    threads = [threading.Thread(target=hit,
                                args=("/graph/x" if i % 2 else "/orders/x",))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen = {"/graph/x": set(), "/orders/x": set()}
    for path, r in results:
        tok, claims = token_of(r, op)
        seen[path].add(tok)
        want = GRAPH_AUD if path == "/graph/x" else "api://orders"
        assert claims["aud"] == want, (path, claims)
    assert len(seen["/graph/x"]) == 1 and len(seen["/orders/x"]) == 1
    assert len(refreshes(op, GRAPH)) == 1, refreshes(op)
    assert len(refreshes(op, ORDERS)) == 1, refreshes(op)
    assert "result=ended" not in g.log()


def consent_trip(g, s, path):
    """A navigation to path: the gateway sends the browser to sign in
    with the profile's scopes added; returns the authorize URL."""
    r = s.get(g.url + path, headers=HTML, allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    loc = r.headers["Location"]
    assert loc.startswith("/.auth/login?") and "token=orders" in loc, loc
    r = s.get(urljoin(g.url, loc), allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:300]
    return r.headers["Location"]


def test_consent_required_signs_in_once(op, tmp, upstream):
    """The provider refuses the orders profile (consent missing): an API
    request gets 401 naming the scope, other routes keep working, and a
    navigation goes through sign-in once with the scope added, after which
    the route gets its token."""
    op.config(consent_required_scopes=[ORDERS])
    g = start(op, tmp, upstream)
    s, _ = sign_in(g, "cy@contoso.com")
    r = s.get(g.url + "/orders/1", headers=JSON, timeout=10)
    assert r.status_code == 401, r.text[:300]
    www = r.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in www and ORDERS in www, www
    assert r.json()["error"] == "insufficient_scope"
    assert len(refreshes(op, ORDERS)) == 1
    assert g.loggrep(r"token=orders result=refused .*consent_required")
    # The refusal is kept: no second refresh for it, and the session is
    # still good for every route that does not need that profile.
    assert s.get(g.url + "/orders/2", headers=JSON,
                 timeout=10).status_code == 401
    assert len(refreshes(op, ORDERS)) == 1
    token_of(s.get(g.url + "/graph/me", timeout=10), op)
    assert s.get(g.url + "/private", timeout=10).status_code == 200
    authorize = consent_trip(g, s, "/orders/1?x=1")
    assert ORDERS in query(authorize)["scope"].split()
    auth = read_auth_response(s.get(_with_param(authorize, "login_as",
                                                "cy@contoso.com"),
                                    allow_redirects=False, timeout=10))
    r = s.get(auth["location"], allow_redirects=False, timeout=15)
    assert r.status_code == 302 and r.headers["Location"] == "/orders/1?x=1"
    # The code is redeemed for the sign-in's own scopes only (one
    # resource per token request).
    code = [q for q in op.requests("token")
            if q["form"].get("grant_type") == "authorization_code"][-1]
    assert ORDERS not in code["form"]["scope"].split(), code["form"]
    tok, claims = token_of(s.get(g.url + "/orders/1?x=1", headers=HTML,
                                 timeout=10), op)
    assert claims["aud"] == "api://orders"
    assert len(refreshes(op, ORDERS)) == 2


def test_consent_refused_again_shows_a_page_not_a_loop(op, tmp, upstream):
    """Consent cannot be given (only an administrator could): after the
    one sign-in with the scope added, the navigation gets an error page,
    not another trip to the provider."""
    op.config(consent_required_scopes=[ORDERS],
              consent_granted_at_authorize=False)
    g = start(op, tmp, upstream)
    s, _ = sign_in(g, "dee@contoso.com")
    authorize = consent_trip(g, s, "/orders/1")
    auth = read_auth_response(s.get(_with_param(authorize, "login_as",
                                                "dee@contoso.com"),
                                    allow_redirects=False, timeout=10))
    r = s.get(auth["location"], allow_redirects=False, timeout=15)
    assert r.status_code == 302
    n = len(op.requests("authorize"))
    r = s.get(g.url + "/orders/1", headers=HTML, allow_redirects=False,
              timeout=10)
    assert r.status_code == 403, (r.status_code, r.headers, r.text[:300])
    assert "consent" in r.text
    assert len(op.requests("authorize")) == n
    assert s.get(g.url + "/private", timeout=10).status_code == 200


@pytest.mark.parametrize("tokens", ["off", "on"])
def test_forward_auth_carries_a_profile_token_only_when_asked(
        op, tmp, upstream, tokens):
    """/.auth/verify for a token=NAME route: without forward_auth_tokens
    the answer has no token and none is fetched; with it, the route's own
    profile token."""
    g = start(op, tmp, upstream, extra=[
        "trusted_proxies = 127.0.0.1", "forward_auth_tokens = " + tokens])
    s, _ = sign_in(g, "eve@contoso.com")
    r = s.get(g.url + "/.auth/verify", timeout=10,
              headers={"X-Forwarded-Uri": "/orders/7",
                       "X-Forwarded-Method": "GET"})
    assert r.status_code == 200, (r.status_code, r.text[:300])
    tok = r.headers.get("X-MS-TOKEN-AAD-ACCESS-TOKEN")
    if tokens == "off":
        assert tok is None and refreshes(op) == []
        return
    claims = verify_jwt(tok, op.jwks(), issuer=op.issuer)
    assert claims["aud"] == "api://orders"
    assert len(refreshes(op, ORDERS)) == 1 and refreshes(op, GRAPH) == []
