# SPDX-License-Identifier: ISC
"""Logout driven by the provider: OpenID Connect Back-Channel Logout 1.0
(POST /.auth/backchannel-logout with a logout token the tests' own OP
signs) and Front-Channel Logout 1.0 (GET /.auth/frontchannel-logout).
Every case runs against LMDB and against a real redis-server, with two
workers; sessions are checked by fresh connections (any worker) after
the provider's request, and a refused request must end nothing."""
import json
import secrets
import time
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from op_client import OP
from redis_server import RedisServer
from signin import sign_in, start_gateway

JSON = {"Accept": "application/json"}
BCL = "/.auth/backchannel-logout"
FCL = "/.auth/frontchannel-logout"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def gateway(op, tmp, upstream, store, name="gw"):
    return start_gateway(op, tmp, upstream, ["workers = 2"], store=store,
                         name=name)


def session_for(op, g, user, sid):
    """Sign user in on g with the provider's session id `sid` in the ID
    token; returns the cookie jar."""
    op.user(user, sid=sid)
    s, _ = sign_in(g, user)
    return {"gatehouse": s.cookies.get("gatehouse")}


def alive(g, jar):
    """Whether the session answers, asked on new connections (so both
    workers are likely asked; every answer must agree)."""
    codes = set()
    for _ in range(4):
        r = requests.get(g.url + "/private", cookies=jar, headers=JSON,
                         timeout=5)
        codes.add(r.status_code)
    assert len(codes) == 1, codes
    assert codes <= {200, 401}, codes
    return codes == {200}


def logout_token(op, **kw):
    return op.control("POST", "/logout_token", kw)["logout_token"]


def post_token(g, token):
    return requests.post(g.url + BCL, data={"logout_token": token},
                         timeout=10)


def sub_of(op, user):
    return op.control("GET", "/users")[user]["sub"]


def refused(r, g=None):
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    assert body["error"] == "invalid_request"
    assert isinstance(body["error_description"], str)
    assert body["error_description"]


def test_backchannel_ends_by_sid(op, tmp, upstream, session_store):
    g = gateway(op, tmp, upstream, session_store)
    sid, other = secrets.token_hex(8), secrets.token_hex(8)
    a1 = session_for(op, g, "alice@contoso.com", sid)
    a2 = session_for(op, g, "alice@contoso.com", sid)
    a3 = session_for(op, g, "alice@contoso.com", other)
    b1 = session_for(op, g, "bob@contoso.com", secrets.token_hex(8))
    assert all(alive(g, j) for j in (a1, a2, a3, b1))
    r = post_token(g, logout_token(op, sid=sid,
                                   sub=sub_of(op, "alice@contoso.com")))
    assert r.status_code == 200, r.text[:300]
    assert r.headers["Cache-Control"] == "no-store"
    # Both sessions of that sid end; the sid names the session, so the
    # same user's other session and another user's stay.
    assert not alive(g, a1) and not alive(g, a2)
    assert alive(g, a3) and alive(g, b1)
    assert g.loggrep(r"backchannel_logout id=\S+ result=ok by=sid "
                     r"ended=2")
    # Nothing of the sid or the sub reaches the log.
    assert sid not in g.log()


def test_backchannel_ends_by_sub(op, tmp, upstream, session_store):
    g = gateway(op, tmp, upstream, session_store)
    a1 = session_for(op, g, "alice@contoso.com", secrets.token_hex(8))
    a2 = session_for(op, g, "alice@contoso.com", secrets.token_hex(8))
    b1 = session_for(op, g, "bob@contoso.com", secrets.token_hex(8))
    # exp is optional in a logout token: this one has none.
    r = post_token(g, logout_token(op, sub=sub_of(op, "alice@contoso.com"),
                                   claims={"exp": None}))
    assert r.status_code == 200, r.text[:300]
    assert not alive(g, a1) and not alive(g, a2)
    assert alive(g, b1)
    assert g.loggrep(r"result=ok by=sub ended=2")
    # A sub that has no session: 200, nothing ends.
    r = post_token(g, logout_token(op, sub="nobody-" + secrets.token_hex(4)))
    assert r.status_code == 200
    assert alive(g, b1)


def now():
    return int(time.time())


# Each: how to make the request (a token, or a raw request), all refused
# with 400 invalid_request, none ending the session.
REFUSALS = {
    "bad_signature": dict(bad_signature=True),
    "alg_none": dict(alg="none"),
    "unknown_key": dict(key="stray"),
    "wrong_iss": dict(claims={"iss": "https://evil.example/v2.0"}),
    "wrong_aud": dict(claims={"aud": "another-client"}),
    "nonce_present": dict(claims={"nonce": "n-0S6_WzA2Mj"}),
    "missing_events": dict(claims={"events": None}),
    "events_not_object": dict(claims={"events": [EVENT]}),
    "wrong_event_type": dict(claims={"events": {
        "http://schemas.openid.net/event/other": {}}}),
    "event_member_not_object": dict(claims={"events": {EVENT: "yes"}}),
    "neither_sid_nor_sub": dict(no_subject=True),
    "missing_jti": dict(claims={"jti": None}),
    "expired": dict(claims={"exp": "past"}),
    "iat_future": dict(claims={"iat": "future"}),
    "iat_old": dict(claims={"iat": "old", "exp": None}),
    "missing_iat": dict(claims={"iat": None}),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_backchannel_refuses_token(op, tmp, upstream, session_store, case):
    g = gateway(op, tmp, upstream, session_store)
    sid = secrets.token_hex(8)
    a = session_for(op, g, "alice@contoso.com", sid)
    kw = json.loads(json.dumps(REFUSALS[case]))
    claims = kw.get("claims", {})
    for k, v in list(claims.items()):
        if v == "past":
            claims[k] = now() - 3600
        elif v == "future":
            claims[k] = now() + 3600
        elif v == "old":
            claims[k] = now() - 3600
    if not kw.pop("no_subject", False):
        kw["sid"] = sid
        kw["sub"] = sub_of(op, "alice@contoso.com")
    refused(post_token(g, logout_token(op, **kw)))
    assert alive(g, a)
    assert g.loggrep(r"backchannel_logout id=\S+ result=refused")


def test_backchannel_refuses_replay(op, tmp, upstream, session_store):
    g = gateway(op, tmp, upstream, session_store)
    sid = secrets.token_hex(8)
    a1 = session_for(op, g, "alice@contoso.com", sid)
    token = logout_token(op, sid=sid)
    assert post_token(g, token).status_code == 200
    assert not alive(g, a1)
    # A new session of the same sid: the same token again ends nothing.
    a2 = session_for(op, g, "alice@contoso.com", sid)
    refused(post_token(g, token))
    assert alive(g, a2)
    assert g.loggrep(r"reason=\"the logout token was used before\"")


def test_backchannel_refuses_requests(op, tmp, upstream, session_store):
    g = gateway(op, tmp, upstream, session_store)
    sid = secrets.token_hex(8)
    a = session_for(op, g, "alice@contoso.com", sid)
    token = logout_token(op, sid=sid)
    # The form field missing, another field instead, an empty one.
    refused(requests.post(g.url + BCL, data={"token": token}, timeout=10))
    refused(requests.post(g.url + BCL, data={"logout_token": ""},
                          timeout=10))
    # The field twice.
    refused(requests.post(g.url + BCL, data=[("logout_token", token),
                                             ("logout_token", token)],
                          timeout=10))
    # Not a form.
    refused(requests.post(g.url + BCL, json={"logout_token": token},
                          timeout=10))
    # A 1 MiB body is refused, not held.
    big = "logout_token=" + token + "&pad=" + "A" * (1024 * 1024)
    r = requests.post(g.url + BCL, data=big, timeout=30, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    refused(r)
    # GET (and any other method): 405.
    r = requests.get(g.url + BCL + "?logout_token=" + token, timeout=10)
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"
    assert r.headers["Cache-Control"] == "no-store"
    r = requests.put(g.url + BCL, data={"logout_token": token}, timeout=10)
    assert r.status_code == 405
    assert alive(g, a)
    # The token itself was never spent: it still works.
    assert post_token(g, token).status_code == 200
    assert not alive(g, a)


def test_backchannel_across_replicas(op, tmp, upstream):
    """Redis: a logout token posted to one replica ends the session on
    the other."""
    redis = RedisServer(tmp)
    try:
        a = gateway(op, tmp, upstream, redis.url, name="a")
        b = gateway(op, tmp, upstream, redis.url, name="b")
        sid = secrets.token_hex(8)
        jar = session_for(op, a, "alice@contoso.com", sid)
        assert alive(b, jar)
        token = logout_token(op, sid=sid)
        assert post_token(b, token).status_code == 200
        assert not alive(a, jar) and not alive(b, jar)
        # The replay cache is shared too.
        refused(post_token(a, token))
    finally:
        redis.stop()


def fcl(g, **params):
    return requests.get(g.url + FCL + "?" + urlencode(params), timeout=10)


def test_frontchannel_ends_by_sid(op, tmp, upstream, session_store):
    g = gateway(op, tmp, upstream, session_store)
    sid = secrets.token_hex(8)
    a1 = session_for(op, g, "alice@contoso.com", sid)
    a2 = session_for(op, g, "alice@contoso.com", sid)
    b = session_for(op, g, "bob@contoso.com", secrets.token_hex(8))
    # No cookie: the provider's page names the sid.
    r = fcl(g, iss=op.issuer, sid=sid)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Type"].startswith("text/html")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(op.issuer))
    assert r.headers["Content-Security-Policy"] == \
        "frame-ancestors " + origin
    assert not alive(g, a1) and not alive(g, a2)
    assert alive(g, b)
    assert g.loggrep(r"frontchannel_logout id=\S+ result=ok by=sid ended=2")


def test_frontchannel_wrong_iss_ignored(op, tmp, upstream, session_store):
    g = gateway(op, tmp, upstream, session_store)
    sid = secrets.token_hex(8)
    a = session_for(op, g, "alice@contoso.com", sid)
    for iss in ("https://evil.example/v2.0", op.issuer + "/", ""):
        r = fcl(g, iss=iss, sid=sid)
        assert r.status_code == 200
        assert r.headers["Cache-Control"] == "no-store"
    r = fcl(g, sid=sid)  # no iss at all
    assert r.status_code == 200
    assert alive(g, a)
    assert g.loggrep(r"frontchannel_logout id=\S+ result=ignored")
    # POST is not front-channel logout.
    r = requests.post(g.url + FCL + "?" + urlencode(
        {"iss": op.issuer, "sid": sid}), timeout=10)
    assert r.status_code == 405
    assert alive(g, a)


def test_frontchannel_cookie(op, tmp, upstream, session_store):
    """Without sid: the cookie's session, unless another site navigated
    the top-level window here (a link cannot sign people out)."""
    g = gateway(op, tmp, upstream, session_store)
    a = session_for(op, g, "alice@contoso.com", secrets.token_hex(8))
    r = requests.get(g.url + FCL, cookies=a, timeout=10, headers={
        "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "document",
        "Sec-Fetch-Mode": "navigate"})
    assert r.status_code == 200
    assert alive(g, a)
    r = requests.get(g.url + FCL, cookies=a, timeout=10, headers={
        "Sec-Fetch-Site": "same-site", "Sec-Fetch-Dest": "iframe",
        "Sec-Fetch-Mode": "navigate"})
    assert r.status_code == 200
    assert "gatehouse=;" in r.headers.get("Set-Cookie", "")
    assert not alive(g, a)


def test_frontchannel_in_browser(op, tmp, upstream):
    """Chromium: the provider's signed-out page (another origin) loads the
    registered front-channel logout URL in an iframe; the browser shows
    gatehouse's page in it (frame-ancestors lets the provider frame it)
    and the session of the sid ends.  Never skips, as test_browser.py."""
    from test_browser import BROWSERDIR, CHROMIUM, need_tools, npm_ci
    import os
    import subprocess
    need_tools()
    npm_ci(BROWSERDIR, "playwright-core")
    g = gateway(op, tmp, upstream, None)
    sid = secrets.token_hex(8)
    a = session_for(op, g, "alice@contoso.com", sid)
    b = session_for(op, g, "bob@contoso.com", secrets.token_hex(8))
    op.config(frontchannel_logout_uri=g.url + FCL)
    url = op.endpoint("logout") + "?" + urlencode(
        {"logout_hint": "alice@contoso.com"})
    p = subprocess.run(
        ["node", os.path.join(BROWSERDIR, "frontchannel.mjs"), url,
         "--chromium", CHROMIUM],
        cwd=BROWSERDIR, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=120)
    assert p.returncode == 0, (p.stdout + p.stderr, g.log()[-2000:])
    assert not alive(g, a)
    assert alive(g, b)
    assert g.loggrep(r"frontchannel_logout id=\S+ result=ok by=sid ended=1")
