# SPDX-License-Identifier: ISC
"""Faults of the gateway itself and of the provider, through the real
binary: kill -9 in the middle of a stream of sign-ins, a full session
store, a provider that redirects its own endpoints, rotates its keys under
live sessions, goes down at the callback or at a refresh, or answers
slowly, and a session key file that cannot be read.

Everything is real: build/gatehouse, its LMDB store (checked with lmdb-utils'
mdb_stat and mdb_dump as well), tests/op/op.py, upstream.py, and relay.py
in front of the provider's token endpoint to take it down for real.  Each
process binds 127.0.0.1 on a free port and is stopped by its PID."""
import base64
import hashlib
import os
import random
import re
import signal
import subprocess
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from conftest import BIN, PY, Gatehouse, Proc, Upstream, free_port, \
    wait_file, wait_port
from op_client import OP, decode_jwt, full_sign_in, verify_jwt
from signin import (authorize, begin_login, complete, echo_headers,
                    gateway_lines, start_gateway)
from test_conformance import (HTML, JSON, assert_callback_refused,
                              assert_signin_unavailable, check_page,
                              gateway_with_issuer, no_leaks,
                              session_cookie_set)

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


# -- helpers ------------------------------------------------------------
def store_path(tmp):
    return os.path.join(tmp, "sessions")


def mdb_entries(store):
    """The main database's entry count, from mdb_stat (which must open
    the store cleanly)."""
    p = subprocess.run(["mdb_stat", "-e", store], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    m = re.search(r"Status of Main DB.*?Entries: (\d+)", p.stdout, re.S)
    assert m, p.stdout
    return int(m.group(1))


def mdb_keys(store):
    """Every key in the store (hex), read by mdb_dump: a walk of the whole
    tree, which fails on a damaged page."""
    p = subprocess.run(["mdb_dump", store], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr)
    body = p.stdout.split("HEADER=END\n", 1)[1].split("DATA=END", 1)[0]
    lines = [l.strip() for l in body.splitlines() if l.strip()]
    return set(lines[0::2])


def store_key(cookie):
    """The LMDB key (hex, as mdb_dump prints it) of a session cookie's hot
    part: the first 8 bytes of SHA-256 of the raw id, a native (little
    endian) integer with its lowest bit 0 (the cold part's is 1)."""
    raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
    v = int.from_bytes(hashlib.sha256(raw).digest()[:8], "little") & ~1
    return v.to_bytes(8, "little").hex()


def sessions(store):
    """How many sessions the store holds: its hot parts."""
    return sum(1 for k in mdb_keys(store) if int(k[:2], 16) & 1 == 0)


def session_of(s):
    return s.cookies.get("gatehouse")


def signed_in_as(g, cookie, user):
    """Whether the cookie reaches the upstream as user (identity headers)."""
    r = requests.get(g.url + "/private", cookies={"gatehouse": cookie},
                     allow_redirects=False, timeout=10)
    if r.status_code != 200:
        return False
    h = echo_headers(r)
    return h.get("x-forwarded-user") == [user] and \
        h.get("x-ms-client-principal-name") == [user]


def signed_out(g, cookie):
    r = requests.get(g.url + "/private", cookies={"gatehouse": cookie},
                     headers=JSON, allow_redirects=False, timeout=10)
    return r.status_code == 401


def login(g, user, path="/private"):
    """A browser that went to the provider as user and is back with a
    code: (session, the provider's answer)."""
    s = requests.Session()
    return s, authorize(s, begin_login(g, s, path), user)


def elsewhere(tmp):
    """A second real server that only counts what reaches it: where a
    provider's redirect points."""
    d = os.path.join(tmp, "elsewhere")
    os.mkdir(d)
    return Upstream(d)


def assert_untouched(srv):
    """Nothing but this very stats call ever reached srv."""
    s = srv.stats()
    assert (s["connections"], s["requests"]) == (1, 1), s


class Relay:
    """relay.py in front of the provider: stop() takes what is behind it
    down for real (connection refused), start() brings it back on the
    same port."""

    def __init__(self, tmp, target_port):
        self.tmp = tmp
        self.target = target_port
        self.port = None
        self.proc = None
        self.start()

    def start(self):
        pf = os.path.join(self.tmp, "relay.port")
        if os.path.exists(pf):
            os.unlink(pf)
        argv = [PY, os.path.join(HERE, "relay.py"), "--target",
                "127.0.0.1:%d" % self.target, "--port-file", pf]
        if self.port:
            argv += ["--port", str(self.port)]
        self.proc = Proc(argv, os.path.join(self.tmp, "relay.log"))
        self.port = int(wait_file(pf))
        wait_port(self.port, self.proc.p)

    def stop(self):
        if self.proc is not None:
            assert self.proc.stop() == 0
        self.proc = None

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)


@pytest.fixture
def token_relay(op, tmp):
    """The provider's token endpoint behind a relay (the discovery
    document names the relay); everything else direct."""
    r = Relay(tmp, op.port)
    op.fault("discovery_override", sticky=True, fields={
        "token_endpoint": r.url(urlsplit(op.endpoint("token")).path)})
    yield r
    r.stop()


# -- 1. kill -9 in the middle of a stream ------------------------------
class Stream:
    """Clients signing in, making signed-in requests and signing out, in
    parallel, recording what they were told: `sent` (cookie -> user) holds
    every session whose Set-Cookie reached its client, `ended` every one
    whose sign-out answer did.  Requests the kill cut off are in neither,
    since their outcome is unknown."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}
        self.ended = set()
        self.errors = []
        self.n = 0

    def run(self, g, name, killed, stop):
        n = 0
        while not stop.is_set():
            n += 1
            user = "%s-%d@contoso.com" % (name, n)
            try:
                self.one(g, user, n)
            except Exception as e:
                # Cut off by the kill, or (an error) a bad answer or a
                # failure while gatehouse was alive.
                if not killed.is_set():
                    self.error("%s: %r" % (user, e))
                return

    def error(self, text):
        with self.lock:
            self.errors.append(text)

    def one(self, g, user, n):
        s = requests.Session()
        r = s.get(g.url + "/.auth/login?post_login_redirect_uri=/private",
                  allow_redirects=False, timeout=20)
        assert r.status_code == 302, r.status_code
        auth = authorize(s, r.headers["Location"], user)
        r = complete(g, s, auth)
        assert r.status_code == 302, (r.status_code, r.text[:200])
        cookie = session_of(s)
        assert cookie and len(cookie) == 43
        with self.lock:
            self.sent[cookie] = user
            self.n += 1
        for i in range(3):
            r = s.get(g.url + "/private/%d" % i, timeout=20)
            assert r.status_code == 200, r.status_code
            assert echo_headers(r)["x-forwarded-user"] == [user]
        if n % 3 == 1:
            # Its outcome is unknown until the answer is in.
            with self.lock:
                del self.sent[cookie]
            r = s.get(g.url + "/.auth/logout", allow_redirects=False,
                      timeout=20)
            assert r.status_code == 302, r.status_code
            with self.lock:
                self.ended.add(cookie)


def test_kill9_mid_stream_keeps_every_session_sent(op, tmp, upstream):
    """Three times: four clients sign in, use and end sessions; gatehouse
    is killed with SIGKILL at a random moment; the store is checked with
    mdb_stat and mdb_dump; gatehouse restarts on the same store and key
    file, and every session whose cookie had reached its client works
    (identity headers at the upstream), every one whose sign-out answer
    had arrived stays ended."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    port = free_port()
    store = store_path(tmp)
    st = Stream()
    moments = []
    for rnd in range(3):
        g = start_gateway(op, tmp, upstream, port=port, name="gw%d" % rnd)
        killed, stop = threading.Event(), threading.Event()
        threads = [threading.Thread(target=st.run,
                                    args=(g, "r%dc%d" % (rnd, i), killed,
                                          stop))
                   for i in range(4)]
        before = st.n
        for t in threads:
            t.start()
        end = time.time() + 60
        while st.n < before + 4 and time.time() < end and not st.errors:
            time.sleep(0.01)
        assert st.n >= before + 4, (st.errors, g.log()[-2000:])
        moment = rng.uniform(0.0, 1.0)
        moments.append(moment)
        time.sleep(moment)
        killed.set()
        assert g.stop(signal.SIGKILL) == -signal.SIGKILL
        stop.set()
        for t in threads:
            t.join(60)
            assert not t.is_alive()
        why = "seed %d, kills %r" % (seed, moments)
        assert not st.errors, (why, st.errors[:5])
        # The store as LMDB's own tools see it, gatehouse dead.
        keys = mdb_keys(store)
        assert mdb_entries(store) == len(keys)
        missing = [u for c, u in st.sent.items() if store_key(c) not in keys]
        assert not missing, (why, missing)
        assert not [c for c in st.ended if store_key(c) in keys], why
        g2 = start_gateway(op, tmp, upstream, port=port,
                           name="gw%d-check" % rnd)
        lost = [u for c, u in st.sent.items()
                if not signed_in_as(g2, c, u)]
        assert not lost, (why, len(lost), len(st.sent), lost[:5])
        assert all(signed_out(g2, c) for c in st.ended), why
        assert not re.search(r"warn.*session store", g2.log()), g2.log()
        assert g2.stop() == 0
    assert len(st.sent) >= 8 and len(st.ended) >= 1, (len(st.sent),
                                                      len(st.ended))
    log = "".join(open(os.path.join(tmp, f)).read() for f in os.listdir(tmp)
                  if f.endswith(".log") and f.startswith("gw"))
    for c in list(st.sent) + list(st.ended):
        assert c not in log
    assert op.client_secret not in log and "eyJ" not in log


# -- 2. the session store is full -----------------------------------------
def test_store_full_refuses_new_signins_keeps_existing(op, tmp, upstream):
    """session_map_size at its minimum (1M) and users with many groups (a
    session of ~30 KiB): sign in until the store is full.  The next
    sign-ins get 503 (HTML, JSON) and one log line each, no session
    cookie; the sessions already there keep working, sign-out still works
    and makes room again; anonymous routes are untouched; exit 0."""
    g = start_gateway(op, tmp, upstream, ["session_map_size = 1M"])
    groups = [str(uuid.uuid4()) for _ in range(100)]
    signed = []
    refused = None
    for i in range(200):
        user = "many%d@contoso.com" % i
        op.user(user, groups=groups)
        s, auth = login(g, user)
        r = complete(g, s, auth)
        if r.status_code != 302:
            refused = (s, auth, r)
            break
        assert session_cookie_set(r)
        signed.append((s, user))
    assert refused is not None, "the store never filled up"
    assert len(signed) >= 10, len(signed)
    s, auth, r = refused
    check_page(r, 503, "store_unavailable", HTML)
    assert "cannot take new sessions" in r.text
    assert not session_cookie_set(r)
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401
    no_leaks(g, op, r, [auth["code"]] + [c.value for c in s.cookies])
    # An API client is told the same in JSON.
    op.user("api@contoso.com", groups=groups)
    s, auth = login(g, "api@contoso.com")
    r = s.get(auth["location"], headers=JSON, allow_redirects=False,
              timeout=15)
    check_page(r, 503, "store_unavailable", JSON)
    assert not session_cookie_set(r)
    # One line per refused sign-in, and nothing else about it.
    full = [l for l in g.log().splitlines()
            if re.search(r"full|mapsize|MDB_", l, re.I)]
    assert len(full) == 2, full
    for line in full:
        assert re.search(r'callback id=\w+ result=store_unavailable '
                         r'reason="session store is full \(see '
                         r'session_map_size\)"', line), line
    # Every session already there keeps working.
    for s, user in signed:
        assert signed_in_as(g, session_of(s), user), user
    assert requests.get(g.url + "/public/x", timeout=5).status_code == 200
    # Sign-out works on a full store: the record goes, a copy of the
    # cookie is refused; a few sign-outs make room for a new sign-in.
    for s, user in signed[:3]:
        cookie = session_of(s)
        r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
        assert r.status_code == 302 and "Max-Age=0" in r.headers["Set-Cookie"]
        assert signed_out(g, cookie)
    s, auth = login(g, "api@contoso.com")
    r = complete(g, s, auth)
    assert r.status_code == 302 and session_cookie_set(r), r.text[:300]
    assert signed_in_as(g, session_of(s), "api@contoso.com")
    for s, user in signed[3:]:
        assert signed_in_as(g, session_of(s), user), user
    assert g.stop() == 0
    assert sessions(store_path(tmp)) == len(signed) - 3 + 1


def test_session_map_size_minimum(tmp):
    """Below 1M the store could not hold a session: --check says so."""
    conf = os.path.join(tmp, "g.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\nupstream = http://127.0.0.1:1\n"
                "session_map_size = 64k\n" % free_port())
    p = subprocess.run([BIN, "-c", conf, "--check"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1
    assert "g.conf:3: session_map_size: must be at least 1M" in p.stderr
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\nupstream = http://127.0.0.1:1\n"
                "session_map_size = 1M\n" % free_port())
    p = subprocess.run([BIN, "-c", conf, "--check"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0, p.stderr


# -- 3. a provider that redirects its own endpoints --------------------------
@pytest.mark.parametrize("status,body", [
    (302, ""), (307, ""), (308, ""),
    (307, '{"error": "invalid_grant"}'),
], ids=["302", "307", "308", "307-error-body"])
def test_token_endpoint_redirect_not_followed(op, tmp, upstream, status,
                                              body):
    """The token request carries the client secret, the code and the PKCE
    verifier: a 3xx from the token endpoint is a provider failure (502,
    no session), never followed (the target sees nothing), and never a
    refusal, whatever its body says."""
    target = elsewhere(tmp)
    try:
        g = start_gateway(op, tmp, upstream)
        assert_callback_refused(
            g, op, upstream, 502, "provider_error",
            arm=lambda: op.fault("token_redirect", status=status, body=body,
                                 content_type="application/json",
                                 location=target.url + "/token"),
            log=r"callback id=\w+ result=provider_error reason=\"token "
                r"endpoint answered %d, a redirect \(not followed\)\"" %
                status)
        assert op.counter("fault:token_redirect") == 2
        assert_untouched(target)
    finally:
        target.stop()


def test_refresh_redirect_not_followed_and_session_kept(op, tmp, upstream):
    """The same at a refresh: the refresh token does not move, and the
    redirect (even one whose body says invalid_grant) does not end the
    session; the next refresh, answered normally, succeeds."""
    target = elsewhere(tmp)
    try:
        g = start_gateway(op, tmp, upstream, ["forward_access_token = on"])
        s, auth = login(g, "redir@contoso.com")
        assert complete(g, s, auth).status_code == 302
        op.fault("token_redirect", grant="refresh_token",
                 body='{"error": "invalid_grant"}',
                 content_type="application/json",
                 location=target.url + "/token")
        # (Its answer is not checked: /.auth/refresh reports the old,
        # still valid token when a refresh fails.)
        s.post(g.url + "/.auth/refresh", headers=JSON, timeout=15)
        assert op.counter("fault:token_redirect") == 1
        assert g.loggrep(r"refresh result=failed reason=\"token endpoint "
                         r"answered 307, a redirect \(not followed\)\"")
        assert not g.loggrep(r"refresh result=ended", timeout=0)
        assert signed_in_as(g, session_of(s), "redir@contoso.com")
        r = s.post(g.url + "/.auth/refresh", headers=JSON, timeout=15)
        assert r.status_code == 200 and "expires_on" in r.json()
        assert op.counter("token_refresh") == 2
        assert_untouched(target)
    finally:
        target.stop()


def test_discovery_redirect_not_followed(op, tmp, upstream):
    """A discovery document that redirects is not used: sign-in is 503,
    anonymous routes are still served, nothing reaches the target."""
    target = elsewhere(tmp)
    try:
        op.fault("discovery_redirect", sticky=True, status=301,
                 location=target.url + "/.well-known/openid-configuration")
        g = gateway_with_issuer(op, tmp, upstream)
        assert g.loggrep(r"provider_error what=discovery reason=\"answered "
                         r"HTTP 301, a redirect \(not followed\)\"",
                         timeout=10), g.log()
        assert_signin_unavailable(g, op, upstream)
        r = requests.get(g.url + "/public/x", timeout=5)
        assert r.status_code == 200 and r.json()["path"] == "/public/x"
        assert op.counter("jwks") == 0
        assert_untouched(target)
    finally:
        target.stop()


def test_jwks_redirect_is_jwks_unusable(op, tmp, upstream):
    """A JWKS that redirects is an unusable JWKS: sign-in is 503."""
    target = elsewhere(tmp)
    try:
        op.fault("jwks_redirect", sticky=True, status=302,
                 location=target.url + "/keys")
        g = gateway_with_issuer(op, tmp, upstream)
        assert g.loggrep(r"provider_error what=jwks reason=\"answered HTTP "
                         r"302, a redirect \(not followed\)\"",
                         timeout=10), g.log()
        assert_signin_unavailable(g, op, upstream)
        assert requests.get(g.url + "/public/x", timeout=5).status_code == 200
        assert_untouched(target)
    finally:
        target.stop()


def test_jwks_redirect_at_key_rotation(op, tmp, upstream):
    """Signed in, then the provider rotates its key and its JWKS starts
    redirecting: an ID token with the new key cannot be verified (401, no
    session), the session already there keeps working, nothing reaches the
    target."""
    target = elsewhere(tmp)
    try:
        g = start_gateway(op, tmp, upstream, ["workers = 1"])
        s0, auth = login(g, "before@contoso.com")
        assert complete(g, s0, auth).status_code == 302
        op.rotate_keys(keep_old=False)
        op.fault("jwks_redirect", sticky=True, location=target.url + "/keys")
        s, auth = login(g, "after@contoso.com")
        r = complete(g, s, auth)
        check_page(r, 401, "invalid_id_token", HTML)
        assert not session_cookie_set(r)
        assert g.loggrep(r"provider_error what=jwks reason=\"answered HTTP "
                         r"307, a redirect \(not followed\)\"")
        assert g.loggrep(r"result=invalid_id_token reason=\"kid_unknown")
        assert op.counter("fault:jwks_redirect") >= 1
        assert signed_in_as(g, session_of(s0), "before@contoso.com")
        assert_untouched(target)
    finally:
        target.stop()


# -- 4. the provider rotates its keys under live sessions --------------------
def kid_of(jwt):
    return decode_jwt(jwt)[0]["kid"]


def test_jwks_rotated_while_sessions_are_live(op, tmp, upstream):
    """Sign in (key A); the provider rotates to key B and drops A.  The
    session keeps working; its refresh, whose ID token is signed with B,
    succeeds after one JWKS fetch; a new sign-in with B works with no
    further fetch; tokens still signed with A are refused (an ID token at
    sign-in, an access token on a bearer route)."""
    # Access tokens for this app, so the bearer route accepts them.
    op.config(access_token_audience=op.client_id, expires_in=3600)
    g = start_gateway(op, tmp, upstream, ["workers = 1",
                                          "forward_access_token = on"],
                      routes=["route /api/* bearer",
                              "route /public/* allow anonymous",
                              "route /* allow authenticated"])
    key_a = op.keys()["signing_kid"]
    _, api_a = full_sign_in(op, "api@contoso.com")
    bearer = {"Authorization": "Bearer " + api_a["access_token"]}
    assert requests.get(g.url + "/api/x", headers=bearer,
                        timeout=5).status_code == 200
    # A 10 s access token: refreshed (the request waits) once 5 s are left.
    op.config(expires_in=10)
    s, auth = login(g, "rot@contoso.com")
    t0 = time.time()
    assert complete(g, s, auth).status_code == 302
    r = s.get(g.url + "/private", timeout=10)
    tok_a = echo_headers(r)["x-ms-token-aad-access-token"][0]
    assert kid_of(tok_a) == key_a
    rot = op.rotate_keys(keep_old=False)
    key_b = rot["signing_kid"]
    assert key_b != key_a and op.keys()["kids"] == [key_b]
    keys_b = op.jwks()  # (this fetch is counted too)
    jwks0 = op.counter("jwks")
    # The live session does not depend on the keys.
    assert signed_in_as(g, session_of(s), "rot@contoso.com")
    assert op.counter("token_refresh") == 0
    time.sleep(max(0.0, t0 + 5.5 - time.time()))
    r = s.get(g.url + "/private", allow_redirects=False, timeout=15)
    assert r.status_code == 200, (r.status_code, g.log()[-2000:])
    assert op.counter("token_refresh") == 1
    assert g.loggrep(r"refresh result=ok")
    assert g.loggrep(r'jwks_refetch reason="unknown kid"')
    assert op.counter("jwks") == jwks0 + 1
    tok_b = echo_headers(r)["x-ms-token-aad-access-token"][0]
    assert tok_b != tok_a and kid_of(tok_b) == key_b
    verify_jwt(tok_b, keys_b, issuer=op.issuer)
    assert echo_headers(r)["x-forwarded-user"] == ["rot@contoso.com"]
    # A new sign-in: its ID token is signed with B, already known.
    op.config(expires_in=3600)
    s2, auth = login(g, "new@contoso.com")
    r = complete(g, s2, auth)
    assert r.status_code == 302 and session_cookie_set(r)
    assert signed_in_as(g, session_of(s2), "new@contoso.com")
    assert op.counter("jwks") == jwks0 + 1
    # Tokens signed with the removed key A are refused.
    s3, auth = login(g, "old@contoso.com")
    op.fault("id_token_retired_key")
    r = complete(g, s3, auth)
    check_page(r, 401, "invalid_id_token", HTML)
    assert not session_cookie_set(r)
    assert op.counter("fault:id_token_retired_key") == 1
    assert g.loggrep(r"callback id=\w+ result=invalid_id_token "
                     r"reason=\"kid_unknown")
    r = requests.get(g.url + "/api/x", headers=bearer, timeout=10)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert g.loggrep(r"bearer id=\w+ result=invalid_token reason=\"kid")
    _, api_b = full_sign_in(op, "api@contoso.com")
    assert requests.get(g.url + "/api/x", timeout=5, headers={
        "Authorization": "Bearer " + api_b["access_token"]}).status_code == 200
    no_leaks(g, op, r, [tok_a, tok_b, session_of(s), session_of(s2)])


# -- 5. the provider is down at the callback, or at a refresh ---------------
@pytest.mark.parametrize("how", ["refused", "reset"])
def test_token_endpoint_down_at_callback(op, tmp, upstream, token_relay,
                                         how):
    """The user has authorized, then the token endpoint is unreachable
    (refused: nothing listens; reset: the connection drops with the
    request sent): 502 with a page that says so, no session, nothing in
    the store; once the provider is back, signing in again works."""
    g = start_gateway(op, tmp, upstream)
    store = store_path(tmp)
    entries = sessions(store)

    def arm():
        if how == "refused":
            token_relay.stop()
        else:
            op.fault("token_reset")

    assert_callback_refused(
        g, op, upstream, 502, "provider_error", arm=arm,
        token_calls=0 if how == "refused" else 1,
        log=r"callback id=\w+ result=provider_error reason=\"token "
            r"endpoint: connect \([^\"]+\)\"")
    assert g.log().count("result=provider_error") == 2
    assert sessions(store) == entries
    s, auth = login(g, "back@contoso.com")
    arm()
    r = s.get(auth["location"], headers=HTML, allow_redirects=False,
              timeout=15)
    check_page(r, 502, "provider_error", HTML)
    assert "could not be reached" in r.text
    if how == "refused":
        token_relay.start()
    else:
        assert op.counter("fault:token_reset") == 3
    s, auth = login(g, "back@contoso.com")
    r = complete(g, s, auth)
    assert r.status_code == 302 and session_cookie_set(r)
    assert signed_in_as(g, session_of(s), "back@contoso.com")
    assert sessions(store) == entries + 1


@pytest.mark.parametrize("how", ["refused", "reset", "500"])
def test_provider_down_at_refresh(op, tmp, upstream, token_relay, how):
    """The access token needs refreshing while the token endpoint cannot
    be reached (refused, reset) or fails (500).  While the old token is
    still valid the request goes through with it; once it has expired
    the user gets a 502 page (JSON for an API client); the session is
    never ended by this, only by a refusal; once the provider is back the
    next request refreshes."""
    op.config(expires_in=10)
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on"])
    s, auth = login(g, "down@contoso.com")
    t0 = time.time()
    assert complete(g, s, auth).status_code == 302
    cookie = session_of(s)
    r = s.get(g.url + "/private", timeout=10)
    tok1 = echo_headers(r)["x-ms-token-aad-access-token"][0]
    if how == "refused":
        token_relay.stop()
    elif how == "reset":
        op.fault("token_reset", sticky=True, grant="refresh_token")
    else:
        op.fault("token_500", sticky=True, grant="refresh_token")
    # Within 5 s of expiry: a refresh is due, but the token still works.
    time.sleep(max(0.0, t0 + 5.5 - time.time()))
    r = s.get(g.url + "/private", allow_redirects=False, timeout=15)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    h = echo_headers(r)
    assert h["x-ms-token-aad-access-token"] == [tok1]
    assert h["x-forwarded-user"] == ["down@contoso.com"]
    assert g.loggrep(r"refresh result=failed reason=\"token endpoint")
    # Expired now: a clear page, and the session is kept.
    time.sleep(max(0.0, t0 + 10.5 - time.time()))
    r = s.get(g.url + "/private", headers=HTML, allow_redirects=False,
              timeout=15)
    check_page(r, 502, "refresh_failed", HTML)
    assert "could not be renewed" in r.text
    page = s.get(g.url + "/private", headers=JSON, allow_redirects=False,
                 timeout=15)
    check_page(page, 502, "refresh_failed", JSON)
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 200
    assert not g.loggrep(r"refresh result=ended", timeout=0)
    assert upstream.stats()["requests"] == 3  # two /private, this call
    refreshes = op.counter("token_refresh")
    # Each request tried again (the provider saw them unless it was down).
    assert (refreshes == 0) == (how == "refused"), refreshes
    # The provider is back: the next request refreshes.
    if how == "refused":
        token_relay.start()
    else:
        op.clear_faults(name="token_reset" if how == "reset" else
                        "token_500")
    r = s.get(g.url + "/private", allow_redirects=False, timeout=15)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    tok2 = echo_headers(r)["x-ms-token-aad-access-token"][0]
    assert tok2 != tok1
    verify_jwt(tok2, op.jwks(), issuer=op.issuer)
    assert op.counter("token_refresh") == refreshes + 1
    assert g.loggrep(r"refresh result=ok")
    no_leaks(g, op, page, [tok1, tok2, cookie])


def test_provider_unusable_since_restart_keeps_expired_session(op, tmp,
                                                               upstream):
    """gatehouse restarts while the provider is unusable (its discovery
    fails) and a session's access token has expired meanwhile: the user
    gets a 503 page (JSON for an API client), not a sign-out; anonymous
    routes work; once the provider is back the next request refreshes."""
    op.config(expires_in=6)
    port = free_port()
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on"],
                      port=port)
    s, auth = login(g, "restart@contoso.com")
    t0 = time.time()
    assert complete(g, s, auth).status_code == 302
    assert g.stop() == 0
    op.fault("discovery_down", sticky=True)
    time.sleep(max(0.0, t0 + 6.5 - time.time()))
    g2 = Gatehouse(tmp, gateway_lines(op, tmp, port, upstream.url,
                                      ["forward_access_token = on"]),
                   port=port, name="gw2")
    assert g2.loggrep(r"provider_error what=discovery", timeout=10)
    r = s.get(g2.url + "/private", headers=JSON, allow_redirects=False,
              timeout=10)
    check_page(r, 503, "provider_unavailable", JSON)
    r = s.get(g2.url + "/private", headers=HTML, allow_redirects=False,
              timeout=10)
    check_page(r, 503, "provider_unavailable", HTML)
    assert "cannot be renewed" in r.text
    assert g2.loggrep(r"refresh id=\w+ result=provider_unavailable")
    assert s.get(g2.url + "/.auth/me", timeout=5).status_code == 200
    assert requests.get(g2.url + "/public/x", timeout=5).status_code == 200
    assert op.counter("token_refresh") == 0
    op.clear_faults()
    for w in range(2):
        assert g2.loggrep(r"provider ready worker=%d" % w, timeout=70)
    r = s.get(g2.url + "/private", allow_redirects=False, timeout=15)
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert echo_headers(r)["x-forwarded-user"] == ["restart@contoso.com"]
    assert op.counter("token_refresh") == 1
    assert g2.stop() == 0


# -- 6. a provider that answers slowly ---------------------------------------
def test_stalled_token_endpoint_does_not_block_the_worker(op, tmp, upstream):
    """workers = 1: while a sign-in's token request stalls at the provider,
    the same worker answers anonymous routes, signed-in requests (identity
    headers), /.auth/me, /.auth/healthz and new sign-ins; the stalled
    sign-in gets 504 once provider_timeout (3 s) has passed, not the
    provider's answer 30 s later."""
    g = start_gateway(op, tmp, upstream, ["workers = 1",
                                          "provider_timeout = 3s"])
    signed, auth = login(g, "early@contoso.com")
    assert complete(g, signed, auth).status_code == 302
    s, auth = login(g, "nina@contoso.com")
    op.fault("token_stall", seconds=30)
    done = {}

    def stalled():
        try:
            done["r"] = complete(g, s, auth)
        except Exception as e:  # reported below
            done["e"] = e

    t = threading.Thread(target=stalled)
    t.start()
    # Wait until the provider holds the token request.
    end = time.time() + 10
    while time.time() < end:
        held = [e for e in op.requests("token") if e["status"] is None]
        if held:
            break
        time.sleep(0.02)
    assert held and held[0]["notes"].get("stalled") == 30
    for i in range(5):
        r = requests.get(g.url + "/public/x%d" % i, timeout=5)
        assert r.status_code == 200
        assert signed_in_as(g, session_of(signed), "early@contoso.com")
        me = signed.get(g.url + "/.auth/me", timeout=5)
        assert me.json()["user_id"] == "early@contoso.com"
        r = requests.get(g.url + "/.auth/healthz", timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        r = requests.get(g.url + "/.auth/login", allow_redirects=False,
                         timeout=5)
        assert r.status_code == 302
        assert r.headers["Location"].startswith(op.endpoint("authorize"))
    # All of that while the sign-in was still waiting on the provider.
    assert t.is_alive()
    assert [e["status"] for e in op.requests("token")
            if e["seq"] == held[0]["seq"]] == [None]
    t.join(30)
    assert not t.is_alive() and "e" not in done, done
    r = done["r"]
    check_page(r, 504, "provider_timeout", HTML)
    assert "did not answer in time" in r.text
    assert not session_cookie_set(r)
    assert g.loggrep(r"callback id=\w+ result=provider_timeout reason=\"token "
                     r"endpoint timed out\"")
    assert s.get(g.url + "/.auth/me", timeout=5).status_code == 401
    no_leaks(g, op, r, [auth["code"], session_of(signed)])


# -- 7. a session key file that cannot be read -------------------------------
def _dangling(tmp, key):
    os.symlink(os.path.join(tmp, "not-mounted", "session.key"), key)
    return "a symbolic link to a missing file"


def _directory(tmp, key):
    os.mkdir(key)
    return "not a regular file"


def _parent_is_a_file(tmp, key):
    # The configured path names a file below a regular file.
    open(os.path.dirname(key), "w").close()
    return "Not a directory"


def _loop(tmp, key):
    os.symlink(key, key)
    return "Too many levels of symbolic links"


@pytest.mark.parametrize("make,subdir", [
    (_dangling, False), (_directory, False), (_parent_is_a_file, True),
    (_loop, False)], ids=["dangling-symlink", "directory",
                          "parent-is-a-file", "symlink-loop"])
def test_key_file_unreadable_refused(op, tmp, upstream, make, subdir):
    """A key file gatehouse cannot read (tests run as root, so not by its
    mode) stops it before it listens: exit 1, one line on stderr naming
    the file and why, and nothing created in its place."""
    key = os.path.join(tmp, "keydir", "session.key") if subdir else \
        os.path.join(tmp, "session.key")
    why = make(tmp, key)
    port = free_port()
    lines = [("session_key_file = " + key)
             if l.startswith("session_key_file") else l
             for l in gateway_lines(op, tmp, port, upstream.url)]
    conf = os.path.join(tmp, "k.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\n" % port + "\n".join(lines) + "\n")
    before = sorted(os.listdir(tmp))
    p = subprocess.run([BIN, "-c", conf], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.endswith("\n"), p.stderr
    assert p.stderr.startswith("gatehouse: %s: " % key), p.stderr
    assert why in p.stderr, p.stderr
    # No key made elsewhere, no store opened.
    assert sorted(os.listdir(tmp)) == before
    assert not os.path.exists(os.path.join(tmp, "not-mounted"))
    assert not os.path.exists(store_path(tmp))
