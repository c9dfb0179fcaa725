# SPDX-License-Identifier: ISC
"""Sessions in Redis behind Sentinel, through the real binary: a
redis-sentinel:// session_store follows the master through a failover
(one master, one replica, three sentinels, the master killed by PID
mid-traffic), no acknowledged session is lost; sentinels all down give
503 store_unavailable, not a crash; a hostile sentinel that names a
garbage server gives a clear error.  Real redis-server and redis-sentinel
processes on loopback ports, started by the test and stopped by PID."""
import os
import re
import socket
import threading
import time

import pytest
import requests

from conftest import free_port
from redis_sentinel import FakeSentinel, SentinelTopology, command
from signin import echo_headers, sign_in, start_gateway
from test_redis_sentinel import record

JSON = {"Accept": "application/json"}
MASTER = "gh-master"
DATA_PASSWORD = "data-pw-not-in-any-log"
SENTINEL_PASSWORD = "sentinel-pw-not-in-any-log"
# A well-formed session id no store knows: asking for it asks the store.
UNKNOWN_ID = "A" * 43


@pytest.fixture
def op():
    from op_client import OP
    o = OP()
    yield o
    o.stop()


def sentinel_url(addrs, master=MASTER):
    return "redis-sentinel://%s/%s" % (",".join(addrs), master)


def password_files(tmp):
    """redis_password_file (the master's) and redis_sentinel_password_file
    (the sentinels' own), as an operator gives them."""
    out = []
    for key, pw in (("redis_password_file", DATA_PASSWORD),
                    ("redis_sentinel_password_file", SENTINEL_PASSWORD)):
        path = os.path.join(tmp, key)
        with open(path, "w") as f:
            f.write(pw + "\n")
        out.append("%s = %s" % (key, path))
    return out


def wait_ready(g, want=200, timeout=20.0):
    end = time.time() + timeout
    while True:
        r = requests.get(g.url + "/.auth/readyz", timeout=10)
        if r.status_code == want or time.time() > end:
            return r
        time.sleep(0.1)


def session_keys(port):
    return command(port, "KEYS", "gatehouse:s:*", password=DATA_PASSWORD)


class Traffic:
    """Signed-in GETs in a loop over the gateways, each answer recorded
    as (monotonic time, status), and each request's start in starts; and sign-ins in a loop, each that got its
    cookie recorded (the session was acknowledged)."""

    def __init__(self, gateways, jars):
        self.gateways = gateways
        self.jars = jars
        self.results = []
        self.starts = []
        self.signed_in = []
        self.signin_failures = 0
        self.stopping = False
        self.threads = [threading.Thread(target=self._reads, daemon=True),
                        threading.Thread(target=self._signins, daemon=True)]
        for t in self.threads:
            t.start()

    def _reads(self):
        i = 0
        while not self.stopping:
            g = self.gateways[i % len(self.gateways)]
            jar = self.jars[i % len(self.jars)]
            i += 1
            started = time.monotonic()
            try:
                r = requests.get(g.url + "/private", cookies=jar,
                                 headers=JSON, timeout=15)
                status = r.status_code
            except requests.RequestException:
                status = 0
            self.starts.append(started)
            self.results.append((time.monotonic(), status))
            time.sleep(0.02)

    def _signins(self):
        i = 0
        while not self.stopping:
            g = self.gateways[i % len(self.gateways)]
            user = "during%d@contoso.com" % i
            i += 1
            try:
                s, _ = sign_in(g, user)
                self.signed_in.append((user, s.cookies.get("gatehouse")))
            except (AssertionError, requests.RequestException):
                self.signin_failures += 1
            time.sleep(0.05)

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(30)


def test_failover_keeps_sessions(op, tmp, upstream):
    """Two gateways on a redis-sentinel:// store; the master is killed
    mid-traffic; after the failover signed-in requests work again on the
    new master with the same sessions, and no session acknowledged before
    the kill (nor during the switch) is lost."""
    topo = SentinelTopology(tmp, master_name=MASTER, password=DATA_PASSWORD,
                            sentinel_password=SENTINEL_PASSWORD)
    try:
        topo.wait_ready()
        url = sentinel_url(topo.sentinel_addrs())
        extra = password_files(tmp)
        a = start_gateway(op, tmp, upstream, extra, store=url, name="a")
        b = start_gateway(op, tmp, upstream, extra, store=url, name="b")
        for g in (a, b):
            assert wait_ready(g).status_code == 200, g.log()
        before = []
        for i, g in enumerate((a, b, a, b)):
            user = "before%d@contoso.com" % i
            s, _ = sign_in(g, user)
            before.append((user, s.cookies.get("gatehouse")))
        # Each session works on the other replica too.
        for (user, cookie), g in zip(before, (b, a, b, a)):
            r = requests.get(g.url + "/private", timeout=5,
                             cookies={"gatehouse": cookie})
            assert r.status_code == 200
            assert echo_headers(r)["x-forwarded-user"] == [user]
        old_port = topo.master.port
        assert len(session_keys(old_port)) == len(before)

        traffic = Traffic([a, b], [{"gatehouse": c} for _, c in before])
        time.sleep(1.0)
        assert traffic.results and all(
            st == 200 for _, st in traffic.results), traffic.results[:5]
        killed_at = topo.kill_master()
        new = topo.wait_failover(old_port)
        assert new == ("127.0.0.1", topo.replica.port)
        # Traffic goes on until the gateways answer 200 again for a while.
        end = time.time() + 60
        while time.time() < end:
            recent = [st for t, st in traffic.results if t > killed_at]
            if len(recent) >= 20 and all(st == 200 for st in recent[-20:]):
                break
            time.sleep(0.2)
        time.sleep(1.0)
        traffic.stop()

        after = [(t, st) for t, st in traffic.results if t > killed_at]
        assert after and after[-1][1] == 200, after[:5]
        # Only 200 or 503 store_unavailable: never a sign-in redirect or
        # a 401 (a session taken for unknown), never a dropped connection.
        assert {st for _, st in after} <= {200, 503}, after
        errors = [t for t, st in after if st != 200]
        if errors:
            first_error = errors[0]
            back = next(t for t, st in after if t > errors[-1] and st == 200)
            seen = "first error %.2f s after the kill, first 200 after the " \
                "last error %.2f s later, %.2f s after the kill (%d errors " \
                "of %d requests)" % (
                    first_error - killed_at, back - first_error,
                    back - killed_at, len(errors), len(after))
        else:
            seen = "no request failed (%d requests; the calls waited for " \
                "the new master and were sent again)" % len(after)
        # The longest a request waited: the one under way at the kill
        # waited for the new master.
        slowest = max(end - start for start, (end, _) in
                      zip(traffic.starts, traffic.results) if end > killed_at)
        record("store_failover",
               "sentinel store failover (down-after-milliseconds %d): %s; "
               "longest request %.2f s; sign-ins during the "
               "run: %d acknowledged, %d refused" % (
                   topo.down_after_ms, seen, slowest,
                   len(traffic.signed_in), traffic.signin_failures))

        # Every acknowledged session is on the new master and works on
        # both replicas, before the kill or during the switch alike.
        keys = session_keys(topo.replica.port)
        assert len(keys) >= len(before) + len(traffic.signed_in)
        for user, cookie in before + traffic.signed_in:
            for g in (a, b):
                r = requests.get(g.url + "/private", timeout=10,
                                 cookies={"gatehouse": cookie})
                assert r.status_code == 200, (user, r.status_code,
                                              r.text[:200])
                assert echo_headers(r)["x-forwarded-user"] == [user]
        # New sign-ins go to the new master.
        s, _ = sign_in(a, "after@contoso.com")
        r = requests.get(b.url + "/private", timeout=5,
                         cookies={"gatehouse": s.cookies.get("gatehouse")})
        assert r.status_code == 200
        assert len(session_keys(topo.replica.port)) == len(keys) + 1
        for g in (a, b):
            assert g.proc.alive()
            log = g.log()
            assert DATA_PASSWORD not in log and SENTINEL_PASSWORD not in log
            assert re.search(r'master "%s" is at 127\.0\.0\.1:%d' % (
                MASTER, topo.replica.port), log), log[-3000:]
    finally:
        topo.stop()


def test_sentinels_all_down(op, tmp, upstream):
    """No sentinel answers: signed-in requests get 503 store_unavailable
    (never a sign-in), anonymous routes work, readyz says 503, one line
    says why; gatehouse does not crash."""
    addrs = ["127.0.0.1:%d" % free_port() for _ in range(3)]
    g = start_gateway(op, tmp, upstream, ["redis_timeout = 300ms"],
                      store=sentinel_url(addrs))
    assert g.loggrep(r'store_unavailable backend=redis addr=sentinel:%s/0 '
                     r'reason="no sentinel has named the master %s"' % (
                         MASTER, MASTER), timeout=10), g.log()
    for _ in range(3):
        r = requests.get(g.url + "/private", headers=JSON,
                         cookies={"gatehouse": UNKNOWN_ID}, timeout=10)
        assert r.status_code == 503, r.text[:200]
        assert r.json()["error"] == "store_unavailable"
        r = requests.get(g.url + "/private", allow_redirects=False,
                         cookies={"gatehouse": UNKNOWN_ID}, timeout=10)
        assert r.status_code == 503 and "Location" not in r.headers
        assert requests.get(g.url + "/public/a", timeout=5).status_code == 200
    r = requests.get(g.url + "/.auth/readyz", timeout=5)
    assert r.status_code == 503
    assert r.json()["session_store"] == "unavailable"
    assert g.log().count("store_unavailable backend") == 1
    assert g.proc.alive()


class GarbageServer:
    """A TCP server on a free loopback port that answers every read with
    bytes that are not RESP."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _serve(self, c):
        try:
            while c.recv(65536):
                c.sendall(b"\x00\xffHTTP/1.1 400 Bad Request\r\n\r\n")
        except OSError:
            pass

    def stop(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def test_hostile_sentinel_names_a_garbage_server(op, tmp, upstream):
    """A sentinel that names a server answering garbage: a clear
    store_unavailable line, 503 for signed-in requests, no crash; it
    keeps trying, and asks the sentinel again."""
    garbage = GarbageServer()
    port = str(garbage.port).encode()
    fake = FakeSentinel(b"*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n" % (
        len(port), port))
    try:
        g = start_gateway(op, tmp, upstream, ["redis_timeout = 300ms"],
                          store=sentinel_url([fake.addr()]))
        assert g.loggrep(r'master "%s" is at 127\.0\.0\.1:%d' % (
            MASTER, garbage.port), timeout=10), g.log()
        assert g.loggrep(r'store_unavailable backend=redis addr=sentinel:'
                         r'%s/0 reason="[^"]*Protocol error' % MASTER,
                         timeout=10), g.log()
        for _ in range(3):
            r = requests.get(g.url + "/private", headers=JSON,
                             cookies={"gatehouse": UNKNOWN_ID}, timeout=10)
            assert r.status_code == 503
            assert r.json()["error"] == "store_unavailable"
            assert requests.get(g.url + "/public/a",
                                timeout=5).status_code == 200
        assert requests.get(g.url + "/.auth/readyz",
                            timeout=5).status_code == 503
        # Each failed connection asks the sentinel again; it keeps trying.
        end = time.time() + 10
        while garbage.accepted < 3 and time.time() < end:
            time.sleep(0.1)
        assert garbage.accepted >= 3
        assert fake.commands.count("SENTINEL") >= 2, fake.commands
        assert g.proc.alive()
        assert g.log().count("store_unavailable backend") == 1
    finally:
        fake.stop()
        garbage.stop()
