# SPDX-License-Identifier: ISC
"""The OpenID Foundation relying-party tests for the code flow that apply to
a confidential web client, each through the real binary against the tests'
own misbehaving OpenID Provider (tests/op).  tests/CONFORMANCE.md maps each
test to its conformance-suite name.

Every refusal is held to one outcome contract: the status (400 malformed
callback, 401 verification failure, 502 provider garbage, 504 provider
timeout, 503 unusable discovery or JWKS), an HTML page for browsers and
JSON {"error": ...} for Accept: application/json, no session cookie, still
signed out, nothing reached the upstream, no token call beyond the expected
ones, and no token, code, client secret or cookie value in the response or
in gatehouse's log."""
import base64
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conftest import Gatehouse, free_port
from op_client import OP, decode_jwt
from signin import (authorize, begin_login, complete, gateway_lines,
                    to_sign_in,
                    query, sign_in, start_gateway)

HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}
USER = "rp@contoso.com"


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


# -- helpers ------------------------------------------------------------
def session_cookie_set(r):
    """Whether a response sets a non-empty session cookie (flow and retry
    cookies are gatehouse_flow_*/gatehouse_retry, not the session)."""
    for v in r.raw.headers.getlist("Set-Cookie"):
        if re.match(r"\s*gatehouse=[^;\s]", v):
            return True
    return False


def no_leaks(g, op, r, values):
    """No secret value in the answer or in gatehouse's log; no JWT (every
    token here is a JWT, and all JWTs start with eyJ) either."""
    log = g.log()
    body = r.text + json.dumps(dict(r.headers))
    for v in [op.client_secret] + [v for v in values if v]:
        assert v not in body, "leaked in the response: %r" % v[:20]
        assert v not in log, "leaked in the log: %r" % v[:20]
    assert "eyJ" not in body
    assert "eyJ" not in log, [l for l in log.splitlines() if "eyJ" in l]


def start_login(g):
    """A browser that went to the OP and came back with a code: (session,
    the OP's answer, the flow cookie values)."""
    s = requests.Session()
    auth = authorize(s, begin_login(g, s, "/private"), USER)
    return s, auth, [c.value for c in s.cookies]


def check_page(r, status, error, accept):
    assert r.status_code == status, (r.status_code, r.text[:300])
    ctype = r.headers.get("Content-Type", "")
    if accept is JSON:
        assert ctype.startswith("application/json"), ctype
        assert r.json()["error"] == error, r.text
    else:
        assert ctype.startswith("text/html"), ctype
        assert "<html" in r.text and "Error %d" % status in r.text
    assert "Location" not in r.headers


def assert_callback_refused(g, op, upstream, status, error, arm=None,
                            mangle=None, token_calls=1, log=None):
    """Sign in twice (browser, API client), arming the fault after the
    OP's /authorize answer; the callback must be refused by the contract."""
    for accept in (HTML, JSON):
        s, auth, flow = start_login(g)
        tok0 = op.counter("token")
        up0 = upstream.stats()["requests"]
        if arm is not None:
            arm()
        url = mangle(auth) if mangle is not None else auth["location"]
        r = s.get(url, allow_redirects=False, headers=accept, timeout=20)
        check_page(r, status, error, accept)
        assert not session_cookie_set(r), r.headers.get("Set-Cookie")
        assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401
        assert s.get(g.url + "/private", headers=JSON, allow_redirects=False,
                     timeout=5).status_code == 401
        assert upstream.stats()["requests"] == up0 + 1  # only stats calls
        assert op.counter("token") - tok0 == token_calls
        no_leaks(g, op, r, [auth.get("code")] + flow)
    if log is not None:
        m = g.loggrep(log)
        assert m, g.log()[-2000:]
        return m
    return None


def assert_signin_unavailable(g, op, upstream):
    """Discovery or JWKS unusable: sign-in answers 503, redirects nowhere."""
    up0 = upstream.stats()["requests"]
    for accept in (HTML, JSON):
        r = requests.get(g.url + "/.auth/login?post_login_redirect_uri=/x",
                         headers=accept, allow_redirects=False, timeout=5)
        check_page(r, 503, "provider_unavailable", accept)
        assert not r.raw.headers.getlist("Set-Cookie")
        # A protected page answers a browser as /.auth/login does (it
        # sends it to the provider itself): the same 503, never a redirect
        # to an endpoint named by the bad document.
        r = requests.get(g.url + "/private", headers=accept,
                         allow_redirects=False, timeout=5)
        if accept is HTML:
            check_page(r, 503, "provider_unavailable", accept)
            assert not r.raw.headers.getlist("Set-Cookie")
        else:
            assert r.status_code == 401
        assert requests.get(g.url + "/.auth/me", timeout=5).status_code == 401
    assert op.counter("authorize") == 0 and op.counter("token") == 0
    assert upstream.stats()["requests"] == up0 + 1
    assert "eyJ" not in g.log() and op.client_secret not in g.log()


def gateway_with_issuer(op, tmp, upstream, extra=()):
    """gatehouse configured with oidc_issuer (generic OIDC) instead of an
    Entra authority; does not wait for the provider."""
    port = free_port()
    op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % port])
    lines = [("oidc_issuer = " + op.issuer) if l.startswith("authority")
             else l for l in gateway_lines(op, tmp, port, upstream.url, extra)]
    return Gatehouse(tmp, lines, port=port)


def assert_signed_in(g, s, r, user=USER):
    assert r.status_code == 302, (r.status_code, r.text[:300], g.log()[-1500:])
    assert session_cookie_set(r)
    me = s.get(g.url + "/.auth/me", timeout=5)
    assert me.status_code == 200 and me.json()["user_id"] == user


# -- response type, client authentication, discovery ---------------------
def test_rp_response_type_code(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    a = op.last("authorize")["query"]
    assert a["response_type"] == "code"
    assert a["client_id"] == op.client_id
    assert a["redirect_uri"] == "http://127.0.0.1:%d/.auth/callback" % g.port
    assert "openid" in a["scope"].split()
    assert a["code_challenge_method"] == "S256"
    assert len(a["code_challenge"]) == 43
    assert len(a["state"]) >= 43 and len(a["nonce"]) >= 43
    t = op.last("token")
    assert t["form"]["grant_type"] == "authorization_code"
    assert t["form"]["redirect_uri"] == a["redirect_uri"]
    assert 43 <= len(t["form"]["code_verifier"]) <= 128


def test_rp_nonce_sent_in_code_flow(op, tmp, upstream):
    """The nonce is optional in the code flow; gatehouse always sends a
    fresh one, and binds it to the browser's flow."""
    g = start_gateway(op, tmp, upstream)
    s1, _ = sign_in(g, USER)
    n1 = op.last("authorize")["query"]["nonce"]
    s2, _ = sign_in(g, USER)
    n2 = op.last("authorize")["query"]["nonce"]
    assert n1 != n2 and len(n1) >= 43


def test_rp_token_endpoint_client_secret_post(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream,
                      ["token_auth_method = client_secret_post"])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    t = op.last("token")
    assert t["notes"]["client_auth"] == "client_secret_post"
    assert t["form"]["client_secret"] == op.client_secret
    assert "authorization" not in t["headers"]
    assert op.client_secret not in g.log()


def test_rp_token_endpoint_client_secret_basic(op, tmp, upstream):
    # The default secret has characters that need form-encoding in Basic.
    g = start_gateway(op, tmp, upstream,
                      ["token_auth_method = client_secret_basic"])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    t = op.last("token")
    assert t["notes"]["client_auth"] == "client_secret_basic"
    assert "client_secret" not in t["form"]
    assert t["headers"]["authorization"].startswith("Basic ")
    assert op.client_secret not in g.log()


def test_rp_response_mode_form_post(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["response_mode = form_post"])
    s = requests.Session()
    url = begin_login(g, s, "/private")
    for c in s.cookies:
        c.secure = False  # http://127.0.0.1 is a trustworthy origin
    auth = authorize(s, url, USER)
    assert auth["response_mode"] == "form_post"
    assert_signed_in(g, s, complete(g, s, auth))


def test_rp_discovery_openid_configuration_and_jwks_uri_keys(op, tmp,
                                                              upstream):
    g = start_gateway(op, tmp, upstream)
    assert op.counter("discovery") >= 1
    # The keys come from the document's jwks_uri, once per worker.
    jwks = op.requests("jwks")
    assert 1 <= len(jwks) <= 2
    assert jwks[0]["path"] == urlsplit(op.endpoint("jwks")).path
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    # Sign-in used the document's endpoints.
    assert op.counter("authorize") == 1 and op.counter("token") == 1


def test_rp_discovery_issuer_not_matching_config(op, tmp, upstream):
    # Another host: the same scheme and host is an issuer the oidc_issuer
    # may name (MSAL's rules).
    op.fault("discovery_wrong_issuer", sticky=True,
             issuer="https://issuer.example/%s/v2.0" % op.tenant_id)
    g = gateway_with_issuer(op, tmp, upstream)
    assert g.loggrep(r"provider_error what=discovery reason=\"discovery "
                     r"issuer differs from the configured oidc_issuer\"",
                     timeout=10), g.log()
    assert_signin_unavailable(g, op, upstream)
    assert op.counter("jwks") == 0  # nothing from the bad document is used


@pytest.mark.parametrize("fault", ["jwks_empty", "jwks_broken",
                                   "jwks_invalid_json", "jwks_down"])
def test_rp_discovery_jwks_unusable(op, tmp, upstream, fault):
    op.fault(fault, sticky=True)
    g = gateway_with_issuer(op, tmp, upstream)
    assert g.loggrep(r"provider_error what=jwks", timeout=10), g.log()
    assert_signin_unavailable(g, op, upstream)


# -- ID token signature and key selection --------------------------------
def test_rp_id_token_sig_rs256(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    assert g.loggrep(r'callback id=\w+ result=ok user="rp@contoso.com"')


@pytest.mark.parametrize("fault,reason", [
    ("id_token_alg_none", r"alg_not_allowed: JWT alg none"),
    ("id_token_hs256_pubkey", r"alg_not_allowed: JWT alg HS256"),
    ("id_token_bad_signature", r"signature"),
    ("id_token_embedded_jwk", r"header_key_forbidden: .*jwk"),
], ids=["rp-id_token-sig-none", "hs256-with-public-key",
        "rp-id_token-bad-sig-rs256", "embedded-jwk"])
def test_rp_id_token_signature_refused(op, tmp, upstream, fault, reason):
    g = start_gateway(op, tmp, upstream)
    assert_callback_refused(
        g, op, upstream, 401, "invalid_id_token", arm=lambda: op.fault(fault),
        log=r"callback id=\w+ result=invalid_id_token reason=\"%s" % reason)
    assert op.counter("fault:" + fault) == 2


def test_id_token_jku_never_fetched(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    assert_callback_refused(
        g, op, upstream, 401, "invalid_id_token",
        arm=lambda: op.fault("id_token_jku"),
        log=r"result=invalid_id_token reason=\"header_key_forbidden: .*jku")
    assert op.counter("fault:id_token_jku") == 2
    assert op.counter("evil_jwks") == 0


def test_rp_key_rotation_op_sign_key(op, tmp, upstream):
    """The OP starts signing with a new key and drops the old one between
    two sign-ins: the unknown kid makes gatehouse fetch the JWKS again."""
    g = start_gateway(op, tmp, upstream, ["workers = 1"])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    jwks0 = op.counter("jwks")
    old = op.keys()["signing_kid"]
    new = op.rotate_keys(keep_old=False)["signing_kid"]
    assert new != old and op.keys()["kids"] == [new]
    s, auth, _ = start_login(g)
    r = s.get(auth["location"], allow_redirects=False, timeout=15)
    assert_signed_in(g, s, r)
    assert op.counter("jwks") == jwks0 + 1
    assert g.loggrep(r'jwks_refetch reason="unknown kid"')


def test_unknown_kid_flood_fetches_jwks_at_most_once(op, tmp, upstream):
    """20 sign-ins whose ID tokens name keys the OP never publishes: each
    is refused, and the JWKS is fetched again at most once a minute for
    the whole process, however many workers ask."""
    g = start_gateway(op, tmp, upstream, ["workers = 2"])
    jwks0 = op.counter("jwks")
    up0 = upstream.stats()["requests"]
    op.fault("id_token_unknown_kid", times=20)
    for _ in range(20):
        s, auth, flow = start_login(g)
        r = s.get(auth["location"], allow_redirects=False, headers=JSON,
                  timeout=15)
        check_page(r, 401, "invalid_id_token", JSON)
        assert not session_cookie_set(r)
    assert op.counter("fault:id_token_unknown_kid") == 20
    assert op.counter("jwks") - jwks0 <= 1
    assert upstream.stats()["requests"] == up0 + 1
    assert len(re.findall(r"result=invalid_id_token reason=\"kid_unknown",
                          g.log())) == 20


class KeyServer:
    """A JWKS of our own keys on a free loopback port, for ID tokens the
    OP cannot make (no kid in the header)."""

    def __init__(self, nkeys, kids=False):
        self.keys = [rsa.generate_private_key(public_exponent=65537,
                                              key_size=2048)
                     for _ in range(nkeys)]
        jwks = {"keys": []}
        for i, k in enumerate(self.keys):
            n = k.public_key().public_numbers()
            jwk = {"kty": "RSA", "use": "sig", "alg": "RS256",
                   "n": _b64u(n.n.to_bytes((n.n.bit_length() + 7) // 8,
                                           "big")),
                   "e": _b64u(n.e.to_bytes(3, "big"))}
            if kids:
                jwk["kid"] = "k%d" % i
            jwks["keys"].append(jwk)
        body = json.dumps(jwks).encode()

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/keys" % self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def sign(self, header, claims, key=0):
        si = (_b64u(json.dumps(header).encode()) + "." +
              _b64u(json.dumps(claims).encode())).encode()
        sig = self.keys[key].sign(si, padding.PKCS1v15(), hashes.SHA256())
        return si.decode() + "." + _b64u(sig)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def _b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def kidless_id_token(op, ks, nonce):
    now = int(time.time())
    claims = {"iss": op.issuer, "aud": op.client_id, "sub": "kidless-sub",
              "iat": now, "nbf": now, "exp": now + 600, "nonce": nonce,
              "preferred_username": USER, "oid": str(uuid.uuid4()),
              "tid": op.tenant_id, "ver": "2.0"}
    return ks.sign({"typ": "JWT", "alg": "RS256"}, claims)


@pytest.mark.parametrize("nkeys", [1, 2], ids=["single-jwks",
                                               "multiple-jwks"])
def test_rp_id_token_kid_absent(op, tmp, upstream, nkeys):
    """op.py always puts a kid in its headers; these ID tokens are ours,
    handed out by the OP's token endpoint (token_override), verified
    against our JWKS (discovery_override jwks_uri).  With one key a kid
    is not needed; with several it is ambiguous and refused."""
    ks = KeyServer(nkeys)
    try:
        op.fault("discovery_override", fields={"jwks_uri": ks.url},
                 sticky=True)
        g = start_gateway(op, tmp, upstream)

        def arm():
            nonce = op.last("authorize")["query"]["nonce"]
            op.fault("token_override",
                     fields={"id_token": kidless_id_token(op, ks, nonce)})

        if nkeys == 1:
            s, auth, _ = start_login(g)
            arm()
            r = s.get(auth["location"], allow_redirects=False, timeout=15)
            assert_signed_in(g, s, r)
        else:
            assert_callback_refused(
                g, op, upstream, 401, "invalid_id_token", arm=arm,
                log=r"result=invalid_id_token reason=\"kid_ambiguous")
    finally:
        ks.stop()


# -- ID token claims -------------------------------------------------------
CLAIM_FAULTS = [
    ("rp-id_token-iss-mismatch", "id_token_wrong_iss", {}, r"iss"),
    ("rp-id_token-aud-mismatch", "id_token_wrong_aud", {}, r"aud"),
    ("azp-mismatch", "id_token_azp_mismatch", {}, r"azp"),
    ("rp-id_token-iat-missing", "id_token_claims", {"remove": ["iat"]},
     r"iat"),
    ("iat-in-future", "id_token_iat_future", {}, r"iat"),
    ("expired", "id_token_expired", {}, r"exp"),
    ("nbf-in-future", "id_token_nbf_future", {}, r"nbf"),
    ("rp-id_token-sub-missing", "id_token_missing_sub", {}, r"sub"),
    ("rp-nonce-invalid", "id_token_wrong_nonce", {}, r"nonce"),
    ("nonce-missing", "id_token_missing_nonce", {}, r"nonce"),
]


@pytest.mark.parametrize("fault,params,reason",
                         [c[1:] for c in CLAIM_FAULTS],
                         ids=[c[0] for c in CLAIM_FAULTS])
def test_rp_id_token_claims_refused(op, tmp, upstream, fault, params,
                                    reason):
    g = start_gateway(op, tmp, upstream)
    m = assert_callback_refused(
        g, op, upstream, 401, "invalid_id_token",
        arm=lambda: op.fault(fault, **params),
        log=r"callback id=\w+ result=invalid_id_token reason=\"(.*)\"")
    assert re.search(reason, m.group(1)), m.group(1)
    assert op.counter("fault:" + fault) == 2


def test_id_token_multi_aud_with_azp_client_accepted(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s, auth, _ = start_login(g)
    op.fault("id_token_multi_aud", audiences=["api://another-app"])
    r = s.get(auth["location"], allow_redirects=False, timeout=15)
    assert_signed_in(g, s, r)
    assert op.counter("fault:id_token_multi_aud") == 1


# -- the token endpoint --------------------------------------------------
def test_token_endpoint_invalid_grant_401(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    assert_callback_refused(
        g, op, upstream, 401, "token_refused",
        arm=lambda: op.fault("token_error", error="invalid_grant"),
        log=r"result=token_refused reason=\"token endpoint refused: "
            r"invalid_grant AADSTS70008 trace_id=[0-9a-f-]{36} "
            r"correlation_id=[0-9a-f-]{36} "
            r"timestamp=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\"")


@pytest.mark.parametrize("fault,params,reason", [
    ("token_garbage", {}, r"no JSON object"),
    ("token_500", {}, r"answered 500"),
    ("token_huge", {}, r"too_large"),
    ("token_huge", {"chunked": True}, r"too_large"),
    ("token_drop_fields", {"fields": ["id_token"]}, r"no id_token"),
], ids=["garbage", "500", "huge", "huge-chunked", "no-id_token"])
def test_token_endpoint_garbage_502(op, tmp, upstream, fault, params,
                                    reason):
    g = start_gateway(op, tmp, upstream)
    m = assert_callback_refused(
        g, op, upstream, 502, "provider_error",
        arm=lambda: op.fault(fault, **params),
        log=r"callback id=\w+ result=provider_error reason=\"(.*)\"")
    assert re.search(reason, m.group(1)), m.group(1)


def test_token_endpoint_stall_504(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["provider_timeout = 2s"])
    s, auth, flow = start_login(g)
    up0 = upstream.stats()["requests"]
    op.fault("token_stall", seconds=20)
    t = time.time()
    r = s.get(auth["location"], allow_redirects=False, headers=JSON,
              timeout=20)
    took = time.time() - t
    check_page(r, 504, "provider_timeout", JSON)
    # Cut by provider_timeout (2 s), not by the stall (20 s).
    assert 1.5 < took < 15, took
    assert not session_cookie_set(r)
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401
    assert upstream.stats()["requests"] == up0 + 1
    assert g.loggrep(r"result=provider_timeout reason=\"token endpoint "
                     r"timed out\"")
    no_leaks(g, op, r, [auth["code"]] + flow)


def test_callback_malformed_400(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)

    def twice(auth):  # a repeated code: which one would be meant?
        return auth["location"] + "&code=" + auth["code"]

    assert_callback_refused(g, op, upstream, 400, "bad_callback",
                            mangle=twice, token_calls=0,
                            log=r"result=bad_callback")


# -- refresh answers that change who the session is ------------------------
@pytest.mark.parametrize("fault", ["refresh_different_iss",
                                   "refresh_different_sub",
                                   "refresh_different_aud"])
def test_refresh_id_token_changing_identity_ends_session(op, tmp, upstream,
                                                         fault):
    # Wide margins: the sign-in and the first request must both come
    # before the refresh window opens, even on a loaded machine.
    op.config(expires_in=8)
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on",
                                          "refresh_before = 4s"])
    t0 = time.time()
    s, r = sign_in(g, USER)
    cookie = s.cookies.get("gatehouse")
    assert s.get(g.url + "/private", timeout=5).status_code == 200
    assert op.counter("token_refresh") == 0, "refreshed before the fault"
    op.fault(fault)
    time.sleep(max(0.0, t0 + 4.5 - time.time()))  # within refresh_before
    up0 = upstream.stats()["requests"]
    r = s.get(g.url + "/private", headers=JSON, allow_redirects=False,
              timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    r = s.get(g.url + "/private", headers=HTML, allow_redirects=False,
              timeout=10)
    assert to_sign_in(r), (r.status_code, r.headers)
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401
    assert upstream.stats()["requests"] == up0 + 1
    assert op.counter("fault:" + fault) == 1
    assert op.counter("token_refresh") == 1  # and no retry
    assert g.loggrep(r"refresh result=invalid_id_token")
    assert g.loggrep(r"refresh result=ended")
    no_leaks(g, op, r, [cookie])


# -- RFC 9207: the mix-up defence ---------------------------------------
def _with_iss(auth, iss):
    parts = urlsplit(auth["location"])
    q = [(k, v) for k, v in parse_qsl(parts.query) if k != "iss"]
    if iss is not None:
        q.append(("iss", iss))
    return parts._replace(query=urlencode(q)).geturl()


@pytest.mark.parametrize("iss", ["http://127.0.0.1:1/attacker/v2.0", None],
                         ids=["wrong", "missing"])
def test_rp_iss_parameter_mismatch(op, tmp, upstream, iss):
    op.config(advertise_iss=True)
    g = start_gateway(op, tmp, upstream)
    assert_callback_refused(
        g, op, upstream, 401, "iss_mismatch",
        mangle=lambda auth: _with_iss(auth, iss), token_calls=0,
        log=r"result=iss_mismatch")


def test_rp_iss_parameter_matching_accepted(op, tmp, upstream):
    op.config(advertise_iss=True)
    g = start_gateway(op, tmp, upstream)
    s, auth, _ = start_login(g)
    assert auth["iss"] == op.issuer
    r = s.get(auth["location"], allow_redirects=False, timeout=15)
    assert_signed_in(g, s, r)


def test_iss_parameter_checked_even_when_not_advertised(op, tmp, upstream):
    """A response naming another issuer is refused even from a provider
    that does not advertise RFC 9207."""
    g = start_gateway(op, tmp, upstream)
    assert_callback_refused(
        g, op, upstream, 401, "iss_mismatch",
        mangle=lambda auth: _with_iss(auth, "http://127.0.0.1:1/x/v2.0"),
        token_calls=0, log=r"result=iss_mismatch")


# -- RP-initiated logout ---------------------------------------------------
def test_rp_init_logout_session(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, USER)
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    q = query(r.headers["Location"])
    assert r.headers["Location"].startswith(op.endpoint("logout") + "?")
    assert q["client_id"] == op.client_id
    assert q["post_logout_redirect_uri"] == g.url + "/.auth/logout/complete"
    _, claims = decode_jwt(q["id_token_hint"])
    assert claims["aud"] == op.client_id and claims["iss"] == op.issuer
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401
