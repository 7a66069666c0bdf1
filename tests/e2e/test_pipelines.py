"""Pipelines end to end (docs/pipelines.md): the example project run from its script, a
scikit-learn command step logging through the official mlflow client into its own step run,
the cache on a re-run, and a failing command step that keeps its logs and registers nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

import loomproc

EXAMPLE = os.path.join(loomproc.ROOT, "examples", "churn")


@pytest.fixture(scope="module")
def work():
    path = loomproc.temp_data_dir("loom-pipelines-")
    yield path
    loomproc.remove(path)


def env() -> dict:
    e = dict(os.environ)
    # The sklearn step runs `python`: this venv's, which has mlflow and scikit-learn.
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e["LOOM_BIN"] = loomproc.loom_bin()
    return e


def loom_json(*args: str, data: str) -> object:
    p = subprocess.run([loomproc.loom_bin(), *args, "--data", data, "--json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def run_example(data: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(EXAMPLE, "run.sh"), "--data", data, *args], capture_output=True, text=True, env=env(), timeout=600)


def test_example_pipeline(work):
    data = os.path.join(work, "example")
    p = run_example(data)
    assert p.returncode == 0, p.stdout + p.stderr
    runs = loom_json("pipeline", "runs", "churn", data=data)
    assert len(runs) == 1 and runs[0]["state"] == "succeeded"
    report = loom_json("pipeline", "show", runs[0]["id"], data=data)
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == ["ingest", "validate", "split", "gbdt", "sklearn", "evaluate", "gate", "register"]
    assert all(s["state"] == "succeeded" for s in steps.values()), steps
    assert json.loads(steps["register"]["outputs"])["model"]["value"] == "models:/churn/1"

    server = loomproc.LoomServer(data=data).start()
    try:
        client = MlflowClient(server.url)
        # The scikit-learn script logged through mlflow into the step's own run, nested under the pipeline's.
        sk = client.get_run(steps["sklearn"]["tracking_run_id"])
        assert 0.6 < sk.data.metrics["validation_roc_auc"] <= 1.0
        assert sk.data.params["model"] == "random_forest"
        assert sk.data.tags["mlflow.parentRunId"] == report["run"]["tracking_run_id"]
        assert sk.data.tags["loom.pipeline.step"] == "sklearn"
        assert "MLmodel" in [a.path.split("/")[-1] for a in client.list_artifacts(sk.info.run_id, "model")]
        challenger = client.get_model_version_by_alias("churn", "challenger")
        assert challenger.version == "1" and challenger.run_id == steps["gbdt"]["tracking_run_id"]
        logs = [a.path for a in client.list_artifacts(sk.info.run_id, "logs")]
        assert sorted(logs) == ["logs/stderr.txt", "logs/stdout.txt"]
    finally:
        server.stop()

    # Nothing changed: every step's outputs are reused but the gate's and the registration's,
    # which look at the registry as it is now (and give the same version).
    p = run_example(data, "--quiet")
    assert p.returncode == 0, p.stdout + p.stderr
    again = loom_json("pipeline", "runs", "churn", data=data)[0]
    steps = {s["step"]: s for s in loom_json("pipeline", "show", again["id"], data=data)["steps"]}
    assert {n for n, s in steps.items() if s["state"] == "cached"} == {"ingest", "validate", "split", "gbdt", "sklearn", "evaluate"}
    assert json.loads(steps["register"]["outputs"])["model"]["value"] == "models:/churn/1"


def test_failing_command_step_keeps_logs_and_registers_nothing(work):
    data = os.path.join(work, "failing")
    folder = os.path.join(work, "failing-project")
    os.makedirs(folder)
    with open(os.path.join(folder, "boom.py"), "w") as f:
        f.write("import sys\nprint('starting')\nraise SystemExit('no data for the model')\n")
    spec = os.path.join(folder, "pipeline.yaml")
    with open(spec, "w") as f:
        f.write(
            "pipeline: failing\n"
            "steps:\n"
            "  train: {kind: command, command: 'python boom.py --out ${{ outputs.model }}', outputs: {model: model}}\n"
            "  register: {kind: register, inputs: {model: '${{ steps.train.outputs.model }}'}, with: {name: boom}}\n"
        )
    p = subprocess.run([loomproc.loom_bin(), "pipeline", "run", "-f", spec, "--data", data], capture_output=True, text=True, env=env(), timeout=120)
    assert p.returncode == 1
    assert "step train failed: the command exited with status 1" in p.stdout and "no data for the model" in p.stdout
    run = loom_json("pipeline", "runs", "failing", data=data)[0]
    assert run["state"] == "failed"
    out = subprocess.run([loomproc.loom_bin(), "pipeline", "logs", run["id"], "train", "--data", data], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "starting\n"
    err = subprocess.run([loomproc.loom_bin(), "pipeline", "logs", run["id"], "train", "--stderr", "--data", data], capture_output=True, text=True)
    assert err.stdout == "no data for the model\n"
    steps = {s["step"]: s for s in loom_json("pipeline", "show", run["id"], data=data)["steps"]}
    assert steps["register"]["state"] == "skipped"
    assert loom_json("models", "list", data=data) == []
