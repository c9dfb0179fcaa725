"""Self-test of the test OpenID Provider (tests/op/op.py).

/usr/bin/python3 -m pytest -q tests/integration/test_op_selftest.py
"""

import time

import pytest
import requests

from certs import ASSERTION_TYPE, Credential
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


# -- private_key_jwt: the OP's checks of a client assertion -----------------

@pytest.fixture(scope="module")
def creds():
    """The registered credential and a stranger's."""
    return Credential(), Credential(cn="someone else")


def assertion_redeem(op, assertion, extra=None):
    """Redeem a fresh code with `assertion` as the client credential."""
    flow = Flow(op)
    answer = sign_in(flow.url, "alice@contoso.com")
    data = {"grant_type": "authorization_code", "code": answer["code"],
            "redirect_uri": flow.redirect_uri, "code_verifier": flow.verifier,
            "client_id": op.client_id, "client_assertion": assertion,
            "client_assertion_type": ASSERTION_TYPE}
    data.update(extra or {})
    return requests.post(op.endpoint("token"), data=data, timeout=10)


@pytest.mark.parametrize("alg", ["PS256", "RS256"])
def test_assertion_accepted(op, creds, alg):
    me, _ = creds
    op.config(client_certificates=[me.cert_pem])
    r = assertion_redeem(op, me.assertion(op.client_id, op.endpoint("token"),
                                          alg=alg))
    assert r.status_code == 200, r.text
    assert "id_token" in r.json()
    last = op.last("token")
    assert last["notes"]["client_auth"] == "private_key_jwt"
    assert last["notes"]["assertion"]["header"]["alg"] == alg


def refused(r, code):
    """Entra's answer to a bad client credential: 401 invalid_client with
    its AADSTS number and the ids support asks for."""
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["error"] == "invalid_client", body
    assert body["error_codes"] == [code], body
    assert body["error_description"].startswith("AADSTS%d: " % code)
    assert body["trace_id"] and body["correlation_id"] and body["timestamp"]


def test_assertion_refusals(op, creds):
    """Each check the OP makes, failed one at a time."""
    me, stranger = creds
    op.config(client_certificates=[me.cert_pem])
    tok = op.endpoint("token")
    cid = op.client_id
    now = int(time.time())
    cases = [
        # signed by another key, naming the registered certificate
        (me.assertion(cid, tok, key=stranger.key), 700027),
        (me.assertion(cid, tok, alg="RS256", key=stranger.key), 700027),
        # a certificate the app registration does not list
        (stranger.assertion(cid, tok), 700027),
        (me.assertion(cid, tok, header={"x5t#S256": None, "x5t": None}),
         700027),
        (me.assertion(cid, tok, header={"x5t": stranger.x5t}), 700027),
        # PS256 with a salt that is not the digest's length
        (me.assertion(cid, tok, salt=64), 700027),
        # claimed RS256, signed PS256
        (me.assertion(cid, tok, alg="PS256", header={"alg": "RS256"}),
         700027),
        (me.assertion(cid, tok, header={"alg": "HS256"}), 5002738),
        (me.assertion(cid, tok, header={"alg": "none"}), 5002738),
        (me.assertion(cid, tok + "x"), 700023),
        (me.assertion(cid, op.issuer), 700023),
        (me.assertion(cid, tok, claims={"sub": "someone"}), 700021),
        (me.assertion("another-app", tok), 700021),
        (me.assertion(cid, tok, lifetime=3600), 700024),
        (me.assertion(cid, tok, now=now - 1000), 700024),
        (me.assertion(cid, tok, claims={"nbf": now + 1000}), 700024),
        (me.assertion(cid, tok, claims={"iat": now + 1000}), 700024),
        (me.assertion(cid, tok, claims={"exp": None}), 700024),
        (me.assertion(cid, tok, claims={"jti": None}), 50013),
        ("not.a.jwt", 50027),
    ]
    for assertion, code in cases:
        refused(assertion_redeem(op, assertion), code)
    # the client_id parameter must be the assertion's
    refused(assertion_redeem(op, me.assertion("another-app", tok,),
                             {"client_id": "another-app"}), 700016)
    refused(assertion_redeem(op, me.assertion(cid, tok),
                             {"client_assertion_type": "jwt"}), 7000218)
    # the OP's own clock decides (time_offset moves it)
    op.config(time_offset=-1000)
    refused(assertion_redeem(op, me.assertion(cid, tok)), 700024)
    op.config(time_offset=1000)
    refused(assertion_redeem(op, me.assertion(cid, tok)), 700024)
    op.config(time_offset=0)
    r = assertion_redeem(op, me.assertion(cid, tok))
    assert r.status_code == 200, r.text


def test_assertion_replay_refused(op, creds):
    me, _ = creds
    op.config(client_certificates=[me.cert_pem])
    a = me.assertion(op.client_id, op.endpoint("token"))
    assert assertion_redeem(op, a).status_code == 200
    r = assertion_redeem(op, a)
    refused(r, 50013)
    assert "replay" in r.json()["error_description"]


def test_assertion_method_rules(op, creds):
    me, _ = creds
    op.config(client_certificates=[me.cert_pem])
    a = me.assertion(op.client_id, op.endpoint("token"))
    r = assertion_redeem(op, a, {"client_secret": op.client_secret})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    op.config(token_auth_methods=["client_secret_post"])
    refused(assertion_redeem(op, me.assertion(op.client_id,
                                              op.endpoint("token"))),
            7000218)
