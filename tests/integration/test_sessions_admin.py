# SPDX-License-Identifier: ISC
"""`gatehouse -c FILE sessions list|revoke`: the real binary against the
store a running gatehouse uses (LMDB, then a real redis-server), with
users signed in through the tests' own OpenID Provider.  The list shows
who is signed in and never a token or a cookie; each revoke selector ends
exactly the sessions it names, and the running gatehouse signs those out
at their next request while the others go on."""
import json
import re
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, SAN_MARKERS, free_port
from op_client import OP
from redis_server import RedisServer
from signin import echo_headers, sign_in, start_gateway, to_sign_in

# Every refresh token the provider issues in these tests (token_override):
# a value to look for in the command's output.
REFRESH_MARKER = "0.OPrefresh-token-that-must-never-be-listed"
USERS = {
    "alice@contoso.com": "sid-alice-0001",
    "bob@contoso.com": "sid-bob-0002",
    "carol@contoso.com": None,  # her ID token carries no sid
}


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


@pytest.fixture(params=["lmdb", "redis"])
def store(request, tmp):
    """(session_store value or None for LMDB in tmp, the RedisServer or
    None)."""
    if request.param == "lmdb":
        yield None, None
        return
    r = RedisServer(tmp)
    yield r.url, r
    r.stop()


def admin(g, *args):
    """Run the command against g's configuration; (rc, stdout, stderr),
    the sanitizers silent."""
    p = subprocess.run([BIN, "-c", g.conf] + list(args), capture_output=True,
                       text=True, timeout=60)
    for marker in SAN_MARKERS:
        assert marker not in p.stderr, p.stderr
    return p.returncode, p.stdout, p.stderr


def listing(g, *args):
    rc, out, err = admin(g, "sessions", "list", "--json", *args)
    assert rc == 0, err
    return json.loads(out)


def signed_in(g, s):
    """Whether the session's cookie still lets it through."""
    r = s.get(g.url + "/private", allow_redirects=False, timeout=10)
    if r.status_code == 200:
        return True
    assert to_sign_in(r), (r.status_code, r.headers)
    return False


def setup_sessions(op, tmp, upstream, store_url):
    """alice twice, bob and carol once: four sessions; returns the
    gateway, [(user, requests.Session, access token)]."""
    for user, sid in USERS.items():
        op.user(user, sid=sid)
    op.fault("token_override", sticky=True,
             fields={"refresh_token": REFRESH_MARKER})
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on"],
                      store=store_url)
    out = []
    for user in ["alice@contoso.com", "alice@contoso.com", "bob@contoso.com",
                 "carol@contoso.com"]:
        s, _ = sign_in(g, user)
        r = s.get(g.url + "/private", timeout=10)
        assert r.status_code == 200
        at = echo_headers(r)["x-ms-token-aad-access-token"][0]
        out.append((user, s, at))
    return g, out


def test_list_shows_sessions_and_no_secret(op, tmp, upstream, store):
    g, sess = setup_sessions(op, tmp, upstream, store[0])
    rc, text, err = admin(g, "sessions", "list")
    assert rc == 0, err
    rc, js, err = admin(g, "sessions", "list", "--json")
    assert rc == 0, err
    # Nothing a browser or the provider holds as a secret: no cookie, no
    # access token, no refresh token, no JWT of any kind.
    for out in (text, js):
        for _, s, at in sess:
            assert s.cookies.get("gatehouse") not in out
            assert at not in out
        assert REFRESH_MARKER not in out
        assert "eyJ" not in out
    lines = text.strip().split("\n")
    assert len(lines) == 4, text
    rows = json.loads(js)
    assert len(rows) == 4
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    for row, line in zip(rows, lines):
        cols = line.split("\t")
        assert cols == [row["id"], row["sub"], row["name"], row["created"],
                        row["last_seen"], row["expires"]], (cols, row)
        assert re.match(r"^[0-9a-f]{12}$", row["id"]), row
        for k in ("created", "last_seen", "expires"):
            assert iso.match(row[k]), row
        assert row["expires"] > row["created"]
        assert row["sid"] == USERS[row["name"]]
    assert sorted(r["name"] for r in rows) == sorted(u for u, _, _ in sess)
    assert len({r["id"] for r in rows}) == 4
    # The subs are the ID token's (the OP derives them from the user).
    alice = [r for r in rows if r["name"] == "alice@contoso.com"]
    assert len(alice) == 2 and alice[0]["sub"] == alice[1]["sub"]
    only = listing(g, "--sub", alice[0]["sub"])
    assert sorted(r["id"] for r in only) == sorted(r["id"] for r in alice)
    assert listing(g, "--sub", "nobody") == []


def test_revoke_each_selector_while_running(op, tmp, upstream, store):
    g, sess = setup_sessions(op, tmp, upstream, store[0])
    a1, a2, bob, carol = (s for _, s, _ in sess)
    rows = listing(g)
    by_name = {}
    for r in rows:
        by_name.setdefault(r["name"], []).append(r)

    # --sid: bob's provider session.
    rc, out, err = admin(g, "sessions", "revoke", "--sid", "sid-bob-0002")
    assert (rc, out) == (0, "1 session ended\n"), err
    assert not signed_in(g, bob)
    assert all(signed_in(g, s) for s in (a1, a2, carol))

    # --id: carol's, by the id the list shows, in upper case too.
    cid = by_name["carol@contoso.com"][0]["id"]
    rc, out, err = admin(g, "sessions", "revoke", "--id", cid.upper())
    assert (rc, out) == (0, "1 session ended\n"), err
    assert not signed_in(g, carol)
    assert signed_in(g, a1) and signed_in(g, a2)
    # It is gone: the same id again names nothing.
    rc, out, err = admin(g, "sessions", "revoke", "--id", cid)
    assert rc == 1 and "no session has the id" in err, (rc, out, err)

    # --sub: both of alice's.
    sub = by_name["alice@contoso.com"][0]["sub"]
    rc, out, err = admin(g, "sessions", "revoke", "--sub", sub)
    assert (rc, out) == (0, "2 sessions ended\n"), err
    assert not signed_in(g, a1) and not signed_in(g, a2)
    assert listing(g) == []

    # --all: two new sign-ins, both ended, gatehouse still serving.
    s1, _ = sign_in(g, "bob@contoso.com")
    s2, _ = sign_in(g, "carol@contoso.com")
    assert len(listing(g)) == 2
    rc, out, err = admin(g, "sessions", "revoke", "--all")
    assert (rc, out) == (0, "2 sessions ended\n"), err
    assert not signed_in(g, s1) and not signed_in(g, s2)
    rc, out, err = admin(g, "sessions", "revoke", "--all")
    assert (rc, out) == (0, "0 sessions ended\n"), err
    # A sign-in after all that works as ever.
    s3, _ = sign_in(g, "alice@contoso.com")
    assert signed_in(g, s3)


def test_revoke_during_refresh_stays_revoked(op, tmp, upstream, store):
    """A refresh in flight when the session is revoked (the provider
    holds the token request) must not write the session back when its
    answer comes: the next request is signed out, and the list stays
    empty."""
    g = start_gateway(op, tmp, upstream, ["forward_access_token = on"],
                      store=store[0])
    s, _ = sign_in(g, "dave@contoso.com")
    other, _ = sign_in(g, "erin@contoso.com")
    assert signed_in(g, s)
    op.fault("token_stall", seconds=2)
    done = {}

    def refresh():
        try:
            done["r"] = s.post(g.url + "/.auth/refresh",
                               headers={"Accept": "application/json"},
                               timeout=20)
        except Exception as e:  # reported below
            done["e"] = e

    t = threading.Thread(target=refresh)
    t.start()
    end = time.time() + 10
    held = []
    while time.time() < end and not held:
        held = [e for e in op.requests("token") if e["status"] is None]
        time.sleep(0.02)
    assert held, op.requests("token")
    sub = [r["sub"] for r in listing(g) if r["name"] == "dave@contoso.com"]
    rc, out, err = admin(g, "sessions", "revoke", "--sub", sub[0])
    assert (rc, out) == (0, "1 session ended\n"), err
    t.join(30)
    assert "e" not in done, done
    # The provider answered with new tokens; the session stays ended.
    assert [e["status"] for e in op.requests("token")][-1] == 200
    assert g.loggrep(r"refresh result=ended"), g.log()[-2000:]
    assert not signed_in(g, s)
    assert [r["name"] for r in listing(g)] == ["erin@contoso.com"]
    assert signed_in(g, other)


def test_ambiguous_id_refused(op, tmp, upstream):
    """Two records whose keys share the shown digits (a copy of a real
    record under a key that differs only further on, made in Redis): the
    list widens the ids until they differ, and a prefix naming both ends
    neither."""
    r = RedisServer(tmp)
    try:
        g, sess = setup_sessions(op, tmp, upstream, r.url)
        key = r.session_keys()[0]
        hexid = key[len("gatehouse:s:"):]
        twin_hex = hexid[:20] + ("0" if hexid[20] != "0" else "1") + \
            hexid[21:]
        twin = "gatehouse:s:" + twin_hex
        fields = r.command("HGETALL", key)
        r.command("HSET", twin, *fields)
        r.command("EXPIRE", twin, 3600)
        rows = listing(g)
        assert len(rows) == 5
        assert all(len(x["id"]) == 21 for x in rows), rows
        assert {hexid[:21], twin_hex[:21]} <= {x["id"] for x in rows}
        rc, out, err = admin(g, "sessions", "revoke", "--id", hexid[:12])
        assert rc == 1 and "matches 2 sessions" in err, (rc, out, err)
        assert len(listing(g)) == 5
        assert all(signed_in(g, s) for _, s, _ in sess)
        rc, out, err = admin(g, "sessions", "revoke", "--id", twin_hex[:21])
        assert (rc, out) == (0, "1 session ended\n"), err
        assert all(signed_in(g, s) for _, s, _ in sess)
        assert r.session_keys() == sorted(
            k for k in r.session_keys() if k != twin)
        assert twin not in r.session_keys()
        g.stop()
    finally:
        r.stop()


def test_bad_arguments_and_unreachable_store(op, tmp, upstream):
    g = start_gateway(op, tmp, upstream)
    for args in (["sessions"], ["sessions", "bogus"],
                 ["sessions", "revoke"],
                 ["sessions", "revoke", "--sub", "a", "--all"],
                 ["sessions", "revoke", "--sub"],
                 ["sessions", "list", "--all"],
                 ["sessions", "list", "--sid", "x"],
                 ["sessions", "list", "extra"],
                 ["--check", "sessions", "list"]):
        rc, out, err = admin(g, *args)
        assert rc == 2 and "usage:" in err, (args, rc, out, err)
    for bad in ("xyz!", "abc", "0" * 33):
        rc, out, err = admin(g, "sessions", "revoke", "--id", bad)
        assert rc == 1 and "--id" in err, (bad, rc, err)
    h = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert h.returncode == 0
    assert "sessions list" in h.stdout and "sessions revoke" in h.stdout
    # An LMDB store that is not there is named, not created.
    conf = g.conf + ".missing"
    text = open(g.conf).read()
    text = re.sub(r"(?m)^session_store = .*$",
                  "session_store = " + tmp + "/nowhere", text)
    open(conf, "w").write(text)
    p = subprocess.run([BIN, "-c", conf, "sessions", "list"],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "nowhere: no such directory" in p.stderr, \
        p.stderr
    # Redis that does not answer: a clear error, exit 1.
    port = free_port()
    text = re.sub(r"(?m)^session_store = .*$",
                  "session_store = redis://127.0.0.1:%d" % port, text)
    open(conf, "w").write(text)
    for args in (["list"], ["revoke", "--all"]):
        p = subprocess.run([BIN, "-c", conf, "sessions"] + args,
                           capture_output=True, text=True)
        assert p.returncode == 1, p
        assert "cannot reach Redis at 127.0.0.1 port %d" % port in p.stderr, \
            p.stderr
    # A password Redis refuses: said, and not quoted.
    r = RedisServer(tmp, password="the-right-one", name="pw")
    try:
        text = re.sub(r"(?m)^session_store = .*$",
                      "session_store = redis://:not-the-password@127.0.0.1:%d"
                      % r.port, text)
        open(conf, "w").write(text)
        p = subprocess.run([BIN, "-c", conf, "sessions", "list"],
                           capture_output=True, text=True)
        assert p.returncode == 1, p
        assert "refused the password" in p.stderr, p.stderr
        assert "not-the-password" not in p.stderr + p.stdout
    finally:
        r.stop()


def test_sentinel_store_with_passwords(op, tmp, upstream):
    """redis-sentinel:// with a password on the data servers and another
    on the sentinels: the command asks the sentinels for the master, signs
    in to it, lists and revokes there; neither password is ever printed."""
    from redis_sentinel import SentinelTopology
    from test_sentinel_store import (DATA_PASSWORD, MASTER,
                                     SENTINEL_PASSWORD, password_files,
                                     sentinel_url, wait_ready)
    topo = SentinelTopology(tmp, master_name=MASTER, password=DATA_PASSWORD,
                            sentinel_password=SENTINEL_PASSWORD)
    try:
        topo.wait_ready()
        g = start_gateway(op, tmp, upstream, password_files(tmp),
                          store=sentinel_url(topo.sentinel_addrs()))
        assert wait_ready(g).status_code == 200, g.log()
        s1, _ = sign_in(g, "frank@contoso.com")
        s2, _ = sign_in(g, "grace@contoso.com")
        rc, out, err = admin(g, "sessions", "list")
        assert rc == 0, err
        assert sorted(l.split("\t")[2] for l in out.strip().split("\n")) == \
            ["frank@contoso.com", "grace@contoso.com"]
        sub = [r["sub"] for r in listing(g) if r["name"] == "grace@contoso.com"]
        rc, out2, err2 = admin(g, "sessions", "revoke", "--sub", sub[0])
        assert (rc, out2) == (0, "1 session ended\n"), err2
        assert signed_in(g, s1) and not signed_in(g, s2)
        for text in (out, err, out2, err2):
            assert DATA_PASSWORD not in text and SENTINEL_PASSWORD not in text
        g.stop()
    finally:
        topo.stop()


def test_revoke_many_redis(op, tmp, upstream):
    """More records than SCAN returns per call and one DEL takes: a real
    record copied under 600 more keys; every one is listed once and
    ended, and the signed-in user with them."""
    r = RedisServer(tmp)
    try:
        g, sess = setup_sessions(op, tmp, upstream, r.url)
        key = r.session_keys()[0]
        fields = r.command("HGETALL", key)
        for i in range(600):
            twin = "gatehouse:s:%032x" % (0xabc000 + i)
            r.command("HSET", twin, *fields)
            r.command("EXPIRE", twin, 3600)
        assert len(listing(g)) == 604
        rc, out, err = admin(g, "sessions", "revoke", "--all")
        assert (rc, out) == (0, "604 sessions ended\n"), err
        assert r.session_keys() == []
        assert not any(signed_in(g, s) for _, s, _ in sess)
        g.stop()
    finally:
        r.stop()
