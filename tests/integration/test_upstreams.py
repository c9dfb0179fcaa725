# SPDX-License-Identifier: ISC
"""Named upstreams (upstream.NAME = URL, route ... upstream=NAME) through the
real binary: three real upstreams started by the test (the default and two
named ones, one of them on a unix socket), each saying who it is and
counting its connections; --check's refusals and warnings; a SIGHUP that
adds one; a WebSocket tunnel to a named one."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import requests

from conftest import BIN, HERE, PY, Gatehouse, Proc, wait_file
from wsproto import Client


class Named:
    """upstream.py in its own directory, saying `name` in every echo."""

    def __init__(self, tmp, name, unix=False):
        d = os.path.join(tmp, name)
        os.mkdir(d)
        pf = os.path.join(d, "port")
        argv = [PY, os.path.join(HERE, "upstream.py"), "--port-file", pf,
                "--name", name]
        self.sock = os.path.join(d, "up.sock") if unix else None
        if unix:
            argv += ["--unix", self.sock]
        self.proc = Proc(argv, os.path.join(d, "log"))
        port = int(wait_file(pf))
        self.url = "unix:" + self.sock if unix else \
            "http://127.0.0.1:%d" % port

    def stats(self):
        """Its counters, asked directly (that is one connection more)."""
        if self.sock is None:
            return requests.get(self.url + "/stats", timeout=5).json()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.sock)
        s.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"\r\n")
        raw = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            raw += c
        s.close()
        return json.loads(raw.split(b"\r\n\r\n", 1)[1])

    def stop(self):
        self.proc.stop()


def three(tmp):
    return (Named(tmp, "main"), Named(tmp, "api"),
            Named(tmp, "sock", unix=True))


def conf_lines(main, api, sock):
    return ["upstream = " + main.url,
            "upstream.api = %s/v1" % api.url,
            "upstream.sock = " + sock.url,
            "route /api/* allow anonymous upstream=api",
            "route /s/* allow anonymous identity=off upstream=sock",
            "route /* allow anonymous"]


def test_each_route_reaches_only_its_upstream_and_each_pool_keeps_alive(tmp):
    ups = main, api, sock = three(tmp)
    try:
        # One worker: a client's keep-alive connection and every upstream
        # pool are that worker's, so the counts below are exact.
        g = Gatehouse(tmp, conf_lines(*ups) + ["workers = 1",
                                               "trusted_proxies = 127.0.0.1"])
        before = {u.url: u.stats()["connections"] for u in ups}
        want = {"main": 0, "api": 0, "sock": 0}
        with requests.Session() as s:
            for i in range(10):
                for path, name in (("/x/%d" % i, "main"),
                                   ("/api/y/%d" % i, "api"),
                                   ("/s/z/%d" % i, "sock")):
                    r = s.get(g.url + path, timeout=10)
                    assert r.status_code == 200, r.text
                    e = r.json()
                    assert e["upstream"] == name, (path, e)
                    # The named upstream's prefix goes in front; the Host
                    # is the upstream's own.
                    assert e["path"] == ("/v1" + path if name == "api"
                                         else path)
                    host = dict((k.lower(), v) for k, v in e["headers"])
                    assert host["host"] == (
                        "localhost" if name == "sock"
                        else urlhost(main if name == "main" else api))
                    want[name] += 1
        after = {u.url: u.stats() for u in ups}
        for u in ups:
            st = after[u.url]
            # Asked directly twice (before, after): the rest came from
            # gatehouse, one connection per pool for 10 requests each.
            assert st["connections"] - before[u.url] - 1 == 1, (u.url, st)
            # stats requests: the two direct ones.
            assert st["requests"] - 2 == want[st["upstream"]], st
        # Forward-auth answers from the route table alone: a route with
        # upstream= is judged like any other, and no upstream is called.
        r = requests.get(g.url + "/.auth/verify", timeout=10, headers={
            "X-Forwarded-Method": "GET", "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "app.example", "X-Forwarded-Uri": "/api/q"})
        assert r.status_code == 200, r.text
        assert {u.url: u.stats()["requests"] for u in ups} == \
            {u.url: after[u.url]["requests"] + 1 for u in ups}
        assert g.stop() == 0
    finally:
        for u in ups:
            u.stop()


def eventually(fn, what, timeout=10.0):
    end = time.time() + timeout
    while not fn():
        assert time.time() < end, what
        time.sleep(0.05)


def urlhost(u):
    return u.url.split("//", 1)[1]


def test_upstream_error_names_the_named_upstream(tmp):
    main = Named(tmp, "main")
    try:
        # A named upstream nobody listens on: 502 for its routes only.
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        dead.close()
        g = Gatehouse(tmp, ["upstream = " + main.url,
                            "upstream.gone = http://127.0.0.1:%d" % port,
                            "route /gone/* allow anonymous upstream=gone",
                            "route /* allow anonymous"])
        assert requests.get(g.url + "/gone/x", timeout=10).status_code == 502
        assert g.loggrep(r"upstream_error .*upstream=gone")
        assert requests.get(g.url + "/ok", timeout=10).json()["upstream"] == \
            "main"
        assert g.stop() == 0
    finally:
        main.stop()


def check(tmp, text):
    path = os.path.join(tmp, "c.conf")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([BIN, "-c", path, "--check"], capture_output=True,
                       text=True, cwd=tmp)
    return p.returncode, p.stdout + p.stderr, path


BASE = "listen = 127.0.0.1:9\nworkers = 1\nupstream = http://127.0.0.1:9\n"


def test_check_refuses_unknown_and_bad_names_and_warns_of_unused(tmp):
    rc, out, path = check(tmp, BASE +
                          "upstream.api = http://127.0.0.1:10\n"
                          "route /api/* allow anonymous upstream=apj\n"
                          "route /* allow anonymous\n")
    assert rc != 0
    assert '%s:5: route: unknown upstream "apj"' % path in out, out
    rc, out, path = check(tmp, BASE +
                          "upstream.api = http://127.0.0.1:10\n"
                          "upstream.spare = unix:/run/spare.sock\n"
                          "route /api/* allow anonymous upstream=api\n"
                          "route /* allow anonymous\n")
    assert rc == 0, out
    assert "%s:5: warning: upstream.spare is not used" % path in out, out
    assert "upstream.api is not used" not in out
    rc, out, path = check(tmp, BASE +
                          "upstream.a/b = http://127.0.0.1:10\n"
                          "upstream.api = https://127.0.0.1:10\n"
                          "upstream.ok = http://127.0.0.1:10\n"
                          "upstream.ok = http://127.0.0.1:11\n"
                          "route /api/* allow anonymous upstream=api\n"
                          "route /* allow anonymous upstream=ok\n")
    assert rc != 0
    assert '%s:4: "upstream.a/b": the name after "upstream." must be' % path in out, out
    assert "%s:5: upstream.api: https upstreams are not supported" % path \
        in out, out
    assert "%s:7: upstream.ok: already set on line 6" % path in out, out
    # The refused upstream.api is one mistake, said once: its route gets
    # no second error.
    assert "unknown upstream \"api\"" not in out, out


def test_reload_adds_a_named_upstream(tmp):
    ups = main, api, sock = three(tmp)
    try:
        g = Gatehouse(tmp, ["upstream = " + main.url,
                            "route /* allow anonymous"])
        assert requests.get(g.url + "/api/a", timeout=10).json()[
            "upstream"] == "main"
        with open(g.conf) as f:
            text = f.read()
        # A route naming an upstream the file does not set is refused;
        # the running configuration stays.
        with open(g.conf, "w") as f:
            f.write(text.replace("route /* allow anonymous",
                                 "route /api/* allow anonymous upstream=api\n"
                                 "route /* allow anonymous"))
        mark = len(g.log())
        os.kill(g.pid, signal.SIGHUP)
        assert g.loggrep(r"configuration 1 stays", timeout=20)
        assert re.search(r'unknown upstream "api"', g.log()[mark:])
        with open(g.conf, "w") as f:
            f.write(text.replace("route /* allow anonymous",
                                 "upstream.api = %s\n"
                                 "upstream.sock = %s\n"
                                 "route /api/* allow anonymous upstream=api\n"
                                 "route /s/* allow anonymous upstream=sock\n"
                                 "route /* allow anonymous"
                                 % (api.url, sock.url)))
        os.kill(g.pid, signal.SIGHUP)
        assert g.loggrep(r"reload: configuration 2 in force: 3 routes, "
                         r"upstream [^ ]+ \(and 2 named\)", timeout=20), \
            g.log()[-2000:]
        # The workers take it from their mail pipes a moment after the
        # log line: a request before that is still on configuration 1.
        eventually(lambda: all(
            requests.get(g.url + path, timeout=10).json()["upstream"] == name
            for path, name in (("/api/a", "api"), ("/s/b", "sock"),
                               ("/c", "main"))
            for _ in range(4)), "configuration 2 on both workers")
        assert g.stop() == 0
    finally:
        for u in ups:
            u.stop()


def test_websocket_tunnel_goes_to_the_routes_upstream(tmp):
    main = Named(tmp, "main")
    pf = os.path.join(tmp, "ws.port")
    logf = os.path.join(tmp, "ws.log")
    ws = Proc([PY, os.path.join(HERE, "ws_echo.py"), "--port-file", pf,
               "--log", logf], os.path.join(tmp, "ws.out"))
    try:
        port = int(wait_file(pf))
        g = Gatehouse(tmp, ["upstream = " + main.url,
                            "upstream.live = http://127.0.0.1:%d" % port,
                            "route /ws allow anonymous upstream=live",
                            "route /* allow anonymous"])
        c = Client(g.port, path="/ws")
        assert c.status == 101, c.raw
        c.send("to the named one")
        assert c.recv() == (1, b"to the named one")
        c.close()
        # The default upstream (a plain HTTP server) never saw it.
        assert main.stats()["requests"] == 1
        assert g.stop() == 0
    finally:
        ws.stop()
        main.stop()
