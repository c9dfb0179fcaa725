# SPDX-License-Identifier: ISC
"""Hostile clients against the real binary: open redirects, forged identity
headers, request smuggling over raw sockets, session attacks, exhaustion and
Host header injection.  Where libevent's parser is lenient the tests hold
gatehouse to the safe outcome: refused with 400 and the connection closed,
or normalised so the upstream sees exactly one well-framed request and no
second, smuggled one."""
import http.client
import json
import os
import re
import resource
import secrets
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import requests

from conftest import Upstream, raw_request
from op_client import OP
from signin import (authorize, begin_login, complete, query, sign_in,
                    to_sign_in,
                    start_gateway)

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}
EVIL = "evil.example"


class Site:
    """An OP, the echo upstream and gatehouse in front of it, shared by the
    tests of this module that leave nothing behind."""

    def __init__(self, extra=(), faults=()):
        self.dir = tempfile.TemporaryDirectory(prefix="gh-hostile-")
        self.op = OP()
        for name, kw in faults:
            self.op.fault(name, **kw)
        self.upstream = Upstream(self.dir.name)
        self.g = start_gateway(self.op, self.dir.name, self.upstream, extra)
        self.stats_calls = 0

    def requests_seen(self):
        """Requests the upstream has answered, not counting our /stats
        calls."""
        self.stats_calls += 1
        return self.upstream.stats()["requests"] - self.stats_calls

    def close(self):
        rc = self.g.stop()
        self.upstream.stop()
        self.op.stop()
        self.dir.cleanup()
        assert rc == 0


@pytest.fixture(scope="module")
def site():
    s = Site()
    yield s
    s.close()


@pytest.fixture(scope="module")
def site_no_end_session():
    """A provider without end_session_endpoint: /.auth/logout redirects to
    post_logout_redirect_uri itself."""
    s = Site(faults=[("discovery_drop_fields",
                      {"fields": ["end_session_endpoint"], "sticky": True})])
    yield s
    s.close()


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def set_cookies(r):
    return r.raw.headers.getlist("Set-Cookie")


# -- open redirects ---------------------------------------------------------
# Every value must end at "/" and never be echoed.  The families are the
# published open-redirect bypasses (slashes and backslashes, whitespace and
# control characters, percent- and double-encoding, user@host,
# scheme-relative, javascript:/data:, CRLF).
REDIRECTS = [
    # absolute and scheme-relative
    "https://evil.example/", "http://evil.example", "HTTPS://EVIL.EXAMPLE",
    "https:evil.example", "https:/evil.example", "https:///evil.example",
    "//evil.example", "///evil.example", "////evil.example/x",
    "//evil.example/%2F..", "//evil.example:443/", "/.//evil.example",
    # backslashes
    "/\\evil.example", "\\\\evil.example", "\\/evil.example",
    "/\\/evil.example", "/\\\\evil.example", "\\evil.example",
    # user@host
    "https://127.0.0.1@evil.example/", "//user:pass@evil.example",
    "@evil.example", "https://evil.example\\@127.0.0.1/",
    # whitespace and control characters
    " //evil.example", "\t//evil.example", "/\t/evil.example",
    "/\n/evil.example", "/\r/evil.example", "\x00//evil.example",
    "/\x0b/evil.example", "/ /evil.example", "\x7f//evil.example",
    # percent- and double-encoding
    "/%2F%2Fevil.example", "/%2f/evil.example", "%2F%2Fevil.example",
    "/%252F%252Fevil.example", "/%25252F%25252Fevil.example",
    "/%2525252F%2525252Fevil.example", "/%5Cevil.example",
    "/%5C%5Cevil.example", "/%255Cevil.example", "/%09/evil.example",
    "/%0a/evil.example", "/%00/evil.example", "/%2e%2e//evil.example",
    "/..//evil.example", "https%3A%2F%2Fevil.example",
    "%68ttps://evil.example",
    # javascript: and data:
    "javascript:alert(1)", "JavaScript:alert(document.domain)",
    "javascript://%0aalert(1)", " javascript:alert(1)",
    "java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    # CRLF (header injection)
    "/%0d%0aSet-Cookie:%20gatehouse=x", "/a\r\nLocation: https://evil.example",
    "/%0d%0aLocation:%20https://evil.example",
    # gatehouse's own endpoints (a loop or a sign-out on landing)
    "/.auth/logout", "/.auth/login?post_login_redirect_uri=//evil.example",
]


def _no_echo(r):
    blob = (r.headers.get("Location", "") + "\n" + "\n".join(set_cookies(r))
            + "\n" + r.text)
    assert EVIL not in blob.lower() and "javascript" not in blob.lower(), blob


@pytest.mark.parametrize("target", REDIRECTS)
def test_post_login_redirect_uri_is_local(site, target):
    g = site.g
    s = requests.Session()
    r = s.get(g.url + "/.auth/login",
              params={"post_login_redirect_uri": target},
              allow_redirects=False, timeout=5)
    assert r.status_code == 302
    _no_echo(r)
    auth = authorize(s, r.headers["Location"], "mallory@contoso.com")
    r = complete(g, s, auth)
    assert r.status_code == 302, r.text[:300]
    assert r.headers["Location"] == "/"
    _no_echo(r)


@pytest.mark.parametrize("target", REDIRECTS)
def test_post_logout_redirect_uri_is_local(site, site_no_end_session,
                                           target):
    # With an end_session_endpoint the provider gets this site's "/".
    g = site.g
    r = requests.get(g.url + "/.auth/logout",
                     params={"post_logout_redirect_uri": target},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert loc.startswith(site.op.endpoint("logout") + "?")
    assert query(loc)["post_logout_redirect_uri"] == g.url + "/"
    assert EVIL not in loc.lower() and "javascript" not in loc.lower()
    # Without one, gatehouse redirects itself.
    g = site_no_end_session.g
    for method in ("GET", "POST"):
        r = requests.request(method, g.url + "/.auth/logout",
                             params={"post_logout_redirect_uri": target},
                             allow_redirects=False, timeout=5)
        assert r.status_code == 302
        assert r.headers["Location"] == "/"
        _no_echo(r)


def test_redirect_variants_are_many():
    assert len(set(REDIRECTS)) == len(REDIRECTS) >= 40


def test_local_return_paths_still_work(site):
    """The filter is not a wall: ordinary paths on this site survive."""
    for target in ("/reports/q1?x=1&y=%2Fz", "/a/b#frag", "/@user"):
        s = requests.Session()
        r = s.get(site.g.url + "/.auth/login",
                  params={"post_login_redirect_uri": target},
                  allow_redirects=False, timeout=5)
        auth = authorize(s, r.headers["Location"], "mallory@contoso.com")
        assert complete(site.g, s, auth).headers["Location"] == target


# -- forged identity headers ------------------------------------------------
def _signed_in_cookie(site, user="ivan@contoso.com"):
    s, _ = sign_in(site.g, user)
    return s.cookies.get("gatehouse")


def _echoes(out):
    """The upstream's echo bodies in a raw HTTP answer stream."""
    found = []
    for m in re.finditer(rb'\{"method": .*?"body_sha256": "[0-9a-f]{64}"\}',
                         out, re.S):
        found.append(json.loads(m.group(0)))
    return found


def _hdrs(echo):
    out = {}
    for k, v in echo["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


IDENTITY = ["x-forwarded-user", "x-forwarded-email",
            "x-ms-client-principal-name", "x-ms-client-principal-id",
            "x-ms-client-principal-idp", "x-ms-client-principal"]

FORGED = {
    "other-cases": b"x-FORWARDED-user: admin\r\nX-FORWARDED-USER: admin\r\n"
                   b"x-ms-client-principal-NAME: admin\r\n",
    "underscores": b"X_Forwarded_User: admin\r\nx_forwarded-user: admin\r\n"
                   b"X_MS_CLIENT_PRINCIPAL_NAME: admin\r\n"
                   b"x_ms_client_principal: e30=\r\n",
    "repeated": b"X-Forwarded-User: admin\r\nX-Forwarded-User: root\r\n"
                b"X-MS-CLIENT-PRINCIPAL-ID: 0\r\n"
                b"X-MS-CLIENT-PRINCIPAL-ID: 1\r\n",
    "connection-named": b"Connection: X-Forwarded-User, "
                        b"X-MS-CLIENT-PRINCIPAL-NAME, x-forwarded-email, "
                        b"X-MS-CLIENT-PRINCIPAL\r\n"
                        b"X-Forwarded-User: admin\r\n",
    "two-connection-lines": b"Connection: keep-alive\r\n"
                            b"Connection: X-Forwarded-User\r\n",
    "empty-values": b"X-Forwarded-User:\r\nX-MS-CLIENT-PRINCIPAL: \r\n",
    "token-headers": b"X-MS-TOKEN-AAD-ACCESS-TOKEN: forged\r\n"
                     b"x-ms-token-aad-id-token: forged\r\n"
                     b"X-Auth-Request-User: admin\r\n"
                     b"X-Gatehouse-User: admin\r\n",
}

# Forging through the syntax itself: a folded line (obs-fold) continues the
# previous field for some parsers and starts a new one for others, and a
# bare LF ends a line for some and not for others.  RFC 9112 5.2 and 2.2
# let a server refuse both; gatehouse does, with 400 and a close, so no
# reading of them reaches the upstream.
MALFORMED = {
    "obs-fold": b"X-Forwarded-User: adm\r\n in\r\n"
                b"X-MS-CLIENT-PRINCIPAL-NAME:\r\n\tadmin\r\n",
    "folded-into-another": b"X-A: a\r\n X-Forwarded-User: admin\r\n",
    "bare-lf": b"X-A: a\nX-Forwarded-User: admin\r\n",
}


def _send_signed_in(site, cookie, path, extra, chunked=None):
    """One request with extra header lines (and a chunked body), then a
    request that closes the connection; returns the raw answers."""
    head = (b"%s %s HTTP/1.1\r\nHost: x\r\n" % (
        b"POST" if chunked else b"GET", path.encode()))
    if cookie:
        head += b"Cookie: gatehouse=" + cookie.encode() + b"\r\n"
    head += extra
    if chunked is not None:
        head += b"Transfer-Encoding: chunked\r\n\r\n" + chunked
    else:
        head += b"\r\n"
    return raw_request(site.g.port, head + LAST, timeout=5)


def _first_echo(out):
    """The echo of the request under test (not the closing one)."""
    echoes = [e for e in _echoes(out) if e["path"] != "/public/last"]
    assert len(echoes) == 1, out[:500]
    return echoes[0]


def _assert_identity_intact(site, out, user):
    assert out.startswith(b"HTTP/1.1 200"), out[:300]
    h = _hdrs(_first_echo(out))
    assert h["x-forwarded-user"] == [user], h
    assert h["x-ms-client-principal-name"] == [user]
    assert h["x-forwarded-email"] == [user]
    assert len(h["x-ms-client-principal"]) == 1
    for name, values in h.items():
        if name in ("x-a",):
            continue
        assert "admin" not in " ".join(values), (name, values)
        assert "_" not in name, name
        assert not name.startswith("x-ms-token-"), name
        assert not name.startswith("x-auth-request-"), name
        assert not name.startswith("x-gatehouse-"), name


@pytest.mark.parametrize("how", list(FORGED))
def test_forged_identity_headers_signed_in(site, how):
    cookie = _signed_in_cookie(site)
    out = _send_signed_in(site, cookie, "/private", FORGED[how])
    _assert_identity_intact(site, out, "ivan@contoso.com")


@pytest.mark.parametrize("how", list(FORGED))
def test_forged_identity_headers_anonymous(site, how):
    out = _send_signed_in(site, None, "/public/x", FORGED[how])
    assert out.startswith(b"HTTP/1.1 200"), out[:300]
    h = _hdrs(_first_echo(out))
    for name in IDENTITY:
        assert name not in h, (name, h[name])
    assert not any("_" in n or n.startswith("x-ms-") for n in h), h


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in",
                                                          "anonymous"])
@pytest.mark.parametrize("how", list(MALFORMED))
def test_forging_through_syntax_refused(site, how, signed_in):
    cookie = _signed_in_cookie(site) if signed_in else None
    before = site.requests_seen()
    out = _send_signed_in(site, cookie, "/private" if signed_in
                          else "/public/x", MALFORMED[how])
    assert out.startswith(b"HTTP/1.1 400"), out[:300]
    assert b"Connection: close" in out.split(b"\r\n\r\n")[0]
    assert out.count(b"HTTP/1.") == 1  # the closing request never read
    assert site.requests_seen() == before


def test_identity_headers_in_chunked_trailers(site):
    cookie = _signed_in_cookie(site)
    body = (b"5\r\nhello\r\n0\r\nX-Forwarded-User: admin\r\n"
            b"X-MS-CLIENT-PRINCIPAL-NAME: admin\r\nX_Forwarded_User: admin\r\n"
            b"X-MS-CLIENT-PRINCIPAL: e30=\r\n\r\n")
    out = _send_signed_in(site, cookie, "/private",
                          b"Trailer: X-Forwarded-User\r\n", chunked=body)
    _assert_identity_intact(site, out, "ivan@contoso.com")
    echo = _first_echo(out)
    assert echo["body_len"] == 5 and _hdrs(echo)["content-length"] == ["5"]
    # The same, with no session: nothing at all.
    out = _send_signed_in(site, None, "/public/x", b"", chunked=body)
    assert not any(n in _hdrs(_first_echo(out)) for n in IDENTITY)


@pytest.mark.parametrize("line", [
    b"X-Forwarded-User : admin", b"X-Forwarded-User\t: admin",
    b"X-Forwarded User: admin", b"X-Forwarded-User\x00x: admin",
    b": admin", b"X-Forwarded-User\x01: admin"],
    ids=["space", "tab", "space-inside", "nul", "empty-name", "ctl"])
def test_bad_header_names_400(site, line):
    before = site.requests_seen()
    out = raw_request(site.g.port, b"GET /public/x HTTP/1.1\r\nHost: x\r\n"
                      + line + b"\r\n\r\n", timeout=5)
    assert out.startswith(b"HTTP/1.1 400"), out[:100]
    assert out.count(b"HTTP/1.") == 1
    assert site.requests_seen() == before


# -- request smuggling ------------------------------------------------------
SMUGGLED = b"GET /public/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
N = len(SMUGGLED)
LAST = b"GET /public/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
POST = b"POST /public/a HTTP/1.1\r\nHost: x\r\n"


def _smuggle(site, data, timeout=10.0):
    """Send data then a closing request; return (the answer, elapsed
    seconds, the echoes, how many requests reached the upstream)."""
    before = site.requests_seen()
    t = time.time()
    out = raw_request(site.g.port, data + LAST, timeout=timeout)
    took = time.time() - t
    echoes = _echoes(out)
    return out, took, echoes, site.requests_seen() - before


# Framing that must be refused: 400 and closed (libevent answers a corrupt
# chunked body with 413; refused and closed all the same).
REFUSED = {
    "cl-and-te": (POST + b"Content-Length: %d\r\nTransfer-Encoding: chunked"
                  b"\r\n\r\n0\r\n\r\n" % (N + 5)) + SMUGGLED,
    "te-and-cl": (POST + b"Transfer-Encoding: chunked\r\nContent-Length: 5"
                  b"\r\n\r\n0\r\n\r\n") + SMUGGLED,
    "te-lowercase-name-and-cl": (POST + b"transfer-encoding: chunked\r\n"
                                 b"content-length: %d\r\n\r\n" % N) + SMUGGLED,
    "te-xchunked-and-cl": (POST + b"Transfer-Encoding: xchunked\r\n"
                           b"Content-Length: %d\r\n\r\n" % N) + SMUGGLED,
    "te-vtab-and-cl": (POST + b"Transfer-Encoding: chunked\x0b\r\n"
                       b"Content-Length: %d\r\n\r\n" % N) + SMUGGLED,
    "te-empty-and-cl": (POST + b"Transfer-Encoding: \r\nContent-Length: %d"
                        b"\r\n\r\n" % N) + SMUGGLED,
    "te-chunked-identity": (POST + b"Transfer-Encoding: chunked, identity"
                            b"\r\n\r\n0\r\n\r\n") + SMUGGLED,
    "te-chunked-chunked": (POST + b"Transfer-Encoding: chunked, chunked\r\n"
                           b"\r\n0\r\n\r\n") + SMUGGLED,
    "te-twice": (POST + b"Transfer-Encoding: chunked\r\n"
                 b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n") + SMUGGLED,
    "te-space-before-colon": (POST + b"Transfer-Encoding : chunked\r\n\r\n"
                              b"0\r\n\r\n") + SMUGGLED,
    "cl-list": (POST + b"Content-Length: 5, 5\r\n\r\nhello") + SMUGGLED,
    "cl-hex": (POST + b"Content-Length: 0x%x\r\n\r\n" % N) + SMUGGLED,
    "cl-negative": (POST + b"Content-Length: -1\r\n\r\n") + SMUGGLED,
    "cl-junk": (POST + b"Content-Length: 5x\r\n\r\nhello") + SMUGGLED,
    "cl-empty": (POST + b"Content-Length: \r\n\r\n") + SMUGGLED,
    "cl-inner-space": (POST + b"Content-Length: 3 5\r\n\r\n") + SMUGGLED,
    "cl-overflow": (POST + b"Content-Length: 18446744073709551621\r\n\r\n"
                    b"hello") + SMUGGLED,
    "chunk-size-not-hex": (POST + b"Transfer-Encoding: chunked\r\n\r\n"
                           b"zz\r\nhello\r\n0\r\n\r\n") + SMUGGLED,
    "chunk-size-negative": (POST + b"Transfer-Encoding: chunked\r\n\r\n"
                            b"-5\r\nhello\r\n0\r\n\r\n") + SMUGGLED,
    "chunk-size-junk": (POST + b"Transfer-Encoding: chunked\r\n\r\n"
                        b"5x\r\nhello\r\n0\r\n\r\n") + SMUGGLED,
    "chunk-size-overflow": (POST + b"Transfer-Encoding: chunked\r\n\r\n"
                            b"1ffffffffffffffff\r\nhello\r\n0\r\n\r\n")
    + SMUGGLED,
    "chunk-data-overrun": (POST + b"Transfer-Encoding: chunked\r\n\r\n"
                           b"3\r\nhello\r\n0\r\n\r\n") + SMUGGLED,
    "bare-cr": b"POST /public/a HTTP/1.1\rHost: x\r\nContent-Length: 5\r\n"
               b"\r\nhello" + SMUGGLED,
    "http2-version": b"GET /public/a HTTP/2.0\r\nHost: x\r\n\r\n" + SMUGGLED,
    # RFC 9112 2.2 lets a server take a bare LF as a line end; a proxy
    # that does and a backend that does not read different messages.
    "lf-line-ends": b"POST /public/a HTTP/1.1\nHost: x\nContent-Length: 5\n"
                    b"\nhello" + SMUGGLED,
    "absolute-form": b"GET http://evil.example/public/a HTTP/1.1\r\n"
                     b"Host: x\r\n\r\n" + SMUGGLED,
    # RFC 9112 3.2: a 1.1 request without Host, or with two, is a 400.
    "no-host": b"GET /public/a HTTP/1.1\r\n\r\n" + SMUGGLED,
    "two-hosts": b"GET /public/a HTTP/1.1\r\nHost: x\r\nHost: evil.example"
                 b"\r\n\r\n" + SMUGGLED,
    "host-userinfo": b"GET /public/a HTTP/1.1\r\nHost: evil.example@x\r\n"
                     b"\r\n" + SMUGGLED,
}


# Framing that is invalid or ambiguous: whatever gatehouse makes of it, the
# bytes after the first request are never served as another request (the
# connection is not reused after a framing error), and what the upstream
# gets is one well-framed request.
NO_SMUGGLE = {
    # RFC 9112 6.1/6.3: a coding other than chunked alone, or a
    # parameter, cannot be framed reliably.
    "te-identity-chunked": (POST + b"Transfer-Encoding: identity, chunked"
                            b"\r\n\r\n0\r\n\r\n") + SMUGGLED,
    "te-chunked-param": (POST + b"Transfer-Encoding: chunked;q=1\r\n\r\n"
                         b"0\r\n\r\n") + SMUGGLED,
    "te-quoted": (POST + b"Transfer-Encoding: \"chunked\"\r\n\r\n"
                  b"0\r\n\r\n") + SMUGGLED,
    "te-xchunked": (POST + b"Transfer-Encoding: xchunked\r\n\r\n"
                    b"0\r\n\r\n") + SMUGGLED,
    "te-gzip": (POST + b"Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n")
    + SMUGGLED,
    "te-vtab": (POST + b"Transfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n")
    + SMUGGLED,
    "te-in-http10": (b"POST /public/a HTTP/1.0\r\nHost: x\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    + SMUGGLED,
    # Several or malformed Content-Length values.
    "cl-two-values-0-first": (POST + b"Content-Length: 0\r\n"
                              b"Content-Length: %d\r\n\r\n" % N) + SMUGGLED,
    "cl-two-values-n-first": (POST + b"Content-Length: %d\r\n"
                              b"Content-Length: 0\r\n\r\n" % N) + SMUGGLED,
    "cl-signed": (POST + b"Content-Length: +5\r\n\r\nhello") + SMUGGLED,
    # Chunk sizes that are not 1*HEXDIG.
    "chunk-size-plus": (POST + b"Transfer-Encoding: chunked\r\n\r\n"
                        b"+5\r\nhello\r\n0\r\n\r\n") + SMUGGLED,
    "chunk-size-0x": (POST + b"Transfer-Encoding: chunked\r\n\r\n"
                      b"0x5\r\nhello\r\n0\r\n\r\n") + SMUGGLED,
    "chunk-size-leading-space": (POST + b"Transfer-Encoding: chunked\r\n\r\n"
                                 b" 5\r\nhello\r\n0\r\n\r\n") + SMUGGLED,
    "chunk-size-minus-zero": (POST + b"Transfer-Encoding: chunked\r\n\r\n"
                              b"-0\r\n\r\n") + SMUGGLED,
    # Bare LF ends chunk lines (RFC 9112 allows it only in the head).
    "chunk-lines-bare-lf": (POST + b"Transfer-Encoding: chunked\r\n\r\n"
                            b"5\nhello\n0\n\n") + SMUGGLED,
    # A bare LF or obs-fold hiding a framing header from a stricter peer.
    "bare-lf-reveals-cl": (POST + b"X-A: a\nContent-Length: %d\r\n\r\n" % N)
    + SMUGGLED,
    "fold-hides-te": (POST + b"X-A: a\r\n Transfer-Encoding: chunked\r\n"
                      b"Content-Length: %d\r\n\r\n" % N) + SMUGGLED,
    "underscore-te": (POST + b"Transfer_Encoding: chunked\r\n"
                      b"Content-Length: %d\r\n\r\n" % N) + SMUGGLED,
}


# underscore-te is no framing at all (a header named Transfer_Encoding):
# served by its Content-Length, the odd header dropped as hop-by-hop.
@pytest.mark.parametrize("name", list(REFUSED) + [
    n for n in NO_SMUGGLE if n != "underscore-te"])
def test_smuggling_framing_refused(site, name):
    data = REFUSED[name] if name in REFUSED else NO_SMUGGLE[name]
    out, took, echoes, seen = _smuggle(site, data)
    status = int(out[9:12]) if out.startswith(b"HTTP/1.") else None
    chunk = name.startswith("chunk-") or name == "cl-overflow"
    assert status == 400 or (chunk and status == 413) or (
        name == "http2-version" and status == 505), out[:200]
    assert b"Connection: close" in out.split(b"\r\n\r\n")[0]
    assert out.count(b"HTTP/1.") == 1, out  # and nothing after it
    # raw_request reads until the server closes or 10 s pass.
    assert took < 8, "the connection was not closed"
    assert echoes == [] and seen == 0


# gatehouse's own parser (gateway/http/http1.c) refuses every one of these, so
# they are also held to the stronger outcome below: 400 and closed.
@pytest.mark.parametrize("name", list(NO_SMUGGLE))
def test_smuggling_no_second_request(site, name):
    out, took, echoes, seen = _smuggle(site, NO_SMUGGLE[name])
    paths = [e["path"] for e in echoes]
    assert "/public/smuggled" not in paths, (paths, out[:600])
    # Everything the upstream got came back to us: nothing hidden.
    assert seen == len(echoes), (seen, paths)
    # At most the first request, then (if the connection survived) the
    # closing one; each well framed.
    assert [p for p in paths if p != "/public/last"] in ([], ["/public/a"])
    for e in echoes:
        h = _hdrs(e)
        assert "transfer-encoding" not in h
        assert h.get("content-length", ["0"]) == [str(e["body_len"])]


# Spellings that mean exactly "chunked" or the same length: parsed alike
# by every correct parser, so the request after the body is a real one.
EQUIVALENT = {
    "te-uppercase": POST + b"Transfer-Encoding: CHUNKED\r\n\r\n"
                           b"5\r\nhello\r\n0\r\n\r\n",
    "te-ows": POST + b"Transfer-Encoding:   chunked \t\r\n\r\n"
                     b"5\r\nhello\r\n0\r\n\r\n",
    "cl-leading-zeros": POST + b"Content-Length: 005\r\n\r\nhello",
    "cl-ows": POST + b"Content-Length:  5 \r\n\r\nhello",
}


def test_connection_close_in_a_list(site):
    """"Connection: close, X-Foo" is a close (the token anywhere in the
    list), and X-Foo, named hop-by-hop, does not reach the upstream."""
    out = raw_request(site.g.port, b"GET /public/a HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: X-Foo, close\r\nX-Foo: bar\r\n\r\n"
                      + SMUGGLED, timeout=5)
    head = out.split(b"\r\n\r\n")[0]
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    assert b"Connection: close" in head
    echoes = _echoes(out)
    assert [e["path"] for e in echoes] == ["/public/a"]
    assert "x-foo" not in _hdrs(echoes[0])


def test_duplicate_content_length_refused(site):
    """Two Content-Length fields, even equal ones, are refused (RFC 9112
    6.3 allows it): one rule, no second reading."""
    out, took, echoes, seen = _smuggle(
        site, POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
        + SMUGGLED)
    assert out.startswith(b"HTTP/1.1 400"), out[:200]
    assert b"Connection: close" in out.split(b"\r\n\r\n")[0]
    assert "/public/smuggled" not in [e["path"] for e in echoes]


@pytest.mark.parametrize("name", list(EQUIVALENT))
def test_equivalent_framing_parsed_alike(site, name):
    out, took, echoes, seen = _smuggle(site, EQUIVALENT[name] + SMUGGLED)
    assert [e["path"] for e in echoes] == ["/public/a", "/public/smuggled",
                                           "/public/last"], out[:500]
    assert seen == 3
    first = _hdrs(echoes[0])
    assert echoes[0]["body_len"] == 5 and first["content-length"] == ["5"]
    assert "transfer-encoding" not in first


# -- session attacks --------------------------------------------------------
def _store_state(tmp):
    p = subprocess.run(["mdb_stat", "-a", os.path.join(tmp, "sessions")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    entries = sum(int(x) for x in re.findall(r"Entries: (\d+)", p.stdout))
    st = os.stat(os.path.join(tmp, "sessions", "data.mdb"))
    return entries, st.st_blocks


def test_session_fixation_planted_cookie_is_replaced(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    attacker, _ = sign_in(g, "mallory@contoso.com")
    planted = attacker.cookies.get("gatehouse")
    for value in (planted, secrets.token_urlsafe(32)):
        victim = requests.Session()
        victim.cookies.set("gatehouse", value)
        url = begin_login(g, victim, login_url=g.url + "/.auth/login")
        r = complete(g, victim, authorize(victim, url, "victim@contoso.com"))
        assert r.status_code == 302
        new = re.search(r"gatehouse=([^;]+)", r.headers["Set-Cookie"])
        assert new and new.group(1) != value
        me = requests.get(g.url + "/.auth/me", timeout=5,
                          cookies={"gatehouse": new.group(1)}).json()
        assert me["user_id"] == "victim@contoso.com"
    # The planted id is still the attacker's, never the victim's.
    me = requests.get(g.url + "/.auth/me", cookies={"gatehouse": planted},
                      timeout=5).json()
    assert me["user_id"] == "mallory@contoso.com"


def test_cookie_copied_after_signout_refused(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "erin@contoso.com")
    copy = s.cookies.get("gatehouse")
    entries, _ = _store_state(tmp)
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    assert _store_state(tmp)[0] < entries  # the record is gone
    before = upstream.stats()["requests"]
    c = {"gatehouse": copy}
    r = requests.get(g.url + "/private", cookies=c, headers=HTML,
                     allow_redirects=False, timeout=5)
    assert to_sign_in(r), (r.status_code, r.headers)
    r = requests.get(g.url + "/private", cookies=c, headers=JSON, timeout=5)
    assert r.status_code == 401
    assert requests.get(g.url + "/.auth/me", cookies=c,
                        timeout=5).status_code == 401
    assert requests.post(g.url + "/.auth/refresh", cookies=c,
                         timeout=5).status_code == 401
    assert upstream.stats()["requests"] == before + 1


def _cookie_cases(valid):
    return {
        "empty": "gatehouse=",
        "name-only": "gatehouse",
        "oversized": "gatehouse=" + "A" * 8000,
        "binary-ish": "gatehouse=" + "%00%ff\\\"'<>" * 200,
        "valid-then-junk": "gatehouse=%s; gatehouse=junk" % valid,
        "junk-then-valid": "gatehouse=junk; gatehouse=%s" % valid,
        "valid-twice": "gatehouse=%s; gatehouse=%s" % (valid, valid),
        "quoted": 'gatehouse="%s"' % valid,
        "truncated": "gatehouse=" + valid[:-1],
        "extended": "gatehouse=" + valid + "A",
        "other-case-name": "GateHouse=" + valid,
        "padded-base64": "gatehouse=" + valid + "=",
    }


def test_malformed_session_cookies_are_signed_out(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    s, _ = sign_in(g, "frank@contoso.com")
    valid = s.cookies.get("gatehouse")
    before = upstream.stats()["requests"]
    for name, header in _cookie_cases(valid).items():
        r = requests.get(g.url + "/private", headers=dict(HTML, Cookie=header),
                         allow_redirects=False, timeout=5)
        assert to_sign_in(r), (name, r.status_code, r.headers)
        r = requests.get(g.url + "/.auth/me",
                         headers=dict(JSON, Cookie=header), timeout=5)
        assert r.status_code == 401, name
    # Two Cookie lines, each with a gatehouse cookie.
    for a, b in ((valid, "junk"), ("junk", valid), (valid, valid)):
        out = raw_request(g.port, b"GET /.auth/me HTTP/1.1\r\nHost: x\r\n"
                          b"Cookie: gatehouse=%s\r\nCookie: gatehouse=%s\r\n"
                          b"Connection: close\r\n\r\n" % (a.encode(),
                                                          b.encode()))
        assert out.startswith(b"HTTP/1.1 401"), (a[:4], b[:4], out[:100])
    assert upstream.stats()["requests"] == before + 1
    # Still alive, and the real session still works on its own.
    assert s.get(g.url + "/private", timeout=5).status_code == 200


def test_ten_thousand_forged_session_ids(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    sign_in(g, "gina@contoso.com")
    entries, blocks = _store_state(tmp)
    up0 = upstream.stats()["requests"]
    statuses = {}
    lock = threading.Lock()

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)
        mine = {}
        for i in range(2500):
            if i % 4 == 0:
                v = secrets.token_urlsafe(32)  # the real shape
            elif i % 4 == 1:
                v = secrets.token_urlsafe(1 + i % 100)
            elif i % 4 == 2:
                v = secrets.token_hex(32)
            else:
                v = secrets.token_urlsafe(32)[:-2] + "%%%02X" % (i % 256)
            path = "/private" if i % 2 else "/.auth/me"
            c.request("GET", path, headers={"Cookie": "gatehouse=" + v,
                                            "Accept": "text/html"})
            r = c.getresponse()
            r.read()
            mine[r.status] = mine.get(r.status, 0) + 1
        c.close()
        with lock:
            for k2, v2 in mine.items():
                statuses[k2] = statuses.get(k2, 0) + v2

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(statuses.values()) == 10000
    assert set(statuses) <= {302, 401}, statuses
    assert _store_state(tmp) == (entries, blocks)
    assert upstream.stats()["requests"] == up0 + 1
    assert g.proc.alive()


# -- exhaustion -------------------------------------------------------------
SLOW = 1000


def test_slow_header_senders_do_not_starve_others(op, tmp, upstream):
    """1,000 connections send their request head one byte a second
    (slowloris); normal clients are still answered at once, and the slow
    ones are cut at header_timeout, counted from their first byte, however
    steadily they drip."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < SLOW + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (min(hard, SLOW + 1000), hard))
    g = start_gateway(op, tmp, upstream, ["header_timeout = 4s"])
    head = b"GET /public/slow HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n\r\n"
    socks = []
    for _ in range(SLOW):
        s = socket.create_connection(("127.0.0.1", g.port), 5)
        s.setblocking(False)
        socks.append(s)
    closed = set()
    t0 = time.time()
    worst = 0.0
    for i in range(8):  # one byte a second for 8 seconds
        for j, s in enumerate(socks):
            if j in closed:
                continue
            try:
                s.send(head[i:i + 1])
                data = s.recv(4096)
                if data == b"" or data.startswith(b"HTTP/1.1 408"):
                    closed.add(j)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(j)
        t = time.time()
        r = requests.get(g.url + "/public/fast", timeout=5)
        worst = max(worst, time.time() - t)
        assert r.status_code == 200
        if i < 3:
            assert len(closed) == 0, "cut before header_timeout"
        time.sleep(max(0.0, t0 + i + 1 - time.time()))
    # By now (8 s > header_timeout) every slow connection was cut.
    deadline = time.time() + 3
    while len(closed) < SLOW and time.time() < deadline:
        for j, s in enumerate(socks):
            if j in closed:
                continue
            try:
                data = s.recv(4096)
                if data == b"" or data.startswith(b"HTTP/1.1 408"):
                    closed.add(j)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(j)
        time.sleep(0.05)
    for s in socks:
        s.close()
    assert len(closed) == SLOW, len(closed)
    st = upstream.stats()
    assert st["requests"] == 8 + 1  # the fast ones and this call
    assert requests.get(g.url + "/public/after", timeout=5).status_code == 200


def test_header_count_and_size_431(site):
    before = site.requests_seen()
    url = site.g.url + "/public/x"
    r = requests.get(url, headers={"X-H%d" % i: "v" for i in range(101)},
                     timeout=5)
    assert r.status_code == 431 and r.headers.get("Connection") == "close"
    r = requests.get(url, headers={"X-Big": "v" * (17 * 1024)}, timeout=5)
    assert r.status_code == 431
    r = requests.get(url, headers={"X-H%d" % i: "v" * 200 for i in range(90)},
                     timeout=5)
    assert r.status_code == 431
    r = requests.get(url, headers=dict(JSON, **{"X-H%d" % i: "v"
                                                for i in range(101)}),
                     timeout=5)
    assert r.status_code == 431 and r.json()["error"] == "headers_too_large"
    assert site.requests_seen() == before
    assert requests.get(url, headers={"X-H%d" % i: "v" for i in range(50)},
                        timeout=5).status_code == 200


def test_signin_flood_from_one_browser(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream, ["max_pending_logins = 5"])
    entries, _ = _store_state(tmp)
    s = requests.Session()
    urls = []
    for i in range(60):
        r = s.get(g.url + "/.auth/login",
                  params={"post_login_redirect_uri": "/p%d" % i},
                  allow_redirects=False, timeout=5)
        assert r.status_code == 302
        urls.append(r.headers["Location"])
        flows = [c for c in s.cookies if c.name.startswith("gatehouse_flow_")]
        assert len(flows) <= 5, len(flows)
    # Nothing is kept server-side for a sign-in that was only started.
    assert _store_state(tmp)[0] == entries
    cookie_header = "; ".join("%s=%s" % (c.name, c.value) for c in s.cookies)
    assert len(cookie_header) < 4096
    # The latest one still completes.
    r = complete(g, s, authorize(requests.Session(), urls[-1], "h@x.com"))
    assert r.status_code == 302 and r.headers["Location"] == "/p59"


# -- Host header injection --------------------------------------------------
HOSTILE_HOSTS = {
    "host": {"Host": EVIL},
    "x-forwarded-host": {"X-Forwarded-Host": EVIL,
                         "X-Forwarded-Proto": "https"},
    "forwarded": {"Forwarded": "host=%s;proto=https" % EVIL},
    "host-with-port": {"Host": EVIL + ":8443"},
}


@pytest.fixture(scope="module")
def trusted_site():
    """gatehouse believing X-Forwarded-* from loopback: still, nothing the
    browser sees may be built from them."""
    s = Site(extra=["trusted_proxies = 127.0.0.1"])
    yield s
    s.close()


def _host_free(r):
    blob = "\n".join("%s: %s" % kv for kv in r.raw.headers.items())
    blob += "\n" + r.text
    assert EVIL not in blob, blob[:2000]
    for c in set_cookies(r):
        assert "domain=" not in c.lower(), c


@pytest.mark.parametrize("how", list(HOSTILE_HOSTS))
@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted",
                                                         "trusted-proxy"])
def test_host_header_never_used(site, trusted_site, how, trusted):
    st = trusted_site if trusted else site
    g, hdr = st.g, HOSTILE_HOSTS[how]
    cookie = _signed_in_cookie(st, "host@contoso.com")

    def get(path, accept=HTML, method="GET", cookies=None):
        return requests.request(method, g.url + path,
                                headers=dict(accept, **hdr), cookies=cookies,
                                allow_redirects=False, timeout=5)

    # A protected page sends the browser to the provider itself, with
    # this gateway's own redirect_uri, never one built from the request.
    r = get("/private")
    assert to_sign_in(r), (r.status_code, r.headers)
    assert query(r.headers["Location"])["redirect_uri"] == \
        g.url + "/.auth/callback"
    _host_free(r)
    r = get("/.auth/login?post_login_redirect_uri=/x")
    assert r.headers["Location"].startswith(st.op.endpoint("authorize"))
    assert query(r.headers["Location"])["redirect_uri"] == \
        g.url + "/.auth/callback"
    _host_free(r)
    r = get("/.auth/logout", cookies={"gatehouse": cookie})
    assert query(r.headers["Location"])["post_logout_redirect_uri"] == \
        g.url + "/.auth/logout/complete"
    _host_free(r)
    for path, accept in [("/.auth/callback?error=access_denied", HTML),
                         ("/.auth/callback?code=a&state=b", HTML),
                         ("/.auth/callback?code=a&code=b", JSON),
                         ("/.auth/me", JSON), ("/private", JSON),
                         ("/public/%2e%2e/%2e%2e/x", HTML),
                         ("/public/a%2fb", JSON), ("/.auth/nope", HTML),
                         ("/.auth/healthz", HTML)]:
        r = get(path, accept)
        _host_free(r)
    # A full sign-in under the hostile header lands on a local path.
    s = requests.Session()
    r = s.get(g.url + "/.auth/login?post_login_redirect_uri=/landing",
              headers=hdr, allow_redirects=False, timeout=5)
    _host_free(r)
    auth = authorize(s, r.headers["Location"], "host@contoso.com")
    r = s.get(auth["location"], headers=hdr, allow_redirects=False, timeout=5)
    assert r.status_code == 302 and r.headers["Location"] == "/landing"
    _host_free(r)
