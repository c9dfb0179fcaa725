# SPDX-License-Identifier: ISC
"""A real Redis Sentinel topology for the tests: one redis-server master
(appendonly yes), one replica (replicaof) and three redis-sentinel
processes, each on a free 127.0.0.1 port, with its own directory and
configuration in the test's temp dir, started here and stopped by PID.
Also a tiny RESP client (the tests use Debian's Python only, no redis-py).

    topo = SentinelTopology(tmp)      # started; topo.wait_ready() waits
    topo.kill_master()                # SIGKILL by PID
    topo.wait_failover()              # every sentinel names the replica
    topo.stop()
"""
import os
import signal
import socket
import threading
import time

from conftest import Proc, free_port

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_SENTINEL = "/usr/bin/redis-sentinel"


class RespError(Exception):
    """An error reply (-ERR ...) from a Redis server or sentinel."""


def resp_encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def resp_read(f):
    """One reply from the file f: bytes, int, None, a list, or a RespError
    (returned, not raised, so that pipelines read on)."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return RespError(rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [resp_read(f) for _ in range(n)]
    raise ConnectionError("bad reply %r" % line)


def command(port, *args, password=None, timeout=2.0):
    """Send one command (after AUTH when password is set) and return its
    reply; an error reply is raised as RespError."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        f = s.makefile("rb")
        if password is not None:
            s.sendall(resp_encode(["AUTH", password]))
            r = resp_read(f)
            if isinstance(r, RespError):
                raise r
        s.sendall(resp_encode(list(args)))
        r = resp_read(f)
    if isinstance(r, RespError):
        raise r
    return r


def pairs(reply):
    """A flat [k1, v1, k2, v2, ...] reply as a dict of str."""
    it = iter(reply)
    return {k.decode(): v.decode() if isinstance(v, bytes) else v
            for k, v in zip(it, it)}


class RedisProcess:
    """One redis-server or redis-sentinel on a free port, its config file
    and data in tmp/<name>/, its output in tmp/<name>.log."""

    def __init__(self, tmp, name, lines, sentinel=False):
        self.name = name
        self.port = free_port()
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, name + ".conf")
        self.lines = [
            "port %d" % self.port,
            "bind 127.0.0.1",
            "daemonize no",
            'logfile ""',
            "dir " + self.dir,
        ] + list(lines)
        with open(self.conf, "w") as f:
            f.write("\n".join(self.lines) + "\n")
        self.sentinel = sentinel
        self.proc = None
        self.paused = False
        self.start()

    def start(self):
        binary = REDIS_SENTINEL if self.sentinel else REDIS_SERVER
        self.proc = Proc([binary, self.conf],
                         os.path.join(self.dir, self.name + ".log"),
                         cwd=self.dir)
        end = time.time() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                if not self.proc.alive():
                    raise RuntimeError("%s exited:\n%s" % (
                        self.name, self.proc.log()[-2000:]))
                if time.time() > end:
                    raise TimeoutError("%s never listened" % self.name)
                time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def responsive(self):
        """Running and not paused: it answers."""
        return self.alive() and not self.paused

    def pause(self):
        """SIGSTOP: it keeps its connections open and answers nothing,
        like a hung host or one cut off by a partition."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def kill(self, sig=signal.SIGKILL):
        """Kill by PID (SIGKILL: no goodbye to anyone) and reap it."""
        os.kill(self.proc.pid, sig)
        self.proc.p.wait(10)
        self.proc.log_f.close()

    def stop(self):
        if self.proc is not None and self.proc.alive():
            if self.paused:
                self.resume()
            self.proc.stop(signal.SIGTERM, timeout=10)

    def log(self):
        return self.proc.log()


class SentinelTopology:
    """The master, its replica and the sentinels, started at once.

    password: requirepass of the master and replica (the sentinels then
    get `sentinel auth-pass`); sentinel_password: requirepass of the
    sentinels themselves (and `sentinel sentinel-pass` among them)."""

    def __init__(self, tmp, master_name="gh-master", sentinels=3,
                 password=None, sentinel_password=None, down_after_ms=1000,
                 failover_timeout_ms=3000):
        self.tmp = tmp
        self.master_name = master_name
        self.password = password
        self.sentinel_password = sentinel_password
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.procs = []
        self.sentinels = []
        try:
            self._start(sentinels)
        except BaseException:
            self.stop()
            raise

    def _data_lines(self):
        lines = ["appendonly yes", "appendfsync everysec", 'save ""']
        if self.password is not None:
            lines += ["requirepass " + self.password,
                      "masterauth " + self.password]
        return lines

    def _start(self, n):
        self.master = RedisProcess(self.tmp, "master", self._data_lines())
        self.procs.append(self.master)
        self.replica = RedisProcess(
            self.tmp, "replica", self._data_lines() +
            ["replicaof 127.0.0.1 %d" % self.master.port])
        self.procs.append(self.replica)
        self.data = [self.master, self.replica]
        # Attached is not enough: until its first full sync is done the
        # replica holds nothing, and a master killed then loses it all.
        self._wait(lambda: "state=online" in self._info(
            self.master, "replication").get("slave0", ""),
            "the replica to attach and finish its first sync")
        quorum = n // 2 + 1
        for i in range(n):
            lines = [
                "sentinel resolve-hostnames no",
                "sentinel monitor %s 127.0.0.1 %d %d" % (
                    self.master_name, self.master.port, quorum),
                "sentinel down-after-milliseconds %s %d" % (
                    self.master_name, self.down_after_ms),
                "sentinel failover-timeout %s %d" % (
                    self.master_name, self.failover_timeout_ms),
                "sentinel parallel-syncs %s 1" % self.master_name,
            ]
            if self.password is not None:
                lines.append("sentinel auth-pass %s %s" % (
                    self.master_name, self.password))
            if self.sentinel_password is not None:
                lines += ["requirepass " + self.sentinel_password,
                          "sentinel sentinel-pass " + self.sentinel_password]
            s = RedisProcess(self.tmp, "sentinel%d" % i, lines, sentinel=True)
            self.procs.append(s)
            self.sentinels.append(s)

    def _info(self, server, section):
        text = command(server.port, "INFO", section, password=self.password)
        out = {}
        for line in text.decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    @staticmethod
    def _wait(cond, what, timeout=30.0):
        end = time.time() + timeout
        while True:
            try:
                if cond():
                    return
            except (OSError, RespError, ConnectionError):
                pass
            if time.time() > end:
                raise TimeoutError("gave up waiting for " + what)
            time.sleep(0.05)

    def sentinel_command(self, s, *args):
        return command(s.port, *args, password=self.sentinel_password)

    def sentinel_view(self, s):
        """What sentinel s knows of the master: SENTINEL MASTER as a dict."""
        return pairs(self.sentinel_command(s, "SENTINEL", "MASTER",
                                           self.master_name))

    def master_addr(self, s):
        """(host, port) that sentinel s names for the master, or None."""
        r = self.sentinel_command(s, "SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                  self.master_name)
        if r is None:
            return None
        return r[0].decode(), int(r[1])

    def wait_ready(self, timeout=40.0):
        """Until every live sentinel sees the replica and every other
        sentinel, so that a failover can be agreed on."""
        others = len(self.sentinels) - 1

        def ready():
            for s in self.sentinels:
                if not s.responsive():
                    continue
                v = self.sentinel_view(s)
                if (int(v["num-slaves"]) < 1 or
                        int(v["num-other-sentinels"]) < others or
                        "s_down" in v["flags"]):
                    return False
            return True

        self._wait(ready, "the sentinels to see the replica and each other",
                   timeout)

    def kill_master(self):
        """SIGKILL the current master by its PID; returns the monotonic
        time of the kill."""
        addr = self.master_addr(next(s for s in self.sentinels
                                     if s.responsive()))
        victim = next(p for p in self.data if p.port == addr[1])
        victim.kill()
        self.killed = victim
        return time.monotonic()

    def wait_failover(self, old_port, timeout=60.0):
        """Until every responsive sentinel names a master other than
        old_port; returns that (host, port)."""
        live = [s for s in self.sentinels if s.responsive()]

        def switched():
            addrs = {self.master_addr(s) for s in live}
            return len(addrs) == 1 and None not in addrs and \
                next(iter(addrs))[1] != old_port

        self._wait(switched, "the failover away from port %d" % old_port,
                   timeout)
        return self.master_addr(live[0])

    def sentinel_addrs(self):
        return ["127.0.0.1:%d" % s.port for s in self.sentinels]

    def stop(self):
        """Stop every process by its PID, sentinels first (so that none
        starts a failover while the data servers stop)."""
        for p in reversed(self.procs):
            p.stop()


# What a FakeSentinel does instead of answering: nothing at all, or close.
SILENT = "silent"
CLOSE = "close"
# A sentinel's confirmation of SUBSCRIBE +switch-master.
SUBSCRIBED = b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"


class FakeSentinel:
    """A sentinel impostor on a free 127.0.0.1 port, for hostile-input
    tests: AUTH gets +OK, PING gets the subscribed form of PONG, and
    SENTINEL and SUBSCRIBE get `query` and `subscribe`: raw bytes sent
    as they are, SILENT (read on, never answer), CLOSE (hang up), or a
    callable(sock) that does its own sending.  Threads, stopped with
    stop()."""

    def __init__(self, query, subscribe=None):
        self.query = query
        self.subscribe = subscribe if subscribe is not None else \
            SUBSCRIBED
        self.commands = []
        self.conns = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def addr(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        try:
            f = c.makefile("rb")
            while True:
                req = resp_read(f)
                name = req[0].decode().upper()
                self.commands.append(name)
                if name == "AUTH":
                    c.sendall(b"+OK\r\n")
                    continue
                if name == "PING":
                    c.sendall(resp_encode(["pong", ""]))
                    continue
                what = self.query if name == "SENTINEL" else self.subscribe
                if what == CLOSE:
                    return
                if what == SILENT:
                    continue
                if callable(what):
                    what(c)
                else:
                    c.sendall(what)
        except (OSError, ConnectionError, ValueError, IndexError):
            pass
        finally:
            c.close()

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
