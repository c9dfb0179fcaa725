# SPDX-License-Identifier: ISC
"""--check --online: the real binary fetches the tests' provider's discovery
document and JWKS once and says, in words, what stands in the way."""
import os
import re
import subprocess

import pytest

from conftest import BIN
from op_client import OP


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


# The tests' provider's own secret (tests/op): --check --online tries it.
SECRET = "op~test.secret_value+/="


def online(tmp, provider_lines, extra_args=("--check", "--online"),
           secret=SECRET):
    path = os.path.join(tmp, "gw.conf")
    with open(path, "w") as f:
        f.write("upstream = http://127.0.0.1:9\nworkers = 1\n"
                "client_id = 3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d\n"
                + ("client_secret = %s\n" % secret if secret else "") +
                "redirect_uri = http://127.0.0.1:8080/.auth/callback\n"
                "session_store = %s/s\nsession_key_file = %s/k/key\n"
                "provider_timeout = 5s\n" % (tmp, tmp) + provider_lines)
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("GATEHOUSE_")}
    p = subprocess.run([BIN, "-c", path] + list(extra_args),
                       capture_output=True, text=True, env=e, cwd=tmp,
                       timeout=30)
    return p.returncode, p.stdout + p.stderr


def test_provider_up(tmp, op):
    rc, out = online(tmp, "authority = %s\n" % op.authority)
    assert rc == 0, out
    assert "provider OK: issuer %s, 1 signing key" % op.issuer in out, out
    assert "client credentials accepted (the test code was refused: " \
        "invalid_grant)" in out, out
    rc, out = online(tmp, "oidc_issuer = %s\n" % op.issuer)
    assert rc == 0 and "provider OK: issuer %s" % op.issuer in out, out
    # The try is a token request with a code that cannot be one: no
    # token came of it.
    assert op.counter("tokens_issued") == 0


@pytest.mark.parametrize("secret,code", [("x", 7000215),
                                         ("expired", 7000222)])
def test_client_secret_refused(tmp, op, secret, code):
    """A secret the token endpoint refuses: named, with Entra's number and
    ids, and the check fails."""
    if secret == "expired":
        op.fault("token_error", error="invalid_client", status=401,
                 error_code=code, error_description="AADSTS7000222: The "
                 "provided client secret keys are expired.")
    rc, out = online(tmp, "authority = %s\n" % op.authority,
                     secret=SECRET if secret == "expired" else secret)
    assert rc != 0, out
    assert re.search(r"provider: token endpoint refused the client "
                     r"credentials \(check client_secret or the app's "
                     r"certificate\): invalid_client AADSTS%d "
                     r"trace_id=[0-9a-f-]+ correlation_id=[0-9a-f-]+ "
                     r"timestamp=\d{4}-\d\d-\d\dT[\d:]+Z$" % code, out, re.M), out
    assert "the provider is not usable" in out


@pytest.mark.parametrize("tenant,code", [
    ("nosuch.onmicrosoft.com", 90002),
    ("99999999-8888-4777-8666-555555555555", 90002),
    ("no_such_tenant", 900023)])
def test_tenant_not_found(tmp, op, tenant, code):
    """Discovery answering 400 with AADSTS90002 (or 900023) is a tenant
    that does not exist, not a provider that is down."""
    rc, out = online(tmp, "authority = %s/%s\n" % (op.base, tenant))
    assert rc != 0, out
    assert re.search(r"provider: discovery: tenant not found: the provider "
                     r"knows no directory by the name or id in authority "
                     r"\(HTTP 400, AADSTS%d trace_id=[0-9a-f-]+ "
                     r"correlation_id=[0-9a-f-]+ timestamp=\S+\)" % code,
                     out), out
    assert "unreachable" not in out


def test_online_needs_check(tmp, op):
    rc, out = online(tmp, "authority = %s\n" % op.authority,
                     extra_args=("--online",))
    assert rc == 2 and "usage:" in out


def test_provider_down(tmp, op):
    authority = op.authority
    op.stop()
    rc, out = online(tmp, "authority = %s\n" % authority)
    assert rc != 0
    assert re.search(r"provider: discovery %s/v2\.0/\.well-known/"
                     r"openid-configuration: no connection to the "
                     r"provider: Connection refused" % re.escape(authority),
                     out), out
    assert "the provider is not usable" in out


def test_unknown_dns_name(tmp):
    rc, out = online(
        tmp, "authority = https://gatehouse-test.invalid/contoso\n")
    assert rc != 0
    assert "the host name gatehouse-test.invalid was not found (DNS)" in out, \
        out


def test_tls_failure(tmp, op):
    # https to a port that speaks plain HTTP: the handshake fails.
    rc, out = online(tmp, "authority = https://127.0.0.1:%d/contoso.onmicrosoft"
                     ".com\n" % op.port)
    assert rc != 0
    assert "TLS failed" in out, out


@pytest.mark.parametrize("fault,params,mode,words", [
    ("discovery_down", {"status": 500}, "authority",
     r"discovery \S+: answered HTTP 500, not 200"),
    ("discovery_invalid_json", {}, "authority",
     r"discovery \S+: discovery document is not a JSON object"),
    ("discovery_wrong_issuer", {"issuer": "https://issuer.example/x/v2.0"},
     "oidc_issuer",
     r"discovery issuer differs from the configured oidc_issuer"),
    ("discovery_wrong_issuer",
     {"issuer": "https://11111111-aaaa-4bbb-8ccc-000000000000.ciamlogin.com/"
                "11111111-aaaa-4bbb-8ccc-000000000000/v2.0"}, "authority",
     r"discovery issuer is not the authority's tenant"),
    ("discovery_redirect", {}, "authority",
     r"answered HTTP 30\d, a redirect \(never followed\)"),
    ("jwks_down", {"status": 500}, "authority", r"jwks \S+: answered HTTP"),
    ("jwks_invalid_json", {}, "authority",
     r"jwks \S+: JWKS document is not an object"),
    ("jwks_empty", {}, "authority",
     r"jwks \S+: JWKS has no usable public signature key \(0 listed\)"),
])
def test_provider_misconfigured(tmp, op, fault, params, mode, words):
    op.fault(fault, **params)
    lines = ("authority = %s\n" % op.authority if mode == "authority"
             else "oidc_issuer = %s\n" % op.issuer)
    rc, out = online(tmp, lines)
    assert rc != 0, out
    assert re.search(r"provider: .*" + words, out), out
    assert "the provider is not usable" in out


@pytest.mark.parametrize("registered", [True, False])
def test_client_certificate_tried(tmp, op, registered):
    """With a certificate, the try carries a client assertion: accepted
    when the app registration lists the certificate, refused (AADSTS700027)
    when it does not."""
    from certs import Credential
    cred = Credential()
    if registered:
        op.config(client_certificates=[cred.cert_pem])
    cert, key = cred.write(tmp)
    rc, out = online(tmp, "authority = %s\nclient_certificate = %s\n"
                     "client_certificate_key = %s\n"
                     % (op.authority, cert, key), secret=None)
    if registered:
        assert rc == 0 and "client credentials accepted" in out, out
        assert op.last("token")["form"]["client_assertion_type"] == \
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    else:
        assert rc != 0 and "invalid_client AADSTS700027" in out, out
