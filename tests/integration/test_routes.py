# SPDX-License-Identifier: ISC
"""Route table and path normalisation through the real binary."""
import pytest
import requests

from conftest import raw_request


def test_anonymous_deny_and_no_match(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url,
                   "route /internal/* deny",
                   "route GET,HEAD /public/* allow anonymous"])
    r = requests.get(g.url + "/public/a", timeout=5)
    assert r.status_code == 200 and r.json()["path"] == "/public/a"
    r = requests.get(g.url + "/internal/x", headers={"Accept": "application/json"},
                     timeout=5)
    assert r.status_code == 403 and r.json()["error"] == "access_denied"
    assert "/internal/*" in r.json()["message"]
    assert g.loggrep(r'deny id=\w+ path="/internal/x" rule="/internal/\*" line=4')
    # POST is not in the method list: no route matches, so deny.
    r = requests.post(g.url + "/public/a", timeout=5)
    assert r.status_code == 403
    r = requests.get(g.url + "/elsewhere", timeout=5)
    assert r.status_code == 403
    assert g.loggrep(r'deny id=\w+ path="/elsewhere" rule=none')


@pytest.mark.parametrize("raw,forwarded", [
    ("/public/a/../b", "/public/b"),
    ("/public//b", "/public/b"),
    ("/public/%61bc", "/public/abc"),
    ("/public/./x?q=%2F..", "/public/x?q=%2F.."),
])
def test_upstream_gets_the_normalised_path(upstream, gatehouse, raw, forwarded):
    g = gatehouse(["upstream = " + upstream.url,
                   "route /public/* allow anonymous"])
    out = raw_request(g.port, b"GET " + raw.encode() +
                      b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200"), out[:200]
    assert b'"path": "' + forwarded.encode() + b'"' in out


@pytest.mark.parametrize("raw", [
    "/public/..%2f..%2finternal", "/public/%2e%2e/%2e%2e/x", "/..",
    "/public/a%00", "/public\\a", "/public/%zz", "/public/%C0%AF",
])
def test_unsafe_paths_refused_400(upstream, gatehouse, raw):
    g = gatehouse(["upstream = " + upstream.url,
                   "route /* allow anonymous"])
    out = raw_request(g.port, b"GET " + raw.encode() +
                      b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), (raw, out[:200])
    assert b"Connection: close" in out
    assert upstream.stats()["requests"] == 1  # only the stats call itself


def test_dot_dot_cannot_escape_into_a_denied_prefix(upstream, gatehouse):
    g = gatehouse(["upstream = " + upstream.url,
                   "route /admin/* deny",
                   "route /* allow anonymous"])
    for raw in ("/public/../admin/x", "/public/%2e%2e/admin/x", "//admin/x",
                "/%61dmin/x", "/admin;x/y", "/admin/./x"):
        out = raw_request(g.port, b"GET " + raw.encode() +
                          b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out[9:12] in (b"403", b"400"), (raw, out[:100])


def test_bad_route_lines_checked(tmp):
    import subprocess, os
    from conftest import BIN
    path = os.path.join(tmp, "r.conf")
    with open(path, "w") as f:
        f.write("upstream = http://127.0.0.1:9\n"
                "route /a/* allow sometimes\n"
                "route /b/* allow colour:blue\n"
                "route nopath deny\n"
                "route /* allow anonymous\n"
                "route /c allow anonymous\n")
    p = subprocess.run([BIN, "-c", path, "--check"], capture_output=True,
                       text=True)
    assert p.returncode != 0
    for n in (2, 3, 4, 6):
        assert "%s:%d: " % (path, n) in p.stderr, (n, p.stderr)
