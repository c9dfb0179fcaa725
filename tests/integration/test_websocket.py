# SPDX-License-Identifier: ISC
"""WebSockets and long streams through the real binary: an RFC 6455 echo
upstream (ws_echo.py), a scripted client (wsproto.py), the tests' OpenID
Provider for the signed-in cases."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, PY, HERE, Gatehouse, Proc, wait_file
from op_client import OP
from signin import sign_in, start_gateway
from wsproto import Client


class EchoUpstream:
    def __init__(self, tmp):
        pf = os.path.join(tmp, "ws.port")
        self.logf = os.path.join(tmp, "ws-requests.log")
        open(self.logf, "w").close()
        self.proc = Proc([PY, os.path.join(HERE, "ws_echo.py"),
                          "--port-file", pf, "--log", self.logf],
                         os.path.join(tmp, "ws-echo.out"))
        self.port = int(wait_file(pf))
        self.url = "http://127.0.0.1:%d" % self.port

    def seen(self):
        with open(self.logf) as f:
            return [json.loads(l) for l in f if l.strip()]

    def stop(self):
        self.proc.stop()


@pytest.fixture
def echo(tmp):
    e = EchoUpstream(tmp)
    yield e
    e.stop()


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def anon_gateway(tmp, echo, extra=()):
    return Gatehouse(tmp, ["upstream = " + echo.url] + list(extra))


def cookie_header(s):
    return "; ".join("%s=%s" % (c.name, c.value) for c in s.cookies)


def test_ws_echo_text_binary_large_and_many(tmp, echo):
    g = anon_gateway(tmp, echo)
    c = Client(g.port, headers={"X-MS-CLIENT-PRINCIPAL-NAME": "forged"})
    assert c.status == 101, c.raw
    assert c.headers["upgrade"].lower() == "websocket"
    c.send("hello")
    assert c.recv() == (1, b"hello")
    c.send(b"\x00\x01\xfe\xff")
    assert c.recv() == (2, b"\x00\x01\xfe\xff")
    big = os.urandom(1 << 20)
    for _ in range(3):
        c.send(big)
        assert c.recv() == (2, big)
    # 10,000 small frames, written while the answers are read (both
    # directions busy at once, back-pressure each way).
    n = 10000

    def writer():
        for i in range(n):
            c.send("m%d" % i)
    t = threading.Thread(target=writer)
    t.start()
    for i in range(n):
        assert c.recv() == (1, b"m%d" % i)
    t.join()
    c.close()
    assert g.loggrep(r"websocket_close id=\w+ reason=closed", timeout=10), g.log()[-2000:]
    seen = [e for e in echo.seen() if e["path"] == "/ws"]
    assert len(seen) == 1 and seen[0]["upgrade"] == "websocket"
    assert seen[0]["user"] is None  # the forged identity was dropped
    assert g.loggrep(r"event=websocket .*status=101")


def test_ws_h2c_and_other_upgrades_stay_stripped(tmp, echo):
    g = anon_gateway(tmp, echo)
    r = requests.get(g.url + "/plain", headers={
        "Upgrade": "h2c", "Connection": "Upgrade, HTTP2-Settings",
        "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA"}, timeout=5)
    assert r.status_code == 200
    assert r.json() == {"upgrade": None, "connection": None}
    # "websocket" without Connection: upgrade is not a handshake either.
    r = requests.get(g.url + "/plain", headers={"Upgrade": "websocket"},
                     timeout=5)
    assert r.status_code == 200 and r.json()["upgrade"] is None


def test_ws_malformed_handshake_and_bad_accept(tmp, echo):
    g = anon_gateway(tmp, echo)
    s = socket.create_connection(("127.0.0.1", g.port), 5)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()
    c = Client(g.port, "/badaccept")
    assert c.status == 502, c.raw
    assert g.loggrep(r"upstream_error .*wrong Sec-WebSocket-Accept")


def test_ws_origin_check(tmp, echo):
    g = anon_gateway(tmp, echo)
    c = Client(g.port, headers={"Origin": "http://evil.example"})
    assert c.status == 403, c.raw
    assert not [e for e in echo.seen() if e["path"] == "/ws"]
    c = Client(g.port, headers={"Origin": "http://127.0.0.1:%d" % g.port})
    assert c.status == 101
    c.send("same site")
    assert c.recv() == (1, b"same site")
    c.close()
    g.stop()
    g2 = Gatehouse(tmp, ["upstream = " + echo.url,
                         "websocket_origin_check = off"], name="gw2")
    c = Client(g2.port, headers={"Origin": "http://evil.example"})
    assert c.status == 101
    c.close()


def test_ws_idle_timeout(tmp, echo):
    g = anon_gateway(tmp, echo, ["websocket_idle_timeout = 2s"])
    c = Client(g.port)
    assert c.status == 101
    for i in range(3):  # traffic keeps it open past the timeout
        time.sleep(1)
        c.send("k")
        assert c.recv() == (1, b"k")
    assert c.closed_within(15)
    assert g.loggrep(r"websocket_close id=\w+ reason=idle")


def test_ws_sigterm_drains_tunnels(tmp, echo):
    g = anon_gateway(tmp, echo, ["drain_timeout = 2s"])
    c = Client(g.port)
    assert c.status == 101
    os.kill(g.pid, signal.SIGTERM)
    time.sleep(0.3)
    # Still open during the drain...
    c.send("during drain")
    assert c.recv() == (1, b"during drain")
    # ...and closed at drain_timeout (1001, going away); gatehouse exits 0.
    c.sock.settimeout(15)
    assert c.recv() == (8, b"\x03\xe9")
    assert c.closed_within(15)
    assert g.proc.p.wait(15) == 0
    assert "reason=drain" in g.log()
    g.stop()


def test_ws_anonymous_handshake_refused_on_protected_route(op, tmp, echo):
    g = start_gateway(op, tmp, echo)
    c = Client(g.port, "/ws")
    assert c.status in (302, 401), c.raw
    c = Client(g.port, "/ws", headers={"Accept": "application/json"})
    assert c.status == 401, c.raw
    assert not [e for e in echo.seen() if e["path"] == "/ws"]


def test_ws_signed_in_and_closed_after_signout(op, tmp, echo, session_store):
    g = start_gateway(op, tmp, echo, store=session_store,
                      extra=["websocket_session_check = 1s"])
    s, _ = sign_in(g, "frank@contoso.com", path="/")
    c = Client(g.port, "/ws", headers={
        "Cookie": cookie_header(s),
        "X-MS-CLIENT-PRINCIPAL-NAME": "forged"})
    assert c.status == 101, c.raw
    c.send("signed in")
    assert c.recv() == (1, b"signed in")
    seen = [e for e in echo.seen() if e["path"] == "/ws"]
    assert seen[0]["user"] == "frank@contoso.com"
    time.sleep(1.5)  # a check or two passes with the session alive
    c.send("still")
    assert c.recv() == (1, b"still")
    r = s.get(g.url + "/.auth/logout", allow_redirects=False, timeout=5)
    assert r.status_code == 302
    # A close frame, 1008 (policy), between the upstream's frames, then
    # the TCP close.
    c.sock.settimeout(10)
    assert c.recv() == (8, b"\x03\xf0")
    assert c.closed_within(10)
    assert g.loggrep(r'websocket_close id=\w+ user="[^"]+" '
                     r'reason=session_ended')


def test_sse_streams_with_gaps_past_upstream_timeout(tmp, echo):
    # 30 events a second apart: 30 s in all, six times upstream_timeout,
    # which is the silence limit, not the total.
    g = anon_gateway(tmp, echo, ["upstream_timeout = 5s"])
    got = []
    with requests.get(g.url + "/sse?n=30&gap=1", stream=True,
                      timeout=(5, 10)) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        for line in r.iter_lines():
            if line.startswith(b"data: "):
                got.append(line[6:])
    assert got == [b"event %d" % i for i in range(30)] + [b"end"]


def test_ws_keys_checked(tmp):
    conf = os.path.join(tmp, "c.conf")

    def check(text):
        with open(conf, "w") as f:
            f.write("upstream = http://127.0.0.1:9\n" + text)
        r = subprocess.run([BIN, "-c", conf, "--check"], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode != 0
        return r.stdout + r.stderr
    out = check("websocket_idle_timeout = soon\n")
    assert ":2: websocket_idle_timeout: expected a duration" in out, out
    out = check("websocket_session_check = 0\n")
    assert "websocket_session_check must be at least 1s" in out, out
    out = check("websocket_origin_check = maybe\n")
    assert ":2: websocket_origin_check" in out, out
