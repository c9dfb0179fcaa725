# SPDX-License-Identifier: ISC
"""The provider over TLS: verification is always on, and ca_file makes a
private CA trusted.  nginx (Debian's) terminates TLS in front of the tests'
provider with a certificate from a CA made here."""
import datetime
import ipaddress
import os
import shutil
import subprocess

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import Gatehouse, Proc, free_port, wait_port
from op_client import OP

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None,
                                reason="nginx is installed by make deps")


def make_ca_and_cert(d):
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
                                                         "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(ca_key, hashes.SHA256()))
    paths = {}
    for name, data in (
            ("ca.pem", ca.public_bytes(serialization.Encoding.PEM)),
            ("cert.pem", cert.public_bytes(serialization.Encoding.PEM)),
            ("key.pem", key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))):
        paths[name] = os.path.join(d, name)
        with open(paths[name], "wb") as f:
            f.write(data)
    return paths


@pytest.fixture
def tls_op(tmp):
    op = OP()
    pem = make_ca_and_cert(tmp)
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
    authority = op.authority.replace("http://127.0.0.1:%d" % op.port,
                                     "https://127.0.0.1:%d" % port)
    yield op, authority, pem["ca.pem"]
    ng.stop()
    op.stop()


def gateway(tmp, upstream, op, authority, extra, name):
    port = free_port()
    op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % port])
    return Gatehouse(tmp, [
        "upstream = " + upstream.url, "authority = " + authority,
        "client_id = " + op.client_id, "client_secret = " + op.client_secret,
        "redirect_uri = http://127.0.0.1:%d/.auth/callback" % port,
        "session_store = " + os.path.join(tmp, name + "-s"),
        "session_key_file = " + os.path.join(tmp, name + ".key"),
        "workers = 1"] + extra, port=port, name=name)


def test_private_ca_needs_ca_file(tls_op, tmp, upstream):
    op, authority, ca = tls_op
    # Without ca_file the provider's certificate is not trusted: no
    # metadata, and sign-in says the provider is unreachable.
    g = gateway(tmp, upstream, op, authority, [], "untrusted")
    # curl's own words, the kind and the URL it fetched.
    assert g.loggrep(r"provider_error what=discovery reason=\"SSL "
                     r"certificate problem[^\"]*\" kind=tls "
                     r"url=\"https://127\.0\.0\.1:\d+/",
                     timeout=10), g.log()
    r = requests.get(g.url + "/.auth/login", timeout=10)
    assert r.status_code == 503
    # With the private CA in ca_file, discovery over TLS works and the
    # sign-in starts.
    g2 = gateway(tmp, upstream, op, authority, ["ca_file = " + ca], "trusted")
    assert g2.loggrep(r"provider ready worker=0", timeout=10), g2.log()
    r = requests.get(g2.url + "/.auth/login", allow_redirects=False,
                     timeout=10)
    assert r.status_code == 302
    assert op.counter("discovery") >= 1
