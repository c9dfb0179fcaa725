#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""make bench: gatehouse against nginx as a plain proxy and Apache with
mod_auth_openidc, in front of the same upstream, in one run (ratios from
the same run are what count on a shared machine).

Everything runs on loopback and is stopped by PID: an nginx upstream, a
fast local OpenID Provider (bench/fast_op.mjs), gatehouse (workers = 1),
nginx as a plain proxy, and Apache (event MPM) both as a plain mod_proxy
and with mod_auth_openidc (server-side sessions in shm).  wrk is pinned to
CPU 0; the proxy under test and the upstream share CPU 1.  See
bench/README.md for what each figure means and the latest results.
"""
import argparse
import datetime
import json
import multiprocessing
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import http.client
from urllib.parse import urljoin, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
BIN = os.environ.get("GATEHOUSE_BIN", os.path.join(ROOT, "build", "gatehouse"))
NCPU = os.cpu_count() or 1
TICK = os.sysconf("SC_CLK_TCK")
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench~secret+/="
APACHE_MODS = "/usr/lib/apache2/modules"
CASES = [("hello", 64), ("hello", 256), ("hello", 1024), ("16k", 64)]
SMALL = "hello\n"
BEFORE = "gatehouse (before)"
# Two configurations of each proxy: tuned for the bench, and as most
# deployments run it (see CONFIGS, which the report prints).
NGX = "nginx tuned"
NGX_TYP = "nginx typical"
GH = "gatehouse tuned"
GH_DEF = "gatehouse defaults"
CONFIGS = {
    "upstream direct": "Debian's nginx, 1 worker, `return 200`, access "
    "log off, client_header_buffer_size 4k (reads a request with "
    "identity headers in one call, as app servers do): no proxy",
    NGX: "1 worker, access log off, keepalive_requests 1000000, upstream "
    "keepalive 64",
    NGX_TYP: "1 worker, access log on (combined format, to a file, "
    "unbuffered, as Debian's nginx.conf), keepalive_timeout 65, "
    "keepalive_requests at its default (1000), upstream keepalive 64",
    "apache mod_proxy": "event MPM, Debian's mpm_event.conf numbers, "
    "MaxKeepAliveRequests 0, no access log",
    "mod_auth_openidc": "the same Apache, server-cache sessions in shm, "
    "PKCE S256",
    GH: "`workers = 1`, `log_level = warn`, `access_log = off`",
    GH_DEF: "only the keys it needs (listen, upstream, provider, client, "
    "session store and key, one route): `workers = auto` (2 threads, on "
    "the one core the proxies get), access log on (buffered, to stderr, "
    "here a file), `log_level = info`",
    BEFORE: "the --before binary, configured as gatehouse tuned",
}
# Many keep-alive clients, few active: the shape of browsers.
KA_CONNS, KA_ACTIVE = 20000, 500
REDIS_GH = "gatehouse x2 on Redis"
REDIS_OIDC = "mod_auth_openidc on Redis"


def log(msg):
    print(msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc=None, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process %s exited with %s" % (
                proc.args, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("port %d" % port)


def pin(cpu):
    if NCPU >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


# -- /proc accounting ------------------------------------------------------

def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime 15, cutime
    # 16, cstime 17, ppid 4.
    return {"ppid": int(fields[1]), "utime": int(fields[11]),
            "stime": int(fields[12]), "cutime": int(fields[13]),
            "cstime": int(fields[14])}


def proc_tree(root):
    """root and all its descendants (pids)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                kids.setdefault(proc_stat(int(d))["ppid"], []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, pending = [], [root]
    while pending:
        p = pending.pop()
        out.append(p)
        pending.extend(kids.get(p, []))
    return out


def cpu_ticks(root):
    """utime+stime of every live process of the tree rooted at root, plus
    the root's reaped children (cutime+cstime)."""
    total = 0
    for pid in proc_tree(root):
        try:
            st = proc_stat(pid)
        except (OSError, ValueError, IndexError):
            continue
        total += st["utime"] + st["stime"]
        if pid == root:
            total += st["cutime"] + st["cstime"]
    return total


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_kb(root, key):
    return sum(status_kb(p, key) for p in proc_tree(root))


def tree_pss_kb(root):
    total = 0
    for p in proc_tree(root):
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


# -- servers ---------------------------------------------------------------

class Servers:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def spawn(self, name, cmd, cpu, env=None):
        logf = open(os.path.join(self.tmp, name + ".log"), "wb")
        p = subprocess.Popen(pin(cpu) + cmd, stdout=logf, stderr=logf,
                             stdin=subprocess.DEVNULL, env=env)
        logf.close()
        self.procs.append((name, p))
        return p

    def log_of(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in reversed(self.procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                log("bench: %s (pid %d) ignored SIGTERM; killing it"
                    % (name, p.pid))
                p.kill()
                p.wait(5)


def start_upstream(sv):
    port = free_port()
    tmp = sv.tmp
    with open(os.path.join(tmp, "16k.bin"), "wb") as f:
        f.write(b"x" * 16384)
    conf = os.path.join(tmp, "nginx-up.conf")
    with open(conf, "w") as f:
        f.write("""
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid %(tmp)s/nginx-up.pid;
error_log %(tmp)s/nginx-up.err warn;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 1000000;
    default_type text/plain;
    # An app behind an identity proxy receives requests of 1.5 KB and
    # more (Easy Auth's principal alone is over 1 KB); nginx's default
    # 1 KB header buffer would read each in two recv calls and a copy,
    # which no app server does (they read 4 to 64 KB at a time).
    client_header_buffer_size 4k;
    server {
        listen 127.0.0.1:%(port)d backlog=4096;
        location = /16k { alias %(tmp)s/16k.bin; }
        location / { return 200 "hello\\n"; }
    }
}
""" % {"tmp": tmp, "port": port})
    p = sv.spawn("nginx-up", ["nginx", "-c", conf, "-p", tmp], 1)
    wait_port(port, p)
    return p, port


def start_nginx_proxy(sv, up_port, typical=False, nofile=20000):
    """nginx as a plain proxy: tuned (no access log, unlimited keep-alive
    requests), or typical (an access log file, nginx's default
    keepalive_requests, Debian's keepalive_timeout)."""
    port = free_port()
    tmp = sv.tmp
    name = "nginx-typical" if typical else "nginx-proxy"
    conf = os.path.join(tmp, name + ".conf")
    if typical:
        http = ("access_log %s/%s-access.log combined;\n"
                "    keepalive_timeout 65;" % (tmp, name))
    else:
        http = "access_log off;\n    keepalive_requests 1000000;"
    with open(conf, "w") as f:
        f.write("""
worker_processes 1;
worker_rlimit_nofile %(nofile)d;
daemon off;
pid %(tmp)s/%(name)s.pid;
error_log %(tmp)s/%(name)s.err warn;
events { worker_connections 32768; }
http {
    %(http)s
    upstream app { server 127.0.0.1:%(up)d; keepalive 64; }
    server {
        listen 127.0.0.1:%(port)d backlog=4096;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }
    }
}
""" % {"tmp": tmp, "port": port, "up": up_port, "name": name,
       "http": http, "nofile": nofile})
    p = sv.spawn(name, ["nginx", "-c", conf, "-p", tmp], 1)
    wait_port(port, p)
    return p, port


def start_op(sv, gh_ports, ap_ports):
    pf = os.path.join(sv.tmp, "op.port")
    redirects = ["http://127.0.0.1:%d/.auth/callback" % p for p in gh_ports]
    redirects += ["http://127.0.0.1:%d/redirect_uri" % p for p in ap_ports]
    p = sv.spawn("op", ["node", os.path.join(HERE, "fast_op.mjs"), pf,
                        CLIENT_ID, CLIENT_SECRET] + redirects, 0)
    end = time.time() + 20
    while not os.path.exists(pf):
        if p.poll() is not None or time.time() > end:
            raise RuntimeError("fast_op.mjs did not start: " +
                               sv.log_of("op"))
        time.sleep(0.05)
    with open(pf) as f:
        return p, int(f.read())


def start_gatehouse(sv, up_port, op_port, port, workers, store_parent=None,
                    name="gatehouse", binary=BIN, store_url=None,
                    key_name=None, defaults=False):
    """A gatehouse on port; its sessions in LMDB under store_parent (or
    the temporary directory), or in the store named by store_url (replicas
    that share one pass the same key_name: they must share the key file).
    defaults: none of the tuning keys (workers, log_level, access_log)."""
    tmp = sv.tmp
    conf = os.path.join(tmp, name + ".conf")
    store = store_url or os.path.join(store_parent or tmp, name + "-sessions")
    tuning = [] if defaults else [
        "workers = %d" % workers,
        "log_level = warn",
        "access_log = off",  # as nginx tuned and Apache run here
    ]
    with open(conf, "w") as f:
        f.write("\n".join([
            "listen = 127.0.0.1:%d" % port,
            "upstream = http://127.0.0.1:%d" % up_port,
        ] + tuning + [
            "oidc_issuer = http://127.0.0.1:%d" % op_port,
            "client_id = " + CLIENT_ID,
            "client_secret = " + CLIENT_SECRET,
            "redirect_uri = http://127.0.0.1:%d/.auth/callback" % port,
            "session_store = " + store,
            "session_key_file = " + os.path.join(tmp, (key_name or name)
                                                 + ".key"),
            "route /* allow authenticated",
        ]) + "\n")
    p = sv.spawn(name, [binary, "-c", conf], 1)
    wait_port(port, p)
    # The provider's metadata arrives asynchronously after start.
    end = time.time() + 15
    while time.time() < end:
        st, _, _ = http_get(port, "/.auth/login", {"Accept": "text/html"})
        if st == 302:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError("gatehouse never became ready: " +
                           sv.log_of(name)[-2000:])
    return p, store


def start_apache(sv, up_port, op_port, oidc_port, name="apache",
                 redis_port=None):
    """Apache with a plain mod_proxy virtual host and one with
    mod_auth_openidc, its sessions in shm or, with redis_port, in Redis
    (OIDCCacheType redis, as several Apache replicas would share them)."""
    tmp = sv.tmp
    plain_port = free_port()
    conf = os.path.join(tmp, name + ".conf")
    if redis_port:
        cache = ("OIDCCacheType redis\n    OIDCRedisCacheServer "
                 "127.0.0.1:%d" % redis_port)
    else:
        cache = "OIDCCacheType shm\n    OIDCCacheShmMax 20000"
    # Two instances may run at once: each has its own runtime files.
    run = os.path.join(tmp, name + "-run")
    os.makedirs(run, exist_ok=True)
    os.chmod(run, 0o777)
    mods = ["mpm_event", "authn_core", "authz_core", "authz_user",
            "proxy", "proxy_http", "auth_openidc"]
    with open(conf, "w") as f:
        for m in mods:
            f.write("LoadModule %s_module %s/mod_%s.so\n" % (m, APACHE_MODS, m))
        f.write("""
ServerRoot %(tmp)s
ServerName 127.0.0.1
DefaultRuntimeDir %(run)s
PidFile %(tmp)s/%(name)s.pid
ErrorLog %(tmp)s/%(name)s-error.log
LogLevel warn
Mutex file:%(run)s default
User www-data
Group www-data
Listen 127.0.0.1:%(plain)d
Listen 127.0.0.1:%(oidc)d
# Debian's mpm_event.conf, except no child recycling and unlimited
# keep-alive requests (as nginx and gatehouse in this bench).
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
ListenBacklog 4096

<VirtualHost 127.0.0.1:%(plain)d>
    ProxyPass / http://127.0.0.1:%(up)d/
</VirtualHost>

<VirtualHost 127.0.0.1:%(oidc)d>
    OIDCProviderMetadataURL http://127.0.0.1:%(op)d/.well-known/openid-configuration
    OIDCClientID %(cid)s
    OIDCClientSecret "%(secret)s"
    OIDCRedirectURI http://127.0.0.1:%(oidc)d/redirect_uri
    OIDCCryptoPassphrase bench-passphrase-0123456789abcdef
    OIDCScope "openid profile offline_access"
    OIDCPKCEMethod S256
    OIDCSSLValidateServer Off
    %(cache)s
    OIDCSessionType server-cache
    OIDCSessionInactivityTimeout 3600
    OIDCProviderTokenEndpointAuth client_secret_post
    ProxyPass /redirect_uri !
    ProxyPass / http://127.0.0.1:%(up)d/
    <Location />
        AuthType openid-connect
        Require valid-user
    </Location>
</VirtualHost>
""" % {"tmp": tmp, "plain": plain_port, "oidc": oidc_port, "up": up_port,
       "op": op_port, "cid": CLIENT_ID, "secret": CLIENT_SECRET,
       "name": name, "cache": cache, "run": run})
    p = sv.spawn(name, ["apache2", "-f", conf, "-DFOREGROUND"], 1)
    wait_port(plain_port, p)
    wait_port(oidc_port, p)
    return p, plain_port


# -- a small HTTP client with cookies (sign-in flows) ------------------------

def http_get(port, path, headers=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, r.headers, body
    finally:
        if conn is None:
            c.close()


class Browser:
    """Follows redirects across hosts with a cookie jar per host:port,
    over keep-alive connections (one per host:port)."""

    def __init__(self):
        self.conns = {}

    def reset(self):
        self.jar = {}

    def get(self, url):
        u = urlsplit(url)
        key = u.netloc
        path = u.path + ("?" + u.query if u.query else "")
        hdrs = {"Accept": "text/html", "Host": u.netloc}
        jar = self.jar.setdefault(key, {})
        if jar:
            hdrs["Cookie"] = "; ".join("%s=%s" % kv for kv in jar.items())
        for attempt in (0, 1):
            c = self.conns.get(key)
            if c is None:
                c = http.client.HTTPConnection(u.hostname, u.port,
                                               timeout=30)
                self.conns[key] = c
            try:
                c.request("GET", path, headers=hdrs)
                r = c.getresponse()
                body = r.read()
                break
            except (http.client.HTTPException, OSError):
                c.close()
                del self.conns[key]
                if attempt:
                    raise
        for v in r.headers.get_all("Set-Cookie") or []:
            nv = v.split(";", 1)[0]
            name, _, val = nv.partition("=")
            if "max-age=0" in v.lower() or "expires=thu, 01 jan 1970" in \
                    v.lower():
                jar.pop(name.strip(), None)
            else:
                jar[name.strip()] = val.strip()
        return r.status, r.headers, body

    def sign_in(self, base, path="/hello"):
        """Anonymous GET of a protected page, then follow every redirect
        (gateway, provider, callback) until a page: the sign-in is complete
        when the protected page comes back from the upstream."""
        self.reset()
        url = base + path
        for _ in range(10):
            st, h, body = self.get(url)
            if st in (301, 302, 303, 307):
                url = urljoin(url, h["Location"])
                continue
            if st == 200 and body == SMALL.encode():
                return self.jar.get(urlsplit(base).netloc, {})
            raise RuntimeError("sign-in ended with %d at %s: %r" % (
                st, url, body[:300]))
        raise RuntimeError("sign-in: too many redirects")


def cookie_header(jar):
    return "; ".join("%s=%s" % kv for kv in jar.items())


def signin_run(base, root, n, clients):
    """n complete sign-ins at base by `clients` processes; the gateway's
    CPU time (the process tree at root) over them."""
    per = [n // clients] * clients
    per[0] += n - sum(per)
    c0, w0 = cpu_ticks(root), time.time()
    with multiprocessing.Pool(clients) as pool:
        out = pool.map(signin_worker, [(base, k) for k in per])
    wall = time.time() - w0
    cpu = (cpu_ticks(root) - c0) / TICK
    errs = sum(e for e, _ in out)
    done = n - errs
    first = next((f for _, f in out if f), None)
    if first:
        log("bench: %d sign-ins at %s failed; the first: %s"
            % (errs, base, first))
    return {"rate": done / wall, "cpu_ms": cpu * 1000 / max(done, 1),
            "busy": cpu / wall, "errors": errs}


def signin_worker(args):
    base, n = args
    os.sched_setaffinity(0, {0}) if NCPU >= 2 else None
    b = Browser()
    errors, first = 0, None
    for _ in range(n):
        try:
            b.sign_in(base)
        except Exception as e:   # noqa: BLE001 (counted and reported)
            errors += 1
            first = first or repr(e)[:300]
    return errors, first


# -- wrk -------------------------------------------------------------------

def parse_ms(v, unit):
    v = float(v)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def wrk_cmd(port, path, conns, seconds, cookie):
    cmd = pin(0) + ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds,
                    "--latency", "-H", "Accept: text/html"]
    if cookie:
        cmd += ["-H", "Cookie: " + cookie]
    cmd.append("http://127.0.0.1:%d/%s" % (port, path))
    return cmd


def wrk(port, path, conns, seconds, cookie, root, upstream=None):
    """One wrk run; CPU/req of root's processes, and of the upstream's
    (which shares the proxy's core: what a proxy sends it costs there)."""
    t0 = cpu_ticks(root)
    u0 = cpu_ticks(upstream) if upstream else 0
    out = subprocess.run(wrk_cmd(port, path, conns, seconds, cookie),
                         capture_output=True, text=True).stdout
    t1 = cpu_ticks(root)
    u1 = cpu_ticks(upstream) if upstream else 0
    r = wrk_parse(out)
    n = r["requests"]
    r["cpu_us"] = (t1 - t0) * 1e6 / TICK / n if n else float("nan")
    r["up_us"] = (u1 - u0) * 1e6 / TICK / n if n and upstream \
        else float("nan")
    return r


def wrk_split(ports, path, conns, seconds, cookie, roots):
    """conns connections split evenly over the replicas at ports, one wrk
    per replica, at once (all on CPU 0, as the one wrk of the other
    targets); their requests summed; p50 and p99 the worse replica's;
    CPU/req of each group of process trees in roots (name -> list of
    pids) separately."""
    def ticks():
        return {k: sum(cpu_ticks(p) for p in v) for k, v in roots.items()}
    t0 = ticks()
    procs = [subprocess.Popen(wrk_cmd(p, path, conns // len(ports), seconds,
                                      cookie),
                              stdout=subprocess.PIPE, text=True)
             for p in ports]
    outs = [wrk_parse(p.communicate()[0]) for p in procs]
    t1 = ticks()
    reqs = sum(o["requests"] for o in outs)
    r = {"rps": sum(o["rps"] for o in outs),
         "p50": max(o["p50"] for o in outs),
         "p99": max(o["p99"] for o in outs), "requests": reqs,
         "non2xx": sum(o["non2xx"] for o in outs),
         "sockerr": sum(o["sockerr"] for o in outs),
         "raw": "\n".join(o["raw"] for o in outs)}
    for k in roots:
        r["cpu_us_" + k] = (t1[k] - t0[k]) * 1e6 / TICK / reqs \
            if reqs else float("nan")
    return r


def wrk_parse(out):
    m = re.search(r"(\d+) requests in", out)
    reqs = int(m.group(1)) if m else 0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)

    def lat(q):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % q, out, re.M)
        return parse_ms(m.group(1), m.group(2)) if m else float("nan")

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                     r"timeout (\d+)", out)
    return {"rps": float(rps.group(1)) if rps else 0.0,
            "p50": lat("50"), "p99": lat("99"), "requests": reqs,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "sockerr": sum(int(x) for x in sock.groups()) if sock else 0,
            "raw": out}


# -- several replicas on Redis ------------------------------------------------

REDIS_CASES = [("hello", 64), ("hello", 256)]


def start_redis(sv):
    """One redis-server for both sides, persistence off (no RDB snapshot,
    no AOF): neither side pays for disk, as the LMDB rows pay only for
    their own store."""
    port = free_port()
    d = os.path.join(sv.tmp, "redis")
    os.makedirs(d, exist_ok=True)
    p = sv.spawn("redis", ["redis-server", "--bind", "127.0.0.1", "--port",
                           str(port), "--dir", d, "--save", "",
                           "--appendonly", "no", "--loglevel", "warning"], 1)
    wait_port(port, p)
    return p, port


def redis_section(a, sv, up_port, op_port, ra_port, rb_port, ar_port):
    """Two gatehouse replicas sharing sessions in one redis-server, against
    Apache + mod_auth_openidc with its cache in the same Redis: signed-in
    requests per second (wrk split over the replicas) and sign-ins."""
    rd, rport = start_redis(sv)
    url = "redis://127.0.0.1:%d" % rport
    ga, _ = start_gatehouse(sv, up_port, op_port, ra_port, a.workers,
                            name="gatehouse-redis-a", store_url=url,
                            key_name="gatehouse-redis")
    gb, _ = start_gatehouse(sv, up_port, op_port, rb_port, a.workers,
                            name="gatehouse-redis-b", store_url=url,
                            key_name="gatehouse-redis")
    ar, _ = start_apache(sv, up_port, op_port, ar_port, name="apache-redis",
                         redis_port=rport)
    b = Browser()
    g_cookie = cookie_header(b.sign_in("http://127.0.0.1:%d" % ra_port))
    a_cookie = cookie_header(b.sign_in("http://127.0.0.1:%d" % ar_port))
    # The session made on replica A serves on B: they really share it.
    for port, cookie in ((ra_port, g_cookie), (rb_port, g_cookie),
                         (ar_port, a_cookie)):
        st, _, body = http_get(port, "/hello", {"Cookie": cookie})
        assert st == 200 and body == SMALL.encode(), (port, st, body[:200])
    log("bench: Redis on :%d; a session made on gatehouse :%d serves on "
        ":%d; mod_auth_openidc on Redis at :%d" % (rport, ra_port, rb_port,
                                                  ar_port))
    targets = [
        (REDIS_GH, [ra_port, rb_port], g_cookie,
         {"gateway": [ga.pid, gb.pid], "redis": [rd.pid]}),
        (REDIS_OIDC, [ar_port], a_cookie,
         {"gateway": [ar.pid], "redis": [rd.pid]}),
    ]
    res = {}
    for name, ports, cookie, roots in targets:
        wrk_split(ports, "hello", 64, 1, cookie, roots)
    for rnd in range(a.rounds):
        for path, conns in REDIS_CASES:
            for name, ports, cookie, roots in targets:
                r = wrk_split(ports, path, conns, a.seconds, cookie, roots)
                res.setdefault((name, path, conns), []).append(r)
                log("round %d %-26s /%-5s c=%-3d %8.0f req/s p99 %6.2f ms "
                    "%6.1f us gateway + %4.1f us Redis CPU/req%s" % (
                        rnd + 1, name, path, conns, r["rps"], r["p99"],
                        r["cpu_us_gateway"], r["cpu_us_redis"],
                        "  !! non-2xx %d, socket errors %d" % (
                            r["non2xx"], r["sockerr"])
                        if r["non2xx"] or r["sockerr"] else ""))
    signin = {}
    for rnd in range(a.rounds):
        for name, port, pids in ((REDIS_OIDC, ar_port, [ar.pid]),
                                 (REDIS_GH + ", signing in on A", ra_port,
                                  [ga.pid])):
            r = signin_run("http://127.0.0.1:%d" % port, pids[0],
                           a.signins, a.clients)
            signin.setdefault(name, []).append(r)
            log("signin round %d %-36s %5.0f sign-ins/s %5.2f ms CPU each, "
                "errors %d" % (rnd + 1, name, r["rate"], r["cpu_ms"],
                               r["errors"]))
    for name, p in (("gatehouse-redis-a", ga), ("gatehouse-redis-b", gb)):
        if p.poll() is not None:
            raise RuntimeError("%s exited with %s: %s" % (
                name, p.returncode, sv.log_of(name)[-3000:]))
    errors = [line for n in ("gatehouse-redis-a", "gatehouse-redis-b")
              for line in sv.log_of(n).splitlines() if line.strip()]
    return {"wrk": res, "signin": signin, "errors": errors}


# -- 10,000 idle keep-alive connections --------------------------------------

def idle_connections(port, cookie, n, root):
    rss0 = status_kb(root, "VmRSS")
    sel = selectors.DefaultSelector()
    socks = []
    req = ("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/html"
           "\r\nCookie: %s\r\n\r\n" % (port, cookie)).encode()
    t0 = time.time()
    # Connect in batches so the listen queue never overflows.
    for i in range(0, n, 500):
        batch = []
        for _ in range(min(500, n - i)):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            batch.append(s)
            sel.register(s, selectors.EVENT_WRITE)
        pending = len(batch)
        while pending:
            for key, _ in sel.select(10):
                sel.unregister(key.fileobj)
                pending -= 1
        socks.extend(batch)
    # One signed-in request on each, at most 256 in flight at a time.
    ok = 0
    bufs = {}
    it = iter(socks)
    inflight = 0
    done = False
    while not done or inflight:
        while not done and inflight < 256:
            s = next(it, None)
            if s is None:
                done = True
                break
            s.sendall(req)
            bufs[s] = b""
            sel.register(s, selectors.EVENT_READ)
            inflight += 1
        for key, _ in sel.select(10):
            s = key.fileobj
            data = s.recv(65536)
            bufs[s] += data
            if not data or bufs[s].endswith(b"\r\n\r\n" + SMALL.encode()):
                ok += bufs[s].startswith(b"HTTP/1.1 200")
                sel.unregister(s)
                inflight -= 1
    setup_s = time.time() - t0
    time.sleep(1.0)
    rss = status_kb(root, "VmRSS")
    hwm = status_kb(root, "VmHWM")
    anon = status_kb(root, "RssAnon")
    rfile = status_kb(root, "RssFile")
    # Still open?  A closed connection is readable (EOF).
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = len(sel.select(0))
    for s in socks:
        sel.unregister(s)
        s.close()
    sel.close()
    return {"n": n, "ok": ok, "closed": closed, "rss0_kb": rss0,
            "rss_kb": rss, "hwm_kb": hwm, "anon_kb": anon, "file_kb": rfile,
            "setup_s": setup_s}


# -- many keep-alive clients, few active ---------------------------------------

def fd_room():
    """File descriptors one process may open (RLIMIT_NOFILE's hard limit,
    which the bench raised its soft limit to and its servers inherit)."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def keepalive_conns():
    """KA_CONNS, or fewer when a server could not hold them: a proxy holds
    every client connection plus its own: up to one upstream connection
    per active request (nginx's keepalive 64 is only its idle cache), and
    listeners, store, logs.  Without the privilege to raise the hard
    limit the case is scaled down and the report says so."""
    return min(KA_CONNS, fd_room() - 2 * KA_ACTIVE - 512)


def keepalive_run(klb, port, cookie, conns, active, seconds, root):
    """conns keep-alive clients of which `active` have a request in flight
    at any moment (bench/keepalive_load.c, pinned to CPU 0).  RSS of the
    target's processes is read with every connection open and idle,
    before the measured phase; CPU/req over the measured phase only."""
    hdrs = ["Accept: text/html"] + (["Cookie: " + cookie] if cookie else [])
    p = subprocess.Popen(pin(0) + [klb, str(port), "/hello", str(conns),
                                   str(active), str(seconds)] + hdrs,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline().strip()
    if line != "READY":
        p.kill()
        p.wait()
        raise RuntimeError("keepalive_load did not get ready (%r)" % line)
    rss = tree_kb(root, "VmRSS")
    t0 = cpu_ticks(root)
    p.stdin.write("GO\n")
    p.stdin.flush()
    r = json.loads(p.communicate()[0])
    t1 = cpu_ticks(root)
    r["sockerr"] = r["errors"]
    r["rss_kb"] = rss
    r["cpu_us"] = (t1 - t0) * 1e6 / TICK / r["requests"] \
        if r["requests"] else float("nan")
    return r


def build_standalone(name, outdir):
    """A bench program of its own (no project objects)."""
    out = os.path.join(outdir, name)
    subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE", "-O2", "-g",
                    "-Wall", "-Wextra", "-Werror", "-Wstrict-prototypes",
                    "-Wmissing-prototypes", "-Wshadow", "-o", out,
                    os.path.join(HERE, name + ".c")], check=True)
    return out


# -- C micro-benchmarks ------------------------------------------------------

def build_c(name, outdir):
    # The Makefile's PKGS: the libraries the objects below need.
    with open(os.path.join(ROOT, "Makefile")) as f:
        pk = re.search(r"^PKGS\s*=\s*((?:.*\\\n)*.*)$", f.read(),
                       re.M).group(1).replace("\\\n", " ")
    cflags = subprocess.run(["pkg-config", "--cflags"] + pk.split(),
                            capture_output=True, text=True,
                            check=True).stdout.split()
    libs = subprocess.run(["pkg-config", "--libs"] + pk.split(),
                          capture_output=True, text=True,
                          check=True).stdout.split()
    # The objects of today's sources (as the Makefile names them), not
    # whatever build/ holds: a moved or deleted file leaves a stale one.
    objs = []
    for d in ("gateway", "storage", "policies"):
        for dirpath, _, files in sorted(os.walk(os.path.join(ROOT, d))):
            rel = os.path.relpath(dirpath, ROOT)
            objs += [os.path.join(ROOT, "build", rel, f[:-2] + ".o")
                     for f in sorted(files)
                     if f.endswith(".c") and (rel, f) != ("gateway", "main.c")]
    out = os.path.join(outdir, name)
    subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE", "-O2", "-g",
                    "-Wall", "-Wextra", "-Werror", "-Wstrict-prototypes",
                    "-Wmissing-prototypes", "-Wmissing-declarations",
                    "-Wshadow", "-Wpointer-arith", "-Wformat=2",
                    "-I" + ROOT + "/gateway",
                    "-I" + ROOT + "/policies", "-I" + ROOT + "/storage"] +
                   cflags + ["-o", out, os.path.join(HERE, name + ".c")] +
                   objs + libs + ["-lpthread"], check=True)
    return out


def record_sizes(store):
    """Sizes of the session records in a gatehouse LMDB store (mdb_dump):
    (hot, cold) lists of the parts as session.c wrote them.  Format 2 keeps
    two entries a record, keyed by an 8-byte native integer whose lowest
    bit is the part (0 hot, 1 cold); a hot entry holds the store's 16-byte
    header (expiry, key check) before the hot part."""
    if not shutil.which("mdb_dump"):
        return [], []
    out = subprocess.run(["mdb_dump", store], capture_output=True,
                         text=True).stdout
    lines = out.split("HEADER=END\n", 1)[-1].splitlines()
    hot, cold = [], []
    for k, v in zip(lines[0::2], lines[1::2]):
        if not k.startswith(" ") or not v.startswith(" "):
            continue
        k = bytes.fromhex(k.strip())
        if len(k) != 8:
            continue
        n = len(v.strip()) // 2
        if k[0] & 1:
            cold.append(n)
        else:
            hot.append(n - 16)
    return hot, cold


def lmdb_stat(path):
    """Tree depth and page counts of an LMDB store (mdb_stat), or {}."""
    if not shutil.which("mdb_stat"):
        return {}
    out = subprocess.run(["mdb_stat", path], capture_output=True,
                         text=True).stdout
    st = {}
    for line in out.splitlines():
        m = re.match(r"\s*(Tree depth|Branch pages|Leaf pages|"
                     r"Overflow pages|Entries): (\d+)", line)
        if m:
            st[m.group(1).split()[0].lower()] = int(m.group(2))
    return st


def store_run(sb, base, count, raw=None, lookups=1000000):
    """One store_bench run: sessions through session_save, or (raw) records
    of `raw` hot bytes through store_put.  The JSON it prints, plus du and
    mdb_stat of the store."""
    d = tempfile.mkdtemp(prefix="gh-store-", dir=base)
    try:
        args = [sb] + (["--raw", str(raw)] if raw else []) + \
            [d, str(count), str(lookups)]
        out = subprocess.run(pin(1) + args, capture_output=True, text=True,
                             check=True).stdout
        r = json.loads(out)
        r["du"] = du_bytes(os.path.join(d, "sessions"))
        r["lmdb"] = lmdb_stat(os.path.join(d, "sessions"))
        return r
    finally:
        shutil.rmtree(d, ignore_errors=True)


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def du_bytes(path):
    out = subprocess.run(["du", "-s", "-B1", path], capture_output=True,
                         text=True).stdout
    return int(out.split()[0]) if out else 0


# -- report ----------------------------------------------------------------

def med(rs, k):
    return statistics.median(r[k] for r in rs)


def ratio(a, b):
    return a / b if b else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--signins", type=int, default=1000,
                    help="sign-ins per gateway per round")
    ap.add_argument("--clients", type=int, default=8,
                    help="concurrent sign-in clients")
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--keepalive", type=int, default=KA_CONNS,
                    help="keep-alive clients of the many-clients case "
                    "(%d of them active; 0 skips it)" % KA_ACTIVE)
    ap.add_argument("--store-big", type=int, default=1000000)
    ap.add_argument("--no-redis", action="store_true",
                    help="skip the section of replicas on Redis")
    ap.add_argument("--no-readme", action="store_true",
                    help="do not rewrite bench/README.md's results")
    ap.add_argument("--before", metavar="BINARY",
                    help="also measure this gatehouse binary (an older "
                    "build) in the same run, as \"gatehouse (before)\"; "
                    "implies --no-readme")
    a = ap.parse_args()
    if a.before:
        a.no_readme = True
    started = time.time()
    a.load0 = os.getloadavg()[0]
    for tool in ("wrk", "nginx", "node", "apache2", "taskset") + \
            (() if a.no_redis else ("redis-server",)):
        if not shutil.which(tool):
            sys.exit("bench: %s is missing (make bench installs it)" % tool)
    if not os.path.exists(os.path.join(APACHE_MODS, "mod_auth_openidc.so")):
        sys.exit("bench: mod_auth_openidc is missing (make bench installs "
                 "libapache2-mod-auth-openidc)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The hard limit: the idle connections and the many-clients case need
    # all there is.
    want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < a.idle + 1024:
        log("bench: RLIMIT_NOFILE hard limit %d: fewer idle connections"
            % hard)
        a.idle = max(0, want - 1024)
    if NCPU >= 2:
        os.sched_setaffinity(0, {0})

    tmp = tempfile.mkdtemp(prefix="gh-bench-")
    # nginx and Apache workers run as other users and read files here.
    os.chmod(tmp, 0o755)
    sv = Servers(tmp)
    res = {}
    results = {}
    try:
        up, up_port = start_upstream(sv)
        gh_port, gh2_port, ap_oidc_port = free_port(), free_port(), free_port()
        gb_port, gd_port = free_port(), free_port()
        # The Redis section: two gatehouse replicas and an Apache with
        # mod_auth_openidc, all on one redis-server.
        ra_port, rb_port, ar_oidc_port = free_port(), free_port(), free_port()
        op, op_port = start_op(sv, (gh_port, gh2_port, gb_port, gd_port,
                                    ra_port, rb_port),
                               (ap_oidc_port, ar_oidc_port))
        gh, gh_store = start_gatehouse(sv, up_port, op_port, gh_port,
                                       a.workers)
        gb = None
        if a.before:
            gb, _ = start_gatehouse(sv, up_port, op_port, gb_port, a.workers,
                                    name="gatehouse-before",
                                    binary=os.path.abspath(a.before))
        gd, _ = start_gatehouse(sv, up_port, op_port, gd_port, a.workers,
                                name="gatehouse-defaults", defaults=True)
        ngx, ngx_port = start_nginx_proxy(sv, up_port, nofile=hard)
        ngt, ngt_port = start_nginx_proxy(sv, up_port, typical=True,
                                          nofile=hard)
        apa, ap_plain_port = start_apache(sv, up_port, op_port, ap_oidc_port)
        log("bench: servers up in %s (upstream :%d, OP :%d, gatehouse :%d, "
            "defaults :%d, nginx tuned :%d, typical :%d, apache :%d / oidc "
            ":%d)" % (tmp, up_port, op_port, gh_port, gd_port, ngx_port,
                      ngt_port, ap_plain_port, ap_oidc_port))

        # Sign in once to each authenticated target; check the gate.
        b = Browser()
        gh_cookie = cookie_header(b.sign_in("http://127.0.0.1:%d" % gh_port))
        ap_cookie = cookie_header(b.sign_in("http://127.0.0.1:%d"
                                            % ap_oidc_port))
        gd_cookie = cookie_header(b.sign_in("http://127.0.0.1:%d" % gd_port))
        targets = [
            ("upstream direct", up_port, None, up.pid),
            (NGX, ngx_port, None, ngx.pid),
            (NGX_TYP, ngt_port, None, ngt.pid),
            ("apache mod_proxy", ap_plain_port, None, apa.pid),
            ("mod_auth_openidc", ap_oidc_port, ap_cookie, apa.pid),
            (GH, gh_port, gh_cookie, gh.pid),
            (GH_DEF, gd_port, gd_cookie, gd.pid),
        ]
        if gb is not None:
            targets.append((BEFORE, gb_port, cookie_header(b.sign_in(
                "http://127.0.0.1:%d" % gb_port)), gb.pid))
        for name, port, cookie, _ in targets:
            st, _, body = http_get(port, "/hello", {"Cookie": cookie}
                                   if cookie else {})
            assert st == 200 and body == SMALL.encode(), (name, st, body)
            st, _, body = http_get(port, "/16k", {"Cookie": cookie}
                                   if cookie else {})
            assert st == 200 and len(body) == 16384, (name, st, len(body))
            if cookie:
                st, _, body = http_get(port, "/hello",
                                       {"Accept": "text/html"})
                assert st in (302, 401) and body != SMALL.encode(), (
                    name, st, body[:200])
                log("bench: %s: signed-in request reaches the upstream, "
                    "anonymous one gets %d" % (name, st))

        # wrk: warm-up, then interleaved rounds.
        for name, port, cookie, root in targets:
            wrk(port, "hello", 64, 1, cookie, root)
        for rnd in range(a.rounds):
            for path, conns in CASES:
                for name, port, cookie, root in targets:
                    r = wrk(port, path, conns, a.seconds, cookie, root,
                            up.pid)
                    res.setdefault((name, path, conns), []).append(r)
                    flag = ""
                    if r["non2xx"] or r["sockerr"] or not r["requests"]:
                        flag = "  !! non-2xx %d, socket errors %d" % (
                            r["non2xx"], r["sockerr"])
                    log("round %d %-18s /%-5s c=%-4d %8.0f req/s p50 %6.2f "
                        "p99 %6.2f ms %6.1f us CPU/req%s" % (
                            rnd + 1, name, path, conns, r["rps"], r["p50"],
                            r["p99"], r["cpu_us"], flag))
        rss = {name: {"hwm": tree_kb(root, "VmHWM"), "pss": tree_pss_kb(root)}
               for name, _, _, root in targets}

        if gh.poll() is not None:
            raise RuntimeError("gatehouse exited with %s: %s" % (
                gh.returncode, sv.log_of("gatehouse")[-3000:]))

        # Sign-ins per second and gateway CPU per sign-in.  A second
        # gatehouse with its session store on tmpfs shows what the
        # store's fsync per commit costs.
        shm = tempfile.mkdtemp(prefix="gh-bench-", dir="/dev/shm") \
            if os.path.isdir("/dev/shm") else tmp
        gh2, _ = start_gatehouse(sv, up_port, op_port, gh2_port, a.workers,
                                 shm, name="gatehouse-tmpfs")
        signin = {}
        gateways = (("mod_auth_openidc", ap_oidc_port, apa.pid),
                    ("gatehouse", gh_port, gh.pid),
                    ("gatehouse, store on tmpfs", gh2_port, gh2.pid))
        if gb is not None:
            gateways += ((BEFORE, gb_port, gb.pid),)
        try:
            for rnd in range(a.rounds):
                for name, port, root in gateways:
                    r = signin_run("http://127.0.0.1:%d" % port, root,
                                   a.signins, a.clients)
                    signin.setdefault(name, []).append(r)
                    log("signin round %d %-26s %5.0f sign-ins/s %5.2f ms "
                        "CPU each, gateway CPU busy %3.0f%%, errors %d" % (
                            rnd + 1, name, r["rate"], r["cpu_ms"],
                            r["busy"] * 100, r["errors"]))
        finally:
            gh2.send_signal(signal.SIGTERM)
            gh2.wait(15)
            if shm != tmp:
                shutil.rmtree(shm, ignore_errors=True)
        for name, _, _, root in targets:
            rss[name]["hwm_after_signins"] = tree_kb(root, "VmHWM")
        redis = redis_section(a, sv, up_port, op_port, ra_port, rb_port,
                              ar_oidc_port) if not a.no_redis else None

        # Real session records: sizes and disk per session.
        hot, cold = record_sizes(gh_store)
        nsess = min(len(hot), len(cold))
        store_du = du_bytes(gh_store)
        results["records"] = {
            "sessions": nsess,
            "hot_bytes": statistics.mean(hot) if hot else 0,
            "cold_bytes": statistics.mean(cold) if cold else 0,
            "du": store_du}

        # 10,000 idle keep-alive connections.
        idle = idle_connections(gh_port, gh_cookie, a.idle, gh.pid) \
            if a.idle else None

        # Many keep-alive clients, few active, on the proxies only (Apache's
        # MaxRequestWorkers 150 holds a few hundred connections at most).
        # After the idle connections and every RSS figure above: it grows
        # the proxies' memory (and their caches of connection buffers).
        ka, ka_failed = {}, {}
        ka_conns = min(a.keepalive, keepalive_conns())
        if a.keepalive and ka_conns < a.keepalive:
            log("bench: RLIMIT_NOFILE hard limit %d: %d keep-alive clients "
                "instead of %d" % (fd_room(), ka_conns, a.keepalive))
        if ka_conns > 0:
            bdir = os.path.join(ROOT, "build", "bench")
            os.makedirs(bdir, exist_ok=True)
            klb = build_standalone("keepalive_load", bdir)
            ka_targets = [t for t in targets
                          if t[0] in (NGX, NGX_TYP, GH, GH_DEF, BEFORE)]
            for rnd in range(a.rounds):
                for name, port, cookie, root in ka_targets:
                    try:
                        r = keepalive_run(klb, port, cookie, ka_conns,
                                          min(KA_ACTIVE, ka_conns),
                                          a.seconds, root)
                    except (RuntimeError, ValueError) as e:
                        # One target failing the case (it could not hold
                        # the connections) is a result, not the end of
                        # the run: the report names it.
                        log("round %d %-18s many keep-alive clients: "
                            "failed: %s" % (rnd + 1, name, e))
                        ka_failed.setdefault(name, str(e)[:200])
                        continue
                    ka.setdefault(name, []).append(r)
                    log("round %d %-18s %d clients, %d active: %8.0f req/s "
                        "p50 %6.2f p99 %6.2f ms %6.1f us CPU/req, RSS %.1f "
                        "MiB, %d reconnects, %d errors, %d non-2xx" % (
                            rnd + 1, name, ka_conns, min(KA_ACTIVE, ka_conns),
                            r["rps"], r["p50"], r["p99"], r["cpu_us"],
                            r["rss_kb"] / 1024, r["reconnects"], r["sockerr"],
                            r["non2xx"]))
        results["keepalive"] = {"conns": ka_conns,
                                "active": min(KA_ACTIVE, ka_conns),
                                "res": ka, "failed": ka_failed}
        if gh.poll() is not None:
            raise RuntimeError("gatehouse exited with %s: %s" % (
                gh.returncode, sv.log_of("gatehouse")[-3000:]))
        # log_level = warn: every line is a warning or an error.
        gh_errors = [line for line in sv.log_of("gatehouse").splitlines()
                     if line.strip()]
        sv.stop()

        # C micro-benchmarks.
        bdir = os.path.join(ROOT, "build", "bench")
        os.makedirs(bdir, exist_ok=True)
        sb = build_c("store_bench", bdir)
        pb = build_c("policy_bench", bdir)
        base = "/dev/shm" if os.path.isdir("/dev/shm") else tmp
        store = {}
        per_rec = {}
        # Sessions shaped like the sign-ins above (store_bench builds them
        # as fast_op.mjs issues them), then 64-byte raw records: the
        # B-tree walk without a large value.
        for count, raw in ((1000, None), (a.store_big, None), (1000, 64),
                           (a.store_big, 64)):
            if count > 1000:
                # tmpfs is RAM: never ask for more than there is.
                need = count * (per_rec[raw] * 1.1 + 256)
                room = min(shutil.disk_usage(base).free,
                           mem_available() * 0.7)
                if need > room:
                    count = int(room / (per_rec[raw] * 1.1 + 256)) // 1000 \
                        * 1000
                    log("store: only room for %d records in %s"
                        % (count, base))
            r = store_run(sb, base, count, raw)
            store[(count, raw)] = r
            if count == 1000:
                per_rec[raw] = r["du"] / count
            log("store %8d %s: get %.0f ns%s, put %.1f us, %.0f bytes/record "
                "on disk" % (
                    count, "sessions" if raw is None else
                    "raw %d-byte records" % raw, r["get_ns"],
                    ", session_load %.0f ns" % r["load_ns"]
                    if raw is None else "", r["put_us"], r["du"] / count))
        pol = json.loads(subprocess.run(pin(1) + [pb], capture_output=True,
                                        text=True, check=True).stdout)
        log("policy: first match %.0f ns, last match %.0f ns" % (
            pol["first_match_ns"], pol["last_match_ns"]))

        report = make_report(a, res, rss, signin, results, idle, store,
                             pol, gh_errors, base, time.time() - started,
                             redis)
        print()
        print(report)
        write_results(a, report)
    finally:
        sv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def make_report(a, res, rss, signin, results, idle, store, pol, gh_errors,
                store_base, elapsed, redis=None):
    L = []
    L.append("wrk pinned to CPU 0; each proxy and the nginx upstream share "
             "CPU 1; nginx `worker_processes 1`, Apache event MPM (2+ "
             "processes x 25 threads), gatehouse as configured below. wrk "
             "-t1, %d s per run, %d interleaved rounds, medians. CPU/req = "
             "utime+stime of the target's own processes (not the "
             "upstream's) / requests. Every ratio names both sides; their "
             "configurations:" % (a.seconds, a.rounds))
    names = []
    for (name, path, conns), rs in res.items():
        if name not in names:
            names.append(name)
    L.append("")
    L.append("| target | configuration |")
    L.append("| --- | --- |")
    for name in names:
        cfg = CONFIGS.get(name, "")
        if name in (GH, BEFORE) and a.workers != 1:
            cfg = cfg.replace("`workers = 1`", "`workers = %d`" % a.workers)
        L.append("| %s | %s |" % (name, cfg))
    L.append("")
    L.append("| target | case | req/s | req/s / %s | req/s / %s | p50 ms | "
             "p99 ms | CPU us/req | upstream CPU us/req | non-2xx | "
             "socket errors |" % (NGX, NGX_TYP))
    L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: | ---: |")
    M = {}
    for path, conns in CASES:
        for name in names:
            rs = res[(name, path, conns)]
            m = {k: med(rs, k) for k in ("rps", "p50", "p99", "cpu_us",
                                         "up_us")}
            m["non2xx"] = sum(r["non2xx"] for r in rs)
            m["sockerr"] = sum(r["sockerr"] for r in rs)
            M[(name, path, conns)] = m
    for path, conns in CASES:
        for name in names:
            m = M[(name, path, conns)]
            L.append("| %s | /%s c=%d | %.0f | %.2f | %.2f | %.2f | %.2f | "
                     "%.1f | %.1f | %d | %d |" % (
                         name, path, conns, m["rps"],
                         ratio(m["rps"], M[(NGX, path, conns)]["rps"]),
                         ratio(m["rps"], M[(NGX_TYP, path, conns)]["rps"]),
                         m["p50"], m["p99"], m["cpu_us"], m["up_us"],
                         m["non2xx"], m["sockerr"]))
    L.append("")
    L.append("| target | peak RSS (sum of VmHWM), MiB | PSS after wrk, MiB "
             "| peak RSS after sign-ins, MiB |")
    L.append("| --- | ---: | ---: | ---: |")
    for name in names:
        r = rss[name]
        L.append("| %s | %.1f | %.1f | %.1f |" % (
            name, r["hwm"] / 1024, r["pss"] / 1024,
            r.get("hwm_after_signins", 0) / 1024))
    L.append("")
    L.append("Ratios (same run; each column names the two sides, whose "
             "configurations are above):")
    L.append("")
    pairs = [(GH, NGX), (GH_DEF, NGX_TYP), (GH_DEF, GH),
             (GH, "mod_auth_openidc")]
    L.append("| case | " + " | ".join(
        "%s / %s req/s | p99 | CPU/req" % pq for pq in pairs[:2]) +
        " | %s / %s req/s | %s / %s req/s |" % (pairs[2] + pairs[3]))
    L.append("| --- |" + " ---: |" * 8)
    for path, conns in CASES:
        cells = []
        for g, n in pairs[:2]:
            x, y = M[(g, path, conns)], M[(n, path, conns)]
            cells += ["%.2f" % ratio(x["rps"], y["rps"]),
                      "%.2f" % ratio(x["p99"], y["p99"]),
                      "%.2f" % ratio(x["cpu_us"], y["cpu_us"])]
        for g, n in pairs[2:]:
            cells.append("%.2f" % ratio(M[(g, path, conns)]["rps"],
                                        M[(n, path, conns)]["rps"]))
        L.append("| /%s c=%d | %s |" % (path, conns, " | ".join(cells)))
    if any(name == BEFORE for name in names):
        L.append("")
        L.append("This build against the one given by --before (same run; "
                 "above 1.00 the new one is faster, or uses more CPU):")
        L.append("")
        L.append("| case | req/s new / before | p99 new / before | CPU/req "
                 "new / before |")
        L.append("| --- | ---: | ---: | ---: |")
        for path, conns in CASES:
            g = M[(GH, path, conns)]
            b = M[(BEFORE, path, conns)]
            L.append("| /%s c=%d | %.2f | %.2f | %.2f |" % (
                path, conns, ratio(g["rps"], b["rps"]),
                ratio(g["p99"], b["p99"]), ratio(g["cpu_us"], b["cpu_us"])))
    kal = results.get("keepalive", {})
    K = {}
    if kal.get("res") or kal.get("failed"):
        L.append("")
        L.append("Many keep-alive clients, few active (the shape of "
                 "browsers): %d connections, each served once, then for %d "
                 "s exactly %d requests in flight, each sent on the "
                 "connection idle longest (`bench/keepalive_load.c`, pinned "
                 "to CPU 0; latency from the send to the response's last "
                 "byte). A connection the server closed while idle is "
                 "connected again (\"reconnects\"). RSS is the target's "
                 "with every connection open and idle. Apache is left out: "
                 "its `MaxRequestWorkers 150` holds a few hundred "
                 "connections.%s" % (
                     kal["conns"], a.seconds, kal["active"],
                     "" if kal["conns"] >= KA_CONNS else
                     " Fewer than %d clients: RLIMIT_NOFILE's hard limit "
                     "(%d, which the bench may not raise) leaves no room "
                     "for more in one server process, beside its upstream "
                     "connections." % (KA_CONNS, fd_room())))
        L.append("")
        L.append("| target | req/s | req/s / %s | req/s / %s | p50 ms | p99 "
                 "ms | CPU us/req | RSS MiB | reconnects | errors | non-2xx "
                 "|" % (NGX, NGX_TYP))
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
                 "---: | ---: | ---: |")
        for name, rs in kal["res"].items():
            K[name] = {k: med(rs, k) for k in ("rps", "p50", "p99", "cpu_us",
                                                "rss_kb")}
        for name, rs in kal["res"].items():
            k = K[name]
            L.append("| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f "
                     "| %d | %d | %d |" % (
                         name, k["rps"],
                         ratio(k["rps"], K.get(NGX, {}).get("rps", 0)),
                         ratio(k["rps"], K.get(NGX_TYP, {}).get("rps", 0)),
                         k["p50"], k["p99"], k["cpu_us"], k["rss_kb"] / 1024,
                         sum(r["reconnects"] for r in rs),
                         sum(r["sockerr"] for r in rs),
                         sum(r["non2xx"] for r in rs)))
        for name, why in kal.get("failed", {}).items():
            L.append("")
            L.append("%s failed this case in at least one round: %s" % (
                name, why))
    L.append("")
    L.append("Sign-ins (%d per round by %d concurrent Python clients pinned "
             "to CPU 0 with the OP; from the anonymous GET of a protected "
             "page, through the provider, to the page from the upstream; "
             "medians of %d rounds; gatehouse configured as gatehouse tuned "
             "above, Apache as mod_auth_openidc above). CPU = the gateway's "
             "processes only:"
             % (a.signins, a.clients, a.rounds))
    L.append("")
    L.append("| gateway | sign-ins/s | CPU ms/sign-in | gateway CPU busy | "
             "one-core ceiling (1000 / CPU ms) | errors |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    S = {}
    for name, rs in signin.items():
        S[name] = {k: med(rs, k) for k in ("rate", "cpu_ms", "busy")}
        L.append("| %s | %.0f | %.2f | %.0f%% | %.0f/s | %d |" % (
            name, S[name]["rate"], S[name]["cpu_ms"], S[name]["busy"] * 100,
            ratio(1000, S[name]["cpu_ms"]), sum(r["errors"] for r in rs)))
    if "gatehouse" in S and "mod_auth_openidc" in S:
        L.append("")
        L.append("gatehouse / mod_auth_openidc: sign-ins/s %.2f, CPU per "
                 "sign-in %.2f." % (
                     ratio(S["gatehouse"]["rate"],
                           S["mod_auth_openidc"]["rate"]),
                     ratio(S["gatehouse"]["cpu_ms"],
                           S["mod_auth_openidc"]["cpu_ms"])))
    rec = results["records"]
    L.append("")
    L.append("Session store: %d real sessions from the sign-ins above, each "
             "a hot part of %.0f bytes and a cold part of %.0f bytes "
             "(averages, as session.c formats them; the store adds 16 "
             "bytes to a hot part); the store directory is %.1f MiB, %.0f "
             "bytes per session." % (
                 rec["sessions"], rec["hot_bytes"], rec["cold_bytes"],
                 rec["du"] / 2**20, rec["du"] / max(rec["sessions"], 1)))
    L.append("")
    L.append("| records in store | records | hot / cold bytes | raw get ns "
             "| session_load ns (any session) | session_load ns (active "
             "set) | cold get ns | load + claims ns | put us | "
             "disk bytes/record | LMDB depth, branch / leaf / overflow "
             "pages |")
    L.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: | --- |")
    for (count, raw), r in store.items():
        st = r.get("lmdb", {})
        sess = raw is None
        L.append("| %d | %s | %d / %d | %.0f | %s | %s | %s | %s | %.1f | "
                 "%.0f | %s, %s / %s / %s |" % (
                     count, "sessions" if sess else "raw",
                     r["hot_bytes"], r["cold_bytes"], r["get_ns"],
                     "%.0f" % r["load_ns"] if sess else "-",
                     "%.0f" % r["active_ns"] if sess else "-",
                     "%.0f" % r["cold_get_ns"] if sess else "-",
                     "%.0f" % r["claims_ns"] if sess else "-",
                     r["put_us"], r["du"] / count, st.get("tree", "?"),
                     st.get("branch", "?"), st.get("leaf", "?"),
                     st.get("overflow", "?")))
    L.append("")
    L.append("store_bench, one process pinned to CPU 1, stores in %s (tmpfs: "
             "filling one on disk would fsync every commit). Sessions are "
             "filled through session_save with fast_op.mjs's claims and "
             "token sizes (compare their part sizes with the real ones "
             "above); raw records through store_put, hot part only. raw get "
             "= store_reader_get of the hot part, copied out; session_load "
             "= the whole lookup of a signed-in request from the cookie "
             "value (decode, SHA-256, get, copy of the identity block, time "
             "checks, free), no claims, no decryption; cold get = both "
             "parts; load + claims adds the lazy cold read and the JSON "
             "parse (routes with criteria, /.auth/me). Random existing "
             "records, every page touched once before timing, median of %d "
             "interleaved rounds. \"any session\": each lookup a random one "
             "of all the sessions in the store (the worst case: at a "
             "million every lookup misses the caches and the TLB); "
             "\"active set\": lookups among %d sessions spread at random "
             "through the store, the users active now among all the "
             "sessions kept (what a gateway sees as its store fills with "
             "idle sessions)." % (store_base, next(iter(
                 store.values()))["rounds"], next(iter(
                     store.values())).get("active", 1000)))
    L.append("")
    L.append("Policy decision, 100-route table (policy_match + policy_eval, "
             "with claims): first match %.0f ns, last match %.0f ns; first "
             "match without a session %.0f ns." % (
                 pol["first_match_ns"], pol["last_match_ns"],
                 pol["first_match_anon_ns"]))
    if idle:
        L.append("")
        L.append("Idle keep-alive connections to gatehouse: %d opened, %d "
                 "answered 200, %d closed by gatehouse 1 s later; RSS %.1f "
                 "MiB before, %.1f MiB with them open (peak %.1f MiB), %.1f "
                 "KiB per connection. Of the RSS with them open, %.1f MiB "
                 "is anonymous memory and %.1f MiB file-backed (mostly the "
                 "LMDB session store's mapped pages, shared with the page "
                 "cache; it grows with the store)." % (
                     idle["n"], idle["ok"], idle["closed"],
                     idle["rss0_kb"] / 1024, idle["rss_kb"] / 1024,
                     idle["hwm_kb"] / 1024,
                     (idle["rss_kb"] - idle["rss0_kb"]) / max(idle["n"], 1),
                     idle["anon_kb"] / 1024, idle["file_kb"] / 1024))
    R = {}
    if redis:
        L.append("")
        L.append("Several replicas on Redis: two gatehouse processes "
                 "(`workers = %d` each, one key file) sharing sessions in "
                 "one redis-server (7.0, persistence off, on CPU 1 with the "
                 "proxies), against Apache + mod_auth_openidc with "
                 "`OIDCCacheType redis` on the same server. wrk splits the "
                 "connections over the two replicas (two wrk processes on "
                 "CPU 0 at once; p50/p99 the worse of the two). CPU/req: "
                 "the gateways' processes, and Redis's own beside it."
                 % a.workers)
        L.append("")
        L.append("| target | case | req/s | p50 ms | p99 ms | gateway CPU "
                 "us/req | Redis CPU us/req | non-2xx | socket errors |")
        L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | "
                 "---: |")
        for (name, path, conns), rs in redis["wrk"].items():
            m = {k: med(rs, k) for k in ("rps", "p50", "p99",
                                         "cpu_us_gateway", "cpu_us_redis")}
            R[(name, path, conns)] = m
            L.append("| %s | /%s c=%d | %.0f | %.2f | %.2f | %.1f | %.1f | "
                     "%d | %d |" % (name, path, conns, m["rps"], m["p50"],
                                    m["p99"], m["cpu_us_gateway"],
                                    m["cpu_us_redis"],
                                    sum(r["non2xx"] for r in rs),
                                    sum(r["sockerr"] for r in rs)))
        L.append("")
        L.append("| case | gatehouse x2 on Redis / mod_auth_openidc on "
                 "Redis, req/s | gatehouse on Redis / on LMDB, gateway "
                 "CPU/req | same, with Redis's CPU |")
        L.append("| --- | ---: | ---: | ---: |")
        for path, conns in REDIS_CASES:
            g = R[(REDIS_GH, path, conns)]
            o = R[(REDIS_OIDC, path, conns)]
            lm = M[(GH, path, conns)]
            L.append("| /%s c=%d | %.2f | %.2f | %.2f |" % (
                path, conns, ratio(g["rps"], o["rps"]),
                ratio(g["cpu_us_gateway"], lm["cpu_us"]),
                ratio(g["cpu_us_gateway"] + g["cpu_us_redis"],
                      lm["cpu_us"])))
        L.append("")
        L.append("| gateway, sign-ins on Redis | sign-ins/s | CPU ms/sign-in "
                 "| errors |")
        L.append("| --- | ---: | ---: | ---: |")
        for name, rs in redis["signin"].items():
            L.append("| %s | %.0f | %.2f | %d |" % (
                name, med(rs, "rate"), med(rs, "cpu_ms"),
                sum(r["errors"] for r in rs)))
        if redis["errors"]:
            L.append("")
            L.append("The replicas on Redis logged %d warning/error lines; "
                     "the first: `%s`" % (len(redis["errors"]),
                                          redis["errors"][0][:200]))
    L.append("")
    L.append("Targets:")
    L.append("")
    g64 = M[(GH, "hello", 64)]
    n64 = M[(NGX, "hello", 64)]
    o64 = M[("mod_auth_openidc", "hello", 64)]
    checks = []
    # What users run: gatehouse at its defaults against nginx as it is
    # typically deployed and as tuned, at every concurrency measured.
    for c in sorted(c for (t, path, c) in M if t == GH_DEF and
                    path == "hello"):
        gd = M[(GH_DEF, "hello", c)]
        for other, want in ((NGX_TYP, 1.0), (NGX, 0.95)):
            o = M.get((other, "hello", c))
            if o is None:
                continue
            rr = ratio(gd["rps"], o["rps"])
            checks.append(("gatehouse defaults, signed-in req/s >= %.2fx "
                           "%s (c=%d)" % (want, other, c), rr >= want,
                           "%.2fx" % rr))
        o = M.get((NGX_TYP, "hello", c))
        if o is not None:
            rr = ratio(gd["p99"], o["p99"])
            checks.append(("gatehouse defaults, p99 <= 1.2x nginx "
                           "typical's (c=%d)" % c, rr <= 1.2, "%.2fx" % rr))
    checks.append(("gatehouse tuned, signed-in req/s >= 8x mod_auth_openidc "
                   "(c=64)", ratio(g64["rps"], o64["rps"]) >= 8,
                   "%.2fx" % ratio(g64["rps"], o64["rps"])))
    checks.append(("gatehouse tuned, p99 at 64 connections <= 1.2x nginx "
                   "tuned's", ratio(g64["p99"], n64["p99"]) <= 1.2,
                   "%.2fx" % ratio(g64["p99"], n64["p99"])))
    if "gatehouse" in S and "mod_auth_openidc" in S:
        rr = ratio(S["gatehouse"]["cpu_ms"], S["mod_auth_openidc"]["cpu_ms"])
        checks.append(("CPU ms per sign-in <= 0.3x mod_auth_openidc's",
                       rr <= 0.3, "%.2fx" % rr))
    for (count, raw) in [k for k in store if k[0] > 1000]:
        small = store.get((1000, raw))
        if small is None:
            continue
        big = store[(count, raw)]
        if raw is None:
            rr = ratio(big["active_ns"], small["active_ns"])
            checks.append(("session lookup (session_load, an active set "
                           "of %d) at %d within 1.3x of 1000"
                           % (big.get("active", 1000), count), rr <= 1.3,
                           "%.2fx" % rr))
            rr = ratio(big["load_ns"], small["load_ns"])
            checks.append(("session lookup (session_load, any of the "
                           "sessions) at %d within 1.5x of 1000" % count,
                           rr <= 1.5, "%.2fx" % rr))
        rr = ratio(big["get_ns"], small["get_ns"])
        checks.append(("raw store get at %d within 1.5x of 1000 (%s)"
                       % (count, "sessions" if raw is None else
                          "%d-byte records" % raw), rr <= 1.5, "%.2fx" % rr))
    if R:
        g, o = R[(REDIS_GH, "hello", 64)], R[(REDIS_OIDC, "hello", 64)]
        rr = ratio(g["rps"], o["rps"])
        checks.append(("two replicas on Redis: req/s >= 8x mod_auth_openidc "
                       "on Redis (c=64)", rr >= 8, "%.2fx" % rr))
        rr = ratio(g["cpu_us_gateway"], g64["cpu_us"])
        checks.append(("gatehouse on Redis: CPU/req <= 1.3x gatehouse on "
                       "LMDB (c=64)", rr <= 1.3, "%.2fx" % rr))
    if idle:
        checks.append(("peak RSS < 64 MiB with %d idle connections"
                       % idle["n"], idle["hwm_kb"] < 64 * 1024
                       and idle["closed"] == 0,
                       "%.1f MiB" % (idle["hwm_kb"] / 1024)))
    L.append("| target | result | met |")
    L.append("| --- | ---: | --- |")
    for what, okk, val in checks:
        L.append("| %s | %s | %s |" % (what, val, "yes" if okk else "**no**"))
    if gh_errors:
        L.append("")
        L.append("gatehouse logged %d warning/error lines (log_level = "
                 "warn); the first: `%s`" % (len(gh_errors),
                                             gh_errors[0][:200]))
    L.append("")
    L.append("Whole run: %.0f s. Load average at the start %.2f, at the end "
             "%.2f (2 cores: anything well above the bench's own load means "
             "other work shared the machine)." % (elapsed, a.load0,
                                                  os.getloadavg()[0]))
    return "\n".join(L)


def machine():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, %s, Linux %s" % (platform.node(), NCPU, cpu,
                                           platform.release())


def write_results(a, report):
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H%M%SZ")
    head = "gatehouse bench, %s, on %s" % (now.strftime("%Y-%m-%d %H:%M UTC"),
                                          machine())
    outdir = os.path.join(HERE, "results")
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, stamp + ".md")
    with open(path, "w") as f:
        f.write("# %s\n\n%s\n" % (head, report))
    log("bench: wrote %s" % path)
    if a.no_readme:
        return
    readme = os.path.join(HERE, "README.md")
    try:
        with open(readme) as f:
            text = f.read()
    except OSError:
        text = "# bench\n\n<!-- results -->\n<!-- /results -->\n"
    block = "<!-- results -->\n## Latest results\n\n%s.\n\n%s\n<!-- /results -->" \
        % (head, report)
    if "<!-- results -->" in text and "<!-- /results -->" in text:
        text = re.sub(r"<!-- results -->.*<!-- /results -->",
                      lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(readme, "w") as f:
        f.write(text)
    log("bench: updated %s" % readme)


if __name__ == "__main__":
    main()
