# SPDX-License-Identifier: ISC
"""log_format = json through the real binary: every line gatehouse writes
is one JSON object with the required keys; hostile bytes (from a client,
or from the provider's claims) come out escaped, and no token, cookie,
code or secret appears.  The text format stays the default."""
import json
import re

import pytest
import requests

from conftest import Gatehouse, raw_request
from op_client import OP
from signin import authorize, begin_login, complete, echo_headers, \
    start_gateway

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ACCESS_KEYS = ("request_id", "action", "client", "method", "route", "status",
               "duration_ms", "bytes")


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def json_lines(text):
    """Every line as a JSON object, checked for the keys all lines have."""
    out = []
    for line in text.split("\n")[:-1]:
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        assert TS.fullmatch(obj["ts"]), line
        assert obj["level"] in ("debug", "info", "warn", "fatal"), line
        assert isinstance(obj["event"], str) and obj["event"], line
        out.append(obj)
    assert text.endswith("\n")
    return out


def test_every_line_is_json_and_nothing_secret(op, tmp, upstream):
    # A sub the provider makes hostile: a quote, a backslash, U+2028 and,
    # at the end of the 127 bytes an access line keeps, the first byte
    # of a two-byte character (the cut leaves an invalid byte).
    sub = 'q"\\\u2028\u00e9' + "x" * 118 + "\u00e9"
    assert len(sub.encode()) == 128
    op.user("eve@contoso.com", sub=sub)
    g = start_gateway(op, tmp, upstream,
                      ["log_format = json", "log_level = debug",
                       "forward_access_token = on"],
                      routes=["route /public/* allow anonymous",
                              "route /admin/* deny",
                              "route /* allow authenticated"])
    s = requests.Session()
    auth = authorize(s, begin_login(g, s, "/private"), "eve@contoso.com")
    r = complete(g, s, auth)
    assert r.status_code == 302, r.text[:300]
    cookie = s.cookies.get("gatehouse")
    r = s.get(g.url + "/private", timeout=5)
    assert r.status_code == 200
    token = echo_headers(r)["x-ms-token-aad-access-token"][0]
    assert s.post(g.url + "/.auth/refresh", timeout=10).status_code == 200
    assert s.get(g.url + "/admin/x", timeout=5).status_code == 403
    # From clients: a quote in a path, a control byte and bytes that are
    # not UTF-8 in a header, a forged cookie, a replayed callback.
    raw_request(g.port, b'GET /public/a"b HTTP/1.1\r\nHost: x\r\n'
                b"Connection: close\r\n\r\n")
    raw_request(g.port, b"GET /public/h HTTP/1.1\r\nHost: x\r\n"
                b"X-A: \x01\xff\xfe\r\n\r\n")
    raw_request(g.port, b"GET /public/\xff\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
    forged = "F0rged" + "A" * 37
    requests.get(g.url + "/private", cookies={"gatehouse": forged},
                 headers={"Accept": "application/json"}, timeout=5)
    requests.get(auth["location"], allow_redirects=False, timeout=5)
    log_before_stop = g.log()
    assert g.stop() == 0

    raw = open(g.proc.log_path, "rb").read()
    text = raw.decode("utf-8")  # strict: every byte written is UTF-8
    assert "\u2028" not in text and "\r" not in text
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", text)
    lines = json_lines(text)
    assert len(lines) > 10 and len(log_before_stop) > 0

    access = [o for o in lines if o["event"] == "access"]
    for o in access:
        for k in ACCESS_KEYS:
            assert k in o, (k, o)
        assert isinstance(o["status"], int)
        assert isinstance(o["duration_ms"], (int, float))
        assert o["client"] == "127.0.0.1"
    signed = [o for o in access if o.get("path") == "/private" and
              o["status"] == 200]
    assert len(signed) == 1, access
    o = signed[0]
    assert o["route"] == "/*" and o["action"] == "proxy"
    assert isinstance(o["upstream_ms"], (int, float))
    assert o["duration_ms"] >= o["upstream_ms"]
    # The sub as the access line keeps it: 127 bytes, the cut byte as
    # U+FFFD, every other character as it was.
    assert o["user"] == sub.encode()[:127].decode("utf-8", "replace")
    assert o["user"].endswith("x\ufffd")
    assert [x for x in access if x.get("path") == '/public/a"b'
            and x["route"] == "/public/*"]
    assert [x for x in access if x["route"] == "/admin/*" and
            x["status"] == 403 and x.get("deny") == "route"]
    assert [x for x in access if x["route"] == "invalid" and
            x["status"] == 400]
    events = {x["event"] for x in lines}
    assert {"callback", "refresh", "deny", "refused",
            "session_cookie_rejected", "listening", "provider"} <= events, \
        events
    ok = [x for x in lines if x["event"] == "callback" and
          x.get("result") == "ok"]
    assert ok and ok[0]["request_id"]
    # Never a secret: the client secret, the session cookie, the access
    # token, the code and state of the callback, a forged cookie.
    for secret in (op.client_secret, cookie, token, auth["code"],
                   auth["state"], forged):
        assert secret and secret not in text, secret


def test_text_stays_the_default(tmp, upstream):
    g = Gatehouse(tmp, ["upstream = " + upstream.url,
                        "route /public/* allow anonymous"])
    assert requests.get(g.url + "/public/a", timeout=5).status_code == 200
    assert g.loggrep(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z access '
                     r'id=\w+ event=proxy client=127\.0\.0\.1 method=GET '
                     r'path="/public/a" status=200 bytes=\d+ route=4 '
                     r'up_ms=\d+\.\d ms=\d+\.\d$')
    assert "{" not in g.log().split("\n")[0]


def test_bad_log_format_is_refused(tmp, upstream):
    import subprocess
    from conftest import BIN
    conf = tmp + "/l.conf"
    with open(conf, "w") as f:
        f.write("upstream = %s\nlog_format = xml\n" % upstream.url)
    p = subprocess.run([BIN, "-c", conf, "--check"], capture_output=True,
                       text=True)
    assert p.returncode != 0
    assert ":2: log_format: expected text or json" in p.stderr, p.stderr
