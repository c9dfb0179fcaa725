# SPDX-License-Identifier: ISC
"""The WebSocket browser test: Debian's Chromium, headless, signed in (the
session cookie of a sign-in against the tests' own OpenID Provider), loads
a page through gatehouse whose script opens a WebSocket to the same origin
and exchanges a text and a binary message with the echo upstream
(tests/browser/websocket.mjs).  The Origin check is on (the default): the
browser's own Origin passes it.  Never skips, as test_browser.py."""
import os
import subprocess

from conftest import free_port  # noqa: F401  (the harness's fixtures)
from signin import sign_in, start_gateway
from test_browser import BROWSERDIR, CHROMIUM, need_tools, npm_ci
from test_websocket import echo, op  # noqa: F401  (fixtures)


def test_browser_websocket_signed_in(op, tmp, echo):  # noqa: F811
    need_tools()
    npm_ci(BROWSERDIR, "playwright-core")
    g = start_gateway(op, tmp, echo)
    s, _ = sign_in(g, "grace@contoso.com", path="/")
    cookie = [c for c in s.cookies if c.name == "gatehouse"][0]
    p = subprocess.run(
        ["node", os.path.join(BROWSERDIR, "websocket.mjs"), g.url,
         cookie.name, cookie.value, "--chromium", CHROMIUM],
        cwd=BROWSERDIR, stdin=subprocess.DEVNULL, capture_output=True,
        text=True, timeout=120)
    assert p.returncode == 0, (p.stdout + p.stderr, g.log()[-2000:])
    seen = [e for e in echo.seen() if e["path"] == "/ws"]
    assert len(seen) == 1
    assert seen[0]["user"] == "grace@contoso.com"
    assert seen[0]["origin"] == g.url
    assert g.loggrep(r"websocket_close id=\w+ user=\"[^\"]+\" reason=closed",
                     timeout=10), g.log()[-2000:]
