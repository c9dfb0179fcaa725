#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""An ordinary web app that knows nothing of OpenID Connect.

It sits behind gatehouse and trusts the identity headers gatehouse sets
(and strips from every client request): X-MS-CLIENT-PRINCIPAL-NAME,
X-MS-CLIENT-PRINCIPAL (base64 JSON of the claims, Azure App Service "Easy
Auth" format), X-Forwarded-User, and, with forward_access_token = on,
X-MS-TOKEN-AAD-ACCESS-TOKEN, which /call-api uses to call Microsoft Graph
/me the way the MSAL sample's "call a downstream API" page does.

    /usr/bin/python3 app.py [--host 127.0.0.1] [--port 0] [--port-file F]

Pages: /  /call-api  /headers.json  /echo (any method)  /healthz.
The HTML pages never show a token; /headers.json (for tests) shows every
header exactly as received.
Environment: GRAPH_ENDPOINT (default https://graph.microsoft.com/v1.0).
Python standard library only.
"""
import argparse
import base64
import binascii
import html
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GRAPH_ENDPOINT = os.environ.get(
    "GRAPH_ENDPOINT", "https://graph.microsoft.com/v1.0").rstrip("/")
TOKEN_HEADER = "X-MS-TOKEN-AAD-ACCESS-TOKEN"
SECRET_HEADERS = {TOKEN_HEADER.lower(), "x-ms-token-aad-id-token",
                  "x-ms-token-aad-refresh-token", "authorization", "cookie"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
 margin:0;background:#f6f7f9;color:#1f2328}
header{background:#24292f;color:#fff;padding:12px 24px;display:flex;
 align-items:center;gap:24px}
header b{font-size:18px}
header a{color:#c9d1d9;text-decoration:none}
header a:hover{color:#fff}
main{max-width:960px;margin:24px auto;padding:0 24px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;
 padding:16px 20px;margin-bottom:20px}
h1{font-size:22px;margin:0 0 8px}
h2{font-size:16px;margin:0 0 12px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;vertical-align:top;padding:4px 8px;
 border-bottom:1px solid #eaeef2}
th{width:30%;color:#57606a;font-weight:600}
td{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;
 word-break:break-all}
pre{background:#f6f8fa;padding:12px;border-radius:6px;overflow:auto;
 font-size:13px}
.muted{color:#57606a}
.err{color:#cf222e}
.btn{display:inline-block;padding:5px 14px;border:1px solid #1f883d;
 background:#1f883d;color:#fff;border-radius:6px;text-decoration:none}
"""


def esc(s):
    return html.escape(str(s), quote=True)


def principal_from(headers):
    """Decode X-MS-CLIENT-PRINCIPAL; None when absent, a string on error."""
    raw = headers.get("X-MS-CLIENT-PRINCIPAL")
    if not raw:
        return None
    try:
        raw = raw.strip()
        data = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=False)
        obj = json.loads(data.decode("utf-8"))
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        return obj
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        return "cannot decode X-MS-CLIENT-PRINCIPAL: %s" % e


def user_name(headers):
    return (headers.get("X-MS-CLIENT-PRINCIPAL-NAME")
            or headers.get("X-Forwarded-User") or None)


def table(rows, head=None):
    out = ["<table>"]
    if head:
        out.append("<tr>%s</tr>" % "".join("<th>%s</th>" % esc(h) for h in head))
    for k, v in rows:
        out.append("<tr><th>%s</th><td>%s</td></tr>" % (esc(k), esc(v)))
    out.append("</table>")
    return "".join(out)


def shown_value(name, value):
    """Header values for the HTML page: never show a token itself; of
    cookies, only their names."""
    if name.lower() == "cookie":
        names = [c.split("=", 1)[0].strip() for c in value.split(";")]
        return "; ".join("%s=(not shown)" % n for n in names if n)
    if name.lower() in SECRET_HEADERS:
        return "(%d characters, not shown)" % len(value)
    return value


def headers_json(headers):
    """Every received header, in the case received: a string, or a list
    when the header came more than once.  Unlike the HTML page this shows
    values as they are (tests read the forwarded token here)."""
    out = {}
    for k, v in headers.items():
        if k in out:
            if not isinstance(out[k], list):
                out[k] = [out[k]]
            out[k].append(v)
        else:
            out[k] = v
    return out


def layout(title, body, signed_in):
    nav = ['<a href="/">Home</a>', '<a href="/call-api">Call a downstream API</a>']
    if signed_in:
        nav.append('<a href="/.auth/logout">Sign out</a>')
    else:
        nav.append('<a href="/.auth/login?post_login_redirect_uri=/">Sign in</a>')
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>%s</title><style>%s</style></head><body><header>"
            "<b>Upstream app</b>%s</header><main>%s</main></body></html>"
            % (esc(title), CSS, " ".join(nav), body))


def graph_me(token):
    """GET {GRAPH_ENDPOINT}/me; (ok, status, parsed-or-text)."""
    req = urllib.request.Request(
        GRAPH_ENDPOINT + "/me",
        headers={"Authorization": "Bearer " + token,
                 "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body = e.read()
        status = e.code
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return False, None, "cannot reach %s: %s" % (GRAPH_ENDPOINT, reason)
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        parsed = body.decode("utf-8", "replace")[:2000]
    return 200 <= status < 300, status, parsed


class Handler(BaseHTTPRequestHandler):
    server_version = "upstream-app/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("app: %s %s\n" % (self.address_string(), fmt % args))

    # -- helpers
    def send(self, status, ctype, body, extra=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = self.headers.get("Content-Length")
        if n is not None:
            try:
                n = int(n)
            except ValueError:
                n = 0
            size = 0
            while size < n:
                chunk = self.rfile.read(min(65536, n - size))
                if not chunk:
                    break
                size += len(chunk)
            return size
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            size = 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    break
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = n
                while left:
                    chunk = self.rfile.read(min(65536, left))
                    if not chunk:
                        return size
                    left -= len(chunk)
                    size += len(chunk)
                self.rfile.readline(8)
            return size
        return 0

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        if path == "/echo" or path.startswith("/echo/"):
            return self.echo(url)
        self.read_body()  # keeps a keep-alive connection in step
        if path == "/healthz":
            return self.send(200, "text/plain; charset=utf-8", "ok\n")
        if self.command not in ("GET", "HEAD"):
            return self.send(405, "text/plain; charset=utf-8",
                             "method not allowed\n", {"Allow": "GET, HEAD"})
        if path == "/":
            return self.home()
        if path == "/call-api":
            return self.call_api()
        if path == "/headers.json":
            body = json.dumps(headers_json(self.headers), indent=2) + "\n"
            return self.send(200, "application/json", body)
        return self.send(404, "text/html; charset=utf-8", layout(
            "Not found", "<section><h1>Not found</h1><p class=\"muted\">%s</p>"
            "</section>" % esc(path), user_name(self.headers) is not None))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = \
        do_OPTIONS = dispatch

    # -- pages
    def echo(self, url):
        size = self.read_body()
        body = json.dumps({
            "method": self.command,
            "path": url.path,
            "query": url.query,
            "args": urllib.parse.parse_qs(url.query, keep_blank_values=True),
            "body_size": size,
            "user": user_name(self.headers),
        }, indent=2) + "\n"
        self.send(200, "application/json", body)

    def home(self):
        h = self.headers
        name = user_name(h)
        parts = []
        if name is None:
            parts.append(
                "<section><h1>Not signed in</h1><p class=\"muted\">This page is "
                "public. Sign in and it greets you by name: gatehouse tells "
                "this app who you are in the request headers (none came with "
                "this request).</p><p>"
                "<a class=\"btn\" href=\"/.auth/login?post_login_redirect_uri="
                "/\">Sign in</a></p></section>")
        else:
            who = [("Name", name)]
            for k in ("X-MS-CLIENT-PRINCIPAL-ID", "X-MS-CLIENT-PRINCIPAL-IDP",
                      "X-Forwarded-Email", "X-Forwarded-User"):
                if h.get(k):
                    who.append((k, h.get(k)))
            parts.append(
                "<section><h1>Hello, %s</h1><p class=\"muted\">This app has no "
                "sign-in code: gatehouse signed you in and told it who you "
                "are in the request headers.</p>%s<p><a href=\"/call-api\">"
                "Call a downstream API</a> &middot; <a href=\"/.auth/logout\">"
                "Sign out</a></p></section>" % (esc(name), table(who)))
            p = principal_from(h)
            if isinstance(p, str):
                parts.append("<section><h2>Claims</h2><p class=\"err\">%s</p>"
                             "</section>" % esc(p))
            elif p is not None:
                claims = [(c.get("typ", ""), c.get("val", ""))
                          for c in p.get("claims") or []
                          if isinstance(c, dict)]
                meta = "auth_typ %s &middot; name_typ %s &middot; role_typ %s" % (
                    esc(p.get("auth_typ", "")), esc(p.get("name_typ", "")),
                    esc(p.get("role_typ", "")))
                parts.append("<section><h2>Claims (X-MS-CLIENT-PRINCIPAL)</h2>"
                             "<p class=\"muted\">%s</p>%s</section>"
                             % (meta, table(claims, ("Claim", "Value"))))
        rows = [(k, shown_value(k, v)) for k, v in h.items()]
        parts.append("<section><h2>Request headers this app received</h2>%s"
                     "<p class=\"muted\">%s %s</p></section>"
                     % (table(rows), esc(self.command), esc(self.path)))
        self.send(200, "text/html; charset=utf-8",
                  layout("Upstream app", "".join(parts), name is not None))

    def call_api(self):
        h = self.headers
        name = user_name(h)
        token = h.get(TOKEN_HEADER)
        url = GRAPH_ENDPOINT + "/me"
        if not token:
            body = ("<section><h1>Call a downstream API</h1><p class=\"err\">"
                    "No access token reached this app.</p><p>The request has "
                    "no <code>%s</code> header. Turn on <code>forward_access_"
                    "token = on</code> in gatehouse's configuration and ask "
                    "for a Graph scope (<code>scopes = User.Read</code>), then "
                    "sign in again.</p></section>" % esc(TOKEN_HEADER))
            return self.send(200, "text/html; charset=utf-8",
                             layout("Call a downstream API", body,
                                    name is not None))
        ok, status, result = graph_me(token)
        if ok:
            body = ("<section><h1>Microsoft Graph /me</h1><p class=\"muted\">"
                    "GET %s with the access token gatehouse forwarded "
                    "(HTTP %s)</p><pre>%s</pre></section>"
                    % (esc(url), esc(status), esc(json.dumps(result, indent=2))))
        else:
            code = message = ""
            if isinstance(result, dict) and isinstance(result.get("error"), dict):
                code = result["error"].get("code", "")
                message = result["error"].get("message", "")
            elif isinstance(result, str):
                message = result
            body = ("<section><h1>Microsoft Graph /me failed</h1>"
                    "<table><tr><th>Endpoint</th><td>%s</td></tr>"
                    "<tr><th>HTTP status</th><td>%s</td></tr>"
                    "<tr><th>Error code</th><td>%s</td></tr>"
                    "<tr><th>Message</th><td>%s</td></tr></table></section>"
                    % (esc(url), esc(status if status is not None else "no response"),
                       esc(code), esc(message)))
        self.send(200, "text/html; charset=utf-8",
                  layout("Call a downstream API", body, name is not None))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    a = ap.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    sys.stderr.write("app: listening on http://%s:%d (Graph %s)\n"
                     % (a.host, port, GRAPH_ENDPOINT))

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    srv.serve_forever()
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
