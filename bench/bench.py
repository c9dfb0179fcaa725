#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""make bench: requests per second through gatehouse against the same
upstream hit directly, with wrk, in one run (ratios are what count on a
shared machine).  Everything runs on loopback and is stopped by PID.

The upstream is Debian's nginx answering "hello" (and a 16 KiB body).  wrk
is pinned to CPU 0; the gateway and the upstream share CPU 1 when the
machine has two cores.
"""
import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("GATEHOUSE_BIN", os.path.join(ROOT, "build", "gatehouse"))
NCPU = os.cpu_count() or 1


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(port)


def pin(cpu):
    if NCPU >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


def start_nginx_upstream(tmp):
    port = free_port()
    conf = os.path.join(tmp, "nginx-up.conf")
    with open(conf, "w") as f:
        f.write("""
worker_processes 1;
daemon off;
pid %(tmp)s/nginx-up.pid;
error_log %(tmp)s/nginx-up.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%(port)d;
        location = /hello { return 200 "hello\\n"; }
        location = /16k { alias %(tmp)s/16k.bin; }
        location / { return 200 "hello\\n"; }
    }
}
""" % {"tmp": tmp, "port": port})
    with open(os.path.join(tmp, "16k.bin"), "wb") as f:
        f.write(b"x" * 16384)
    p = subprocess.Popen(pin(1) + ["nginx", "-c", conf, "-p", tmp],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def start_gatehouse(tmp, up_port, workers):
    port = free_port()
    conf = os.path.join(tmp, "gatehouse.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\nupstream = http://127.0.0.1:%d\n"
                "workers = %d\nlog_level = warn\n" % (port, up_port, workers))
    log = open(os.path.join(tmp, "gatehouse.log"), "wb")
    p = subprocess.Popen(pin(1) + [BIN, "-c", conf], stdout=log, stderr=log)
    wait_port(port)
    return p, port


def wrk(url, conns, seconds):
    threads = min(conns, 2)
    out = subprocess.run(pin(0) + ["wrk", "-t%d" % threads, "-c%d" % conns,
                                   "-d%ds" % seconds, "--latency", url],
                         capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def lat(q):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % q, out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": lat("50"), "p99": lat("99"),
            "non2xx": int(errors.group(1)) if errors else 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit("bench: %s is missing (make bench installs it)" % tool)
    tmp = tempfile.mkdtemp(prefix="gh-bench-")
    procs = []
    try:
        up, up_port = start_nginx_upstream(tmp)
        procs.append(up)
        gw, gw_port = start_gatehouse(tmp, up_port, a.workers)
        procs.append(gw)
        targets = [("upstream direct", up_port), ("gatehouse", gw_port)]
        cases = [("hello", 64), ("hello", 256), ("16k", 64)]
        res = {}
        for rnd in range(a.rounds):
            for path, conns in cases:
                for name, port in targets:
                    r = wrk("http://127.0.0.1:%d/%s" % (port, path), conns,
                            a.seconds)
                    res.setdefault((name, path, conns), []).append(r)
                    print("round %d %-16s /%-5s c=%-3d %9.0f req/s p99 %.2f ms"
                          % (rnd + 1, name, path, conns, r["rps"], r["p99"]),
                          flush=True)
        lines = ["| target | case | req/s (median of %d) | p50 ms | p99 ms |"
                 % a.rounds, "| --- | --- | --- | --- | --- |"]
        med = {}
        for (name, path, conns), rs in res.items():
            m = {k: statistics.median(x[k] for x in rs)
                 for k in ("rps", "p50", "p99")}
            med[(name, path, conns)] = m
            lines.append("| %s | /%s c=%d | %.0f | %.2f | %.2f |" % (
                name, path, conns, m["rps"], m["p50"], m["p99"]))
        lines.append("")
        for path, conns in cases:
            g = med[("gatehouse", path, conns)]["rps"]
            d = med[("upstream direct", path, conns)]["rps"]
            lines.append("gatehouse / upstream direct, /%s c=%d: %.2f"
                         % (path, conns, g / d))
        report = "\n".join(lines)
        print()
        print(report)
        outdir = os.path.join(ROOT, "bench", "results")
        os.makedirs(outdir, exist_ok=True)
        stamp = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H%M%SZ")
        with open(os.path.join(outdir, stamp + ".md"), "w") as f:
            f.write("# gatehouse bench %s on %s (%d cores)\n\n%s\n" % (
                stamp, platform.node(), NCPU, report))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
