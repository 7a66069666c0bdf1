"""Benchmark 4 (second half): idle memory of a freshly started server.

    python bench/memory.py --pid PID --idle 10 --cold-start-ms 123.4 --out result.json

Waits --idle seconds without sending any request (the server was just started by launch.py, which
measured the cold start), then sums VmRSS from /proc/<pid>/status over the whole process tree:
the process, its descendants, and everything in its session (MLflow's uvicorn workers and its
huey job consumers are separate processes). Also records the PSS sum (shared pages divided among
the processes that share them, so shared libraries are not counted once per worker) and each
process's own RSS and command.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            parts = f.read().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(p.decode("utf-8", "replace") for p in parts if p)
    return text[:160]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--cold-start-ms", type=float, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    samples = []
    end = time.time() + args.idle
    while time.time() < end:
        samples.append(common.tree_rss_mib(args.pid))
        time.sleep(min(1.0, max(0.0, end - time.time())))
    tree = common.process_tree(args.pid)
    procs = [{"pid": p, "rss_mib": common.rss_kib([p]) / 1024.0, "cmd": cmdline(p)} for p in tree]
    rss = sum(p["rss_mib"] for p in procs)
    pss = common.pss_kib(tree) / 1024.0
    out = {"pid": args.pid, "idle_s": args.idle, "rss_mib": rss, "pss_mib": pss, "processes": len(procs),
           "max_rss_during_idle_mib": max(samples + [rss]), "cold_start_ms": args.cold_start_ms,
           "process_list": procs}
    common.write_json(args.out, out)
    print(f"  pid {args.pid}: cold start {args.cold_start_ms} ms, idle RSS {rss:.1f} MiB (PSS {pss:.1f} MiB) over {len(procs)} process(es)",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
