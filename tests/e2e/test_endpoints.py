"""Online endpoints end to end (docs/deployment.md): a real `loom server`, the `loom endpoint`
CLI, and real model-server processes over loopback.

- a native deployment of a model trained with `loom train`, scored in every MLflow input format;
- a process deployment of two replicas that Loom starts, health-checks and, when one is killed,
  restarts while the other serves;
- an external deployment (a server Loom does not run) sharing live traffic;
- bad input, bad traffic maps and deleting a live deployment refused; a graceful stop of the
  server stops the processes it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import requests

import loomproc

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_SERVER = os.path.join(HERE, "support", "model_server.py")


def cli(server, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([loomproc.loom_bin(), *args, "--server", server.url], capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, f"loom {' '.join(args)}: {p.stdout}\n{p.stderr}"
    return p


def cli_json(server, *args: str):
    return json.loads(cli(server, *args, "--json").stdout)


def wait_for(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def setup():
    data = loomproc.temp_data_dir("loom-endpoints-")
    rng = np.random.default_rng(7)
    n = 600
    df = pd.DataFrame({
        "tenure": rng.integers(0, 60, n),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "monthly": rng.normal(40, 12, n).round(2),
    })
    df["churned"] = ((df.monthly > 45) | ((df.tenure < 6) & (df.plan == "basic"))).astype(int)
    csv = os.path.join(data, "churn.csv")
    df.to_csv(csv, index=False)
    store = os.path.join(data, "store")
    for family in ["logistic", "gbdt"]:
        p = subprocess.run([loomproc.loom_bin(), "train", "--data", csv, "--target", "churned", "--model", family,
                            "--register", "churn", "--data-dir", store, "--json"], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
    server = loomproc.LoomServer(data=store, env={"LOOM_ENDPOINT_REFRESH": "0.5"}).start()
    yield server, data, df
    server.stop()
    loomproc.remove(data)


SCORED: list[tuple[str, int]] = []  # (correlation id, status) of every answer from endpoint churn


def score(server, body, endpoint="churn", deployment=None, **kw):
    headers = {"Content-Type": "application/json"}
    if deployment:
        headers["loom-deployment"] = deployment
    r = requests.post(f"{server.url}/endpoints/{endpoint}/invocations", data=json.dumps(body), headers=headers, timeout=30, **kw)
    if endpoint == "churn" and "loom-correlation-id" in r.headers:
        SCORED.append((r.headers["loom-correlation-id"], r.status_code))
    return r


def collected(store: str) -> list[dict]:
    """Every record under the artifact store's collected/default/churn (labels apart)."""
    out = []
    root = os.path.join(store, "artifacts", "collected", "default", "churn")
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name)) as f:
                for line in f:
                    record = json.loads(line)
                    record["_labels"] = "/labels/" in os.path.join(folder, name) + "/"
                    out.append(record)
    return out


def test_native_process_external_crash_and_shutdown(setup):
    server, data, df = setup
    shown = cli_json(server, "endpoint", "create", "churn", "--description", "churn scores", "--timeout-ms", "5000", "--sampling-rate", "1")
    assert shown["scoring_uri"] == "/endpoints/churn/invocations" and shown["traffic"] == {}

    # Native: the registered Loom model, served in process.
    d = cli_json(server, "endpoint", "deploy", "churn", "--name", "blue", "--model", "models:/churn/1")
    assert d["model_version"] == "churn/1" and d["traffic"] == 0 and d["ready"] is True
    cli(server, "endpoint", "traffic", "churn", "blue=100")
    rows = df.head(5)
    split = {"dataframe_split": {"columns": ["tenure", "plan", "monthly"], "data": rows[["tenure", "plan", "monthly"]].values.tolist()}}
    records = {"dataframe_records": rows[["tenure", "plan", "monthly"]].to_dict(orient="records")}
    columnar = {"inputs": {c: rows[c].tolist() for c in ["tenure", "plan", "monthly"]}}
    answers = []
    for body in [split, records, {"instances": records["dataframe_records"]}, columnar]:
        r = score(server, body)
        assert r.status_code == 200, r.text
        assert r.headers["loom-deployment"] == "blue" and r.headers.get("loom-correlation-id")
        answers.append(r.json()["predictions"])
    assert all(a == answers[0] for a in answers) and set(answers[0]) <= {0, 1} and len(answers[0]) == 5
    # The same answers as `loom predict` on the same rows.
    rows_csv = os.path.join(data, "rows.csv")
    rows.to_csv(rows_csv, index=False)
    predict = subprocess.run([loomproc.loom_bin(), "predict", "--model", "models:/churn/1", "--data", rows_csv, "--output", os.path.join(data, "p.csv"),
                              "--data-dir", server.data], capture_output=True, text=True, timeout=60)
    assert predict.returncode == 0, predict.stderr
    assert pd.read_csv(os.path.join(data, "p.csv"))["prediction"].astype(int).tolist() == answers[0]
    # Lineage reaches from the deployment back to the data its model was trained on.
    lineage = subprocess.run([loomproc.loom_bin(), "lineage", "deployment:churn/blue", "--up", "--json", "--data", server.data],
                             capture_output=True, text=True, timeout=60)
    assert lineage.returncode == 0, lineage.stderr
    ids = [n["id"] for n in json.loads(lineage.stdout)["nodes"]]
    assert "model:churn/1" in ids and any(i.startswith(("file:", "dataset:")) for i in ids), ids
    # The CLI scores too.
    body_file = os.path.join(data, "body.json")
    with open(body_file, "w") as f:
        json.dump(split, f)
    assert json.loads(cli(server, "endpoint", "invoke", "churn", "--data", body_file).stdout)["predictions"] == answers[0]

    # Bad input: a 400 naming the field; unknown endpoints and deployments: 404.
    r = score(server, {"dataframe_records": [{"tenure": 3, "plan": "basic"}]})
    assert r.status_code == 400 and "monthly" in r.json()["message"] and r.headers.get("loom-correlation-id")
    r = score(server, {"dataframe_records": [{"tenure": "x", "plan": "basic", "monthly": 3}]})
    assert r.status_code == 400 and "Column tenure" in r.json()["message"]
    assert score(server, split, endpoint="nope").status_code == 404
    assert score(server, split, deployment="ghost").status_code == 404
    assert requests.post(f"{server.url}/endpoints/churn/invocations", data=b"{not json", timeout=10).status_code == 400

    # Process: two replicas of a model server Loom runs.
    pids = os.path.join(data, "pids")
    os.makedirs(pids, exist_ok=True)
    cli(server, "endpoint", "deploy", "churn", "--name", "proc", "--runtime", "process", "--command", f"{sys.executable} {MODEL_SERVER}",
        "--replicas", "2", "--env", f"PID_DIR={pids}", "--env", "PREDICTION=7")

    def replicas():
        d = requests.get(f"{server.url}/api/v1/endpoints/churn/deployments/proc", timeout=10).json()
        return d.get("replicas") or []

    wait_for(lambda: len(replicas()) == 2 and all(r["ready"] for r in replicas()), what="both replicas ready")
    seen = set()
    for _ in range(20):
        r = score(server, split, deployment="proc")
        assert r.status_code == 200 and r.json()["predictions"] == ["7"] * 5, r.text
        seen.add(r.json()["replica"])
    assert seen == {"0", "1"}, seen

    # A replica crashes: the other serves meanwhile; Loom restarts it.
    victim = int(open(os.path.join(pids, "replica-0.pid")).read())
    os.kill(victim, signal.SIGKILL)
    for _ in range(30):
        r = score(server, split, deployment="proc")
        assert r.status_code == 200, r.text
    wait_for(lambda: all(r["ready"] for r in replicas()) and replicas()[0]["restarts"] >= 1, what="replica 0 restarted")
    restarted = int(open(os.path.join(pids, "replica-0.pid")).read())
    assert restarted != victim and alive(restarted)
    shown = cli(server, "endpoint", "show", "churn").stdout
    assert "proc" in shown and "2/2" in shown and "restart" in shown

    # External: a model server Loom does not run, sharing live traffic.
    port = loomproc.free_port()
    upstream = subprocess.Popen([sys.executable, MODEL_SERVER, str(port)], env={**os.environ, "PREDICTION": "ext", "LOOM_REPLICA": "ext"})
    try:
        wait_for(lambda: _ping(port), what="the external server")
        cli(server, "endpoint", "deploy", "churn", "--name", "ext", "--runtime", "external", "--url", f"http://127.0.0.1:{port}/invocations")
        cli(server, "endpoint", "traffic", "churn", "blue=50", "ext=50")
        by = {}
        for _ in range(60):
            r = score(server, split)
            assert r.status_code == 200
            by[r.headers["loom-deployment"]] = by.get(r.headers["loom-deployment"], 0) + 1
        assert set(by) == {"blue", "ext"} and min(by.values()) >= 10, by

        # Traffic maps that break the rules are refused and change nothing.
        for args in [["blue=60", "ext=50"], ["blue=50", "ghost=50"], ["--mirror", "proc=60"], ["--mirror", "blue=10"]]:
            p = cli(server, "endpoint", "traffic", "churn", *args, check=False)
            assert p.returncode != 0 and p.stderr.strip(), args
        assert requests.get(f"{server.url}/api/v1/endpoints/churn", timeout=10).json()["traffic"] == {"blue": 50, "ext": 50}
        p = cli(server, "endpoint", "undeploy", "churn", "--name", "ext", check=False)
        assert p.returncode == 1 and "set it to 0" in p.stderr
        cli(server, "endpoint", "traffic", "churn", "blue=100", "ext=0")
        cli(server, "endpoint", "undeploy", "churn", "--name", "ext")
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)

    # Ground truth, later, by correlation id.
    labels_file = os.path.join(data, "labels.jsonl")
    with open(labels_file, "w") as f:
        for cid, _ in SCORED[:5]:
            f.write(json.dumps({"correlation_id": cid, "label": 1}) + "\n")
    assert "posted 5 labels" in cli(server, "endpoint", "labels", "churn", "--data", labels_file).stdout

    # A graceful stop stops the model servers Loom started.
    running = [int(open(os.path.join(pids, f)).read()) for f in os.listdir(pids)]
    assert all(alive(p) for p in running)
    assert server.stop() == 0
    wait_for(lambda: not any(alive(p) for p in running), timeout=15, what="the replicas to stop")
    # Every answered request was collected (written before the server stopped), with its
    # deployment, status and bodies; the labels sit next to them.
    records = collected(server.data)
    live = {r["correlation_id"]: r for r in records if not r["_labels"] and not r["mirrored"]}
    missing = [cid for cid, status in SCORED if cid not in live and status != 404]
    assert not missing and len(SCORED) > 100, (len(SCORED), missing[:5])
    assert all(live[cid]["status"] == status for cid, status in SCORED if status != 404)
    some = live[SCORED[0][0]]
    assert some["deployment"] == "blue" and some["request"]["dataframe_split"]["columns"] == ["tenure", "plan", "monthly"]
    assert [r["correlation_id"] for r in records if r["_labels"]] == [cid for cid, _ in SCORED[:5]]
    # The collected traffic against the training data, with `loom drift` (monitoring reads the
    # same files): the request's columns are compared, the prediction is reported as new.
    out = os.path.join(data, "traffic-drift.json")
    p = subprocess.run([loomproc.loom_bin(), "drift", "--reference", os.path.join(data, "churn.csv"), "--current",
                        os.path.join(server.data, "artifacts", "collected", "default", "churn"), "--current-format", "collected",
                        "--json", out], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    drift = json.load(open(out))
    assert {c["name"] for c in drift["columns"]} >= {"tenure", "plan", "monthly"}, drift["columns"]
    scored_rows = sum(r["status"] == 200 for r in live.values())
    assert drift["current_rows"] >= scored_rows > 0
    assert any(f["kind"] == "new_column" and f["column"] == "prediction" for f in drift["findings"])

    server.start()
    # The endpoint survives the restart and serves again.
    wait_for(lambda: score(server, split).status_code == 200, timeout=30, what="the endpoint after a restart")


def _ping(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200
    except requests.RequestException:
        return False


class Load:
    """Scores the endpoint from a thread until stopped; keeps (deployment, status) of each answer."""

    def __init__(self, server, body):
        import threading
        self.server, self.body, self.answers = server, body, []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        session = requests.Session()
        while not self.stop_flag.is_set():
            try:
                r = session.post(f"{self.server.url}/endpoints/churn/invocations", data=json.dumps(self.body),
                                 headers={"Content-Type": "application/json"}, timeout=10)
                self.answers.append((r.headers.get("loom-deployment"), r.status_code))
            except requests.RequestException as e:
                self.answers.append((None, repr(e)))
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=15)


def test_rollouts_roll_back_promote_and_survive_a_restart(setup):
    server, data, df = setup
    rows = df.head(3)
    split = {"dataframe_split": {"columns": ["tenure", "plan", "monthly"], "data": rows[["tenure", "plan", "monthly"]].values.tolist()}}
    assert requests.get(f"{server.url}/api/v1/endpoints/churn", timeout=10).json()["traffic"] == {"blue": 100}

    # A canary whose model server fails every request: rolled back at its first gate.
    cli(server, "endpoint", "deploy", "churn", "--name", "faulty", "--runtime", "process", "--command", f"{sys.executable} {MODEL_SERVER}",
        "--env", "FAIL_RATE=1")
    with Load(server, split) as load:
        p = subprocess.run([loomproc.loom_bin(), "endpoint", "rollout", "churn", "--name", "faulty", "--steps", "20,100", "--bake", "60s",
                            "--gate-interval", "1s", "--min-requests", "5", "--gate", "error_rate:max_increase=0.01", "--wait", "--server", server.url],
                           capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "rollback" in p.stdout and "error_rate" in p.stdout, p.stdout
    assert requests.get(f"{server.url}/api/v1/endpoints/churn", timeout=10).json()["traffic"] == {"blue": 100}
    assert all((d, s) in {("blue", 200), ("faulty", 500)} for d, s in load.answers), set(load.answers)
    assert ("faulty", 500) in load.answers
    latest = requests.get(f"{server.url}/api/v1/endpoints/churn/rollouts?max_results=1", timeout=10).json()["items"][0]
    decisions = requests.get(f"{server.url}/api/v1/endpoints/churn/rollouts/{latest['id']}", timeout=10).json()["decisions"]
    kinds = [d["kind"] for d in decisions]
    assert kinds[0] == "start" and "step" in kinds and kinds[-1] == "rollback", kinds
    step_time = next(d["time"] for d in decisions if d["kind"] == "step")
    # Judged within one gate interval (1 s) of enough requests (5 at 20%) plus the controller's 1 s look.
    assert decisions[-1]["time"] - step_time < 10_000, decisions
    gate = decisions[-1]["detail"]["gates"][0]
    assert gate["metric"] == "error_rate" and gate["outcome"] == "failed" and gate["candidate"] == 1.0
    cli(server, "endpoint", "undeploy", "churn", "--name", "faulty")

    # A passing canary from a spec, through `loom apply -f`: every request answered, by one of the two.
    spec = os.path.join(data, "rollout.yaml")
    with open(spec, "w") as f:
        f.write("kind: rollout\nendpoint: churn\nto: model:churn/2\nstrategy: canary\nsteps: [50, 100]\nbake: 2s\ngate_interval: 1s\n"
                "min_requests: 5\ngates:\n  - {metric: error_rate, max_increase: 0.01}\n  - {metric: latency_p99, max_increase: 1000}\n")
    with Load(server, split) as load:
        p = subprocess.run([loomproc.loom_bin(), "apply", "-f", spec, "--wait", "--server", server.url, "--data", server.data],
                           capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "promote" in p.stdout and "churn-v2 has all live traffic" in p.stdout, p.stdout
    assert requests.get(f"{server.url}/api/v1/endpoints/churn", timeout=10).json()["traffic"] == {"blue": 0, "churn-v2": 100}
    assert load.answers and all(s == 200 and d in {"blue", "churn-v2"} for d, s in load.answers), set(load.answers)
    assert {d for d, _ in load.answers} == {"blue", "churn-v2"}
    shown = cli(server, "endpoint", "rollouts", "churn").stdout
    assert "succeeded" in shown and "gates passed at 50% live" in shown

    # Blue-green back to blue, validated first on a registered dataset (accuracy against its truth).
    reg = subprocess.run([loomproc.loom_bin(), "datasets", "register", os.path.join(data, "churn.csv"), "--name", "churn-test", "--data", server.data],
                         capture_output=True, text=True, timeout=60)
    assert reg.returncode == 0, reg.stderr
    bg = os.path.join(data, "blue-green.yaml")
    with open(bg, "w") as f:
        f.write("kind: rollout\nendpoint: churn\ndeployment: blue\nstrategy: blue-green\nmirror: 20\nbake: 2s\ngate_interval: 1s\nmin_requests: 5\n"
                "gates:\n  - {metric: error_rate, max_increase: 0.01}\n"
                "validation:\n  dataset: churn-test\n  target: churned\n  allowed: [0, 1]\n  thresholds: {accuracy: {min: 0.7}}\n")
    with Load(server, split) as load:
        p = subprocess.run([loomproc.loom_bin(), "apply", "-f", bg, "--wait", "--server", server.url, "--data", server.data],
                           capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "validation passed" in p.stdout and "mirror" in p.stdout and "switch" in p.stdout, p.stdout
    assert requests.get(f"{server.url}/api/v1/endpoints/churn", timeout=10).json()["traffic"] == {"blue": 100, "churn-v2": 0}
    assert load.answers and all(s == 200 for _, s in load.answers), set(load.answers)

    # A rollout survives a restart: the new process resumes it (measuring again) and a person aborts it.
    r = cli_json(server, "endpoint", "rollout", "churn", "--name", "churn-v2", "--steps", "10,100", "--bake", "1h", "--gate-interval", "1s")
    assert r["state"] == "running"
    assert requests.get(f"{server.url}/api/v1/endpoints/churn", timeout=10).json()["traffic"] == {"blue": 90, "churn-v2": 10}
    assert server.stop() == 0
    server.start()

    def resumed():
        d = requests.get(f"{server.url}/api/v1/endpoints/churn/rollouts/{r['id']}", timeout=10).json()["decisions"]
        return [x for x in d if x["kind"] == "resume"]

    wait_for(resumed, timeout=30, what="the rollout to resume after the restart")
    assert "abort" in cli(server, "endpoint", "abort", "churn").stdout
    assert requests.get(f"{server.url}/api/v1/endpoints/churn", timeout=10).json()["traffic"] == {"blue": 100, "churn-v2": 0}


def test_mlflow_models_serve_as_a_process_runtime(setup):
    """Any MLflow model, logged with the official client to Loom and served by `mlflow models
    serve` in a process Loom runs: the registry URI resolves against Loom itself."""
    server, data, df = setup
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(server.url)
    x = df[["tenure", "monthly"]]
    model = LogisticRegression(max_iter=500).fit(x, df["churned"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=x.head(2), registered_model_name="churn-sk")
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    cli(server, "endpoint", "create", "sk")
    d = cli_json(server, "endpoint", "deploy", "sk", "--name", "sklearn", "--runtime", "process", "--model", "models:/churn-sk/1",
                 "--command", f"{mlflow_bin} models serve -m models:/churn-sk/1 -p $PORT -h 127.0.0.1 --env-manager local",
                 "--env", f"MLFLOW_TRACKING_URI={server.url}", "--env", f"PATH={os.path.dirname(mlflow_bin)}:{os.environ['PATH']}",
                 "--startup-seconds", "180")
    assert d["model_version"] == "churn-sk/1"
    cli(server, "endpoint", "traffic", "sk", "sklearn=100")
    wait_for(lambda: requests.get(f"{server.url}/api/v1/endpoints/sk/deployments/sklearn", timeout=10).json()["ready"], timeout=180,
             what="mlflow models serve to be ready")
    rows = x.head(20)
    r = requests.post(f"{server.url}/endpoints/sk/invocations", json={"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}, timeout=60)
    assert r.status_code == 200 and r.headers["loom-deployment"] == "sklearn", r.text
    assert r.json()["predictions"] == model.predict(rows).tolist()
    # Its own error answers come back as they are (a column it lacks: mlflow's 400).
    r = requests.post(f"{server.url}/endpoints/sk/invocations", json={"dataframe_records": [{"nope": 1}]}, timeout=60)
    assert r.status_code == 400 and "error_code" in r.json()
    cli(server, "endpoint", "delete", "sk")


def _responses(sock, count: int) -> list[tuple[int, dict, bytes]]:
    """Reads `count` HTTP/1.1 responses from a socket, in order: (status, headers, body)."""
    return [(status, headers, body) for status, _, headers, body in loomproc.http_responses(sock, count)]


def test_invocation_fast_path_keeps_order_and_connections(setup):
    """Requests to an endpoint whose deployments forward over plain HTTP are answered on the
    connection's event loop (InvocationFastPath); the rest of the server still answers on the
    same connection, in order, pipelined or not."""
    import socket
    server, _, _ = setup
    port = loomproc.free_port()
    env = {**os.environ, "PREDICTION": "fast", "LOOM_REPLICA": "fast"}
    upstream = subprocess.Popen([sys.executable, MODEL_SERVER, str(port)], env=env)
    try:
        wait_for(lambda: _ping(port), what="the external server")
        cli(server, "endpoint", "create", "fast")
        cli(server, "endpoint", "deploy", "fast", "--name", "up", "--runtime", "external", "--url", f"http://127.0.0.1:{port}/invocations")
        cli(server, "endpoint", "traffic", "fast", "up=100")
        wait_for(lambda: score(server, {"instances": [[1]]}, endpoint="fast").status_code == 200, what="the endpoint")
        host, server_port = server.url.replace("http://", "").split(":")

        def post(cid: str, rows: int) -> bytes:
            body = json.dumps({"instances": [[i] for i in range(rows)]}).encode()
            return (f"POST /endpoints/fast/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"loom-correlation-id: {cid}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

        get = b"GET /api/v1/endpoints/fast HTTP/1.1\r\nHost: x\r\n\r\n"
        with socket.create_connection((host, int(server_port)), timeout=10) as s:
            # Pipelined: answered in the order sent, whoever answers each.
            s.sendall(post("p-1", 1) + get + post("p-2", 2) + post("p-3", 3) + get)
            answers = _responses(s, 5)
            assert [a[0] for a in answers] == [200] * 5
            assert [a[1].get("loom-correlation-id") for a in answers] == ["p-1", None, "p-2", "p-3", None]
            assert [len(json.loads(a[2])["predictions"]) for a in (answers[0], answers[2], answers[3])] == [1, 2, 3]
            assert json.loads(answers[1][2])["name"] == "fast" and answers[0][1]["loom-deployment"] == "up"
            # Keep-alive: the same connection serves again, one at a time.
            for i in range(20):
                s.sendall(post(f"k-{i}", 1))
                status, headers, _ = _responses(s, 1)[0]
                assert status == 200 and headers["loom-correlation-id"] == f"k-{i}"
            # Connection: close is honoured after the answer.
            s.sendall(post("last", 1).replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
            status, headers, _ = _responses(s, 1)[0]
            assert status == 200 and headers.get("connection") == "close"
            assert s.recv(10) == b""

        # Heads and bodies the relay does not read itself go to the HTTP decoder, and are
        # answered as they would be without it (each on a connection of its own).
        def exchange(*pieces: bytes, count: int = 1, pause: float = 0):
            with socket.create_connection((host, int(server_port)), timeout=10) as s:
                for piece in pieces:
                    s.sendall(piece)
                    if pause:
                        time.sleep(pause)
                return _responses(s, count)

        one = json.dumps({"instances": [[1], [2]]}).encode()
        head = b"POST /endpoints/fast/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        chunked = head + b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(one):x}\r\n".encode() + one + b"\r\n0\r\n\r\n"
        cases = {
            "chunked body": (chunked,),
            "upper-case names": (head.replace(b"Content-Type", b"CONTENT-TYPE") + f"CONTENT-LENGTH: {len(one)}\r\n\r\n".encode() + one,),
            "head in pieces": tuple(bytes([b]) for b in head + f"Content-Length: {len(one)}\r\n\r\n".encode()) + (one,),
            "body in pieces": (head + f"Content-Length: {len(one)}\r\n\r\n".encode(), one[:5], one[5:]),
            "HTTP/1.0": (head.replace(b"HTTP/1.1", b"HTTP/1.0") + f"Content-Length: {len(one)}\r\n\r\n".encode() + one,),
        }
        for what, pieces in cases.items():
            status, headers, body = exchange(*pieces, pause=0.001 if what.endswith("pieces") else 0)[0]
            assert status == 200 and len(json.loads(body)["predictions"]) == 2, (what, status, body)
        # Framing the HTTP decoder refuses is refused, whoever would have answered.
        bad = {
            "two lengths": head + f"Content-Length: {len(one)}\r\nContent-Length: 3\r\n\r\n".encode() + one,
            "a length that is not a number": head + b"Content-Length: 1x\r\n\r\n" + one,
        }
        for what, request in bad.items():
            status, _, _ = exchange(request)[0]
            assert status == 400, (what, status)
        # After a request the relay does not take, a connection still answers everything in order.
        answers = exchange(post("m-1", 1) + chunked + post("m-2", 3), count=3)
        assert [a[0] for a in answers] == [200] * 3
        assert [a[1].get("loom-correlation-id") for a in (answers[0], answers[2])] == ["m-1", "m-2"]
        assert [len(json.loads(a[2])["predictions"]) for a in answers] == [1, 2, 3]

        # The upstream goes away: 502 with the correlation id; back again: served again.
        upstream.terminate()
        upstream.wait(timeout=10)
        r = requests.post(f"{server.url}/endpoints/fast/invocations", data="{}", headers={"loom-correlation-id": "down-1"}, timeout=10)
        assert r.status_code == 502 and r.headers["loom-correlation-id"] == "down-1", r.text
        upstream = subprocess.Popen([sys.executable, MODEL_SERVER, str(port)], env=env)
        wait_for(lambda: _ping(port), what="the external server again")
        assert requests.post(f"{server.url}/endpoints/fast/invocations", json={"instances": [[1]]}, timeout=10).status_code == 200
        metrics = requests.get(f"{server.url}/metrics", timeout=10).text
        relayed = [line for line in metrics.splitlines() if line.startswith('loom_endpoint_fast_path_total{via="relay"}')]
        decoded = [line for line in metrics.splitlines() if line.startswith('loom_endpoint_fast_path_total{via="decoder"}')]
        assert relayed and float(relayed[0].split()[-1]) >= 6, relayed
        assert decoded and float(decoded[0].split()[-1]) >= 20, decoded
        cli(server, "endpoint", "traffic", "fast", "up=0")
        cli(server, "endpoint", "delete", "fast")
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
