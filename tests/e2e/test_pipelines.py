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
        # Lineage over the API: the registered model back to the file the pipeline ingested.
        import requests

        graph = requests.get(server.url + "/api/v1/lineage", params={"node": "model:churn@challenger", "direction": "upstream"}).json()
        ids = {n["id"] for n in graph["nodes"]}
        assert graph["root"] == "model:churn/1"
        assert {"dataset:customers@1", "dataset:customers-train@1", f"step:{runs[0]['id']}/gbdt"} <= ids
        assert any(i.startswith("file:") and i.endswith("data/customers.csv") for i in ids)
        assert requests.get(server.url + "/api/v1/lineage", params={"node": "model:nope/1"}).status_code == 404
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


def wait_for(predicate, timeout: float = 60, interval: float = 0.1):
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


RESUMABLE = """
pipeline: served
steps:
  log:
    kind: command
    command: python -c "import mlflow; mlflow.start_run(); mlflow.log_metric('from_step', 3.5)"
  slow:
    kind: command
    command: 'if [ "$LOOM_ATTEMPT" = 1 ]; then echo started > {marker}; exec sleep 60; fi; echo "done on attempt $LOOM_ATTEMPT"'
    needs: [log]
"""


def test_server_runs_pipelines_and_resumes_them_after_a_restart(work):
    import requests

    data = os.path.join(work, "served")
    marker = os.path.join(work, "served-marker")
    server = loomproc.LoomServer(data=data, env={"PATH": env()["PATH"]}).start()
    try:
        api = server.url + "/api/v1"
        # Bad specs and parameters are refused and record nothing.
        r = requests.post(api + "/pipeline-runs", json={"spec": "pipeline: bad\nsteps:\n  a: {kind: nope}\n"})
        assert r.status_code == 400 and "line 3" in r.json()["message"]
        r = requests.post(api + "/pipeline-runs", json={"spec": RESUMABLE.format(marker=marker), "parameters": {"x": 1}})
        assert r.status_code == 400 and "unknown parameter 'x'" in r.json()["message"]
        assert requests.get(api + "/pipelines/served/runs").json()["items"] == []

        r = requests.post(api + "/pipeline-runs", json={"spec": RESUMABLE.format(marker=marker)})
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        wait_for(lambda: os.path.exists(marker))
        assert server.stop() == 0  # graceful: the running step is given back
    finally:
        server.stop()

    left = loom_json("pipeline", "show", run_id, data=data)
    assert left["run"]["state"] == "running"
    assert {s["step"]: s["state"] for s in left["steps"]} == {"log": "succeeded", "slow": "pending"}

    server = loomproc.LoomServer(data=data, env={"PATH": env()["PATH"]}).start()
    try:
        api = server.url + "/api/v1"
        detail = wait_for(lambda: (lambda d: d if d["run"]["state"] not in ("queued", "running") else None)(requests.get(f"{api}/pipeline-runs/{run_id}").json()))
        assert detail["run"]["state"] == "succeeded", detail
        steps = {s["step"]: s for s in detail["steps"]}
        assert steps["slow"]["attempts"] == 2 and steps["log"]["attempts"] == 1
        r = requests.get(f"{api}/pipeline-runs/{run_id}/steps/slow/logs")
        assert r.text == "done on attempt 2\n" and r.headers["Loom-Step-State"] == "succeeded"
        r = requests.get(f"{api}/pipeline-runs/{run_id}/steps/slow/logs", params={"offset": 5})
        assert r.text == "on attempt 2\n" and r.headers["Loom-Log-Next-Offset"] == "18"
        # The command's mlflow client logged into its step's run through the server.
        run = MlflowClient(server.url).get_run(steps["log"]["tracking_run_id"])
        assert run.data.metrics["from_step"] == 3.5

        # Cancelling stops a running command.
        os.remove(marker)
        r = requests.post(api + "/pipeline-runs", json={"spec": RESUMABLE.format(marker=marker).replace("pipeline: served", "pipeline: cancelled"), "no_cache": True})
        cancel_id = r.json()["id"]
        wait_for(lambda: os.path.exists(marker))
        r = requests.post(f"{api}/pipeline-runs/{cancel_id}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        detail = wait_for(lambda: (lambda d: d if all(s["state"] != "running" for s in d["steps"]) else None)(requests.get(f"{api}/pipeline-runs/{cancel_id}").json()))
        assert {s["step"]: s["state"] for s in detail["steps"]}["slow"] == "cancelled"
        assert requests.post(f"{api}/pipeline-runs/{cancel_id}/cancel").status_code == 400
    finally:
        server.stop()


def test_applied_pipelines_fire_on_new_data_and_webhooks(work):
    import requests

    data = os.path.join(work, "applied")
    folder = os.path.join(work, "applied-project")
    os.makedirs(folder)
    spec = os.path.join(folder, "pipeline.yaml")
    with open(spec, "w") as f:
        f.write(
            "pipeline: refresh\n"
            "parameters:\n"
            "  data: {type: dataset, default: events@1}\n"
            "  reason: {type: string, default: manual}\n"
            "steps:\n"
            "  profile: {kind: validate, inputs: {data: '${{ parameters.data }}'}, with: {expectations: [{rule: row_count, min: 1}]}}\n"
            "schedules:\n"
            "  - {cron: '0 3 * * *'}\n"
            "triggers:\n"
            "  - {dataset: events, parameter: data, parameters: {reason: new-data}}\n"
            "  - {webhook: refresh}\n"
        )
    p = subprocess.run([loomproc.loom_bin(), "apply", "-f", spec, "--data", data], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("pipeline refresh version 1 (new) applied: 1 schedule, 2 triggers")
    server = loomproc.LoomServer(data=data, env={"LOOM_SCHEDULER_INTERVAL": "0.2"}).start()
    try:
        api = server.url + "/api/v1"
        assert [a["name"] for a in requests.get(api + "/pipelines").json()["items"]] == ["refresh"]
        # A new version of `events` starts a run with it.
        r = requests.post(api + "/datasets/events/versions", params={"file_name": "events.csv"}, data=b"id,kind\n1,a\n2,b\n")
        assert r.status_code == 201, r.text
        runs = wait_for(lambda: requests.get(api + "/pipelines/refresh/runs").json()["items"])
        assert len(runs) == 1 and runs[0]["trigger"] == "dataset"
        assert runs[0]["parameters"] == {"data": "events@1", "reason": "new-data"}
        done = wait_for(lambda: (lambda d: d if d["run"]["state"] == "succeeded" else None)(requests.get(f"{api}/pipeline-runs/{runs[0]['id']}").json()))
        assert done["steps"][0]["state"] == "succeeded"
        # A webhook call starts one with the caller's parameters.
        r = requests.post(api + "/pipelines/refresh/hooks/refresh", json={"parameters": {"reason": "deploy"}})
        assert r.status_code == 201 and r.json()["trigger"] == "webhook" and r.json()["parameters"]["reason"] == "deploy"
        assert requests.post(api + "/pipelines/refresh/hooks/nope").status_code == 404
        assert requests.post(api + "/pipelines/nope/hooks/refresh").status_code == 404
        import time

        time.sleep(1)  # several scheduler ticks: nothing fires twice
        assert len(requests.get(api + "/pipelines/refresh/runs").json()["items"]) == 2
    finally:
        server.stop()


def test_server_on_an_s3_artifact_store(work):
    """`--artifacts s3://...` against a real S3-compatible server (moto's, started by scripts/test)."""
    import boto3
    import requests

    endpoint = os.environ.get("LOOM_TEST_S3_ENDPOINT")
    if not endpoint:
        if os.environ.get("LOOM_REQUIRE_S3") == "1":
            pytest.fail("LOOM_TEST_S3_ENDPOINT is not set but S3 tests are required")
        pytest.skip("no S3 server (set LOOM_TEST_S3_ENDPOINT)")
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="loom-e2e")
    data = os.path.join(work, "s3")
    env_vars = dict(creds, LOOM_S3_ENDPOINT=endpoint, PATH=env()["PATH"])
    server = loomproc.LoomServer(data=data, env=env_vars, args=["--artifacts", "s3://loom-e2e/team"]).start()
    try:
        # The mlflow client's artifacts go through the server into the bucket.
        import mlflow

        client = MlflowClient(server.url)
        exp = client.create_experiment("s3-artifacts")
        run = client.create_run(exp)
        local = os.path.join(work, "note.txt")
        with open(local, "w") as f:
            f.write("stored in s3\n")
        mlflow.set_tracking_uri(server.url)
        client.log_artifact(run.info.run_id, local, "notes")
        back = client.download_artifacts(run.info.run_id, "notes/note.txt", work + "/back")
        assert open(back).read() == "stored in s3\n"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="loom-e2e", Prefix="team/")["Contents"]]
        assert any(k.endswith("notes/note.txt") for k in keys), keys

        # A dataset uploaded to the server, then read by a pipeline step from the bucket.
        api = server.url + "/api/v1"
        r = requests.post(api + "/datasets/events/versions", params={"file_name": "events.csv"}, data=b"id,kind\n1,a\n2,b\n")
        assert r.status_code == 201, r.text
        spec = (
            "pipeline: s3check\n"
            "steps:\n"
            "  check: {kind: validate, inputs: {data: events@1}, with: {expectations: [{rule: row_count, min: 2}]}}\n"
            "  copy: {kind: command, command: 'cat ${{ inputs.data }}/events.csv > ${{ outputs.out }}; echo copied', inputs: {data: '${{ steps.check.outputs.data }}'}, outputs: {out: file}}\n"
        )
        r = requests.post(api + "/pipeline-runs", json={"spec": spec})
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        detail = wait_for(lambda: (lambda d: d if d["run"]["state"] not in ("queued", "running") else None)(requests.get(f"{api}/pipeline-runs/{run_id}").json()))
        assert detail["run"]["state"] == "succeeded", detail
        steps = {s["step"]: s for s in detail["steps"]}
        out = steps["copy"]["outputs"]["out"]
        assert out["value"] == f"runs:/{steps['copy']['tracking_run_id']}/out"
        assert requests.get(f"{api}/pipeline-runs/{run_id}/steps/copy/logs").text == "copied\n"
        copied = client.download_artifacts(steps["copy"]["tracking_run_id"], "out", work + "/copied")
        assert open(copied).read() == "id,kind\n1,a\n2,b\n"
    finally:
        server.stop()


def test_workers_run_command_steps_and_a_killed_workers_step_is_taken_over(work):
    import requests
    import signal
    import time

    data = os.path.join(work, "workers")
    marker = os.path.join(work, "workers-marker")
    server = loomproc.LoomServer(data=data, env={"LOOM_WORKER_LEASE": "2", "PATH": env()["PATH"]}).start()
    procs = []

    def worker(name: str) -> subprocess.Popen:
        log = open(os.path.join(work, f"worker-{name}.log"), "ab")
        p = subprocess.Popen([loomproc.loom_bin(), "worker", "--server", server.url, "--name", name, "--poll", "0.1"],
                             stdout=log, stderr=subprocess.STDOUT, env=env(), start_new_session=True)
        procs.append(p)
        return p

    try:
        api = server.url + "/api/v1"
        spec = (
            "pipeline: distributed\n"
            "steps:\n"
            "  slow:\n"
            "    kind: command\n"
            f"    command: 'echo $LOOM_ATTEMPT >> {marker}; if [ \"$LOOM_ATTEMPT\" = 1 ]; then exec sleep 37; fi; echo made-remotely > ${{{{ outputs.out }}}}'\n"
            "    outputs: {out: file}\n"
            "  use:\n"
            "    kind: command\n"
            "    command: 'tr a-z A-Z < ${{ inputs.f }} > ${{ outputs.shout }}; python -c \"import mlflow; mlflow.start_run(); mlflow.log_metric(''remote'', 1)\"; echo used'\n"
            "    inputs: {f: '${{ steps.slow.outputs.out }}'}\n"
            "    outputs: {shout: string}\n"
        )
        r = requests.post(api + "/pipeline-runs", json={"spec": spec, "workers": True})
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        first = worker("first")
        wait_for(lambda: os.path.exists(marker))
        os.killpg(first.pid, signal.SIGKILL)  # the worker dies mid-step (and its command with it)
        first.wait()
        worker("second")
        detail = wait_for(lambda: (lambda d: d if d["run"]["state"] not in ("queued", "running") else None)(requests.get(f"{api}/pipeline-runs/{run_id}").json()), timeout=90)
        assert detail["run"]["state"] == "succeeded", detail
        steps = {s["step"]: s for s in detail["steps"]}
        assert steps["slow"]["attempts"] == 2
        assert open(marker).read().split() == ["1", "2"]
        assert steps["use"]["outputs"]["shout"]["value"] == "MADE-REMOTELY"
        assert requests.get(f"{api}/pipeline-runs/{run_id}/steps/use/logs").text.endswith("used\n")
        client = MlflowClient(server.url)
        assert client.get_run(steps["use"]["tracking_run_id"]).data.metrics["remote"] == 1
        out = client.download_artifacts(steps["slow"]["tracking_run_id"], "out", work + "/remote-out")
        assert open(out).read() == "made-remotely\n"
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=10)
        server.stop()


def test_steps_keep_the_operators_time_zone(work):
    """The server pins Foundation's own time zone to GMT (it keeps every time in UTC, and the
    machine's zone would load ICU's tables), but only while Foundation reads it: the commands it
    starts still see the operator's TZ."""
    import requests

    data = os.path.join(work, "tz")
    # A POSIX zone (no tzdata needed, so this holds on a minimal machine): three hours behind
    # UTC, named LMT; under GMT, `date +%Z` would print GMT.
    server = loomproc.LoomServer(data=data, env={"PATH": env()["PATH"], "TZ": "LMT+3"}).start()
    try:
        api = server.url + "/api/v1"
        spec = "pipeline: tz\nsteps:\n  show: {kind: command, command: 'echo \"tz=$TZ\"; date +%Z'}\n"
        r = requests.post(api + "/pipeline-runs", json={"spec": spec})
        assert r.status_code == 201, r.text
        run_id = r.json()["id"]
        detail = wait_for(lambda: (lambda d: d if d["run"]["state"] not in ("queued", "running") else None)(requests.get(f"{api}/pipeline-runs/{run_id}").json()))
        assert detail["run"]["state"] == "succeeded", detail
        logs = requests.get(f"{api}/pipeline-runs/{run_id}/steps/show/logs").text.split("\n")
        assert logs[0] == "tz=LMT+3"
        assert logs[1] == "LMT"  # the step's local time is the operator's zone, not GMT
        # The server's own times stay UTC: the HTTP Date header says GMT.
        assert requests.get(server.url + "/health").headers["Date"].endswith(" GMT")
    finally:
        server.stop()
