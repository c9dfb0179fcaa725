"""Self-test of the test OpenID Provider (tests/op/op.py).

/usr/bin/python3 -m pytest -q tests/integration/test_op_selftest.py
"""

import time

import pytest
import requests

from op_client import (OP, Flow, decode_jwt, full_sign_in, redeem_code,
                       refresh, sign_in, sign_in_with_form, verify_jwt)

REDIRECT = "http://127.0.0.1:1/.auth/callback"


@pytest.fixture(scope="module")
def op():
    server = OP()
    yield server
    rc = server.stop()
    assert rc == 0, server.stderr()


@pytest.fixture(autouse=True)
def fresh(op):
    op.reset()
    op.config(redirect_uris=[REDIRECT])
    yield


def test_discovery_shape(op):
    doc = requests.get(op.authority + "/v2.0/.well-known/openid-configuration",
                       timeout=5).json()
    assert doc["issuer"] == op.issuer
    assert op.tenant_id in doc["issuer"]
    assert "onmicrosoft.com" not in doc["issuer"]
    assert "code_challenge_methods_supported" not in doc
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    same = requests.get(op.issuer + "/.well-known/openid-configuration",
                        timeout=5).json()
    assert same == doc
    assert op.counter("discovery") == 2


def test_code_flow_pkce_and_refresh_rotation(op):
    op.user("alice@contoso.com", roles=["Admin"], name="Alice Example")
    flow = Flow(op, login_hint="alice@contoso.com", prompt="create")
    answer = sign_in(flow.url, "alice@contoso.com")
    assert answer["redirect_uri"] == REDIRECT
    assert answer["state"] == flow.state
    assert "iss" not in answer
    last = op.last("authorize")
    assert last["query"]["prompt"] == "create"
    assert last["query"]["login_hint"] == "alice@contoso.com"

    # a wrong verifier burns the code: single use
    bad = redeem_code(op, answer["code"], flow.verifier[:-1] + "x")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    answer = sign_in(flow.url, "alice@contoso.com")
    r = redeem_code(op, answer["code"], flow.verifier, auth="basic")
    assert r.status_code == 200, r.text
    tokens = r.json()
    again = redeem_code(op, answer["code"], flow.verifier)
    assert again.json()["error"] == "invalid_grant"
    assert "AADSTS54005" in again.json()["error_description"]

    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    jwks = op.jwks()
    claims = verify_jwt(tokens["id_token"], jwks, issuer=op.issuer,
                        audience=op.client_id, nonce=flow.nonce)
    assert claims["ver"] == "2.0" and claims["tid"] == op.tenant_id
    assert claims["roles"] == ["Admin"] and claims["name"] == "Alice Example"
    assert claims["preferred_username"] == "alice@contoso.com"
    header, _ = decode_jwt(tokens["id_token"])
    assert header["kid"] == op.keys()["signing_kid"]
    at = verify_jwt(tokens["access_token"], jwks)
    assert at["aud"] == "00000003-0000-0000-c000-000000000000"
    assert "User.Read" in at["scp"].split() and at["oid"] == claims["oid"]
    tampered = tokens["id_token"][:-4] + ("AAAA" if not tokens["id_token"]
                                          .endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError):
        verify_jwt(tampered, jwks)

    r1 = refresh(op, tokens["refresh_token"])
    assert r1.status_code == 200, r1.text
    t1 = r1.json()
    assert t1["refresh_token"] != tokens["refresh_token"]
    c1 = verify_jwt(t1["id_token"], jwks, issuer=op.issuer,
                    audience=op.client_id)
    assert c1["sub"] == claims["sub"] and "nonce" not in c1
    old = refresh(op, tokens["refresh_token"])
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"
    assert refresh(op, t1["refresh_token"], auth="basic").status_code == 200

    counters = op.counters()
    assert counters["token_refresh"] == 3
    assert counters["token_authorization_code"] == 3
    token_reqs = op.requests("token")
    assert token_reqs[1]["notes"]["client_auth"] == "client_secret_basic"
    assert token_reqs[0]["form"]["client_secret"] == op.client_secret


def test_authorize_validation_and_modes(op):
    flow = Flow(op)
    bad = requests.get(flow.url.replace("127.0.0.1%3A1", "127.0.0.1%3A2"),
                       allow_redirects=False, timeout=5)
    assert bad.status_code == 400 and "AADSTS50011" in bad.text
    no_pkce = Flow(op)
    url = no_pkce.url.replace("code_challenge_method=S256",
                              "code_challenge_method=plain")
    answer = sign_in(url, "bob")
    assert answer["error"] == "invalid_request" and "code" not in answer

    op.config(advertise_iss=True, default_user="carol@example.com")
    assert op.discovery()["authorization_response_iss_parameter_supported"]
    fp = Flow(op, response_mode="form_post")
    answer = sign_in(fp.url)
    assert answer["response_mode"] == "form_post"
    assert answer["iss"] == op.issuer and answer["state"] == fp.state
    assert op.last("authorize")["notes"]["user"] == "carol@example.com"

    op.config(default_user=None)
    s = requests.Session()
    page, answer = sign_in_with_form(Flow(op, prompt="create").url, "dave",
                                     session=s, display_name="Dave D")
    assert "Create account" in page.text and "code" in answer
    # SSO cookie: the next authorize signs in without a form
    answer = sign_in(Flow(op).url, session=s)
    assert op.last("authorize")["notes"]["login"] == "sso"
    r = requests.get(op.endpoint("logout"), params={
        "post_logout_redirect_uri": "http://127.0.0.1:1/", "state": "xyz"},
        allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert r.headers["Location"] == "http://127.0.0.1:1/?state=xyz"
    assert op.last("logout")["notes"]["post_logout_redirect_uri"] == \
        "http://127.0.0.1:1/"


def test_faults(op):
    jwks = op.jwks()
    op.fault("id_token_wrong_nonce")
    flow, tokens = full_sign_in(op, "eve")
    with pytest.raises(ValueError, match="nonce"):
        verify_jwt(tokens["id_token"], jwks, nonce=flow.nonce)
    # one-shot: the next one is fine
    flow, tokens = full_sign_in(op, "eve")
    verify_jwt(tokens["id_token"], jwks, nonce=flow.nonce)

    op.fault("id_token_alg_none", grant="refresh_token")
    t = refresh(op, tokens["refresh_token"]).json()
    assert decode_jwt(t["id_token"])[0]["alg"] == "none"

    op.fault("token_error", sticky=True, error="invalid_grant")
    for _ in range(2):
        r = refresh(op, t["refresh_token"])
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    op.clear_faults()
    assert refresh(op, t["refresh_token"]).status_code == 200

    op.fault("token_stall", seconds=0.6)
    flow = Flow(op)
    answer = sign_in(flow.url, "eve")
    start = time.monotonic()
    # other endpoints answer while the token endpoint stalls
    import threading
    result = {}
    th = threading.Thread(target=lambda: result.setdefault(
        "r", redeem_code(op, answer["code"], flow.verifier)))
    th.start()
    time.sleep(0.1)
    assert op.jwks()["keys"]
    assert time.monotonic() - start < 0.5
    th.join()
    assert result["r"].status_code == 200
    assert time.monotonic() - start >= 0.6

    old_kid = op.keys()["signing_kid"]
    rot = op.rotate_keys(keep_old=False)
    assert rot["new_kid"] != old_kid and op.keys()["kids"] == [rot["new_kid"]]
    assert [k["kid"] for k in op.jwks()["keys"]] == [rot["new_kid"]]

    op.fault("discovery_down")
    assert requests.get(op.discovery_url, timeout=5).status_code == 503
    assert requests.get(op.discovery_url, timeout=5).status_code == 200
