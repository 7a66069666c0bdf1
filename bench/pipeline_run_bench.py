#!/usr/bin/env python3
"""Pipeline execution benchmarks (issue 4): orchestration overhead per step and a fully
cached re-run of the example pipeline.

Usage: python3 bench/pipeline_run_bench.py [--steps 200] [--runs 3] [--cached-runs 5] [--loom PATH]

1. Overhead. A chain of --steps no-op command steps (`true`), each needing the one before, run
   with `loom pipeline run --no-cache --concurrency 1` (a fresh process and data folder per
   run). A step's interval is the time from the previous step's end to its own end, as the
   store records them (milliseconds); its overhead is that interval less the no-op process's
   own run time, measured here as the median time to spawn and wait for `/bin/sh -c true`. The
   same steps as a DAG of 20 levels (each step needing one of the level before) at concurrency 4
   give the throughput in steps per second.
2. Cached re-run. examples/churn/run.sh runs once (the cache fills), then the same
   `loom pipeline run -f examples/churn/pipeline.yaml` again --cached-runs times: the wall
   clock of the whole command (process start, store, loopback tracking server, every step
   cached but the gate and the registration) and the run's own duration in the store.

Markdown goes to stdout and bench/results/pipeline_run.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
EXAMPLE = os.path.join(ROOT, "examples", "churn")


def chain(steps: int) -> str:
    lines = ["pipeline: chain", "steps:"]
    for i in range(steps):
        lines += [f"  s{i:03d}:", "    kind: command", "    command: 'true'"]
        if i:
            lines.append(f"    needs: [s{i - 1:03d}]")
    return "\n".join(lines) + "\n"


def layered(steps: int, levels: int = 20) -> str:
    width = max(1, steps // levels)
    lines = ["pipeline: layered", "steps:"]
    for i in range(steps):
        lines += [f"  s{i:03d}:", "    kind: command", "    command: 'true'"]
        if i >= width:
            lines.append(f"    needs: [s{i - width:03d}]")
    return "\n".join(lines) + "\n"


def run(loom: str, spec: str, data: str, *extra: str) -> tuple[dict, float]:
    started = time.perf_counter()
    p = subprocess.run([loom, "pipeline", "run", "-f", spec, "--data", data, "--json", *extra], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if p.returncode != 0:
        sys.exit(f"loom pipeline run failed ({p.returncode}): {p.stderr}\n{p.stdout[-2000:]}")
    return json.loads(p.stdout), wall


def process_ms(n: int = 200) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", "true"])
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cached-runs", type=int, default=5)
    ap.add_argument("--loom", default=os.environ.get("LOOM_BIN", os.path.join(ROOT, ".build-rel2", "release", "loom")))
    args = ap.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    work = tempfile.mkdtemp(prefix="loom-pipeline-bench-")
    md: list[str] = []
    try:
        proc = process_ms()
        with open(os.path.join(work, "chain.yaml"), "w") as f:
            f.write(chain(args.steps))
        with open(os.path.join(work, "layered.yaml"), "w") as f:
            f.write(layered(args.steps))
        overheads, walls, totals = [], [], []
        for r in range(args.runs):
            report, wall = run(args.loom, os.path.join(work, "chain.yaml"), os.path.join(work, f"chain-{r}"), "--no-cache", "--concurrency", "1")
            steps = sorted(report["steps"], key=lambda s: s["step"])
            assert len(steps) == args.steps and all(s["state"] == "succeeded" for s in steps)
            for a, b in zip(steps, steps[1:]):
                overheads.append(b["end_time"] - a["end_time"] - proc)
            totals.append(report["run"]["end_time"] - report["run"]["start_time"])
            walls.append(wall)
        layered_rates = []
        for r in range(args.runs):
            report, _ = run(args.loom, os.path.join(work, "layered.yaml"), os.path.join(work, f"layered-{r}"), "--no-cache", "--concurrency", "4")
            assert all(s["state"] == "succeeded" for s in report["steps"])
            layered_rates.append(args.steps / ((report["run"]["end_time"] - report["run"]["start_time"]) / 1000))
        overheads.sort()
        p90 = overheads[int(len(overheads) * 0.9)]
        md += [
            f"`python3 bench/pipeline_run_bench.py --steps {args.steps} --runs {args.runs} --cached-runs {args.cached_runs}`",
            "",
            f"Orchestration overhead: a chain of {args.steps} no-op command steps, concurrency 1, {args.runs} runs "
            f"({len(overheads)} step intervals). The no-op process (`/bin/sh -c true`) takes {proc:.2f} ms to spawn and wait for.",
            "",
            "| what | median | p90 | target |",
            "| --- | ---: | ---: | --- |",
            f"| overhead per step (interval less the process's run time) | {statistics.median(overheads):.2f} ms | {p90:.2f} ms | < 10 ms |",
            f"| whole run, {args.steps} steps (store start to end) | {statistics.median(totals):.0f} ms | {max(totals):.0f} ms | – |",
            f"| whole command (`loom pipeline run`) | {statistics.median(walls) * 1000:.0f} ms | {max(walls) * 1000:.0f} ms | – |",
            f"| {args.steps} steps in 20 levels, concurrency 4 | {statistics.median(layered_rates):.0f} steps/s | – | – |",
            "",
        ]

        # The example, cached.
        data = os.path.join(work, "example")
        env = dict(os.environ, LOOM_BIN=args.loom)
        p = subprocess.run([os.path.join(EXAMPLE, "run.sh"), "--data", data, "--quiet"], capture_output=True, text=True, env=env)
        if p.returncode != 0:
            sys.exit(f"examples/churn/run.sh failed: {p.stdout[-2000:]}{p.stderr[-2000:]}")
        # The same PATH run.sh chose for the sklearn step (its key does not depend on it).
        cached_walls, cached_runs = [], []
        for _ in range(args.cached_runs):
            report, wall = run(args.loom, os.path.join(EXAMPLE, "pipeline.yaml"), data, "--quiet")
            states = {s["step"]: s["state"] for s in report["steps"]}
            assert all(states[s] == "cached" for s in ["ingest", "validate", "split", "gbdt", "sklearn", "evaluate"]), states
            cached_walls.append(wall * 1000)
            cached_runs.append(report["run"]["end_time"] - report["run"]["start_time"])
        md += [
            f"Cached re-run of examples/churn (8 steps; 5,000 rows): run once, then {args.cached_runs} re-runs with nothing changed "
            "(every step cached but the gate and the registration, which always run).",
            "",
            "| what | median | max | target |",
            "| --- | ---: | ---: | --- |",
            f"| whole command (`loom pipeline run -f examples/churn/pipeline.yaml`) | {statistics.median(cached_walls):.0f} ms | {max(cached_walls):.0f} ms | < 1 s |",
            f"| the run itself (store start to end) | {statistics.median(cached_runs):.0f} ms | {max(cached_runs):.0f} ms | – |",
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(md) + "\n"
    print(text)
    with open(os.path.join(RESULTS, "pipeline_run.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
