# SPDX-License-Identifier: ISC
"""TLS on the listener (`listen = host:port tls`): the tests make their own
CA and server certificates (python3-cryptography), start gatehouse with a
TLS listener, and talk to it with curl, Python's ssl module, raw TLS
records and the tests' OpenID Provider: protocol versions and suites,
sign-in over https, the HTTP-to-HTTPS redirect listener, the certificate
reloaded on SIGHUP, --check of the files, and what a client that never
finishes a handshake gets."""
import base64
import datetime
import hashlib
import http.client
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import BIN, free_port
from op_client import OP
from signin import authorize, begin_login, complete, echo_headers, \
    gateway_lines


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CA:
    """A test certificate authority (EC P-256) that issues server
    certificates for 127.0.0.1."""

    def __init__(self, cn="gatehouse test CA"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(_name(cn)).issuer_name(_name(cn))
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True,
                                                          path_length=1),
                                    critical=True)
                     .sign(self.key, hashes.SHA256()))

    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, days=30, expired=False, intermediate=None):
        """A server key and certificate for 127.0.0.1 (signed by this CA,
        or by `intermediate`, a CA this one signed)."""
        signer = intermediate or self
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start = now - datetime.timedelta(days=10 if expired else 1)
        end = now - datetime.timedelta(days=1) if expired else \
            now + datetime.timedelta(days=days)
        cert = (x509.CertificateBuilder()
                .subject_name(_name("127.0.0.1"))
                .issuer_name(signer.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(__import__("ipaddress").ip_address(
                        "127.0.0.1"))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(signer.key, hashes.SHA256()))
        return Server(key, cert, intermediate)

    def intermediate(self):
        sub = CA.__new__(CA)
        sub.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        sub.cert = (x509.CertificateBuilder()
                    .subject_name(_name("gatehouse test intermediate"))
                    .issuer_name(self.cert.subject)
                    .public_key(sub.key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(days=1))
                    .not_valid_after(now + datetime.timedelta(days=30))
                    .add_extension(x509.BasicConstraints(ca=True,
                                                         path_length=0),
                                   critical=True)
                    .sign(self.key, hashes.SHA256()))
        return sub


class Server:
    def __init__(self, key, cert, intermediate=None):
        self.key, self.cert, self.intermediate = key, cert, intermediate

    @property
    def serial(self):
        return self.cert.serial_number

    def fingerprint(self):
        return self.cert.fingerprint(hashes.SHA256())

    def spki_sha256_b64(self):
        der = self.cert.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def write(self, d, cert="server.crt", key="server.key", mode=0o600):
        cp, kp = os.path.join(d, cert), os.path.join(d, key)
        chain = self.cert.public_bytes(serialization.Encoding.PEM)
        if self.intermediate is not None:
            chain += self.intermediate.pem()
        with open(cp + ".new", "wb") as f:
            f.write(chain)
        fd = os.open(kp + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        os.chmod(kp + ".new", mode)
        # Swapped in by rename, as a renewal tool does.
        os.replace(cp + ".new", cp)
        os.replace(kp + ".new", kp)
        return cp, kp


@pytest.fixture
def pki(tmp):
    ca = CA()
    path = os.path.join(tmp, "ca.pem")
    with open(path, "wb") as f:
        f.write(ca.pem())
    ca.path = path
    return ca


def tls_gateway(gatehouse, tmp, server, lines, port=None, redirect=None):
    """gatehouse with `listen = 127.0.0.1:PORT tls` and server's files."""
    port = port or free_port()
    cp, kp = server.write(tmp)
    extra = ["tls_certificate = " + cp, "tls_certificate_key = " + kp]
    if redirect:
        extra.append("listen_http_redirect = 127.0.0.1:%d" % redirect)
    g = gatehouse(list(lines) + extra, port=port,
                  env={"GATEHOUSE_LISTEN": "127.0.0.1:%d tls" % port})
    g.url = "https://127.0.0.1:%d" % port
    return g


def https_session(ca):
    """A requests session that trusts the test CA alone (trust_env off:
    REQUESTS_CA_BUNDLE in the environment would replace verify)."""
    s = requests.Session()
    s.trust_env = False
    s.verify = ca.path
    return s


def get(url, ca, **kw):
    return https_session(ca).get(url, timeout=10, **kw)


def client_ctx(ca, minv=None, maxv=None, ciphers=None):
    ctx = ssl.create_default_context(cafile=ca.path)
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def peer(port, ctx, alpn=None):
    """(version, cipher, alpn, serial of the certificate) of one
    handshake."""
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), 5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            der = s.getpeercert(binary_form=True)
            return (s.version(), s.cipher()[0], s.selected_alpn_protocol(),
                    x509.load_der_x509_certificate(der).serial_number)


def raw_hello(version):
    """A ClientHello record of an old protocol (SSL 3.0 is 0x0300, TLS 1.1
    0x0302), written by hand: the local OpenSSL will not send one."""
    v = struct.pack(">H", version)
    body = v + os.urandom(32) + b"\x00" + struct.pack(">H", 4) + \
        b"\xc0\x13\x00\x2f" + b"\x01\x00"
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16" + v + struct.pack(">H", len(hs)) + hs


def first_record(port, data):
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(data)
        out = b""
        while len(out) < 7:
            chunk = s.recv(64)
            if not chunk:
                break
            out += chunk
        return out


ANON = ["route /* allow anonymous"]


def test_curl_and_python_speak_tls12_and_tls13(gatehouse, tmp, pki,
                                                upstream):
    srv = pki.issue()
    g = tls_gateway(gatehouse, tmp, srv,
                    ["upstream = " + upstream.url] + ANON)
    for flag, want in (("--tlsv1.3", "TLSv1.3"),
                       ("--tls-max 1.2", "TLSv1.2")):
        r = subprocess.run(
            ["curl", "-sS", "-v", "--cacert", pki.path] + flag.split() +
            ["-o", "-", g.url + "/hello?x=1"],
            capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert "SSL connection using %s" % want in r.stderr, r.stderr
        assert "ALPN: server accepted http/1.1" in r.stderr, r.stderr
        assert '"path": "/hello?x=1"' in r.stdout, r.stdout
    # The request is https, and the upstream is told so.
    r = get(g.url + "/echo", pki)
    assert echo_headers(r)["x-forwarded-proto"] == ["https"]

    v, cipher, alpn, serial = peer(g.port, client_ctx(
        pki, maxv=ssl.TLSVersion.TLSv1_2), alpn=["h2", "http/1.1"])
    assert (v, alpn, serial) == ("TLSv1.2", "http/1.1", srv.serial)
    assert cipher.startswith("ECDHE-ECDSA-") and \
        ("GCM" in cipher or "CHACHA20" in cipher), cipher
    v, cipher, alpn, _ = peer(g.port, client_ctx(
        pki, minv=ssl.TLSVersion.TLSv1_3))
    assert v == "TLSv1.3" and cipher.startswith("TLS_"), cipher
    # The client's order decides (no server preference): ChaCha20 first
    # gets ChaCha20, AES-GCM first gets AES-GCM.
    for first in ("ECDHE-ECDSA-CHACHA20-POLY1305",
                  "ECDHE-ECDSA-AES256-GCM-SHA384"):
        _, cipher, _, _ = peer(g.port, client_ctx(
            pki, maxv=ssl.TLSVersion.TLSv1_2,
            ciphers=first + ":ECDHE-ECDSA-AES128-GCM-SHA256"))
        assert cipher == first
    # A client that speaks only h2 still gets HTTP/1.1, without ALPN.
    _, _, alpn, _ = peer(g.port, client_ctx(pki), alpn=["h2"])
    assert alpn is None
    # Sessions resume from the server's cache (session ids, no tickets),
    # for TLS 1.2 and 1.3 alike.
    for maxv in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(pki, maxv=maxv)
        with socket.create_connection(("127.0.0.1", g.port), 5) as raw_s:
            with ctx.wrap_socket(raw_s, server_hostname="127.0.0.1") as t:
                # TLS 1.3 sends its session after the handshake.
                t.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                while t.recv(65536):
                    pass
                sess = t.session
        assert sess is not None
        if maxv == ssl.TLSVersion.TLSv1_2:
            assert not sess.has_ticket  # resumed by session id
        with socket.create_connection(("127.0.0.1", g.port), 5) as raw_s:
            with ctx.wrap_socket(raw_s, server_hostname="127.0.0.1",
                                 session=sess) as t:
                assert t.session_reused, maxv
    # Suites outside Mozilla's intermediate list: CBC, and a key exchange
    # without forward secrecy.
    for weak in ("ECDHE-ECDSA-AES128-SHA", "AES128-GCM-SHA256"):
        with pytest.raises(ssl.SSLError):
            peer(g.port, client_ctx(pki, maxv=ssl.TLSVersion.TLSv1_2,
                                    ciphers=weak + "@SECLEVEL=0"))


def test_old_protocols_are_refused(gatehouse, tmp, pki, upstream):
    g = tls_gateway(gatehouse, tmp, pki.issue(),
                    ["upstream = " + upstream.url, "log_level = debug"] +
                    ANON)
    for version in (0x0300, 0x0301, 0x0302):
        rec = first_record(g.port, raw_hello(version))
        # An alert record (21), fatal (2), never a ServerHello (22).
        assert len(rec) >= 7 and rec[0] == 21 and rec[5] == 2, \
            (hex(version), rec.hex())
    # TLS 1.1 from a real client that is allowed to offer it.
    ctx = client_ctx(pki, minv=ssl.TLSVersion.TLSv1_1,
                     maxv=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as e:
        peer(g.port, ctx)
    assert "PROTOCOL_VERSION" in str(e.value).upper() or \
        "VERSION" in str(e.value).upper(), e.value
    r = subprocess.run(["curl", "-sS", "--cacert", pki.path, "--tls-max",
                        "1.1", "--tlsv1.1", "--ciphers", "DEFAULT@SECLEVEL=0",
                        g.url + "/"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0, r.stdout
    # The gateway serves on, and said it at debug level only.
    assert get(g.url + "/", pki).status_code == 200
    assert g.loggrep(r"debug tls_log_failure: tls_failed client=127\.0\.0\.1 "
                     r"reason=\"[^\"]+\"")
    assert not re.search(r"(warn|error).*tls_failed", g.log())


def test_handshake_never_started_or_garbage(gatehouse, tmp, pki, upstream):
    g = tls_gateway(gatehouse, tmp, pki.issue(),
                    ["upstream = " + upstream.url, "header_timeout = 1s",
                     "log_level = debug"] + ANON)
    # TCP open, no ClientHello: the header timeout closes it.
    with socket.create_connection(("127.0.0.1", g.port), 30) as s:
        assert s.recv(100) == b""
    # A half ClientHello: the same.
    with socket.create_connection(("127.0.0.1", g.port), 30) as s:
        s.sendall(raw_hello(0x0303)[:20])
        assert s.recv(100) == b""
    # Plain HTTP to the TLS port, twenty times: refused, no crash, and at
    # most one debug line per worker in 10 s.
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", g.port), 10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
    assert get(g.url + "/", pki).status_code == 200
    assert g.loggrep(r"tls_failed")
    assert len(re.findall(r"tls_failed", g.log())) <= 2, g.log()


def test_bodies_stream_both_ways_over_tls(gatehouse, tmp, pki, upstream):
    g = tls_gateway(gatehouse, tmp, pki.issue(),
                    ["upstream = " + upstream.url] + ANON)
    s = https_session(pki)
    r = s.get(g.url + "/bytes?n=%d" % (24 << 20), timeout=60)
    assert r.status_code == 200 and len(r.content) == 24 << 20
    body = os.urandom(3 << 20)
    r = s.post(g.url + "/echo", data=body, timeout=60)
    assert r.json()["body_len"] == len(body)
    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    # Chunked, then a keep-alive request on the same connection.
    r = s.post(g.url + "/echo", data=iter([body[:1000], body[1000:70000]]),
               timeout=60)
    assert r.json()["body_len"] == 70000
    c = http.client.HTTPSConnection("127.0.0.1", g.port, timeout=10,
                                    context=client_ctx(pki))
    for i in range(3):
        c.request("GET", "/echo?i=%d" % i)
        assert c.getresponse().read()
    c.close()


def https_signin_gateway(gatehouse, op, tmp, upstream, pki, redirect=None):
    port = free_port()
    uri = "https://127.0.0.1:%d/.auth/callback" % port
    op.config(redirect_uris=[uri])
    lines = [l for l in gateway_lines(op, tmp, port, upstream.url)
             if not l.startswith("redirect_uri")]
    g = tls_gateway(gatehouse, tmp, pki.issue(),
                    lines + ["redirect_uri = " + uri], port=port,
                    redirect=redirect)
    for w in range(2):
        assert g.loggrep(r"provider ready worker=%d" % w, timeout=10), g.log()
    return g


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def test_signin_end_to_end_over_https(gatehouse, op, tmp, upstream, pki):
    g = https_signin_gateway(gatehouse, op, tmp, upstream, pki)
    s = https_session(pki)
    auth = authorize(s, begin_login(g, s, "/private/page?x=1"),
                     "alice@contoso.com")
    assert auth["location"].startswith(g.url + "/.auth/callback?"), auth
    r = complete(g, s, auth)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert r.headers["Location"] == "/private/page?x=1"
    assert re.search(r"gatehouse=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; "
                     r"Max-Age=\d+; SameSite=Lax; Secure",
                     r.headers["Set-Cookie"]), \
        r.headers["Set-Cookie"]
    r = s.get(g.url + "/private/page?x=1", allow_redirects=False, timeout=10)
    assert r.status_code == 200, r.text[:300]
    h = echo_headers(r)
    assert h["x-forwarded-proto"] == ["https"]
    assert h["x-ms-client-principal-name"] == ["alice@contoso.com"]
    r = s.get(g.url + "/.auth/me", timeout=10)
    assert r.status_code == 200


def test_redirect_listener_sends_308_to_https(gatehouse, op, tmp, upstream,
                                              pki):
    rport = free_port()
    g = https_signin_gateway(gatehouse, op, tmp, upstream, pki,
                             redirect=rport)
    before = upstream.stats()["requests"]
    base = "http://127.0.0.1:%d" % rport
    for method in ("GET", "POST", "DELETE"):
        r = requests.request(method, base + "/private/a%20b?x=1&y=%2F",
                             data=b"x" * 10 if method == "POST" else None,
                             allow_redirects=False, timeout=10)
        assert r.status_code == 308, (method, r.status_code, r.text[:200])
        assert r.headers["Location"] == \
            "https://127.0.0.1:%d/private/a%%20b?x=1&y=%%2F" % g.port
        assert "Set-Cookie" not in r.headers
    r = requests.get(base + "/", headers={"Host": "app.example.com:80"},
                     allow_redirects=False, timeout=10)
    assert r.headers["Location"] == "https://app.example.com:%d/" % g.port
    # Following it lands on the gateway over TLS.
    r = get(base + "/public/x", pki)
    assert r.status_code == 200 and r.url.startswith(g.url)
    # A Host that could name another site, and no Host at all with an
    # HTTP/1.0 request (redirect_uri's host stands in).
    for host in (b"evil.com@127.0.0.1", b"a/b", b"[::1"):
        out = raw(rport, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 400"), out[:200]
    out = raw(rport, b"GET /x HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 308") and \
        b"Location: https://127.0.0.1:%d/x\r\n" % g.port in out, out
    # Nothing reached the upstream from the redirect listener (only the
    # followed request did).
    assert upstream.stats()["requests"] == before + 2
    assert g.loggrep(r"event=https_redirect .*status=308")


def raw(port, data):
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_sighup_reloads_the_certificate(gatehouse, tmp, pki, upstream):
    old = pki.issue()
    g = tls_gateway(gatehouse, tmp, old,
                    ["upstream = " + upstream.url] + ANON)
    ctx = client_ctx(pki)
    assert peer(g.port, ctx)[3] == old.serial
    # A connection opened before the swap...
    kept = http.client.HTTPSConnection("127.0.0.1", g.port, timeout=10,
                                       context=client_ctx(pki))
    kept.request("GET", "/echo?before")
    assert kept.getresponse().read()

    new = pki.issue(intermediate=pki.intermediate())
    new.write(tmp)
    os.kill(g.pid, signal.SIGHUP)
    assert g.loggrep(r"info tls reload: certificate /CN=127\.0\.0\.1 valid "
                     r"until", timeout=10), g.log()
    # ...new connections see the new certificate (and its chain)...
    assert peer(g.port, client_ctx(pki))[3] == new.serial
    with socket.create_connection(("127.0.0.1", g.port), 5) as raw_s:
        with client_ctx(pki).wrap_socket(
                raw_s, server_hostname="127.0.0.1") as s:
            fp = hashlib.sha256(s.getpeercert(binary_form=True)).digest()
    assert fp == new.fingerprint()
    # ...and the old one keeps working, on its old certificate.
    kept.request("GET", "/echo?after")
    assert kept.getresponse().status == 200
    assert x509.load_der_x509_certificate(
        kept.sock.getpeercert(binary_form=True)).serial_number == old.serial
    kept.close()

    # A bad new file keeps the one in use: garbage, a key of another
    # certificate, a key others can read.  A reload checks the whole
    # configuration before it takes any of it, certificates included.
    n = 1
    for bad in ("garbage", "mismatch", "mode"):
        cp, kp = os.path.join(tmp, "server.crt"), os.path.join(
            tmp, "server.key")
        if bad == "garbage":
            with open(cp, "w") as f:
                f.write("not a certificate\n")
        elif bad == "mismatch":
            other = pki.issue()
            other.write(tmp)
            new.write(tmp, key="unused.key")  # the certificate only
        else:
            new.write(tmp, mode=0o644)
        os.kill(g.pid, signal.SIGHUP)
        # The whole file is refused (with the line that names the key),
        # so the certificate in use stays, with the rest.
        pat = r"reload: the file has errors; configuration \d+ stays"
        end = time.time() + 10
        while len(re.findall(pat, g.log())) < n and time.time() < end:
            time.sleep(0.05)
        assert len(re.findall(pat, g.log())) == n, g.log()
        n += 1
        assert peer(g.port, client_ctx(pki))[3] == new.serial
    log = g.log()
    assert "no PEM certificate" in log
    assert "not the private key of tls_certificate" in log
    assert "lets group or others read or write the private key" in log
    assert get(g.url + "/", pki).status_code == 200


def check(tmp, text):
    path = os.path.join(tmp, "check.conf")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([BIN, "-c", path, "--check"], capture_output=True,
                       text=True, cwd=tmp)
    return p.returncode, p.stdout, p.stderr


def test_check_validates_the_tls_files(tmp, pki):
    good = pki.issue()
    cp, kp = good.write(tmp)
    base = ("listen = 127.0.0.1:8443 tls\nupstream = http://127.0.0.1:9\n"
            "route /* allow anonymous\n")
    rc, out, err = check(tmp, base + "tls_certificate = %s\n"
                         "tls_certificate_key = %s\n" % (cp, kp))
    assert rc == 0, err
    assert "tls: certificate /CN=127.0.0.1 valid until" in out, out

    # The key of another certificate: named with its line.
    _, okp = pki.issue().write(tmp, cert="o.crt", key="o.key")
    rc, _, err = check(tmp, base + "tls_certificate = %s\n"
                       "tls_certificate_key = %s\n" % (cp, okp))
    assert rc == 1 and "check.conf:5: tls_certificate_key: %s: not the " \
        "private key of tls_certificate's certificate" % okp in err, err
    # Readable by others.
    os.chmod(kp, 0o640)
    rc, _, err = check(tmp, base + "tls_certificate = %s\n"
                       "tls_certificate_key = %s\n" % (cp, kp))
    assert rc == 1 and "check.conf:5: tls_certificate_key: %s: mode 0640 " \
        "lets group or others read or write the private key; fix it with: " \
        "chmod 600 %s" % (kp, kp) in err, err
    os.chmod(kp, 0o600)
    # Missing, and not a certificate.
    rc, _, err = check(tmp, base + "tls_certificate = %s/nope.pem\n"
                       "tls_certificate_key = %s\n" % (tmp, kp))
    assert rc == 1 and "check.conf:4: tls_certificate: %s/nope.pem: cannot " \
        "open: No such file or directory" % tmp in err, err
    rc, _, err = check(tmp, base + "tls_certificate = %s\n"
                       "tls_certificate_key = %s\n" % (kp, kp))
    assert rc == 1 and "check.conf:4: tls_certificate: %s: no PEM " \
        "certificate" % kp in err, err
    # Expired: a warning, not an error (a renewal may be on its way).
    ecp, ekp = pki.issue(expired=True).write(tmp, cert="e.crt", key="e.key")
    rc, out, err = check(tmp, base + "tls_certificate = %s\n"
                         "tls_certificate_key = %s\n" % (ecp, ekp))
    assert rc == 0 and "warning: tls_certificate: certificate " \
        "/CN=127.0.0.1 expired on" in err, (out, err)
    # The keys that go together.
    rc, _, err = check(tmp, base)
    assert rc == 1 and "listen has tls, so tls_certificate and " \
        "tls_certificate_key (PEM files) are required" in err, err
    rc, _, err = check(tmp, base.replace(" tls", "") +
                       "tls_certificate = %s\ntls_certificate_key = %s\n"
                       % (cp, kp))
    assert rc == 1 and "check.conf:4: tls_certificate and " \
        "tls_certificate_key serve only a TLS listener" in err, err
    rc, _, err = check(tmp, base.replace(" tls", " ssl"))
    assert rc == 1 and "check.conf:1: listen: expected host:port, " \
        "optionally followed by tls" in err, err
    rc, _, err = check(tmp, base.replace(" tls", "") +
                       "listen_http_redirect = 127.0.0.1:8080\n")
    assert rc == 1 and "listen_http_redirect sends clients to https, but " \
        "listen has no tls" in err, err
    rc, _, err = check(tmp, base + "tls_certificate = %s\n"
                       "tls_certificate_key = %s\n"
                       "redirect_uri = http://127.0.0.1:8443/cb\n"
                       % (cp, kp))
    assert "listen has tls, so redirect_uri must be an https:// URL" in err


def test_gateway_refuses_to_start_with_a_bad_key(tmp, pki):
    cp, kp = pki.issue().write(tmp, mode=0o644)
    path = os.path.join(tmp, "gw.conf")
    with open(path, "w") as f:
        f.write("listen = 127.0.0.1:%d tls\nupstream = http://127.0.0.1:9\n"
                "tls_certificate = %s\ntls_certificate_key = %s\n"
                "route /* allow anonymous\n" % (free_port(), cp, kp))
    p = subprocess.run([BIN, "-c", path], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1
    assert "gw.conf:4: tls_certificate_key: %s: mode 0644" % kp in p.stderr


def test_chromium_signs_in_over_https(tmp, gatehouse, pki):
    """Chromium, headless, walks tests/browser/signin.mjs's whole flow
    (the demo provider's sign-in page, the app, Graph, sign-out, sign-up)
    against gatehouse serving https, trusting the test certificate by its
    public key (--ignore-certificate-errors-spki-list) as a browser with
    the test CA installed would."""
    import shutil as _shutil

    import test_browser as tb

    tb.need_tools()
    tb.npm_ci(tb.OPDIR, "oidc-provider")
    tb.npm_ci(tb.BROWSERDIR, "playwright-core")
    gw_port = free_port()
    stack = tb.Stack(tmp, gw_port, scheme="https")
    shots = os.path.join(os.path.dirname(os.path.abspath(BIN)),
                         "test-output", "browser-tls")
    _shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    srv = pki.issue()
    try:
        store = os.path.join(tmp, "sessions")
        os.makedirs(store)
        gw = tls_gateway(gatehouse, tmp, srv, [
            "upstream = http://127.0.0.1:%d" % stack.app_port,
            "authority = " + stack.authority,
            "client_id = " + stack.client_id,
            "client_secret = " + stack.client_secret,
            "redirect_uri = https://127.0.0.1:%d/.auth/callback" % gw_port,
            "scopes = User.Read",
            "forward_access_token = on",
            "session_store = " + store,
            "session_key_file = " + os.path.join(tmp, "session.key"),
            "route /healthz allow anonymous",
            "route / allow anonymous",
            "route /* allow authenticated",
        ], port=gw_port)
        out, rc = tb.run_browser(gw.url, shots,
                                 ["--trust-spki", srv.spki_sha256_b64()])
        print(out)
        assert rc == 0, ("signin.mjs over https failed (%s); screenshots in "
                         "%s\n%s\n--- gatehouse log:\n%s\n%s"
                         % (rc, shots, out, tb.tail(gw.proc), stack.logs()))
        assert "PASS:" in out, out
        # The browser went to the gateway over https (the provider is
        # plain http on loopback), and signed in through its callback.
        assert "open https://127.0.0.1:%d/" % gw_port in out, out
        assert gw.loggrep(r"event=callback .*status=302"), gw.log()
    finally:
        stack.stop()


def test_websocket_over_tls(gatehouse, tmp, pki):
    """A WebSocket through the TLS listener: the tunnel takes the
    connection's TLS session (bytes the client sent with its handshake
    included), frames both ways, a 1 MiB one, and the closing handshake."""
    from test_websocket import EchoUpstream
    from wsproto import Client

    echo = EchoUpstream(tmp)
    try:
        g = tls_gateway(gatehouse, tmp, pki.issue(),
                        ["upstream = " + echo.url])
        c = Client(g.port, ssl_context=client_ctx(pki))
        assert c.status == 101, c.raw
        c.send("over tls")
        assert c.recv() == (1, b"over tls")
        big = os.urandom(1 << 20)
        c.send(big)
        assert c.recv() == (2, big)
        for i in range(200):
            c.send("m%d" % i)
        for i in range(200):
            assert c.recv() == (1, b"m%d" % i)
        c.close()
        # The tunnel ends and says so: after the closing handshake the
        # client drops TCP without TLS's close_notify, which the TLS layer
        # reports as an error or as the end, depending on timing.
        assert g.loggrep(r"websocket_close .*reason=(closed|client_error)",
                         timeout=10), g.log()
        # The listener still serves after the tunnel has gone.
        assert peer(g.port, client_ctx(pki))[0] in ("TLSv1.2", "TLSv1.3")
    finally:
        echo.stop()
