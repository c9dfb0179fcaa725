# SPDX-License-Identifier: ISC
"""The container image (Containerfile) and the Kubernetes sidecar example
(examples/kubernetes/), run for real with podman: the image built once per
test session, run read-only with its configuration from GATEHOUSE_*
variables, and the sidecar manifest played with `podman kube play` in
front of examples/upstream-app, signed in through end to end against the
tests' own OpenID Provider.  Every podman command goes through podman.py
(the flags these VMs need).  Names carry this session's PID, so two test
runs on one machine do not meet; everything made is removed by name."""
import base64
import json
import os
import re
import subprocess
import time

import pytest
import requests

import podman
from conftest import SANITIZED, Upstream, free_port
from op_client import OP
from redis_server import RedisServer
from signin import echo_headers, principal, sign_in, to_sign_in

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
KUBE = os.path.join(ROOT, "examples", "kubernetes")
APP_DIR = os.path.join(ROOT, "examples", "upstream-app")

pytestmark = pytest.mark.skipif(
    SANITIZED, reason="the image builds its own, unsanitized gatehouse from "
    "the sources, so the sanitizer pass would run exactly the same "
    "containers again")

RUN_ID = "t%d" % os.getpid()
GH_IMAGE = "localhost/gatehouse:test-%s" % RUN_ID
APP_IMAGE = "localhost/upstream-app:test-%s" % RUN_ID


@pytest.fixture(scope="session")
def images():
    """Build both images once per session; removed at its end."""
    t0 = time.monotonic()
    podman.build(GH_IMAGE)
    podman.build(APP_IMAGE, APP_DIR)
    built = time.monotonic() - t0
    yield {"gatehouse": GH_IMAGE, "app": APP_IMAGE, "build_s": built}
    podman.podman("rmi", GH_IMAGE, APP_IMAGE, check=False)


@pytest.fixture
def op():
    o = OP()
    yield o
    o.stop()


def wait_http(url, timeout=60.0, status=200, logs=None):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            r = requests.get(url, timeout=2, allow_redirects=False)
            if r.status_code == status:
                return r
            last = r.status_code
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    raise AssertionError("%s never answered %s (last: %s)\n%s" % (
        url, status, last, logs() if logs else ""))


def wait_log(logs, pattern, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if re.search(pattern, logs(), re.M):
            return
        time.sleep(0.2)
    raise AssertionError("no %r in the log:\n%s" % (pattern, logs()))


def container_logs(name):
    r = podman.podman("logs", name, check=False)
    return r.stdout + r.stderr


class Gateway:
    """What signin.py's helpers need of a gatehouse: its URL and log."""

    def __init__(self, port, container):
        self.url = "http://127.0.0.1:%d" % port
        self.container = container

    def log(self):
        return container_logs(self.container)


def inspect(name, fmt):
    return podman.podman("inspect", "--format", fmt, name).stdout.strip()


def proc_status(container):
    """PID 1's /proc status lines in the container, as a dict."""
    out = podman.podman("exec", container, "cat", "/proc/1/status").stdout
    return dict(l.split(":\t", 1) for l in out.splitlines() if ":\t" in l)


# --- the image ----------------------------------------------------------

def test_image_runs_unprivileged_with_one_volume(images):
    img = images["gatehouse"]
    info = json.loads(podman.podman("image", "inspect", img).stdout)[0]
    cfg = info["Config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["StopSignal"] == "SIGTERM"
    assert list(cfg["Volumes"]) == ["/var/lib/gatehouse"]
    assert cfg["Entrypoint"] == ["/usr/bin/gatehouse"]
    assert cfg["Cmd"] == ["-c", "/etc/gatehouse/gateway.conf"]
    assert "GATEHOUSE_LISTEN=0.0.0.0:8080" in cfg["Env"]
    assert info["Healthcheck"]["Test"] == [
        "CMD", "/usr/libexec/gatehouse/healthcheck"]
    # Only the runtime libraries: no compiler, no -dev package, no curl.
    r = podman.podman("run", "--rm", "--read-only", *podman.NETWORK,
                      "--entrypoint", "/bin/sh", img, "-c",
                      "dpkg-query -W -f '${Package}\\n'; "
                      "command -v cc gcc make curl wget; "
                      "/usr/bin/gatehouse --version", check=False)
    pkgs = set(r.stdout.split())
    assert "libcjose0" in pkgs and "libevent-2.1-7" in pkgs, r.stdout
    assert not [p for p in pkgs if p.endswith("-dev")], r.stdout
    assert not {"gcc", "make", "curl", "build-essential"} & pkgs, r.stdout
    assert "/usr/bin/" not in r.stdout.replace("/usr/bin/gatehouse", "")
    assert re.search(r"^gatehouse \d+\.\d+\.\d+$", r.stdout, re.M), r.stdout


def test_image_refuses_to_run_unconfigured(images):
    """The image's own configuration protects everything, so without a
    provider it refuses to start (rather than serve the app open) and says
    which line needs one."""
    r = podman.podman("run", "--rm", "--read-only", *podman.NETWORK,
                      "--health-interval", "disable", "-e",
                      "GATEHOUSE_LISTEN=127.0.0.1:%d" % free_port(),
                      images["gatehouse"], check=False)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert re.search(r"/etc/gatehouse/gateway\.conf:\d+: this route needs "
                     r"signed-in users, but neither authority nor "
                     r"oidc_issuer is set", r.stderr), r.stderr


def test_image_read_only_configured_from_the_environment(images, op, tmp):
    """podman run --read-only, every setting from GATEHOUSE_* variables,
    state in a named volume: sign in, the health check, SIGTERM, and the
    session surviving a new container on the same volume."""
    up = Upstream(tmp)
    port = free_port()
    name = "gatehouse-run-%s" % RUN_ID
    vol = "gatehouse-state-run-%s" % RUN_ID
    redirect = "http://127.0.0.1:%d/.auth/callback" % port
    op.config(redirect_uris=[redirect])
    env = {
        "GATEHOUSE_LISTEN": "127.0.0.1:%d" % port,
        "GATEHOUSE_UPSTREAM": up.url,
        "GATEHOUSE_AUTHORITY": op.authority,
        "GATEHOUSE_CLIENT_ID": op.client_id,
        "GATEHOUSE_CLIENT_SECRET": op.client_secret,
        "GATEHOUSE_REDIRECT_URI": redirect,
        "GATEHOUSE_WORKERS": "2",
    }
    run = ["run", "--detach", "--name", name, "--read-only",
           *podman.NETWORK, "--health-interval", "disable",
           "--volume", "%s:/var/lib/gatehouse" % vol]
    for k, v in env.items():
        run += ["--env", "%s=%s" % (k, v)]
    run.append(images["gatehouse"])

    def cleanup():
        podman.podman("rm", "--force", "--time", "0", name, check=False)
        podman.podman("volume", "rm", "--force", vol, check=False)

    cleanup()
    try:
        podman.podman(*run)
        g = Gateway(port, name)
        wait_http(g.url + "/.auth/healthz", logs=g.log)
        for w in range(2):
            wait_log(g.log, r"provider ready worker=%d" % w)

        r = podman.podman("healthcheck", "run", name, check=False)
        assert r.returncode == 0 and "unhealthy" not in r.stdout, (
            r.stdout, r.stderr)
        health = json.loads(inspect(name, "{{json .State.Health}}"))
        assert health["Log"][-1]["ExitCode"] == 0, health
        # The same check fails where nothing listens, or where something
        # else answers (the provider has no /.auth/healthz).
        assert requests.get(op.base + "/.auth/healthz",
                            timeout=5).status_code != 200
        for listen in ("127.0.0.1:%d" % free_port(), "127.0.0.1:%d" % op.port):
            r = podman.podman("exec", "--env", "GATEHOUSE_LISTEN=" + listen,
                              name, "/usr/libexec/gatehouse/healthcheck",
                              check=False)
            assert r.returncode == 1, (listen, r.stdout, r.stderr)
            assert r.stderr.startswith("healthcheck: "), r.stderr

        s, _ = sign_in(g, path="/private")
        r = s.get(g.url + "/private", timeout=10)
        assert r.status_code == 200, r.text[:300]
        h = echo_headers(r)
        assert h["x-ms-client-principal-name"] == ["alice@contoso.com"]

        # The state is in the volume only: the key made on first start,
        # 0600 and gatehouse's own, beside the LMDB store.
        out = podman.podman("exec", name, "stat", "-c", "%a %u %n",
                            "/var/lib/gatehouse/session.key",
                            "/var/lib/gatehouse/sessions").stdout
        assert out.split("\n")[0] == "600 10001 /var/lib/gatehouse/session.key"
        assert "10001 /var/lib/gatehouse/sessions" in out
        st = proc_status(name)
        assert st["Uid"].split()[0] == "10001"

        # podman stop sends the image's STOPSIGNAL; gatehouse drains and
        # exits 0 (a signal it ignored would end in SIGKILL, 137).
        podman.podman("stop", "--time", "20", name)
        assert inspect(name, "{{.State.ExitCode}}") == "0", g.log()
        podman.podman("rm", name)

        # A new container on the same volume knows the session.
        podman.podman(*run)
        wait_http(g.url + "/.auth/healthz", logs=g.log)
        for w in range(2):
            wait_log(g.log, r"provider ready worker=%d" % w)
        r = s.get(g.url + "/private", timeout=10, allow_redirects=False)
        assert r.status_code == 200, (r.status_code, g.log())
        assert echo_headers(r)["x-ms-client-principal-name"] == [
            "alice@contoso.com"]
    finally:
        cleanup()
        up.stop()


# --- the Kubernetes sidecar -------------------------------------------

def _replace(text, old, new, count=None):
    """Replace old with new; the manifest must hold it (count times)."""
    n = text.count(old)
    assert n > 0 and (count is None or n == count), (old, n)
    return text.replace(old, new)


def kube_manifest(op, port, app_port, names, file="sidecar.yaml",
                  redirect_port=None, store=None):
    """examples/kubernetes/FILE with this test's values in place of
    the placeholders, and what podman 4.3 cannot take changed, each said:
    - names carry the run id (pods, volumes and secrets are machine-wide);
    - the pod shares the host's network (see podman.py), so gatehouse and
      the app listen on free loopback ports, and the `ports:` declaration
      goes (podman refuses port mappings on the host network; nothing
      needs mapping there);
    - podman 4.3 removes a finished init container while it still believes
      it running, and fails the pod: the annotation (on the Deployment, the
      only place 4.3 reads it) keeps the container instead.  podman still
      waits 20 s for the init container's exit ("Exceeded conmon timeout
      waiting for container to exit" in its debug log) before it starts
      the others: that wait is podman's."""
    with open(os.path.join(KUBE, file)) as f:
        y = f.read()
    redirect = "http://127.0.0.1:%d/.auth/callback" % (redirect_port or port)
    if store is not None:
        y = _replace(y, "redis://redis:6379/0", store, 1)
    y = _replace(y, "https://contoso.ciamlogin.com/contoso.onmicrosoft.com",
                 op.authority, 1)
    y = _replace(y, "<application client id>", op.client_id, 1)
    y = _replace(y, "https://app.example.com/.auth/callback", redirect, 1)
    y = _replace(y, '"0.0.0.0:8080"', '"127.0.0.1:%d"' % port, 1)
    y = _replace(y, "http://127.0.0.1:3000", "http://127.0.0.1:%d" % app_port,
                 1)
    y = _replace(y, '"--port", "3000"', '"--port", "%d"' % app_port, 1)
    y = _replace(y, "image: gatehouse:latest", "image: " + GH_IMAGE, 2)
    y = _replace(y, "image: upstream-app:latest", "image: " + APP_IMAGE, 1)
    for old, new in names.items():
        if old != "pod":
            y = re.sub(r"\b%s\b" % re.escape(old), new, y)
    y = _replace(y, "kind: Deployment\nmetadata:\n  name: upstream-app\n",
                 "kind: Deployment\nmetadata:\n  name: %s\n  annotations:\n"
                 "    io.podman.annotations.init.container.type: always\n"
                 % names["pod"], 1)
    y = _replace(y, "          ports:\n            - name: http\n"
                 "              containerPort: 8080\n", "", 1)
    return y


def kube_secret(values, name, file="secret.yaml", kube_name=None):
    """examples/kubernetes/FILE as a podman secret.  podman 4.3 keeps
    a Secret of a kube file as YAML but reads secretKeyRef as a JSON map of
    base64 values, so the Secret is made here in that form, with the keys
    the file names and this test's values."""
    with open(os.path.join(KUBE, file)) as f:
        y = f.read()
    assert "kind: Secret\n" in y and "\n  name: %s\n" % (
        kube_name or "gatehouse-secrets") in y
    keys = re.findall(r"^  ([a-z-]+): \"<[^\"]+>\"$",
                      y.split("stringData:\n", 1)[1], re.M)
    assert sorted(keys) == sorted(values), keys
    data = {k: base64.b64encode(v.encode()).decode()
            for k, v in values.items()}
    podman.podman("secret", "create", name, "-", input=json.dumps(data))


def probes(manifest):
    """The gatehouse container's (kind, path, port name) probes."""
    return re.findall(r"^          (livenessProbe|readinessProbe):\n"
                      r"            httpGet:\n"
                      r"              path: (\S+)\n"
                      r"              port: (\S+)\n", manifest, re.M)


def test_kubernetes_sidecar_signs_in_end_to_end(images, op, tmp):
    port, app_port = free_port(), free_port()
    names = {"gatehouse-config": "gatehouse-config-" + RUN_ID,
             "gatehouse-secrets": "gatehouse-secrets-" + RUN_ID,
             "gatehouse-state": "gatehouse-state-" + RUN_ID,
             "pod": "upstream-app-" + RUN_ID}
    pod = names["pod"] + "-pod-0"
    gh, app = pod + "-gatehouse", pod + "-app"
    op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback" % port])
    with open(os.path.join(KUBE, "sidecar.yaml")) as f:
        original = f.read()
    found = probes(original)
    assert [p[0] for p in found] == ["livenessProbe", "readinessProbe"], found
    path = os.path.join(tmp, "sidecar.yaml")
    with open(path, "w") as f:
        f.write(kube_manifest(op, port, app_port, names))

    def cleanup():
        podman.podman("pod", "rm", "--force", pod, check=False)
        podman.podman("secret", "rm", names["gatehouse-secrets"], check=False)
        for v in (names["gatehouse-config"], names["gatehouse-state"]):
            podman.podman("volume", "rm", "--force", v, check=False)

    cleanup()
    try:
        kube_secret({"client-secret": op.client_secret,
                     "session-key": os.urandom(32).hex()},
                    names["gatehouse-secrets"])
        podman.podman("kube", "play", *podman.NETWORK, path)
        g = Gateway(port, gh)
        wait_http(g.url + "/.auth/healthz", logs=g.log)
        for w in range(2):
            wait_log(g.log, r"provider ready worker=%d" % w)

        # The probes as the kubelet would make them, on the target port.
        # Liveness asks whether the process serves, readiness whether it
        # can sign people in (provider and session store).
        want = {"livenessProbe": "/.auth/healthz",
                "readinessProbe": "/.auth/readyz"}
        for kind, ppath, pport in found:
            assert (ppath, pport) == (want[kind], "http"), (kind, ppath)
            r = requests.get(g.url + ppath, timeout=5)
            assert r.status_code == 200, (kind, ppath, r.status_code)

        # The app listens on loopback only: nothing outside the pod
        # reaches it but through gatehouse.
        wait_http("http://127.0.0.1:%d/healthz" % app_port,
                  logs=lambda: container_logs(app))
        with open("/proc/net/tcp") as f:
            listening = [l.split()[1] for l in f.readlines()[1:]
                         if l.split()[3] == "0A"]
        mine = [a for a in listening if int(a.split(":")[1], 16) == app_port]
        assert mine == ["0100007F:%04X" % app_port], mine

        # Anonymous home page, then a protected page: sign-in, identity
        # and the access token reach the unmodified app.
        r = requests.get(g.url + "/", timeout=10)
        assert r.status_code == 200 and "Not signed in" in r.text
        s, r = sign_in(g, path="/headers.json")
        assert r.headers["Location"].endswith("/headers.json")
        r = s.get(g.url + "/headers.json", timeout=10)
        assert r.status_code == 200, (r.status_code, g.log())
        h = {k.lower(): v for k, v in r.json().items()}
        assert h["x-ms-client-principal-name"] == "alice@contoso.com"
        assert principal({"x-ms-client-principal": [
            h["x-ms-client-principal"]]})["auth_typ"]
        assert h["x-ms-token-aad-access-token"].count(".") == 2
        r = s.get(g.url + "/", timeout=10)
        assert "Hello, alice@contoso.com" in r.text

        # What the securityContext asked for is what runs.
        assert inspect(gh, "{{.HostConfig.ReadonlyRootfs}}") == "true"
        assert inspect(app, "{{.HostConfig.ReadonlyRootfs}}") == "true"
        st = proc_status(gh)
        assert st["Uid"].split()[0] == "10001"
        assert st["CapEff"] == st["CapBnd"] == "0000000000000000", st
        assert st["NoNewPrivs"] == "1"
        assert proc_status(app)["Uid"].split()[0] == "10002"
        # The key from the Secret, 0600 in the state volume.
        out = podman.podman("exec", gh, "stat", "-c", "%a %u",
                            "/var/lib/gatehouse/session.key").stdout
        assert out.split() == ["600", "10001"]
    finally:
        cleanup()


# --- several replicas on Redis ----------------------------------------

def test_kubernetes_replicas_share_sessions_in_redis(images, op, tmp):
    """examples/kubernetes/replicas-redis.yaml played twice, as replicas A
    and B with the same ConfigMap, the same Secrets and one
    password-protected redis-server on loopback: sign in through A, the
    session works through B; sign out on B and A refuses the cookie.
    podman 4.3 plays every replica of a Deployment, but on the host network
    they would all take the same ports: each play is one replica
    (`replicas: 1`), on its own ports."""
    with open(os.path.join(KUBE, "replicas-redis.yaml")) as f:
        original = f.read()
    assert "\n  replicas: 3\n" in original
    assert [p[:2] for p in probes(original)] == [
        ("livenessProbe", "/.auth/healthz"),
        ("readinessProbe", "/.auth/readyz")]
    password = "rp-" + os.urandom(12).hex()
    redis = RedisServer(tmp, password=password)
    shared = {"gatehouse-secrets": "gatehouse-secrets-" + RUN_ID,
              "gatehouse-redis": "gatehouse-redis-" + RUN_ID}
    ports = {"a": free_port(), "b": free_port()}
    op.config(redirect_uris=["http://127.0.0.1:%d/.auth/callback"
                             % ports["a"]])
    replicas = {}
    for r in ("a", "b"):
        names = dict(shared)
        names.update({"gatehouse-config": "gatehouse-config-%s-%s"
                      % (r, RUN_ID),
                      "gatehouse-run": "gatehouse-run-%s-%s" % (r, RUN_ID),
                      "pod": "replica-%s-%s" % (r, RUN_ID)})
        path = os.path.join(tmp, "replica-%s.yaml" % r)
        # One ConfigMap for both, as in a cluster: the public redirect
        # URI is A's; each listens on its own port.
        y = kube_manifest(op, ports[r], free_port(), names,
                          "replicas-redis.yaml", redirect_port=ports["a"],
                          store=redis.url + "/0")
        with open(path, "w") as f:
            f.write(_replace(y, "\n  replicas: 3\n", "\n  replicas: 1\n", 1))
        pod = names["pod"] + "-pod-0"
        replicas[r] = (path, names, pod)

    def cleanup():
        for path, names, pod in replicas.values():
            podman.podman("pod", "rm", "--force", pod, check=False)
            for v in (names["gatehouse-config"], names["gatehouse-run"]):
                podman.podman("volume", "rm", "--force", v, check=False)
        for n in shared.values():
            podman.podman("secret", "rm", n, check=False)

    cleanup()
    try:
        kube_secret({"client-secret": op.client_secret,
                     "session-key": os.urandom(32).hex()},
                    shared["gatehouse-secrets"])
        kube_secret({"password": password}, shared["gatehouse-redis"],
                    "redis-secret.yaml", "gatehouse-redis")
        # Both at once: podman waits for each pod's init container.
        plays = [subprocess.Popen(
            ["podman", "kube", "play"] + podman.NETWORK + [path],
            env=podman.env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            universal_newlines=True) for path, _, _ in replicas.values()]
        for p in plays:
            out = p.communicate(timeout=300)[0]
            assert p.returncode == 0, out
        a = Gateway(ports["a"], replicas["a"][2] + "-gatehouse")
        b = Gateway(ports["b"], replicas["b"][2] + "-gatehouse")
        for g in (a, b):
            wait_http(g.url + "/.auth/healthz", logs=g.log)
            for w in range(2):
                wait_log(g.log, r"provider ready worker=%d" % w)
            r = wait_http(g.url + "/.auth/readyz", logs=g.log)
            assert r.json()["session_store"] == "ok"

        s, r = sign_in(a, path="/headers.json")
        r = s.get(a.url + "/headers.json", timeout=10)
        assert r.status_code == 200, (r.status_code, a.log())
        # The same cookie through B: the session is in Redis, its tokens
        # sealed with the key both replicas got from the Secret.
        r = s.get(b.url + "/headers.json", timeout=10,
                  allow_redirects=False)
        assert r.status_code == 200, (r.status_code, b.log())
        h = {k.lower(): v for k, v in r.json().items()}
        assert h["x-ms-client-principal-name"] == "alice@contoso.com"
        assert h["x-ms-token-aad-access-token"].count(".") == 2
        assert len(redis.session_keys()) == 1

        # Sign out on B: A no longer knows the cookie.
        jar = {"gatehouse": s.cookies.get("gatehouse")}
        r = requests.get(b.url + "/.auth/logout", cookies=jar,
                         allow_redirects=False, timeout=10)
        assert r.status_code == 302, (r.status_code, b.log())
        assert redis.session_keys() == []
        r = requests.get(a.url + "/headers.json", cookies=jar,
                         headers={"Accept": "text/html"},
                         allow_redirects=False, timeout=10)
        assert to_sign_in(r), (r.status_code, r.headers, a.log())

        # Both files from the Secrets: 0600, gatehouse's own.
        out = podman.podman("exec", replicas["a"][2] + "-gatehouse", "stat",
                            "-c", "%a %u", "/run/gatehouse/session.key",
                            "/run/gatehouse/redis-password").stdout
        assert out.split() == ["600", "10001", "600", "10001"], out
        for g in (a, b):
            assert password not in g.log()
    finally:
        cleanup()
        redis.stop()
