# SPDX-License-Identifier: ISC
"""The demo OpenID Provider (examples/demo-op, panva's oidc-provider dressed
as an Entra External ID tenant) and its Microsoft Graph stand-in, driven
end to end without the gateway: discovery through the Entra-style
authority, the interactive sign-in and sign-up forms, authorization code
with PKCE, the token exchange with client_secret_post and
client_secret_basic, a rotating refresh, Graph /me with the access token,
and RP-initiated logout.  Skips only when node_modules cannot be
installed (no node/npm, or no registry)."""
import base64
import hashlib
import html.parser
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import pytest
import requests

from conftest import Proc, free_port, wait_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OPDIR = os.path.join(ROOT, "examples", "demo-op")
TENANT = "gatehousedemo"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "demo-secret~" + "x" * 20
GRAPH = "https://graph.microsoft.com"


def ensure_node_modules():
    if os.path.isdir(os.path.join(OPDIR, "node_modules", "oidc-provider")):
        return
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        pytest.skip("node/npm not installed: cannot run the demo OP")
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=OPDIR,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=300)
    if r.returncode != 0:
        pytest.skip("npm ci failed in examples/demo-op:\n" +
                    r.stdout.decode("utf-8", "replace")[-2000:])


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt_parts(tok):
    h, p, _ = tok.split(".")
    return b64url_json(h), b64url_json(p)


class Forms(html.parser.HTMLParser):
    """Every <form>: action, method and its <input> name/value pairs."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""),
                               "method": a.get("method", "get").lower(),
                               "id": a.get("id"), "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value", "")


def forms_of(text):
    p = Forms()
    p.feed(text)
    return p.forms


class DemoOP:
    def __init__(self, tmp, redirect_uri, post_logout, access_ttl=None,
                 extra_args=()):
        self.tmp = tmp
        self.redirect_uri = redirect_uri
        self.port = free_port()
        pf = os.path.join(tmp, "op.port")
        argv = ["node", os.path.join(OPDIR, "server.js"),
                "--port", str(self.port), "--port-file", pf,
                "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                "--redirect-uri", redirect_uri,
                "--post-logout-redirect-uri", post_logout]
        if access_ttl:
            argv += ["--access-token-ttl", str(access_ttl)]
        argv += list(extra_args)
        self.proc = Proc(argv, os.path.join(tmp, "op.log"))
        try:
            assert int(wait_file(pf, 15)) == self.port
        except Exception:
            self.proc.stop()
            raise AssertionError("demo OP did not start:\n" + self.proc.log())
        self.origin = "http://127.0.0.1:%d" % self.port
        self.authority = self.origin + "/" + TENANT + ".onmicrosoft.com"
        self.disco = requests.get(
            self.authority + "/v2.0/.well-known/openid-configuration",
            timeout=5).json()

        gpf = os.path.join(tmp, "graph.port")
        self.graph = Proc(["node", os.path.join(OPDIR, "graph.js"),
                           "--port", "0", "--port-file", gpf,
                           "--authority", self.authority],
                          os.path.join(tmp, "graph.log"))
        try:
            self.graph_url = "http://127.0.0.1:%s/v1.0" % wait_file(gpf, 15)
        except Exception:
            self.stop()
            raise

    def stop(self):
        rcs = [self.proc.stop()]
        if hasattr(self, "graph"):
            rcs.append(self.graph.stop())
        return rcs

    def authorize(self, s, scope="openid profile offline_access User.Read",
                  extra=None):
        """Start a code flow; return (response after redirects stop, state,
        nonce, verifier)."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        q = {"client_id": CLIENT_ID, "response_type": "code",
             "redirect_uri": self.redirect_uri, "scope": scope,
             "state": state, "nonce": nonce, "code_challenge": challenge,
             "code_challenge_method": "S256", "response_mode": "query"}
        q.update(extra or {})
        r = self.follow(s, s.get(self.disco["authorization_endpoint"],
                                 params=q, allow_redirects=False, timeout=5))
        return r, state, nonce, verifier

    def follow(self, s, r):
        """Follow redirects inside the OP; stop at the client's redirect
        URI (nobody listens there)."""
        for _ in range(10):
            if r.status_code not in (302, 303):
                return r
            loc = urllib.parse.urljoin(r.url, r.headers["Location"])
            if not loc.startswith(self.origin):
                r.location = loc
                return r
            r = s.get(loc, allow_redirects=False, timeout=5)
        raise AssertionError("redirect loop")

    def submit(self, s, page, form_index, fields):
        f = forms_of(page.text)[form_index]
        data = dict(f["inputs"])
        data.update(fields)
        action = urllib.parse.urljoin(page.url, f["action"])
        return self.follow(s, s.post(action, data=data,
                                     allow_redirects=False, timeout=5))

    def code_from(self, r, state):
        assert r.status_code in (302, 303), (r.status_code, r.text[:500])
        assert r.location.startswith(self.redirect_uri), r.location
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.location).query))
        assert q.get("state") == state
        assert q.get("iss") == self.disco["issuer"]
        assert "code" in q, q
        return q["code"]

    def token(self, data, basic=False):
        auth = None
        data = dict(data)
        if basic:
            auth = (CLIENT_ID, CLIENT_SECRET)
        else:
            data.update(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        return requests.post(self.disco["token_endpoint"], data=data,
                             auth=auth, timeout=5)

    def me(self, token):
        h = {"Authorization": "Bearer " + token} if token is not None else {}
        return requests.get(self.graph_url + "/me", headers=h, timeout=5)


@pytest.fixture
def op():
    ensure_node_modules()
    if not shutil.which("node"):
        pytest.skip("node not installed")
    tmp = tempfile.mkdtemp(prefix="gh-op-")
    o = DemoOP(tmp, "http://127.0.0.1:9/.auth/callback", "http://127.0.0.1:9/")
    yield o
    rcs = o.stop()
    assert rcs == [0, 0], (rcs, o.proc.log()[-2000:], o.graph.log()[-2000:])
    shutil.rmtree(tmp, ignore_errors=True)


def sign_in(op, s, username="alice.smith", password="pw", **kw):
    r, state, nonce, verifier = op.authorize(s, **kw)
    assert r.status_code == 200 and 'id="signin"' in r.text, r.text[:500]
    r = op.submit(s, r, 0, {"username": username, "password": password})
    return op.code_from(r, state), nonce, verifier


def test_discovery_entra_shape(op):
    d = op.disco
    tid = "a5e1ad05-f9e6-4cb4-a356-cec8b2267762"
    # The issuer is the GUID form, not the authority (entra.md 1.4).
    assert d["issuer"] == "%s/%s/v2.0" % (op.origin, tid)
    assert d["issuer"] != op.authority
    assert d["authorization_endpoint"] == "%s/%s/oauth2/v2.0/authorize" % (op.origin, tid)
    assert d["token_endpoint"].endswith("/%s/oauth2/v2.0/token" % tid)
    assert d["end_session_endpoint"].endswith("/%s/oauth2/v2.0/logout" % tid)
    assert d["jwks_uri"].endswith("/%s/discovery/v2.0/keys" % tid)
    assert d["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"client_secret_post", "client_secret_basic"} <= set(
        d["token_endpoint_auth_methods_supported"])
    assert "create" in d["prompt_values_supported"]
    # Same document under the tenant id; none without /v2.0, none for an
    # unknown tenant.
    r = requests.get(op.origin + "/" + tid + "/v2.0/.well-known/openid-configuration", timeout=5)
    assert r.status_code == 200 and r.json()["issuer"] == d["issuer"]
    assert requests.get(op.origin + "/" + tid + "/.well-known/openid-configuration",
                        timeout=5).status_code == 404
    assert requests.get(op.origin + "/other.onmicrosoft.com/v2.0/.well-known/openid-configuration",
                        timeout=5).status_code == 404
    keys = requests.get(d["jwks_uri"], timeout=5).json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and "d" not in keys[0]


def test_code_flow_pkce_refresh_graph(op):
    s = requests.Session()
    code, nonce, verifier = sign_in(op, s, "alice.smith", "pw")

    # A wrong verifier is refused (and does not use the code up).
    bad = op.token({"grant_type": "authorization_code", "code": code,
                    "redirect_uri": op.redirect_uri,
                    "code_verifier": secrets.token_urlsafe(48)})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"

    r = op.token({"grant_type": "authorization_code", "code": code,
                  "redirect_uri": op.redirect_uri, "code_verifier": verifier})
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"].lower() == "bearer"
    assert tok["expires_in"] > 0 and tok["refresh_token"]
    assert "User.Read" in tok["scope"].split()

    hdr, idt = jwt_parts(tok["id_token"])
    assert hdr["alg"] == "RS256" and hdr["kid"]
    assert idt["iss"] == op.disco["issuer"] and idt["aud"] == CLIENT_ID
    assert idt["nonce"] == nonce
    assert idt["tid"] == "a5e1ad05-f9e6-4cb4-a356-cec8b2267762"
    assert idt["ver"] == "2.0"
    assert idt["name"] == "Alice Smith"
    assert idt["preferred_username"] == idt["email"] == \
        "alice.smith@%s.onmicrosoft.com" % TENANT
    assert len(idt["oid"]) == 36 and idt["oid"] != idt["sub"]

    ahdr, at = jwt_parts(tok["access_token"])
    assert ahdr["alg"] == "RS256"
    assert at["aud"] == GRAPH and at["scp"] == "User.Read"
    assert at["oid"] == idt["oid"] and at["iss"] == op.disco["issuer"]

    g = op.me(tok["access_token"])
    assert g.status_code == 200, g.text
    me = g.json()
    assert me["@odata.context"].startswith("https://graph.microsoft.com/v1.0/$metadata#users")
    assert me["id"] == idt["oid"] and me["displayName"] == "Alice Smith"
    assert me["givenName"] == "Alice" and me["surname"] == "Smith"
    assert me["mail"] == me["userPrincipalName"] == idt["email"]

    # Refresh with client_secret_basic: new access, ID and refresh tokens;
    # the old refresh token is rotated out.
    r2 = op.token({"grant_type": "refresh_token",
                   "refresh_token": tok["refresh_token"]}, basic=True)
    assert r2.status_code == 200, r2.text
    tok2 = r2.json()
    assert tok2["refresh_token"] != tok["refresh_token"]
    assert tok2["access_token"] != tok["access_token"]
    assert jwt_parts(tok2["id_token"])[1]["oid"] == idt["oid"]
    assert op.me(tok2["access_token"]).json()["id"] == idt["oid"]
    # The new refresh token works in its turn (client_secret_post).
    r3 = op.token({"grant_type": "refresh_token",
                   "refresh_token": tok2["refresh_token"]})
    assert r3.status_code == 200, r3.text
    tok3 = r3.json()

    # A wrong client secret is refused.
    r4 = requests.post(op.disco["token_endpoint"], timeout=5, data={
        "grant_type": "refresh_token", "refresh_token": tok3["refresh_token"],
        "client_id": CLIENT_ID, "client_secret": "nope"})
    assert r4.status_code == 401 and r4.json()["error"] == "invalid_client"

    # The code is single use.
    again = op.token({"grant_type": "authorization_code", "code": code,
                      "redirect_uri": op.redirect_uri, "code_verifier": verifier})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_rotated_refresh_token_reuse_revokes_grant(op):
    """oidc-provider's reuse detection: presenting a rotated-out refresh
    token fails and revokes the grant, so the newest one fails too.  A
    gateway must never send two refreshes for one session at once."""
    code, _, verifier = sign_in(op, requests.Session())
    tok = op.token({"grant_type": "authorization_code", "code": code,
                    "redirect_uri": op.redirect_uri,
                    "code_verifier": verifier}).json()
    tok2 = op.token({"grant_type": "refresh_token",
                     "refresh_token": tok["refresh_token"]}).json()
    old = op.token({"grant_type": "refresh_token",
                    "refresh_token": tok["refresh_token"]})
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"
    new = op.token({"grant_type": "refresh_token",
                    "refresh_token": tok2["refresh_token"]})
    assert new.status_code == 400 and new.json()["error"] == "invalid_grant"


def test_sso_second_login_skips_form(op):
    s = requests.Session()
    # Entra's extra parameters are accepted; login_hint fills the form.
    r, state, _, _ = op.authorize(s, extra={
        "login_hint": "bob@example.com", "domain_hint": "example.com",
        "client_info": "1"})
    assert r.status_code == 200
    assert forms_of(r.text)[0]["inputs"]["username"] == "bob@example.com"
    op.code_from(op.submit(s, r, 0, {"password": "pw"}), state)
    r, state, _, _ = op.authorize(s)
    code = op.code_from(r, state)  # no form this time: the OP session holds
    assert code


def test_pkce_required_and_bad_password(op):
    s = requests.Session()
    q = {"client_id": CLIENT_ID, "response_type": "code", "scope": "openid",
         "redirect_uri": op.redirect_uri, "state": "st"}
    r = s.get(op.disco["authorization_endpoint"], params=q,
              allow_redirects=False, timeout=5)
    assert r.status_code in (302, 303)
    loc = r.headers["Location"]
    assert loc.startswith(op.redirect_uri) and "error=invalid_request" in loc
    assert "PKCE" in urllib.parse.unquote_plus(loc)

    r, state, _, _ = op.authorize(s)
    r = op.submit(s, r, 0, {"username": "carol", "password": "wrong"})
    assert r.status_code == 200 and "Your password is incorrect." in r.text
    r = op.submit(s, r, 0, {"username": "carol", "password": "right"})
    assert op.code_from(r, state)


def test_cancel_gives_access_denied(op):
    s = requests.Session()
    r, state, _, _ = op.authorize(s)
    r = op.submit(s, r, 0, {"cancel": "1", "username": "", "password": ""})
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.location).query))
    assert q["error"] == "access_denied" and q["state"] == state


def test_prompt_create_shows_sign_up(op):
    s = requests.Session()
    r, state, _, verifier = op.authorize(s, extra={"prompt": "create"})
    assert r.status_code == 200 and 'id="signup"' in r.text, r.text[:500]
    r = op.submit(s, r, 0, {"email": "dora@example.com",
                            "displayName": "Dora Explorer", "password": "pw"})
    code = op.code_from(r, state)
    tok = op.token({"grant_type": "authorization_code", "code": code,
                    "redirect_uri": op.redirect_uri,
                    "code_verifier": verifier}).json()
    idt = jwt_parts(tok["id_token"])[1]
    assert idt["name"] == "Dora Explorer" and idt["email"] == "dora@example.com"


def test_graph_rejects_bad_tokens(op):
    r = op.me(None)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    r = op.me("not-a-jwt")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    # An ID token is signed by the same key but is not for Graph.
    s = requests.Session()
    code, _, verifier = sign_in(op, s)
    tok = op.token({"grant_type": "authorization_code", "code": code,
                    "redirect_uri": op.redirect_uri,
                    "code_verifier": verifier}).json()
    r = op.me(tok["id_token"])
    assert r.status_code == 401
    # A token whose signature was tampered with.
    h, p, sig = tok["access_token"].split(".")
    forged = h + "." + p + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert op.me(forged).status_code == 401
    assert op.me(tok["access_token"]).status_code == 200
    # Without User.Read the token has no Graph audience: Graph says 401.
    code, _, verifier = sign_in(op, requests.Session(),
                                scope="openid profile offline_access")
    t2 = op.token({"grant_type": "authorization_code", "code": code,
                   "redirect_uri": op.redirect_uri,
                   "code_verifier": verifier}).json()
    assert op.me(t2["access_token"]).status_code == 401


def test_expired_access_token(tmp_path):
    ensure_node_modules()
    o = DemoOP(str(tmp_path), "http://127.0.0.1:9/cb", "http://127.0.0.1:9/",
               access_ttl=1)
    try:
        code, _, verifier = sign_in(o, requests.Session())
        tok = o.token({"grant_type": "authorization_code", "code": code,
                       "redirect_uri": o.redirect_uri,
                       "code_verifier": verifier}).json()
        assert tok["expires_in"] <= 1
        time.sleep(7)  # past exp plus Graph's 5 s clock tolerance
        r = o.me(tok["access_token"])
        assert r.status_code == 401
        assert r.json()["error"]["message"] == \
            "Access token has expired or is not yet valid."
    finally:
        o.stop()


def test_rp_initiated_logout(op):
    s = requests.Session()
    code, _, verifier = sign_in(op, s)
    tok = op.token({"grant_type": "authorization_code", "code": code,
                    "redirect_uri": op.redirect_uri,
                    "code_verifier": verifier}).json()
    r = s.get(op.disco["end_session_endpoint"], timeout=5, params={
        "id_token_hint": tok["id_token"],
        "post_logout_redirect_uri": "http://127.0.0.1:9/",
        "state": "bye"}, allow_redirects=False)
    assert r.status_code == 200
    # The page posts itself (JavaScript); post it as a browser would.
    f = [f for f in forms_of(r.text) if f["id"] == "op.logoutForm"][0]
    assert f["inputs"].get("logout") == "yes"
    r = op.submit(s, r, 0, {})
    assert r.location.startswith("http://127.0.0.1:9/"), r.location
    assert "state=bye" in r.location
    # Signed out at the OP: the next authorization shows the form again.
    r, _, _, _ = op.authorize(s)
    assert r.status_code == 200 and 'id="signin"' in r.text
    # An unregistered post_logout_redirect_uri is refused.
    r = s.get(op.disco["end_session_endpoint"], timeout=5, params={
        "id_token_hint": tok["id_token"],
        "post_logout_redirect_uri": "http://evil.example/"},
        allow_redirects=False)
    assert r.status_code == 400


def test_upstream_app_calls_graph_with_forwarded_token(op):
    """examples/upstream-app against the Graph stand-in: identity headers
    in, /call-api with the forwarded token, never the token on a page."""
    pf = os.path.join(op.tmp, "app.port")
    env = dict(os.environ, GRAPH_ENDPOINT=op.graph_url)
    app = Proc(["/usr/bin/python3", os.path.join(ROOT, "examples", "upstream-app", "app.py"),
                "--port", "0", "--port-file", pf], os.path.join(op.tmp, "app.log"),
               env=env)
    try:
        base = "http://127.0.0.1:%s" % wait_file(pf)
        code, _, verifier = sign_in(op, requests.Session(), "erin.example")
        tok = op.token({"grant_type": "authorization_code", "code": code,
                        "redirect_uri": op.redirect_uri,
                        "code_verifier": verifier}).json()
        at = tok["access_token"]
        idt = jwt_parts(tok["id_token"])[1]
        principal = base64.b64encode(json.dumps({
            "auth_typ": "aad", "name_typ": "name", "role_typ": "roles",
            "claims": [{"typ": "name", "val": "Erin <Example>"},
                       {"typ": "oid", "val": idt["oid"]}]}).encode()).decode()
        ident = {"X-MS-CLIENT-PRINCIPAL-NAME": "erin@example",
                 "X-MS-CLIENT-PRINCIPAL": principal,
                 "X-MS-TOKEN-AAD-ACCESS-TOKEN": at}

        r = requests.get(base + "/", headers=ident, timeout=5)
        assert r.status_code == 200
        assert "Hello, erin@example" in r.text
        assert "Erin &lt;Example&gt;" in r.text and idt["oid"] in r.text
        assert 'href="/.auth/logout"' in r.text and 'href="/call-api"' in r.text
        assert at not in r.text

        r = requests.get(base + "/call-api", headers=ident, timeout=35)
        assert r.status_code == 200
        assert "Erin Example" in r.text and idt["oid"] in r.text
        assert at not in r.text

        bad = dict(ident, **{"X-MS-TOKEN-AAD-ACCESS-TOKEN": at[:-4] + "AAAA"})
        r = requests.get(base + "/call-api", headers=bad, timeout=35)
        assert "401" in r.text and "InvalidAuthenticationToken" in r.text

        r = requests.get(base + "/call-api",
                         headers={"X-Forwarded-User": "erin"}, timeout=5)
        assert "forward_access_token" in r.text

        r = requests.get(base + "/", timeout=5)
        assert "Not signed in" in r.text
        assert "/.auth/login?post_login_redirect_uri=/" in r.text

        h = requests.get(base + "/headers.json", headers=ident, timeout=5).json()
        assert h["X-MS-TOKEN-AAD-ACCESS-TOKEN"] == at

        for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            r = requests.request(m, base + "/echo/x?a=1", data=b"12345", timeout=5)
            assert r.status_code == 200, m
            if m != "HEAD":
                e = r.json()
                assert (e["method"], e["path"], e["query"], e["body_size"]) == \
                    (m, "/echo/x", "a=1", 5)
        assert requests.get(base + "/healthz", timeout=5).status_code == 200
    finally:
        assert app.stop() == 0, app.log()
