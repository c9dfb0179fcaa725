# SPDX-License-Identifier: ISC
"""Request bodies and the connection layer, through the real binary: access
is decided on the head, so a request that will not be proxied is answered
without its body being read (and "100 Continue" is sent only after the
decision to proxy); the bodies held in memory by the whole process are
capped; every Connection line counts; singleton fields seen twice are a
400; a request line too long is a 414."""
import json
import os
import resource
import select
import socket
import time

import pytest
import requests

from conftest import SANITIZED, raw_request
from op_client import full_sign_in
from signin import sign_in, start_gateway
from test_hostile_clients import Site

SLOW = 1000


@pytest.fixture(scope="module")
def site():
    s = Site()
    yield s
    s.close()


@pytest.fixture
def op():
    from op_client import OP
    o = OP()
    yield o
    o.stop()


def _raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n), hard))


def _head(data):
    return data.split(b"\r\n\r\n", 1)[0]


def test_slow_chunked_uploads_answered_on_the_head(op, tmp, upstream):
    """1,000 chunked uploads to a protected path without a cookie, each
    sending its head and a first small chunk, then stalling: every one is
    answered at once (302 for a browser, 401 for an API client), none gets
    "100 Continue", nothing reaches the upstream, and the process stays
    under 64 MiB."""
    _raise_nofile(SLOW + 1000)
    g = start_gateway(op, tmp, upstream, [])
    socks = []
    for i in range(SLOW):
        s = socket.create_connection(("127.0.0.1", g.port), 10)
        accept = b"text/html" if i % 2 == 0 else b"application/json"
        s.sendall(b"POST /private/upload HTTP/1.1\r\nHost: x\r\n"
                  b"Accept: " + accept + b"\r\nExpect: 100-continue\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n")
        s.setblocking(False)
        socks.append(s)
    got = {}
    deadline = time.time() + 10
    while len(got) < SLOW and time.time() < deadline:
        r, _, _ = select.select([s for j, s in enumerate(socks)
                                 if j not in got][:500], [], [], 0.5)
        for s in r:
            j = socks.index(s)
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            got[j] = data
    peak = g.peak_rss_kib()
    for s in socks:
        s.close()
    assert len(got) == SLOW, "%d of %d answered" % (len(got), SLOW)
    for j, data in got.items():
        # A browser's POST gets 401 too: only a navigation is redirected.
        assert data.startswith(b"HTTP/1.1 401 ") or (
            j % 2 == 0 and data.startswith(b"HTTP/1.1 302 ")), (j, data[:200])
        assert b"100 Continue" not in data
        assert b"Connection: close" in _head(data)
    print("peak RSS %d KiB" % peak)
    if not SANITIZED:
        assert peak < 64 * 1024, "peak RSS %d KiB" % peak
    assert upstream.stats()["requests"] == 1  # the stats call itself
    assert requests.get(g.url + "/public/after", timeout=5).status_code == 200


def _signed_in_cookie(site):
    s, _ = sign_in(site.g, "bodies@contoso.com")
    return s.cookies.get("gatehouse")


def test_expect_continue_only_after_the_decision(site):
    """Expect: 100-continue without a cookie: the final 401/302 at once,
    never "100 Continue"; with a session, 100 first, then (once the body
    is sent) the proxied answer."""
    before = site.requests_seen()
    for method, accept, status in ((b"POST", b"application/json", b"401"),
                                   (b"PUT", b"text/html", b"401"),
                                   (b"GET", b"text/html", b"302")):
        s = socket.create_connection(("127.0.0.1", site.g.port), 5)
        s.sendall(method + b" /private/x HTTP/1.1\r\nHost: x\r\nAccept: "
                  + accept + b"\r\nContent-Length: 10\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        data = s.recv(65536)
        s.close()
        assert data.startswith(b"HTTP/1.1 " + status), data[:200]
        assert b"100 Continue" not in data
    assert site.requests_seen() == before
    cookie = _signed_in_cookie(site).encode()
    s = socket.create_connection(("127.0.0.1", site.g.port), 5)
    s.sendall(b"POST /private/echo HTTP/1.1\r\nHost: x\r\nCookie: gatehouse="
              + cookie + b"\r\nContent-Length: 10\r\n"
              b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
    first = s.recv(65536)
    assert first == b"HTTP/1.1 100 Continue\r\n\r\n", first[:200]
    s.sendall(b"0123456789")
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    assert out.startswith(b"HTTP/1.1 200 "), out[:300]
    echo = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert echo["body_len"] == 10
    assert not any(k.lower() == "expect" for k, _ in echo["headers"])


def test_refused_small_body_keeps_the_connection(site):
    """A refused request whose whole body has arrived is answered without
    reading it, and the connection goes on with the next request (its
    body skipped, not taken for a request)."""
    out = raw_request(site.g.port,
                      b"POST /private/x HTTP/1.1\r\nHost: x\r\n"
                      b"Accept: application/json\r\nTransfer-Encoding: "
                      b"chunked\r\n\r\n4\r\nGET \r\n0\r\n\r\n"
                      b"GET /public/next HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n", timeout=5)
    assert out.startswith(b"HTTP/1.1 401 "), out[:200]
    assert out.count(b"HTTP/1.1 ") == 2, out[:600]
    assert b'"path": "/public/next"' in out


def _chunked_upload(port, path, n):
    s = socket.create_connection(("127.0.0.1", port), 5)
    # One chunk declared larger than what is sent: the body never ends.
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (path.encode(),
                                                              n * 2))
    s.sendall(b"z" * n)
    return s


def test_buffered_bodies_are_capped(op, tmp, upstream):
    """Chunked uploads to an anonymous route, held open: past
    max_buffered_bodies for the whole process a request gets 503 (with
    Retry-After); once they end the memory is counted back, and an upload
    passes again.  RSS stays bounded."""
    g = start_gateway(op, tmp, upstream, ["max_buffered_bodies = 2M"])
    held, refused = [], []
    for _ in range(12):
        s = _chunked_upload(g.port, "/public/echo", 512 * 1024)
        time.sleep(0.3)
        r, _, _ = select.select([s], [], [], 0.2)
        if r:
            refused.append(s.recv(65536))
            s.close()
        else:
            held.append(s)
    assert 2 <= len(held) <= 5, (len(held), len(refused))
    assert refused, "no 503 past the cap"
    for data in refused:
        assert data.startswith(b"HTTP/1.1 503 "), data[:200]
        assert b"Retry-After: 5" in _head(data)
    assert g.loggrep(r"busy id=\w+ .*max_buffered_bodies")
    peak = g.peak_rss_kib()
    if not SANITIZED:
        assert peak < 64 * 1024, "peak RSS %d KiB" % peak
    for s in held:
        s.close()
    time.sleep(0.5)
    body = os.urandom(600 * 1024)

    def gen():
        yield body
    r = requests.post(g.url + "/public/echo", data=gen(), timeout=10)
    assert r.status_code == 200, r.status_code
    assert r.json()["body_len"] == len(body)
    assert r.json()["headers"] and any(
        k.lower() == "content-length" and v == str(len(body))
        for k, v in r.json()["headers"])


# -- Connection: every line counts -----------------------------------------
def test_http10_close_then_keep_alive_closes(site):
    """HTTP/1.0 with "Connection: close" then "Connection: keep-alive": the
    close wins (RFC 9110 7.6.1), so the answer says close and the
    connection ends."""
    t0 = time.time()
    out = raw_request(site.g.port,
                      b"GET /public/x HTTP/1.0\r\nConnection: close\r\n"
                      b"Connection: keep-alive\r\n\r\n", timeout=4)
    assert out.startswith(b"HTTP/1.1 200 "), out[:200]
    assert b"Connection: keep-alive" not in _head(out)
    assert b"Connection: close" in _head(out)
    assert time.time() - t0 < 3, "the connection was kept open"


def test_options_in_a_second_connection_line_are_stripped(site):
    out = raw_request(site.g.port,
                      b"GET /public/echo HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: keep-alive\r\nConnection: X-Secret-Opt\r\n"
                      b"X-Secret-Opt: 1\r\nX-Kept: 1\r\n"
                      b"Connection: close\r\n\r\n", timeout=5)
    assert out.startswith(b"HTTP/1.1 200 "), out[:200]
    echo = json.loads(out.split(b"\r\n\r\n", 1)[1])
    names = [k.lower() for k, _ in echo["headers"]]
    assert "x-kept" in names
    assert "x-secret-opt" not in names, names


def test_upstream_second_connection_line_is_applied(site):
    s, _ = sign_in(site.g, "hop@contoso.com")
    r = s.get(site.g.url + "/raw?kind=two_connection", timeout=5)
    assert r.status_code == 200 and r.text == "ok"
    assert r.headers.get("X-Kept") == "yes"
    assert "X-Upstream-Secret" not in r.headers


# -- singleton fields ----------------------------------------------------
def test_two_authorization_headers_on_a_bearer_route(op, tmp, upstream):
    """The first Authorization is a valid token: still a 400, and the
    upstream sees nothing."""
    op.config(access_token_audience=op.client_id, expires_in=3600)
    g = start_gateway(op, tmp, upstream, ["workers = 1"],
                      routes=["route /api/* bearer",
                              "route /public/* allow anonymous",
                              "route /* allow authenticated"])
    _, tok = full_sign_in(op, "api@contoso.com")
    good = b"Authorization: Bearer " + tok["access_token"].encode() + b"\r\n"
    one = raw_request(g.port, b"GET /api/x HTTP/1.1\r\nHost: x\r\n" + good
                      + b"Connection: close\r\n\r\n")
    before = upstream.stats()["requests"]
    out = raw_request(g.port, b"GET /api/x HTTP/1.1\r\nHost: x\r\n" + good
                      + b"Authorization: Bearer other\r\n"
                      b"Connection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), (out[:300], one[:100])
    assert upstream.stats()["requests"] == before + 1  # the stats call


@pytest.mark.parametrize("name", [
    "Authorization", "Proxy-Authorization", "Content-Type",
    "X-Forwarded-Method", "X-Forwarded-Uri", "X-Original-URI",
    "X-Forwarded-Host", "X-Forwarded-Proto", "authorization"])
def test_singleton_fields_seen_twice_are_400(site, name):
    before = site.requests_seen()
    out = raw_request(site.g.port,
                      b"GET /public/x HTTP/1.1\r\nHost: x\r\n"
                      b"%s: a\r\n%s: b\r\n\r\n" % (name.encode(),
                                                   name.upper().encode()))
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert site.requests_seen() == before


def test_cookie_may_repeat(site):
    out = raw_request(site.g.port,
                      b"GET /public/x HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\n"
                      b"Cookie: b=2\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 "), out[:200]


# -- request line ------------------------------------------------------------
@pytest.mark.parametrize("n", [9000, 40000, 200000])
def test_request_line_too_long_is_414(site, n):
    before = site.requests_seen()
    out = raw_request(site.g.port,
                      b"GET /public/" + b"a" * n + b" HTTP/1.1\r\n"
                      b"Host: x\r\n\r\n", timeout=5)
    assert out.startswith(b"HTTP/1.1 414 "), out[:200]
    assert site.requests_seen() == before
