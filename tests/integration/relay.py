#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""A TCP relay for the fault tests: the provider's token endpoint is put
behind it (discovery_override), so stopping the relay takes the token
endpoint down for real (connection refused) while the provider keeps its
state, and starting it again on the same port brings it back.

Run: relay.py --target 127.0.0.1:PORT --port-file F [--port N].
Standard library only; exits 0 on SIGTERM.
"""
import argparse
import os
import signal
import socket
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client, target):
    try:
        up = socket.create_connection(target, 10)
    except OSError:
        client.close()
        return
    up.settimeout(None)
    t = threading.Thread(target=pump, args=(up, client), daemon=True)
    t.start()
    pump(client, up)
    t.join()
    client.close()
    up.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    host, _, port = a.target.rpartition(":")
    target = (host, int(port))
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(64)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(tmp, a.port_file)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c, target),
                             daemon=True).start()
    except KeyboardInterrupt:
        pass
    ls.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
