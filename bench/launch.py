"""Start a server in its own session and wait until `GET /health` answers 200.

    python bench/launch.py --url http://127.0.0.1:PORT --log FILE [--env K=V ...] -- CMD ARGS...

Prints one JSON line: {"pid": ..., "cold_start_ms": ...}. The cold start is measured from just
before exec (fork+exec included) to the first 200 from /health, polled every 5 ms on a fresh
connection. The server keeps running after this helper exits (it leads its own session and
process group, so `kill -- -PID` stops it together with any workers it spawned). On failure the
server is killed, the tail of its log is printed to stderr, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time


def health_ok(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.sendall(f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64)
            return head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--env", action="append", default=[], help="K=V added to the environment")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        ap.error("missing command")
    hostport = args.url.split("://", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    env = dict(os.environ)
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v

    log = open(args.log, "ab")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    deadline = t0 + args.timeout
    while True:
        if health_ok(host, int(port)):
            cold_ms = (time.perf_counter() - t0) * 1000.0
            print(json.dumps({"pid": proc.pid, "cold_start_ms": round(cold_ms, 1)}))
            return 0
        if proc.poll() is not None or time.perf_counter() > deadline:
            why = f"exited with status {proc.returncode}" if proc.poll() is not None else "did not become healthy"
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            log.flush()
            try:
                with open(args.log, "r", errors="replace") as f:
                    tail = f.read()[-3000:]
            except OSError:
                tail = ""
            print(f"launch.py: {' '.join(cmd[:2])} {why} within {args.timeout:.0f}s; log tail:\n{tail}", file=sys.stderr)
            return 1
        time.sleep(0.005)


if __name__ == "__main__":
    sys.exit(main())
