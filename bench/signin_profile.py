#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""Where a sign-in's instructions go: gatehouse under callgrind.

Starts the tests' own OpenID Provider (tests/op/op.py), the tests' echo
upstream and build/gatehouse (workers = 1, access log off, its LMDB store
in a temporary directory on disk) under `valgrind --tool=callgrind`, signs
in --warm times (the provider's metadata and keys fetched, caches filled),
zeroes the counters (`callgrind_control -z`), signs in --n times, dumps
(`callgrind_control -d`) and prints the instructions per sign-in and the
top functions (inclusive and self) from callgrind_annotate.

A sign-in is what a browser does: an anonymous GET of a protected page
(Accept: text/html), every redirect followed (gatehouse, the provider's
authorize with its default user signed in, the callback), until the page
comes from the upstream.  Only gatehouse runs under valgrind; the numbers
are instructions (Ir), so they do not depend on the machine's load.

    /usr/bin/python3 bench/signin_profile.py [--n 200] [--keep DIR]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from conftest import Upstream, free_port, wait_port  # noqa: E402
from op_client import OP  # noqa: E402

BIN = os.environ.get("GATEHOUSE_BIN", os.path.join(ROOT, "build", "gatehouse"))


def sign_in(url):
    """One complete sign-in with a fresh cookie jar; the number of
    requests it took.  The provider signs in alice (login_as, one GET, as
    its default user would after a password page)."""
    s = requests.Session()
    n = 0
    for _ in range(10):
        if "/authorize?" in url:
            url += "&login_as=alice%40contoso.com"
        r = s.get(url, allow_redirects=False, timeout=60,
                  headers={"Accept": "text/html"})
        n += 1
        if r.status_code in (301, 302, 303, 307):
            url = requests.compat.urljoin(url, r.headers["Location"])
            continue
        if r.status_code == 200 and r.headers.get(
                "Content-Type", "").startswith("application/json") and \
                r.json().get("path", "").startswith("/hello"):
            s.close()
            return n
        raise RuntimeError("sign-in ended with %d at %s: %r" % (
            r.status_code, url, r.text[:300]))
    raise RuntimeError("too many redirects")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="measured sign-ins")
    ap.add_argument("--warm", type=int, default=20)
    ap.add_argument("--keep", help="copy the callgrind output here")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if not shutil.which(tool):
            sys.exit("signin_profile: %s is missing (make bench installs "
                     "valgrind)" % tool)
    tmp = tempfile.mkdtemp(prefix="gh-signin-prof-")
    op = up = gh = None
    try:
        op = OP()
        up = Upstream(tmp)
        port = free_port()
        op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % port])
        conf = os.path.join(tmp, "gw.conf")
        with open(conf, "w") as f:
            f.write("\n".join([
                "listen = 127.0.0.1:%d" % port,
                "workers = 1",
                "log_level = warn",
                "access_log = off",
                "upstream = " + up.url,
                "authority = " + op.authority,
                "client_id = " + op.client_id,
                "client_secret = " + op.client_secret,
                "redirect_uri = http://127.0.0.1:%d/.auth/callback" % port,
                "session_store = " + os.path.join(tmp, "sessions"),
                "session_key_file = " + os.path.join(tmp, "session.key"),
                "route /* allow authenticated",
            ]) + "\n")
        out = os.path.join(tmp, "callgrind.out")
        logf = open(os.path.join(tmp, "gw.log"), "wb")
        gh = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
             BIN, "-c", conf], stdout=logf, stderr=logf, cwd=tmp)
        logf.close()
        wait_port(port, gh, timeout=60)
        url = "http://127.0.0.1:%d/hello" % port
        end = time.time() + 60
        while True:
            try:
                hops = sign_in(url)
                break
            except (RuntimeError, requests.RequestException):
                if time.time() > end:
                    raise
                time.sleep(0.5)
        for _ in range(a.warm):
            sign_in(url)
        subprocess.run(["callgrind_control", "-z", str(gh.pid)], check=True,
                       capture_output=True)
        t0 = time.time()
        for _ in range(a.n):
            hops = sign_in(url)
        wall = time.time() - t0
        subprocess.run(["callgrind_control", "-d", str(gh.pid)], check=True,
                       capture_output=True)
        dumps = sorted(f for f in os.listdir(tmp)
                       if f.startswith("callgrind.out."))
        if not dumps:
            sys.exit("signin_profile: no dump written")
        dump = os.path.join(tmp, dumps[-1])
        ann = subprocess.run(["callgrind_annotate", "--inclusive=no",
                              dump], capture_output=True, text=True).stdout
        inc = subprocess.run(["callgrind_annotate", "--inclusive=yes",
                              dump], capture_output=True, text=True).stdout
        m = re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", ann, re.M)
        if m is None:
            m = re.search(r"^([\d,]+)\s+PROGRAM TOTALS", ann, re.M)
        total = int(m.group(1).replace(",", ""))
        print("gatehouse under callgrind: %d sign-ins (%d requests each) "
              "in %.1f s" % (a.n, hops, wall))
        print("instructions per sign-in: %d" % (total // a.n))
        print()

        def top(text, title):
            print(title)
            body = text.split("file:function", 1)[-1].splitlines()
            shown = 0
            for line in body:
                mm = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
                if not mm:
                    continue
                ir = int(mm.group(1).replace(",", ""))
                print("%10d  %s" % (ir // a.n, mm.group(2)[:110]))
                shown += 1
                if shown >= a.top:
                    break
            print()

        top(inc, "inclusive instructions per sign-in:")
        top(ann, "self instructions per sign-in:")
        if a.keep:
            os.makedirs(a.keep, exist_ok=True)
            shutil.copy(dump, os.path.join(a.keep, "callgrind.out"))
    finally:
        if gh is not None and gh.poll() is None:
            gh.terminate()
            try:
                gh.wait(60)
            except subprocess.TimeoutExpired:
                gh.kill()
                gh.wait(5)
        if up is not None:
            up.stop()
        if op is not None:
            op.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
