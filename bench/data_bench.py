#!/usr/bin/env python3
"""Profile and validate a generated CSV with Loom and with pandas, side by side.

Usage: bench/.venv/bin/python bench/data_bench.py [--mb 1024] [--loom PATH] [--runs 1]

Generates (once, cached under bench/.data/) a CSV of about --mb megabytes: 16 float columns,
a category, a boolean, an integer id and a short text, 5% of one float column missing. Then,
each in a fresh process, measured by /usr/bin/time (wall clock and peak resident memory):

- profile:  `loom datasets profile FILE --json` vs. pandas `read_csv` + `describe` (numbers, with
            the 5/25/50/75/95 percentiles) + `isna().sum()` + `nunique()` + `value_counts()` of the
            text columns: the same figures Loom's profile holds;
- validate: `loom datasets validate FILE -e rules.yaml` vs. pandas `read_csv` + the same checks
            (not null, range, allowed values, unique, regex, row count).

pandas' figures include starting Python and importing pandas (about 1-2 s), as Loom's include
starting its binary; the report also gives pandas' time inside the process. Markdown goes to
stdout and bench/results/data.md.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "bench", ".data")
RESULTS = os.path.join(ROOT, "bench", "results")

RULES = """expectations:
  - {rule: not_null, column: x0, mostly: 0.9}
  - {rule: range, column: x1, min: -10, max: 10}
  - {rule: allowed_values, column: cat, values: [alpha, beta, gamma, delta, epsilon]}
  - {rule: unique, column: id}
  - {rule: regex, column: note, pattern: '^n[0-9]+$'}
  - {rule: row_count, min: 1}
"""

PANDAS_PROFILE = r"""
import sys, time
t0 = time.time()
import pandas as pd
t1 = time.time()
df = pd.read_csv(sys.argv[1])
num = df.select_dtypes("number")
desc = num.describe(percentiles=[.05, .25, .5, .75, .95])
nulls = df.isna().sum()
distinct = df.nunique()
tops = {c: df[c].value_counts().head(10) for c in df.columns if df[c].dtype == object or df[c].dtype == bool}
t2 = time.time()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {len(df)}")
"""

PANDAS_VALIDATE = r"""
import sys, time
t0 = time.time()
import pandas as pd
t1 = time.time()
df = pd.read_csv(sys.argv[1])
results = {
    "not_null(x0)": int(df["x0"].isna().sum()),
    "range(x1)": int((~df["x1"].dropna().between(-10, 10)).sum()),
    "allowed_values(cat)": int((~df["cat"].dropna().isin(["alpha", "beta", "gamma", "delta", "epsilon"])).sum()),
    "unique(id)": int(df["id"].dropna().duplicated().sum()),
    "regex(note)": int((~df["note"].dropna().astype(str).str.contains(r"^n[0-9]+$", regex=True)).sum()),
    "row_count": 0 if len(df) >= 1 else 1,
}
t2 = time.time()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {len(df)}")
"""


def generate(path: str, megabytes: int) -> None:
    """Writes the CSV with numpy-free Python in chunks (reproducible: fixed seed)."""
    rng = random.Random(20261126)
    cats = ["alpha", "beta", "gamma", "delta", "epsilon"]
    target = megabytes * 1024 * 1024
    tmp = path + ".part"
    with open(tmp, "w") as f:
        f.write(",".join([f"x{i}" for i in range(16)] + ["cat", "flag", "id", "note"]) + "\n")
        written = 0
        row = 0
        while written < target:
            lines = []
            for _ in range(10000):
                xs = [f"{rng.gauss(0, 1):.6f}" for _ in range(16)]
                if row % 20 == 7:
                    xs[0] = ""
                lines.append(",".join(xs + [cats[rng.randrange(5)], "true" if rng.random() < 0.5 else "false", str(row), f"n{row % 5000}"]))
                row += 1
            chunk = "\n".join(lines) + "\n"
            f.write(chunk)
            written += len(chunk)
    os.replace(tmp, path)


def timed(cmd: list[str]) -> tuple[float, float, str, int]:
    """Runs cmd under /usr/bin/time -v: wall seconds, peak RSS MiB, stdout, exit code."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        started = time.time()
        p = subprocess.run(["/usr/bin/time", "-v", "-o", t.name, *cmd], capture_output=True, text=True)
        wall = time.time() - started
        report = open(t.name).read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report).group(1)) / 1024
    return wall, rss, p.stdout, p.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=int(os.environ.get("LOOM_DATA_BENCH_MB", "1024")))
    ap.add_argument("--loom", default=os.environ.get("LOOM_BIN", os.path.join(ROOT, ".build-release", "release", "loom")))
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(CACHE, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    data = os.path.join(CACHE, f"bench-{args.mb}mb.csv")
    if not os.path.exists(data):
        print(f"generating {data}", file=sys.stderr)
        generate(data, args.mb)
    size = os.path.getsize(data) / (1024 * 1024)
    rules = os.path.join(CACHE, "rules.yaml")
    with open(rules, "w") as f:
        f.write(RULES)
    scripts = {}
    for name, text in (("profile", PANDAS_PROFILE), ("validate", PANDAS_VALIDATE)):
        scripts[name] = os.path.join(CACHE, f"pandas_{name}.py")
        with open(scripts[name], "w") as f:
            f.write(text)

    rows = []
    raw = {"file_mib": size, "runs": []}
    for task in ("profile", "validate"):
        best = {}
        for _ in range(args.runs):
            loom_cmd = [args.loom, "datasets", "profile", data, "--json"] if task == "profile" else [args.loom, "datasets", "validate", data, "-e", rules]
            wall, rss, out, code = timed(loom_cmd)
            assert code == 0, f"loom {task} failed ({code})"
            if task == "profile":
                assert json.loads(out)["profile"]["rows"] > 0
            raw["runs"].append({"task": task, "tool": "loom", "seconds": wall, "rss_mib": rss})
            if "loom" not in best or wall < best["loom"][0]:
                best["loom"] = (wall, rss, None)
            wall, rss, out, code = timed([sys.executable, scripts[task], data])
            assert code == 0, f"pandas {task} failed ({code})"
            imp, work, _ = out.split()
            raw["runs"].append({"task": task, "tool": "pandas", "seconds": wall, "rss_mib": rss, "import_s": float(imp), "work_s": float(work)})
            if "pandas" not in best or wall < best["pandas"][0]:
                best["pandas"] = (wall, rss, float(work))
        lw, lr, _ = best["loom"]
        pw, pr, pwork = best["pandas"]
        rows.append(f"| {task} | Loom | {lw:.2f} | {size / lw:.0f} | {lr:.0f} | – |")
        rows.append(f"| {task} | pandas | {pw:.2f} ({pwork:.2f} in-process) | {size / pw:.0f} ({size / pwork:.0f}) | {pr:.0f} | – |")
        rows.append(f"| {task} | **Loom / pandas** | **{pw / lw:.2f}× throughput** ({pwork / lw:.2f}× against the in-process time) | | **{lr / pr:.3f}× memory** | |")
    import pandas

    report = [
        f"### Data: profile and validate a {size:.0f} MiB CSV (Loom vs. pandas {pandas.__version__})",
        "",
        f"`bench/.venv/bin/python bench/data_bench.py --mb {args.mb} --runs {args.runs}`: 20 columns (16 floats, a category, a boolean, an integer id, a short text), {args.runs} run(s) each, best kept; wall clock and peak RSS of the whole process.",
        "",
        "| task | tool | seconds | MiB/s | peak RSS MiB | |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
    ]
    text = "\n".join(report) + "\n"
    print(text)
    with open(os.path.join(RESULTS, "data.md"), "w") as f:
        f.write(text)
    with open(os.path.join(RESULTS, "data.json"), "w") as f:
        json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
