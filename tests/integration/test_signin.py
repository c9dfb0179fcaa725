# SPDX-License-Identifier: ISC
"""Sign in, sign up and sign out through the real binary, against the
tests' own OpenID Provider (tests/op) and a real upstream."""
import base64
import json
import os
import re
import signal
import stat
import threading
import time
from urllib.parse import urljoin

import pytest
import requests

from conftest import Gatehouse, free_port
from op_client import OP, verify_jwt
from signin import (authorize, begin_login, complete, echo_headers,
                    to_sign_in,
                    principal, query, sign_in, start_gateway)


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def session_cookie(s):
    return s.cookies.get("gatehouse", domain="127.0.0.1") or \
        s.cookies.get("gatehouse")


def test_signin_query_mode_end_to_end(op, tmp, upstream, session_store):
    g = start_gateway(op, tmp, upstream, store=session_store)
    s, r = sign_in(g, "alice@contoso.com", "/private/page?x=1")
    assert r.headers["Location"] == "/private/page?x=1"
    set_cookie = r.headers["Set-Cookie"]
    assert re.search(r"gatehouse=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; "
                     r"Max-Age=\d+; SameSite=Lax", set_cookie), set_cookie
    assert "Secure" not in set_cookie.split("gatehouse=")[1].split(",")[0]
    r = s.get(g.url + "/private/page?x=1", timeout=5)
    assert r.status_code == 200
    h = echo_headers(r)
    assert h["x-forwarded-user"] == ["alice@contoso.com"]
    assert h["x-forwarded-email"] == ["alice@contoso.com"]
    assert h["x-ms-client-principal-name"] == ["alice@contoso.com"]
    assert h["x-ms-client-principal-idp"] == ["aad"]
    p = principal(h)
    assert p["auth_typ"] == "aad"
    claims = {c["typ"]: c["val"] for c in p["claims"]}
    assert h["x-ms-client-principal-id"] == [claims["oid"]]
    assert claims["tid"] and claims["preferred_username"] == "alice@contoso.com"
    # The gateway's own cookies never reach the app.
    assert "gatehouse" not in ";".join(h.get("cookie", []))
    # No token upstream unless forward_access_token is on.
    assert "x-ms-token-aad-access-token" not in h
    assert g.loggrep(r'callback id=\w+ result=ok user="alice@contoso.com"')
    # The authorize request was a proper PKCE code flow.
    a = op.last("authorize")["query"]
    assert a["response_type"] == "code" and a["code_challenge_method"] == "S256"
    assert set(a["scope"].split()) == {"openid", "profile", "offline_access",
                                       "User.Read"}
    assert len(a["state"]) >= 43 and len(a["nonce"]) >= 43
    me = s.get(g.url + "/.auth/me", timeout=5).json()
    assert me["user_id"] == "alice@contoso.com"
    assert me["user_claims"]["oid"] == claims["oid"]
    assert "access_token" not in me
    # Nothing sensitive in the log.
    log = g.log()
    assert op.client_secret not in log
    assert session_cookie(s) not in log


def test_signin_form_post(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["response_mode = form_post"])
    s = requests.Session()
    url = begin_login(g, s, "/private")
    # A browser sends a Secure cookie to http://127.0.0.1 (a potentially
    # trustworthy origin); python's cookie jar does not, so say so.
    for c in s.cookies:
        c.secure = False
    auth = authorize(s, url, "bob@contoso.com")
    assert auth["response_mode"] == "form_post"
    r = complete(g, s, auth)
    assert r.status_code == 302 and r.headers["Location"] == "/private"
    # The flow cookie had to cross a cross-site POST: SameSite=None.
    assert op.last("authorize")["query"]["response_mode"] == "form_post"
    r = s.get(g.url + "/private", timeout=5)
    assert echo_headers(r)["x-forwarded-user"] == ["bob@contoso.com"]


def test_login_sets_flow_cookie_samesite_none_for_form_post(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["response_mode = form_post"])
    r = requests.get(g.url + "/.auth/login", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert "SameSite=None; Secure" in r.headers["Set-Cookie"]


def test_signup_passes_prompt_create_and_hints(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    url = begin_login(g, s, login_url=g.url + "/.auth/login?prompt=create"
                      "&login_hint=new%40contoso.com&domain_hint=contoso.com"
                      "&post_login_redirect_uri=/welcome")
    q = query(url)
    assert q["prompt"] == "create"
    assert q["login_hint"] == "new@contoso.com"
    assert q["domain_hint"] == "contoso.com"
    r = complete(g, s, authorize(s, url, "new@contoso.com"))
    assert r.headers["Location"] == "/welcome"
    assert op.last("authorize")["query"]["prompt"] == "create"
    assert g.loggrep(r"signup id=\w+")


def test_parallel_signins_in_tabs_all_complete(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    urls = [begin_login(g, s, "/tab%d" % i) for i in range(3)]
    auths = [authorize(requests.Session(), u, "carol@contoso.com")
             for u in urls]
    for i in (2, 0, 1):  # complete out of order
        r = complete(g, s, auths[i])
        assert r.status_code == 302, (i, r.text[:300])
        assert r.headers["Location"] == "/tab%d" % i


def test_pending_logins_are_capped(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["max_pending_logins = 3"])
    s = requests.Session()
    urls = []
    for i in range(5):
        urls.append(begin_login(g, s, "/p%d" % i))
        time.sleep(1.05)  # distinct creation seconds: the oldest is known
    flows = [c for c in s.cookies if c.name.startswith("gatehouse_flow_")]
    assert len(flows) == 3
    # The two oldest were dropped: their callbacks no longer complete.
    r = complete(g, s, authorize(requests.Session(), urls[0], "dave@x.com"))
    assert r.status_code == 302 and "/.auth/login" in r.headers["Location"]
    r = complete(g, s, authorize(requests.Session(), urls[4], "dave@x.com"))
    assert r.headers["Location"] == "/p4"


def test_signout_ends_session_here_and_at_provider(op, tmp, upstream, session_store):
    g = start_gateway(op, tmp, upstream, store=session_store)
    s, _ = sign_in(g, "erin@contoso.com")
    old = session_cookie(s)
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert loc.startswith(op.endpoint("logout"))
    q = query(loc)
    assert q["client_id"] == op.client_id
    assert q["post_logout_redirect_uri"] == g.url + "/.auth/logout/complete"
    claims = verify_jwt(q["id_token_hint"], op.jwks(), issuer=op.issuer,
                        audience=op.client_id)
    assert claims["preferred_username"] == "erin@contoso.com"
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    r = requests.get(loc, allow_redirects=False, timeout=5)
    assert r.status_code == 302 and \
        r.headers["Location"] == g.url + "/.auth/logout/complete"
    assert op.last("logout")["query"]["id_token_hint"] == q["id_token_hint"]
    # A copy of the old cookie is refused now.
    c = requests.Session()
    c.cookies.set("gatehouse", old)
    r = c.get(g.url + "/private", allow_redirects=False, timeout=5)
    assert to_sign_in(r), (r.status_code, r.headers)
    r = c.get(g.url + "/.auth/me", timeout=5)
    assert r.status_code == 401
    assert g.loggrep(r'logout id=\w+ user="erin@contoso.com" provider=yes')


def test_signout_without_end_session_endpoint(op, tmp, upstream, session_store):
    op.fault("discovery_drop_fields", fields=["end_session_endpoint"],
             sticky=True)
    g = start_gateway(op, tmp, upstream, store=session_store)
    s, _ = sign_in(g, "frank@contoso.com")
    r = s.get(g.url + "/.auth/logout?post_logout_redirect_uri=/bye",
              allow_redirects=False, timeout=5)
    assert r.status_code == 302 and r.headers["Location"] == "/bye"
    r = s.get(g.url + "/.auth/logout?post_logout_redirect_uri=//evil.example",
              allow_redirects=False, timeout=5)
    assert r.headers["Location"] == "/"


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_session_survives_restart(op, tmp, upstream, how, session_store):
    port = free_port()
    g = start_gateway(op, tmp, upstream, port=port, store=session_store)
    s, _ = sign_in(g, "gina@contoso.com")
    g.stop(how)
    g2 = start_gateway(op, tmp, upstream, port=port, name="gw2",
                       store=session_store)
    try:
        r = s.get(g2.url + "/private", allow_redirects=False, timeout=5)
        assert r.status_code == 200
        assert echo_headers(r)["x-forwarded-user"] == ["gina@contoso.com"]
    finally:
        assert g2.stop() == 0


def test_key_file_created_private(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    st = os.stat(os.path.join(tmp, "session.key"))
    assert stat.S_IMODE(st.st_mode) == 0o600


def test_key_file_world_readable_refused(op, tmp, upstream):
    key = os.path.join(tmp, "session.key")
    with open(key, "w") as f:
        f.write("ab" * 32 + "\n")
    os.chmod(key, 0o644)
    from signin import gateway_lines
    from conftest import BIN
    import subprocess
    conf = os.path.join(tmp, "k.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\n" % free_port())
        f.write("\n".join(gateway_lines(op, tmp, 1234, upstream.url)) + "\n")
    p = subprocess.run([BIN, "-c", conf], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 1
    assert "chmod 600" in p.stderr and key in p.stderr


def test_unauthenticated_browser_and_api(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    r = requests.get(g.url + "/private/x?y=1", allow_redirects=False,
                     headers={"Accept": "text/html"}, timeout=5)
    # Straight to the provider (no hop through /.auth/login), and the
    # sign-in comes back to this very path.
    assert to_sign_in(r), (r.status_code, r.headers)
    s = requests.Session()
    s.cookies.update(r.cookies)
    back = complete(g, s, authorize(s, r.headers["Location"], "al@x.com"))
    assert back.status_code == 302 and \
        back.headers["Location"] == "/private/x?y=1"
    r = requests.get(g.url + "/private/x", allow_redirects=False,
                     headers={"Accept": "application/json"}, timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = requests.post(g.url + "/private/x", allow_redirects=False, timeout=5)
    assert r.status_code == 401
    r = requests.get(g.url + "/public/x", timeout=5)
    assert r.status_code == 200  # anonymous route still served
    assert upstream.stats()["requests"] == 2  # /public/x and this call


@pytest.mark.parametrize("target,expect", [
    ("/ok/path?q=1", "/ok/path?q=1"),
    ("//evil.example", "/"),
    ("/\\evil.example", "/"),
    ("https://evil.example/", "/"),
    ("https:evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("/%2F%2Fevil.example", "/"),
    ("/%252F%252Fevil.example", "/"),
    ("/%5Cevil.example", "/"),
    ("/%09/evil.example", "/"),
    ("/a%0d%0aSet-Cookie:x=1", "/"),
    ("/.auth/logout", "/"),
])
def test_post_login_redirect_only_local(op, tmp, upstream, target, expect):
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    r = s.get(g.url + "/.auth/login", params={"post_login_redirect_uri": target},
              allow_redirects=False, timeout=5)
    r = complete(g, s, authorize(s, r.headers["Location"], "hal@x.com"))
    assert r.status_code == 302
    assert r.headers["Location"] == expect


def test_forged_identity_headers_dropped_when_signed_in(op, tmp, upstream, session_store):
    g = start_gateway(op, tmp, upstream, store=session_store)
    s, _ = sign_in(g, "ivan@contoso.com")
    r = s.get(g.url + "/private", headers={
        "X-Forwarded-User": "admin", "x_forwarded_user": "admin",
        "X-MS-CLIENT-PRINCIPAL-NAME": "admin",
        "X-Ms-Client-Principal": "e30=",
        "X-MS-TOKEN-AAD-ACCESS-TOKEN": "forged"}, timeout=5)
    h = echo_headers(r)
    assert h["x-forwarded-user"] == ["ivan@contoso.com"]
    assert h["x-ms-client-principal-name"] == ["ivan@contoso.com"]
    assert "x_forwarded_user" not in h
    assert len(h["x-ms-client-principal"]) == 1
    assert principal(h)["auth_typ"] == "aad"
    assert "x-ms-token-aad-access-token" not in h


def test_forward_access_token_and_refresh_once_under_load(op, tmp, upstream, session_store):
    # Access tokens live 8 s; refresh_before (5m) is capped at half the
    # lifetime, so after 4.5 s the token is near expiry but still valid.
    op.config(expires_in=8)
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on",
                                          "forward_authorization = on"], store=session_store)
    s, _ = sign_in(g, "judy@contoso.com")
    first = s.get(g.url + "/private", timeout=5)
    assert op.counter("token_refresh") == 0
    time.sleep(4.5)
    tok1 = echo_headers(first)["x-ms-token-aad-access-token"][0]
    assert echo_headers(first)["authorization"] == ["Bearer " + tok1]
    claims = verify_jwt(tok1, op.jwks(), issuer=op.issuer)
    assert claims["aud"] == "00000003-0000-0000-c000-000000000000"
    assert "User.Read" in claims["scp"]
    cookies = s.cookies.get_dict()
    results = []

    def hit():
        r = requests.get(g.url + "/private", cookies=cookies, timeout=10)
        results.append(r.status_code)

    threads = [threading.Thread(target=hit) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 20
    assert g.loggrep(r"refresh result=ok", timeout=5)
    assert op.counter("token_refresh") == 1
    r = s.get(g.url + "/private", timeout=5)
    tok2 = echo_headers(r)["x-ms-token-aad-access-token"][0]
    assert tok2 != tok1
    verify_jwt(tok2, op.jwks(), issuer=op.issuer)
    assert op.client_secret not in g.log() and tok1 not in g.log()


def test_expired_access_token_waits_for_refresh(op, tmp, upstream, session_store):
    op.config(expires_in=2)
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on",
                                          "refresh_before = 1s"], store=session_store)
    s, _ = sign_in(g, "kim@contoso.com")
    time.sleep(3)
    r = s.get(g.url + "/private", timeout=10)
    assert r.status_code == 200
    h = echo_headers(r)
    claims = verify_jwt(h["x-ms-token-aad-access-token"][0], op.jwks(),
                        issuer=op.issuer)
    assert claims["exp"] > time.time()
    assert op.counter("token_refresh") == 1


def test_refused_refresh_ends_session(op, tmp, upstream, session_store):
    op.config(expires_in=2)
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on",
                                          "refresh_before = 1s"], store=session_store)
    s, _ = sign_in(g, "leo@contoso.com")
    op.fault("token_error", error="invalid_grant", grant="refresh_token")
    time.sleep(3)
    r = s.get(g.url + "/private", allow_redirects=False,
              headers={"Accept": "text/html"}, timeout=10)
    assert to_sign_in(r), (r.status_code, r.headers)
    r = s.get(g.url + "/private", allow_redirects=False,
              headers={"Accept": "application/json"}, timeout=10)
    assert r.status_code == 401
    assert g.loggrep(r"refresh result=ended")


def test_refresh_endpoint(op, tmp, upstream, session_store):
    g = start_gateway(op, tmp, upstream, store=session_store)
    s, _ = sign_in(g, "mia@contoso.com")
    r = s.post(g.url + "/.auth/refresh", timeout=10)
    assert r.status_code == 200 and "expires_on" in r.json()
    assert op.counter("token_refresh") == 1
    assert requests.post(g.url + "/.auth/refresh", timeout=5).status_code == 401


def test_session_lifetime_ends_the_session(op, tmp, upstream, session_store):
    g = start_gateway(op, tmp, upstream, ["session_lifetime = 2s"],
                      store=session_store)
    s, _ = sign_in(g, "nina@contoso.com")
    assert s.get(g.url + "/private", timeout=5).status_code == 200
    time.sleep(2.5)
    r = s.get(g.url + "/private", allow_redirects=False,
              headers={"Accept": "text/html"}, timeout=5)
    assert to_sign_in(r), (r.status_code, r.headers)
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401


def test_idle_session_ends(op, tmp, upstream, session_store):
    g = start_gateway(op, tmp, upstream, ["session_idle_timeout = 2s"],
                      store=session_store)
    s, _ = sign_in(g, "olga@contoso.com")
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 200
    # Last use is recorded to a quarter of the timeout (here 1 s), and a
    # session ends past the timeout plus that: 2 s + 1 s, and a second
    # for whole-second clocks.
    time.sleep(4)
    r = s.get(g.url + "/private", allow_redirects=False,
              headers={"Accept": "application/json"}, timeout=5)
    assert r.status_code == 401


def test_unknown_and_malformed_cookies_refused(op, tmp, upstream,
                                               session_store):
    g = start_gateway(op, tmp, upstream, ["workers = 1"],
                      store=session_store)
    s, _ = sign_in(g, "pam@contoso.com")  # a real session exists
    for value in ("A" * 43, "not-a-session-id"):
        r = requests.get(g.url + "/private", cookies={"gatehouse": value},
                         headers={"Accept": "text/html"},
                         allow_redirects=False, timeout=5)
        assert to_sign_in(r), (r.status_code, r.headers)
        r = requests.get(g.url + "/.auth/me", cookies={"gatehouse": value},
                         timeout=5)
        assert r.status_code == 401
    assert g.loggrep(r'session_cookie_rejected id=\w+ client=\S+ '
                     r'reason="unknown or ended session"')
    assert s.get(g.url + "/private", timeout=5).status_code == 200


ID_TOKEN_FAULTS = [
    ("id_token_bad_signature", {}, "signature"),
    ("id_token_wrong_iss", {}, "iss"),
    ("id_token_wrong_aud", {}, "aud"),
    ("id_token_expired", {}, "exp"),
    ("id_token_iat_future", {}, "iat"),
    ("id_token_missing_nonce", {}, "nonce"),
    ("id_token_wrong_nonce", {}, "nonce"),
    ("id_token_alg_none", {}, "alg"),
    ("id_token_hs256_pubkey", {}, "alg"),
    ("id_token_unknown_kid", {}, "kid"),
]


@pytest.mark.parametrize("fault,params,check", ID_TOKEN_FAULTS,
                         ids=[f[0] for f in ID_TOKEN_FAULTS])
def test_bad_id_tokens_refused(op, tmp, upstream, fault, params, check):
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    auth = authorize(s, begin_login(g, s, "/private"), "oscar@contoso.com")
    op.fault(fault, **params)
    r = complete(g, s, auth)
    assert r.status_code == 401, r.text[:300]
    assert "text/html" in r.headers["Content-Type"]
    assert "gatehouse=" not in r.headers.get("Set-Cookie", "")
    assert "could not be verified" in r.text
    m = g.loggrep(r"callback id=\w+ result=invalid_id_token reason=\"(.*)\"")
    assert m and check in m.group(1), m and m.group(1)
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401
    assert upstream.stats()["requests"] == 1  # only this stats call


def test_replayed_state_restarts_once_then_errors(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    url = begin_login(g, s, "/private")
    flow = {c.name: c.value for c in s.cookies
            if c.name.startswith("gatehouse_flow_")}
    auth = authorize(s, url, "pat@contoso.com")
    assert complete(g, s, auth).status_code == 302
    # The attacker (or a double submit) replays the callback with the flow
    # cookie: restart once...
    s2 = requests.Session()
    for k, v in flow.items():
        s2.cookies.set(k, v)
    r = complete(g, s2, auth)
    assert r.status_code == 302 and "/.auth/login" in r.headers["Location"]
    assert "gatehouse=" not in r.headers.get("Set-Cookie", "").replace(
        "gatehouse_retry", "")
    # ...and the second time an error page, never a loop.
    r = complete(g, s2, auth)
    assert r.status_code == 401 and "already used" in r.text
    assert g.loggrep(r"result=state_invalid reason=\"state already used\"")


def test_provider_error_shows_page_with_escaped_description(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s = requests.Session()
    url = begin_login(g, s, "/private")
    op.fault("authorize_error", error="access_denied",
             error_description="<script>alert(1)</script> cancelled")
    r = complete(g, s, authorize(s, url, "quinn@x.com"))
    assert r.status_code == 401
    assert "<script>" not in r.text
    assert "&lt;script&gt;" in r.text and "access_denied" in r.text
    assert "Try again" in r.text and "/.auth/login" in r.text


def test_provider_unreachable_at_start(tmp, upstream):
    port = free_port()
    dead = "http://127.0.0.1:%d/contoso.onmicrosoft.com" % free_port()
    g = Gatehouse(tmp, [
        "upstream = " + upstream.url, "authority = " + dead,
        "client_id = x", "client_secret = y",
        "redirect_uri = http://127.0.0.1:%d/.auth/callback" % port,
        "session_store = " + os.path.join(tmp, "s"),
        "session_key_file = " + os.path.join(tmp, "k"),
        "route /public/* allow anonymous", "route /* allow authenticated"],
        port=port)
    try:
        assert requests.get(g.url + "/public/a", timeout=5).status_code == 200
        r = requests.get(g.url + "/.auth/login", timeout=5)
        assert r.status_code == 503
        assert "identity provider is unreachable" in r.text
        assert g.loggrep(r"provider_error what=discovery")
    finally:
        assert g.stop() == 0
