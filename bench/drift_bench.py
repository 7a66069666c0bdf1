#!/usr/bin/env python3
"""Data drift: `loom drift` next to Evidently's data drift report, in the same run (issue 6).

Usage: .venv/bin/python bench/drift_bench.py [--rows 100000 1000000] [--runs 3] [--loom PATH] [--evidently-python PATH]

Generated tables of 20 columns (10 float columns, 3 integer columns with many values, 2 with
few, 5 text categories; about half of them shifted in the current table), the same number of
rows on both sides, written as CSV under bench/.data/drift-ROWS/. For each size:

- Loom: `loom drift --reference ref.csv --current cur.csv --json out.json`, the whole process
  (reading both CSV files included), `--runs` times; the median wall time and its peak RSS
  (GNU time's `%M`);
- Evidently 0.7.23 (from .venv-evidently: it needs pandas < 3): a Python process that reads both
  CSV files with pandas, runs `Report([DataDriftPreset()])` and renders its JSON, once; its wall
  time, the report's own time (without imports and CSV reading) and its peak RSS;
- the verdicts: every column's method and drift flag and the dataset verdict must be the same,
  and the largest score difference is reported.

With `--collected N`: a window of N collected endpoint records (the collector's JSON Lines
format, one `dataframe_records` row of 8 features per request, an answer with its prediction,
split into hourly files like the collector's) read by `loom drift --current-format collected`
against a training table: the monitor pass of issue 6 (read the window, drift and data quality).

Markdown goes to stdout and bench/results/drift.md (JSON next to it).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
EVIDENTLY_SCRIPT = os.path.join(ROOT, "tests", "e2e", "support", "evidently_drift.py")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_tables(rows: int) -> tuple[str, str]:
    folder = os.path.join(ROOT, "bench", ".data", f"drift-{rows}")
    ref, cur = os.path.join(folder, "ref.csv"), os.path.join(folder, "cur.csv")
    if os.path.exists(ref) and os.path.exists(cur):
        return ref, cur
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(rows)

    def side(shift: float) -> pd.DataFrame:
        cols = {}
        for i in range(10):
            s = shift if i % 2 == 0 else 0.0
            cols[f"num_{i}"] = np.round(rng.normal(s * (1 + i / 10), 1 + i / 5, rows), 6)
        for i in range(3):
            cols[f"count_{i}"] = rng.poisson(20 + 10 * i + (8 * shift if i == 0 else 0), rows)
        for i in range(2):
            p = [0.5, 0.3, 0.2] if shift == 0 or i == 1 else [0.3, 0.3, 0.4]
            cols[f"level_{i}"] = rng.choice([1, 2, 3], rows, p=p)
        for i in range(5):
            k = 4 + 3 * i
            p = np.ones(k) / k if shift == 0 or i % 2 == 1 else np.linspace(1, 2, k) / np.linspace(1, 2, k).sum()
            cols[f"cat_{i}"] = rng.choice([f"c{i}_{j}" for j in range(k)], rows, p=p)
        return pd.DataFrame(cols)

    log(f"writing {rows:,}-row tables")
    side(0.0).to_csv(ref, index=False)
    side(0.5).to_csv(cur, index=False)
    return ref, cur


def peak(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Runs `cmd` under GNU time; wall seconds, peak RSS in MiB, the finished process. (GNU time,
    a small process, forks it: `wait4` from this Python process would count the Python image the
    child had before `exec`.)"""
    started = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB %M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = p.stderr.strip().splitlines()
    rss = next((int(line.split()[1]) for line in reversed(lines) if line.startswith("MAXRSS_KB ")), 0) / 1024
    stderr = "\n".join(line for line in lines if not line.startswith("MAXRSS_KB "))
    return wall, rss, subprocess.CompletedProcess(cmd, p.returncode, p.stdout, stderr)


def bench(rows: int, runs: int, loom: str, evidently_python: str) -> dict:
    ref, cur = make_tables(rows)
    out_json = os.path.join(os.path.dirname(ref), "loom.json")
    loom_runs = []
    for i in range(runs):
        log(f"{rows:,} rows: loom drift #{i + 1}")
        wall, rss, p = peak([loom, "drift", "--reference", ref, "--current", cur, "--json", out_json])
        if p.returncode != 0:
            raise RuntimeError(p.stderr)
        loom_runs.append({"seconds": wall, "peak_mib": rss})
    with open(out_json) as f:
        loom_result = json.load(f)
    log(f"{rows:,} rows: Evidently")
    wall, rss, p = peak([evidently_python, EVIDENTLY_SCRIPT, ref, cur])
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    theirs = json.loads(p.stdout.strip().splitlines()[-1])
    ours = {c["name"]: c for c in loom_result["columns"]}
    names = {"ks": "K-S p_value", "chisquare": "chi-square p_value", "z": "Z-test p_value", "wasserstein": "Wasserstein distance (normed)",
             "jensenshannon": "Jensen-Shannon distance"}
    same_methods = all(names.get(ours[n]["method"]) == t["method"] for n, t in theirs["columns"].items())
    max_diff = max(abs(ours[n]["score"] - t["score"]) for n, t in theirs["columns"].items())
    drifted_same = loom_result["number_of_drifted_columns"] == theirs["drifted_count"] and all(
        ours[n]["drifted"] == (t["score"] >= t["threshold"] if "distance" in t["method"] else t["score"] < t["threshold"])
        for n, t in theirs["columns"].items())
    secs = sorted(r["seconds"] for r in loom_runs)
    median = secs[len(secs) // 2]
    peak_loom = max(r["peak_mib"] for r in loom_runs)
    return {
        "rows": rows, "columns": len(theirs["columns"]), "loom_runs": loom_runs, "loom_seconds": median, "loom_peak_mib": peak_loom,
        "evidently_seconds": wall, "evidently_report_seconds": theirs.get("report_seconds"), "evidently_peak_mib": rss,
        "speedup": wall / median, "memory_ratio": peak_loom / rss, "same_methods": same_methods, "same_verdicts": drifted_same,
        "max_score_difference": max_diff, "drifted_columns": loom_result["number_of_drifted_columns"],
        "dataset_drifted": loom_result["dataset_drifted"],
    }


def make_collected(records: int) -> tuple[str, str]:
    """A training table and a folder of `records` collected records (hourly files of 100,000)."""
    folder = os.path.join(ROOT, "bench", ".data", f"collected-{records}")
    train = os.path.join(folder, "train.csv")
    window = os.path.join(folder, "collected", "default", "churn")
    if os.path.exists(train) and os.path.isdir(window):
        return train, window
    rng = np.random.default_rng(records)
    features = [f"x{i}" for i in range(6)]
    ref = pd.DataFrame({f: np.round(rng.normal(0, 1, 50_000), 4) for f in features})
    ref["plan"] = rng.choice(["basic", "plus", "pro"], 50_000)
    ref["tenure"] = rng.integers(0, 72, 50_000)
    os.makedirs(window, exist_ok=True)
    ref.to_csv(train, index=False)
    log(f"writing {records:,} collected records")
    per_file = 100_000
    t0 = 1_760_000_000_000
    for part in range(0, records, per_file):
        n = min(per_file, records - part)
        x = np.round(rng.normal(0.3, 1, (n, 6)), 4)
        plan = rng.choice(["basic", "plus", "pro"], n, p=[0.2, 0.3, 0.5])
        tenure = rng.integers(0, 72, n)
        pred = rng.integers(0, 2, n)
        hour = part // per_file
        day_folder = os.path.join(window, "2025", "10", "09", f"{hour:02d}")
        os.makedirs(day_folder, exist_ok=True)
        with open(os.path.join(day_folder, "part-0.jsonl"), "w") as f:
            for i in range(n):
                rec = ",".join(f'"{features[k]}":{x[i, k]}' for k in range(6))
                f.write(f'{{"time":"2025-10-09T{hour:02d}:00:00.000Z","time_ms":{t0 + part + i},"endpoint":"churn","deployment":"blue",'
                        f'"correlation_id":"c{part + i}","status":200,"latency_ms":0.8,"mirrored":false,'
                        f'"request":{{"dataframe_records":[{{{rec},"plan":"{plan[i]}","tenure":{tenure[i]}}}]}},'
                        f'"response":{{"predictions":[{pred[i]}]}}}}\n')
    return train, window


def bench_collected(records: int, runs: int, loom: str) -> dict:
    train, window = make_collected(records)
    out_json = os.path.join(os.path.dirname(train), "loom.json")
    times, rss = [], []
    for i in range(runs):
        log(f"{records:,} collected records: loom drift --current-format collected #{i + 1}")
        wall, peak_mib, p = peak([loom, "drift", "--reference", train, "--current", window, "--current-format", "collected", "--json", out_json])
        if p.returncode != 0:
            raise RuntimeError(p.stderr)
        times.append(wall)
        rss.append(peak_mib)
    with open(out_json) as f:
        result = json.load(f)
    size = sum(os.path.getsize(os.path.join(d, n)) for d, _, files in os.walk(window) for n in files)
    return {"records": records, "bytes": size, "seconds": sorted(times)[len(times) // 2], "peak_mib": max(rss),
            "current_rows": result["current_rows"], "drifted_columns": result["number_of_drifted_columns"], "columns": result["number_of_columns"]}


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_monitor_pass(records: int, runs: int, loom: str) -> dict:
    """`loom monitor run` on a running server: the window of `records` collected records sits in
    the server's artifact store (hourly files, as the collector writes them), the reference is a
    registered dataset; the pass reads the window, computes data drift and data quality, and
    records the results. Timed from the CLI's call to its answer; the server's peak RSS."""
    import shutil
    import urllib.request
    train, window = make_collected(records)
    data = os.path.join(ROOT, "bench", ".data", f"monitor-{records}")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(os.path.join(data, "artifacts"))
    os.symlink(os.path.dirname(os.path.dirname(window)), os.path.join(data, "artifacts", "collected"))
    p = subprocess.run([loom, "datasets", "register", train, "--name", "bench-train", "--data", data], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    port = free_port()
    server = subprocess.Popen([loom, "server", "--data", data, "--port", str(port), "--no-auth"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        req = urllib.request.Request(base + "/api/v1/endpoints", data=json.dumps({"name": "churn"}).encode(), headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10)
        spec = os.path.join(data, "monitor.yaml")
        with open(spec, "w") as f:
            f.write("kind: monitor\nname: bench\nendpoint: churn\n"
                    "window: {type: fixed, start: '2025-10-09T00:00:00Z', end: '2025-10-10T00:00:00Z'}\n"
                    "reference: {dataset: bench-train}\n"
                    "signals: [{type: data_drift, numerical_method: auto, categorical_method: auto}, {type: data_quality}]\n")
        p = subprocess.run([loom, "apply", "-f", spec, "--server", base], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stdout + p.stderr)
        times = []
        result = {}
        for i in range(runs):
            log(f"{records:,} collected records: loom monitor run #{i + 1}")
            started = time.perf_counter()
            p = subprocess.run([loom, "monitor", "run", "bench", "--json", "--server", base], capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            if p.returncode != 0:
                raise RuntimeError(p.stdout + p.stderr)
            result = json.loads(p.stdout)
        with open(f"/proc/{server.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    finally:
        server.terminate()
        server.wait(timeout=30)
    drift = next(r for r in result["results"] if r["signal"] == "data_drift")
    size = sum(os.path.getsize(os.path.join(d, n)) for d, _, files in os.walk(window) for n in files)
    return {"records": records, "bytes": size, "seconds": sorted(times)[len(times) // 2], "server_peak_mib": hwm, "rows": result["rows"],
            "drifted_columns": len([c for c in drift["detail"]["columns"] if c["drifted"]]), "columns": len(drift["detail"]["columns"]),
            "signals": {r["signal"]: r["passed"] for r in result["results"]}}


def report(results: list[dict], collected: dict | None = None, monitor: dict | None = None) -> str:
    lines = ["# Data drift: loom drift vs Evidently", "",
             f"`bench/drift_bench.py` on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start. 20 columns.", "",
             "| rows per side | Loom (whole process) | Loom peak RSS | Evidently (whole process) | Evidently report alone | Evidently peak RSS | speed-up | memory | same verdicts | max score diff |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in results:
        lines.append(
            f"| {r['rows']:,} | {r['loom_seconds']:.2f} s | {r['loom_peak_mib']:.0f} MiB | {r['evidently_seconds']:.1f} s | "
            f"{r['evidently_report_seconds']:.1f} s | {r['evidently_peak_mib']:.0f} MiB | {r['speedup']:.1f}× | {r['memory_ratio']:.2f}× | "
            f"{'yes' if r['same_verdicts'] and r['same_methods'] else 'NO'} ({r['drifted_columns']} drifted) | {r['max_score_difference']:.1e} |")
    if collected:
        c = collected
        lines += ["", "## A monitor pass over collected records", "",
                  "| records | files | Loom (read the window, drift, data quality) | peak RSS | rows compared | drifted |",
                  "| ---: | ---: | ---: | ---: | ---: | --- |",
                  f"| {c['records']:,} | {c['bytes'] / 1e6:.0f} MB | {c['seconds']:.2f} s | {c['peak_mib']:.0f} MiB | {c['current_rows']:,} | "
                  f"{c['drifted_columns']} of {c['columns']} |"]
    if monitor:
        m = monitor
        lines += ["", "## `loom monitor run` on a server, over collected records", "",
                  "| records | files | pass (CLI call to answer: read the window, drift, data quality, record) | server peak RSS | rows | drifted |",
                  "| ---: | ---: | ---: | ---: | ---: | --- |",
                  f"| {m['records']:,} | {m['bytes'] / 1e6:.0f} MB | {m['seconds']:.2f} s | {m['server_peak_mib']:.0f} MiB | {m['rows']:,} | "
                  f"{m['drifted_columns']} of {m['columns']} |"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--collected", type=int, default=0, help="also a window of this many collected records (0: none)")
    ap.add_argument("--monitor-pass", type=int, default=0, help="also `loom monitor run` over this many collected records on a server (0: none)")
    ap.add_argument("--loom", default=os.environ.get("LOOM_BIN") or os.path.join(ROOT, ".build-rel2", "release", "loom"))
    ap.add_argument("--evidently-python", default=os.environ.get("LOOM_EVIDENTLY_PYTHON") or os.path.join(ROOT, ".venv-evidently", "bin", "python"))
    args = ap.parse_args()
    results = [bench(rows, args.runs, args.loom, args.evidently_python) for rows in args.rows]
    collected = bench_collected(args.collected, args.runs, args.loom) if args.collected else None
    monitor = bench_monitor_pass(args.monitor_pass, args.runs, args.loom) if args.monitor_pass else None
    text = report(results, collected, monitor)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "drift.md"), "w") as f:
        f.write(text)
    with open(os.path.join(RESULTS, "drift.json"), "w") as f:
        json.dump({"tables": results, "collected": collected, "monitor_pass": monitor}, f, indent=2)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
