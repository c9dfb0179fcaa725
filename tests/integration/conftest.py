# SPDX-License-Identifier: ISC
"""The integration harness: starts the real build/gatehouse and real helper
servers on free loopback ports, and stops them by PID."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("GATEHOUSE_BIN", os.path.join(ROOT, "build", "gatehouse"))
PY = "/usr/bin/python3"
SANITIZED = os.environ.get("GATEHOUSE_SANITIZED") == "1"
SAN_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
               "runtime error:")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_file(path, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            with open(path) as f:
                data = f.read().strip()
            if data:
                return data
        time.sleep(0.02)
    raise TimeoutError("no " + path)


def wait_port(port, proc=None, timeout=10.0, host="127.0.0.1"):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited early with %s" % proc.returncode)
        try:
            with socket.create_connection((host, port), 0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("port %d never opened" % port)


class Proc:
    """A child process we started and stop by its PID."""

    def __init__(self, argv, log_path, env=None, cwd=None):
        self.log_path = log_path
        self.log_f = open(log_path, "wb")
        self.p = subprocess.Popen(argv, stdout=self.log_f,
                                  stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  stdin=subprocess.DEVNULL)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.p.poll() is None:
            os.kill(self.pid, sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
        self.log_f.close()
        return self.p.returncode

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Upstream:
    def __init__(self, tmp, unix=None):
        pf = os.path.join(tmp, "upstream.port")
        argv = [PY, os.path.join(HERE, "upstream.py"), "--port-file", pf]
        if unix:
            argv += ["--unix", unix]
        self.proc = Proc(argv, os.path.join(tmp, "upstream.log"))
        self.port = int(wait_file(pf))
        self.url = "http://127.0.0.1:%d" % self.port

    def stats(self):
        return requests.get(self.url + "/stats", timeout=5).json()

    def stop(self):
        self.proc.stop()


# Every gatehouse a test starts, so the end of the test stops each one by
# its PID whatever happened (see the autouse fixture below).
STARTED = []


class Gatehouse:
    """build/gatehouse on a free port with the given configuration lines."""

    def __init__(self, tmp, lines, port=None, env=None, name="gw"):
        self.tmp = tmp
        self.port = port or free_port()
        self.conf = os.path.join(tmp, name + ".conf")
        text = "listen = 127.0.0.1:%d\n" % self.port
        if not any(l.startswith("workers") for l in lines):
            text += "workers = 2\n"
        text += "\n".join(lines) + "\n"
        with open(self.conf, "w") as f:
            f.write(text)
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        e.update(env or {})
        self.proc = Proc([BIN, "-c", self.conf], os.path.join(tmp, name + ".log"),
                         env=e, cwd=tmp)
        self.stopped = False
        STARTED.append(self)
        wait_port(self.port, self.proc.p)
        self.url = "http://127.0.0.1:%d" % self.port
        self.stopped = False

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        return self.proc.log()

    def loggrep(self, pattern, timeout=3.0):
        """Wait for a log line matching pattern; return the match or None."""
        end = time.time() + timeout
        while True:
            m = re.search(pattern, self.log(), re.M)
            if m or time.time() > end:
                return m
            time.sleep(0.05)

    def peak_rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return -1

    def stop(self, sig=signal.SIGTERM):
        rc = self.proc.stop(sig)
        self.stopped = True
        log = self.log()
        for marker in SAN_MARKERS:
            assert marker not in log, "sanitizer report:\n" + log[-4000:]
        return rc


@pytest.fixture(autouse=True)
def _stop_every_gatehouse(tmp):
    """Stop every gatehouse the test itself started (not those of
    module-scoped fixtures, started before it) and check each exited 0 with
    the sanitizers silent.  Torn down before tmp, so the logs still exist."""
    mark = len(STARTED)
    yield
    started = STARTED[mark:]
    del STARTED[mark:]
    failures = []
    for g in started:
        if not g.stopped:
            rc = g.stop()
            if rc != 0:
                failures.append("gatehouse exited %s:\n%s" % (rc, g.log()[-3000:]))
    assert not failures, failures[0]


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="gh-") as d:
        yield d


@pytest.fixture(params=["lmdb", "redis"])
def session_store(request, tmp):
    """Each session store in turn: None (LMDB in tmp, the default), then
    the redis:// URL of a redis-server started for the test."""
    if request.param == "lmdb":
        yield None
        return
    from redis_server import RedisServer
    r = RedisServer(tmp)
    yield r.url
    r.stop()


@pytest.fixture
def upstream(tmp):
    u = Upstream(tmp)
    yield u
    u.stop()


@pytest.fixture
def gatehouse(tmp):
    """Factory: gatehouse(lines) starts one; all are stopped (and checked
    for a clean exit and a quiet sanitizer) at the end of the test."""
    started = []

    def start(lines, **kw):
        g = Gatehouse(tmp, lines, **kw)
        started.append(g)
        return g

    yield start
    for g in started:
        if not g.stopped:
            rc = g.stop()
            assert rc == 0, "gatehouse exited %s:\n%s" % (rc, g.log()[-3000:])


def raw_request(port, data, timeout=5.0, read_all=True):
    """Send raw bytes, return everything the server sends until it closes
    (or the timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if not read_all:
                break
    except socket.timeout:
        pass
    s.close()
    return out
