"""Monitors end to end (docs/monitoring.md): a real `loom server`, a model trained on a registered
dataset and served natively, real traffic collected by the endpoint, labels posted later, and
the `loom apply` / `loom monitor` CLI.

- the reference comes from lineage (the served version's training dataset), and in-distribution
  traffic passes every signal;
- shifted traffic fails data drift, prediction drift and data quality; the alerts open once,
  stay one per signal across passes, and show in `loom monitor alerts`;
- results are kept over time; bad specs are refused with the field named.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest
import requests

import loomproc


def cli(server, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([loomproc.loom_bin(), *args, "--server", server.url], capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, f"loom {' '.join(args)}: {p.stdout}\n{p.stderr}"
    return p


def cli_json(server, *args: str):
    return json.loads(cli(server, *args, "--json").stdout)


def churn(n: int, seed: int, shift: float = 0.0, plans=("basic", "plus", "pro")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "tenure": rng.integers(0, 60, n),
        "plan": rng.choice(list(plans), n),
        "monthly": (rng.normal(40, 12, n) + shift).round(2),
    })
    df["churned"] = ((df.monthly > 45) | ((df.tenure < 6) & (df.plan == "basic"))).astype(int)
    return df


class Hooks:
    """A webhook receiver on loopback that refuses its first call (503), then takes them (204)."""

    def __init__(self):
        self.calls: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(503 if len(outer.calls) == 1 else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


SECRET = "e2e-hook-secret"


@pytest.fixture(scope="module")
def setup():
    data = loomproc.temp_data_dir("loom-monitors-")
    store = os.path.join(data, "store")
    csv = os.path.join(data, "churn.csv")
    churn(2000, 1).to_csv(csv, index=False)
    p = loomproc.run_cli("datasets", "register", csv, "--name", "churn-train", data=store)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([loomproc.loom_bin(), "train", "--data", "churn-train@1", "--target", "churned", "--model", "logistic",
                        "--register", "churn", "--data-dir", store], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    server = loomproc.LoomServer(data=store, env={
        "LOOM_ENDPOINT_REFRESH": "0.5", "LOOM_MONITOR_INTERVAL": "0.5", "LOOM_WEBHOOK_RETRY": "0.5", "LOOM_HOOK_SECRET": SECRET}).start()
    cli(server, "endpoint", "create", "churn", "--sampling-rate", "1")
    cli(server, "endpoint", "deploy", "churn", "--name", "blue", "--model", "models:/churn/1")
    cli(server, "endpoint", "traffic", "churn", "blue=100")
    yield server, data, store
    server.stop()
    loomproc.remove(data)


def send(server, df: pd.DataFrame, prefix: str, batch: int = 20) -> None:
    """Scores `df` in requests of `batch` rows, then posts every request's labels."""
    labels = []
    features = ["tenure", "plan", "monthly"]
    for i in range(0, len(df), batch):
        part = df.iloc[i:i + batch]
        cid = f"{prefix}-{i // batch}"
        r = requests.post(f"{server.url}/endpoints/churn/invocations", json={"dataframe_records": part[features].to_dict(orient="records")},
                          headers={"loom-correlation-id": cid}, timeout=30)
        assert r.status_code == 200, r.text
        labels.append({"correlation_id": cid, "label": part["churned"].tolist()})
    r = requests.post(f"{server.url}/api/v1/endpoints/churn/labels", json={"labels": labels}, timeout=30)
    assert r.status_code == 201, r.text


def collected_rows(store: str) -> int:
    rows = 0
    root = os.path.join(store, "artifacts", "collected", "default", "churn")
    for folder, _, files in os.walk(root):
        if "/labels" in folder:
            continue
        for name in files:
            with open(os.path.join(folder, name)) as f:
                for line in f:
                    rows += len(json.loads(line)["request"]["dataframe_records"])
    return rows


def wait_rows(store: str, n: int) -> None:
    deadline = time.time() + 30
    while collected_rows(store) < n and time.time() < deadline:
        time.sleep(0.2)
    assert collected_rows(store) >= n


SPEC = """
kind: monitor
name: churn-watch
endpoint: churn
schedule: {every: 1h}
window: {size: 1h}
signals:
  - {type: data_drift}
  - {type: prediction_drift}
  - {type: data_quality}
  - {type: model_performance, metrics: {accuracy: {min: 0.6}}}
alerts:
  webhooks:
    - {url: "@HOOK_URL@", secret_env: LOOM_HOOK_SECRET}
"""


def test_monitor_detects_drift_and_keeps_one_alert_per_signal(setup):
    server, data, store = setup
    hooks = Hooks()
    spec = os.path.join(data, "monitor.yaml")
    with open(spec, "w") as f:
        f.write(SPEC.replace("@HOOK_URL@", hooks.url))
    p = cli(server, "apply", "-f", spec)
    assert "monitor churn-watch version 1 applied to endpoint churn" in p.stdout, p.stdout
    listed = cli_json(server, "monitor", "list")
    assert [m["name"] for m in listed] == ["churn-watch"] and listed[0]["schedule"] == "every 3600s"
    assert listed[0]["next_run_time"] > time.time() * 1000 + 3000 * 1000

    # In-distribution traffic: every signal passes against the training data (from lineage).
    send(server, churn(400, 2), "ok")
    wait_rows(store, 400)
    first = cli_json(server, "monitor", "run", "churn-watch")
    assert first["reference"] == "dataset churn-train@1 (training data of model:churn/1)", first["reference"]
    assert first["rows"] == 400 and first["reference_rows"] == 2000
    verdicts = {r["signal"]: r for r in first["results"]}
    assert all(r["passed"] for r in verdicts.values()), {k: r["summary"] for k, r in verdicts.items()}
    drift = verdicts["data_drift"]["detail"]
    # Azure ML's defaults: normalized Wasserstein for numbers, Jensen-Shannon for categories; the
    # target is not a feature.
    assert {c["name"]: c["method"] for c in drift["columns"]} == {"tenure": "wasserstein", "plan": "jensenshannon", "monthly": "wasserstein"}
    assert verdicts["model_performance"]["value"] > 0.6 and first["alerts_opened"] == []

    # Shifted traffic (higher bills, a plan the model never saw) dominates the window.
    send(server, churn(1200, 3, shift=30, plans=("basic", "plus", "pro", "enterprise")), "shift")
    wait_rows(store, 1600)
    p = cli(server, "monitor", "run", "churn-watch", "--fail-on-alert", check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "alert opened: data_drift" in p.stdout and "alert opened: data_quality" in p.stdout, p.stdout
    second = cli_json(server, "monitor", "results", "churn-watch")
    latest = {r["signal"]: r for r in second if r["time"] == max(x["time"] for x in second)}
    assert latest["data_drift"]["passed"] is False and "monthly" in latest["data_drift"]["summary"]
    assert latest["prediction_drift"]["passed"] is False, latest["prediction_drift"]["summary"]
    assert latest["data_quality"]["passed"] is False and "plan" in latest["data_quality"]["summary"]
    opened = cli_json(server, "monitor", "alerts", "churn-watch", "--state", "open")
    assert sorted(a["signal"] for a in opened) == ["data_drift", "data_quality", "prediction_drift"] + (
        ["model_performance"] if not latest["model_performance"]["passed"] else [])

    # Another pass finds the same: no new alert, the open ones counted.
    third = cli_json(server, "monitor", "run", "churn-watch")
    assert third["alerts_opened"] == [] and len(third["alerts_continued"]) == len(opened)
    again = cli_json(server, "monitor", "alerts", "--state", "open")
    assert sorted(a["id"] for a in again) == sorted(a["id"] for a in opened) and all(a["passes"] == 2 for a in again)
    series = cli_json(server, "monitor", "results", "churn-watch", "--signal", "data_drift")
    assert [r["passed"] for r in series] == [False, False, True]
    shown = cli_json(server, "monitor", "show", "churn-watch")
    assert shown["open_alerts"] == len(opened) and "kind: monitor" in shown["spec"]

    # Each opened alert called the webhook once it was delivered: the first call was refused
    # and retried; every body is signed with the shared secret.
    deadline = time.time() + 30
    while len(hooks.calls) < len(opened) + 1 and time.time() < deadline:
        time.sleep(0.1)
    hooks.stop()
    assert len(hooks.calls) == len(opened) + 1, [h["loom-event"] for h, _ in hooks.calls]
    events = [json.loads(body) for _, body in hooks.calls]
    assert sorted({e["signal"] for e in events}) == sorted(a["signal"] for a in opened)
    assert all(e["event"] == "alert.opened" and e["monitor"] == "churn-watch" and e["endpoint"] == "churn" for e in events)
    for headers, body in hooks.calls:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["loom-signature"], expected)
        assert headers["loom-event"] == "alert.opened" and headers["loom-delivery"]


def test_bad_monitor_specs_are_refused_with_the_field(setup):
    server, data, _ = setup
    bad = os.path.join(data, "bad.yaml")
    for text, field in [
        ("kind: monitor\nname: m\nendpoint: churn\nsignals: [{type: data_drift, methods: {monthly: magic}}]\n", "signals[0].methods.monthly"),
        ("kind: monitor\nname: m\nendpoint: churn\nwindow: {size: soon}\n", "window.size"),
        ("kind: monitor\nname: m\nendpoint: nowhere\n", "No endpoint named nowhere"),
    ]:
        with open(bad, "w") as f:
            f.write(text)
        p = cli(server, "apply", "-f", bad, check=False)
        assert p.returncode != 0 and field in p.stderr, p.stderr
    assert [m["name"] for m in cli_json(server, "monitor", "list")] in (["churn-watch"], [])
    p = cli(server, "monitor", "run", "nope", check=False)
    assert p.returncode == 2, p.stderr


RETRAIN = """
pipeline: retrain
parameters:
  data: {type: dataset, default: churn-train@latest}
  reason: {type: string, default: manual}
steps:
  train:
    kind: train
    inputs: {data: "${{ parameters.data }}"}
    with: {target: churned, model: logistic}
  register:
    kind: register
    inputs: {model: "${{ steps.train.outputs.model }}"}
    with: {name: churn, description: "retrained: ${{ parameters.reason }}"}
"""

LOOP = """
kind: monitor
name: churn-loop
endpoint: churn
window: {size: 1h}
signals:
  - {type: data_drift}
actions:
  - on: [data_drift]
    run_pipeline: {name: retrain, parameters: {reason: "${signal} on ${endpoint}"}}
    then_rollout: {strategy: canary, steps: [50, 100], bake: 1s, gate_interval: 1s, min_requests: 5}
"""


def test_drift_starts_retraining_then_a_canary_rollout(setup):
    """The closed loop: a failing signal runs the named pipeline with its parameters; the version
    it registers is rolled out on the endpoint as a canary, whose gates promote it."""
    server, data, store = setup
    folder = os.path.join(data, "retrain")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "pipeline.yaml"), "w") as f:
        f.write(RETRAIN)
    # A pipeline is applied to the store the server uses.
    p = loomproc.run_cli("apply", "-f", os.path.join(folder, "pipeline.yaml"), data=store)
    assert p.returncode == 0, p.stderr
    spec = os.path.join(data, "loop.yaml")
    with open(spec, "w") as f:
        f.write(LOOP)
    cli(server, "apply", "-f", spec)
    # The window holds the shifted traffic of the first test: data drift fails at once.
    p = cli(server, "monitor", "run", "churn-loop", check=False)
    assert "alert opened: data_drift" in p.stdout, p.stdout + p.stderr
    alert = cli_json(server, "monitor", "alerts", "churn-loop")[0]
    assert alert["signal"] == "data_drift" and alert["action_run_id"], alert

    # The pipeline runs in the server, registers churn version 2, and the canary starts.
    deadline = time.time() + 120
    while time.time() < deadline:
        alert = cli_json(server, "monitor", "alerts", "churn-loop")[0]
        if alert.get("action_rollout_id") or alert.get("action_message"):
            break
        time.sleep(0.5)
    assert alert.get("action_rollout_id"), alert
    assert "registered churn/2" in alert["action_message"], alert["action_message"]
    run = requests.get(f"{server.url}/api/v1/pipeline-runs/{alert['action_run_id']}", timeout=10).json()["run"]
    assert run["state"] == "succeeded" and run["trigger"] == "monitor", run
    assert run["parameters"]["reason"] == "data_drift on churn", run["parameters"]
    version = requests.get(f"{server.url}/api/v1/models/churn/versions/2", timeout=10).json()
    assert version["description"] == "retrained: data_drift on churn", version

    # Traffic through the canary (a steady stream beside the checks); its gates pass and it is promoted.
    features = ["tenure", "plan", "monthly"]
    body = {"dataframe_records": churn(40, 9)[features].to_dict(orient="records")}
    stop = threading.Event()

    def traffic():
        with requests.Session() as s:
            while not stop.is_set():
                s.post(f"{server.url}/endpoints/churn/invocations", json=body, timeout=30)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            rollout = requests.get(f"{server.url}/api/v1/endpoints/churn/rollouts/{alert['action_rollout_id']}", timeout=10).json()
            if rollout["state"] not in ("running", "paused"):
                break
            time.sleep(0.3)
    finally:
        stop.set()
        sender.join()
    assert rollout["state"] == "succeeded", (rollout.get("message"), [(d["kind"], d["summary"]) for d in rollout.get("decisions") or []])
    endpoint = cli_json(server, "endpoint", "show", "churn")
    assert endpoint["traffic"][rollout["candidate"]] == 100 and sum(endpoint["traffic"].values()) == 100
    deployments = {d["name"]: d for d in endpoint["deployments"]}
    assert deployments[rollout["candidate"]]["model_version"] == "churn/2"
