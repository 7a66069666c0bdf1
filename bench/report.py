"""Render the JSON results of one bench/run.sh invocation as Markdown.

    python bench/report.py RESULTS_DIR > latest.md

Sections appear only for the benchmarks that ran. See bench/README.md for how to read them.
"""

from __future__ import annotations

import glob
import json
import math
import os
import statistics
import sys


def load(d: str, name: str):
    path = os.path.join(d, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def num(x, digits=1) -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "–"
    if isinstance(x, (int,)) or (isinstance(x, float) and abs(x) >= 1000):
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def ratio(a, b, digits=1) -> str:
    if not a or not b:
        return "–"
    return f"{a / b:,.{digits}f}×"


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**not met**")


def table(headers: list[str], rows: list[list[str]], align: str = "") -> str:
    """align: one letter per column, l or r (default: first column left, the rest right)."""
    align = align or ("l" + "r" * (len(headers) - 1))
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " if a == "l" else " ---: " for a in align) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def client_section(d: str, lines: list[str], targets: list, cores: int | None) -> None:
    loom, ml = load(d, "client-loom.json"), load(d, "client-mlflow.json")
    if not loom and not ml:
        return
    ref = loom or ml
    lines.append("## 1. MLflow client workload\n")
    lines.append(f"The official `mlflow` client (`MlflowClient`), {ref['workers']} worker processes, the same "
                 f"17-call iteration in a loop (runs, metrics, batches, searches, registry) for "
                 f"{ref['duration_s']:.0f} s after a warm-up. *ops/s* counts successful client calls. The clients run on the "
                 f"same machine: its {cores or '?'} cores give {cores or '?'} CPU-seconds per second, so when server CPU + "
                 f"client CPU approaches {cores or '?'} × the duration, the machine rather than the server is the limit.\n")
    rows = []
    for name, r in (("Loom", loom), ("MLflow", ml)):
        if not r:
            continue
        rows.append([name, num(r["ops_per_s"]), num(r["ops_ok"], 0), num(r["ops_error"], 0), num(r["iterations"], 0),
                     num(r["http_requests"], 0), num(r["server_cpu_s"]), num(r.get("client_cpu_s")), num(r["server_cpu_ms_per_op"], 2),
                     num(r.get("server_rss_after_mib"))])
    lines.append(table(["server", "ops/s", "calls ok", "errors", "iterations", "HTTP requests", "server CPU s",
                        "client CPU s", "server CPU ms/op", "server RSS after (MiB)"], rows))
    if loom and ml:
        r = loom["ops_per_s"] / ml["ops_per_s"] if ml["ops_per_s"] else None
        lines.append(f"\n**Loom / MLflow throughput: {ratio(loom['ops_per_s'], ml['ops_per_s'])}** "
                     f"(server CPU per call: MLflow / Loom = {ratio(ml['server_cpu_ms_per_op'], loom['server_cpu_ms_per_op'])})\n")
        targets.append(["client workload ops/s, Loom / MLflow", "≥ 5×", ratio(loom["ops_per_s"], ml["ops_per_s"]),
                        verdict(r is not None and r >= 5 and loom["ops_error"] == 0)])
    lines.append("\nPer operation (latency under the concurrent mix; *ops/s* = workers ÷ mean latency, "
                 "the rate if every worker made only this call):\n")
    rows = []
    for op in ref["per_op"]:
        a = loom["per_op"][op] if loom else None
        b = ml["per_op"][op] if ml else None
        rows.append([f"`{op}`",
                     num(a["ops_per_s"]) if a else "–", num(a["p50_ms"], 2) if a else "–", num(a["p95_ms"], 2) if a else "–",
                     num(b["ops_per_s"]) if b else "–", num(b["p50_ms"], 2) if b else "–", num(b["p95_ms"], 2) if b else "–",
                     ratio(a["ops_per_s"], b["ops_per_s"]) if a and b else "–",
                     f"{a['errors'] if a else '–'} / {b['errors'] if b else '–'}"])
    lines.append(table(["operation", "Loom ops/s", "Loom p50 ms", "Loom p95 ms", "MLflow ops/s", "MLflow p50 ms",
                        "MLflow p95 ms", "Loom / MLflow", "errors (Loom / MLflow)"], rows))
    for name, r in (("Loom", loom), ("MLflow", ml)):
        if r and r.get("error_messages"):
            lines.append(f"\n{name} client errors (first ones):\n")
            lines += [f"- `{m}`" for m in r["error_messages"][:5]]
    lines.append("")


def http_section(d: str, lines: list[str], targets: list) -> None:
    res = {t: load(d, f"http-{t}.json") for t in ("loom", "mlflow", "baseline")}
    if not any(res.values()):
        return
    ref = next(r for r in res.values() if r)
    lines.append("## 2. Raw HTTP: log-metric and log-batch (wrk)\n")
    lines.append(f"`wrk -t{ref['threads']} -c{ref['connections']} --latency` with a Lua script that sends a new metric "
                 f"point per request (log-batch: 10 points). Loom and the bare Hummingbird route ran "
                 f"{res['loom']['duration_s'] if res['loom'] else ref['duration_s']:.0f} s per endpoint, MLflow "
                 f"{res['mlflow']['duration_s'] if res['mlflow'] else 0:.0f} s. *stored* = metric points read back "
                 f"after the run / responses that were 200. *server CPU (cores)* = the server's CPU seconds ÷ the run's "
                 f"duration (1.0 = one core busy the whole time; wrk itself uses the rest of the machine).\n")
    rows = []
    names = {"loom": "Loom", "mlflow": "MLflow", "baseline": "bare Hummingbird route"}
    for endpoint in ("log-metric", "log-batch"):
        for t in ("loom", "mlflow", "baseline"):
            r = res[t]
            if not r or endpoint not in r["endpoints"]:
                continue
            e = r["endpoints"][endpoint]
            sock = sum(e["errors"][k] for k in ("connect", "read", "write", "timeout"))
            stored = f"{e['stored_points']:,}/{e['expected_points']:,}" if e.get("stored_points") is not None else "–"
            rows.append([f"`{endpoint}`", names[t], num(e["rps"]), num(e["p50_ms"], 2), num(e["p99_ms"], 2),
                         num(e["max_ms"], 1), num(e["requests"], 0), str(e["non200"]), str(sock), stored,
                         num(e["server_cpu_s"] / e["duration_s"], 2) if e.get("server_cpu_s") is not None and e["duration_s"] else "–"])
    lines.append(table(["endpoint", "server", "req/s", "p50 ms", "p99 ms", "max ms", "requests", "non-200",
                        "socket errors", "stored", "server CPU (cores)"], rows))
    lines.append("")
    rows = []
    for endpoint in ("log-metric", "log-batch"):
        get = lambda t: res[t]["endpoints"][endpoint] if res[t] and endpoint in res[t]["endpoints"] else None  # noqa: E731
        lo, ml, ba = get("loom"), get("mlflow"), get("baseline")
        rows.append([f"`{endpoint}`", ratio(lo and lo["rps"], ml and ml["rps"], 0), ratio(lo and lo["rps"], ba and ba["rps"], 2),
                     num(lo["p99_ms"], 2) if lo else "–"])
        if lo and ml:
            r = lo["rps"] / ml["rps"] if ml["rps"] else None
            targets.append([f"`{endpoint}` req/s, Loom / MLflow", "≥ 100×", ratio(lo["rps"], ml["rps"], 0),
                            verdict(r is not None and r >= 100)])
        if lo:
            clean = lo["non200"] == 0 and sum(lo["errors"][k] for k in ("connect", "read", "write", "timeout")) == 0
            targets.append([f"`{endpoint}` Loom p99", "< 10 ms", f"{lo['p99_ms']:.2f} ms", verdict(lo["p99_ms"] < 10 and clean)])
        if lo and ba:
            targets.append([f"`{endpoint}` req/s, Loom / bare route", "≥ 0.67 (within a third)", ratio(lo["rps"], ba["rps"], 2),
                            verdict(lo["rps"] >= ba["rps"] * 2 / 3)])
    lines.append(table(["endpoint", "Loom / MLflow req/s", "Loom / bare route req/s", "Loom p99 ms"], rows))
    for t in ("loom", "mlflow", "baseline"):
        r = res[t]
        if not r:
            continue
        for endpoint, e in r["endpoints"].items():
            for s in e.get("non200_samples", [])[:3]:
                lines.append(f"\n- {names[t]} `{endpoint}` non-200 sample: HTTP {s['status']} `{s['body']}`")
    lines.append("")


def search_section(d: str, lines: list[str], targets: list) -> None:
    loom, ml = load(d, "search-loom.json"), load(d, "search-mlflow.json")
    if not loom and not ml:
        return
    lines.append("## 3. search_runs over a large experiment\n")
    lines.append("`POST runs/search` with `filter: metrics.acc > 0.9` (threshold nudged by 1e-7 per request), "
                 "`order_by: metrics.acc DESC`, `max_results: 100`; one client, sequential, server otherwise idle. "
                 "Runs were created through the REST API (runs/create + runs/log-batch, 2 metrics, 2 params, 1 tag each).\n")
    rows = []
    for name, r in (("Loom", loom), ("MLflow", ml)):
        if not r:
            continue
        for s in r["stages"]:
            note = "" if s["runs"] >= s["asked_runs"] else f" (asked {s['asked_runs']:,}; population time limit)"
            rows.append([name, f"{s['runs']:,}{note}", num(s["p50_ms"], 1), num(s["p95_ms"], 1), num(s["max_ms"], 1),
                         str(s["n"]), str(s["problems"]), num(s.get("populate_runs_per_s"), 0)])
    lines.append(table(["server", "runs in experiment", "p50 ms", "p95 ms", "max ms", "requests", "wrong answers",
                        "population runs/s"], rows))
    if loom and ml:
        by_size = {s["runs"]: s for s in loom["stages"]}
        for s in ml["stages"]:
            if s["runs"] in by_size:
                lo = by_size[s["runs"]]
                lines.append(f"\nAt {s['runs']:,} runs: MLflow p50 / Loom p50 = **{ratio(s['p50_ms'], lo['p50_ms'])}**.")
        biggest_ml = max(s["runs"] for s in ml["stages"]) if ml["stages"] else 0
        biggest_lo = max(s["runs"] for s in loom["stages"]) if loom["stages"] else 0
        if biggest_ml < biggest_lo:
            st = max(ml["stages"], key=lambda s: s["runs"])
            rate = st.get("populate_runs_per_s") or 0
            eta = f" (at {rate:.0f} runs/s, {st['asked_runs']:,} runs would take {st['asked_runs'] / rate / 60:.0f} min, " \
                  f"100,000 runs {100000 / rate / 60:.0f} min)" if rate else ""
            lines.append(f"\n**MLflow was measured on {biggest_ml:,} runs, not {biggest_lo:,}**: that is how many its REST API "
                         f"took within the population time limit{eta}. Loom was measured at the same size too (the row "
                         f"with {biggest_ml:,} runs), which is the like-for-like comparison.")
    if loom and loom["stages"]:
        top = max(loom["stages"], key=lambda s: s["runs"])
        if top["runs"] >= 100000:
            targets.append(["search_runs p50 over 100,000 runs (Loom)", "< 50 ms",
                            f"{top['p50_ms']:.1f} ms", verdict(top["p50_ms"] < 50 and top["problems"] == 0)])
        else:
            why = ("quick mode" if top["asked_runs"] < 100000 else
                   f"population reached only {top['runs']:,} runs in the time limit, at {top.get('populate_runs_per_s') or 0:.0f} runs/s")
            targets.append([f"search_runs p50 over 100,000 runs (Loom)", "< 50 ms",
                            f"{top['p50_ms']:.1f} ms at {top['runs']:,} runs", f"not measured at 100,000 ({why})"])
    for name, r in (("Loom", loom), ("MLflow", ml)):
        for s in (r or {}).get("stages", []):
            for p in s.get("problem_samples", []):
                lines.append(f"\n- {name} at {s['runs']:,} runs: `{p}`")
    lines.append("")


def memory_section(d: str, lines: list[str], targets: list) -> None:
    rows, stats = [], {}
    for name, key in (("Loom", "loom"), ("MLflow", "mlflow"),
                      ("MLflow, job execution off (reference)", "mlflow-nojobs")):
        runs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(d, f"memory-{key}-[0-9]*.json")))]
        if not runs:
            continue
        cold = [r["cold_start_ms"] for r in runs if r.get("cold_start_ms") is not None]
        rss = [r["rss_mib"] for r in runs]
        pss = [r["pss_mib"] for r in runs if r.get("pss_mib") is not None]
        stats[key] = (statistics.median(cold) if cold else None, statistics.median(rss))
        procs = runs[0]["processes"]
        rows.append([name, num(stats[key][1]), num(max(rss)), num(statistics.median(pss)) if pss else "–", str(procs),
                     num(stats[key][0], 0), " / ".join(num(c, 0) for c in cold), str(len(runs))])
    if not rows:
        return
    lines.append("## 4. Idle memory and cold start\n")
    lines.append("Each start uses a fresh, empty data directory. *Cold start* = from exec to the first 200 from "
                 "`GET /health` (includes creating the database). *Idle RSS* = sum of VmRSS over the server's "
                 "whole process tree after 10 s without requests (MiB = 1024 KiB); *PSS* counts pages shared between "
                 "processes once (fairer for a multi-process server). Medians over the starts.\n")
    lines.append(table(["server", "idle RSS MiB (median)", "idle RSS MiB (max)", "idle PSS MiB (median)", "processes",
                        "cold start ms (median)", "each start ms", "starts"], rows))
    if "loom" in stats and "mlflow" in stats:
        lines.append(f"\nMLflow / Loom: idle memory **{ratio(stats['mlflow'][1], stats['loom'][1])}**, cold start "
                     f"**{ratio(stats['mlflow'][0], stats['loom'][0])}**.")
    if "mlflow-nojobs" in stats:
        lines.append("\nThe *job execution off* row is `mlflow server` started with "
                     "`MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false` (no job runner, no huey consumers): not MLflow's "
                     "default, shown so the comparison does not rest on those helper processes.")
    for key in ("mlflow",):
        runs = sorted(glob.glob(os.path.join(d, f"memory-{key}-[0-9]*.json")))
        if runs:
            r = json.load(open(runs[0]))
            lines.append("\nMLflow's process tree (first start):\n")
            lines.append(table(["pid", "RSS MiB", "command"],
                               [[str(p["pid"]), num(p["rss_mib"]), f"`{p['cmd'][:110]}`"] for p in r["process_list"]], "rrl"))
    if "loom" in stats:
        targets.append(["Loom idle RSS", "< 50 MB", f"{stats['loom'][1]:.1f} MiB", verdict(stats["loom"][1] < 50)])
    lines.append("")


def main() -> int:
    d = sys.argv[1]
    meta = load(d, "meta.json") or {}
    lines = ["# Loom vs MLflow benchmark\n"]
    if meta:
        lines.append(f"- date: {meta.get('date', '?')}; mode: {meta.get('mode', '?')}; benchmarks: {meta.get('benchmarks', '?')}")
        lines.append(f"- machine: {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, {meta.get('mem', '?')}; "
                     f"load average at start: {meta.get('loadavg', '?')}")
        lines.append(f"- Loom: {meta.get('loom_version', '?')} (`{meta.get('loom_bin', '?')}`); MLflow server: "
                     f"mlflow {meta.get('mlflow_version', '?')} (SQLite backend, default uvicorn workers); "
                     f"Python {meta.get('python', '?')}; {meta.get('wrk', '?')}")
        lines.append("- clients and servers share the same machine; each server gets a fresh data directory per benchmark")
        lines.append("")
    targets: list = []
    body: list[str] = []
    client_section(d, body, targets, meta.get("cores"))
    http_section(d, body, targets)
    search_section(d, body, targets)
    memory_section(d, body, targets)
    if targets:
        lines.append("## Targets\n")
        lines.append(table(["what", "target", "measured", "verdict"], targets, "llrl"))
        if meta.get("mode") == "quick":
            lines.append("\n*Quick mode: short runs and small data sets; a smoke test, not figures to quote.*")
        lines.append("")
    lines += body
    notes_path = os.path.join(d, "notes.txt")
    notes = [n for n in open(notes_path).read().splitlines() if n.strip()] if os.path.exists(notes_path) else []
    if notes:
        lines.append("## Notes from this run\n")
        lines += [f"- {n}" for n in notes]
        lines.append("")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
