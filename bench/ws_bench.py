#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""make bench, WebSocket section: echo messages per second through
gatehouse against nginx proxying the same echo upstream
(tests/integration/ws_echo.py), and the RSS of gatehouse holding 1,000
idle tunnels.  Both proxies run one worker on CPU 1, the client on CPU 0;
the route is `allow anonymous` (the handshake's access decision is paid
once per tunnel, not per message).  The echo upstream is Python's: it
bounds both proxies alike, so the ratio, not the absolute rate, is the
figure.  Everything on loopback, stopped by PID."""
import argparse
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from wsproto import Client, encode_frame  # noqa: E402

BIN = os.environ.get("GATEHOUSE_BIN", os.path.join(ROOT, "build", "gatehouse"))
PY = "/usr/bin/python3"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("exited early")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


def spawn(tmp, name, argv, cpu):
    log = open(os.path.join(tmp, name + ".log"), "wb")
    cmd = ["taskset", "-c", str(cpu)] + argv if shutil.which("taskset") \
        else argv
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def echo_rate(port, conns, window, seconds):
    """Messages per second: conns tunnels, each keeping window 32-byte
    text messages in flight."""
    payload = b"x" * 32
    frame = encode_frame(1, payload, True)
    answer = 2 + len(payload)  # an unmasked echo of it
    sel = selectors.DefaultSelector()
    clients = []
    for _ in range(conns):
        c = Client(port, "/ws")
        assert c.status == 101, c.raw
        c.sock.setblocking(False)
        c.pending = b""
        c.got = 0
        clients.append(c)
        sel.register(c.sock, selectors.EVENT_READ, c)
        c.sock.sendall(frame * window)
    total = 0
    end = time.time() + seconds
    while time.time() < end:
        for key, _ in sel.select(0.5):
            c = key.data
            try:
                data = c.sock.recv(1 << 16)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError("tunnel closed")
            c.pending += data
            n = len(c.pending) // answer
            c.pending = c.pending[n * answer:]
            total += n
            if n:
                c.sock.setblocking(True)
                c.sock.sendall(frame * n)
                c.sock.setblocking(False)
    for c in clients:
        c.sock.close()
    return total / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--idle", type=int, default=1000)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gh-wsbench-")
    os.chmod(tmp, 0o755)
    procs = []
    try:
        pf = os.path.join(tmp, "ws.port")
        echo = spawn(tmp, "echo", [PY, os.path.join(ROOT, "tests",
                     "integration", "ws_echo.py"), "--port-file", pf,
                     "--log", os.devnull], 0)
        procs.append(echo)
        while not os.path.exists(pf):
            time.sleep(0.05)
        up = int(open(pf).read())
        gh_port, ngx_port = free_port(), free_port()
        conf = os.path.join(tmp, "gh.conf")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:%d\nupstream = http://127.0.0.1:%d\n"
                    "workers = 1\nlog_level = warn\naccess_log = off\n"
                    "route /* allow anonymous\n" % (gh_port, up))
        gh = spawn(tmp, "gatehouse", [BIN, "-c", conf], 1)
        procs.append(gh)
        nconf = os.path.join(tmp, "nginx.conf")
        with open(nconf, "w") as f:
            f.write("""worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx.err warn;
events { worker_connections 16384; }
http {
    access_log off;
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://127.0.0.1:%(up)d;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 3600s;
        }
    }
}
""" % {"tmp": tmp, "port": ngx_port, "up": up})
        ngx = spawn(tmp, "nginx", ["nginx", "-c", nconf, "-p", tmp], 1)
        procs.append(ngx)
        wait_port(gh_port, gh)
        wait_port(ngx_port, ngx)
        os.sched_setaffinity(0, {0})
        rates = {"gatehouse": [], "nginx": []}
        for _ in range(a.rounds):
            for name, port in (("nginx", ngx_port), ("gatehouse", gh_port)):
                rates[name].append(echo_rate(port, a.conns, a.window,
                                             a.seconds))
        med = {k: sorted(v)[len(v) // 2] for k, v in rates.items()}
        print("websocket echo msgs/s (%d tunnels, %d in flight each, "
              "median of %d): gatehouse %.0f, nginx %.0f, ratio %.2f"
              % (a.conns, a.window, a.rounds, med["gatehouse"], med["nginx"],
                 med["gatehouse"] / med["nginx"]))
        before = rss_kib(gh.pid)
        idle = []
        for _ in range(a.idle):
            c = Client(gh_port, "/ws")
            assert c.status == 101, c.raw
            idle.append(c)
        time.sleep(1)
        after = rss_kib(gh.pid)
        print("gatehouse RSS with %d idle tunnels: %.1f MiB (%.1f MiB "
              "before them; target < 64 MiB)" % (a.idle, after / 1024.0,
                                                 before / 1024.0))
        for c in idle:
            c.sock.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
