# SPDX-License-Identifier: ISC
"""examples/demo.py as `make demo` and `make demo UPSTREAM=...` run it:
the demo OP, and gatehouse in front of either the example app or the
user's own app (here the tests' upstream), with its generated config and
logs in the test's temporary directory (DEMO_DATA_DIR).  --check-only
starts everything, probes it through gatehouse and stops it by PID."""
import os
import subprocess

import pytest

from conftest import BIN, PY, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEMO = os.path.join(ROOT, "examples", "demo.py")


def run_demo(tmp, *args, timeout=120):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GATEHOUSE_")}
    env.update(DEMO_DATA_DIR=os.path.join(tmp, "demo-data"),
               GATEHOUSE_BIN=BIN)
    r = subprocess.run([PY, DEMO, "--check-only", "--port", str(free_port())]
                       + list(args), env=env, cwd=tmp, timeout=timeout,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def read_conf(tmp):
    with open(os.path.join(tmp, "demo-data", "gatehouse.conf")) as f:
        return f.read().splitlines()


def test_demo_in_front_of_your_own_app(tmp, upstream):
    rc, out = run_demo(tmp, "--upstream", upstream.url)
    assert rc == 0, out
    assert "302 to sign in  OK" in out, out
    conf = read_conf(tmp)
    assert "upstream = " + upstream.url in conf
    assert "route /* allow authenticated" in conf
    # The example app was not started: the user's app is the upstream.
    assert not os.path.exists(os.path.join(tmp, "demo-data", "logs",
                                           "app.log"))
    assert upstream.stats()["requests"] >= 1


def test_demo_says_when_your_app_does_not_answer(tmp):
    port = free_port()
    rc, out = run_demo(tmp, "--upstream", "http://127.0.0.1:%d" % port)
    assert rc == 1, out
    assert "does not answer" in out and "start it first" in out, out


@pytest.mark.parametrize("url", ["https://127.0.0.1:8000",
                                 "http://127.0.0.1:8000/app",
                                 "127.0.0.1:8000"])
def test_demo_refuses_an_upstream_it_cannot_use(tmp, url):
    rc, out = run_demo(tmp, "--upstream", url)
    assert rc == 1, out
    assert "give the app's address as http://HOST:PORT" in out, out


def test_demo_with_the_example_app(tmp):
    rc, out = run_demo(tmp)
    assert rc == 0, out
    assert "upstream app" in out and out.rstrip().endswith("OK"), out
    conf = read_conf(tmp)
    assert "route /* allow authenticated" in conf
    assert os.path.exists(os.path.join(tmp, "demo-data", "logs", "app.log"))
