# SPDX-License-Identifier: ISC
"""Prometheus metrics through the real binary: the /metrics listener
(metrics_listen) is scraped, every answer read by a strict parser of the
text format 0.0.4, and the counters must move as requests are made: a
signed-in request, an anonymous one, a denied one, failed sign-ins, a
refresh, an upstream that is down.  No label may carry what a client
sent."""
import math
import re
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import BIN, Gatehouse, free_port, raw_request
from op_client import OP
from signin import sign_in, start_gateway

CTYPE = "text/plain; version=0.0.4; charset=utf-8"
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
ROUTES = ["route /public/* allow anonymous", "route /slow allow anonymous",
          "route /admin/* deny", "route /* allow authenticated"]


class ParseError(AssertionError):
    pass


def _label_value(s, i):
    """A quoted label value at s[i] (the opening quote); returns (value,
    index after the closing quote).  Only \\\\, \\" and \\n are escapes."""
    if s[i] != '"':
        raise ParseError("label value must be quoted: %r" % s)
    i += 1
    out = []
    while True:
        if i >= len(s):
            raise ParseError("unterminated label value: %r" % s)
        c = s[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\n":
            raise ParseError("raw newline in a label value")
        if c == "\\":
            n = s[i + 1:i + 2]
            if n not in ("\\", '"', "n"):
                raise ParseError("bad escape \\%s in %r" % (n, s))
            out.append("\n" if n == "n" else n)
            i += 2
            continue
        out.append(c)
        i += 1


def _value(text):
    if text in ("NaN", "+Inf", "-Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+)", text):
        raise ParseError("bad sample value %r" % text)
    return float(text)


def parse_exposition(body):
    """Parse text format 0.0.4 strictly.  Returns {family: {"type", "help",
    "samples": [(name, labels, value)]}}; raises ParseError on anything
    the format does not allow, or a family split, typed twice, typed after
    its samples, or a sample repeated."""
    if not body.endswith("\n"):
        raise ParseError("the body must end with a newline")
    families, seen, order = {}, set(), []
    current = None

    def family_of(name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and base in families and \
                    families[base]["type"] in ("histogram", "summary"):
                return base
        return name

    for line in body[:-1].split("\n"):
        if line == "":
            raise ParseError("empty line")
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    raise ParseError("bad metric name %r" % name)
                f = families.setdefault(name, {"type": None, "help": None,
                                               "samples": []})
                key = parts[1].lower()
                if f[key] is not None:
                    raise ParseError("second %s for %s" % (parts[1], name))
                if f["samples"]:
                    raise ParseError("%s after samples of %s" % (parts[1],
                                                                 name))
                text = parts[3] if len(parts) > 3 else ""
                if key == "type" and text not in TYPES:
                    raise ParseError("unknown type %r" % text)
                if key == "help" and re.search(r"\\[^\\n]", text):
                    raise ParseError("bad escape in HELP %r" % text)
                f[key] = text
                if name in order and current != name:
                    raise ParseError("family %s split" % name)
                if name not in order:
                    order.append(name)
                current = name
            continue
        m = NAME.match(line)
        if not m:
            raise ParseError("bad sample line %r" % line)
        name, i, labels = m.group(0), m.end(), {}
        if i < len(line) and line[i] == "{":
            i += 1
            while line[i] != "}":
                lm = LABEL.match(line, i)
                if not lm or line[lm.end()] != "=":
                    raise ParseError("bad label in %r" % line)
                if lm.group(0) in labels:
                    raise ParseError("label repeated in %r" % line)
                value, i = _label_value(line, lm.end() + 1)
                labels[lm.group(0)] = value
                if line[i] == ",":
                    i += 1
                elif line[i] != "}":
                    raise ParseError("bad label list in %r" % line)
            i += 1
        rest = line[i:]
        if not rest.startswith(" "):
            raise ParseError("no space before the value in %r" % line)
        fields = rest[1:].split(" ")
        if len(fields) not in (1, 2) or (len(fields) == 2 and
                                         not re.fullmatch(r"-?\d+", fields[1])):
            raise ParseError("bad value or timestamp in %r" % line)
        fam = family_of(name)
        if fam not in families:
            families[fam] = {"type": None, "help": None, "samples": []}
        if fam in order and current != fam:
            raise ParseError("family %s split" % fam)
        if fam not in order:
            order.append(fam)
        current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ParseError("sample repeated: %r" % line)
        seen.add(key)
        families[fam]["samples"].append((name, labels, _value(fields[0])))
    return families


def check_conventions(fams):
    """Names after Prometheus' conventions, and histograms whole."""
    for name, f in fams.items():
        assert name.startswith("gatehouse_"), name
        assert f["type"] is not None and f["help"], name
        if f["type"] == "counter":
            assert name.endswith("_total"), name
        if f["type"] == "histogram":
            assert name.endswith("_seconds"), name
            check_histogram(name, f["samples"])


def check_histogram(name, samples):
    buckets = [(float(l["le"].replace("+Inf", "inf")), v)
               for n, l, v in samples if n == name + "_bucket"]
    counts = [v for n, _, v in samples if n == name + "_count"]
    sums = [v for n, _, v in samples if n == name + "_sum"]
    assert buckets and len(counts) == 1 and len(sums) == 1, name
    les = [b for b, _ in buckets]
    assert les == sorted(les) and len(set(les)) == len(les), les
    assert math.isinf(les[-1]), "no +Inf bucket in " + name
    values = [v for _, v in buckets]
    assert values == sorted(values), "buckets not cumulative: %r" % values
    assert counts[0] == values[-1], "_count != +Inf bucket in " + name
    assert sums[0] >= 0


class Scraper:
    def __init__(self, port):
        self.url = "http://127.0.0.1:%d/metrics" % port

    def text(self):
        r = requests.get(self.url, timeout=5)
        assert r.status_code == 200, r.status_code
        assert r.headers["Content-Type"] == CTYPE
        return r.text

    def __call__(self, settle=True):
        """The metrics once no request is being served: a worker counts a
        request when it is done with it, which may be just after the client
        has read the whole answer, so a scrape at once could miss the last
        one.  A scrape while a request is meant to be in flight (settle
        False) is taken as it comes; so is one after 5 s without settling."""
        end = time.monotonic() + 5
        while True:
            fams = parse_exposition(self.text())
            check_conventions(fams)
            m = Metrics(fams)
            if (not settle or time.monotonic() > end
                    or m.get("gatehouse_connections", state="active") == 0):
                return m
            time.sleep(0.02)


class Metrics:
    def __init__(self, fams):
        self.fams = fams

    def get(self, name, **labels):
        """The value of the one sample of name with exactly these labels
        (0 when absent: zero series are left out)."""
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in self.fams:
                fam = name[:-len(suffix)]
        for n, l, v in self.fams.get(fam, {"samples": []})["samples"]:
            if n == name and l == labels:
                return v
        return 0

    def total(self, name, **labels):
        """The sum over every sample of name whose labels include these."""
        out = 0
        for n, l, v in self.fams.get(name, {"samples": []})["samples"]:
            if n == name and all(l.get(k) == x for k, x in labels.items()):
                out += v
        return out


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def metrics_gateway(op, tmp, upstream, extra=()):
    mport = free_port()
    g = start_gateway(op, tmp, upstream,
                      ["metrics_listen = 127.0.0.1:%d" % mport] + list(extra),
                      routes=ROUTES)
    return g, Scraper(mport)


def delta(before, after, name, **labels):
    return after.get(name, **labels) - before.get(name, **labels)


REQ = "gatehouse_requests_total"


def test_counters_move(op, tmp, upstream):
    g, scrape = metrics_gateway(op, tmp, upstream,
                                ["forward_access_token = on"])
    m0 = scrape()
    assert m0.get("gatehouse_build_info", version="0.1.0") == 1
    # Discovery and keys were fetched at start.
    assert m0.get("gatehouse_provider_fetches_total", what="discovery",
                  result="ok") >= 1
    assert m0.get("gatehouse_provider_fetches_total", what="jwks",
                  result="ok") >= 1

    # An anonymous request.
    assert requests.get(g.url + "/public/a", timeout=5).status_code == 200
    m1 = scrape()
    assert delta(m0, m1, REQ, route="/public/*", method="GET",
                 status="2xx") == 1
    assert delta(m0, m1, "gatehouse_upstream_duration_seconds_count") == 1
    assert delta(m0, m1, "gatehouse_request_duration_seconds_count") == 1

    # A sign-in, then a signed-in request.
    s, _ = sign_in(g, "alice@contoso.com", "/private")
    m2 = scrape()
    assert delta(m1, m2, "gatehouse_signins_started_total") == 1
    assert delta(m1, m2, "gatehouse_signins_completed_total") == 1
    assert delta(m1, m2, "gatehouse_provider_fetches_total", what="token",
                 result="ok") == 1
    assert delta(m1, m2, "gatehouse_session_store_operations_total",
                 op="put", result="ok") >= 1
    # The protected page itself answers the redirect to the provider:
    # no request to /.auth/login on the way.
    assert delta(m1, m2, REQ, route="/*", method="GET", status="3xx") == 1
    assert delta(m1, m2, REQ, route="/.auth/login", method="GET",
                 status="3xx") == 0
    assert delta(m1, m2, REQ, route="/.auth/callback", method="GET",
                 status="3xx") == 1
    assert m2.get("gatehouse_sessions") >= 1
    r = s.get(g.url + "/private", timeout=5)
    assert r.status_code == 200
    m3 = scrape()
    assert delta(m2, m3, REQ, route="/*", method="GET", status="2xx") == 1
    assert delta(m2, m3, "gatehouse_session_store_operations_total",
                 op="get", result="ok") >= 1
    # The keep-alive connection of the session is open and idle.
    assert m3.get("gatehouse_connections", state="idle") >= 1

    # A denied one, and one no route takes in (a POST elsewhere than the
    # routes is still /*: a signed-out API call is 401).
    assert s.get(g.url + "/admin/x", timeout=5).status_code == 403
    assert requests.post(g.url + "/api", headers={"Accept":
                         "application/json"}, timeout=5).status_code == 401
    m4 = scrape()
    assert delta(m3, m4, REQ, route="/admin/*", method="GET",
                 status="4xx") == 1
    assert delta(m3, m4, REQ, route="/*", method="POST", status="4xx") == 1

    # Failed sign-ins: an unknown state (twice: a restart, then a page),
    # and the person cancelling at the provider.
    cb = g.url + "/.auth/callback?state=%s&code=x" % ("A" * 43)
    r = requests.get(cb, allow_redirects=False, timeout=5)
    assert r.status_code == 302
    r = requests.get(cb, cookies={"gatehouse_retry": "1"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 401
    r = requests.get(g.url + "/.auth/callback?error=access_denied&state=x",
                     timeout=5)
    assert r.status_code == 401
    m5 = scrape()
    assert delta(m4, m5, "gatehouse_signins_failed_total",
                 reason="state_invalid") == 2
    assert delta(m4, m5, "gatehouse_signins_failed_total",
                 reason="cancelled") == 1
    assert delta(m4, m5, "gatehouse_signins_completed_total") == 0

    # A refresh.
    r = s.post(g.url + "/.auth/refresh", timeout=10)
    assert r.status_code == 200
    m6 = scrape()
    assert delta(m5, m6, "gatehouse_refreshes_total", result="ok") == 1
    assert delta(m5, m6, "gatehouse_provider_fetches_total", what="token",
                 result="ok") == 1
    assert delta(m5, m6, REQ, route="/.auth/refresh", method="POST",
                 status="2xx") == 1

    # A refused refresh ends the session.
    op.fault("token_error", error="invalid_grant", grant="refresh_token")
    r = s.post(g.url + "/.auth/refresh", timeout=10)
    m7 = scrape()
    assert delta(m6, m7, "gatehouse_refreshes_total", result="ended") == 1
    assert delta(m6, m7, "gatehouse_provider_fetches_total", what="token",
                 result="refused") == 1

    # The upstream goes away.
    upstream.stop()
    r = requests.get(g.url + "/public/b", timeout=5)
    assert r.status_code == 502
    m8 = scrape()
    assert delta(m7, m8, "gatehouse_upstream_errors_total",
                 kind="refused") == 1
    assert delta(m7, m8, REQ, route="/public/*", method="GET",
                 status="5xx") == 1
    # Every request made so far is in the total histogram, once.
    assert m8.get("gatehouse_request_duration_seconds_count") == \
        m8.total(REQ)


def test_active_connections(op, tmp, upstream):
    g, scrape = metrics_gateway(op, tmp, upstream)
    done = []
    t = threading.Thread(target=lambda: done.append(
        requests.get(g.url + "/slow?ms=3000", timeout=10).status_code))
    t.start()
    try:
        active = 0
        end = time.time() + 5
        while active < 1 and time.time() < end:
            active = scrape(settle=False).get("gatehouse_connections",
                                              state="active")
        assert active == 1
    finally:
        t.join()
    assert done == [200]
    m = scrape()
    assert m.get("gatehouse_connections", state="active") == 0
    assert m.get("gatehouse_upstream_duration_seconds_bucket",
                 le="2.5") < m.get("gatehouse_upstream_duration_seconds_bucket",
                                   le="5")


def test_no_client_string_in_labels(op, tmp, upstream):
    g, scrape = metrics_gateway(op, tmp, upstream)
    marker = "mk" + uuid.uuid4().hex
    hdrs = {"User-Agent": marker, "X-Forwarded-Host": marker,
            "Accept": "application/json", "Cookie": "gatehouse=" + marker,
            "Authorization": "Bearer " + marker}
    for path in ("/public/" + marker, "/" + marker, "/admin/" + marker,
                 "/.auth/" + marker, "/.auth/login?post_login_redirect_uri=/"
                 + marker, "/.auth/callback?state=%s&code=%s" % (marker,
                                                                 marker)):
        requests.get(g.url + path, headers=hdrs, allow_redirects=False,
                     timeout=5)
        requests.request(marker.upper(), g.url + path, headers=hdrs,
                         allow_redirects=False, timeout=5)
    raw_request(g.port, b"GET /" + marker.encode() + b" HTTP/1.1\r\nHost: "
                + marker.encode() + b"\r\n" + marker.encode() + b": x\r\n\r\n")
    sign_in(g, marker + "@contoso.com", "/" + marker)
    text = scrape.text()
    parse_exposition(text)
    assert marker not in text.lower()
    assert marker.upper() not in text
    # They were counted, under labels from fixed sets only.
    m = scrape()
    patterns = {r.split()[1] for r in ROUTES}
    endpoints = {"/.auth/" + e for e in ("healthz", "login", "logout",
                                          "logout/complete", "callback",
                                          "me", "refresh", "verify",
                                          "readyz")}
    fixed = {"invalid", "unmatched", "default", "other", "unknown_endpoint"}
    samples = m.fams[REQ]["samples"]
    for _, labels, _ in samples:
        assert labels["route"] in patterns | endpoints | fixed, labels
        assert labels["method"] in ("GET", "HEAD", "POST", "PUT", "DELETE",
                                    "PATCH", "OPTIONS", "other"), labels
        assert labels["status"] in ("1xx", "2xx", "3xx", "4xx", "5xx")
    assert m.total(REQ, method="other") >= 6
    assert m.total(REQ) >= 13


def test_listener_is_strict(op, tmp, upstream):
    g, scrape = metrics_gateway(op, tmp, upstream)
    port = int(scrape.url.split(":")[2].split("/")[0])

    def status(data):
        out = raw_request(port, data, timeout=15)
        return int(out.split(b" ", 2)[1]) if out else None

    assert status(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == 200
    assert status(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n") == 200
    assert status(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n") \
        == 405
    assert status(b"HEAD /metrics HTTP/1.1\r\n\r\n") == 405
    assert status(b"GET /metricsx HTTP/1.1\r\n\r\n") == 404
    assert status(b"GET / HTTP/1.1\r\n\r\n") == 404
    assert status(b"GET /metrics HTTP/2.0\r\n\r\n") == 400
    assert status(b"GET /metrics HTTP/1.1\r\n folded\r\n\r\n") == 400
    assert status(b"GET /metrics HTTP/1.1\r\nA\x01: b\r\n\r\n") == 400
    assert status(b"GET /metrics HTTP/1.1\r\nA: \x00\r\n\r\n") == 400
    assert status(b"get /metrics HTTP/1.1\r\n\r\n") == 400
    assert status(b"GET /metrics HTTP/1.1\r\nA: " + b"x" * 9000 +
                  b"\r\n\r\n") == 431
    # A client that sends half a head is cut at the deadline (10 s).
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.1\r\n")
    s.settimeout(20)
    assert s.recv(100) == b""
    s.close()
    # More clients than it serves at once are closed, not queued forever;
    # it keeps serving afterwards.
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    for s in socks:
        s.close()
    # Until the listener has seen those 40 go (later under a sanitizer), a
    # new client may still be one too many and closed at once: it serves
    # again as soon as they are gone.
    end = time.monotonic() + 20
    while True:
        try:
            st = status(b"GET /metrics HTTP/1.1\r\n\r\n")
        except ConnectionError:
            st = None
        if st == 200 or time.monotonic() > end:
            break
        time.sleep(0.1)
    assert st == 200
    # The proxy's own port does not serve the exposition.
    r = requests.get(g.url + "/metrics", allow_redirects=False, timeout=5)
    assert "gatehouse_build_info" not in r.text
    scrape()


def test_metrics_listen_config(tmp, upstream):
    conf = tmp + "/m.conf"

    def check(lines):
        with open(conf, "w") as f:
            f.write("upstream = %s\n" % upstream.url + "\n".join(lines) + "\n")
        return subprocess.run([BIN, "-c", conf, "--check"],
                              capture_output=True, text=True)

    p = check(["listen = 127.0.0.1:8080", "metrics_listen = 127.0.0.1:8080"])
    assert p.returncode != 0 and "metrics_listen must be another port" in \
        p.stderr, p.stderr
    p = check(["metrics_listen = 127.0.0.1"])
    assert p.returncode != 0 and ":2: metrics_listen: expected host:port" in \
        p.stderr, p.stderr
    p = check(["metrics_listen = example.com:9090"])
    assert p.returncode != 0 and "metrics_listen" in p.stderr
    assert check(["metrics_listen = [::1]:9090"]).returncode == 0
    assert check(["metrics_listen = off"]).returncode == 0


def test_off_by_default_and_busy_port(tmp, upstream):
    g = Gatehouse(tmp, ["upstream = " + upstream.url,
                        "route /* allow anonymous"])
    assert requests.get(g.url + "/x", timeout=5).status_code == 200
    assert "metrics listening" not in g.log()
    # A port that is taken stops the start with a line naming the key.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    conf = tmp + "/b.conf"
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\nupstream = %s\nmetrics_listen = "
                "127.0.0.1:%d\n" % (free_port(), upstream.url, port))
    p = subprocess.run([BIN, "-c", conf], capture_output=True, text=True,
                       timeout=20)
    busy.close()
    assert p.returncode != 0
    assert "metrics_listen 127.0.0.1:%d" % port in p.stderr, p.stderr
