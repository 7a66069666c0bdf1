#!/usr/bin/env python3
"""Online endpoint benchmarks (issue 5), with wrk on loopback.

Usage: python3 bench/endpoint_bench.py [routing] [native] [canary] [--duration 20] [--rounds 3] [--loom PATH] [--baseline PATH]

1. routing: the overhead of an endpoint in front of an external upstream. The upstream is
   `loom-bench-baseline` (a bare Hummingbird server answering POST /invocations with a constant
   body). wrk sends the same 1-row request at a fixed 5,000 requests/s (50 connections, each
   waiting 10 ms between requests: wrk's `delay()`) to the upstream directly and to
   `/endpoints/NAME/invocations` on `loom server`, alternately, `--rounds` times each (3 by
   default); the added p50 and p99 are Loom's medians minus the direct ones, from the same run.
   When `nginx` is installed, the same upstream behind nginx (a keep-alive reverse proxy, `worker_processes auto`) is measured in the
   same rounds: the peer that shows what a proxy hop costs on this machine. CPU per request is
   the proxy's (the upstream's for the direct runs), from /proc.
2. native: requests/s and latency of native logistic-regression and GBDT endpoints at 1 and 100
   rows per request (wrk, 2 threads, 16 connections, as fast as they answer), next to
   `mlflow models serve` (mlflow 3.17.2, its default single uvicorn worker) serving the
   equivalent scikit-learn models (LogisticRegression, HistGradientBoostingClassifier) trained on
   the same data, in the same run.
3. canary: a rollout under load (wrk at 1,000 requests/s, counting every status and answering
   deployment): a passing canary (5 → 50 → 100, native v1 → v2) must lose no request; then a
   canary whose model server fails every request must be rolled back within one gate interval
   (1 s) of its first step having enough requests to judge.

Markdown goes to stdout and bench/results/endpoints.md (JSON next to it).
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
MODEL_SERVER = os.path.join(ROOT, "tests", "e2e", "support", "model_server.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def api(base: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read()
        return json.loads(text) if text else {}


class Proc:
    def __init__(self, cmd: list[str], env: dict | None = None, log_path: str | None = None):
        self.log = open(log_path or os.devnull, "ab")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True)

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()


LUA = r"""
local body = os.getenv("BODY_FILE") and io.open(os.getenv("BODY_FILE")):read("*a") or "{}"
local pause = tonumber(os.getenv("DELAY_MS") or "0")
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  statuses = {}
  deployments = {}
end
function delay()
  return pause
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local d = headers["loom-deployment"] or headers["Loom-Deployment"] or "-"
  deployments[d] = (deployments[d] or 0) + 1
end
function done(summary, latency, requests)
  local s, d = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do s[k] = (s[k] or 0) + v end
    for k, v in pairs(t:get("deployments")) do d[k] = (d[k] or 0) + v end
  end
  local out = io.open(os.getenv("WRK_JSON"), "w")
  local parts = {}
  for k, v in pairs(s) do table.insert(parts, string.format('"%s": %d', k, v)) end
  local dparts = {}
  for k, v in pairs(d) do table.insert(dparts, string.format('"%s": %d', k, v)) end
  out:write(string.format('{"requests": %d, "duration_us": %d, "errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_timeout": %d, "errors_status": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d, "mean_us": %.1f, "statuses": {%s}, "deployments": {%s}}',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    table.concat(parts, ", "), table.concat(dparts, ", ")))
  out:close()
end
"""


def wrk(url: str, body: str, seconds: float, threads: int, connections: int, delay_ms: int = 0) -> dict:
    work = tempfile.mkdtemp(prefix="wrk-")
    try:
        script = os.path.join(work, "s.lua")
        with open(script, "w") as f:
            f.write(LUA)
        body_file = os.path.join(work, "body.json")
        with open(body_file, "w") as f:
            f.write(body)
        out = os.path.join(work, "out.json")
        env = {**os.environ, "BODY_FILE": body_file, "DELAY_MS": str(delay_ms), "WRK_JSON": out}
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, int(round(seconds)))}s", "--timeout", "10s", "-s", script, url]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
        if not os.path.exists(out):
            raise RuntimeError(f"wrk produced no result: {p.stdout}\n{p.stderr}")
        with open(out) as f:
            r = json.load(f)
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
        return r
    finally:
        shutil.rmtree(work, ignore_errors=True)


def start_loom(loom: str, data: str) -> tuple[Proc, str]:
    os.makedirs(data, exist_ok=True)
    port = free_port()
    proc = Proc([loom, "server", "--host", "127.0.0.1", "--port", str(port), "--data", data, "--no-auth"],
                env={"LOOM_ENDPOINT_REFRESH": "1"}, log_path=os.path.join(data, "server.log"))
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health")
    return proc, base


def churn_data(path: str, n: int = 20000, seed: int = 1) -> list[str]:
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(8)})
    df["plan"] = rng.choice(["basic", "plus", "pro"], n)
    z = df.x0 - 0.5 * df.x1 + 0.3 * df.x2 * df.x3 + (df.plan == "basic") * 0.8
    df["churned"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    df.to_csv(path, index=False)
    return [c for c in df.columns if c != "churned"]


def body_rows(csv: str, rows: int) -> str:
    import pandas as pd
    df = pd.read_csv(csv).drop(columns=["churned"]).head(rows)
    return json.dumps({"dataframe_split": {"columns": list(df.columns), "data": df.values.tolist()}})


# --- 1. routing overhead ------------------------------------------------------------------

NGINX_CONF = """
worker_processes auto;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  proxy_temp_path {work}/nginx-proxy;
  upstream model {{ server 127.0.0.1:{upstream}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
"""


def start_nginx(work: str, upstream: int) -> tuple[Proc, int]:
    """nginx as a keep-alive reverse proxy to 127.0.0.1:upstream, its files in `work`; and its port."""
    port = free_port()
    os.makedirs(os.path.join(work, "nginx-body"))
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(work=work, upstream=upstream, port=port))
    return Proc(["nginx", "-c", os.path.join(work, "nginx.conf"), "-p", work]), port


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes so far (children of nginx's master included by pid)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    out = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def routing(loom: str, baseline: str, seconds: float, rounds: int = 3) -> dict:
    work = tempfile.mkdtemp(prefix="loom-ep-bench-")
    up_port = free_port()
    upstream = Proc([baseline, str(up_port)])
    server, base = start_loom(loom, os.path.join(work, "data"))
    nginx = None
    try:
        wait_http(f"http://127.0.0.1:{up_port}/health")
        api(base, "POST", "/api/v1/endpoints", {"name": "ext"})
        api(base, "POST", "/api/v1/endpoints/ext/deployments", {"name": "up", "runtime": "external", "url": f"http://127.0.0.1:{up_port}/invocations"})
        api(base, "PUT", "/api/v1/endpoints/ext/traffic", {"traffic": {"up": 100}})
        body = json.dumps({"dataframe_records": [{"x0": 0.1, "x1": 1.2, "plan": "basic"}]})
        targets = {"direct": (f"http://127.0.0.1:{up_port}/invocations", [upstream.p.pid]),
                   "loom": (f"{base}/endpoints/ext/invocations", [server.p.pid])}
        # The peer: nginx as a keep-alive reverse proxy in front of the same upstream, when installed.
        if shutil.which("nginx"):
            nginx, ng_port = start_nginx(work, up_port)
            wait_http(f"http://127.0.0.1:{ng_port}/health")
            targets["nginx"] = (f"http://127.0.0.1:{ng_port}/invocations", process_tree(nginx.p.pid))
        log("routing: warm-up")
        for url, _ in targets.values():
            wrk(url, body, 3, 2, 50, 10)
        runs = {name: [] for name in targets}
        cpu = {name: [] for name in targets}
        for i in range(rounds):
            for name, (url, pids) in targets.items():
                log(f"routing: {name} #{i + 1} at 5,000 requests/s for {seconds:.0f} s")
                before = cpu_seconds(pids)
                r = wrk(url, body, seconds, 2, 50, 10)
                r["cpu_us_per_request"] = (cpu_seconds(pids) - before) * 1e6 / max(r["requests"], 1)
                runs[name].append(r)
        def med(name, key):
            values = sorted(r[key] for r in runs[name])
            return values[len(values) // 2] if len(values) % 2 else sum(values) / len(values)
        out = {"runs": runs}
        for key in ["p50_us", "p99_us", "rps", "cpu_us_per_request"]:
            out[key] = {name: med(name, key) for name in targets}
        for name in targets:
            if name != "direct":
                out[f"added_p50_ms_{name}"] = (out["p50_us"][name] - out["p50_us"]["direct"]) / 1000
                out[f"added_p99_ms_{name}"] = (out["p99_us"][name] - out["p99_us"]["direct"]) / 1000
        out["added_p50_ms"], out["added_p99_ms"] = out["added_p50_ms_loom"], out["added_p99_ms_loom"]
        out["non_2xx"] = sum(v for r in runs["loom"] for k, v in r["statuses"].items() if not k.startswith("2"))
        return out
    finally:
        if nginx:
            nginx.stop()
        server.stop()
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)


# --- 2. native endpoints vs mlflow models serve ------------------------------------------------

def native(loom: str, seconds: float) -> dict:
    work = tempfile.mkdtemp(prefix="loom-native-bench-")
    data = os.path.join(work, "data")
    os.makedirs(data)
    csv = os.path.join(work, "churn.csv")
    features = churn_data(csv)
    results = {}
    for family in ["logistic", "gbdt"]:
        p = subprocess.run([loom, "train", "--data", csv, "--target", "churned", "--model", family, "--register", f"churn-{family}",
                            "--data-dir", data, "--json"], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr)
    # The scikit-learn equivalents, saved as MLflow models.
    import mlflow.sklearn
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    df = pd.read_csv(csv)
    x, y = df[features], df["churned"]
    numeric = [f for f in features if f != "plan"]
    sk = {
        "logistic": Pipeline([("prep", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough")),
                              ("model", LogisticRegression(max_iter=1000))]),
        "gbdt": Pipeline([("prep", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough")),
                          ("model", HistGradientBoostingClassifier(max_iter=100, early_stopping=False))]),
    }
    for family, model in sk.items():
        model.fit(x, y)
        mlflow.sklearn.save_model(model, os.path.join(work, f"sk-{family}"), input_example=x.head(2),
                                  serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE)
    bodies = {1: body_rows(csv, 1), 100: body_rows(csv, 100)}
    server, base = start_loom(loom, data)
    try:
        api(base, "POST", "/api/v1/endpoints", {"name": "native"})
        for family in ["logistic", "gbdt"]:
            api(base, "POST", "/api/v1/endpoints/native/deployments", {"name": family, "model": f"models:/churn-{family}/1"})
        api(base, "PUT", "/api/v1/endpoints/native/traffic", {"traffic": {"logistic": 100}})
        for family in ["logistic", "gbdt"]:
            # Aimed at one deployment through the traffic map (not the header), as clients call it.
            api(base, "PUT", "/api/v1/endpoints/native/traffic", {"traffic": {family: 100, ("gbdt" if family == "logistic" else "logistic"): 0}})
            time.sleep(0.5)
            for rows, body in bodies.items():
                url = f"{base}/endpoints/native/invocations"
                wrk(url, body, 2, 2, 16)
                log(f"native: loom {family}, {rows} row(s)")
                results[f"loom {family} {rows}"] = wrk(url, body, seconds, 2, 16)
    finally:
        server.stop()
    for family in ["logistic", "gbdt"]:
        port = free_port()
        mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
        proc = Proc([mlflow_bin, "models", "serve", "-m", os.path.join(work, f"sk-{family}"), "-p", str(port), "-h", "127.0.0.1", "--env-manager", "local"],
                    env={"PATH": os.path.dirname(mlflow_bin) + ":" + os.environ.get("PATH", "")}, log_path=os.path.join(work, f"mlflow-{family}.log"))
        try:
            wait_http(f"http://127.0.0.1:{port}/ping", timeout=180)
            for rows, body in bodies.items():
                url = f"http://127.0.0.1:{port}/invocations"
                wrk(url, body, 2, 2, 16)
                log(f"native: mlflow models serve {family}, {rows} row(s)")
                results[f"mlflow {family} {rows}"] = wrk(url, body, seconds, 2, 16)
        finally:
            proc.stop()
    shutil.rmtree(work, ignore_errors=True)
    return results


# --- 3. a canary under load -------------------------------------------------------------------

def canary(loom: str) -> dict:
    work = tempfile.mkdtemp(prefix="loom-canary-bench-")
    data = os.path.join(work, "data")
    os.makedirs(data)
    csv = os.path.join(work, "churn.csv")
    churn_data(csv, n=5000)
    for family in ["logistic", "gbdt"]:
        subprocess.run([loom, "train", "--data", csv, "--target", "churned", "--model", family, "--register", "churn", "--data-dir", data],
                       capture_output=True, text=True, check=True)
    body = body_rows(csv, 1)
    server, base = start_loom(loom, data)
    out = {}
    try:
        api(base, "POST", "/api/v1/endpoints", {"name": "churn"})
        api(base, "POST", "/api/v1/endpoints/churn/deployments", {"name": "v1", "model": "models:/churn/1"})
        api(base, "PUT", "/api/v1/endpoints/churn/traffic", {"traffic": {"v1": 100}})
        url = f"{base}/endpoints/churn/invocations"

        # A passing canary, under 1,000 requests/s (10 connections, 10 ms apart).
        import threading
        result = {}
        t = threading.Thread(target=lambda: result.update(wrk(url, body, 14, 2, 10, 10)))
        t.start()
        time.sleep(1)
        r = api(base, "POST", "/api/v1/endpoints/churn/rollouts", {"to": "models:/churn/2", "deployment": "v2", "steps": [5, 50, 100], "bake": "3s",
                                                                 "gate_interval": "1s", "min_requests": 20,
                                                                 "gates": [{"metric": "error_rate", "max_increase": 0.01}, {"metric": "latency_p99", "max_increase": 50}]})
        t.join()
        state = api(base, "GET", f"/api/v1/endpoints/churn/rollouts/{r['id']}")
        out["passing"] = {"state": state["state"], "wrk": result, "decisions": [d["summary"] for d in state["decisions"]]}
        log(f"canary: passing one {state['state']}: {result['statuses']} from {result['deployments']}")

        # A canary whose model server fails every request.
        api(base, "POST", "/api/v1/endpoints/churn/deployments", {"name": "faulty", "runtime": "process", "command": f"{sys.executable} {MODEL_SERVER}",
                                                                  "environment": {"FAIL_RATE": "1"}})
        deadline = time.time() + 60
        while not api(base, "GET", "/api/v1/endpoints/churn/deployments/faulty").get("ready") and time.time() < deadline:
            time.sleep(0.2)
        result = {}
        t = threading.Thread(target=lambda: result.update(wrk(url, body, 10, 2, 10, 10)))
        t.start()
        time.sleep(1)
        r = api(base, "POST", "/api/v1/endpoints/churn/rollouts", {"deployment": "faulty", "steps": [10, 100], "bake": "60s", "gate_interval": "1s",
                                                                 "min_requests": 20, "gates": [{"metric": "error_rate", "max_increase": 0.01}]})
        t.join()
        state = api(base, "GET", f"/api/v1/endpoints/churn/rollouts/{r['id']}")
        decisions = state["decisions"]
        step = next(d["time"] for d in decisions if d["kind"] == "step")
        end = decisions[-1]
        out["faulty"] = {"state": state["state"], "wrk": result, "decisions": [d["summary"] for d in decisions],
                         "seconds_to_rollback": (end["time"] - step) / 1000, "candidate_requests": end.get("detail", {}).get("candidate_requests")}
        log(f"canary: faulty one {state['state']} {out['faulty']['seconds_to_rollback']:.2f} s after its first step")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


def report(results: dict) -> str:
    lines = ["# Endpoint benchmarks", "", f"`python3 bench/endpoint_bench.py` on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start.", ""]
    if "routing" in results:
        r = results["routing"]
        lines += ["## Routing overhead (external upstream, 5,000 requests/s)", "",
                  "| | p50 | p99 | requests/s | CPU per request (proxy; upstream for direct) | added p50 | added p99 |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        names = {"direct": "upstream directly", "loom": "through a Loom endpoint", "nginx": "through nginx (keep-alive reverse proxy)"}
        for name in [n for n in ["direct", "loom", "nginx"] if n in r["p50_us"]]:
            added = "| |" if name == "direct" else f"| **{r[f'added_p50_ms_{name}']:.3f} ms** | **{r[f'added_p99_ms_{name}']:.3f} ms** |"
            lines.append(f"| {names[name]} | {r['p50_us'][name] / 1000:.3f} ms | {r['p99_us'][name] / 1000:.3f} ms | {r['rps'][name]:.0f} | "
                         f"{r['cpu_us_per_request'][name]:.0f} µs {added}")
        lines += ["", f"Non-2xx answers through Loom: {r['non_2xx']}.", ""]
    if "native" in results:
        n = results["native"]
        lines += ["## Native endpoints vs `mlflow models serve`", "",
                  "| model | rows/request | Loom requests/s | Loom p50 | Loom p99 | MLflow requests/s | MLflow p50 | MLflow p99 | Loom/MLflow |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for family in ["logistic", "gbdt"]:
            for rows in [1, 100]:
                a, b = n.get(f"loom {family} {rows}"), n.get(f"mlflow {family} {rows}")
                if not a or not b:
                    continue
                lines.append(f"| {family} | {rows} | {a['rps']:.0f} | {a['p50_us'] / 1000:.2f} ms | {a['p99_us'] / 1000:.2f} ms | {b['rps']:.0f} | "
                             f"{b['p50_us'] / 1000:.2f} ms | {b['p99_us'] / 1000:.2f} ms | {a['rps'] / max(b['rps'], 1e-9):.1f}× |")
        lines.append("")
    if "canary" in results:
        c = results["canary"]
        p, f = c["passing"], c["faulty"]
        lines += ["## A canary under load (1,000 requests/s)", "",
                  f"- Passing canary (5 → 50 → 100 %, bake 3 s): **{p['state']}**; statuses {p['wrk']['statuses']}, answered by {p['wrk']['deployments']}, "
                  f"socket errors {p['wrk']['errors_connect'] + p['wrk']['errors_read'] + p['wrk']['errors_write'] + p['wrk']['errors_timeout']}.",
                  f"- Faulty canary (every answer 500), gate interval 1 s: **{f['state']}** {f['seconds_to_rollback']:.2f} s after its first step "
                  f"({f['candidate_requests']} requests to it judged).", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("which", nargs="*", default=["routing", "native", "canary"])
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="routing: runs of each target, alternating (medians are reported)")
    ap.add_argument("--loom", default=os.environ.get("LOOM_BIN") or os.path.join(ROOT, ".build-rel2", "release", "loom"))
    ap.add_argument("--baseline", default=os.environ.get("BASELINE_BIN") or os.path.join(ROOT, ".build-rel2", "release", "loom-bench-baseline"))
    args = ap.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    results = {}
    if "routing" in args.which:
        results["routing"] = routing(args.loom, args.baseline, args.duration, args.rounds)
    if "native" in args.which:
        results["native"] = native(args.loom, args.duration)
    if "canary" in args.which:
        results["canary"] = canary(args.loom)
    with open(os.path.join(RESULTS, "endpoints.json"), "w") as f:
        json.dump(results, f, indent=2)
    text = report(results)
    with open(os.path.join(RESULTS, "endpoints.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
