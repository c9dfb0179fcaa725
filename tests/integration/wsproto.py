# SPDX-License-Identifier: ISC
"""A small RFC 6455 implementation for the tests: frames both ways, the
client handshake, and the Accept a key calls for (Python stdlib only)."""
import base64
import hashlib
import os
import socket
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def encode_frame(opcode, payload, mask):
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    # XOR with the repeated key, fast enough for a MiB.
    k = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")) \
        .to_bytes(n, "big") if n else b""
    return head + key + masked


def read_frame(sock):
    """(fin, opcode, payload), unmasking when the frame is masked."""
    b0, b1 = recv_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(sock, 8))[0]
    key = recv_exact(sock, 4) if b1 & 0x80 else None
    payload = recv_exact(sock, n) if n else b""
    if key:
        k = (key * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^
                   int.from_bytes(k, "big")).to_bytes(n, "big")
    return bool(b0 & 0x80), b0 & 0x0F, payload


def read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = sock.recv(1)
        if not c:
            break
        buf += c
    return buf


def parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return status, hdrs


class Client:
    """A scripted WebSocket client over a raw socket."""

    def __init__(self, port, path="/ws", headers=None, timeout=10.0,
                 ssl_context=None):
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock,
                                                server_hostname="127.0.0.1")
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port,
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + self.key,
                 "Sec-WebSocket-Version: 13"]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = read_head(self.sock)
        self.status, self.headers = parse_head(raw)
        self.raw = raw

    def body(self):
        """The rest of a non-101 answer (until close or its length)."""
        n = int(self.headers.get("content-length", "0"))
        return recv_exact(self.sock, n) if n else b""

    def send(self, payload, opcode=None):
        if opcode is None:
            opcode = 1 if isinstance(payload, str) else 2
        if isinstance(payload, str):
            payload = payload.encode()
        self.sock.sendall(encode_frame(opcode, payload, True))

    def recv(self):
        fin, op, payload = read_frame(self.sock)
        return op, payload

    def close(self):
        """The closing handshake: our close frame, the peer's, then the
        TCP close (closing before the peer's close frame is read would
        turn our close into a reset)."""
        try:
            self.sock.sendall(encode_frame(8, struct.pack("!H", 1000), True))
            self.sock.settimeout(10)
            while True:
                _, op, _ = read_frame(self.sock)
                if op == 8:
                    break
        except (OSError, EOFError):
            pass
        self.sock.close()

    def closed_within(self, seconds):
        """True when the gateway closes the socket within seconds (frames
        that still arrive are read and dropped)."""
        self.sock.settimeout(seconds)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True
