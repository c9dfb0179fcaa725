# SPDX-License-Identifier: ISC
"""The WebSocket test upstream: an RFC 6455 echo server (Python stdlib),
plus /sse, an event stream with a gap between events, and /plain, which
echoes a plain request's Upgrade and Connection fields.  Every request's
method, path and Upgrade field is appended to --log, so a test can tell
what reached it."""
import argparse
import json
import os
import socket
import socketserver
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsproto import accept_for, encode_frame, parse_head, read_frame  # noqa

ARGS = None

# The browser test's page: a WebSocket to its own origin, a text and a
# binary message echoed, the outcome in #result.
PAGE = """<!doctype html><meta charset="utf-8"><title>ws</title>
<p id="result">pending</p>
<script>
const out = document.getElementById("result");
const ws = new WebSocket("ws://" + location.host + "/ws");
ws.binaryType = "arraybuffer";
const got = [];
ws.onopen = () => { ws.send("hello from the browser");
                    ws.send(new Uint8Array([0, 1, 254, 255])); };
ws.onmessage = (e) => {
  got.push(typeof e.data === "string" ? e.data
           : Array.from(new Uint8Array(e.data)).join(","));
  if (got.length === 2) {
    out.textContent = got[0] === "hello from the browser" &&
        got[1] === "0,1,254,255" ? "ok" : "wrong: " + got.join("|");
    ws.close(1000);
  }
};
ws.onerror = () => { out.textContent = "error"; };
ws.onclose = (e) => { if (got.length < 2) out.textContent = "closed " + e.code; };
</script>
"""


def log(entry):
    with open(ARGS.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        buf = b""
        while b"\r\n\r\n" not in buf:
            c = sock.recv(4096)
            if not c:
                return
            buf += c
        head, rest = buf.split(b"\r\n\r\n", 1)
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, path = line.split()[0], line.split()[1]
        _, hdrs = parse_head(b"HTTP/1.1 000 x\r\n" + head.split(b"\r\n", 1)[1]
                             if b"\r\n" in head else b"")
        log({"method": method, "path": path,
             "upgrade": hdrs.get("upgrade"),
             "connection": hdrs.get("connection"),
             "user": hdrs.get("x-ms-client-principal-name"),
             "origin": hdrs.get("origin")})
        if path.startswith("/sse"):
            return self.sse(sock, path)
        if path.startswith("/page.html"):
            body = PAGE.encode()
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; "
                         b"charset=utf-8\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)
            return
        key = hdrs.get("sec-websocket-key")
        if hdrs.get("upgrade", "").lower() != "websocket" or not key:
            body = json.dumps({"upgrade": hdrs.get("upgrade"),
                               "connection": hdrs.get("connection")}).encode()
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json"
                         b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            return
        accept = accept_for(key)
        if path.startswith("/badaccept"):
            accept = accept_for("AAAAAAAAAAAAAAAAAAAAAA==")
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
        self.echo(sock, rest)

    def echo(self, sock, rest):
        # What arrived with the head is replayed through a socketpair-free
        # path: a small buffered reader.
        class R:
            def __init__(self, s, pre):
                self.s, self.pre = s, pre

            def recv(self, n):
                if self.pre:
                    out, self.pre = self.pre[:n], self.pre[n:]
                    return out
                return self.s.recv(n)
        r = R(sock, rest)
        try:
            while True:
                fin, op, payload = read_frame(r)
                if op == 8:
                    sock.sendall(encode_frame(8, payload[:2], False))
                    return
                if op == 9:
                    sock.sendall(encode_frame(10, payload, False))
                    continue
                sock.sendall(encode_frame(op, payload, False))
        except (EOFError, OSError):
            return

    def sse(self, sock, path):
        # /sse?n=30&gap=1.0: n events, gap seconds apart, no length.
        q = dict(p.split("=") for p in path.partition("?")[2].split("&") if "=" in p)
        n, gap = int(q.get("n", "3")), float(q.get("gap", "1"))
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n")
        for i in range(n):
            sock.sendall(b"data: event %d\n\n" % i)
            time.sleep(gap)
        sock.sendall(b"data: end\n\n")
        sock.shutdown(socket.SHUT_WR)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ARGS = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    with open(ARGS.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(ARGS.port_file + ".tmp", ARGS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
