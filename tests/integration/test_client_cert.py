# SPDX-License-Identifier: ISC
"""Certificate credentials (private_key_jwt) and Entra's tid rule, through
the real binary against tests/op/op.py, which checks each client assertion
as Entra does (the registered certificate by thumbprint, the signature,
aud, iss = sub = client_id, the time range, and a jti used only once).

- Sign-in and refresh authenticate with a fresh assertion per token
  request, PS256 by default and RS256 when asked; no secret is sent.
- The provider refusing the certificate is a clear page and log line that
  name the client credentials, with the AADSTS code; the assertion itself
  never reaches the log.
- Unusable key files stop --check and the start, naming the key and file.
- The ID token's tid must be the tenant the issuer names (Entra); generic
  providers are left alone."""
import os
import re
import shutil
import subprocess
import threading
import urllib.parse

import pytest
import requests

from certs import ASSERTION_TYPE, Credential, decode
from conftest import BIN, Gatehouse, free_port
from op_client import OP
from signin import gateway_lines, sign_in
from test_conformance import (HTML, JSON, USER, assert_callback_refused,
                              assert_signed_in, check_page, no_leaks,
                              session_cookie_set, start_login)

GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                     r"[0-9a-f]{12}$")
OTHER_TENANT = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


@pytest.fixture(scope="module")
def cred():
    return Credential()


@pytest.fixture(scope="module")
def stranger():
    return Credential(cn="not registered")


def cert_lines(tmp, cred, alg=None, fmt="pkcs8", chain=()):
    cert, key = cred.write(tmp, fmt=fmt, chain=chain)
    lines = ["client_certificate = " + cert, "client_certificate_key = " + key]
    if alg:
        lines.append("client_assertion_alg = " + alg)
    return lines


def start(op, tmp, upstream, lines, secret=None, issuer=False, wait=True):
    """gatehouse with `lines` added; without client_secret when `lines` set
    a certificate, unless `secret`; with oidc_issuer instead of authority
    when `issuer`."""
    if secret is None:
        secret = not any(l.startswith("client_certificate") for l in lines)
    port = free_port()
    op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % port])
    conf = []
    for l in gateway_lines(op, tmp, port, upstream.url, lines):
        if l.startswith("client_secret") and not secret:
            continue
        if l.startswith("authority") and issuer:
            l = "oidc_issuer = " + op.issuer
        conf.append(l)
    g = Gatehouse(tmp, conf, port=port)
    if wait:
        for w in range(2):
            assert g.loggrep(r"provider ready worker=%d" % w, timeout=10), \
                g.log()
    return g


def assertions(op):
    """(call, header, claims, raw assertion) of every token request."""
    out = []
    for c in op.requests("token"):
        a = c["form"].get("client_assertion")
        h, cl = decode(a) if a else (None, None)
        out.append((c, h, cl, a))
    return out


# -- sign-in and refresh -----------------------------------------------------
@pytest.mark.parametrize("alg,fmt", [(None, "pkcs8"), ("RS256", "traditional")],
                         ids=["PS256-default", "RS256"])
def test_signin_and_refresh_with_certificate(op, tmp, upstream, cred, alg,
                                             fmt):
    """A certificate whose file also holds a chain (the first is the
    client's), no client_secret: sign-in and a refresh each send a new
    assertion that the provider verifies; a second sign-in a third."""
    ca = Credential(cn="an issuing CA")
    op.config(client_certificates=[cred.cert_pem])
    g = start(op, tmp, upstream,
              cert_lines(tmp, cred, alg, fmt, chain=[ca]) +
              ["forward_access_token = on"])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    assert s.get(g.url + "/private", timeout=10).status_code == 200
    r = s.post(g.url + "/.auth/refresh", headers=JSON, timeout=15)
    assert r.status_code == 200, r.text
    s2, r2 = sign_in(g, USER)
    assert_signed_in(g, s2, r2)

    calls = assertions(op)
    assert [c["notes"].get("grant_type") for c, _, _, _ in calls] == [
        "authorization_code", "refresh_token", "authorization_code"]
    want_alg = alg or "PS256"
    for c, h, cl, a in calls:
        assert c["status"] == 200, c
        assert c["notes"]["client_auth"] == "private_key_jwt"
        assert c["form"]["client_assertion_type"] == ASSERTION_TYPE
        assert c["form"]["client_id"] == op.client_id
        assert "client_secret" not in c["form"]
        assert "authorization" not in c["headers"]
        assert h == {"alg": want_alg, "typ": "JWT", "x5t": cred.x5t,
                     "x5t#S256": cred.x5t_s256}
        assert cl["iss"] == cl["sub"] == op.client_id
        assert cl["aud"] == op.endpoint("token")
        assert cl["nbf"] == cl["iat"]
        assert cl["exp"] - cl["iat"] == 300
        assert abs(cl["iat"] - c["time"]) < 60
        assert GUID_RE.match(cl["jti"]), cl["jti"]
    # Never the same jti twice (the provider refuses a replay, so every
    # 200 above already says so).
    jtis = [cl["jti"] for _, _, cl, _ in calls]
    assert len(set(jtis)) == len(jtis)
    no_leaks(g, op, r, [a for _, _, _, a in calls])


def test_concurrent_signins_each_sign_their_own(op, tmp, upstream, cred):
    """Eight sign-ins at once over two workers share the key read at start:
    every one gets through, each with its own jti."""
    op.config(client_certificates=[cred.cert_pem])
    g = start(op, tmp, upstream, cert_lines(tmp, cred))
    results = []

    def one():
        try:
            s, r = sign_in(g, USER)
            results.append(r.status_code)
        except AssertionError as e:
            results.append(str(e))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [302] * 8, results
    calls = assertions(op)
    assert len(calls) == 8 and all(c["status"] == 200 for c, _, _, _ in calls)
    assert len({cl["jti"] for _, _, cl, _ in calls}) == 8


def test_secret_and_certificate(op, tmp, upstream, cred):
    """Both set: the certificate is used (auto), the secret never sent;
    token_auth_method = client_secret_post chooses the secret instead."""
    op.config(client_certificates=[cred.cert_pem])
    g = start(op, tmp, upstream, cert_lines(tmp, cred), secret=True)
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    c = op.last("token")
    assert c["notes"]["client_auth"] == "private_key_jwt"
    assert "client_secret" not in c["form"]
    g.stop()
    g = start(op, tmp, upstream, cert_lines(tmp, cred) +
              ["token_auth_method = client_secret_post"], secret=True)
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    c = op.last("token")
    assert c["notes"]["client_auth"] == "client_secret_post"
    assert "client_assertion" not in c["form"]


def test_explicit_private_key_jwt(op, tmp, upstream, cred):
    op.config(client_certificates=[cred.cert_pem])
    g = start(op, tmp, upstream, cert_lines(tmp, cred) +
              ["token_auth_method = private_key_jwt"])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    assert op.last("token")["notes"]["client_auth"] == "private_key_jwt"


def test_provider_without_private_key_jwt(op, tmp, upstream, cred):
    """The provider lists its methods without private_key_jwt: the sign-in
    is refused before anything is sent, with a page and a log line that
    say why (a secret beside the certificate is not used instead)."""
    op.config(client_certificates=[cred.cert_pem],
              token_auth_methods=["client_secret_post", "client_secret_basic"])
    g = start(op, tmp, upstream, cert_lines(tmp, cred), secret=True)
    for accept in (JSON, HTML):
        s, auth, flow = start_login(g)
        r = s.get(auth["location"], allow_redirects=False, headers=accept,
                  timeout=20)
        check_page(r, 502, "token_auth_unsupported", accept)
        assert not session_cookie_set(r)
    assert "administrator" in r.text
    assert op.counter("token") == 0
    assert g.loggrep(r"result=token_auth_unsupported reason=\"client_"
                     r"certificate is set, so token_auth_method = "
                     r"private_key_jwt, but the provider's token_endpoint_"
                     r"auth_methods_supported does not list it")


# -- the provider refuses the certificate -----------------------------------
def test_wrong_certificate_registered(op, tmp, upstream, cred, stranger):
    """The app registration lists another certificate: the provider answers
    401 invalid_client AADSTS700027; gatehouse shows a page that names
    the client credentials (502: not the person's doing) and logs the
    AADSTS code and the ids for support, never the assertion."""
    op.config(client_certificates=[stranger.cert_pem])
    g = start(op, tmp, upstream, cert_lines(tmp, cred))
    m = assert_callback_refused(
        g, op, upstream, 502, "invalid_client",
        log=r"callback id=\w+ result=invalid_client reason=\"token endpoint "
            r"refused the client credentials: invalid_client AADSTS700027 "
            r"trace_id=[0-9a-f-]{36} correlation_id=[0-9a-f-]{36}")
    assert m
    s, auth, flow = start_login(g)
    r = s.get(auth["location"], allow_redirects=False, headers=HTML,
              timeout=20)
    check_page(r, 502, "invalid_client", HTML)
    assert "client credentials" in r.text and "administrator" in r.text
    calls = assertions(op)
    assert all(c["notes"].get("assertion_error") == 700027
               for c, _, _, _ in calls)
    no_leaks(g, op, r, [a for _, _, _, a in calls])


def test_refused_at_refresh_keeps_the_session(op, tmp, upstream, cred,
                                              stranger):
    """The certificate is removed from the registration after sign-in: the
    refresh fails with the reason in the log, and the session is kept (a
    credential problem is the gateway's, not the person's)."""
    op.config(client_certificates=[cred.cert_pem])
    g = start(op, tmp, upstream, cert_lines(tmp, cred))
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    op.config(client_certificates=[stranger.cert_pem])
    before = s.post(g.url + "/.auth/refresh", headers=JSON, timeout=15)
    # The current access token is still good, so the answer is its expiry
    # (as for any failed refresh), not an error.
    assert before.status_code == 200, before.text
    assert op.last("token")["notes"]["assertion_error"] == 700027
    assert g.loggrep(r"refresh result=failed reason=\"token endpoint refused "
                     r"the client credentials: invalid_client AADSTS700027")
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 200
    op.config(client_certificates=[cred.cert_pem])
    r = s.post(g.url + "/.auth/refresh", headers=JSON, timeout=15)
    assert r.status_code == 200, r.text
    assert op.last("token")["status"] == 200
    no_leaks(g, op, r, [a for _, _, _, a in assertions(op)])


def test_provider_clock_far_off(op, tmp, upstream, cred):
    """An assertion outside the provider's time range (its clock is an
    hour ahead): AADSTS700024, the same clear refusal."""
    op.config(client_certificates=[cred.cert_pem], time_offset=3600)
    g = start(op, tmp, upstream, cert_lines(tmp, cred))
    assert_callback_refused(
        g, op, upstream, 502, "invalid_client",
        log=r"result=invalid_client reason=\"token endpoint refused the "
            r"client credentials: invalid_client AADSTS700024")


# -- unusable files: --check and the start ----------------------------------
def run_check(tmp, lines, start=False):
    path = os.path.join(tmp, "check.conf")
    with open(path, "w") as f:
        f.write("\n".join([
            "listen = 127.0.0.1:%d" % free_port(),
            "upstream = http://127.0.0.1:9",
            "authority = http://127.0.0.1:9/contoso.onmicrosoft.com",
            "client_id = 3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            "redirect_uri = http://127.0.0.1:9/.auth/callback",
            "session_store = " + os.path.join(tmp, "s"),
            "session_key_file = " + os.path.join(tmp, "k"),
        ] + lines) + "\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GATEHOUSE_")}
    argv = [BIN, "-c", path] + ([] if start else ["--check"])
    p = subprocess.run(argv, capture_output=True, text=True, env=env,
                       cwd=tmp, timeout=20)
    return p.returncode, p.stdout + p.stderr


def bad_files(tmp, cred, stranger, case):
    """Certificate and key lines for one kind of unusable file, and the
    file and words the message must name."""
    cert, key = cred.write(tmp)
    if case == "encrypted":
        _, key = cred.write(tmp, "enc", password=b"secret pass")
        why = "encrypted"
    elif case == "encrypted-traditional":
        _, key = cred.write(tmp, "enc2", fmt="traditional",
                            password=b"secret pass")
        why = "encrypted"
    elif case == "not-its-key":
        _, key = stranger.write(tmp, "stranger")
        why = "not the private key of the certificate in " + cert
    elif case == "missing-key":
        key = os.path.join(tmp, "nowhere.key")
        why = "No such file"
    elif case == "missing-certificate":
        cert = os.path.join(tmp, "nowhere.crt")
        why = "No such file"
    elif case == "world-readable":
        _, key = cred.write(tmp, "loose", mode=0o644)
        why = "chmod 600 " + key
    elif case == "no-certificate":
        cert = key
        why = "no PEM certificate"
    named = "client_certificate: " + cert if case in (
        "missing-certificate", "no-certificate") \
        else "client_certificate_key: " + key
    return ["client_certificate = " + cert,
            "client_certificate_key = " + key], named, why


CASES = ["encrypted", "encrypted-traditional", "not-its-key", "missing-key",
         "missing-certificate", "world-readable", "no-certificate"]


@pytest.mark.parametrize("case", CASES)
def test_check_refuses_unusable_files(tmp, cred, stranger, case):
    lines, named, why = bad_files(tmp, cred, stranger, case)
    rc, out = run_check(tmp, lines)
    assert rc != 0, out
    assert named in out and why in out, out
    assert "MII" not in out and "secret pass" not in out  # no PEM body


@pytest.mark.parametrize("case", ["encrypted", "not-its-key"])
def test_start_refuses_unusable_files(tmp, cred, stranger, case):
    """The start stops too, with the same line, before listening."""
    lines, named, why = bad_files(tmp, cred, stranger, case)
    rc, out = run_check(tmp, lines, start=True)
    assert rc == 1, out
    assert named in out and why in out, out


def test_check_accepts_good_files(tmp, cred):
    rc, out = run_check(tmp, cert_lines(tmp, cred, "RS256"))
    assert rc == 0, out


@pytest.mark.parametrize("lines,msg", [
    (["client_certificate = /x.crt"],
     "client_certificate is set, so client_certificate_key"),
    (["client_certificate_key = /x.key"],
     "client_certificate_key is set, so client_certificate"),
    ([], "client_secret (or client_certificate and client_certificate_key) "
         "is required"),
    (["client_secret = s", "token_auth_method = private_key_jwt"],
     "token_auth_method = private_key_jwt needs client_certificate"),
    (["CERT", "token_auth_method = client_secret_basic"],
     "token_auth_method = client_secret_basic needs client_secret"),
    (["CERT", "client_assertion_alg = ES256"],
     "client_assertion_alg: expected PS256 or RS256"),
    (["client_secret = s", "token_auth_method = tls_client_auth"],
     "expected auto, client_secret_basic, client_secret_post or "
     "private_key_jwt"),
], ids=["cert-without-key", "key-without-cert", "no-credential",
        "pkjwt-without-cert", "basic-without-secret", "bad-alg",
        "unknown-method"])
def test_credential_keys_checked(tmp, cred, lines, msg):
    if "CERT" in lines:
        lines = [l for l in lines if l != "CERT"] + cert_lines(tmp, cred)
    rc, out = run_check(tmp, lines)
    assert rc != 0 and msg in out, out


# -- tid ----------------------------------------------------------------------
def test_tid_matching_accepted(op, tmp, upstream):
    g = start(op, tmp, upstream, [])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    me = s.get(g.url + "/.auth/me", timeout=5).json()
    assert op.tenant_id in str(me), me
    # a GUID in upper case is the same tenant
    op.fault("id_token_claims", claims={"tid": op.tenant_id.upper()})
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)


@pytest.mark.parametrize("claims,remove,reason", [
    ({"tid": OTHER_TENANT}, [], r"tid_mismatch: ID token tid %s is not the "
     r"issuer's tenant" % OTHER_TENANT),
    ({}, ["tid"], r"tid_missing: ID token has no tid claim"),
], ids=["other-tenant", "missing"])
def test_tid_refused_at_signin(op, tmp, upstream, claims, remove, reason):
    """An Entra provider (authority configured) whose ID token names another
    tenant, or none: refused, 401 with a page that says so, and a log line
    with the reason."""
    g = start(op, tmp, upstream, [])
    assert_callback_refused(
        g, op, upstream, 401, "invalid_id_token",
        arm=lambda: op.fault("id_token_claims", claims=claims, remove=remove),
        log=r"callback id=\w+ result=invalid_id_token reason=\"%s" % reason)
    s, auth, flow = start_login(g)
    op.fault("id_token_claims", claims=claims, remove=remove)
    r = s.get(auth["location"], allow_redirects=False, headers=HTML,
              timeout=20)
    check_page(r, 401, "invalid_id_token", HTML)
    assert "another directory (tenant)" in r.text


def test_tid_refused_at_refresh(op, tmp, upstream):
    g = start(op, tmp, upstream, ["forward_access_token = on"])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    op.fault("id_token_claims", grant="refresh_token",
             claims={"tid": OTHER_TENANT})
    r = s.post(g.url + "/.auth/refresh", headers=JSON, timeout=15)
    assert r.status_code == 401, r.text
    assert g.loggrep(r"refresh result=invalid_id_token reason=\"ID token tid "
                     r"%s is not the issuer's tenant" % OTHER_TENANT)
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401


def test_tid_with_oidc_issuer(op, tmp, upstream):
    """oidc_issuer (a custom URL domain in Entra's form, not recognised as a
    Microsoft host): tid is checked when present, not required."""
    g = start(op, tmp, upstream, [], issuer=True)
    op.fault("id_token_claims", remove=["tid"])
    s, r = sign_in(g, USER)
    assert_signed_in(g, s, r)
    assert_callback_refused(
        g, op, upstream, 401, "invalid_id_token",
        arm=lambda: op.fault("id_token_claims",
                             claims={"tid": OTHER_TENANT}),
        log=r"result=invalid_id_token reason=\"tid_mismatch")


def test_generic_provider_tid_left_alone(tmp, upstream):
    """A provider whose issuer names no tenant (/realm-main/v2.0): a tid
    claim of its own means nothing to gatehouse."""
    o = OP(args=["--tenant-id", "realm-main"])
    try:
        g = start(o, tmp, upstream, [], issuer=True)
        o.fault("id_token_claims", claims={"tid": OTHER_TENANT})
        s, r = sign_in(g, USER)
        assert_signed_in(g, s, r)
        g.stop()
    finally:
        o.stop()


# -- the demo's provider (panva's oidc-provider) -------------------------------
def demo_signin(demo, g):
    """Through gatehouse and the demo provider's sign-in form; the answer
    of gatehouse's callback."""
    s = requests.Session()
    r = s.get(g.url + "/private", allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:300]
    page = demo.follow(s, s.get(r.headers["Location"], allow_redirects=False,
                                timeout=10))
    assert page.status_code == 200 and 'id="signin"' in page.text
    r = demo.submit(s, page, 0, {"username": "alice.smith", "password": "pw"})
    assert r.location.startswith(g.url + "/.auth/callback"), r.location
    return s, s.get(r.location, allow_redirects=False, timeout=15)


@pytest.mark.parametrize("alg,registered", [
    ("PS256", True), ("RS256", True), ("PS256", False)],
    ids=["PS256", "RS256", "other-certificate"])
def test_demo_provider_with_certificate(tmp, upstream, cred, stranger, alg,
                                        registered):
    """examples/demo-op with --client-certificate (oidc-provider's own
    private_key_jwt checks, replay detection included): sign-in and a
    refresh with PS256 or RS256; a certificate it does not know is the
    invalid_client page."""
    from test_demo_op import CLIENT_ID, DemoOP, ensure_node_modules
    ensure_node_modules()
    if not shutil.which("node"):
        pytest.skip("node not installed")
    port = free_port()
    pem = os.path.join(tmp, "registered.crt")
    with open(pem, "w") as f:
        f.write((cred if registered else stranger).cert_pem)
    demo = DemoOP(tmp, "http://127.0.0.1:%d/.auth/callback" % port,
                  "http://127.0.0.1:%d/.auth/logout/complete" % port,
                  extra_args=["--client-certificate", pem])
    try:
        g = Gatehouse(tmp, [
            "upstream = " + upstream.url,
            "authority = " + demo.authority,
            "client_id = " + CLIENT_ID,
            "redirect_uri = http://127.0.0.1:%d/.auth/callback" % port,
            "session_store = " + os.path.join(tmp, "sessions"),
            "session_key_file = " + os.path.join(tmp, "session.key"),
            "forward_access_token = on",
            "route /* allow authenticated"] + cert_lines(tmp, cred, alg),
            port=port)
        assert g.loggrep(r"provider ready worker=1", timeout=10), g.log()
        s, r = demo_signin(demo, g)
        if registered:
            assert r.status_code == 302, (r.text[:300], g.log()[-2000:])
            assert s.get(g.url + "/private", timeout=10).status_code == 200
            r = s.post(g.url + "/.auth/refresh", headers=JSON, timeout=15)
            assert r.status_code == 200, r.text
            assert g.loggrep(r"refresh result=ok")
        else:
            check_page(r, 502, "invalid_client", HTML)
            assert g.loggrep(r"result=invalid_client reason=\"token "
                             r"endpoint refused the client credentials")
        assert "eyJ" not in g.log() and "eyJ" not in r.text
    finally:
        rcs = demo.stop()
    assert rcs == [0, 0], demo.proc.log()[-2000:]
