#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""A real HTTP/1.1 upstream for the integration tests.

Run: upstream.py --port-file F [--unix PATH] [--name NAME].  Standard library only.  Each
path is a behaviour a test needs (echo, big bodies, chunked, close-delimited,
slow, reset, hop-by-hop headers, trailers); /stats counts connections so a
test can see the keep-alive pool at work.  With --name, every echo and
/stats say which upstream answered (several upstreams in one test).
"""
import argparse
import hashlib
import json
import os
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STATS = {"connections": 0, "requests": 0, "open": 0, "peak_open": 0}
NAME = None
LOCK = threading.Lock()
BLOCK = bytes(range(256)) * 4096  # 1 MiB pattern


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with LOCK:
            STATS["connections"] += 1
            STATS["open"] += 1
            STATS["peak_open"] = max(STATS["peak_open"], STATS["open"])

    def finish(self):
        try:
            super().finish()
        finally:
            with LOCK:
                STATS["open"] -= 1

    def log_message(self, *args):
        pass

    def q(self, name, default=None):
        v = parse_qs(urlsplit(self.path).query).get(name)
        return v[0] if v else default

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        h = hashlib.sha256()
        left = n
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
        return n - left, h.hexdigest()

    def send_json(self, obj, code=200, extra=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        with LOCK:
            STATS["requests"] += 1
        path = urlsplit(self.path).path
        fn = getattr(self, "p_" + path.strip("/").split("/")[0], None)
        if fn is None:
            fn = self.p_echo
        fn()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_any
    do_HEAD = handle_any

    def __getattr__(self, name):
        # Any other method (WebDAV's MKCOL, LOCK, ..., invented ones) is
        # echoed too, as an app that serves them would.
        if name.startswith("do_") and name[3:].replace("-", "").replace(
                "_", "").isalnum():
            return self.handle_any
        raise AttributeError(name)

    def p_echo(self):
        n, digest = self.read_body()
        self.send_json({
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_len": n,
            "upstream": NAME,
            # Before the digest: tests find echoes by their last member.
            "port": self.server.server_address[1]
            if isinstance(self.server.server_address, tuple) else None,
            "body_sha256": digest,
        })

    def p_stats(self):
        with LOCK:
            self.send_json(dict(STATS, upstream=NAME))

    def p_bytes(self):
        n = int(self.q("n", "0"))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        left = n
        while left > 0:
            k = min(left, len(BLOCK))
            self.wfile.write(BLOCK[:k])
            left -= k

    def p_chunked(self):
        n = int(self.q("n", "0"))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        left = n
        while left > 0:
            k = min(left, 65536)
            self.wfile.write(b"%x\r\n" % k + BLOCK[:k] + b"\r\n")
            left -= k
        trailer = self.q("trailer")
        self.wfile.write(b"0\r\n")
        if trailer:
            self.wfile.write(trailer.encode() + b"\r\n")
        self.wfile.write(b"\r\n")

    def p_close(self):
        n = int(self.q("n", "0"))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(BLOCK[:n])
        self.wfile.flush()
        self.close_connection = True

    def p_status(self):
        code = int(self.q("code", "200"))
        self.send_response(code)
        if code not in (204, 304):
            self.send_header("Content-Length", "0")
        self.send_header("X-Status-Test", str(code))
        self.end_headers()

    def p_slow(self):
        time.sleep(int(self.q("ms", "1000")) / 1000.0)
        self.send_json({"slow": True,
                        "port": self.server.server_address[1]
                        if isinstance(self.server.server_address, tuple)
                        else None})

    def p_stall_body(self):
        # Head and part of the body, then silence.
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(BLOCK[:1000])
        self.wfile.flush()
        time.sleep(int(self.q("ms", "3000")) / 1000.0)

    def p_reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close_connection = True
        self.connection.close()

    def p_answer_reset(self):
        # Answer without reading the body, some time after the head came,
        # then reset the connection (as a server closing with the body
        # unread does).
        time.sleep(int(self.q("ms", "500")) / 1000.0)
        self.send_response(int(self.q("code", "403")))
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close_connection = True
        self.connection.close()

    def p_cut(self):
        # Promise 100000 bytes, send 1000, close.
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(BLOCK[:1000])
        self.wfile.flush()
        self.close_connection = True

    def p_hop(self):
        body = b"hop"
        self.send_response(200)
        self.send_header("Connection", "X-Upstream-Secret")
        self.send_header("X-Upstream-Secret", "1")
        self.send_header("Keep-Alive", "timeout=5")
        self.send_header("Proxy-Authenticate", "Basic")
        self.send_header("Trailer", "X-Foo")
        self.send_header("X-Kept", "yes")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def p_raw(self):
        # A hostile response, written verbatim.
        kind = self.q("kind", "")
        raw = {
            "te_cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "two_cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                      b"Content-Length: 6\r\n\r\nhello!",
            "bad_status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
            "obs_fold": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\n"
                        b"Content-Length: 0\r\n\r\n",
            "te_gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                        b"Content-Length: 2\r\n\r\nok",
            # A well-framed answer with a second one behind it on the
            # same keep-alive connection: whoever reuses the connection
            # next would read SMUGGLED as theirs.
            "trailing_response": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 b"\r\nokHTTP/1.1 200 OK\r\nContent-Length: "
                                 b"8\r\n\r\nSMUGGLED",
            "huge_head": b"HTTP/1.1 200 OK\r\n" + b"".join(
                b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000)
                for i in range(100)) + b"Content-Length: 0\r\n\r\n",
            "many_headers": b"HTTP/1.1 200 OK\r\n" + b"".join(
                b"X-H%d: v\r\n" % i for i in range(300))
            + b"Content-Length: 0\r\n\r\n",
            # Hop-by-hop options named in a second Connection line.
            "two_connection": b"HTTP/1.1 200 OK\r\nConnection: "
                              b"X-Upstream-Secret\r\nConnection: keep-alive"
                              b"\r\n"
                              b"X-Upstream-Secret: 1\r\nX-Kept: yes\r\n"
                              b"Content-Length: 2\r\n\r\nok",
            "chunk_overrun": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                             b"\r\n\r\n2\r\nokSMUGGLED\r\n0\r\n\r\n",
        }[kind]
        self.wfile.write(raw)
        self.wfile.flush()
        # Kept open where the attack needs the connection to live on.
        self.close_connection = kind not in ("trailing_response",
                                             "chunk_overrun")


# socketserver's listen backlog is 5: a burst of a hundred connections
# from the gateway overflows it, and the kernel's retransmission backoff
# (1 s, 3 s, 7 s) then holds requests for longer than any test waits on a
# loaded machine.  A real server listens with hundreds (nginx 511).
BACKLOG = 1024


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = BACKLOG

    def get_request(self):
        sock, _ = super().get_request()
        return sock, ("unix", 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--unix")
    ap.add_argument("--name")
    a = ap.parse_args()
    global NAME
    NAME = a.name
    if a.unix:
        srv = UnixServer(a.unix, Handler)
        port = 0
    else:
        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer.request_queue_size = BACKLOG
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = srv.server_address[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
