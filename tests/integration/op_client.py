"""Helpers for driving the test OpenID Provider (tests/op/op.py).

Importable by any integration test or harness; needs only requests and
python3-cryptography (no pytest). Typical use:

    from op_client import OP, start_flow, sign_in, redeem_code

    with OP() as op:
        op.config(redirect_uris=["http://127.0.0.1:9000/.auth/callback"])
        op.user("alice@contoso.com", roles=["Admin"], default=True)
        op.fault("id_token_wrong_nonce")            # one-shot
        ...
        assert op.counter("token_refresh") == 1

A gatehouse test usually only needs OP() (to start it), op.authority /
op.client_id / op.client_secret for the gateway config, op.user(), op.fault()
and op.log()/op.counter(); the flow helpers (start_flow, sign_in,
redeem_code, refresh, verify_jwt) are for talking to the OP directly, and
sign_in() also works on a gateway's redirect to the OP (it just follows the
authorize URL with login_as=<user>).
"""

import base64
import hashlib
import json
import os
import secrets
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
OP_PY = os.path.normpath(os.path.join(HERE, "..", "op", "op.py"))
PYTHON = "/usr/bin/python3"
DEFAULT_SCOPE = "openid profile offline_access User.Read"


class OPError(RuntimeError):
    pass


class OP:
    """A running op.py process on a free port, plus its control API."""

    def __init__(self, args=(), verbose=False, start=True, timeout=10.0):
        self.args = list(args)
        self.verbose = verbose
        self.proc = None
        self.port = None
        self.info = {}
        self.http = requests.Session()
        self._tmp = None
        if start:
            self.start(timeout)

    # -- process ------------------------------------------------------
    def start(self, timeout=10.0):
        self._tmp = tempfile.mkdtemp(prefix="gatehouse-op-")
        port_file = os.path.join(self._tmp, "port")
        self.stderr_path = os.path.join(self._tmp, "stderr")
        cmd = [PYTHON, OP_PY, "--port", "0", "--port-file", port_file]
        cmd += self.args
        if self.verbose:
            cmd.append("--verbose")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=err)
        deadline = time.monotonic() + timeout
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                raise OPError("op.py exited with %s: %s" % (
                    self.proc.returncode, self.stderr()))
            if time.monotonic() > deadline:
                self.stop()
                raise OPError("op.py did not write its port file")
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.info = self.control("GET", "/state")
        return self

    def stop(self, timeout=5.0):
        """Terminate the process by PID and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.http.close()
        return self.proc.returncode if self.proc else None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- addresses ----------------------------------------------------
    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def authority(self):
        """Entra-style authority: {base}/<tenant>.onmicrosoft.com."""
        return self.info["authority"]

    @property
    def issuer(self):
        """{base}/<tenant-guid>/v2.0 (also an oidc_issuer / OIDC_AUTHORITY)."""
        return self.info["issuer"]

    @property
    def tenant_id(self):
        return self.info["tenant_id"]

    @property
    def discovery_url(self):
        return self.info["discovery_url"]

    def endpoint(self, name):
        """authorize, token, logout, jwks or userinfo."""
        return self.info["endpoints"][name]

    @property
    def client_id(self):
        return self.current_config()["client_id"]

    @property
    def client_secret(self):
        return self.current_config()["client_secret"]

    @property
    def redirect_uri(self):
        return self.current_config()["redirect_uris"][0]

    # -- control API --------------------------------------------------
    def control(self, method, op, body=None, params=None):
        r = self.http.request(method, self.base + "/_control" + op,
                              json=body if method != "GET" else None,
                              params=params, timeout=10)
        if r.status_code != 200:
            raise OPError("control %s %s: %s %s" % (method, op, r.status_code,
                                                    r.text))
        return r.json()

    def current_config(self):
        return self.control("GET", "/config")

    def config(self, **settings):
        """Merge settings (client_id, client_secret, redirect_uri(s),
        post_logout_redirect_uris, expires_in, id_token_lifetime,
        refresh_token_lifetime, code_lifetime, access_token_audience,
        advertise_iss, default_user, granted_scopes, time_offset, ...)."""
        return self.control("POST", "/config", settings)

    def user(self, username, default=False, replace=False, **claims):
        """Create or update a user; claims merge (None removes a claim)."""
        return self.control("POST", "/user", {
            "username": username, "claims": claims, "default": default,
            "replace": replace})

    def fault(self, name, sticky=False, times=1, grant=None, **params):
        """Arm a fault; one-shot unless sticky or times > 1."""
        body = dict(params, name=name, sticky=sticky, times=times)
        if grant:
            body["grant"] = grant
        return self.control("POST", "/fault", body)

    def clear_faults(self, name=None):
        return self.control("POST", "/faults/clear",
                            {"name": name} if name else {})

    def faults(self):
        return self.control("GET", "/faults")["faults"]

    def rotate_keys(self, keep_old=True, sign_with="new"):
        return self.control("POST", "/keys/rotate", {
            "keep_old": keep_old, "sign_with": sign_with})

    def keys(self):
        return self.control("GET", "/keys")

    def log(self, endpoint=None, since=0):
        params = {"since": since}
        if endpoint:
            params["endpoint"] = endpoint
        return self.control("GET", "/log", params=params)

    def requests(self, endpoint=None, since=0):
        return self.log(endpoint, since)["requests"]

    def last(self, endpoint):
        reqs = self.requests(endpoint)
        return reqs[-1] if reqs else None

    def counters(self):
        return self.log(endpoint="-")["counters"]

    def counter(self, name):
        """discovery, jwks, authorize, token, token_authorization_code,
        token_refresh, token_errors, tokens_issued, codes_issued, logout,
        userinfo, evil_jwks, unknown, fault:<name>."""
        return self.counters().get(name, 0)

    def clear_log(self):
        return self.control("POST", "/log/clear", {})

    def revoke(self, username=None):
        return self.control("POST", "/revoke",
                            {"username": username} if username else {})

    def release(self):
        """Let the revocations held by revocation_hold answer."""
        return self.control("POST", "/release", {})

    def reset(self):
        self.info = self.control("POST", "/reset", {})
        return self.info

    # -- direct OP calls ----------------------------------------------
    def discovery(self):
        return self.http.get(self.discovery_url, timeout=10).json()

    def jwks(self):
        return self.http.get(self.endpoint("jwks"), timeout=10).json()


# -- flows -------------------------------------------------------------
def pkce_pair():
    verifier = secrets.token_urlsafe(32)  # 43 characters
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Flow:
    """One authorization request: what a relying party keeps server-side."""

    def __init__(self, op, scope=DEFAULT_SCOPE, redirect_uri=None,
                 response_mode=None, client_id=None, **extra):
        self.op = op
        self.state = secrets.token_urlsafe(16)
        self.nonce = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
        self.verifier, self.challenge = pkce_pair()
        self.redirect_uri = redirect_uri or op.redirect_uri
        self.client_id = client_id or op.client_id
        self.scope = scope
        params = {
            "client_id": self.client_id, "response_type": "code",
            "redirect_uri": self.redirect_uri, "scope": scope,
            "state": self.state, "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        if response_mode:
            params["response_mode"] = response_mode
        params.update({k: v for k, v in extra.items() if v is not None})
        self.params = params
        self.url = op.endpoint("authorize") + "?" + urlencode(params)


def start_flow(op, **kw):
    return Flow(op, **kw)


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"),
                               "method": (a.get("method") or "GET").upper(),
                               "fields": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""


def parse_forms(text):
    p = _FormParser()
    p.feed(text)
    return p.forms


def _with_param(url, name, value):
    parts = urlsplit(url)
    q = parse_qsl(parts.query, keep_blank_values=True)
    q = [(k, v) for k, v in q if k != name] + [(name, value)]
    return urlunsplit(parts._replace(query=urlencode(q)))


def read_auth_response(resp):
    """Turn the OP's answer to /authorize into a dict: redirect_uri plus the
    code/state/iss/error parameters, from a 302 (query mode) or an
    auto-submitting form (form_post). Raises OPError otherwise."""
    if resp.status_code in (302, 303):
        loc = resp.headers["Location"]
        parts = urlsplit(loc)
        out = dict(parse_qsl(parts.query, keep_blank_values=True))
        out["redirect_uri"] = urlunsplit(parts._replace(query=""))
        out["location"] = loc
        out["response_mode"] = "query"
        return out
    if resp.status_code == 200:
        forms = parse_forms(resp.text)
        if forms and ("code" in forms[0]["fields"]
                      or "error" in forms[0]["fields"]):
            out = dict(forms[0]["fields"])
            out["redirect_uri"] = forms[0]["action"]
            out["response_mode"] = "form_post"
            return out
    raise OPError("unexpected authorize answer %s: %s"
                  % (resp.status_code, resp.text[:500]))


def sign_in(url, username=None, session=None, timeout=10):
    """Follow an authorize URL (from Flow.url or a gateway's 302) as
    username in a single GET (login_as=); with username None the OP's
    default user / SSO cookie decides. Returns read_auth_response()."""
    http = session or requests.Session()
    if username:
        url = _with_param(url, "login_as", username)
    resp = http.get(url, allow_redirects=False, timeout=timeout)
    return read_auth_response(resp)


def sign_in_with_form(url, username, password="any", session=None,
                      display_name=None, timeout=10):
    """Browser-like: GET the sign-in (or Create account) form, POST it.
    Returns (form page response, read_auth_response() dict)."""
    http = session or requests.Session()
    page = http.get(url, allow_redirects=False, timeout=timeout)
    forms = parse_forms(page.text)
    if page.status_code != 200 or not forms:
        raise OPError("no sign-in form: %s %s" % (page.status_code,
                                                  page.text[:300]))
    form = forms[0]
    fields = dict(form["fields"], username=username, password=password)
    if display_name is not None:
        fields["display_name"] = display_name
    action = form["action"]
    if action.startswith("/"):
        parts = urlsplit(url)
        action = "%s://%s%s" % (parts.scheme, parts.netloc, action)
    resp = http.post(action, data=fields, allow_redirects=False,
                     timeout=timeout)
    return page, read_auth_response(resp)


def _client_auth(op, data, auth, client_id, client_secret):
    cid = client_id or op.client_id
    secret = client_secret if client_secret is not None else op.client_secret
    if auth == "basic":
        from urllib.parse import quote_plus
        raw = "%s:%s" % (quote_plus(cid), quote_plus(secret))
        return data, {"Authorization": "Basic " +
                      base64.b64encode(raw.encode()).decode()}
    data = dict(data, client_id=cid, client_secret=secret)
    return data, {}


def redeem_code(op, code, verifier, redirect_uri=None, auth="post",
                client_id=None, client_secret=None, extra=None, timeout=10):
    """POST grant_type=authorization_code; returns the requests.Response."""
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": redirect_uri or op.redirect_uri,
            "code_verifier": verifier}
    data.update(extra or {})
    data, headers = _client_auth(op, data, auth, client_id, client_secret)
    return requests.post(op.endpoint("token"), data=data, headers=headers,
                         timeout=timeout)


def refresh(op, refresh_token, scope=None, auth="post", client_id=None,
            client_secret=None, timeout=10):
    """POST grant_type=refresh_token; returns the requests.Response."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope:
        data["scope"] = scope
    data, headers = _client_auth(op, data, auth, client_id, client_secret)
    return requests.post(op.endpoint("token"), data=data, headers=headers,
                         timeout=timeout)


def full_sign_in(op, username, **flow_kw):
    """Authorize as username and redeem the code; returns (flow, tokens)."""
    flow = Flow(op, **flow_kw)
    answer = sign_in(flow.url, username)
    if "code" not in answer:
        raise OPError("authorize failed: %r" % (answer,))
    r = redeem_code(op, answer["code"], flow.verifier, flow.redirect_uri)
    if r.status_code != 200:
        raise OPError("token failed: %s %s" % (r.status_code, r.text))
    return flow, r.json()


# -- JWT ---------------------------------------------------------------
def _b64u_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_jwt(token):
    """(header, payload) without any verification."""
    head, body = token.split(".")[:2]
    return json.loads(_b64u_decode(head)), json.loads(_b64u_decode(body))


def verify_jwt(token, jwks, issuer=None, audience=None, nonce=None,
               leeway=120, now=None):
    """Verify an RS256 JWT against a JWKS dict; returns the claims or raises
    ValueError. A reference check for tests, not for production use."""
    head, body, sig = token.split(".")
    header, claims = decode_jwt(token)
    if header.get("alg") != "RS256":
        raise ValueError("alg %r" % header.get("alg"))
    if "jwk" in header or "jku" in header:
        raise ValueError("embedded key in header")
    keys = [k for k in jwks.get("keys", []) if k.get("kid") == header.get(
        "kid")]
    if not keys:
        raise ValueError("unknown kid %r" % header.get("kid"))
    k = keys[0]
    pub = rsa.RSAPublicNumbers(
        int.from_bytes(_b64u_decode(k["e"]), "big"),
        int.from_bytes(_b64u_decode(k["n"]), "big")).public_key()
    try:
        pub.verify(_b64u_decode(sig), (head + "." + body).encode(),
                   padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        raise ValueError("bad signature")
    now = time.time() if now is None else now
    if claims.get("exp", 0) + leeway < now:
        raise ValueError("expired")
    if claims.get("nbf", 0) - leeway > now:
        raise ValueError("not yet valid")
    if issuer is not None and claims.get("iss") != issuer:
        raise ValueError("iss %r" % claims.get("iss"))
    if audience is not None:
        aud = claims.get("aud")
        if (aud if isinstance(aud, list) else [aud]) != [audience]:
            raise ValueError("aud %r" % aud)
    if nonce is not None and claims.get("nonce") != nonce:
        raise ValueError("nonce")
    return claims
