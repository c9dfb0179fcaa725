# SPDX-License-Identifier: ISC
"""Every podman command of the tests (and of `make image`) goes through
here, with what these VMs need said once:

- The kernel runs hybrid cgroups (v1 controllers beside a v2 tree) with no
  systemd: crun, Debian's default runtime, fails to create containers
  there, and the systemd cgroup manager has no systemd to talk to.  So
  runc, and the cgroupfs manager.
- Without CAP_SYS_RESOURCE, a container cannot get a higher rlimit than
  this process has, and podman's defaults ask for more (nofile 1048576);
  nproc may also not exceed kernel.pid_max.  So explicit ulimits, no higher
  than ours.  `podman kube play` has no --ulimit, so they go in a
  containers.conf of our own (CONTAINERS_CONF), with the runtime and the
  cgroup manager, and apply to every command alike.
- No bridge networking (no netavark/CNI set up, and no registry to fetch
  one from): --network host for builds (apt needs Debian's mirror) and for
  containers, which then bind loopback on free ports like every test
  server.
- No image registry is reachable, only Debian's mirror: the base image
  debian:bookworm-slim is made locally with mmdebstrap when missing,
  close to the official one (merged /usr without the usrmerge package and
  its Perl; no documentation, manual pages or locales), and the real
  Containerfile is built from it unchanged.

As a command: `podman.py image [--tag T] [--context DIR]` builds an image
(what `make image` runs).
"""
import argparse
import atexit
import os
import resource
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BASE_IMAGE = "debian:bookworm-slim"
NETWORK = ["--network", "host"]

_conf_path = None


def _limit(which, cap):
    soft, hard = resource.getrlimit(which)
    if hard == resource.RLIM_INFINITY:
        return cap
    return min(hard, cap)


def _pid_max():
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 32768


def containers_conf():
    """Path of our containers.conf (written once per process)."""
    global _conf_path
    if _conf_path is None:
        nofile = _limit(resource.RLIMIT_NOFILE, 65536)
        nproc = min(_limit(resource.RLIMIT_NPROC, 4096), _pid_max())
        fd, path = tempfile.mkstemp(prefix="gatehouse-containers-",
                                    suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write("[containers]\n"
                    "default_ulimits = [\"nofile=%d:%d\", \"nproc=%d:%d\"]\n"
                    "[engine]\n"
                    "runtime = \"runc\"\n"
                    "cgroup_manager = \"cgroupfs\"\n"
                    % (nofile, nofile, nproc, nproc))
        atexit.register(os.unlink, path)
        _conf_path = path
    return _conf_path


def env():
    e = dict(os.environ)
    e["CONTAINERS_CONF"] = containers_conf()
    return e


def podman(*args, check=True, timeout=600, input=None, stdout=None):
    """Run `podman ARGS`; returns the CompletedProcess (text output)."""
    r = subprocess.run(["podman"] + list(args), env=env(), input=input,
                       stdout=subprocess.PIPE if stdout is None else stdout,
                       stderr=subprocess.PIPE, timeout=timeout,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       universal_newlines=input is None or
                       isinstance(input, str))
    if check and r.returncode != 0:
        raise RuntimeError("podman %s: exit %d\n%s%s" % (
            " ".join(args), r.returncode, r.stdout or "", r.stderr))
    return r


def image_exists(name):
    return podman("image", "exists", name, check=False).returncode == 0


def ensure_base(log=sys.stderr):
    """Make debian:bookworm-slim from Debian's mirror when it is missing."""
    if image_exists(BASE_IMAGE):
        return
    print("podman.py: making %s with mmdebstrap" % BASE_IMAGE, file=log)
    mirror = "http://deb.debian.org/debian"
    deb = [
        "deb %s bookworm main" % mirror,
        "deb %s bookworm-updates main" % mirror,
        "deb %s-security bookworm-security main" % mirror,
    ]
    slim = ["--dpkgopt=path-exclude=/usr/share/%s/*" % d
            for d in ("doc", "man", "locale", "info")]
    slim.append("--dpkgopt=path-include=/usr/share/doc/*/copyright")
    mm = subprocess.Popen(
        ["mmdebstrap", "--quiet", "--variant=minbase",
         "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr"] + slim +
        ["bookworm", "-"] + deb,
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    # The official image's own settings (import keeps none).
    imp = subprocess.run(
        ["podman", "import",
         "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                     "/usr/bin:/sbin:/bin",
         "--change", "CMD [\"bash\"]", "-", BASE_IMAGE],
        stdin=mm.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env(), universal_newlines=True)
    mm.stdout.close()
    mm_rc = mm.wait()
    if mm_rc != 0 or imp.returncode != 0:
        raise RuntimeError("making %s failed: mmdebstrap exit %d, podman "
                           "import exit %d: %s" % (BASE_IMAGE, mm_rc,
                                                   imp.returncode, imp.stderr))


def build(tag, context=ROOT, containerfile=None, log=None):
    """Build an image from CONTEXT's Containerfile; --format docker keeps
    its HEALTHCHECK (the OCI format has no field for one)."""
    ensure_base()
    args = ["build", "--format", "docker"] + NETWORK + ["--tag", tag]
    if containerfile is not None:
        args += ["--file", containerfile]
    args.append(context)
    return podman(*args, timeout=1800, stdout=log)


def image_size(name):
    return int(podman("image", "inspect", "--format", "{{.Size}}",
                      name).stdout.strip())


def main():
    ap = argparse.ArgumentParser(description="build gatehouse's image")
    ap.add_argument("what", choices=["image"])
    ap.add_argument("--tag", default="localhost/gatehouse:latest")
    ap.add_argument("--context", default=ROOT)
    a = ap.parse_args()
    r = build(a.tag, a.context, log=sys.stdout)
    sys.stderr.write(r.stderr)
    print("podman.py: built %s, %.1f MB" % (a.tag, image_size(a.tag) / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
