# SPDX-License-Identifier: ISC
"""Azure App Service authentication ("Easy Auth") compatibility through the
real binary, against the tests' own OpenID Provider (tests/op): /.auth/me
in Easy Auth's shape, GET /.auth/refresh from the app's own pages,
/.auth/login/aad, post_logout_redirect_uri, and X-MS-TOKEN-AAD-ID-TOKEN."""
from collections import Counter
from urllib.parse import urljoin

import pytest
import requests

from op_client import OP, decode_jwt, verify_jwt
from signin import (authorize, complete, echo_headers, query, sign_in,
                    start_gateway)

NAME_URI = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
MS_URI = "http://schemas.microsoft.com/identity/claims/"
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"

# The claim types Easy Auth writes as URIs (see gateway/route/easyauth.c).
URIS = {
    "amr": "http://schemas.microsoft.com/claims/authnmethodsreferences",
    "email": NAME_URI + "emailaddress",
    "family_name": NAME_URI + "surname",
    "given_name": NAME_URI + "givenname",
    "idp": MS_URI + "identityprovider",
    "oid": MS_URI + "objectidentifier",
    "role": ROLE_URI,
    "roles": ROLE_URI,
    "scp": MS_URI + "scope",
    "sub": NAME_URI + "nameidentifier",
    "tid": MS_URI + "tenantid",
    "unique_name": NAME_URI + "name",
    "upn": NAME_URI + "upn",
}


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def expected_claims(claims):
    """Easy Auth's user_claims for a claim set: one typ/val per value."""
    out = []
    for k, v in claims.items():
        for one in (v if isinstance(v, list) else [v]):
            out.append((URIS.get(k, k), text(one)))
    return out


def test_me_easyauth_shape_field_by_field(op, tmp, upstream):
    op.user("grace@contoso.com", roles=["Admin", "Reader"],
            given_name="Grace", family_name="Hopper", upn="grace@contoso.com",
            amr=["pwd", "mfa"], email_verified=True)
    g = start_gateway(op, tmp, upstream, ["me_format = easyauth",
                                          "me_includes_tokens = on"])
    s, _ = sign_in(g, "grace@contoso.com")
    r = s.get(g.url + "/.auth/me", timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    doc = r.json()
    assert isinstance(doc, list) and len(doc) == 1
    me = doc[0]
    assert set(me) == {"provider_name", "user_id", "user_claims",
                       "expires_on", "id_token", "access_token"}
    assert me["provider_name"] == "aad"
    assert me["user_id"] == "grace@contoso.com"
    # Never the refresh token, although the session holds one.
    assert "refresh_token" not in me
    idc = verify_jwt(me["id_token"], op.jwks(), issuer=op.issuer,
                     audience=op.client_id)
    verify_jwt(me["access_token"], op.jwks(), issuer=op.issuer)
    assert me["expires_on"].endswith("Z") and me["expires_on"][10] == "T"
    # Every claim of the ID token, each value an entry of its own, the
    # value as text, the type as Easy Auth writes it.
    uc = me["user_claims"]
    assert all(set(c) == {"typ", "val"} and isinstance(c["val"], str)
               for c in uc), uc
    assert Counter((c["typ"], c["val"]) for c in uc) == \
        Counter(expected_claims(idc))
    by = {}
    for c in uc:
        by.setdefault(c["typ"], []).append(c["val"])
    assert by[ROLE_URI] == ["Admin", "Reader"]
    assert by[NAME_URI + "nameidentifier"] == [idc["sub"]]
    assert by[MS_URI + "objectidentifier"] == [idc["oid"]]
    assert by[MS_URI + "tenantid"] == [idc["tid"]]
    assert by[NAME_URI + "emailaddress"] == ["grace@contoso.com"]
    assert by[NAME_URI + "givenname"] == ["Grace"]
    assert by[NAME_URI + "surname"] == ["Hopper"]
    assert by[NAME_URI + "upn"] == ["grace@contoso.com"]
    assert by["http://schemas.microsoft.com/claims/authnmethodsreferences"] \
        == ["pwd", "mfa"]
    assert by["email_verified"] == ["true"]
    assert by["exp"] == [str(idc["exp"])]
    assert by["preferred_username"] == ["grace@contoso.com"]
    assert by["name"] == ["Grace"]
    for short in ("sub", "oid", "tid", "roles", "email"):
        assert short not in by
    # Tokens never reach the log.
    assert me["id_token"] not in g.log()
    assert me["access_token"] not in g.log()


def test_me_easyauth_without_tokens_and_signed_out(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["me_format = easyauth"])
    r = requests.get(g.url + "/.auth/me",
                     headers={"Accept": "application/json"}, timeout=5)
    assert r.status_code == 401
    assert r.headers["Content-Type"].startswith("application/json")
    s, _ = sign_in(g, "heidi@contoso.com")
    me = s.get(g.url + "/.auth/me", timeout=5).json()[0]
    assert me["user_id"] == "heidi@contoso.com"
    for tok in ("id_token", "access_token", "refresh_token"):
        assert tok not in me
    assert {"typ": "preferred_username", "val": "heidi@contoso.com"} in \
        me["user_claims"]


def test_me_default_shape_unchanged(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "ivy@contoso.com")
    me = s.get(g.url + "/.auth/me", timeout=5).json()
    assert isinstance(me, dict)
    assert me["user_claims"]["preferred_username"] == "ivy@contoso.com"
    assert "session_expires_on" in me


def test_refresh_get_same_origin_works_cross_site_refused(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "judy@contoso.com")
    n = op.counter("token_refresh")
    allowed = [
        {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"},
        {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"},
        {"Origin": g.url},
        {"X-Requested-With": "XMLHttpRequest"},
        {"Referer": g.url + "/app/page?x=1"},
    ]
    refused = [
        # A link or window.location from another site: the Lax cookie
        # goes along, so the request must not act.
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate"},
        # Sec-Fetch-Site decides over everything else.
        {"Sec-Fetch-Site": "cross-site", "X-Requested-With": "x",
         "Referer": g.url + "/"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {"Referer": g.url + ".evil.example/page"},
        # No evidence at all: not believed for a GET.
        {},
    ]
    for h in refused:
        r = s.get(g.url + "/.auth/refresh",
                  headers=dict(h, Accept="application/json"), timeout=5,
                  allow_redirects=False)
        assert r.status_code == 403, (h, r.status_code, r.text)
        assert "cross_site_refresh" in r.text
    assert op.counter("token_refresh") == n
    assert g.loggrep(r'refresh id=\w+ result=refused reason="GET not from '
                     r'this site"')
    for i, h in enumerate(allowed):
        r = s.get(g.url + "/.auth/refresh", headers=h, timeout=10)
        assert r.status_code == 200, (h, r.status_code, r.text)
        assert r.json()["expires_on"].endswith("Z")
        assert op.counter("token_refresh") == n + i + 1
    # POST stays as it was; other methods are still refused.
    r = s.post(g.url + "/.auth/refresh", timeout=10)
    assert r.status_code == 200
    assert op.counter("token_refresh") == n + len(allowed) + 1
    r = s.put(g.url + "/.auth/refresh", timeout=5)
    assert r.status_code == 405
    # Signed out, a same-origin GET is a 401, nothing more.
    r = requests.get(g.url + "/.auth/refresh",
                     headers={"Sec-Fetch-Site": "same-origin"}, timeout=5)
    assert r.status_code == 401


def test_login_aad_is_login(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    a = s.get(g.url + "/.auth/login?post_login_redirect_uri=/x/1",
              allow_redirects=False, timeout=5)
    b = s.get(g.url + "/.auth/login/aad?post_login_redirect_uri=/x/2",
              allow_redirects=False, timeout=5)
    assert a.status_code == b.status_code == 302
    la, lb = a.headers["Location"], b.headers["Location"]
    assert la.split("?")[0] == lb.split("?")[0] == op.endpoint("authorize")
    qa, qb = query(la), query(lb)
    assert set(qa) == set(qb)
    for k in ("client_id", "redirect_uri", "scope", "response_type",
              "code_challenge_method"):
        assert qa[k] == qb[k], k
    assert qa["state"] != qb["state"]
    # The sign-in through the alias ends where it was asked to.
    r = complete(g, s, authorize(s, lb, "kim@contoso.com"))
    assert r.status_code == 302 and r.headers["Location"] == "/x/2"
    assert s.get(g.url + "/x/2", timeout=5).status_code == 200
    # Other providers' names are no endpoint here.
    for p in ("/.auth/login/google", "/.auth/login/aadx", "/.auth/login/"):
        r = requests.get(g.url + p, allow_redirects=False, timeout=5)
        assert r.status_code == 404, p


def test_logout_takes_post_logout_redirect_uri(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "leo@contoso.com")
    r = s.get(g.url + "/.auth/logout?post_logout_redirect_uri=/bye",
              headers={"Sec-Fetch-Site": "same-origin"},
              allow_redirects=False, timeout=5)
    assert r.status_code == 302
    q = query(r.headers["Location"])
    assert q["post_logout_redirect_uri"] == g.url + "/bye"
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401


FORGED = {"X-MS-TOKEN-AAD-ID-TOKEN": "forged.id.token",
          "x_ms_token_aad_id_token": "forged2",
          "X-Ms-Token-Aad-Id-Token": "forged3"}


@pytest.mark.parametrize("on", [True, False])
def test_forward_id_token(op, tmp, upstream, on, session_store):
    # Both stores: with Redis the ID token is in the part of the record a
    # request reads only when it forwards a token.
    g = start_gateway(op, tmp, upstream,
                      ["forward_id_token = on"] if on else [],
                      store=session_store)
    s, _ = sign_in(g, "mia@contoso.com")
    r = s.get(g.url + "/private", headers=FORGED, timeout=5)
    assert r.status_code == 200
    h = echo_headers(r)
    assert "x_ms_token_aad_id_token" not in h
    # The access token only with forward_access_token.
    assert "x-ms-token-aad-access-token" not in h
    if not on:
        assert "x-ms-token-aad-id-token" not in h
        return
    assert len(h["x-ms-token-aad-id-token"]) == 1
    tok = h["x-ms-token-aad-id-token"][0]
    claims = verify_jwt(tok, op.jwks(), issuer=op.issuer,
                        audience=op.client_id)
    assert claims["preferred_username"] == "mia@contoso.com"
    assert tok not in g.log()
    # Public routes carry identity, never tokens.
    r = s.get(g.url + "/public/x", headers=FORGED, timeout=5)
    assert "x-ms-token-aad-id-token" not in echo_headers(r)


def test_forward_id_token_with_access_token(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["forward_id_token = on",
                                          "forward_access_token = on"])
    s, _ = sign_in(g, "noah@contoso.com")
    h = echo_headers(s.get(g.url + "/private", headers=FORGED, timeout=5))
    assert len(h["x-ms-token-aad-id-token"]) == 1
    assert decode_jwt(h["x-ms-token-aad-id-token"][0])[1]["aud"] == \
        op.client_id
    assert len(h["x-ms-token-aad-access-token"]) == 1
    assert len(h["x-ms-token-aad-expires-on"]) == 1


def test_bad_me_format_names_line_and_key(tmp):
    from conftest import BIN
    import os
    import subprocess
    conf = os.path.join(tmp, "bad.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:1\nupstream = http://127.0.0.1:2\n"
                "me_format = azure\n")
    p = subprocess.run([BIN, "-c", conf, "--check"], capture_output=True,
                       text=True)
    assert p.returncode != 0
    assert "bad.conf:3: me_format: must be gatehouse or easyauth" in p.stderr


@pytest.mark.parametrize("tokens", ["off", "on"])
def test_verify_answer_carries_id_token_only_when_asked(op, tmp, upstream,
                                                        tokens):
    """Forward-auth's answer goes to whoever may call /.auth/verify: the ID
    token joins it only with forward_auth_tokens = on, as the access token
    does."""
    g = start_gateway(op, tmp, upstream, [
        "trusted_proxies = 127.0.0.1", "forward_id_token = on",
        "forward_auth_tokens = " + tokens])
    s, _ = sign_in(g, "olga@contoso.com")
    r = s.get(g.url + "/.auth/verify", timeout=10, headers=dict(
        FORGED, **{"X-Forwarded-Uri": "/other", "X-Forwarded-Method": "GET"}))
    assert r.status_code == 200
    h = {k.lower(): v for k, v in r.headers.items()}
    assert h["x-forwarded-user"] == "olga@contoso.com"
    if tokens == "on":
        verify_jwt(h["x-ms-token-aad-id-token"], op.jwks(), issuer=op.issuer,
                   audience=op.client_id)
    else:
        assert "x-ms-token-aad-id-token" not in h
