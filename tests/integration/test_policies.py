# SPDX-License-Identifier: ISC
"""Per-route policies with real sign-ins, bearer API routes, forward-auth
answered directly, and SIGHUP reloads, through the real binary."""
import os
import signal
import time

import pytest
import requests

from op_client import OP, full_sign_in
from signin import echo_headers, sign_in, start_gateway

ROUTES = [
    "route /public/* allow anonymous",
    "route /internal/* deny",
    "route /admin/* allow role:Admin",
    "route /reports/* allow group:g-1 group:g-2 email:*@contoso.com",
    "route /tenant/* allow tenant:8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60",
    "route /dept/* allow claim:department=sales",
    "route GET,HEAD /docs/* allow authenticated",
    "route /api/read/* bearer scope:User.Read",
    "route /api/write/* bearer scope:api.write",
    "route /api/admin/* bearer role:Admin",
    "route /* allow authenticated",
]


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


@pytest.fixture
def gw(op, tmp, upstream):
    op.user("admin@contoso.com", roles=["Admin"], groups=["g-2"],
            department="sales")
    op.user("user@contoso.com", roles=["Reader"], groups=["g-9"])
    op.user("outsider@fabrikam.com", groups=["g-1"])
    return start_gateway(op, tmp, upstream, routes=ROUTES)


def status(s, g, path, method="GET"):
    return s.request(method, g.url + path, allow_redirects=False,
                     headers={"Accept": "application/json"},
                     timeout=10).status_code


def test_each_action_and_criterion(gw, op):
    admin, _ = sign_in(gw, "admin@contoso.com")
    user, _ = sign_in(gw, "user@contoso.com")
    out, _ = sign_in(gw, "outsider@fabrikam.com")
    anon = requests.Session()
    cases = [
        ("/public/x", 200, 200, 200, 200),
        ("/internal/x", 403, 403, 403, 403),
        ("/admin/x", 200, 403, 403, 401),
        # group g-1 or g-2, and a contoso address: admin (g-2, contoso)
        # yes; user (g-9) no; outsider (g-1 but fabrikam) no.
        ("/reports/x", 200, 403, 403, 401),
        ("/tenant/x", 200, 200, 200, 401),
        ("/dept/x", 200, 403, 403, 401),
        ("/docs/x", 200, 200, 200, 401),
        ("/other", 200, 200, 200, 401),
    ]
    for path, a, u, o, n in cases:
        got = (status(admin, gw, path), status(user, gw, path),
               status(out, gw, path), status(anon, gw, path))
        assert got == (a, u, o, n), (path, got)
    # Methods: POST is not in the /docs/* list, so /* decides.
    assert status(user, gw, "/docs/x", "POST") == 200
    r = user.get(gw.url + "/admin/x", headers={"Accept": "application/json"},
                 timeout=5)
    assert r.json()["error"] == "access_denied" and "/admin/*" in r.text
    assert "role" not in r.text  # the failed criteria are never shown
    assert gw.loggrep(r'deny id=\w+ path="/admin/x" rule="/admin/\*" line=\d+')


def test_bearer_routes(gw, op):
    op.config(access_token_audience="api://" + op.client_id)
    _, tok = full_sign_in(op, "admin@contoso.com")
    at = tok["access_token"]

    def call(path, token):
        h = {} if token is None else {"Authorization": "Bearer " + token}
        return requests.get(gw.url + path, headers=h, timeout=5)

    r = call("/api/read/x", at)
    assert r.status_code == 200
    assert echo_headers(r)["x-forwarded-user"] == ["admin@contoso.com"]
    r = call("/api/admin/x", at)
    assert r.status_code == 200
    r = call("/api/write/x", at)
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    r = call("/api/read/x", None)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="gatehouse"'
    assert r.json()["error"] == "unauthenticated"
    r = call("/api/read/x", at[:-4] + "AAAA")
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    # A cookie session is not a bearer token.
    s, _ = sign_in(gw, "admin@contoso.com")
    assert s.get(gw.url + "/api/read/x", timeout=5).status_code == 401
    # Wrong audience: a Graph token is not for this API.
    op.config(access_token_audience="00000003-0000-0000-c000-000000000000")
    _, tok2 = full_sign_in(op, "admin@contoso.com")
    r = call("/api/read/x", tok2["access_token"])
    assert r.status_code == 401
    assert gw.loggrep(r"bearer id=\w+ result=invalid_token reason=\"aud")
    # No redirect for API routes, ever.
    assert call("/api/read/x", "junk").status_code == 401


def test_bearer_expired_and_wrong_issuer(op, tmp, upstream):
    op.config(access_token_audience=op.client_id, expires_in=1)
    g = start_gateway(op, tmp, upstream, ["clock_skew = 0s"],
                      routes=["route /api/* bearer"])
    _, tok = full_sign_in(op, "u@contoso.com")
    time.sleep(2.2)
    r = requests.get(g.url + "/api/x", timeout=5,
                     headers={"Authorization": "Bearer " + tok["access_token"]})
    assert r.status_code == 401
    assert g.loggrep(r"bearer id=\w+ result=invalid_token reason=\"expired")
    g.stop()
    # The provider's discovery names another issuer: the tokens' iss no
    # longer matches the issuer gatehouse checks against.
    op.config(expires_in=3600)
    op.fault("discovery_wrong_issuer", sticky=True)
    g2 = start_gateway(op, tmp, upstream, routes=["route /api/* bearer"],
                       name="gw2")
    _, tok = full_sign_in(op, "u@contoso.com")
    r = requests.get(g2.url + "/api/x", timeout=5,
                     headers={"Authorization": "Bearer " + tok["access_token"]})
    assert r.status_code == 401
    assert g2.loggrep(r"reason=\"iss_mismatch")


def test_forward_auth_verify_direct(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["trusted_proxies = 127.0.0.1"],
                      routes=ROUTES)
    s, _ = sign_in(g, "user@contoso.com")

    def verify(sess, uri, method="GET"):
        return sess.get(g.url + "/.auth/verify", allow_redirects=False,
                        headers={"X-Forwarded-Uri": uri,
                                 "X-Forwarded-Method": method,
                                 "X-Forwarded-Host": "app.example"},
                        timeout=5)

    r = verify(s, "/docs/a?b=c")
    assert r.status_code == 200
    assert r.headers["X-Forwarded-User"] == "user@contoso.com"
    assert r.headers["X-Auth-Request-User"] == "user@contoso.com"
    assert r.headers["X-MS-CLIENT-PRINCIPAL-NAME"] == "user@contoso.com"
    assert verify(s, "/admin/a").status_code == 403
    assert verify(s, "/docs/a", "DELETE").status_code == 200  # /* allows
    anon = requests.Session()
    r = verify(anon, "/docs/a?b=c")
    assert r.status_code == 401
    assert r.headers["X-Auth-Redirect"] == \
        "/.auth/login?post_login_redirect_uri=%2Fdocs%2Fa%3Fb%3Dc"
    r = verify(anon, "/public/a")
    assert r.status_code == 200 and "X-Forwarded-User" not in r.headers
    assert verify(anon, "/public/%2e%2e/admin").status_code == 401  # normalised
    assert verify(anon, "/public/..%2fadmin").status_code == 400
    assert upstream.stats()["requests"] == 1  # verify never proxies


def test_forward_auth_needs_a_trusted_proxy(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["trusted_proxies = 10.9.9.9"],
                      routes=ROUTES)
    r = requests.get(g.url + "/.auth/verify",
                     headers={"X-Forwarded-Uri": "/public/x"}, timeout=5)
    assert r.status_code == 403
    assert g.loggrep(r"verify id=\w+ client=127.0.0.1 result=untrusted_peer")


def test_sighup_swaps_routes_and_keeps_them_on_a_bad_file(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream,
                      routes=["route /a/* allow anonymous",
                              "route /* deny"])
    assert requests.get(g.url + "/a/x", timeout=5).status_code == 200
    assert requests.get(g.url + "/b/x", timeout=5).status_code == 403
    text = open(g.conf).read()
    with open(g.conf, "w") as f:
        f.write(text.replace("route /a/* allow anonymous",
                             "route /b/* allow anonymous"))
    os.kill(g.pid, signal.SIGHUP)
    assert g.loggrep(r"reload: configuration 2 in force: 2 routes")
    time.sleep(0.2)
    for _ in range(4):  # every worker
        assert requests.get(g.url + "/b/x", timeout=5).status_code == 200
        assert requests.get(g.url + "/a/x", timeout=5).status_code == 403
    good = open(g.conf).read()
    with open(g.conf, "w") as f:
        f.write(good + "route /c/* allow sometimes\nbogus = 1\n")
    os.kill(g.pid, signal.SIGHUP)
    assert g.loggrep(r"reload: the file has errors; configuration 2 stays")
    assert g.loggrep(r"reload: .*gw\.conf:\d+: route: unknown criterion")
    assert g.loggrep(r'reload: .*gw\.conf:\d+: unknown key "bogus"')
    for _ in range(4):
        assert requests.get(g.url + "/b/x", timeout=5).status_code == 200


def test_group_overage(op, tmp, upstream):
    import json as _json
    from conftest import PY, Proc, wait_file
    groups = os.path.join(tmp, "groups.json")
    with open(groups, "w") as f:
        _json.dump({"many@contoso.com": ["g-1", "g-7"],
                    "few@contoso.com": ["g-9"]}, f)
    pf = os.path.join(tmp, "graph.port")
    graph = Proc([PY, os.path.join(os.path.dirname(__file__), "graph_server.py"),
                  "--port-file", pf, "--jwks", op.endpoint("jwks"),
                  "--groups", groups], os.path.join(tmp, "graph.log"))
    try:
        gurl = "http://127.0.0.1:%s" % wait_file(pf)
        # Entra's overage: no "groups", a pointer in _claim_names instead.
        overage = {"_claim_names": {"groups": "src1"},
                   "_claim_sources": {"src1": {"endpoint": "https://graph"}}}
        op.user("many@contoso.com", **overage)
        op.user("few@contoso.com", **overage)
        routes = ["route /reports/* allow group:g-1",
                  "route /* allow authenticated"]
        g = start_gateway(op, tmp, upstream, routes=routes,
                          extra=["groups_overage = graph",
                                 "graph_endpoint = %s/v1.0" % gurl])
        many, _ = sign_in(g, "many@contoso.com")
        few, _ = sign_in(g, "few@contoso.com")
        assert status(many, g, "/reports/q") == 200
        assert status(few, g, "/reports/q") == 403
        # The ids are kept in the session: no second Graph call.
        assert status(many, g, "/reports/q") == 200
        assert requests.get(gurl + "/stats", timeout=5).json() == \
            {"getMemberGroups": 2}
        assert g.loggrep(r"groups id=\w+ result=ok count=2")
        g.stop()
        # Without groups_overage the route denies, saying why.
        g2 = start_gateway(op, tmp, upstream, routes=routes, name="gw2")
        many2, _ = sign_in(g2, "many@contoso.com")
        assert status(many2, g2, "/reports/q") == 403
        assert g2.loggrep(r"deny id=\w+ reason=\"group overage")
    finally:
        graph.stop()
