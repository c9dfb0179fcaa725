# SPDX-License-Identifier: ISC
"""Bearer routes take access tokens only (RFC 9068, RFC 8725 3.11): an ID
token of this app, whose aud is client_id like the default api_audience's
and which travels in the sign-out URL, is refused; so is any token the
provider signed that carries an ID token's claims, grants nothing, or is
typed as another kind of JWT.  Real binary, the tests' own provider."""
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from op_client import OP, decode_jwt, full_sign_in
from signin import sign_in, start_gateway

ROUTES = ["route /api/* bearer", "route /* allow authenticated"]


@pytest.fixture
def op():
    o = OP()
    # Access tokens for this app's own API: aud = client_id, the default
    # api_audience, exactly the aud of its ID tokens.
    o.config(access_token_audience=o.client_id)
    o.user("ada@contoso.com", roles=["Admin"])
    o.user("bob@contoso.com")
    yield o
    o.stop()


@pytest.fixture
def gw(op, tmp, upstream):
    return start_gateway(op, tmp, upstream, routes=ROUTES)


def call(g, token):
    return requests.get(g.url + "/api/x", timeout=5,
                        headers={"Authorization": "Bearer " + token})


def refused(g, r, reason="not_access_token"):
    assert r.status_code == 401, (r.status_code, r.text[:300])
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert g.loggrep(r'bearer id=\w+ result=invalid_token reason="%s'
                     % reason), g.log()[-2000:]


def minted(op, user="ada@contoso.com", claims=None, header=None):
    """An access token from the provider, signed with its real key, with
    the given claims and header members changed (None removes one)."""
    if claims is not None or header is not None:
        op.fault("access_token_claims", claims=claims or {},
                 header=header or {})
    _, tok = full_sign_in(op, user)
    return tok["access_token"]


def test_id_token_from_the_sign_out_url_is_refused(gw, op):
    """The ID token of a real sign-in through gatehouse, read where anyone
    who sees the sign-out URL reads it (id_token_hint), is not an API
    credential, even for a user with roles."""
    s, _ = sign_in(gw, "ada@contoso.com")
    r = s.get(gw.url + "/.auth/logout", allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.status_code
    hint = parse_qs(urlsplit(r.headers["Location"]).query)["id_token_hint"][0]
    hdr, claims = decode_jwt(hint)[:2]
    assert claims["aud"] == op.client_id and "nonce" in claims
    assert claims["roles"] == ["Admin"]
    refused(gw, call(gw, hint))
    # The same sign-in's ID token straight from the token endpoint.
    _, tok = full_sign_in(op, "ada@contoso.com")
    refused(gw, call(gw, tok["id_token"]))
    # Control: the access token of that sign-in passes.
    assert call(gw, tok["access_token"]).status_code == 200


@pytest.mark.parametrize("name,claims,header", [
    ("nonce", {"nonce": "n-0S6_WzA2Mj"}, None),
    ("at_hash", {"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"}, None),
    ("c_hash", {"c_hash": "LDktKdoQak3Pk0cnXxCltA"}, None),
    ("no-scp-no-roles", {"scp": None}, None),
    ("blank-scp", {"scp": "  "}, None),
    ("empty-roles", {"scp": None, "roles": []}, None),
    ("typ-id-token", None, {"typ": "id_token+jwt"}),
    ("typ-logout", None, {"typ": "logout+jwt"}),
    ("typ-dpop", None, {"typ": "dpop+jwt"}),
    ("typ-not-string", None, {"typ": 1}),
])
def test_tokens_of_the_wrong_kind_are_refused(gw, op, name, claims, header):
    tok = minted(op, "bob@contoso.com", claims, header)
    assert op.counter("fault:access_token_claims") == 1
    refused(gw, call(gw, tok))


@pytest.mark.parametrize("name,user,claims,header", [
    ("typ-at+jwt", "bob@contoso.com", None, {"typ": "at+jwt"}),
    ("typ-application/at+jwt", "bob@contoso.com", None,
     {"typ": "application/at+jwt"}),
    ("typ-JWT-with-scp", "bob@contoso.com", None, None),
    ("no-typ", "bob@contoso.com", None, {"typ": None}),
    ("rfc9068-scope", "bob@contoso.com",
     {"scp": None, "scope": "api.read"}, {"typ": "at+jwt"}),
    ("app-roles-only", "ada@contoso.com", {"scp": None}, None),
])
def test_access_tokens_pass(gw, op, name, user, claims, header):
    tok = minted(op, user, claims, header)
    hdr = decode_jwt(tok)[0]
    if header and "typ" in header:
        assert hdr.get("typ") == header["typ"]
    r = call(gw, tok)
    assert r.status_code == 200, (name, r.status_code, gw.log()[-1500:])
