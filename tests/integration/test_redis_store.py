# SPDX-License-Identifier: ISC
"""Sessions in Redis: replicas sharing them, Redis going away and coming
back, and hostile or broken servers (a wrong password, garbage, silence,
replies over the size limit).  Real redis-server processes, and small
Python socket servers for the broken ones, on loopback ports started by
the test and stopped by PID."""
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, Gatehouse, free_port, wait_port
from op_client import OP, verify_jwt
from redis_server import RedisServer
from signin import (echo_headers, gateway_lines, sign_in, start_gateway,
                    to_sign_in)

HTML = {"Accept": "text/html"}
JSON = {"Accept": "application/json"}
# A well-formed session id no store knows: asking for it asks the store.
UNKNOWN_ID = "A" * 43


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


@pytest.fixture
def redis(tmp):
    r = RedisServer(tmp)
    yield r
    r.stop()


def cookie(s):
    return s.cookies.get("gatehouse")


def wait_ready(g, want=200, timeout=15.0):
    """Poll /.auth/readyz until it answers `want` (Redis reconnects with
    a backoff); returns the last answer."""
    end = time.time() + timeout
    while True:
        r = requests.get(g.url + "/.auth/readyz", timeout=5)
        if r.status_code == want or time.time() > end:
            return r
        time.sleep(0.1)


def test_replicas_share_sessions(op, tmp, upstream, redis):
    """Sign in on A, the session works on B; sign out on B, A refuses the
    cookie.  The record is sealed and expires with the session."""
    a = start_gateway(op, tmp, upstream, ["forward_access_token = on"],
                      store=redis.url, name="a")
    b = start_gateway(op, tmp, upstream, ["forward_access_token = on"],
                      store=redis.url, name="b")
    s, _ = sign_in(a, "alice@contoso.com")
    jar = {"gatehouse": cookie(s)}
    r = requests.get(b.url + "/private", cookies=jar, timeout=5)
    assert r.status_code == 200, r.text[:300]
    h = echo_headers(r)
    assert h["x-forwarded-user"] == ["alice@contoso.com"]
    token = h["x-ms-token-aad-access-token"][0]
    me = requests.get(b.url + "/.auth/me", cookies=jar, timeout=5).json()
    assert me["user_id"] == "alice@contoso.com"
    # One record, under a hash of the id (never the id), tokens sealed.
    keys = redis.session_keys()
    assert len(keys) == 1 and cookie(s) not in keys[0]
    record = redis.command("HGETALL", keys[0])
    fields = dict(zip(record[::2], record[1::2]))
    assert set(fields) == {b"h", b"c"}
    assert token.encode() not in fields[b"c"]
    ttl = redis.command("TTL", keys[0])
    assert 86000 < ttl <= 86400  # session_lifetime's default, 24h
    # Sign out on B: A no longer knows the cookie.
    r = requests.get(b.url + "/.auth/logout", cookies=jar,
                     allow_redirects=False, timeout=5)
    assert r.status_code == 302 and "Max-Age=0" in r.headers["Set-Cookie"]
    assert redis.session_keys() == []
    r = requests.get(a.url + "/private", cookies=jar, headers=HTML,
                     allow_redirects=False, timeout=5)
    assert to_sign_in(r), (r.status_code, r.headers)
    assert requests.get(a.url + "/.auth/me", cookies=jar,
                        timeout=5).status_code == 401
    for g in (a, b):
        assert token not in g.log() and cookie(s) not in g.log()


def test_redis_down_then_back(op, tmp, upstream, redis):
    """Redis killed: signed-in requests get the 503 page (never a redirect
    to sign in), anonymous routes still work, readyz says 503, one log
    line; Redis back (same AOF): the same session works again."""
    g = start_gateway(op, tmp, upstream, store=redis.url)
    assert wait_ready(g).status_code == 200
    s, _ = sign_in(g, "bob@contoso.com")
    assert s.get(g.url + "/private", timeout=5).status_code == 200
    redis.stop(signal.SIGKILL)
    for _ in range(5):
        r = s.get(g.url + "/private", headers=HTML, allow_redirects=False,
                  timeout=5)
        assert r.status_code == 503, (r.status_code, r.text[:200])
        assert "text/html" in r.headers["Content-Type"]
        assert "session store" in r.text
        assert "Location" not in r.headers
        r = s.get(g.url + "/private", headers=JSON, timeout=5)
        assert r.status_code == 503
        assert r.json()["error"] == "store_unavailable"
        assert s.get(g.url + "/.auth/me", timeout=5).status_code == 503
        assert requests.get(g.url + "/public/x", timeout=5).status_code == 200
        # The anonymous route with the cookie: no identity, still served.
        r = s.get(g.url + "/public/y", timeout=5)
        assert r.status_code == 200
        assert "x-forwarded-user" not in echo_headers(r)
    r = requests.get(g.url + "/.auth/readyz", timeout=5)
    assert r.status_code == 503
    assert r.json()["session_store"] == "unavailable"
    assert requests.get(g.url + "/.auth/healthz", timeout=5).status_code == 200
    assert g.loggrep(r"store_unavailable backend=redis addr=127\.0\.0\.1:%d"
                     r"/0 reason=" % redis.port)
    # Sign-out while the store is down cannot end the session: it says so
    # and keeps the cookie.
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 503 and "Set-Cookie" not in r.headers
    redis.start()
    assert wait_ready(g).status_code == 200
    r = s.get(g.url + "/private", timeout=5)
    assert r.status_code == 200
    assert echo_headers(r)["x-forwarded-user"] == ["bob@contoso.com"]
    assert g.loggrep(r"store_recovered backend=redis")
    log = g.log()
    # One line per change, not one per request.
    assert log.count("store_unavailable backend=redis") == 1, log
    assert log.count("store_recovered") == 1, log
    assert g.proc.alive()


def test_signin_while_redis_down_is_refused(op, tmp, upstream, redis):
    g = start_gateway(op, tmp, upstream, store=redis.url)
    redis.stop()
    s = requests.Session()
    from signin import authorize, begin_login, complete
    auth = authorize(s, begin_login(g, s, "/private"), "carol@contoso.com")
    r = complete(g, s, auth)
    assert r.status_code == 503, r.text[:300]
    assert "gatehouse=" not in r.headers.get("Set-Cookie", "").replace(
        "gatehouse_flow", "")
    assert g.loggrep(r"result=store_unavailable reason=\"session store "
                     r"unreachable\"")


def test_password_from_file_and_url(op, tmp, upstream):
    r = RedisServer(tmp, password="Pa55:w/rd@x")
    try:
        pw = os.path.join(tmp, "redis.pw")
        with open(pw, "w") as f:
            f.write("Pa55:w/rd@x\n")
        a = start_gateway(op, tmp, upstream, ["redis_password_file = " + pw],
                          store=r.url, name="a")
        s, _ = sign_in(a, "dave@contoso.com")
        assert s.get(a.url + "/private", timeout=5).status_code == 200
        # The same password in the URL, percent-encoded.
        url = "redis://:Pa55%3Aw%2Frd%40x@127.0.0.1:" + str(r.port) + "/0"
        b = start_gateway(op, tmp, upstream, store=url, name="b")
        r2 = requests.get(b.url + "/private",
                          cookies={"gatehouse": cookie(s)}, timeout=5)
        assert r2.status_code == 200
        for g in (a, b):
            assert "Pa55" not in g.log()
    finally:
        r.stop()


def test_wrong_password(op, tmp, upstream):
    r = RedisServer(tmp, password="right-one")
    try:
        url = "redis://:wrong-one@127.0.0.1:%d" % r.port
        g = start_gateway(op, tmp, upstream, store=url)
        m = g.loggrep(r'store_unavailable backend=redis addr=\S+ '
                      r'reason="the server refused the handshake: '
                      r'(WRONGPASS|ERR)[^"]*"', timeout=5)
        assert m, g.log()
        resp = requests.get(g.url + "/private", headers=HTML,
                            cookies={"gatehouse": UNKNOWN_ID},
                            allow_redirects=False, timeout=5)
        assert resp.status_code == 503
        assert requests.get(g.url + "/public/a", timeout=5).status_code == 200
        assert requests.get(g.url + "/.auth/readyz",
                            timeout=5).status_code == 503
        assert "wrong-one" not in g.log() and "right-one" not in g.log()
        assert g.proc.alive()
    finally:
        r.stop()


class BrokenServer:
    """A TCP server on a free loopback port that plays a broken Redis:
    'garbage' answers every read with bytes that are not RESP; 'echo'
    with an error reply repeating what it read; 'silent' reads and never
    answers; 'huge' answers with a bulk string that never ends (a reply
    growing without bound)."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.accepted = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        try:
            while not self.stopping:
                data = c.recv(65536)
                if not data:
                    return
                if self.mode == "garbage":
                    c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                elif self.mode == "echo":
                    # An error reply that repeats what it was sent (the
                    # AUTH command and its password, among the rest).
                    c.sendall(b"-ERR you said " +
                              data.replace(b"\r\n", b" ") + b"\r\n")
                elif self.mode == "huge":
                    c.sendall(b"$1000000000\r\n")
                    while not self.stopping:
                        c.sendall(b"x" * 65536)
        except OSError:
            return

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.mark.parametrize("mode,reason", [
    ("garbage", r"Protocol error"),
    ("echo", r"the server refused the handshake: ERR you said"),
    ("silent", r"no answer within 300 ms \(redis_timeout\)"),
    ("huge", r"a reply larger than the limit of \d+ bytes"),
])
def test_broken_server(op, tmp, upstream, mode, reason):
    srv = BrokenServer(mode)
    try:
        g = start_gateway(op, tmp, upstream, ["redis_timeout = 300ms"],
                          store="redis://:Hunter2-pw@127.0.0.1:%d" % srv.port)
        assert g.loggrep(r'store_unavailable backend=redis addr=\S+ '
                         r'reason="[^"]*%s' % reason, timeout=10), g.log()
        for _ in range(3):
            r = requests.get(g.url + "/private", headers=JSON,
                             cookies={"gatehouse": UNKNOWN_ID}, timeout=10)
            assert r.status_code == 503
            assert r.json()["error"] == "store_unavailable"
            assert requests.get(g.url + "/public/a",
                                timeout=5).status_code == 200
        assert requests.get(g.url + "/.auth/readyz",
                            timeout=5).status_code == 503
        # It keeps trying (with a backoff), and never crashes.
        assert srv.accepted >= 2
        assert g.proc.alive()
        assert g.log().count("store_unavailable backend") == 1
        assert "Hunter2" not in g.log()
    finally:
        srv.stop()


def test_record_over_the_size_limit(op, tmp, upstream, redis):
    """A record part over 64 KiB is refused when read: 503 for its
    session with a clear line; the connection stays, other sessions work.
    One past what the read buffer may hold drops the connection (and it
    comes back)."""
    g = start_gateway(op, tmp, upstream, ["workers = 1"], store=redis.url)
    s1, _ = sign_in(g, "erin@contoso.com")
    s2, _ = sign_in(g, "frank@contoso.com")
    k1, _ = redis.session_keys()
    # Which key is whose does not matter: grow one, then find its owner.
    redis.command("HSET", k1, "h", b"x" * (100 * 1024))
    codes = {s: s.get(g.url + "/private", headers=JSON, timeout=5).status_code
             for s in (s1, s2)}
    assert sorted(codes.values()) == [200, 503], codes
    big = s1 if codes[s1] == 503 else s2
    small = s2 if big is s1 else s1
    assert g.loggrep(r'store_error backend=redis op=get reason="a record '
                     r'part of 102400 bytes is over the limit of 65536"')
    assert "store_unavailable backend" not in g.log()
    assert small.get(g.url + "/private", timeout=5).status_code == 200
    # Past the read buffer's bound: the connection is dropped before the
    # reply is read whole, then made again.
    redis.command("HSET", k1, "h", b"x" * (1024 * 1024))
    assert big.get(g.url + "/private", headers=JSON,
                   timeout=5).status_code == 503
    assert g.loggrep(r'store_unavailable backend=redis addr=\S+ reason="a '
                     r'reply larger than the limit of \d+ bytes"')
    assert wait_ready(g).status_code == 200
    assert small.get(g.url + "/private", timeout=5).status_code == 200
    assert g.loggrep(r"store_recovered backend=redis")
    assert g.proc.alive()


def check(tmp, lines):
    conf = os.path.join(tmp, "check.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\n" % free_port())
        f.write("\n".join(lines) + "\n")
    p = subprocess.run([BIN, "-c", conf, "--check"], capture_output=True,
                       text=True, timeout=10)
    return p.returncode, p.stdout + p.stderr


def base_lines(op, tmp, store, key_file=True):
    lines = [l for l in gateway_lines(op, tmp, 8080, "http://127.0.0.1:9",
                                      store=store)
             if key_file or not l.startswith("session_key_file")]
    return lines


def test_check_redis_store(op, tmp):
    url = "redis://gh:TopSecret9@127.0.0.1:6379/2"
    rc, out = check(tmp, base_lines(op, tmp, url))
    assert rc == 0, out
    assert "warning" not in out and "TopSecret9" not in out
    # No session_key_file: every replica must share one; said, not refused.
    rc, out = check(tmp, base_lines(op, tmp, url, key_file=False))
    assert rc == 0, out
    assert "warning: session_key_file is not set" in out
    assert "every replica must use the same key file" in out
    assert "TopSecret9" not in out
    # A bad URL names its line and never echoes the value.
    rc, out = check(tmp, base_lines(op, tmp,
                                    "redis://gh:TopSecret9@h:99999"))
    assert rc == 1 and "TopSecret9" not in out
    assert "session_store: a port must be a number from 1 to 65535" in out
    # Sentinel: accepted (the sentinels are not asked offline either).
    rc, out = check(tmp, base_lines(
        op, tmp, "redis-sentinel://:TopSecret9@s1:26379,s2/mymaster"))
    assert rc == 0 and "TopSecret9" not in out, out
    rc, out = check(tmp, base_lines(
        op, tmp, "redis-sentinel://:TopSecret9@s1:26379,s2/my*master"))
    assert rc == 1 and "TopSecret9" not in out
    assert "session_store" in out and "master's name" in out, out
    rc, out = check(tmp, base_lines(op, tmp, "redis-sentinel://s1/m") +
                    ["redis_sentinel_password_file = " +
                     os.path.join(tmp, "nope")])
    assert rc == 1 and "redis_sentinel_password_file" in out, out
    rc, out = check(tmp, base_lines(op, tmp, "rediss://h:6380"))
    assert rc == 1 and "TLS" in out
    # The password file must be readable; its content never shown.
    rc, out = check(tmp, base_lines(op, tmp, url) +
                    ["redis_password_file = " + os.path.join(tmp, "nope")])
    assert rc == 1 and "redis_password_file" in out and "nope" in out
    rc, out = check(tmp, base_lines(op, tmp, url) + ["redis_timeout = 5ms"])
    assert rc == 1 and "redis_timeout" in out


def test_redis_down_at_start(op, tmp, upstream):
    """gatehouse starts without Redis (as without its provider): anonymous
    routes work, readyz says 503 until Redis is there, then 200."""
    port = free_port()
    g = start_gateway(op, tmp, upstream,
                      store="redis://127.0.0.1:%d" % port)
    assert requests.get(g.url + "/public/a", timeout=5).status_code == 200
    assert requests.get(g.url + "/.auth/readyz", timeout=5).status_code == 503
    assert g.loggrep(r'store_unavailable backend=redis addr=127\.0\.0\.1:%d'
                     r'/0 reason="Connection refused"' % port), g.log()
    r = RedisServer(tmp, port=port)
    try:
        assert wait_ready(g).status_code == 200
        s, _ = sign_in(g, "gina@contoso.com")
        assert s.get(g.url + "/private", timeout=5).status_code == 200
    finally:
        g.stop()
        r.stop()


def test_one_refresh_across_replicas(op, tmp, upstream, redis):
    """20 parallel requests over replicas A and B while the access token
    is about to expire: one refresh reaches the provider, all 20 carry the
    new token upstream, and the rotated refresh token is kept (the next
    refresh, on B, works)."""
    # Tokens live 8 s: the refresh window is half of it (refresh_before is
    # capped at half the lifetime), and within 5 s of expiry requests wait
    # for the refresh instead of going on with the old token.
    op.config(expires_in=8)
    extra = ["forward_access_token = on"]
    a = start_gateway(op, tmp, upstream, extra, store=redis.url, name="a")
    b = start_gateway(op, tmp, upstream, extra, store=redis.url, name="b")
    s, _ = sign_in(a, "judy@contoso.com")
    jar = {"gatehouse": cookie(s)}
    first = requests.get(a.url + "/private", cookies=jar, timeout=5)
    tok1 = echo_headers(first)["x-ms-token-aad-access-token"][0]
    assert op.counter("token_refresh") == 0
    time.sleep(4.6)  # 3.4 s left
    results = []
    lock = threading.Lock()

    def hit(g):
        r = requests.get(g.url + "/private", cookies=jar, timeout=60)
        tok = None
        if r.status_code == 200:
            tok = echo_headers(r)["x-ms-token-aad-access-token"][0]
        with lock:
            results.append((r.status_code, tok))

    threads = [threading.Thread(target=hit, args=(a if i % 2 else b,))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [c for c, _ in results] == [200] * 20, results
    toks = {t for _, t in results}
    assert len(toks) == 1 and tok1 not in toks, toks
    verify_jwt(toks.pop(), op.jwks(), issuer=op.issuer)
    assert op.counter("token_refresh") == 1
    assert a.loggrep(r"refresh result=ok") or b.loggrep(r"refresh result=ok")
    # One replica refreshed; the other's flight, if it started, found the
    # lock taken and then the record refreshed ("fresh").
    logs = a.log() + b.log()
    assert logs.count("refresh result=ok") == 1, logs
    # The refresh token the provider rotated was stored: the next refresh
    # (forced, on the other replica) uses it and works.
    r = requests.post(b.url + "/.auth/refresh", cookies=jar, timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert op.counter("token_refresh") == 2
    for g in (a, b):
        assert "result=ended" not in g.log()
        assert redis.command("KEYS", "gatehouse:l:*") == []
