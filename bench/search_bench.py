"""Benchmark 3: search_runs latency over a large experiment.

    python bench/search_bench.py --url URL --sizes 10000,100000 --workers 4 \
        --queries 200 --max-query-seconds 60 --max-populate-seconds 300 --out result.json

Population goes through the public REST API only, the same for every server: each run is one
`POST runs/create` plus one `POST runs/log-batch` (metrics acc and loss, params lr and batch, tag
group), sent from several processes over keep-alive connections. acc is uniform in [0, 1), so the
filter below matches about 10% of the runs.

After each population stage (the experiment grows to each size in --sizes in turn) it times
sequential requests (one client, server otherwise idle):

    POST /api/2.0/mlflow/runs/search
    {"experiment_ids": [E], "filter": "metrics.acc > 0.9000xxx", "order_by": ["metrics.acc DESC"],
     "max_results": 100}

The threshold moves by 1e-7 per request so that no response can be served from a cache of an
identical request. Every answer is checked against the logged values: it must be exactly the 100
highest acc values logged above the threshold (fewer when fewer match), in descending order.
Stops after --queries requests or --max-query-seconds, whichever comes first (the report shows n).
Population stops at --max-populate-seconds; the reached size is reported, never the asked one.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def populate_worker(url: str, experiment_id: str, start: int, count: int, deadline: float, seed: int, queue) -> None:
    http = common.Http(url)
    rng = random.Random(seed)
    accs: list[float] = []
    made = errors = 0
    message = ""
    for i in range(start, start + count):
        if time.time() > deadline:
            break
        acc = rng.random()
        now = int(time.time() * 1000)
        try:
            run_id = http.json("POST", "/api/2.0/mlflow/runs/create",
                               {"experiment_id": experiment_id, "run_name": f"r{i}", "start_time": now})["run"]["info"]["run_id"]
            http.json("POST", "/api/2.0/mlflow/runs/log-batch", {
                "run_id": run_id,
                "metrics": [{"key": "acc", "value": acc, "timestamp": now, "step": 0},
                            {"key": "loss", "value": 1.0 - acc, "timestamp": now, "step": 0}],
                "params": [{"key": "lr", "value": str(rng.choice([0.1, 0.01, 0.001]))},
                           {"key": "batch", "value": str(rng.choice([32, 64, 128]))}],
                "tags": [{"key": "group", "value": f"g{i % 10}"}],
            })
        except Exception as e:  # noqa: BLE001
            errors += 1
            if not message:
                message = str(e)[:500]
            if errors > 50:
                break
            continue
        made += 1
        accs.append(acc)
    queue.put({"made": made, "accs": accs, "errors": errors, "message": message})


def populate(url: str, experiment_id: str, first: int, count: int, workers: int, deadline: float) -> dict:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    share = [count // workers + (1 if w < count % workers else 0) for w in range(workers)]
    procs, start = [], first
    for w, n in enumerate(share):
        procs.append(ctx.Process(target=populate_worker, args=(url, experiment_id, start, n, deadline, first * 31 + w, queue)))
        start += n
    t = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t
    return {"made": sum(r["made"] for r in results), "accs": [a for r in results for a in r["accs"]],
            "errors": sum(r["errors"] for r in results), "seconds": elapsed,
            "messages": [r["message"] for r in results if r["message"]]}


def measure(url: str, experiment_id: str, logged: list[float], queries: int, max_seconds: float) -> dict:
    import bisect
    import json

    logged = sorted(logged)
    http = common.Http(url, timeout=300)
    lat, problems = [], []

    def one(i: int) -> None:
        threshold = 0.9 + i * 1e-7
        body = {"experiment_ids": [experiment_id], "filter": f"metrics.acc > {threshold:.7f}",
                "order_by": ["metrics.acc DESC"], "max_results": 100}
        t = time.perf_counter()
        status, payload = http.request("POST", "/api/2.0/mlflow/runs/search", body)
        dt = time.perf_counter() - t
        if status != 200:
            problems.append(f"HTTP {status}: {payload[:300]!r}")
            return
        runs = json.loads(payload).get("runs", [])
        accs = [next((m["value"] for m in r["data"].get("metrics", []) if m["key"] == "acc"), None) for r in runs]
        # The expected answer: the (up to) 100 highest logged acc values above the threshold.
        above = logged[bisect.bisect_right(logged, threshold):]
        expected = above[::-1][:100]
        if len(accs) != len(expected) or any(a is None or abs(a - e) > 1e-9 for a, e in zip(accs, expected)):
            problems.append(f"wrong answer: {len(runs)} runs (expected {len(expected)}), first accs {accs[:3]}"
                            f" (expected {expected[:3]})")
        if i >= 0:
            lat.append(dt)

    for w in range(5):  # warm-up (not timed)
        one(-1 - w)
    t0 = time.perf_counter()
    for i in range(queries):
        if time.perf_counter() - t0 > max_seconds and len(lat) >= 10:
            break
        one(i)
    out = common.summarize_ms(lat)
    out["problems"] = len(problems)
    out["problem_samples"] = problems[:3]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--max-query-seconds", type=float, default=60)
    ap.add_argument("--max-populate-seconds", type=float, default=300)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    sizes = [int(s) for s in args.sizes.split(",") if s]
    experiment_id = common.create_experiment(args.url, "search-" + uuid.uuid4().hex[:8])
    deadline = time.time() + args.max_populate_seconds
    have, logged, populate_s, stages = 0, [], 0.0, []
    for size in sizes:
        if size > have and time.time() < deadline:
            p = populate(args.url, experiment_id, have, size - have, args.workers, deadline)
            have += p["made"]
            logged += p["accs"]
            populate_s += p["seconds"]
            print(f"  populated {have} runs ({p['made']} in {p['seconds']:.1f}s, {p['made'] / max(p['seconds'], 1e-9):.0f} runs/s,"
                  f" {p['errors']} errors)", flush=True)
            for m in p["messages"][:3]:
                print(f"    population error: {m}", flush=True)
        if have <= 0:
            break
        m = measure(args.url, experiment_id, logged, args.queries, args.max_query_seconds)
        m.update({"asked_runs": size, "runs": have, "populate_total_s": populate_s,
                  "populate_runs_per_s": have / populate_s if populate_s else None})
        stages.append(m)
        print(f"  search over {have} runs: p50 {m['p50_ms']:.1f} ms  p95 {m['p95_ms']:.1f} ms  (n={m['n']}, "
              f"{m['problems']} problems)", flush=True)
        for s in m["problem_samples"]:
            print(f"    problem: {s}", flush=True)
        if have < size:
            print(f"  population stopped at {have} runs (time limit {args.max_populate_seconds:.0f}s)", flush=True)
            break
    common.write_json(args.out, {"url": args.url, "stages": stages})
    return 0


if __name__ == "__main__":
    sys.exit(main())
