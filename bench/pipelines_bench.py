#!/usr/bin/env python3
"""Pipeline benchmarks (issue 4). So far: planning a large DAG.

Usage: python3 bench/pipelines_bench.py [--steps 10000] [--runs 5] [--loom PATH]

Generates (reproducibly, fixed seed) a spec of --steps command steps in layers of 100: each step
takes an input from a random step of the layer before and `needs` up to two more, so the DAG has
about three edges per step. Then runs `loom pipeline plan -f SPEC --json` --runs times, each in a
fresh process, and reports what the command measures itself: `planning_ms` (building the plan:
edges, cycle check, levels, order) and `parsing_ms` (reading and checking the YAML), plus the
process's wall clock. Markdown goes to stdout and bench/results/pipelines.md.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")


def spec(steps: int, width: int = 100, seed: int = 4) -> str:
    rng = random.Random(seed)
    lines = ["pipeline: big", "steps:"]
    for i in range(steps):
        lines += [f"  s{i}:", "    kind: command", "    command: 'true'", "    outputs: {out: file}"]
        layer = i // width
        if layer > 0:
            before = range((layer - 1) * width, layer * width)
            lines.append(f"    inputs: {{x: \"${{{{ steps.s{rng.choice(before)}.outputs.out }}}}\"}}")
            needs = sorted({rng.choice(before) for _ in range(2)})
            lines.append(f"    needs: [{', '.join(f's{n}' for n in needs)}]")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--loom", default=os.environ.get("LOOM_BIN", os.path.join(ROOT, ".build-release", "release", "loom")))
    args = ap.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(spec(args.steps))
        path = f.name
    planning, parsing, walls = [], [], []
    try:
        for _ in range(args.runs):
            started = time.time()
            p = subprocess.run([args.loom, "pipeline", "plan", "-f", path, "--json"], capture_output=True, text=True)
            walls.append(time.time() - started)
            if p.returncode != 0:
                sys.exit(f"loom pipeline plan failed: {p.stderr}")
            report = json.loads(p.stdout)
            assert report["steps"] == args.steps and len(report["levels"]) == (args.steps + 99) // 100
            planning.append(report["planning_ms"])
            parsing.append(report["parsing_ms"])
    finally:
        os.unlink(path)
    md = [
        f"`python3 bench/pipelines_bench.py --steps {args.steps} --runs {args.runs}`: a {args.steps}-step DAG "
        f"(layers of 100, about three edges per step), {args.runs} runs, each a fresh `loom pipeline plan` process.",
        "",
        "| what | median | max | target |",
        "| --- | ---: | ---: | --- |",
        f"| planning (plan from the checked spec) | {statistics.median(planning):.1f} ms | {max(planning):.1f} ms | < 200 ms |",
        f"| parsing and checking the YAML | {statistics.median(parsing):.1f} ms | {max(parsing):.1f} ms | – |",
        f"| whole process (`loom pipeline plan`) | {statistics.median(walls) * 1000:.0f} ms | {max(walls) * 1000:.0f} ms | – |",
    ]
    text = "\n".join(md) + "\n"
    print(text)
    with open(os.path.join(RESULTS, "pipelines.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
