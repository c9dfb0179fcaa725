# SPDX-License-Identifier: ISC
"""Every External ID authority form, signed in through the real binary.

The tests' provider (tests/op) sits behind nginx (TLS, a certificate from
a CA made here) and answers as External ID does: its endpoints on the name
the gateway reaches it under (contoso.ciamlogin.com, or the custom URL
domain login.contoso.example), its issuer on the tenant's GUID host
(https://{guid}.ciamlogin.com/{guid}/v2.0).  gatehouse reaches those names
through provider_resolve (curl's --resolve: TLS still verifies the name)
and trusts the CA through ca_file; nothing is relaxed for the test.

- authority: tenant subdomain (/contoso.onmicrosoft.com), tenant GUID
  (/{guid}), path-less (discovery at /contoso.onmicrosoft.com/v2.0/...,
  as MSAL fills it in).
- oidc_issuer on a custom URL domain, with MSAL Python's issuer rules: the
  GUID issuer is accepted under /{guid}/v2.0, refused under the tenant
  name, and another tenant's GUID is refused."""
import datetime
import ipaddress
import os
import shutil
from urllib.parse import urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import Gatehouse, Proc, free_port, wait_port
from op_client import OP, read_auth_response, _with_param
from signin import complete, echo_headers

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None,
                                reason="nginx is installed by make deps")

CIAM = "contoso.ciamlogin.com"
CUSTOM = "login.contoso.example"
OTHER = "11111111-2222-4333-8444-555555555555"


def make_pki(d):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                         CIAM)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(CIAM), x509.DNSName(CUSTOM),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(ca_key, hashes.SHA256()))
    out = {}
    for name, data in (
            ("ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
            ("cert.pem", cert.public_bytes(serialization.Encoding.PEM)),
            ("key.pem", key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))):
        out[name] = os.path.join(d, name)
        with open(out[name], "wb") as f:
            f.write(data)
    return out


@pytest.fixture
def entra(tmp):
    """The OP behind TLS; yields (op, tls port, ca file)."""
    op = OP()
    pem = make_pki(tmp)
    port = free_port()
    conf = os.path.join(tmp, "tls-nginx.conf")
    with open(conf, "w") as f:
        f.write("""
worker_processes 1;
pid %(d)s/tls-nginx.pid;
error_log %(d)s/tls-nginx.err warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(d)s/cb; proxy_temp_path %(d)s/px;
    fastcgi_temp_path %(d)s/fc; uwsgi_temp_path %(d)s/uw;
    scgi_temp_path %(d)s/sc;
    server {
        listen 127.0.0.1:%(port)d ssl;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        location / { proxy_pass http://127.0.0.1:%(op)d; }
    }
}
""" % {"d": tmp, "port": port, "cert": pem["cert.pem"],
       "key": pem["key.pem"], "op": op.port})
    ng = Proc(["nginx", "-c", conf, "-p", tmp, "-e", tmp + "/tls-nginx.err",
               "-g", "daemon off;"], os.path.join(tmp, "tls-nginx.log"))
    wait_port(port, ng.p)
    yield op, port, pem["ca.pem"]
    ng.stop()
    op.stop()


def gateway(tmp, upstream, op, port, ca, provider_line, name="gw"):
    gw_port = free_port()
    op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % gw_port])
    return Gatehouse(tmp, [
        "upstream = " + upstream.url, provider_line,
        "client_id = " + op.client_id, "client_secret = " + op.client_secret,
        "redirect_uri = http://127.0.0.1:%d/.auth/callback" % gw_port,
        "session_store = " + os.path.join(tmp, name + "-s"),
        "session_key_file = " + os.path.join(tmp, name + ".key"),
        "ca_file = " + ca,
        "provider_resolve = %s:%d:127.0.0.1 %s:%d:127.0.0.1"
        % (CIAM, port, CUSTOM, port),
        "workers = 1", "route /* allow authenticated"],
        port=gw_port, name=name)


def as_entra(op, host, port, issuer_tenant=None):
    """The OP's endpoints on https://host:port, its issuer on the
    tenant's GUID host, as External ID's."""
    op.config(public_base="https://%s:%d" % (host, port),
              issuer_base="https://%s.ciamlogin.com"
              % (issuer_tenant or op.tenant_id))
    if issuer_tenant:
        op.fault("discovery_wrong_issuer", sticky=True,
                 issuer="https://%s.ciamlogin.com/%s/v2.0"
                 % (issuer_tenant, issuer_tenant))


def sign_in_through(g, op):
    """The browser's part: gatehouse's redirect names the provider's
    public name; the test's browser reaches it at the OP's own port."""
    s = requests.Session()
    r = s.get(g.url + "/private", allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, r.text[:300], g.log())
    loc = urlsplit(r.headers["Location"])
    assert loc.scheme == "https"
    url = "%s%s?%s" % (op.base, loc.path, loc.query)
    auth = read_auth_response(s.get(_with_param(url, "login_as",
                                                "eve@contoso.com"),
                                    allow_redirects=False, timeout=10))
    r = complete(g, s, auth)
    assert r.status_code == 302, (r.status_code, r.text[:500], g.log())
    r = s.get(g.url + "/private", timeout=10)
    assert r.status_code == 200, r.text[:300]
    return loc, echo_headers(r)


@pytest.mark.parametrize("form", ["subdomain", "guid", "pathless"])
def test_authority_forms_sign_in(entra, tmp, upstream, form):
    op, port, ca = entra
    as_entra(op, CIAM, port)
    path = {"subdomain": "/contoso.onmicrosoft.com",
            "guid": "/" + op.tenant_id, "pathless": "/"}[form]
    g = gateway(tmp, upstream, op, port, ca,
                "authority = https://%s:%d%s" % (CIAM, port, path))
    assert g.loggrep(r"provider ready worker=0", timeout=10), g.log()
    loc, h = sign_in_through(g, op)
    assert loc.netloc == "%s:%d" % (CIAM, port)
    assert h["x-ms-client-principal-idp"] == ["aad"]
    disc = op.requests("discovery")[0]["path"]
    assert disc == {
        "subdomain": "/contoso.onmicrosoft.com",
        "guid": "/" + op.tenant_id,
        "pathless": "/contoso.onmicrosoft.com"}[form] + \
        "/v2.0/.well-known/openid-configuration", disc
    # The ID token's issuer is the GUID host, not the name configured.
    assert g.loggrep(r"provider fetched issuer=https://%s\.ciamlogin\.com/%s"
                     r"/v2\.0" % (op.tenant_id, op.tenant_id)), g.log()


def test_custom_domain_with_tenant_guid(entra, tmp, upstream):
    """OIDC_AUTHORITY=https://{custom}/{guid}/v2.0, as the sample's
    custom-domain .env: discovery as given, the GUID issuer accepted (its
    {x} is the authority's first path segment)."""
    op, port, ca = entra
    as_entra(op, CUSTOM, port)
    g = gateway(tmp, upstream, op, port, ca, "oidc_issuer = https://%s:%d/%s/"
                "v2.0" % (CUSTOM, port, op.tenant_id))
    assert g.loggrep(r"provider ready worker=0", timeout=10), g.log()
    loc, h = sign_in_through(g, op)
    assert loc.netloc == "%s:%d" % (CUSTOM, port)
    assert h["x-ms-client-principal-idp"] == ["aad"]
    assert op.requests("discovery")[0]["path"] == \
        "/%s/v2.0/.well-known/openid-configuration" % op.tenant_id


@pytest.mark.parametrize("case", ["tenant_name", "other_tenant"])
def test_custom_domain_issuer_rules_refuse(entra, tmp, upstream, case):
    """Under the tenant's name the GUID issuer does not pass MSAL's rule
    (the docs say: put the GUID in the path); an issuer naming another
    tenant never does."""
    op, port, ca = entra
    as_entra(op, CUSTOM, port,
             issuer_tenant=OTHER if case == "other_tenant" else None)
    path = ("contoso.onmicrosoft.com" if case == "tenant_name"
            else op.tenant_id)
    g = gateway(tmp, upstream, op, port, ca, "oidc_issuer = https://%s:%d/%s/"
                "v2.0" % (CUSTOM, port, path))
    assert g.loggrep(r"provider_error what=discovery reason=\"discovery "
                     r"issuer differs from the configured oidc_issuer\"",
                     timeout=10), g.log()
    r = requests.get(g.url + "/.auth/login", timeout=10)
    assert r.status_code == 503


def test_provider_resolve_keeps_tls_verification(entra, tmp, upstream):
    """provider_resolve changes where to connect, not whom TLS checks: a
    name the certificate does not carry fails TLS."""
    op, port, ca = entra
    gw_port = free_port()
    g = Gatehouse(tmp, [
        "upstream = " + upstream.url,
        "authority = https://evil.ciamlogin.com:%d/contoso.onmicrosoft.com"
        % port,
        "client_id = x", "client_secret = y",
        "redirect_uri = http://127.0.0.1:%d/.auth/callback" % gw_port,
        "session_store = " + os.path.join(tmp, "s"),
        "session_key_file = " + os.path.join(tmp, "k"),
        "ca_file = " + ca,
        "provider_resolve = evil.ciamlogin.com:%d:127.0.0.1" % port,
        "workers = 1"], port=gw_port)
    assert g.loggrep(r"provider_error what=discovery reason=\"[^\"]*\" "
                     r"kind=tls", timeout=10), g.log()


@pytest.mark.parametrize("value", ["contoso.ciamlogin.com:443",
                                   "contoso.ciamlogin.com:0:127.0.0.1",
                                   "contoso.ciamlogin.com:443:not-an-ip",
                                   "bad/host:443:127.0.0.1",
                                   "h:443:[::1"])
def test_provider_resolve_refused_with_its_line(tmp, value):
    import subprocess
    from conftest import BIN
    path = os.path.join(tmp, "gw.conf")
    with open(path, "w") as f:
        f.write("upstream = http://127.0.0.1:9\nprovider_resolve = %s\n"
                % value)
    p = subprocess.run([BIN, "-c", path, "--check"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode != 0
    assert "gw.conf:2: provider_resolve: expected HOST:PORT:ADDRESS" in \
        p.stderr, p.stderr
