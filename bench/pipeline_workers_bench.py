#!/usr/bin/env python3
"""Pipeline workers benchmark (issue 4): the same 200-step DAG on 1 and on 4 `loom worker`
processes.

Usage: python3 bench/pipeline_workers_bench.py [--steps 200] [--sleep 0.1] [--workers 1,4] [--loom PATH]

Starts a `loom server` (embedded SQLite, a fresh data folder) and N worker processes on this
machine, submits a DAG of --steps command steps in 20 levels (each step needing one of the level
before) with `"workers": true`, and measures the run from submission to its end as the store
records it. Two kinds of step: `sleep --sleep` (a step that takes time: scaling with workers)
and `true` (no work: what the server and the protocol can hand out). Each configuration runs on a
fresh server. Markdown goes to stdout and bench/results/pipeline_workers.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spec(steps: int, command: str, levels: int = 20) -> str:
    width = max(1, steps // levels)
    lines = ["pipeline: spread", "steps:"]
    for i in range(steps):
        lines += [f"  s{i:03d}:", "    kind: command", f"    command: '{command}'", "    cache: false"]
        if i >= width:
            lines.append(f"    needs: [s{i - width:03d}]")
    return "\n".join(lines) + "\n"


def call(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def measure(loom: str, work: str, workers: int, steps: int, command: str) -> float:
    data = tempfile.mkdtemp(prefix="server-", dir=work)
    port = free_port()
    server = subprocess.Popen([loom, "server", "--port", str(port), "--data", data, "--no-auth"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    procs = [server]
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        for i in range(workers):
            procs.append(subprocess.Popen([loom, "worker", "--server", url, "--name", f"w{i}", "--poll", "0.05"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        run = call(url + "/api/v1/pipeline-runs", {"spec": spec(steps, command), "workers": True, "concurrency": 32})
        while True:
            detail = call(f"{url}/api/v1/pipeline-runs/{run['id']}")
            if detail["run"]["state"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        if detail["run"]["state"] != "succeeded":
            sys.exit(f"the run did not succeed: {detail['run']}")
        return (detail["run"]["end_time"] - detail["run"]["start_time"]) / 1000
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--sleep", type=float, default=0.1)
    ap.add_argument("--workers", default="1,4")
    ap.add_argument("--loom", default=os.environ.get("LOOM_BIN", os.path.join(ROOT, ".build-rel2", "release", "loom")))
    args = ap.parse_args()
    counts = [int(x) for x in args.workers.split(",")]
    os.makedirs(RESULTS, exist_ok=True)
    work = tempfile.mkdtemp(prefix="loom-workers-bench-")
    rows = []
    try:
        for label, command in [(f"`sleep {args.sleep}`", f"sleep {args.sleep}"), ("`true` (no work)", "true")]:
            times = {n: measure(args.loom, work, n, args.steps, command) for n in counts}
            base = times[counts[0]]
            for n in counts:
                rows.append(f"| {label} | {n} | {times[n]:.2f} s | {args.steps / times[n]:.0f} steps/s | {base / times[n]:.2f}x |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    md = [
        f"`python3 bench/pipeline_workers_bench.py --steps {args.steps} --sleep {args.sleep} --workers {args.workers}`: "
        f"{args.steps} command steps in 20 levels run by `loom worker` processes on this machine, a fresh server each time.",
        "",
        "| steps | workers | run time | throughput | speed-up |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
    ]
    text = "\n".join(md) + "\n"
    print(text)
    with open(os.path.join(RESULTS, "pipeline_workers.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
