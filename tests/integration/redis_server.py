# SPDX-License-Identifier: ISC
"""A real redis-server for the tests: started on a free 127.0.0.1 port with
its own directory, AOF on (appendonly yes, appendfsync always), stopped by
its PID; restartable on the same port and directory (the same data).  Also
a tiny RESP client, so the tests need nothing beyond the standard library.

    r = RedisServer(tmp)                       # or password="s3cret"
    r.command("PING")                          # -> "PONG"
    r.stop(signal.SIGKILL); r.start()          # same port, same AOF
    r.url                                      # redis://127.0.0.1:PORT
"""
import os
import signal
import socket
import time

from conftest import Proc, free_port

REDIS_SERVER = "/usr/bin/redis-server"


class RedisError(Exception):
    """An error reply (-ERR ...)."""


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ValueError("not RESP: %r" % line[:40])


class RedisServer:
    """redis-server on a free loopback port (or `port`), data in
    tmp/<name>; password sets requirepass."""

    def __init__(self, tmp, password=None, port=None, name="redis",
                 start=True):
        self.tmp = tmp
        self.name = name
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.password = password
        self.proc = None
        self.log_path = os.path.join(tmp, name + ".log")
        self.starts = 0
        if start:
            self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def _write_conf(self):
        conf = os.path.join(self.dir, "redis.conf")
        lines = [
            "bind 127.0.0.1",
            "port %d" % self.port,
            "dir %s" % self.dir,
            "daemonize no",
            "appendonly yes",
            "appendfsync always",
            'save ""',
            "protected-mode yes",
            "logfile \"\"",
        ]
        if self.password is not None:
            lines.append("requirepass %s" % self.password)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf

    def start(self, timeout=10.0):
        """Start (or start again, on the same port and directory)."""
        conf = self._write_conf()
        self.starts += 1
        self.proc = Proc([REDIS_SERVER, conf],
                         "%s.%d" % (self.log_path, self.starts))
        end = time.time() + timeout
        while True:
            if not self.proc.alive():
                raise RuntimeError("redis-server exited:\n" +
                                   self.proc.log()[-2000:])
            try:
                if self.command("PING") == "PONG":
                    return self
            except (OSError, ConnectionError, RedisError):
                pass
            if time.time() > end:
                raise TimeoutError("redis-server did not answer")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM):
        """Stop by PID (SIGKILL: as a crash; the AOF keeps what was
        acknowledged, appendfsync always)."""
        if self.proc is not None:
            self.proc.stop(sig)

    def restart(self, sig=signal.SIGTERM):
        self.stop(sig)
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def command(self, *args, timeout=5.0):
        """One command (auth first when there is a password); the reply as
        str (status), int, bytes, None or list; RedisError for -ERR."""
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout) as s:
            r = _Reader(s)
            if self.password is not None:
                s.sendall(_encode(["AUTH", self.password]))
                r.reply()
            s.sendall(_encode(list(args)))
            return r.reply()

    def session_keys(self):
        """The keys of gatehouse's session records."""
        return sorted(k.decode() for k in self.command("KEYS",
                                                       "gatehouse:s:*"))
