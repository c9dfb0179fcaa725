#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""A stand-in for Microsoft Graph's POST /v1.0/me/getMemberGroups, for the
group-overage tests: checks the bearer token's RS256 signature against the
test OP's JWKS, then answers the groups listed for the token's
preferred_username (or upn) in --groups FILE.  Counts calls at /stats."""
import argparse
import base64
import json
import os
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CALLS = {"getMemberGroups": 0}
LOCK = threading.Lock()


def b64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify(token, jwks_url):
    h, p, sig = token.split(".")
    header = json.loads(b64u(h))
    keys = json.load(urllib.request.urlopen(jwks_url, timeout=5))["keys"]
    for k in keys:
        if k.get("kid") == header.get("kid") and header.get("alg") == "RS256":
            pub = rsa.RSAPublicNumbers(int.from_bytes(b64u(k["e"]), "big"),
                                       int.from_bytes(b64u(k["n"]), "big")
                                       ).public_key()
            pub.verify(b64u(sig), (h + "." + p).encode(), padding.PKCS1v15(),
                       hashes.SHA256())
            return json.loads(b64u(p))
    raise ValueError("unknown kid")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with LOCK:
            self.answer(200, dict(CALLS))

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        if self.path != "/v1.0/me/getMemberGroups":
            return self.answer(404, {"error": {"code": "NotFound"}})
        with LOCK:
            CALLS["getMemberGroups"] += 1
        auth = self.headers.get("Authorization", "")
        try:
            claims = verify(auth[len("Bearer "):], self.server.jwks_url)
        except Exception as e:  # any failure is Graph's 401
            return self.answer(401, {"error": {
                "code": "InvalidAuthenticationToken", "message": str(e)}})
        with open(self.server.groups_file) as f:
            groups = json.load(f)
        who = claims.get("preferred_username") or claims.get("upn") or \
            claims.get("email")
        self.answer(200, {"value": groups.get(who, [])})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--jwks", required=True)
    ap.add_argument("--groups", required=True)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.jwks_url = a.jwks
    srv.groups_file = a.groups
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
