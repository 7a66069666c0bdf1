"""Benchmark 1: the official `mlflow` Python client's workload against one tracking server.

    python bench/client_workload.py --url http://127.0.0.1:PORT --server-pid PID \
        --workers 4 --duration 30 --out result.json

Each worker (a separate process, so the Python GIL does not serialise the clients) runs the same
iteration in a loop until the duration is up, then finishes the iteration it is in:

    create_run                                   1
    log_metric (steps 0..4 of "loss")            5
    log_batch (10 metrics, 3 params, 2 tags)     2   (the second batch has new steps, no params)
    search_runs (filter + order by, 20 results)  1
    get_metric_history ("loss")                  1
    set_terminated                               1
    create_registered_model                      1
    create_model_version (source = run's artifact URI)  1
    set_registered_model_alias                   1
    get_model_version_by_alias                   1
    search_registered_models (name LIKE prefix)  1
    search_model_versions (name = ...)           1
                                          total 17 client calls per iteration

Every client call is timed. Errors are counted per operation (with the first messages kept);
retries are disabled (MLFLOW_HTTP_REQUEST_MAX_RETRIES=0) so that a failing server shows up as
errors instead of stalls. The server's CPU time (whole process tree, from /proc) over the
measured window is recorded too, which tells how much of the two cores the server used.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import time
import traceback
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

OPS = [
    "create_run", "log_metric", "log_batch", "search_runs", "get_metric_history", "set_terminated",
    "create_registered_model", "create_model_version", "set_registered_model_alias",
    "get_model_version_by_alias", "search_registered_models", "search_model_versions",
]


def worker(index: int, url: str, experiment_id: str, start_at: float, stop_at: float, prefix: str, queue) -> None:
    # MlflowClient.set_terminated prints "View run ... at: URL" lines; keep the harness output clean.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    import requests
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    http_calls = [0]
    original = requests.Session.request

    def counting(self, *a, **kw):
        http_calls[0] += 1
        return original(self, *a, **kw)

    requests.Session.request = counting

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    rng = random.Random(index)
    lat: dict[str, list[float]] = {op: [] for op in OPS}
    errors: dict[str, int] = {op: 0 for op in OPS}
    messages: list[str] = []
    iterations = 0

    def timed(op, fn, *a, **kw):
        t = time.perf_counter()
        try:
            result = fn(*a, **kw)
        except Exception as e:  # noqa: BLE001 - every failure is a data point here
            errors[op] += 1
            if len(messages) < 5:
                messages.append(f"{op}: {type(e).__name__}: {str(e)[:400]}")
            return None
        lat[op].append(time.perf_counter() - t)
        return result

    while time.time() < start_at:
        time.sleep(0.001)
    calls_before = http_calls[0]
    cpu_begin = time.process_time()
    t_begin = time.perf_counter()
    while time.time() < stop_at:
        it = iterations
        iterations += 1
        now = int(time.time() * 1000)
        run = timed("create_run", client.create_run, experiment_id, run_name=f"w{index}-{it}")
        if run is None:
            continue
        run_id = run.info.run_id
        for step in range(5):
            timed("log_metric", client.log_metric, run_id, "loss", rng.random(), timestamp=now, step=step)
        timed("log_batch", client.log_batch, run_id,
              metrics=[Metric(f"m{k}", rng.random(), now, 0) for k in range(10)],
              params=[Param("lr", str(rng.random())), Param("layers", "4"), Param("worker", str(index))],
              tags=[RunTag("bench", "client"), RunTag("iteration", str(it))])
        timed("log_batch", client.log_batch, run_id,
              metrics=[Metric(f"m{k}", rng.random(), now + 1, 1) for k in range(10)],
              tags=[RunTag("phase", "second")])
        timed("search_runs", client.search_runs, [experiment_id], filter_string="metrics.loss < 0.5",
              order_by=["metrics.loss ASC"], max_results=20)
        timed("get_metric_history", client.get_metric_history, run_id, "loss")
        timed("set_terminated", client.set_terminated, run_id, "FINISHED")

        name = f"{prefix}-w{index}-{it}"
        if timed("create_registered_model", client.create_registered_model, name) is None:
            continue
        mv = timed("create_model_version", client.create_model_version, name,
                   source=f"{run.info.artifact_uri}/model", run_id=run_id, await_creation_for=0)
        if mv is None:
            continue
        timed("set_registered_model_alias", client.set_registered_model_alias, name, "champion", mv.version)
        timed("get_model_version_by_alias", client.get_model_version_by_alias, name, "champion")
        timed("search_registered_models", client.search_registered_models,
              filter_string=f"name LIKE '{prefix}-w{index}-%'", max_results=10)
        timed("search_model_versions", client.search_model_versions, filter_string=f"name = '{name}'")
    elapsed = time.perf_counter() - t_begin
    queue.put({"cpu_s": time.process_time() - cpu_begin, "index": index, "lat": lat, "errors": errors, "messages": messages, "iterations": iterations,
               "elapsed": elapsed, "http_calls": http_calls[0] - calls_before})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--server-pid", type=int, default=0, help="for CPU and RSS of the server's process tree")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=3, help="seconds of the same workload before measuring")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import mlflow  # noqa: F401  (imported once in the parent, inherited by the forked workers)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=args.url, registry_uri=args.url)
    prefix = "bench-" + uuid.uuid4().hex[:8]
    experiment_id = client.create_experiment(prefix)
    ctx = mp.get_context("fork")

    def run_phase(duration: float, tag: str) -> tuple[list[dict], float, float, float]:
        queue = ctx.Queue()
        start_at = time.time() + 1.0  # let every worker import and connect before the clock starts
        procs = [ctx.Process(target=worker, args=(i, args.url, experiment_id, start_at, start_at + duration,
                                                  f"{prefix}-{tag}", queue)) for i in range(args.workers)]
        for p in procs:
            p.start()
        while time.time() < start_at:
            time.sleep(0.001)
        cpu0 = common.tree_cpu_seconds(args.server_pid) if args.server_pid else 0.0
        w0 = time.perf_counter()
        results = [queue.get() for _ in procs]
        wall = time.perf_counter() - w0
        cpu1 = common.tree_cpu_seconds(args.server_pid) if args.server_pid else 0.0
        for p in procs:
            p.join()
        return results, wall, cpu1 - cpu0, (common.tree_rss_mib(args.server_pid) if args.server_pid else 0.0)

    if args.warmup > 0:
        run_phase(args.warmup, "warm")
    results, wall, server_cpu, rss_mib = run_phase(args.duration, "run")

    per_op = {}
    total_ok = total_err = 0
    for op in OPS:
        lat = [x for r in results for x in r["lat"][op]]
        err = sum(r["errors"][op] for r in results)
        total_ok += len(lat)
        total_err += err
        s = common.summarize_ms(lat)
        # Throughput of this operation type at this concurrency if every worker did only it:
        # workers / mean latency. (The overall ops/s below is the real, measured mix.)
        s["ops_per_s"] = (args.workers * 1000.0 / s["mean_ms"]) if lat else 0.0
        s["errors"] = err
        per_op[op] = s
    out = {
        "url": args.url,
        "workers": args.workers,
        "duration_s": wall,
        "iterations": sum(r["iterations"] for r in results),
        "ops_ok": total_ok,
        "ops_error": total_err,
        "ops_per_s": total_ok / wall if wall > 0 else 0.0,
        "http_requests": sum(r["http_calls"] for r in results),
        "server_cpu_s": server_cpu,
        "client_cpu_s": sum(r["cpu_s"] for r in results),
        "server_cpu_ms_per_op": (server_cpu * 1000.0 / total_ok) if total_ok else float("nan"),
        "server_rss_after_mib": rss_mib,
        "per_op": per_op,
        "error_messages": [m for r in results for m in r["messages"]][:10],
    }
    common.write_json(args.out, out)
    print(f"  {args.url}: {out['ops_per_s']:.1f} ops/s ({total_ok} ok, {total_err} errors, "
          f"{out['iterations']} iterations in {wall:.1f}s, server CPU {server_cpu:.1f}s)", flush=True)
    for m in out["error_messages"][:5]:
        print(f"    error: {m}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(1)
