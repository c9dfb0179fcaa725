# SPDX-License-Identifier: ISC
"""The streaming reverse proxy, through the real binary (issue: foundation)."""
import hashlib
import http.client
import json
import os
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import SANITIZED, Upstream, raw_request, free_port


def hdrs(echo):
    """The echo's header list as a dict of lower-case name -> [values]."""
    out = {}
    for k, v in echo["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_reaches_upstream(upstream, gatehouse, method):
    g = gatehouse(["upstream = " + upstream.url])
    body = b"x" * 1000 if method in ("POST", "PUT", "PATCH") else None
    r = requests.request(method, g.url + "/echo/a?b=c", data=body, timeout=5)
    assert r.status_code == 200
    e = r.json()
    assert e["method"] == method
    assert e["path"] == "/echo/a?b=c"
    if body:
        assert e["body_len"] == 1000
        assert e["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert g.loggrep(r'access id=\w+ event=proxy client=127\.0\.0\.1 '
                     r'method=%s path="/echo/a" status=200' % method)


def test_head_204_304(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    r = requests.head(g.url + "/bytes?n=12345", timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == "12345"
    assert r.content == b""
    for code in (204, 304):
        r = requests.get(g.url + "/status?code=%d" % code, timeout=5)
        assert r.status_code == code
        assert r.headers["X-Status-Test"] == str(code)
        assert "Transfer-Encoding" not in r.headers
    # The connection is still good for the next request (framing intact).
    s = requests.Session()
    for _ in range(3):
        assert s.get(g.url + "/status?code=204", timeout=5).status_code == 204
        assert s.get(g.url + "/echo", timeout=5).status_code == 200


def test_response_framings(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    want = (bytes(range(256)) * 4096)
    r = requests.get(g.url + "/chunked?n=300000", timeout=10)
    assert r.status_code == 200 and r.content == (want * 1)[:300000]
    r = requests.get(g.url + "/close?n=5000", timeout=10)
    assert r.status_code == 200 and r.content == want[:5000]
    r = requests.get(g.url + "/bytes?n=0", timeout=10)
    assert r.status_code == 200 and r.content == b""


def test_chunked_request_body(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])

    def gen():
        for i in range(10):
            yield b"y" * 1000

    r = requests.post(g.url + "/echo", data=gen(), timeout=5)
    e = r.json()
    assert e["body_len"] == 10000
    h = hdrs(e)
    assert h["content-length"] == ["10000"]
    assert "transfer-encoding" not in h


def test_keepalive_pool_reuses_upstream_connections(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url, "workers = 1"])
    s = requests.Session()
    for _ in range(50):
        assert s.get(g.url + "/echo", timeout=5).status_code == 200
    st = upstream.stats()
    # 50 requests plus this stats call over a handful of connections.
    assert st["requests"] >= 50
    assert st["connections"] <= 3, st


def test_download_1gib_bounded_memory(upstream, gatehouse):
    """A 1 GiB body streams through; the client pauses first so the
    gateway must apply back-pressure; peak RSS stays under 64 MiB."""
    g = gatehouse(["upstream = " + upstream.url])
    n = 1 << 30
    r = requests.get(g.url + "/bytes?n=%d" % n, stream=True, timeout=60)
    assert r.status_code == 200
    time.sleep(2.0)  # a slow client: nothing read yet
    paused_rss = g.peak_rss_kib()
    got = 0
    h = hashlib.sha256()
    block = bytes(range(256)) * 4096
    for chunk in r.iter_content(1 << 20):
        got += len(chunk)
    assert got == n
    peak = g.peak_rss_kib()
    print("peak RSS %d KiB (after the pause %d KiB)" % (peak, paused_rss))
    if not SANITIZED:
        assert peak < 64 * 1024, "peak RSS %d KiB" % peak
    del h, block


def test_upload_limit(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    limit = 16 * 1024 * 1024
    body = os.urandom(limit - 1)
    r = requests.post(g.url + "/echo", data=body, timeout=30)
    assert r.status_code == 200
    assert r.json()["body_len"] == limit - 1
    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    # One byte over is refused before the body is read, with 413.
    s = socket.create_connection(("127.0.0.1", g.port), 5)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
              % (limit + 1))
    resp = s.recv(65536)
    s.close()
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    # Chunked bodies are capped too.
    def gen():
        for _ in range(17):
            yield b"z" * (1024 * 1024)
    try:
        r = requests.post(g.url + "/echo", data=gen(), timeout=30)
        assert r.status_code == 413
    except requests.exceptions.ConnectionError:
        pass  # the gateway may close while we are still sending
    # And the gateway keeps serving.
    assert requests.get(g.url + "/echo", timeout=5).status_code == 200


def test_upload_streams_with_bounded_memory(upstream, gatehouse):
    """A body with a Content-Length streams to the upstream as it
    arrives, with back-pressure: 256 MiB pass and the gateway's memory
    stays flat (it used to hold each body whole, up to max_request_body)."""
    g = gatehouse(["upstream = " + upstream.url, "max_request_body = 1G"])
    n = 256 << 20
    block = os.urandom(1 << 20)
    c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=120)
    c.putrequest("POST", "/echo")
    c.putheader("Content-Length", str(n))
    c.endheaders()
    h = hashlib.sha256()
    for _ in range(n >> 20):
        c.send(block)
        h.update(block)
    r = c.getresponse()
    e = json.loads(r.read())
    c.close()
    assert r.status == 200
    assert e["body_len"] == n and e["body_sha256"] == h.hexdigest()
    assert ["Content-Length", str(n)] in e["headers"]
    peak = g.peak_rss_kib()
    print("peak RSS %d KiB" % peak)
    if not SANITIZED:
        assert peak < 64 * 1024, "peak RSS %d KiB" % peak


def test_upload_answered_early_closes(upstream, gatehouse):
    """The upstream answers before reading a streaming body: the answer
    reaches the client, then the connection closes (what follows on it is
    body, not a request), and neither side's connection is reused."""
    g = gatehouse(["upstream = " + upstream.url])
    before = upstream.stats()["connections"]
    s = socket.create_connection(("127.0.0.1", g.port), 5)
    s.sendall(b"POST /status?code=403 HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 10000000\r\n\r\n" + b"a" * 200000)
    out = b""
    s.settimeout(5)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    head = out.split(b"\r\n\r\n")[0]
    assert out.startswith(b"HTTP/1.1 403"), out[:200]
    assert b"Connection: close" in head
    assert out.count(b"HTTP/1.") == 1
    e = requests.get(g.url + "/echo", timeout=5).json()
    assert e["method"] == "GET"
    # The upstream connection that took part of a body was not pooled.
    assert upstream.stats()["connections"] >= before + 2


def all_stopped(pid):
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            if f.read().rsplit(")", 1)[1].split()[0] != "T":
                return False
    return True


def test_upload_answered_early_then_reset(upstream, gatehouse):
    """The upstream answers an upload early and resets the connection (it
    closes with the body unread), and gatehouse gets to write more of the
    body before it reads: the answer waiting behind the reset is still what
    the client sees, not a 502 for the failed write.  gatehouse is stopped
    while the client's bytes and then the answer arrive, so that it meets
    them in that order."""
    g = gatehouse(["upstream = " + upstream.url])
    before = upstream.stats()["requests"]
    s = socket.create_connection(("127.0.0.1", g.port), 5)
    s.sendall(b"POST /answer_reset?code=403&ms=700 HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 10000000\r\n\r\n" + b"a" * 200000)
    end = time.time() + 5
    while upstream.stats()["requests"] < before + 2 and time.time() < end:
        time.sleep(0.02)
    os.kill(g.pid, signal.SIGSTOP)
    try:
        # A stop is not immediate: the bytes must not be read before every
        # thread has stopped.
        while time.time() < end and not all_stopped(g.pid):
            time.sleep(0.01)
        s.sendall(b"b" * 1000)
        time.sleep(1.5)
    finally:
        os.kill(g.pid, signal.SIGCONT)
    out = b""
    s.settimeout(5)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    head = out.split(b"\r\n\r\n")[0]
    assert out.startswith(b"HTTP/1.1 403"), out[:200]
    assert b"Connection: close" in head
    assert out.count(b"HTTP/1.") == 1
    assert requests.get(g.url + "/echo", timeout=5).json()["method"] == "GET"


def test_hop_by_hop_stripped_both_ways(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    r = requests.get(g.url + "/echo", headers={
        "Connection": "keep-alive, X-Client-Secret",
        "X-Client-Secret": "1",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
        "TE": "trailers",
        "Upgrade": "websocket",
        "X-Client-Kept": "yes",
    }, timeout=5)
    h = hdrs(r.json())
    for name in ("x-client-secret", "keep-alive", "proxy-authorization",
                 "te", "upgrade"):
        assert name not in h, name
    assert h["x-client-kept"] == ["yes"]
    r = requests.get(g.url + "/hop", timeout=5)
    assert r.status_code == 200 and r.content == b"hop"
    for name in ("X-Upstream-Secret", "Keep-Alive", "Proxy-Authenticate",
                 "Trailer"):
        assert name not in r.headers, name
    assert r.headers["X-Kept"] == "yes"
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]


def test_forwarded_headers_untrusted_client(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    r = requests.get(g.url + "/echo", headers={
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Request-Id": "forged-id",
        "X-Forwarded-User": "admin",
        "x-forwarded-user": "admin2",
        "X_Forwarded_User": "admin3",
        "X-MS-CLIENT-PRINCIPAL-NAME": "admin",
        "x-ms-token-aad-access-token": "forged",
    }, timeout=5)
    h = hdrs(r.json())
    assert h["x-forwarded-for"] == ["127.0.0.1"]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["x-forwarded-host"] == ["127.0.0.1:%d" % g.port]
    assert h["x-request-id"] != ["forged-id"]
    for name in ("x-forwarded-user", "x_forwarded_user",
                 "x-ms-client-principal-name", "x-ms-token-aad-access-token"):
        assert name not in h, name
    # The request id the upstream saw is the one in the access log.
    rid = h["x-request-id"][0]
    assert g.loggrep(r"access id=%s " % rid)


def test_forwarded_headers_trusted_proxy(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url,
                   "trusted_proxies = 10.0.0.0/8, 127.0.0.0/8"])
    r = requests.get(g.url + "/echo", headers={
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "app.example.com",
        "X-Request-Id": "abc-123",
        "X-Forwarded-User": "still-forged",
    }, timeout=5)
    h = hdrs(r.json())
    assert h["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"]
    assert h["x-forwarded-proto"] == ["https"]
    assert h["x-forwarded-host"] == ["app.example.com"]
    assert h["x-request-id"] == ["abc-123"]
    assert "x-forwarded-user" not in h  # identity is never taken from a proxy


def test_upstream_refused_502_html_and_json(gatehouse):
    g = gatehouse(["upstream = http://127.0.0.1:%d" % free_port()])
    r = requests.get(g.url + "/x", headers={"Accept": "text/html"}, timeout=5)
    assert r.status_code == 502
    assert r.headers["Content-Type"].startswith("text/html")
    assert "could not be reached" in r.text
    r = requests.get(g.url + "/x", headers={"Accept": "application/json"},
                     timeout=5)
    assert r.status_code == 502
    assert r.json()["error"] == "upstream_unreachable"
    assert g.loggrep(r"upstream_error id=\w+ .*connection refused")


def test_upstream_reset_502(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    r = requests.get(g.url + "/reset", timeout=5)
    assert r.status_code == 502


def test_upstream_hostile_responses_502(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    for kind in ("te_cl", "two_cl", "bad_status", "obs_fold", "te_gzip"):
        r = requests.get(g.url + "/raw?kind=" + kind, timeout=5)
        assert r.status_code == 502, kind
    r = requests.get(g.url + "/raw?kind=continue", timeout=5)
    assert r.status_code == 200 and r.text == "ok"


@pytest.mark.parametrize("kind", ["te_cl", "two_cl", "bad_status",
                                  "obs_fold", "te_gzip", "huge_head",
                                  "many_headers", "chunk_overrun",
                                  "trailing_response"])
def test_hostile_upstream_does_not_poison_the_pool(upstream, gatehouse, kind):
    """Whatever a hostile upstream sends, the next requests on the pool
    get their own answers: a malformed response, or one with bytes after
    it, leaves its connection out of the pool."""
    g = gatehouse(["upstream = " + upstream.url, "workers = 1"])
    s = requests.Session()
    for _ in range(3):  # warm the pool
        assert s.get(g.url + "/echo", timeout=5).status_code == 200
    if kind == "chunk_overrun":
        # The head is out before the body turns bad: the client sees a
        # cut response, never a complete-looking one.
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            s.get(g.url + "/raw?kind=" + kind, timeout=5)
    else:
        r = s.get(g.url + "/raw?kind=" + kind, timeout=5)
        if kind == "trailing_response":
            assert r.status_code == 200 and r.text == "ok"
        else:
            assert r.status_code == 502, (kind, r.status_code, r.text[:100])
    for i in range(20):
        r = s.get(g.url + "/echo?n=%d" % i, timeout=5)
        assert r.status_code == 200, r.text[:200]
        assert r.json()["path"] == "/echo?n=%d" % i
        assert "SMUGGLED" not in r.text
    assert g.proc.alive()


def test_upstream_trailers_dropped(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    r = requests.get(g.url + "/chunked?n=10&trailer=X-Forwarded-User:%20evil",
                     timeout=5)
    assert r.status_code == 200 and len(r.content) == 10
    assert "X-Forwarded-User" not in r.headers


def test_upstream_timeout_504(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url, "upstream_timeout = 1s"])
    t = time.time()
    r = requests.get(g.url + "/slow?ms=20000",
                     headers={"Accept": "application/json"}, timeout=30)
    assert r.status_code == 504
    assert r.json()["error"] == "upstream_timeout"
    assert time.time() - t < 15  # upstream_timeout (1 s), not the 20 s


def test_upstream_cut_mid_body_is_not_complete(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    out = raw_request(g.port, b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Content-Length: 100000" in head
    # The connection is closed after the 1000 bytes the upstream sent:
    # the client can see the response is short.
    assert len(body) == 1000
    # A stalled body past upstream_timeout is cut as well.
    g2 = gatehouse(["upstream = " + upstream.url, "upstream_timeout = 1s"],
                   name="gw2")
    out = raw_request(g2.port, b"GET /stall_body?ms=3000 HTTP/1.1\r\n"
                      b"Host: x\r\n\r\n", timeout=10)
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Content-Length: 1000000" in head and len(body) == 1000
    assert g2.loggrep(r"upstream_error .*reason=\"timeout\"")
    assert requests.get(g.url + "/echo", timeout=5).status_code == 200


def test_client_abort_mid_upload(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", g.port), 5)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 1000000\r\n\r\n" + b"a" * 100000)
        s.close()
    # A client that goes away while the upstream is still working.
    s = socket.create_connection(("127.0.0.1", g.port), 5)
    s.sendall(b"GET /slow?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
    s.close()
    # And one that goes away in the middle of a big download.
    s = socket.create_connection(("127.0.0.1", g.port), 5)
    s.sendall(b"GET /bytes?n=100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(100000)
    s.close()
    time.sleep(1.0)
    assert g.proc.alive()
    assert requests.get(g.url + "/echo", timeout=5).status_code == 200
    assert g.loggrep(r"event=client_gone .*status=(499|200)")


def test_limits_431_414(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url, "max_headers = 20",
                   "max_header_size = 4k", "max_request_line = 1k"])
    many = {"X-H%d" % i: "v" for i in range(30)}
    r = requests.get(g.url + "/echo", headers=many, timeout=5)
    assert r.status_code == 431
    assert r.headers.get("Connection") == "close"
    r = requests.get(g.url + "/echo", headers={"X-Big": "v" * 5000}, timeout=5)
    assert r.status_code == 431
    r = requests.get(g.url + "/echo?" + "q" * 2000, timeout=5)
    assert r.status_code == 414
    r = requests.get(g.url + "/echo", headers={"X-Ok": "v" * 1000}, timeout=5)
    assert r.status_code == 200


def test_bad_header_name_400(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    out = raw_request(g.port, b"GET /echo HTTP/1.1\r\nHost: x\r\n"
                      b"X-Forwarded-User : admin\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:100]


def test_unix_socket_upstream(tmp, gatehouse):
    sock = os.path.join(tmp, "up.sock")
    u = Upstream(tmp, unix=sock)
    try:
        g = gatehouse(["upstream = unix:" + sock + ":/prefix"])
        r = requests.get(g.url + "/echo?x=1", timeout=5)
        assert r.status_code == 200
        assert r.json()["path"] == "/prefix/echo?x=1"
    finally:
        u.stop()


def test_upstream_prefix_and_ipv6_listen(upstream, tmp, gatehouse):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    port = free_port()
    from conftest import Gatehouse, wait_port
    conf = os.path.join(tmp, "v6.conf")
    with open(conf, "w") as f:
        f.write("listen = [::1]:%d\nupstream = %s/base/\nworkers = 1\n"
                % (port, upstream.url))
    from conftest import Proc, BIN
    p = Proc([BIN, "-c", conf], os.path.join(tmp, "v6.log"))
    try:
        wait_port(port, p.p, host="::1")
        r = requests.get("http://[::1]:%d/echo" % port, timeout=5)
        assert r.json()["path"] == "/base/echo"
    finally:
        assert p.stop() == 0


def test_graceful_drain_on_sigterm(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url])
    result = {}

    def slow():
        r = requests.get(g.url + "/slow?ms=1500", timeout=10)
        result["status"] = r.status_code

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    os.kill(g.pid, signal.SIGTERM)
    time.sleep(0.3)
    # No longer accepting.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(g.url + "/echo", timeout=2)
    t.join()
    assert result["status"] == 200
    rc = g.stop()
    assert rc == 0
    assert g.loggrep("SIGTERM: draining")
    assert g.loggrep("stopped")


def test_drain_timeout_bounds_shutdown(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url, "drain_timeout = 1s"])
    def slow():
        try:
            requests.get(g.url + "/slow?ms=30000", timeout=40)
        except requests.exceptions.ConnectionError:
            pass  # cut by the drain deadline, as intended

    t = threading.Thread(target=slow, daemon=True)
    t.start()
    time.sleep(0.3)
    start = time.time()
    assert g.stop() == 0
    assert time.time() - start < 20  # drain_timeout, not the 30 s
    assert g.loggrep("drain timeout")


def test_healthz(gatehouse, upstream):
    g = gatehouse(["upstream = " + upstream.url])
    r = requests.get(g.url + "/.auth/healthz", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = requests.get(g.url + "/.auth/nope", timeout=5)
    assert r.status_code == 404


def test_header_and_idle_timeouts(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url, "header_timeout = 1s",
                   "idle_timeout = 30s"])
    # A connection that never sends a request head is closed after
    # header_timeout.
    silent = socket.create_connection(("127.0.0.1", g.port), 10)
    silent.settimeout(10)
    t = time.time()
    assert silent.recv(100) == b""
    assert time.time() - t < 15  # header_timeout, not idle_timeout
    silent.close()
    # After a first request the connection may idle up to idle_timeout.
    s = socket.create_connection(("127.0.0.1", g.port), 10)
    f = s.makefile("rb")

    def one_response():
        status = f.readline()
        length = 0
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        f.read(length)
        return status

    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert one_response().startswith(b"HTTP/1.1 200")
    time.sleep(1.5)  # past header_timeout, within idle_timeout
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert one_response().startswith(b"HTTP/1.1 200")
    f.close()
    s.close()
