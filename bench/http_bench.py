"""Benchmark 2: raw HTTP throughput of log-metric and log-batch with wrk.

    python bench/http_bench.py --url URL --target loom|mlflow|baseline --duration 15 \
        --threads 2 --connections 16 --server-pid PID --out result.json

For each endpoint (log-metric, log-batch): creates a fresh experiment and run through the REST
API (the baseline has no store, so it gets a made-up run id), runs a short warm-up with wrk,
then the measured wrk run (`--latency`, Lua scripts bench/log_metric.lua and bench/log_batch.lua,
which write a JSON summary through WRK_RESULT). Afterwards it reads the metric history back to
check that every request that got a 200 was stored (points stored vs. expected). The server's
CPU time (process tree) during the measured run is recorded as well.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

ENDPOINTS = {
    # name: (lua script, metric key read back, points per request)
    "log-metric": ("log_metric.lua", "m", 1),
    "log-batch": ("log_batch.lua", "b0", 1),  # 10 keys per request; b0 gets one point each
}


def wrk(url: str, script: str, run_id: str, duration: float, threads: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile(prefix="wrk-", suffix=".json", delete=False) as f:
        out = f.name
    env = dict(os.environ, RUN_ID=run_id, WRK_RESULT=out)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, int(round(duration)))}s", "--latency",
           "--timeout", "10s", "-s", os.path.join(HERE, script), url]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 120)
    try:
        with open(out) as f:
            result = json.load(f)
    except (OSError, ValueError):
        raise RuntimeError(f"wrk produced no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    finally:
        try:
            os.unlink(out)
        except OSError:
            pass
    result["command"] = " ".join(cmd[:-3] + [script, url])
    return result


def count_history(http: common.Http, run_id: str, key: str) -> int:
    count, token = 0, None
    while True:
        path = f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&run_uuid={run_id}&metric_key={key}"
        if token:
            path += f"&page_token={token}"
        page = http.json("GET", path)
        count += len(page.get("metrics", []))
        token = page.get("next_page_token")
        if not token:
            return count


def drain(http: common.Http, run_id: str, key: str, timeout: float = 60) -> int:
    """Wait until the server has finished the requests that were still in flight when wrk stopped
    (a slow server keeps working through its backlog): the stored count must hold still for 1 s."""
    import time
    deadline = time.time() + timeout
    last = -1
    while True:
        n = count_history(http, run_id, key)
        if n == last or time.time() > deadline:
            return n
        last = n
        time.sleep(1.0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--target", required=True, choices=["loom", "mlflow", "baseline"])
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--server-pid", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    real_store = args.target != "baseline"
    http = common.Http(args.url)
    experiment_id = common.create_experiment(args.url, "wrk-" + uuid.uuid4().hex[:8]) if real_store else ""
    results = {}
    for endpoint, (script, key, per_request) in ENDPOINTS.items():
        if args.warmup > 0:
            warm_run = common.create_run(http, experiment_id, "wrk-warmup") if real_store else uuid.uuid4().hex
            wrk(args.url, script, warm_run, args.warmup, args.threads, args.connections)
            if real_store:
                drain(http, warm_run, key)
        run_id = common.create_run(http, experiment_id, f"wrk-{endpoint}") if real_store else uuid.uuid4().hex
        cpu0 = common.tree_cpu_seconds(args.server_pid) if args.server_pid else 0.0
        r = wrk(args.url, script, run_id, args.duration, args.threads, args.connections)
        cpu1 = common.tree_cpu_seconds(args.server_pid) if args.server_pid else 0.0
        r["server_cpu_s"] = cpu1 - cpu0
        r["run_id"] = run_id
        ok = r["requests"] - r["non200"] - sum(r["errors"][k] for k in ("connect", "read", "write", "timeout"))
        r["ok_requests"] = ok
        if real_store:
            # wrk counts completed responses; a request cut off at the end of the run may still have
            # been stored, so "stored >= ok" is the check (and stored - ok is usually 0..connections).
            try:
                r["stored_points"] = drain(http, run_id, key)
                r["expected_points"] = ok * per_request
            except Exception as e:  # noqa: BLE001
                r["stored_points"] = None
                r["verify_error"] = str(e)[:300]
        results[endpoint] = r
        print(f"  {args.target:8s} {endpoint:10s} {r['rps']:9.1f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms"
              f"  non-200 {r['non200']}  socket errors {sum(r['errors'][k] for k in ('connect', 'read', 'write', 'timeout'))}"
              + (f"  stored {r.get('stored_points')}/{r.get('expected_points')}" if real_store else ""), flush=True)
        for s in r.get("non200_samples", [])[:3]:
            print(f"    non-200 sample: HTTP {s['status']}: {s['body']}", flush=True)
    common.write_json(args.out, {"target": args.target, "url": args.url, "threads": args.threads,
                                 "connections": args.connections, "duration_s": args.duration,
                                 "server_rss_after_mib": common.tree_rss_mib(args.server_pid) if args.server_pid else None,
                                 "endpoints": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
