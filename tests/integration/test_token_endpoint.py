# SPDX-License-Identifier: ISC
"""What comes back from the provider's token endpoint, and how gatehouse
authenticates to it, through the real binary against tests/op/op.py.

- Every token in a token answer is checked before it is kept or put in a
  header (the upstream request, the sign-out URL): a hostile provider's
  CR LF, space, control byte or oversized token is a 502 at sign-in, and a
  failed refresh (session kept, nothing stored or forwarded) at a refresh.
- An ID token's at_hash must match the access token of the same answer
  (OIDC Core 3.1.3.8, 3.2.2.9), at sign-in and at a refresh.
- The client authenticates in a way the provider lists in
  token_endpoint_auth_methods_supported (client_secret_basic when the
  member is absent), with the id and secret form-encoded for Basic
  (RFC 6749 2.3.1)."""
import base64
import re

import pytest
import requests

from op_client import OP
from signin import complete, echo_headers, sign_in, start_gateway
from test_conformance import (HTML, JSON, USER, assert_callback_refused,
                              assert_signed_in, check_page, no_leaks,
                              session_cookie_set, start_login)


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def injected(h):
    return [k for k in h if k.startswith("x-injected")]


# -- 1. tokens that would end up in a header --------------------------------
HOSTILE = [
    # (field, kind, what the log names)
    ("access_token", "crlf", r"access_token has a byte \(0x0d\)"),
    ("access_token", "lf", r"access_token has a byte \(0x0a\)"),
    ("access_token", "space", r"access_token has a byte \(0x20\)"),
    ("access_token", "del", r"access_token has a byte \(0x7f\)"),
    ("access_token", "nel", r"access_token has a byte \(0xc2\)"),
    ("access_token", "long", r"access_token is longer than 16384 bytes"),
    # jansson refuses a JSON string holding \u0000 outright
    ("access_token", "nul", r"no JSON object"),
    ("refresh_token", "crlf", r"refresh_token has a byte \(0x0d\)"),
    ("id_token", "crlf", r"id_token has a byte \(0x0d\)"),
]


@pytest.mark.parametrize("field,kind,reason", HOSTILE,
                         ids=["%s-%s" % (f, k) for f, k, _ in HOSTILE])
def test_hostile_token_refused_at_signin(op, tmp, upstream, field, kind,
                                         reason):
    """The code exchange answers with one hostile token: the sign-in is a
    502 page (HTML and JSON), no session, and nothing reaches the
    upstream, above all no header the token smuggled in."""
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on",
                                          "forward_authorization = on"])
    # Whatever the callback does, follow with the session it may have set,
    # so an injection that got through shows at the upstream first.
    s, auth, flow = start_login(g)
    op.fault("token_hostile", field=field, kind=kind)
    r = s.get(auth["location"], allow_redirects=False, headers=HTML,
              timeout=20)
    page = s.get(g.url + "/private", headers=JSON, allow_redirects=False,
                 timeout=10)
    if page.status_code == 200:
        assert not injected(echo_headers(page)), echo_headers(page)
    check_page(r, 502, "provider_error", HTML)
    assert "invalid answer" in r.text
    assert not session_cookie_set(r)
    assert page.status_code == 401
    # The JSON page too, and the log line that says which token and why.
    m = assert_callback_refused(
        g, op, upstream, 502, "provider_error",
        arm=lambda: op.fault("token_hostile", field=field, kind=kind),
        log=r"callback id=\w+ result=provider_error reason=\"(.*)\"")
    assert m and re.search(reason, m.group(1)), m.group(1)
    assert "X-Injected" not in g.log()


def test_token_at_limits_accepted(op, tmp, upstream):
    """The check is not a refusal of odd but valid tokens: an opaque
    b64token access token with '+', '/', '~' and '=' padding, and a refresh
    token with a space (RFC 6749 VSCHAR), are kept and forwarded as they
    are."""
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on"])
    at = "Ab+/_-.~9" + "x" * 1000 + "=="
    op.fault("token_override", fields={"access_token": at,
                                       "refresh_token": "rt with space~"})
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    h = echo_headers(s.get(g.url + "/private", timeout=10))
    assert h["x-ms-token-aad-access-token"] == [at]


@pytest.mark.parametrize("kind", ["crlf", "long"])
def test_hostile_access_token_at_refresh_not_stored(op, tmp, upstream, kind):
    """A refresh answers with a hostile access token: the refresh fails
    (the session is kept, as for a broken answer), the old token goes on
    being forwarded, and the hostile one is never stored or sent."""
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on",
                                          "forward_authorization = on"])
    s, r = sign_in(g, USER)
    tok1 = echo_headers(s.get(g.url + "/private", timeout=10))[
        "x-ms-token-aad-access-token"][0]
    op.fault("token_hostile", grant="refresh_token", kind=kind)
    s.post(g.url + "/.auth/refresh", headers=JSON, timeout=15)
    assert op.counter("fault:token_hostile") == 1
    r = s.get(g.url + "/private", timeout=10)
    assert r.status_code == 200, r.text[:300]
    h = echo_headers(r)
    assert not injected(h), h
    assert h["x-ms-token-aad-access-token"] == [tok1]
    assert h["authorization"] == ["Bearer " + tok1]
    assert g.loggrep(r"refresh result=failed reason=\"token endpoint "
                     r"answered: access_token ")
    assert not g.loggrep(r"refresh result=ended", timeout=0)
    me = s.get(g.url + "/.auth/me", timeout=5)
    assert me.status_code == 200
    no_leaks(g, op, me, [s.cookies.get("gatehouse")])


# -- 2. at_hash ---------------------------------------------------------------
def test_at_hash_matching_accepted(op, tmp, upstream):
    """A provider that puts at_hash in its ID tokens: sign-in and refresh
    work (the check computes the same value)."""
    op.config(id_token_at_hash=True)
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on"])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    r = s.post(g.url + "/.auth/refresh", headers=JSON, timeout=15)
    assert r.status_code == 200, r.text
    assert g.loggrep(r"refresh result=ok")


@pytest.mark.parametrize("arm", ["wrong", "no_access_token"])
def test_at_hash_mismatch_refused_at_signin(op, tmp, upstream, arm):
    """An ID token whose at_hash names another access token (or an answer
    that carries no access token at all) is refused: 401, no session."""
    g = start_gateway(op, tmp, upstream)

    def fault():
        if arm == "wrong":
            op.fault("id_token_wrong_at_hash")
        else:
            op.config(id_token_at_hash=True)
            op.fault("token_drop_fields", fields=["access_token"])

    assert_callback_refused(
        g, op, upstream, 401, "invalid_id_token", arm=fault,
        log=r"result=invalid_id_token reason=\"at_hash_mismatch: ")


def test_at_hash_mismatch_at_refresh_ends_session(op, tmp, upstream):
    """The ID token of a refresh names another access token: its answer is
    not trusted (nothing stored) and the session ends, as for any ID token
    that fails its checks at a refresh."""
    op.config(id_token_at_hash=True)
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on"])
    s, r = sign_in(g, USER)
    tok1 = echo_headers(s.get(g.url + "/private", timeout=10))[
        "x-ms-token-aad-access-token"][0]
    op.fault("id_token_wrong_at_hash", grant="refresh_token")
    r = s.post(g.url + "/.auth/refresh", headers=JSON, timeout=15)
    assert op.counter("fault:id_token_wrong_at_hash") == 1
    assert r.status_code == 401, r.text
    assert g.loggrep(r"refresh result=invalid_id_token reason=\"ID token "
                     r"at_hash does not match")
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401
    no_leaks(g, op, r, [tok1])


# -- 3. client authentication -------------------------------------------------
def token_calls(op):
    return [t for t in op.requests("token")]


@pytest.mark.parametrize("methods,expect", [
    (["client_secret_basic"], "client_secret_basic"),
    ("absent", "client_secret_basic"),
    (["client_secret_post"], "client_secret_post"),
    (["private_key_jwt", "client_secret_post"], "client_secret_post"),
    (["client_secret_post", "client_secret_basic"], "client_secret_basic"),
], ids=["basic-only", "absent", "post-only", "pkjwt-post", "both"])
def test_token_auth_method_from_metadata(op, tmp, upstream, methods, expect):
    """token_auth_method unset (auto): the method comes from the
    provider's list, Basic when it is listed or the list is absent (OIDC
    Discovery 3).  The provider refuses any other method, so a wrong choice
    is a failed sign-in; a refresh uses the same method."""
    op.config(token_auth_methods=methods)
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on"])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    assert s.post(g.url + "/.auth/refresh", headers=JSON,
                  timeout=15).status_code == 200
    calls = token_calls(op)
    assert [c["notes"].get("client_auth") for c in calls] == [expect] * 2
    assert [c["status"] for c in calls] == [200, 200]
    for c in calls:
        if expect == "client_secret_basic":
            assert "client_secret" not in c["form"]
            assert c["headers"]["authorization"].startswith("Basic ")
        else:
            assert c["form"]["client_secret"] == op.client_secret
            assert "authorization" not in c["headers"]
    assert op.client_secret not in g.log()


@pytest.mark.parametrize("configured,methods", [
    ("client_secret_post", ["client_secret_basic"]),
    ("client_secret_basic", ["client_secret_post"]),
    ("auto", ["private_key_jwt"]),
    ("auto", ["none"]),
])
def test_token_auth_method_not_listed_is_a_clear_error(op, tmp, upstream,
                                                       configured, methods):
    """A method the provider does not list (a configured one, or none
    gatehouse can use: private_key_jwt without a key, "none" for a
    confidential client) is a 502 at the token step that names the cause,
    and the secret is never sent."""
    op.config(token_auth_methods=methods)
    g = start_gateway(op, tmp, upstream,
                      ["token_auth_method = " + configured])
    s, auth, flow = start_login(g)
    r = s.get(auth["location"], allow_redirects=False, headers=JSON,
              timeout=20)
    check_page(r, 502, "token_auth_unsupported", JSON)
    assert not session_cookie_set(r)
    assert op.counter("token") == 0
    assert g.loggrep(r"result=token_auth_unsupported reason=\".*"
                     r"token_endpoint_auth_methods_supported")
    s, auth, flow = start_login(g)
    r = s.get(auth["location"], allow_redirects=False, headers=HTML,
              timeout=20)
    check_page(r, 502, "token_auth_unsupported", HTML)
    assert "administrator" in r.text
    assert op.counter("token") == 0


@pytest.mark.parametrize("methods", [["client_secret_basic"],
                                     ["client_secret_post"]],
                         ids=["basic", "post"])
def test_client_credentials_that_need_encoding(op, tmp, upstream, methods):
    """A client id and secret with ':', '%', '+', a space and non-ASCII
    authenticate with either method: form-encoded before base64 for Basic
    (RFC 6749 2.3.1; the provider decodes them so), form-encoded in the
    body for post."""
    cid = "app:id %41+\u00e9"
    secret = "s3:cr%2Bet+ v/\u00e9\u20ac="
    op.config(client_id=cid, client_secret=secret, token_auth_methods=methods)
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on"])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    assert s.post(g.url + "/.auth/refresh", headers=JSON,
                  timeout=15).status_code == 200
    calls = token_calls(op)
    assert [c["status"] for c in calls] == [200, 200]
    if methods == ["client_secret_basic"]:
        raw = base64.b64decode(calls[0]["headers"]["authorization"][6:])
        assert raw == (b"app%3Aid+%2541%2B%C3%A9:s3%3Acr%252Bet%2B+v%2F"
                       b"%C3%A9%E2%82%AC%3D"), raw
    else:
        assert calls[0]["form"]["client_secret"] == secret
        assert calls[0]["form"]["client_id"] == cid
