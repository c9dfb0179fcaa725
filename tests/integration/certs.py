# SPDX-License-Identifier: ISC
"""Client certificates for the tests (python3-cryptography): a key and its
self-signed certificate, written as gatehouse reads them, and client
assertions built by hand (to test the provider's checks of them)."""
import base64
import datetime
import json
import os
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode(assertion):
    """(header, claims) of a compact JWS, unverified."""
    head, body = assertion.split(".")[:2]
    return json.loads(b64u_decode(head)), json.loads(b64u_decode(body))


class Credential:
    """An RSA key and a self-signed certificate for it."""

    def __init__(self, bits=2048, cn="gatehouse test client"):
        self.key = rsa.generate_private_key(public_exponent=65537,
                                            key_size=bits)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder()
                     .subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .sign(self.key, hashes.SHA256()))
        self.cert_pem = self.cert.public_bytes(
            serialization.Encoding.PEM).decode("ascii")
        self.x5t_s256 = b64u(self.cert.fingerprint(hashes.SHA256()))
        self.x5t = b64u(self.cert.fingerprint(hashes.SHA1()))

    def key_pem(self, fmt="pkcs8", password=None):
        enc = (serialization.BestAvailableEncryption(password)
               if password else serialization.NoEncryption())
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8 if fmt == "pkcs8"
            else serialization.PrivateFormat.TraditionalOpenSSL,
            enc).decode("ascii")

    def write(self, directory, name="client", fmt="pkcs8", mode=0o600,
              chain=(), password=None):
        """Write NAME.crt (this certificate, then `chain`'s) and NAME.key
        (the key, `mode`); returns (cert path, key path)."""
        cert = os.path.join(directory, name + ".crt")
        key = os.path.join(directory, name + ".key")
        with open(cert, "w") as f:
            f.write(self.cert_pem + "".join(c.cert_pem for c in chain))
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.key_pem(fmt, password))
        os.chmod(key, mode)
        return cert, key

    def assertion(self, client_id, aud, alg="PS256", now=None, lifetime=300,
                  header=None, claims=None, key=None, salt=32):
        """A client assertion as RFC 7523 wants it; `header`/`claims`
        entries replace (None removes), `key` signs instead of ours, `salt`
        is PS256's salt length (RFC 7518: the digest's, 32)."""
        now = int(time.time()) if now is None else now
        h = {"alg": alg, "typ": "JWT", "x5t": self.x5t,
             "x5t#S256": self.x5t_s256}
        c = {"aud": aud, "iss": client_id, "sub": client_id,
             "jti": str(uuid.uuid4()), "iat": now, "nbf": now,
             "exp": now + lifetime}
        for d, extra in ((h, header), (c, claims)):
            for k, v in (extra or {}).items():
                if v is None:
                    d.pop(k, None)
                else:
                    d[k] = v
        text = (b64u(json.dumps(h).encode()) + "." +
                b64u(json.dumps(c).encode()))
        pad = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                           salt_length=salt)
               if alg == "PS256" else padding.PKCS1v15())
        sig = (key or self.key).sign(text.encode(), pad, hashes.SHA256())
        return text + "." + b64u(sig)
