#!/usr/bin/python3
"""A local OpenID Provider for gatehouse's integration tests.

It imitates the wire shape of Microsoft Entra External ID (ciamlogin.com):
an authority path named after the tenant (contoso.onmicrosoft.com), an issuer
path made of the tenant GUID, discovery without code_challenge_methods_supported
but PKCE S256 enforced, rotating refresh tokens, Entra-style error bodies.
It can misbehave on purpose: see FAULTS below and tests/op/README.md.

Standard library plus python3-cryptography only.

    /usr/bin/python3 tests/op/op.py --port 0 --port-file /tmp/op.port

Everything a test changes goes through the JSON control API under /_control.
"""

import argparse
import base64
import copy
import hashlib
import hmac
import html
import json
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import \
    decode_dss_signature

GRAPH_AUDIENCE = "00000003-0000-0000-c000-000000000000"
DEFAULT_TENANT_ID = "8a6a6e1f-4c3b-4d2e-9f10-1b2c3d4e5f60"
DEFAULT_CLIENT_ID = "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
DEFAULT_CLIENT_SECRET = "op~test.secret_value+/="
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8080/.auth/callback"
USER_NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
RESERVED_SCOPES = ("openid", "profile", "offline_access", "email")
VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
# form-urlencoded id ":" form-urlencoded secret (RFC 6749 2.3.1)
FORM_ENCODED_RE = re.compile(r"^[A-Za-z0-9\-._~*+%]*:[A-Za-z0-9\-._~*+%]*$")
MAX_BODY = 1 << 20
LOG_CAP = 2000

# Every fault the OP knows, with the endpoint that consumes it.
FAULTS = {
    # /authorize
    "authorize_error": "authorize",
    "authorize_stall": "authorize",
    # discovery
    "discovery_down": "discovery",
    "discovery_invalid_json": "discovery",
    "discovery_wrong_issuer": "discovery",
    "discovery_drop_fields": "discovery",
    "discovery_override": "discovery",
    "discovery_stall": "discovery",
    "discovery_redirect": "discovery",
    # after `after` good answers (default 1), every later one is a 503
    "discovery_down_after": "discovery",
    # jwks_uri
    "jwks_down": "jwks",
    "jwks_invalid_json": "jwks",
    "jwks_empty": "jwks",
    "jwks_broken": "jwks",
    "jwks_stall": "jwks",
    "jwks_redirect": "jwks",
    "jwks_down_after": "jwks",
    # token endpoint, whole answer
    "token_500": "token",
    "token_garbage": "token",
    "token_huge": "token",
    "token_error": "token",
    "token_stall": "token",
    "token_drop_fields": "token",
    "token_override": "token",
    "token_redirect": "token",
    "token_reset": "token",
    # one token in an otherwise good answer made hostile (kind: crlf,
    # space, nul, del, nel, long; field: access_token, refresh_token or
    # id_token), or set to `value`
    "token_hostile": "token",
    # the id_token in a token answer
    "id_token_unknown_kid": "id_token",
    "id_token_bad_signature": "id_token",
    "id_token_alg_none": "id_token",
    "id_token_hs256_pubkey": "id_token",
    "id_token_wrong_iss": "id_token",
    "id_token_wrong_aud": "id_token",
    "id_token_expired": "id_token",
    "id_token_iat_future": "id_token",
    "id_token_nbf_future": "id_token",
    "id_token_missing_nonce": "id_token",
    "id_token_wrong_nonce": "id_token",
    "id_token_missing_sub": "id_token",
    "id_token_azp_mismatch": "id_token",
    "id_token_multi_aud": "id_token",
    "id_token_embedded_jwk": "id_token",
    "id_token_jku": "id_token",
    "id_token_claims": "id_token",
    "id_token_retired_key": "id_token",
    "id_token_wrong_at_hash": "id_token",
    # the access_token in a token answer
    "access_token_claims": "access_token",
    # refresh_token grant only
    "refresh_different_sub": "id_token",
    "refresh_different_iss": "id_token",
    "refresh_different_aud": "id_token",
    # end_session_endpoint
    "logout_error": "logout",
    # revocation_endpoint: an error answer (status, default 503), or an
    # answer held until POST /_control/release (or `seconds`, default 60)
    "revocation_error": "revocation",
    "revocation_hold": "revocation",
}
# private_key_jwt (RFC 7523, OIDC Core 9) as Entra's certificate
# credentials take it.
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ("PS256", "RS256")
ASSERTION_MAX_LIFETIME = 600  # exp at most 10 minutes ahead
ASSERTION_SKEW = 120  # clock difference tolerated on exp, nbf, iat

REFRESH_ONLY = ("refresh_different_sub", "refresh_different_iss",
                "refresh_different_aud")

DEFAULT_CONFIG = {
    "client_id": DEFAULT_CLIENT_ID,
    "client_secret": DEFAULT_CLIENT_SECRET,
    "redirect_uris": [DEFAULT_REDIRECT_URI],
    # empty: any post_logout_redirect_uri is accepted
    "post_logout_redirect_uris": [],
    "expires_in": 3600,
    "id_token_lifetime": 3600,
    "refresh_token_lifetime": 90 * 86400,
    "code_lifetime": 600,
    "access_token_audience": GRAPH_AUDIENCE,
    "advertise_iss": False,
    "default_user": None,
    "granted_scopes": None,
    "refresh_requires_offline_access": True,
    "rotate_refresh_tokens": True,
    "require_state": True,
    "require_nonce": True,
    "time_offset": 0,
    # OIDC Core 3.1.3.6: an at_hash of the access token in each ID token
    "id_token_at_hash": False,
    # None: advertise post, private_key_jwt and basic, and accept them.
    # A list: advertise exactly it and refuse any other method (401
    # invalid_client).  "absent": no such member in discovery, and only
    # client_secret_basic, its default (OIDC Discovery 3).
    "token_auth_methods": None,
    # PEM certificates registered for the client (an app registration's
    # certificate credentials): a private_key_jwt assertion must name one
    # by its thumbprint and be signed by its key.
    "client_certificates": [],
    # The registered front-channel logout URL (Entra's "Front-channel
    # logout URL"): the signed-out page loads it in an iframe, with iss
    # and the signed-out user's sid claim.  None: no iframe.
    "frontchannel_logout_uri": None,
    # How ID tokens are signed: RS256, PS256 (the RSA key, RSA-PSS) or
    # ES256 (a P-256 key, published in the JWKS while this is set); the
    # discovery document lists RS256 and it.
    "id_token_alg": "RS256",
    # None: http://127.0.0.1:PORT.  Else the base URL of every endpoint
    # in the discovery document (the OP behind a TLS front end under
    # another name), and of issuer unless issuer_base is set.
    "public_base": None,
    "issuer_base": None,
    # Scopes a user must have consented to before a token grant gets
    # them: a refresh_token grant asking for one without consent answers
    # 400 consent_required (AADSTS65001), as Entra does for an API the
    # user has not consented to.  A sign-in (/authorize) whose scope
    # names one records the user's consent, unless
    # consent_granted_at_authorize is false (the user declines, or only
    # an administrator could consent).
    "consent_required_scopes": [],
    "consent_granted_at_authorize": True,
    # RFC 7009: advertise revocation_endpoint in discovery (Entra has
    # none, hence off by default).
    "revocation_endpoint": False,
}


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text):
    text = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text.encode("ascii"))


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def b64u_uint(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def s256(verifier):
    return b64u(hashlib.sha256(verifier.encode("ascii")).digest())


class Key:
    """An RSA signing key with its JWK."""

    def __init__(self, bits=2048):
        self.private = rsa.generate_private_key(public_exponent=65537,
                                                key_size=bits)
        self.public = self.private.public_key()
        nums = self.public.public_numbers()
        n, e = b64u_uint(nums.n), b64u_uint(nums.e)
        # RFC 7638 thumbprint, shortened, as the kid
        thumb = json.dumps({"e": e, "kty": "RSA", "n": n},
                           separators=(",", ":"), sort_keys=True)
        self.kid = b64u(hashlib.sha256(thumb.encode()).digest())[:27]
        self.jwk = {"kty": "RSA", "use": "sig", "kid": self.kid,
                    "n": n, "e": e}
        self.public_pem = self.public.public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data):
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def verify(self, sig, data):
        try:
            self.public.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
            return True
        except Exception:
            return False


class EcKey:
    """A P-256 signing key with its JWK (ES256 ID tokens)."""

    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        nums = self.private.public_key().public_numbers()
        x = b64u(nums.x.to_bytes(32, "big"))
        y = b64u(nums.y.to_bytes(32, "big"))
        thumb = json.dumps({"crv": "P-256", "kty": "EC", "x": x, "y": y},
                           separators=(",", ":"), sort_keys=True)
        self.kid = b64u(hashlib.sha256(thumb.encode()).digest())[:27]
        self.jwk = {"kty": "EC", "use": "sig", "kid": self.kid,
                    "crv": "P-256", "x": x, "y": y}

    def sign(self, data):
        """JWS ES256: r and s, 32 bytes each (RFC 7518 3.4)."""
        r, s_ = decode_dss_signature(
            self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s_.to_bytes(32, "big")


def jwt_signed(alg, header, payload, rsa_key, ec_key):
    """The ID token signed as the provider's id_token_alg says."""
    if alg == "ES256":
        header = dict(header, alg="ES256", kid=ec_key.kid)
        key_sign = ec_key.sign
    elif alg == "PS256":
        header = dict(header, alg="PS256")

        def key_sign(data):
            return rsa_key.private.sign(
                data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                  salt_length=32), hashes.SHA256())
    else:
        key_sign = rsa_key.sign
    signing_input = (b64u_json(header) + "." + b64u_json(payload)).encode()
    return signing_input.decode() + "." + b64u(key_sign(signing_input))


def at_hash(access_token, hash_name="sha256"):
    """OIDC Core 3.1.3.6: base64url of the left half of the hash."""
    h = hashlib.new(hash_name, access_token.encode("ascii")).digest()
    return b64u(h[:len(h) // 2])


def hostile_token(token, kind):
    """A token a hostile provider might send, built on a real one."""
    if kind == "crlf":
        return token + "\r\nX-Injected: evil"
    if kind == "lf":
        return token + "\nX-Injected: evil"
    if kind == "space":
        return token[:20] + " " + token[20:]
    if kind == "nul":
        return token + "\u0000X-Injected: evil"
    if kind == "del":
        return token + "\x7f"
    if kind == "nel":
        return token + "\u0085X-Injected: evil"
    if kind == "long":
        return token + "A" * (20 * 1024)
    raise ValueError("unknown hostile kind %r" % (kind,))


def jwt_rs256(header, payload, key):
    signing_input = (b64u_json(header) + "." + b64u_json(payload)).encode()
    return signing_input.decode() + "." + b64u(key.sign(signing_input))


class State:
    """Everything the OP remembers; one lock guards it all."""

    def __init__(self, args):
        self.lock = threading.RLock()
        self.args = args
        self.port = 0
        self.tenant_name = args.tenant_name
        self.tenant_id = args.tenant_id
        self.initial_config = copy.deepcopy(DEFAULT_CONFIG)
        if args.client_id:
            self.initial_config["client_id"] = args.client_id
        if args.client_secret:
            self.initial_config["client_secret"] = args.client_secret
        if args.redirect_uri:
            self.initial_config["redirect_uris"] = list(args.redirect_uri)
        if args.default_user:
            self.initial_config["default_user"] = args.default_user
        if args.advertise_iss:
            self.initial_config["advertise_iss"] = True
        self.initial_key = Key(args.key_size)
        self.ec_key = EcKey()
        self._stray_key = None
        self._attacker_key = None
        self.reset()

    def reset(self):
        with self.lock:
            self.config = copy.deepcopy(self.initial_config)
            self.users = {}
            self.keys = [self.initial_key]
            self.signing_key = self.initial_key
            self.retired = []  # keys rotated out of the JWKS, newest first
            self.faults = []
            self.fault_seq = 0
            self.codes = {}
            self.assertion_jtis = {}  # jti -> exp, for replays
            self.refresh_tokens = {}
            self.sessions = {}
            self.consents = {}  # user -> set of scopes consented to
            self.release_held()
            self.clear_log()

    def release_held(self):
        """Let every held revocation answer; later ones hold again."""
        with self.lock:
            gate = getattr(self, "gate", None)
            self.gate = threading.Event()
        if gate is not None:
            gate.set()

    def clear_log(self):
        with self.lock:
            self.log = []
            self.seq = 0
            self.counters = {}

    # -- helpers ------------------------------------------------------
    def now(self):
        return int(time.time() + self.config["time_offset"])

    @property
    def base(self):
        # public_base: the OP as the gateway reaches it (a TLS front end
        # under a ciamlogin or custom-domain name).
        return self.config.get("public_base") or \
            "http://%s:%d" % (self.args.host, self.port)

    @property
    def authority(self):
        return "%s/%s.onmicrosoft.com" % (self.base, self.tenant_name)

    @property
    def issuer(self):
        # issuer_base: External ID's issuer host is the tenant's GUID
        # (https://{guid}.ciamlogin.com), not the host it is reached on.
        return "%s/%s/v2.0" % (self.config.get("issuer_base") or self.base,
                               self.tenant_id)

    def endpoint(self, name):
        t = "%s/%s" % (self.base, self.tenant_id)
        return {
            "authorize": t + "/oauth2/v2.0/authorize",
            "token": t + "/oauth2/v2.0/token",
            "logout": t + "/oauth2/v2.0/logout",
            "revocation": t + "/oauth2/v2.0/revoke",
            "jwks": t + "/discovery/v2.0/keys",
            "userinfo": t + "/openid/v2.0/userinfo",
            "discovery": self.issuer + "/.well-known/openid-configuration",
            "authority_discovery":
                self.authority + "/v2.0/.well-known/openid-configuration",
        }[name]

    @property
    def stray_key(self):
        with self.lock:
            if self._stray_key is None:
                self._stray_key = Key(self.args.key_size)
            return self._stray_key

    @property
    def attacker_key(self):
        with self.lock:
            if self._attacker_key is None:
                self._attacker_key = Key(self.args.key_size)
            return self._attacker_key

    def count(self, name):
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    # -- faults -------------------------------------------------------
    def add_fault(self, spec):
        name = spec.get("name")
        if name not in FAULTS:
            raise ValueError("unknown fault %r" % (name,))
        sticky = bool(spec.get("sticky", False))
        times = spec.get("times", 1)
        if not sticky and (not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive integer")
        grant = spec.get("grant")
        if grant not in (None, "authorization_code", "refresh_token"):
            raise ValueError("grant must be authorization_code or "
                             "refresh_token")
        params = {k: v for k, v in spec.items()
                  if k not in ("name", "sticky", "times", "grant")}
        if name == "token_hostile" and "value" not in params:
            hostile_token("tok", params.get("kind", "crlf"))  # a known kind
        with self.lock:
            if name == "id_token_retired_key" and not self.retired:
                raise ValueError("no retired key: rotate with keep_old "
                                 "false first")
            self.fault_seq += 1
            fault = {"id": self.fault_seq, "name": name,
                     "remaining": None if sticky else times,
                     "grant": grant, "params": params, "fired": 0}
            self.faults.append(fault)
            return copy.deepcopy(fault)

    def _matches(self, fault, names, grant):
        if fault["name"] not in names:
            return False
        if fault["grant"] is not None and fault["grant"] != grant:
            return False
        if fault["name"] in REFRESH_ONLY and grant != "refresh_token":
            return False
        return True

    def _consume(self, fault):
        fault["fired"] += 1
        if fault["remaining"] is not None:
            fault["remaining"] -= 1
            if fault["remaining"] <= 0:
                self.faults.remove(fault)
        self.count("fault:" + fault["name"])
        return dict(fault["params"], name=fault["name"])

    def take_fault(self, names, grant=None):
        """Consume and return the oldest active fault among names."""
        with self.lock:
            for fault in list(self.faults):
                if self._matches(fault, names, grant):
                    return self._consume(fault)
        return None

    def take_down_after(self, name):
        """The `*_down_after` faults: let `after` answers through, then
        consume (fail) every later one while the fault is armed."""
        with self.lock:
            for fault in self.faults:
                if fault["name"] != name:
                    continue
                seen = fault.setdefault("passed", 0)
                if seen < int(fault["params"].get("after", 1)):
                    fault["passed"] = seen + 1
                    return None
                return self._consume(fault)
        return None

    def take_all_faults(self, names, grant=None):
        """Consume one shot of every active fault among names."""
        out = []
        with self.lock:
            seen = set()
            for fault in list(self.faults):
                if fault["name"] in seen:
                    continue
                if self._matches(fault, names, grant):
                    seen.add(fault["name"])
                    out.append(self._consume(fault))
        return out

    # -- users --------------------------------------------------------
    def user_claims(self, username, client_id):
        with self.lock:
            extra = copy.deepcopy(self.users.get(username, {}))
        oid = extra.get("oid") or str(uuid.uuid5(USER_NS, username))
        local = username.split("@")[0]
        claims = {
            "sub": b64u(hashlib.sha256(
                ("%s|%s" % (oid, client_id)).encode()).digest())[:43],
            "oid": oid,
            "tid": self.tenant_id,
            "name": local.replace(".", " ").title(),
            "preferred_username": username,
            "email": username if "@" in username
            else username + "@example.com",
        }
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}


class OPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "gatehouse-test-op/1.0"
    state = None  # set in main()

    # -- plumbing -----------------------------------------------------
    def log_message(self, fmt, *args):
        if self.state.args.verbose:
            sys.stderr.write("op: %s %s\n" % (self.address_string(),
                                              fmt % args))

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n",
                                                            b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def send(self, status, body, ctype="application/json; charset=utf-8",
             headers=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store, no-cache")
        self.send_header("Pragma", "no-cache")
        for k, v in (headers or []):
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if self.entry is not None:
            self.entry["status"] = status

    def send_json(self, status, obj, headers=None):
        self.send(status, json.dumps(obj).encode("utf-8"), headers=headers)

    def send_html(self, status, text, headers=None):
        self.send(status, text, "text/html; charset=utf-8", headers=headers)

    def redirect(self, location, headers=None):
        self.send(302, b"", "text/html; charset=utf-8",
                  [("Location", location)] + list(headers or []))

    def fault_redirect(self, fault):
        """An endpoint that moved: 3xx to `location` (default: the same
        path under /_moved, which is a 404 here), optional body."""
        loc = fault.get("location") or (self.state.base + "/_moved" +
                                        urlsplit(self.path).path)
        self.entry["notes"]["redirect"] = loc
        self.send(int(fault.get("status", 307)), fault.get("body", b""),
                  fault.get("content_type", "text/html; charset=utf-8"),
                  [("Location", loc)])

    def reset_connection(self):
        """Drop the connection with a TCP reset, without any answer."""
        self.entry["notes"]["reset"] = True
        self.entry["status"] = 0
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def dispatch(self, method):
        self.entry = None
        st = self.state
        try:
            url = urlsplit(self.path)
            path = url.path
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            body = self.read_body()
            if path.startswith("/_control"):
                return self.control(method, path, query, body)
            form = {}
            ctype = self.headers.get("Content-Type", "")
            if method == "POST" and ctype.lower().startswith(
                    "application/x-www-form-urlencoded"):
                form = dict(parse_qsl(body.decode("utf-8", "replace"),
                                      keep_blank_values=True))
            endpoint = self.route(path)
            self.entry = {
                "time": time.time(), "method": method, "path": path,
                "endpoint": endpoint, "query": query, "form": form,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "status": None, "notes": {},
            }
            with st.lock:
                st.seq += 1
                self.entry["seq"] = st.seq
                st.log.append(self.entry)
                if len(st.log) > LOG_CAP:
                    del st.log[0]
            st.count(endpoint)
            handler = getattr(self, "ep_" + endpoint, None)
            if handler is None:
                return self.send_json(404, {"error": "not_found",
                                            "error_description": path})
            handler(method, query, form)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:
            traceback.print_exc()
            try:
                self.send_json(500, {"error": "server_error",
                                     "error_description": "op bug: %s" % exc})
            except Exception:
                pass
            self.close_connection = True

    def route(self, path):
        st = self.state
        if path == "/_evil/keys":
            return "evil_jwks"
        segs = path.split("/")
        if len(segs) < 3 or segs[0] != "":
            return "unknown"
        tenant, rest = segs[1], "/".join(segs[2:])
        if tenant not in (st.tenant_id, st.tenant_name + ".onmicrosoft.com"):
            # Entra answers an unknown tenant's discovery with 400 and
            # AADSTS90002 (900023 for a name that cannot be a tenant).
            if rest == "v2.0/.well-known/openid-configuration":
                return "unknown_tenant"
            return "unknown"
        return {
            "v2.0/.well-known/openid-configuration": "discovery",
            "oauth2/v2.0/authorize": "authorize",
            "oauth2/v2.0/token": "token",
            "oauth2/v2.0/logout": "logout",
            "oauth2/v2.0/revoke": "revocation",
            "discovery/v2.0/keys": "jwks",
            "openid/v2.0/userinfo": "userinfo",
        }.get(rest, "unknown")

    def stall(self, name, grant=None):
        fault = self.state.take_fault([name], grant)
        if fault:
            secs = float(fault.get("seconds", 30))
            self.entry["notes"]["stalled"] = secs
            time.sleep(secs)

    # -- discovery ----------------------------------------------------
    def discovery_document(self):
        st = self.state
        doc = {
            "token_endpoint": st.endpoint("token"),
            "token_endpoint_auth_methods_supported": [
                "client_secret_post", "private_key_jwt",
                "client_secret_basic"],
            "jwks_uri": st.endpoint("jwks"),
            "response_modes_supported": ["query", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": sorted(
                {"RS256", st.config["id_token_alg"]}),
            "response_types_supported": ["code", "id_token", "code id_token",
                                         "id_token token"],
            "scopes_supported": ["openid", "profile", "email",
                                 "offline_access"],
            "issuer": st.issuer,
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": st.endpoint("userinfo"),
            "authorization_endpoint": st.endpoint("authorize"),
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": st.endpoint("logout"),
            "claims_supported": [
                "sub", "iss", "cloud_instance_name",
                "cloud_instance_host_name", "cloud_graph_host_name",
                "msgraph_host", "aud", "exp", "iat", "auth_time", "acr",
                "nonce", "preferred_username", "name", "tid", "ver",
                "at_hash", "c_hash", "email"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
        if st.config["advertise_iss"]:
            doc["authorization_response_iss_parameter_supported"] = True
        if st.config["revocation_endpoint"]:
            doc["revocation_endpoint"] = st.endpoint("revocation")
        methods = st.config["token_auth_methods"]
        if methods == "absent":
            del doc["token_endpoint_auth_methods_supported"]
        elif methods is not None:
            doc["token_endpoint_auth_methods_supported"] = list(methods)
        return doc

    def ep_discovery(self, method, query, form):
        st = self.state
        self.stall("discovery_stall")
        if st.take_down_after("discovery_down_after"):
            return self.send_json(503, {
                "error": "temporarily_unavailable",
                "error_description": "AADSTS90033: service unavailable"})
        fault = st.take_fault(["discovery_redirect"])
        if fault:
            return self.fault_redirect(fault)
        fault = st.take_fault(["discovery_down", "discovery_invalid_json"])
        if fault and fault["name"] == "discovery_down":
            return self.send_json(int(fault.get("status", 503)), {
                "error": "temporarily_unavailable",
                "error_description": "AADSTS90033: service unavailable"})
        if fault:
            return self.send(200, b'{"issuer": "http://broken", "token_endp',
                             "application/json; charset=utf-8")
        doc = self.discovery_document()
        fault = st.take_fault(["discovery_wrong_issuer"])
        if fault:
            doc["issuer"] = fault.get(
                "issuer", "%s/%s/v2.0" % (st.base, str(uuid.uuid4())))
        fault = st.take_fault(["discovery_drop_fields"])
        if fault:
            for f in fault.get("fields", []):
                doc.pop(f, None)
        fault = st.take_fault(["discovery_override"])
        if fault:
            doc.update(fault.get("fields", {}))
        self.send_json(200, doc)

    def ep_unknown_tenant(self, method, query, form):
        tenant = urlsplit(self.path).path.split("/")[1]
        valid = re.fullmatch(r"[0-9a-fA-F-]{36}|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+",
                             tenant) is not None
        code = 90002 if valid else 900023
        desc = ("AADSTS90002: Tenant '%s' not found. Check to make sure you "
                "have the correct tenant ID and are signing into the correct "
                "cloud." % tenant if valid else
                "AADSTS900023: Specified tenant identifier '%s' is neither a "
                "valid DNS name, nor a valid external domain." % tenant)
        self.send_json(400, {
            "error": "invalid_tenant" if valid else "invalid_request",
            "error_description": desc, "error_codes": [code],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
            "error_uri": "https://login.microsoftonline.com/error?code=%d"
                         % code})

    # -- jwks ---------------------------------------------------------
    def ep_jwks(self, method, query, form):
        st = self.state
        self.stall("jwks_stall")
        if st.take_down_after("jwks_down_after"):
            return self.send_json(503, {"error": "temporarily_unavailable"})
        fault = st.take_fault(["jwks_redirect"])
        if fault:
            return self.fault_redirect(fault)
        fault = st.take_fault(["jwks_down", "jwks_invalid_json", "jwks_empty",
                               "jwks_broken"])
        name = fault["name"] if fault else None
        if name == "jwks_down":
            return self.send_json(int(fault.get("status", 503)),
                                  {"error": "temporarily_unavailable"})
        if name == "jwks_invalid_json":
            return self.send(200, b'{"keys": [{"kty": "RSA", "kid": ',
                             "application/json; charset=utf-8")
        if name == "jwks_empty":
            return self.send_json(200, {"keys": []})
        with st.lock:
            keys = [dict(k.jwk, issuer=st.issuer) for k in st.keys]
            if st.config["id_token_alg"] == "ES256":
                keys.append(dict(st.ec_key.jwk, issuer=st.issuer))
        if name == "jwks_broken":
            for k in keys:
                k["n"] = "!!not*base64url!!"
                k.pop("e", None)
        self.send_json(200, {"keys": keys})

    def ep_evil_jwks(self, method, query, form):
        self.send_json(200, {"keys": [self.state.attacker_key.jwk]})

    # -- authorize ----------------------------------------------------
    def auth_response(self, redirect_uri, mode, params, headers=None):
        st = self.state
        params = {k: v for k, v in params.items() if v is not None}
        if st.config["advertise_iss"]:
            params["iss"] = st.issuer
        if mode == "form_post":
            inputs = "".join(
                '<input type="hidden" name="%s" value="%s"/>'
                % (html.escape(k), html.escape(v)) for k, v in params.items())
            page = (
                "<!DOCTYPE html><html><head><title>Working...</title></head>"
                '<body onload="document.forms[0].submit()">'
                '<form method="POST" name="hiddenform" action="%s">%s'
                "<noscript><p>Script is disabled. Click Submit to continue."
                '</p><input type="submit" value="Submit"/></noscript>'
                "</form></body></html>" % (html.escape(redirect_uri), inputs))
            return self.send_html(200, page, headers=headers)
        sep = "&" if "?" in redirect_uri else "?"
        self.redirect(redirect_uri + sep + urlencode(params), headers)

    def error_page(self, status, title, text):
        self.entry["notes"]["error"] = text
        self.send_html(status, "<!DOCTYPE html><html><head><title>%s</title>"
                       "</head><body><h1>%s</h1><p>%s</p></body></html>"
                       % (html.escape(title), html.escape(title),
                          html.escape(text)))

    def login_form(self, params, create, message=""):
        hidden = "".join(
            '<input type="hidden" name="%s" value="%s"/>'
            % (html.escape(k), html.escape(v)) for k, v in params.items()
            if k not in ("username", "password", "display_name", "_op_form",
                         "login_as"))
        title = "Create account" if create else "Sign in"
        extra = ('<label>Display name <input name="display_name" '
                 'id="display_name"/></label><br/>' if create else "")
        page = (
            "<!DOCTYPE html><html><head><title>%s</title></head><body>"
            "<h1>%s</h1>%s"
            '<form method="POST" action="%s" id="op-login">%s'
            '<input type="hidden" name="_op_form" value="%s"/>'
            '<label>Email or username <input name="username" id="username" '
            'value="%s" autofocus/></label><br/>'
            '<label>Password <input type="password" name="password" '
            'id="password"/></label><br/>%s'
            '<button type="submit" id="submit">%s</button></form>'
            "%s</body></html>" % (
                title, title,
                '<p class="error" id="error">%s</p>' % html.escape(message)
                if message else "",
                html.escape(urlsplit(self.path).path), hidden,
                "create" if create else "signin",
                html.escape(params.get("login_hint", "")), extra,
                "Create" if create else "Sign in",
                "" if create else "<p>No account? Create one in the same "
                "form: any username and password are accepted.</p>"))
        self.send_html(200, page)

    def ep_authorize(self, method, query, form):
        st = self.state
        params = dict(query)
        params.update(form)
        notes = self.entry["notes"]
        with st.lock:
            cfg = copy.deepcopy(st.config)
        self.stall("authorize_stall")
        client_id = params.get("client_id", "")
        if client_id != cfg["client_id"]:
            return self.error_page(
                400, "Sign in", "AADSTS700016: Application with identifier "
                "'%s' was not found in the directory." % client_id)
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            return self.error_page(400, "Sign in", "AADSTS900971: No reply "
                                   "address provided.")
        if redirect_uri not in cfg["redirect_uris"]:
            return self.error_page(
                400, "Sign in", "AADSTS50011: The redirect URI '%s' specified "
                "in the request does not match the redirect URIs configured "
                "for the application '%s'." % (redirect_uri, client_id))
        mode = params.get("response_mode", "query")
        state = params.get("state")

        def fail(error, desc):
            notes["error"] = error
            return self.auth_response(
                redirect_uri, "form_post" if mode == "form_post" else "query",
                {"error": error, "error_description": desc, "state": state})

        if mode not in ("query", "form_post"):
            return fail("invalid_request", "AADSTS900144: response_mode '%s' "
                        "is not supported by this test OP." % mode)
        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "AADSTS700054: "
                        "response_type must be 'code'.")
        scopes = params.get("scope", "").split()
        if "openid" not in scopes:
            return fail("invalid_scope", "AADSTS70011: The provided request "
                        "must include the 'openid' scope.")
        if cfg["require_state"] and not state:
            return fail("invalid_request", "state is required.")
        nonce = params.get("nonce")
        if cfg["require_nonce"] and not nonce:
            return fail("invalid_request", "AADSTS90014: The required field "
                        "'nonce' is missing.")
        challenge = params.get("code_challenge")
        if not challenge:
            return fail("invalid_request", "AADSTS9002325: Proof Key for Code "
                        "Exchange is required.")
        if params.get("code_challenge_method") != "S256":
            return fail("invalid_request", "AADSTS501491: Invalid "
                        "code_challenge_method; S256 is required.")
        if not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge):
            return fail("invalid_request", "AADSTS501491: Invalid size of "
                        "Code_Challenge parameter.")
        fault = st.take_fault(["authorize_error"])
        if fault:
            return fail(fault.get("error", "access_denied"),
                        fault.get("error_description", "AADSTS50126: The user "
                                  "has cancelled the sign-in."))

        prompt = params.get("prompt", "")
        create = prompt == "create" or params.get("_op_form") == "create"
        cookie_sid = self.cookie("op_sso")
        user, set_cookie, how = None, None, None
        if params.get("login_as"):
            user, how = params["login_as"], "login_as"
        elif method == "POST" and params.get("_op_form"):
            username = params.get("username", "").strip()
            if not username:
                return self.login_form(params, create,
                                       "Enter a username (any password).")
            user, how = username, "form"
            if create and params.get("display_name"):
                with st.lock:
                    st.users.setdefault(username, {})["name"] = \
                        params["display_name"]
            sid = secrets.token_urlsafe(24)
            with st.lock:
                st.sessions[sid] = username
            set_cookie = ("Set-Cookie", "op_sso=%s; Path=/; HttpOnly; "
                          "SameSite=Lax" % sid)
        elif (cookie_sid and prompt not in ("login", "create")
              and cookie_sid in st.sessions):
            user, how = st.sessions[cookie_sid], "sso"
        elif cfg["default_user"]:
            user, how = cfg["default_user"], "default_user"
        elif prompt == "none":
            return fail("login_required", "AADSTS50058: A silent sign-in "
                        "request was sent but no user is signed in.")
        if user is None:
            notes["form"] = "create" if create else "signin"
            return self.login_form(params, create)

        needs = set(scopes) & set(cfg["consent_required_scopes"])
        if needs and cfg["consent_granted_at_authorize"]:
            with st.lock:
                st.consents.setdefault(user, set()).update(needs)
            notes["consented"] = sorted(needs)
        code = secrets.token_urlsafe(48)
        with st.lock:
            st.codes[code] = {
                "client_id": client_id, "redirect_uri": redirect_uri,
                "user": user, "scopes": scopes, "nonce": nonce,
                "challenge": challenge, "issued": st.now(), "used": False,
                "auth_time": st.now(), "client_info": params.get(
                    "client_info") == "1",
            }
        notes.update(user=user, login=how)
        st.count("codes_issued")
        self.auth_response(redirect_uri, mode, {"code": code, "state": state},
                           [set_cookie] if set_cookie else None)

    def cookie(self, name):
        for part in self.headers.get("Cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == name:
                return v
        return None

    # -- token --------------------------------------------------------
    def token_error(self, status, error, desc, code=None):
        st = self.state
        self.entry["notes"]["error"] = error
        st.count("token_errors")
        body = {
            "error": error, "error_description": desc,
            "error_codes": [code] if code else [],
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }
        headers = None
        if status == 401 and self.headers.get("Authorization", "").lower() \
                .startswith("basic"):
            headers = [("WWW-Authenticate", 'Basic realm="op"')]
        self.send_json(status, body, headers)

    def ep_token(self, method, query, form):
        st = self.state
        notes = self.entry["notes"]
        if method != "POST":
            return self.token_error(400, "invalid_request", "AADSTS900561: "
                                    "The endpoint only accepts POST requests.",
                                    900561)
        grant = form.get("grant_type")
        notes["grant_type"] = grant
        if grant == "refresh_token":
            st.count("token_refresh")
        elif grant == "authorization_code":
            st.count("token_authorization_code")
        self.stall("token_stall", grant)
        fault = st.take_fault(["token_reset"], grant)
        if fault:
            return self.reset_connection()
        fault = st.take_fault(["token_redirect"], grant)
        if fault:
            return self.fault_redirect(fault)
        fault = st.take_fault(["token_500", "token_garbage", "token_huge",
                               "token_error"], grant)
        if fault:
            return self.token_fault(fault)
        ctype = self.headers.get("Content-Type", "").lower()
        if not ctype.startswith("application/x-www-form-urlencoded"):
            return self.token_error(400, "invalid_request", "AADSTS900144: "
                                    "The request body must be "
                                    "application/x-www-form-urlencoded.")
        with st.lock:
            cfg = copy.deepcopy(st.config)
        client_id, failure = self.authenticate_client(cfg, form)
        if failure:
            return self.token_error(*failure)

        if grant == "authorization_code":
            return self.grant_code(form, cfg, client_id)
        if grant == "refresh_token":
            return self.grant_refresh(form, cfg, client_id)
        return self.token_error(400, "unsupported_grant_type",
                                "AADSTS70003: The app requested an unsupported"
                                " grant type '%s'." % grant, 70003)

    def authenticate_client(self, cfg, form):
        """Client authentication as Entra's token endpoint does it (secret
        in the body or Basic, or a private_key_jwt assertion): (client_id,
        None), or (None, the token_error arguments)."""
        auth = self.headers.get("Authorization", "")
        post_id, post_secret = form.get("client_id"), form.get("client_secret")
        if "client_assertion" in form or "client_assertion_type" in form:
            if post_secret is not None or auth.lower().startswith("basic "):
                return None, (400, "invalid_request", "More than one "
                              "client authentication method used.", 90014)
            client_id, failure = self.check_assertion(cfg, form)
            if failure:
                return None, failure
            secret, how = None, "private_key_jwt"
        elif auth.lower().startswith("basic "):
            try:
                raw = base64.b64decode(auth[6:].strip(), validate=True)
                # RFC 6749 2.3.1: each of id and secret is form-encoded
                # before the colon joins them, so only these bytes can
                # appear, and the first colon is the separator.
                text = raw.decode("ascii")
                if not FORM_ENCODED_RE.match(text):
                    raise ValueError("Basic credentials not form-encoded")
                bid, _, bsecret = text.partition(":")
                bid, bsecret = unquote_plus(bid), unquote_plus(bsecret)
            except Exception:
                return None, (401, "invalid_client", "AADSTS7000215: "
                              "Malformed Basic credentials.", 7000215)
            if post_secret is not None:
                return None, (400, "invalid_request", "More than one "
                              "client authentication method used.", 90014)
            if post_id is not None and post_id != bid:
                return None, (400, "invalid_request", "client_id differs "
                              "from the Basic credentials.")
            client_id, secret, how = bid, bsecret, "client_secret_basic"
        elif post_secret is not None:
            client_id, secret, how = post_id, post_secret, "client_secret_post"
        else:
            return None, (
                401, "invalid_client", "AADSTS7000218: The request body must "
                "contain the following parameter: 'client_assertion' or "
                "'client_secret'.", 7000218)
        self.entry["notes"]["client_auth"] = how
        allowed = cfg["token_auth_methods"]
        if allowed is None:
            allowed = ("client_secret_basic", "client_secret_post",
                       "private_key_jwt")
        elif allowed == "absent":
            allowed = ("client_secret_basic",)
        if how not in allowed:
            return None, (
                401, "invalid_client", "AADSTS7000218: client "
                "authentication by %s is not allowed for this client "
                "(allowed: %s)." % (how, ", ".join(allowed)), 7000218)
        if client_id != cfg["client_id"]:
            return None, (
                401, "invalid_client", "AADSTS700016: Application with "
                "identifier '%s' was not found in the directory." % client_id,
                700016)
        if how != "private_key_jwt" and not hmac.compare_digest(
                secret.encode(), cfg["client_secret"].encode()):
            return None, (
                401, "invalid_client", "AADSTS7000215: Invalid client secret "
                "provided.", 7000215)

        return client_id, None

    def check_assertion(self, cfg, form):
        """A private_key_jwt client assertion, checked as Entra checks a
        certificate credential: (client_id, None), or (None, the
        token_error arguments).  Every failure is 401 invalid_client, as
        Entra answers them.  Its header and claims go in the log entry's
        notes ("assertion"); the failure's reason in notes["error"]."""
        st = self.state
        notes = self.entry["notes"]

        def refuse(code, text):
            notes["assertion_error"] = code
            return None, (401, "invalid_client", "AADSTS%d: %s" % (code, text),
                          code)

        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return refuse(7000218, "client_assertion_type must be '%s'."
                          % ASSERTION_TYPE)
        try:
            head, body, sig = form.get("client_assertion", "").split(".")
            header = json.loads(b64u_decode(head))
            claims = json.loads(b64u_decode(body))
            signature = b64u_decode(sig)
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("not objects")
        except Exception:
            return refuse(50027, "JWT token is invalid or malformed.")
        notes["assertion"] = {"header": header, "claims": claims}
        alg = header.get("alg")
        if alg not in ASSERTION_ALGS:
            return refuse(5002738, "Invalid JWT token. '%s' is not a "
                          "supported signature algorithm." % (alg,))
        iss, sub = claims.get("iss"), claims.get("sub")
        if not isinstance(iss, str) or iss != sub or (
                form.get("client_id") is not None and
                form["client_id"] != iss):
            return refuse(700021, "Client assertion application identifier "
                          "doesn't match 'client_id' parameter.")
        if iss != cfg["client_id"]:
            return refuse(700016, "Application with identifier '%s' was not "
                          "found in the directory." % iss)
        # The registered certificate the header names by its thumbprint.
        s256, s1 = header.get("x5t#S256"), header.get("x5t")
        cert = None
        for pem in cfg["client_certificates"]:
            c = x509.load_pem_x509_certificate(pem.encode("ascii"))
            t256 = b64u(c.fingerprint(hashes.SHA256()))
            t1 = b64u(c.fingerprint(hashes.SHA1()))
            if (s256 is not None or s1 is not None) and \
                    s256 in (None, t256) and s1 in (None, t1):
                cert = c
                break
        if cert is None:
            return refuse(700027, "The certificate with identifier used to "
                          "sign the client assertion is not registered on "
                          "application. [Reason - The key was not found., "
                          "Thumbprint of key used by client: '%s']"
                          % (s256 or s1,))
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                          salt_length=32) if alg == "PS256" \
            else padding.PKCS1v15()
        try:
            cert.public_key().verify(signature, (head + "." + body).encode(),
                                     pad, hashes.SHA256())
        except Exception:
            return refuse(700027, "Client assertion contains an invalid "
                          "signature. [Reason - The key was found, but the "
                          "signature does not verify with it.]")
        aud = claims.get("aud")
        mine = (st.endpoint("token"), st.base + urlsplit(self.path).path)
        if not (aud in mine or (isinstance(aud, list) and
                                any(a in mine for a in aud))):
            return refuse(700023, "Client assertion audience claim does not "
                          "match Realm issuer.")
        now = st.now()
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), \
            claims.get("iat")
        times = [t for t in (exp, nbf, iat) if t is not None]
        if not isinstance(exp, int) or \
                not all(isinstance(t, int) for t in times) or \
                exp <= now - ASSERTION_SKEW or \
                exp > now + ASSERTION_MAX_LIFETIME + ASSERTION_SKEW or \
                (nbf is not None and nbf > now + ASSERTION_SKEW) or \
                (iat is not None and iat > now + ASSERTION_SKEW):
            return refuse(700024, "Client assertion is not within its valid "
                          "time range. Current time: %s, assertion valid "
                          "from %s, expiry time of assertion %s."
                          % (now, nbf, exp))
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            return refuse(50013, "Assertion is invalid: it has no jti.")
        # RFC 7523 3: a jti may be used once (Entra documents no code for
        # a replay; 50013 is its "assertion is invalid" family).
        with st.lock:
            st.assertion_jtis = {j: e for j, e in st.assertion_jtis.items()
                                 if e > now - ASSERTION_SKEW}
            if jti in st.assertion_jtis:
                return refuse(50013, "Assertion is invalid: its jti was "
                              "already used (a replay).")
            st.assertion_jtis[jti] = exp
        return iss, None

    def token_fault(self, fault):
        name = fault["name"]
        if name == "token_500":
            return self.send(int(fault.get("status", 500)),
                             fault.get("body", "<html><body>Internal Server "
                                       "Error</body></html>"),
                             "text/html; charset=utf-8")
        if name == "token_garbage":
            return self.send(200, fault.get("body", "this is {not json"),
                             fault.get("content_type",
                                       "application/json; charset=utf-8"))
        if name == "token_huge":
            size = int(fault.get("size", 5 * 1024 * 1024))
            return self.send_huge(size, bool(fault.get("chunked", False)))
        return self.token_error(int(fault.get("status", 400)),
                                fault.get("error", "invalid_grant"),
                                fault.get("error_description",
                                          "AADSTS70008: The provided "
                                          "authorization code or refresh "
                                          "token has expired due to "
                                          "inactivity."),
                                fault.get("error_code", 70008))

    def send_huge(self, size, chunked):
        head = b'{"token_type":"Bearer","expires_in":3600,"padding":"'
        tail = b'"}'
        fill = max(0, size - len(head) - len(tail))
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(head) + fill +
                                                   len(tail)))
        self.end_headers()
        self.entry["status"] = 200
        block = b"A" * 65536

        def out(data):
            if chunked:
                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                self.wfile.write(data)
        out(head)
        while fill > 0:
            n = min(fill, len(block))
            out(block[:n])
            fill -= n
        out(tail)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def grant_code(self, form, cfg, client_id):
        st = self.state
        code = form.get("code", "")
        with st.lock:
            rec = st.codes.get(code)
            was_used = rec["used"] if rec else False
            if rec:
                rec["used"] = True
        if rec is None:
            return self.token_error(400, "invalid_grant", "AADSTS9002313: "
                                    "Invalid request. Request is malformed or "
                                    "invalid (unknown code).", 9002313)
        if was_used:
            return self.token_error(400, "invalid_grant", "AADSTS54005: OAuth2"
                                    " Authorization code was already "
                                    "redeemed, please retry with a new valid "
                                    "code or use an existing refresh token.",
                                    54005)
        if st.now() > rec["issued"] + cfg["code_lifetime"]:
            return self.token_error(400, "invalid_grant", "AADSTS70008: The "
                                    "provided authorization code or refresh "
                                    "token has expired.", 70008)
        if rec["client_id"] != client_id:
            return self.token_error(400, "invalid_grant", "AADSTS70002: The "
                                    "code was issued to another client.",
                                    70002)
        if form.get("redirect_uri") != rec["redirect_uri"]:
            return self.token_error(400, "invalid_grant", "AADSTS50011: The "
                                    "redirect_uri does not match the one used "
                                    "in the authorization request.", 50011)
        verifier = form.get("code_verifier")
        if not verifier:
            return self.token_error(400, "invalid_request", "AADSTS50148: "
                                    "code_verifier is required (PKCE).",
                                    50148)
        if not VERIFIER_RE.match(verifier) or \
                s256(verifier) != rec["challenge"]:
            return self.token_error(400, "invalid_grant", "AADSTS50148: The "
                                    "code_verifier does not match the "
                                    "code_challenge supplied in the "
                                    "authorization request for PKCE.", 50148)
        self.entry["notes"]["user"] = rec["user"]
        self.issue(cfg, client_id, rec["user"], rec["scopes"], rec["nonce"],
                   "authorization_code", rec["auth_time"],
                   rec["client_info"] or form.get("client_info") == "1")

    def grant_refresh(self, form, cfg, client_id):
        st = self.state
        token = form.get("refresh_token", "")
        asked = form.get("scope", "").split()
        with st.lock:
            rec = st.refresh_tokens.get(token)
            missing = sorted(
                (set(asked) & set(cfg["consent_required_scopes"])) -
                st.consents.get(rec["user"] if rec else None, set()))
            if rec and rec["client_id"] == client_id and missing:
                # Entra keeps the refresh token when it refuses a scope.
                self.entry["notes"]["consent_missing"] = missing
                return self.token_error(
                    400, "consent_required", "AADSTS65001: The user or "
                    "administrator has not consented to use the "
                    "application with ID '%s'. Send an interactive "
                    "authorization request for this user and resource "
                    "(%s)." % (client_id, " ".join(missing)), 65001)
            if rec and rec["client_id"] == client_id and \
                    cfg["rotate_refresh_tokens"] and \
                    st.now() <= rec["expires"]:
                del st.refresh_tokens[token]
        if rec is None:
            return self.token_error(400, "invalid_grant", "AADSTS70000: The "
                                    "provided value for the 'refresh_token' "
                                    "is not valid (unknown, revoked or "
                                    "already used).", 70000)
        if rec["client_id"] != client_id:
            return self.token_error(400, "invalid_grant", "AADSTS700003: The "
                                    "refresh token was issued to another "
                                    "client.", 700003)
        if st.now() > rec["expires"]:
            return self.token_error(400, "invalid_grant", "AADSTS700082: The "
                                    "refresh token has expired due to "
                                    "inactivity.", 700082)
        scopes = rec["scopes"]
        if form.get("scope"):
            scopes = form["scope"].split()
        self.entry["notes"]["user"] = rec["user"]
        self.issue(cfg, client_id, rec["user"], scopes, None, "refresh_token",
                   rec["auth_time"], form.get("client_info") == "1",
                   original_scopes=rec["scopes"])

    def issue(self, cfg, client_id, user, scopes, nonce, grant, auth_time,
              client_info, original_scopes=None):
        st = self.state
        now = st.now()
        granted = cfg["granted_scopes"]
        if isinstance(granted, str):
            granted = granted.split()
        if granted is None:
            granted = list(scopes)
        claims = st.user_claims(user, client_id)
        resp = {
            "token_type": "Bearer",
            "scope": " ".join(granted),
            "expires_in": cfg["expires_in"],
            "ext_expires_in": cfg["expires_in"],
            "access_token": self.access_token(cfg, client_id, claims,
                                              granted, now, grant),
        }
        all_scopes = set(scopes) | set(original_scopes or [])
        if "offline_access" in all_scopes or \
                not cfg["refresh_requires_offline_access"]:
            rt = "0.OP" + secrets.token_urlsafe(64)
            with st.lock:
                st.refresh_tokens[rt] = {
                    "client_id": client_id, "user": user,
                    "scopes": list(original_scopes or scopes),
                    "issued": now,
                    "expires": now + cfg["refresh_token_lifetime"],
                    "auth_time": auth_time,
                }
            resp["refresh_token"] = rt
        if "openid" in all_scopes:
            resp["id_token"] = self.id_token(cfg, client_id, claims, nonce,
                                             grant, now,
                                             resp["access_token"])
        if client_info:
            resp["client_info"] = b64u_json({"uid": claims.get("oid"),
                                             "utid": st.tenant_id})
        fault = st.take_fault(["token_drop_fields"], grant)
        if fault:
            for f in fault.get("fields", []):
                resp.pop(f, None)
        fault = st.take_fault(["token_override"], grant)
        if fault:
            resp.update(fault.get("fields", {}))
        fault = st.take_fault(["token_hostile"], grant)
        if fault:
            field = fault.get("field", "access_token")
            resp[field] = fault["value"] if "value" in fault else \
                hostile_token(resp.get(field, "tok"),
                              fault.get("kind", "crlf"))
            self.entry["notes"]["hostile"] = field
        st.count("tokens_issued")
        self.send_json(200, resp)

    def access_token(self, cfg, client_id, claims, granted, now,
                     grant=None):
        st = self.state
        # A scope named with its resource (api://orders/Orders.Read,
        # https://graph.microsoft.com/User.Read) makes a token for that
        # resource, as Entra does: aud is the resource (Graph's by its
        # app id) and scp the scopes' short names.
        aud = cfg["access_token_audience"]
        resources = [s.rsplit("/", 1) for s in granted if "://" in s]
        if resources:
            aud = resources[0][0]
            if aud == "https://graph.microsoft.com":
                aud = GRAPH_AUDIENCE
            granted = [r[1] for r in resources]
        payload = {
            "aud": aud,
            "iss": st.issuer,
            "iat": now, "nbf": now, "exp": now + cfg["expires_in"],
            "azp": client_id, "appid": client_id,
            "name": claims.get("name"),
            "preferred_username": claims.get("preferred_username"),
            "oid": claims.get("oid"), "sub": claims.get("sub"),
            "tid": st.tenant_id,
            "scp": " ".join(s for s in granted if s != "offline_access"),
            "uti": secrets.token_urlsafe(16), "ver": "2.0",
        }
        for extra in ("roles", "groups", "email"):
            if extra in claims:
                payload[extra] = claims[extra]
        key = st.signing_key
        header = {"typ": "JWT", "alg": "RS256", "kid": key.kid}
        # access_token_claims: "claims" are set (a null removes one) and
        # "header" members likewise, still signed with the real key.
        f = st.take_fault(["access_token_claims"], grant)
        if f:
            payload.update(f.get("claims", {}))
            header.update(f.get("header", {}))
            header = {k: v for k, v in header.items() if v is not None}
            self.entry["notes"]["access_token_faults"] = [f["name"]]
        return jwt_rs256(header,
                         {k: v for k, v in payload.items() if v is not None},
                         key)

    def id_token(self, cfg, client_id, claims, nonce, grant, now,
                 access_token=None):
        st = self.state
        payload = {
            "aud": client_id, "iss": st.issuer,
            "iat": now, "nbf": now, "exp": now + cfg["id_token_lifetime"],
        }
        payload.update(claims)
        payload["tid"] = claims.get("tid", st.tenant_id)
        if nonce is not None:
            payload["nonce"] = nonce
        payload["ver"] = "2.0"
        if cfg["id_token_at_hash"] and access_token is not None:
            payload["at_hash"] = at_hash(access_token)
        key = st.signing_key
        header = {"typ": "JWT", "alg": "RS256", "kid": key.kid}
        faults = st.take_all_faults(
            [n for n, ep in FAULTS.items() if ep == "id_token"], grant)
        names = {f["name"]: f for f in faults}
        self.entry["notes"]["id_token_faults"] = sorted(names)
        f = names.get("id_token_wrong_iss")
        if f:
            payload["iss"] = f.get("iss", "https://login.microsoftonline.com/"
                                   "%s/v2.0" % uuid.uuid4())
        f = names.get("id_token_wrong_aud")
        if f:
            payload["aud"] = f.get("aud", str(uuid.uuid4()))
        f = names.get("id_token_expired")
        if f:
            ago = int(f.get("seconds_ago", 3600))
            payload["exp"] = now - ago
            payload["iat"] = payload["nbf"] = now - ago - \
                cfg["id_token_lifetime"]
        f = names.get("id_token_iat_future")
        if f:
            payload["iat"] = now + int(f.get("seconds", 3600))
        f = names.get("id_token_nbf_future")
        if f:
            payload["nbf"] = now + int(f.get("seconds", 3600))
        if "id_token_missing_nonce" in names:
            payload.pop("nonce", None)
        f = names.get("id_token_wrong_nonce")
        if f:
            payload["nonce"] = f.get("nonce", secrets.token_hex(32))
        if "id_token_missing_sub" in names:
            payload.pop("sub", None)
        f = names.get("id_token_azp_mismatch")
        if f:
            other = f.get("azp", str(uuid.uuid4()))
            payload["aud"] = [client_id, other]
            payload["azp"] = other
        f = names.get("id_token_multi_aud")
        if f:
            payload["aud"] = [client_id] + list(
                f.get("audiences", [str(uuid.uuid4())]))
            payload["azp"] = client_id
        f = names.get("refresh_different_sub")
        if f:
            payload["sub"] = f.get("sub", b64u(secrets.token_bytes(32))[:43])
            payload["oid"] = f.get("oid", str(uuid.uuid4()))
        f = names.get("refresh_different_iss")
        if f:
            payload["iss"] = f.get("iss", "%s/%s/v2.0" % (st.base,
                                                          uuid.uuid4()))
        f = names.get("refresh_different_aud")
        if f:
            payload["aud"] = f.get("aud", str(uuid.uuid4()))
        f = names.get("id_token_wrong_at_hash")
        if f:
            # the hash of another token, well-formed: only a check of the
            # binding can tell
            payload["at_hash"] = f.get("at_hash", at_hash(
                (access_token or "") + "-not-this-one"))
        f = names.get("id_token_claims")
        if f:
            payload.update(f.get("claims", {}))
            for c in f.get("remove", []):
                payload.pop(c, None)
            payload = {k: v for k, v in payload.items() if v is not None}

        # signing variants
        if "id_token_alg_none" in names:
            return b64u_json({"typ": "JWT", "alg": "none"}) + "." + \
                b64u_json(payload) + "."
        if "id_token_hs256_pubkey" in names:
            h = {"typ": "JWT", "alg": "HS256", "kid": key.kid}
            signing_input = (b64u_json(h) + "." + b64u_json(payload)).encode()
            mac = hmac.new(key.public_pem, signing_input, hashlib.sha256)
            return signing_input.decode() + "." + b64u(mac.digest())
        if "id_token_embedded_jwk" in names:
            evil = st.attacker_key
            h = {"typ": "JWT", "alg": "RS256", "kid": evil.kid,
                 "jwk": evil.jwk}
            return jwt_rs256(h, payload, evil)
        if "id_token_jku" in names:
            evil = st.attacker_key
            h = {"typ": "JWT", "alg": "RS256", "kid": evil.kid,
                 "jku": st.base + "/_evil/keys"}
            return jwt_rs256(h, payload, evil)
        if "id_token_retired_key" in names:
            with st.lock:
                old = st.retired[0]
            return jwt_rs256(dict(header, kid=old.kid), payload, old)
        f = names.get("id_token_unknown_kid")
        if f:
            if f.get("same_key"):
                h = dict(header, kid=f.get("kid", "unknown-" +
                                          secrets.token_hex(8)))
                return jwt_rs256(h, payload, key)
            stray = st.stray_key
            return jwt_rs256(dict(header, kid=stray.kid), payload, stray)
        token = jwt_signed(cfg["id_token_alg"], header, payload, key,
                           st.ec_key)
        if "id_token_bad_signature" in names:
            head, body, sig = token.split(".")
            raw = bytearray(b64u_decode(sig))
            raw[len(raw) // 2] ^= 0x01
            token = "%s.%s.%s" % (head, body, b64u(bytes(raw)))
        return token

    # -- userinfo -----------------------------------------------------
    def ep_userinfo(self, method, query, form):
        auth = self.headers.get("Authorization", "")
        claims = None
        if auth.lower().startswith("bearer "):
            claims = self.check_own_jwt(auth[7:].strip())
        if claims is None:
            return self.send_json(401, {"error": "invalid_token"}, [
                ("WWW-Authenticate", 'Bearer error="invalid_token"')])
        out = {k: claims[k] for k in ("sub", "name", "email",
                                      "preferred_username", "oid")
               if k in claims}
        name = claims.get("name", "").split(" ")
        out["given_name"] = name[0]
        out["family_name"] = name[-1] if len(name) > 1 else ""
        self.entry["notes"]["user"] = claims.get("preferred_username")
        self.send_json(200, out)

    def check_own_jwt(self, token):
        st = self.state
        try:
            head, body, sig = token.split(".")
            header = json.loads(b64u_decode(head))
            claims = json.loads(b64u_decode(body))
        except Exception:
            return None
        if header.get("alg") != "RS256":
            return None
        with st.lock:
            keys = [k for k in st.keys if k.kid == header.get("kid")]
        signing_input = (head + "." + body).encode()
        if not keys or not keys[0].verify(b64u_decode(sig), signing_input):
            return None
        if claims.get("exp", 0) < st.now():
            return None
        return claims

    # -- logout -------------------------------------------------------
    def ep_logout(self, method, query, form):
        st = self.state
        params = dict(query)
        params.update(form)
        notes = self.entry["notes"]
        for k in ("id_token_hint", "client_id", "post_logout_redirect_uri",
                  "state", "logout_hint"):
            if k in params:
                notes[k] = params[k]
        sid = self.cookie("op_sso")
        sso_user = None
        with st.lock:
            if sid:
                sso_user = st.sessions.pop(sid, None)
            allowed = list(st.config["post_logout_redirect_uris"])
        clear = [("Set-Cookie", "op_sso=; Path=/; Max-Age=0; HttpOnly; "
                  "SameSite=Lax")]
        fault = st.take_fault(["logout_error"])
        if fault:
            return self.error_page(int(fault.get("status", 500)), "Sign out",
                                   fault.get("message", "AADSTS90033: "
                                             "sign-out failed."))
        target = params.get("post_logout_redirect_uri")
        if target:
            if allowed and target not in allowed:
                return self.error_page(
                    400, "Sign out", "AADSTS50011: The post_logout_redirect_"
                    "uri '%s' is not registered for the application."
                    % target)
            if params.get("state"):
                sep = "&" if "?" in target else "?"
                target += sep + urlencode({"state": params["state"]})
            return self.redirect(target, clear)
        self.send_html(200, "<!DOCTYPE html><html><head><title>Signed out"
                       "</title></head><body><h1 id=\"signed-out\">You "
                       "signed out of your account</h1><p>It's a good idea "
                       "to close all browser windows.</p>%s</body></html>"
                       % self.frontchannel_iframe(params, sso_user), clear)

    def frontchannel_iframe(self, params, sso_user):
        """The iframe of the registered front-channel logout URL for the
        user signing out (logout_hint, else the SSO cookie's user), with
        iss and that user's sid claim; "" when there is none."""
        st = self.state
        with st.lock:
            uri = st.config.get("frontchannel_logout_uri")
            user = params.get("logout_hint") or sso_user
            claims = st.users.get(user, {}) if user else {}
        if not uri:
            return ""
        q = {"iss": st.issuer}
        if claims.get("sid"):
            q["sid"] = claims["sid"]
        src = uri + ("&" if "?" in uri else "?") + urlencode(q)
        return ('<iframe id="frontchannel" src="%s" width="1" height="1">'
                '</iframe>' % html.escape(src, quote=True))

    def ep_revocation(self, method, query, form):
        """RFC 7009 token revocation, with the token endpoint's client
        authentication.  The log entry's notes say which token came
        (token_type_hint, whether it is a refresh token issued here and
        to whom, never the token) and whether the answer was held."""
        st = self.state
        notes = self.entry["notes"]
        if method != "POST":
            return self.token_error(400, "invalid_request",
                                    "The endpoint only accepts POST.")
        with st.lock:
            cfg = copy.deepcopy(st.config)
            gate = st.gate
        client_id, failure = self.authenticate_client(cfg, form)
        if failure:
            return self.token_error(*failure)
        token = form.get("token", "")
        notes["token_type_hint"] = form.get("token_type_hint")
        with st.lock:
            rec = st.refresh_tokens.pop(token, None)
        notes["refresh_token_known"] = rec is not None
        if rec is not None:
            notes["user"] = rec["user"]
            st.count("revoked")
        fault = st.take_fault(["revocation_hold"])
        if fault:
            notes["held"] = True
            notes["released"] = gate.wait(float(fault.get("seconds", 60)))
        fault = st.take_fault(["revocation_error"])
        if fault:
            return self.token_error(int(fault.get("status", 503)),
                                    fault.get("error",
                                              "temporarily_unavailable"),
                                    "AADSTS90033: service unavailable.")
        if not token:
            return self.token_error(400, "invalid_request",
                                    "token is required.")
        # RFC 7009 2.2: 200 also for a token that is unknown or spent.
        self.send(200, b"", "text/plain")

    # -- control API --------------------------------------------------
    def control(self, method, path, query, body):
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return self.send_json(400, {"error": "body is not JSON"})
        if not isinstance(data, dict):
            return self.send_json(400, {"error": "body must be an object"})
        try:
            out = self.control_op(method, path[len("/_control"):], query,
                                  data)
        except (ValueError, TypeError, KeyError) as exc:
            return self.send_json(400, {"error": str(exc)})
        if out is None:
            return self.send_json(404, {"error": "no such control %s %s"
                                        % (method, path)})
        self.send_json(200, out)

    def control_op(self, method, op, query, data):
        st = self.state
        if op in ("", "/", "/state") and method == "GET":
            return self.describe()
        if op == "/config":
            if method == "POST":
                with st.lock:
                    new = copy.deepcopy(st.config)
                    for k, v in data.items():
                        if k == "redirect_uri":
                            k, v = "redirect_uris", [v]
                        if k == "post_logout_redirect_uri":
                            k, v = "post_logout_redirect_uris", [v]
                        if k not in DEFAULT_CONFIG:
                            raise ValueError("unknown config key %r" % k)
                        if k in ("redirect_uris",
                                 "post_logout_redirect_uris",
                                 "client_certificates") and \
                                not isinstance(v, list):
                            raise ValueError("%s must be a list" % k)
                        if k == "id_token_alg" and \
                                v not in ("RS256", "PS256", "ES256"):
                            raise ValueError("id_token_alg: RS256, PS256 "
                                             "or ES256")
                        if k == "client_certificates":
                            for pem in v:  # each must be a certificate
                                x509.load_pem_x509_certificate(
                                    pem.encode("ascii"))
                        new[k] = v
                    st.config = new
            with st.lock:
                return copy.deepcopy(st.config)
        if op == "/user" and method == "POST":
            username = data.get("username")
            if not username or not isinstance(username, str):
                raise ValueError("username is required")
            claims = data.get("claims", {})
            if not isinstance(claims, dict):
                raise ValueError("claims must be an object")
            with st.lock:
                if data.get("replace") or username not in st.users:
                    st.users[username] = {}
                st.users[username].update(claims)
                if data.get("default"):
                    st.config["default_user"] = username
            return {"username": username,
                    "claims": st.user_claims(username,
                                             st.config["client_id"])}
        if op == "/users" and method == "GET":
            with st.lock:
                return {u: st.user_claims(u, st.config["client_id"])
                        for u in st.users}
        if op == "/fault" and method == "POST":
            return st.add_fault(data)
        if op == "/faults" and method == "GET":
            with st.lock:
                return {"faults": copy.deepcopy(st.faults),
                        "known": sorted(FAULTS)}
        if op == "/faults/clear" and method == "POST":
            with st.lock:
                name = data.get("name")
                st.faults = [f for f in st.faults
                             if name is not None and f["name"] != name]
                return {"faults": copy.deepcopy(st.faults)}
        if op == "/keys" and method == "GET":
            with st.lock:
                return {"signing_kid": st.signing_key.kid,
                        "kids": [k.kid for k in st.keys]}
        if op == "/keys/rotate" and method == "POST":
            new = Key(st.args.key_size)
            with st.lock:
                old = st.signing_key
                keep = data.get("keep_old", True)
                if not keep:
                    st.retired = [old] + [k for k in st.keys
                                          if k is not old] + st.retired
                st.keys = [new] + (list(st.keys) if keep else [])
                st.signing_key = old if data.get("sign_with") == "old" and \
                    keep else new
                return {"signing_kid": st.signing_key.kid,
                        "kids": [k.kid for k in st.keys],
                        "new_kid": new.kid, "old_kid": old.kid}
        if op == "/log" and method == "GET":
            since = int(query.get("since", 0))
            ep = query.get("endpoint")
            with st.lock:
                reqs = [copy.deepcopy(e) for e in st.log
                        if e["seq"] > since and (ep is None or
                                                 e["endpoint"] == ep)]
                return {"requests": reqs, "counters": dict(st.counters),
                        "seq": st.seq}
        if op == "/log/clear" and method == "POST":
            st.clear_log()
            return {"ok": True}
        if op == "/revoke" and method == "POST":
            user = data.get("username")
            with st.lock:
                before = len(st.refresh_tokens)
                st.refresh_tokens = {
                    k: v for k, v in st.refresh_tokens.items()
                    if user is not None and v["user"] != user}
                st.sessions = {
                    k: v for k, v in st.sessions.items()
                    if user is not None and v != user}
                return {"revoked": before - len(st.refresh_tokens)}
        if op == "/release" and method == "POST":
            st.release_held()
            return {"ok": True}
        if op == "/logout_token" and method == "POST":
            return {"logout_token": self.logout_token(data)}
        if op == "/reset" and method == "POST":
            st.reset()
            return self.describe()
        return None

    def logout_token(self, data):
        """A Back-Channel Logout 1.0 logout token signed with the OP's key.

        data: sid and/or sub; claims (merged last; a null value removes
        the claim); alg "none" (unsigned), bad_signature (a bit flipped),
        key "stray" (signed with a key the JWKS lacks).
        """
        st = self.state
        now = st.now()
        payload = {
            "iss": st.issuer, "aud": st.config["client_id"], "iat": now,
            "exp": now + 120, "jti": secrets.token_urlsafe(16),
            "tid": st.tenant_id,
            "events": {
                "http://schemas.openid.net/event/backchannel-logout": {}},
        }
        for k in ("sid", "sub"):
            if data.get(k) is not None:
                payload[k] = data[k]
        payload.update(data.get("claims", {}))
        payload = {k: v for k, v in payload.items() if v is not None}
        key = st.stray_key if data.get("key") == "stray" else \
            st.signing_key
        header = {"typ": "logout+jwt", "alg": "RS256", "kid": key.kid}
        if data.get("alg") == "none":
            return b64u_json({"typ": "logout+jwt", "alg": "none"}) + "." + \
                b64u_json(payload) + "."
        token = jwt_rs256(header, payload, key)
        if data.get("bad_signature"):
            head, body, sig = token.split(".")
            raw = bytearray(b64u_decode(sig))
            raw[len(raw) // 2] ^= 0x01
            token = "%s.%s.%s" % (head, body, b64u(bytes(raw)))
        return token

    def describe(self):
        st = self.state
        with st.lock:
            return {
                "pid": os.getpid(), "port": st.port, "base": st.base,
                "authority": st.authority, "issuer": st.issuer,
                "tenant_id": st.tenant_id,
                "tenant_name": st.tenant_name + ".onmicrosoft.com",
                "discovery_url": st.endpoint("authority_discovery"),
                "issuer_discovery_url": st.endpoint("discovery"),
                "endpoints": {n: st.endpoint(n) for n in (
                    "authorize", "token", "logout", "jwks", "userinfo",
                    "revocation")},
                "config": copy.deepcopy(st.config),
                "signing_kid": st.signing_key.kid,
                "kids": [k.kid for k in st.keys],
                "faults": copy.deepcopy(st.faults),
            }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the bound port here once "
                   "listening")
    p.add_argument("--tenant-name", default="contoso",
                   help="authority path is <name>.onmicrosoft.com")
    p.add_argument("--tenant-id", default=DEFAULT_TENANT_ID,
                   help="tenant GUID used in the issuer and endpoints")
    p.add_argument("--client-id")
    p.add_argument("--client-secret")
    p.add_argument("--redirect-uri", action="append",
                   help="registered redirect URI (repeatable)")
    p.add_argument("--default-user", help="auto-login as this user")
    p.add_argument("--advertise-iss", action="store_true",
                   help="RFC 9207: add iss to authorization responses")
    p.add_argument("--key-size", type=int, default=2048)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)

    state = State(args)
    Handler.state = state
    server = OPServer((args.host, args.port), Handler)
    state.port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp.%d" % os.getpid()
        with open(tmp, "w") as f:
            f.write("%d\n" % state.port)
        os.replace(tmp, args.port_file)
    if args.verbose:
        sys.stderr.write("op: listening on %s, authority %s\n"
                         % (state.base, state.authority))

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
