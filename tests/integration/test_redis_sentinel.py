# SPDX-License-Identifier: ISC
"""storage/redis_sentinel.c against real sentinels (redis_sentinel.py's
topology: a master, a replica, three redis-sentinel processes) and against
hostile fake ones, through tests/drivers/redis_sentinel_driver, which
prints each master the module names and logs what it refuses."""
import os
import queue
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import BIN, SAN_MARKERS, free_port
from redis_sentinel import (CLOSE, SILENT, SUBSCRIBED, FakeSentinel,
                            SentinelTopology, resp_encode)

DRIVER = os.path.join(os.path.dirname(BIN), "tests", "drivers",
                      "redis_sentinel_driver")
OUTPUT = os.path.join(os.path.dirname(BIN), "test-output")
MASTER = "gh-master"
SENTINEL_PASSWORD = "spw-not-in-any-log"


class Driver:
    """The driver process, its stdout read line by line, its stderr (the
    module's log) in a file.  Stopped with quit() (stdin closed), which
    checks a clean exit."""

    def __init__(self, tmp, sentinels, password=None, timeout_ms=2000,
                 extra=(), name="driver", master=MASTER):
        argv = [DRIVER, "-d", "-t", str(timeout_ms)]
        if password is not None:
            pf = os.path.join(tmp, name + ".password")
            with open(pf, "w") as f:
                f.write(password + "\n")
            argv += ["-p", pf]
        argv += list(extra) + [master] + list(sentinels)
        self.err_path = os.path.join(tmp, name + ".err")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        with open(self.err_path, "wb") as err:
            self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=err,
                                      env=env)
        self.masters = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            f = line.decode().split()
            if len(f) == 4 and f[0] == "master":
                m = (f[1], int(f[2]), float(f[3]))
                self.seen.append(m)
                self.masters.put(m)

    def next_master(self, timeout=60.0):
        """The next (host, port, monotonic seconds) the module names."""
        try:
            return self.masters.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no master named; log:\n" + self.log())

    def log(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def loggrep(self, pattern, timeout=15.0):
        end = time.time() + timeout
        while True:
            m = re.search(pattern, self.log(), re.M)
            if m or time.time() > end:
                assert m, "no /%s/ in the log:\n%s" % (pattern, self.log())
                return m
            time.sleep(0.05)

    def command(self, cmd):
        self.p.stdin.write(cmd.encode() + b"\n")
        self.p.stdin.flush()

    def quit(self):
        """End of input: the module is freed, the driver exits 0, the
        sanitizers (in make asan) silent, no password in the log."""
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
        log = self.log()
        for marker in SAN_MARKERS:
            assert marker not in log, "sanitizer report:\n" + log[-4000:]
        assert SENTINEL_PASSWORD not in log
        assert self.p.returncode == 0, "driver exited %s:\n%s" % (
            self.p.returncode, log[-3000:])
        return log


@pytest.fixture
def driver(tmp):
    """Factory; every driver is quit (and checked) at the end."""
    started = []

    def start(*args, **kw):
        kw.setdefault("name", "driver%d" % len(started))
        d = Driver(tmp, *args, **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        d.quit()


@pytest.fixture(scope="module")
def shared_topo(tmp_path_factory):
    """A topology that no test here disturbs (its sentinels want a
    password): for the tests that only read from it."""
    topo = SentinelTopology(str(tmp_path_factory.mktemp("sentinels")),
                            master_name=MASTER,
                            sentinel_password=SENTINEL_PASSWORD)
    try:
        topo.wait_ready()
        yield topo
    finally:
        topo.stop()


@pytest.fixture
def topo(tmp):
    """A topology of the test's own, for a test that kills parts of it."""
    t = SentinelTopology(tmp, master_name=MASTER,
                         sentinel_password=SENTINEL_PASSWORD)
    try:
        t.wait_ready()
        yield t
    finally:
        t.stop()


def record(name, text):
    os.makedirs(OUTPUT, exist_ok=True)
    with open(os.path.join(OUTPUT, "redis_sentinel_" + name + ".txt"),
              "w") as f:
        f.write(text + "\n")
    print(text)


# --- real sentinels --------------------------------------------------------

def test_master_found_then_followed_through_failover(topo, driver):
    d = driver(topo.sentinel_addrs(), password=SENTINEL_PASSWORD)
    host, port, _ = d.next_master()
    assert (host, port) == ("127.0.0.1", topo.master.port)
    d.loggrep(r"following \+switch-master on sentinel 127\.0\.0\.1:%d" %
              topo.sentinels[0].port)

    killed_at = topo.kill_master()
    host, port, told_at = d.next_master()
    assert (host, port) == ("127.0.0.1", topo.replica.port)
    assert topo.wait_failover(topo.master.port) == (host, port)
    # It came through the subscription, not through asking again.
    d.loggrep(r'info redis sentinel: master "%s" is at 127\.0\.0\.1:%d '
              r'\(was 127\.0\.0\.1:%d\), from sentinel \S+ by '
              r'\+switch-master' % (MASTER, port, topo.master.port))
    record("failover", "failover: master killed -> module names the new "
           "master after %.2f s (down-after-milliseconds %d)" % (
               told_at - killed_at, topo.down_after_ms))
    log = d.quit()
    assert len(d.seen) == 2, d.seen
    assert "warn" not in log


def test_subscription_moves_to_the_next_sentinel(topo, driver):
    d = driver(topo.sentinel_addrs(), password=SENTINEL_PASSWORD)
    assert d.next_master()[1] == topo.master.port
    s0, s1 = topo.sentinels[0], topo.sentinels[1]
    d.loggrep(r"following \+switch-master on sentinel 127\.0\.0\.1:%d" %
              s0.port)

    s0.kill()
    d.loggrep(r"warn redis sentinel 127\.0\.0\.1:%d \(master \"%s\"\): "
              r"following \+switch-master: connection closed by the server" %
              (s0.port, MASTER))
    d.loggrep(r"following \+switch-master on sentinel 127\.0\.0\.1:%d" %
              s1.port)

    # Two sentinels of three still make the quorum of two.
    killed_at = topo.kill_master()
    host, port, told_at = d.next_master()
    assert port == topo.replica.port
    d.loggrep(r"is at 127\.0\.0\.1:%d .* from sentinel 127\.0\.0\.1:%d by "
              r"\+switch-master" % (port, s1.port))
    record("failover_sentinel_down", "failover with one sentinel down: module names the "
           "new master after %.2f s" % (told_at - killed_at))

    # A refresh skips the dead sentinel and names no new master.
    d.command("refresh")
    d.loggrep(r"debug .*still at 127\.0\.0\.1:%d \(asking\)" % port)
    d.quit()
    assert len(d.seen) == 2, d.seen


def test_silent_sentinel_loses_the_subscription(topo, driver):
    """A sentinel that stops answering without closing (SIGSTOP: a
    partition, a hung host) fails the PING sent every 5 s; the
    subscription moves on and the next failover is still followed."""
    d = driver(topo.sentinel_addrs(), password=SENTINEL_PASSWORD,
               timeout_ms=1000)
    assert d.next_master()[1] == topo.master.port
    s0, s1 = topo.sentinels[0], topo.sentinels[1]
    d.loggrep(r"following \+switch-master on sentinel 127\.0\.0\.1:%d" %
              s0.port)
    s0.pause()
    try:
        # A warning, or a debug line if asking it failed first.
        d.loggrep(r"sentinel 127\.0\.0\.1:%d \(master \"%s\"\): "
                  r"following \+switch-master: no answer within 1000 ms" %
                  (s0.port, MASTER), timeout=30)
        d.loggrep(r"following \+switch-master on sentinel 127\.0\.0\.1:%d" %
                  s1.port)
        topo.kill_master()
        assert d.next_master()[1] == topo.replica.port
    finally:
        s0.resume()
    d.quit()


def test_a_sentinel_that_is_down_is_skipped(shared_topo, driver, tmp):
    dead = free_port()
    d = driver(["127.0.0.1:%d" % dead] + shared_topo.sentinel_addrs(),
               password=SENTINEL_PASSWORD)
    assert d.next_master()[1] == shared_topo.master.port
    d.command("refresh")
    d.command("refresh")
    d.loggrep(r"still at .* \(asking\)")
    log = d.quit()
    # One warning for the dead sentinel, not one per round.
    refused = re.findall(r"warn redis sentinel 127\.0\.0\.1:%d \(master "
                         r"\"%s\"\): asking for the master: connect: "
                         r"Connection refused" % (dead, MASTER), log)
    assert len(refused) == 1, log
    assert "none of the" not in log
    assert len(d.seen) == 1


def test_sentinel_named_by_host_name(shared_topo, driver):
    d = driver(["localhost:%d" % shared_topo.sentinels[1].port],
               password=SENTINEL_PASSWORD)
    assert d.next_master()[:2] == ("127.0.0.1", shared_topo.master.port)
    d.quit()


@pytest.mark.parametrize("password,reason", [
    (None, r"answered an error: NOAUTH Authentication required"),
    ("wrong-secret", r"AUTH answered an error: WRONGPASS"),
])
def test_wrong_sentinel_password(shared_topo, driver, password, reason):
    d = driver(shared_topo.sentinel_addrs()[:1], password=password)
    d.loggrep(r"warn redis sentinel 127\.0\.0\.1:%d \(master \"%s\"\): "
              r"asking for the master: %s" % (
                  shared_topo.sentinels[0].port, MASTER, reason))
    d.loggrep(r'warn redis sentinel: none of the 1 sentinels named master '
              r'"%s"; asking again with backoff' % MASTER)
    log = d.quit()
    assert "wrong-secret" not in log
    assert d.seen == []


def test_free_inside_the_callback(shared_topo, driver):
    d = driver(shared_topo.sentinel_addrs(), password=SENTINEL_PASSWORD,
               extra=["-x"])
    assert d.next_master()[1] == shared_topo.master.port
    d.p.wait(30)
    d.quit()


@pytest.mark.parametrize("args,message", [
    (["127.0.0.1:70000"], r"sentinel 1 has no host or a port outside"),
    (["127.0.0.1:0"], r"sentinel 1 has no host or a port outside"),
    (["-t", "0", "127.0.0.1:1"], r"timeout 0 ms is outside"),
    (["-u", "someone", "127.0.0.1:1"], r"a user name needs a password"),
])
def test_bad_settings_are_refused(args, message):
    opts = [a for a in args if not re.match(r"^[\d.]+:\d+$", a)]
    addrs = [a for a in args if a not in opts]
    r = subprocess.run([DRIVER] + opts + [MASTER] + addrs,
                       capture_output=True, timeout=30, text=True)
    assert r.returncode == 2
    assert re.search(message, r.stderr), r.stderr


def test_bad_master_name_is_refused():
    r = subprocess.run([DRIVER, "gh master", "127.0.0.1:1"],
                       capture_output=True, timeout=30, text=True)
    assert r.returncode == 2
    assert "master name must be 1 to 255 printable" in r.stderr


# --- hostile sentinels ------------------------------------------------------

def bulk_array(*items):
    return resp_encode(list(items))


def endless_bulk(sock):
    """Announce a bulk string of a gigabyte and keep sending it."""
    sock.sendall(b"$1000000000\r\n")
    chunk = b"x" * 65536
    for _ in range(256):
        sock.sendall(chunk)


def endless_status(sock):
    sock.sendall(b"+")
    for _ in range(256):
        sock.sendall(b"A" * 65536)


# name: (what SENTINEL get-master-addr-by-name gets, the reason logged)
HOSTILE_ANSWERS = {
    "garbage": (b"HTTP/1.1 400 Bad Request\r\n\r\n", r"protocol error: "),
    "integer": (b":42\r\n",
                r"answered an integer instead of a host and a port"),
    "status": (b"+OK\r\n", r"answered a status line instead of a host"),
    "error": (b"-ERR unknown command 'SENTINEL'\r\n",
              r"answered an error: ERR unknown command"),
    "nil": (b"*-1\r\n", r"knows no master by that name"),
    "one-element": (bulk_array("127.0.0.1"),
                    r"answered an array of 1 instead of a host and a port"),
    "three-elements": (bulk_array("127.0.0.1", "6379", "x"),
                       r"answered an array of 3 instead"),
    "nested": (b"*2\r\n*1\r\n$1\r\na\r\n$4\r\n6379\r\n",
               r"answered an array of 2 instead of a host and a port"),
    "integer-port": (b"*2\r\n$9\r\n127.0.0.1\r\n:6379\r\n",
                     r"answered an array of 2 instead"),
    "port-0": (bulk_array("127.0.0.1", "0"),
               r"answered a port that is not 1\.\.65535"),
    "port-70000": (bulk_array("127.0.0.1", "70000"),
                   r"answered a port that is not 1\.\.65535"),
    "port-signed": (bulk_array("127.0.0.1", "+6379"),
                    r"answered a port that is not 1\.\.65535"),
    "port-junk": (bulk_array("127.0.0.1", "6379 "),
                  r"answered a port that is not 1\.\.65535"),
    "port-long": (bulk_array("127.0.0.1", "0000006379"),
                  r"answered a port that is not 1\.\.65535"),
    "host-name": (bulk_array("redis.example.com", "6379"),
                  r"answered a host that is not an IP address"),
    "host-empty": (bulk_array("", "6379"),
                   r"answered a host that is not an IP address"),
    "host-nul": (bulk_array(b"127.0.0.1\x00.evil", "6379"),
                 r"answered a host that is not an IP address"),
    "host-unspecified": (bulk_array("0.0.0.0", "6379"),
                         r"answered the unspecified address as host"),
    "host-v6-unspecified": (bulk_array("::", "6379"),
                            r"answered the unspecified address as host"),
    "host-long": (bulk_array("1" * 300, "6379"),
                  r"answered a host that is not an IP address"),
    "huge-bulk": (endless_bulk, r"a reply longer than 4096 bytes"),
    "huge-status-line": (endless_status, r"a reply longer than 4096 bytes"),
    "huge-array": (b"*2147483647\r\n", r"a reply with too many parts"),
    "many-small-parts": (b"*8\r\n" + b":1\r\n" * 8,
                         r"a reply with too many parts"),
    "deep-nesting": (b"*1\r\n" * 12, r"a reply with too many parts|"
                     r"protocol error: .*depth"),
    "negative-bulk": (b"*2\r\n$-5\r\n", r"protocol error: "),
    "silent": (SILENT, r"no answer within 300 ms"),
    "hang-up": (CLOSE, r"connection closed by the server"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ANSWERS))
def test_hostile_sentinel_answer(case, driver):
    answer, reason = HOSTILE_ANSWERS[case]
    fake = FakeSentinel(answer)
    try:
        d = driver([fake.addr()], timeout_ms=300)
        d.loggrep(r"warn redis sentinel %s \(master \"%s\"\): asking for "
                  r"the master: (%s)" % (re.escape(fake.addr()), MASTER,
                                         reason))
        d.loggrep(r'warn redis sentinel: none of the 1 sentinels named '
                  r'master "%s"' % MASTER)
        d.quit()
        assert d.seen == []
    finally:
        fake.stop()


def test_hostile_sentinel_then_a_real_one(shared_topo, driver):
    """The hostile one first: refused, then the real one answers."""
    fake = FakeSentinel(endless_bulk, subscribe=b"*1\r\n$9\r\nsubscribe\r\n")
    try:
        d = driver([fake.addr()] + shared_topo.sentinel_addrs(),
                   password=SENTINEL_PASSWORD)
        assert d.next_master()[1] == shared_topo.master.port
        d.loggrep(r"asking for the master: a reply longer than 4096 bytes")
        d.loggrep(r"following \+switch-master on sentinel 127\.0\.0\.1:%d" %
                  shared_topo.sentinels[0].port)
        d.quit()
    finally:
        fake.stop()


def test_extra_replies_are_harmless(driver):
    """A valid answer followed by replies nobody asked for (hiredis 0.14's
    async API aborts the process on the second +OK)."""
    fake = FakeSentinel(bulk_array("127.0.0.1", "7001") + b"+OK\r\n+OK\r\n",
                        subscribe=SUBSCRIBED + b"+OK\r\n")
    try:
        d = driver([fake.addr()])
        assert d.next_master()[:2] == ("127.0.0.1", 7001)
        d.loggrep(r"following \+switch-master: sent a status line instead "
                  r"of a message")
        d.quit()
    finally:
        fake.stop()


def switch(payload):
    return bulk_array("message", "+switch-master", payload)


# name: (what SUBSCRIBE gets, the reason logged)
HOSTILE_SUBSCRIPTIONS = {
    # hiredis 0.14's async API asserts on this one
    "short-confirmation": (b"*1\r\n$9\r\nsubscribe\r\n",
                           r"SUBSCRIBE answered an array of 1 instead of its "
                           r"confirmation"),
    "wrong-channel": (bulk_array("subscribe", "+sdown") + b"",
                      r"SUBSCRIBE answered an array of 2 instead"),
    "integer-push": (SUBSCRIBED + b":1\r\n",
                     r"sent an integer instead of a message"),
    "other-channel": (SUBSCRIBED + bulk_array("message", "+sdown", "x"),
                      r"sent an array of 3 instead of a message"),
    "switch-port-0": (SUBSCRIBED + switch(
        MASTER + " 127.0.0.1 7001 127.0.0.1 0"),
        r"a \+switch-master message with a port that is not 1\.\.65535"),
    "switch-port-70000": (SUBSCRIBED + switch(
        MASTER + " 127.0.0.1 7001 127.0.0.1 70000"),
        r"a \+switch-master message with a port that is not 1\.\.65535"),
    "switch-host-name": (SUBSCRIBED + switch(
        MASTER + " 127.0.0.1 7001 evil.example.com 6379"),
        r"a \+switch-master message with a host that is not an IP"),
    "switch-short": (SUBSCRIBED + switch(MASTER + " 127.0.0.1 7001"),
                     r"a malformed \+switch-master message"),
    "switch-long": (SUBSCRIBED + switch(
        MASTER + " 127.0.0.1 7001 127.0.0.1 7002 extra"),
        r"a malformed \+switch-master message"),
    "silent": (SILENT, r"no answer within 300 ms"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SUBSCRIPTIONS))
def test_hostile_subscription(case, driver):
    answer, reason = HOSTILE_SUBSCRIPTIONS[case]
    fake = FakeSentinel(bulk_array("127.0.0.1", "7001"), subscribe=answer)
    try:
        d = driver([fake.addr()], timeout_ms=300)
        assert d.next_master()[:2] == ("127.0.0.1", 7001)
        d.loggrep(r"warn redis sentinel %s \(master \"%s\"\): following "
                  r"\+switch-master: (%s)" % (re.escape(fake.addr()), MASTER,
                                              reason))
        d.quit()
        assert len(d.seen) == 1, d.seen
    finally:
        fake.stop()


def test_switch_of_another_master_is_ignored(driver):
    """Switches of other masters (one whose name merely starts with ours)
    are ignored; ours is followed, and an answer given before the switch
    does not undo it.  The fake answers questions with the new address
    once it has announced the switch, like a real sentinel."""
    go = threading.Event()
    switched = threading.Event()

    def query(sock):
        sock.sendall(bulk_array("127.0.0.1",
                                "7002" if switched.is_set() else "7001"))

    def subscribe(sock):
        sock.sendall(SUBSCRIBED)
        go.wait(30)
        switched.set()
        sock.sendall(switch("other-master 127.0.0.1 7001 127.0.0.1 7003") +
                     switch(MASTER + "x 127.0.0.1 7001 127.0.0.1 7004") +
                     switch(MASTER + " 127.0.0.1 7001 127.0.0.1 7002"))

    fake = FakeSentinel(query, subscribe=subscribe)
    try:
        d = driver([fake.addr()])
        assert d.next_master()[:2] == ("127.0.0.1", 7001)
        d.loggrep(r"following \+switch-master on sentinel")
        go.set()
        assert d.next_master()[:2] == ("127.0.0.1", 7002)
        # Questions asked after the switch name no other master.
        d.command("refresh")
        d.loggrep(r"still at 127\.0\.0\.1:7002 \(asking\)")
        d.quit()
        assert [m[1] for m in d.seen] == [7001, 7002]
    finally:
        fake.stop()
