"""Compatibility suite: drive an MLflow-compatible tracking server with the official client.

Usage:
    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python -m pytest -q tests/compat/test_mlflow_client.py

The server under test must behave like
``mlflow server --backend-store-uri sqlite:///... --serve-artifacts --artifacts-destination ...``
(proxied artifacts, ``mlflow-artifacts:/`` artifact URIs).  Every test creates its own
uniquely named entities, so the module can run repeatedly against the same server.

See docs/mlflow-compat.md for the HTTP surface these tests exercise.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import uuid

import numpy as np
import pandas as pd
import pytest
import requests

import mlflow
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException

TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI", "")

pytestmark = pytest.mark.skipif(
    not TRACKING_URI.startswith(("http://", "https://")),
    reason="MLFLOW_TRACKING_URI must point at an http(s) tracking server",
)

# Keep failures fast: the client retries 5xx/429 with exponential backoff by default.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")

PIP_REQS = [f"mlflow=={mlflow.__version__}", "pandas", "cloudpickle"]
MAX_FLOAT = 1.7976931348623157e308  # what the reference (SQL) store returns for +inf


# --------------------------------------------------------------------------------------
# helpers / fixtures
# --------------------------------------------------------------------------------------


def uid() -> str:
    return uuid.uuid4().hex[:12]


def base_url() -> str:
    return TRACKING_URI.rstrip("/")


def api(path: str) -> str:
    return f"{base_url()}{path}"


def assert_error(excinfo, code: str):
    err = excinfo.value
    assert isinstance(err, MlflowException), f"unexpected exception type {type(err)}"
    assert err.error_code == code, f"expected {code}, got {err.error_code}: {err}"


def rest_registered_model(name: str) -> dict:
    r = requests.get(api("/api/2.0/mlflow/registered-models/get"), params={"name": name})
    assert r.status_code == 200, r.text
    rm = r.json()["registered_model"]
    rm["tags"] = {t["key"]: t["value"] for t in rm.get("tags", [])}
    rm["aliases"] = {a["alias"]: a["version"] for a in rm.get("aliases", [])}
    return rm


def rest_model_version(name: str, version: str) -> dict:
    r = requests.get(
        api("/api/2.0/mlflow/model-versions/get"), params={"name": name, "version": version}
    )
    assert r.status_code == 200, r.text
    mv = r.json()["model_version"]
    mv["tags"] = {t["key"]: t["value"] for t in mv.get("tags", [])}
    return mv


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input["x"] * 2


class Adder(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input["x"] + 100


@pytest.fixture(scope="module", autouse=True)
def _tracking_uri():
    mlflow.set_tracking_uri(TRACKING_URI)
    mlflow.set_registry_uri(TRACKING_URI)
    yield
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def client() -> MlflowClient:
    return MlflowClient(tracking_uri=TRACKING_URI, registry_uri=TRACKING_URI)


@pytest.fixture
def exp_id(client) -> str:
    return client.create_experiment(f"compat-exp-{uid()}")


# --------------------------------------------------------------------------------------
# server basics / wire format (raw HTTP)
# --------------------------------------------------------------------------------------


def test_health_version_and_server_info():
    r = requests.get(api("/health"), timeout=30)
    assert r.status_code == 200
    assert r.text.strip() == "OK"

    r = requests.get(api("/version"), timeout=30)
    assert r.status_code == 200
    from packaging.version import Version

    assert Version(r.text.strip()) >= Version("3.0")

    r = requests.get(api("/api/3.0/mlflow/server-info"), timeout=30)
    assert r.status_code == 200
    info = r.json()
    assert isinstance(info, dict)
    # The client only uses these keys; proxying without multipart is the compatible default.
    assert info.get("workspaces_enabled") is False
    assert info.get("multipart_uploads_enabled") in (False, None)
    assert info.get("multipart_downloads_enabled") in (False, None)


def test_default_experiment():
    r = requests.get(api("/api/2.0/mlflow/experiments/get"), params={"experiment_id": "0"})
    assert r.status_code == 200
    exp = r.json()["experiment"]
    assert exp["experiment_id"] == "0"
    assert exp["name"] == "Default"
    assert exp["lifecycle_stage"] == "active"
    assert isinstance(exp["creation_time"], int)

    r = requests.get(
        api("/api/2.0/mlflow/experiments/get-by-name"), params={"experiment_name": "Default"}
    )
    assert r.status_code == 200
    assert r.json()["experiment"]["experiment_id"] == "0"


def test_wire_format_int64_numbers_and_ids_strings():
    name = f"wire-{uid()}"
    r = requests.post(api("/api/2.0/mlflow/experiments/create"), json={"name": name})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    eid = r.json()["experiment_id"]
    assert isinstance(eid, str) and eid.isdigit()

    exp = requests.get(
        api("/api/2.0/mlflow/experiments/get"), params={"experiment_id": eid}
    ).json()["experiment"]
    assert exp["artifact_location"] == f"mlflow-artifacts:/{eid}"
    assert isinstance(exp["creation_time"], int)
    assert isinstance(exp["last_update_time"], int)

    r = requests.post(
        api("/api/2.0/mlflow/runs/create"),
        json={"experiment_id": eid, "start_time": 1234, "run_name": "wire-run"},
    )
    assert r.status_code == 200
    info = r.json()["run"]["info"]
    rid = info["run_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert info["run_uuid"] == rid
    assert info["start_time"] == 1234 and isinstance(info["start_time"], int)
    assert info["status"] == "RUNNING"
    assert info["lifecycle_stage"] == "active"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{eid}/{rid}/artifacts"
    assert info.get("end_time") in (None, 0)  # reference omits it while running

    # int64 accepted as JSON strings too (proto3 JSON mapping); NaN as the string "NaN"
    r = requests.post(
        api("/api/2.0/mlflow/runs/log-metric"),
        json={"run_id": rid, "key": "m", "value": "1.5", "timestamp": "12", "step": "3"},
    )
    assert r.status_code == 200 and r.json() == {}
    r = requests.post(
        api("/api/2.0/mlflow/runs/log-metric"),
        json={"run_id": rid, "key": "n", "value": "NaN", "timestamp": 5},
    )
    assert r.status_code == 200

    run = requests.get(api("/api/2.0/mlflow/runs/get"), params={"run_id": rid}).json()["run"]
    metrics = {m["key"]: m for m in run["data"]["metrics"]}
    assert {k: metrics["m"][k] for k in ("key", "value", "timestamp", "step")} == {
        "key": "m",
        "value": 1.5,
        "timestamp": 12,
        "step": 3,
    }
    assert isinstance(metrics["m"]["timestamp"], int) and isinstance(metrics["m"]["step"], int)
    assert metrics["n"]["value"] == "NaN"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.runName"] == "wire-run"

    # empty results omit the repeated field entirely
    r = requests.get(
        api("/api/2.0/mlflow/metrics/get-history"), params={"run_id": rid, "metric_key": "zzz"}
    )
    assert r.status_code == 200 and r.json() == {}


def test_wire_format_errors():
    # not found -> 404 + RESOURCE_DOES_NOT_EXIST
    r = requests.get(api("/api/2.0/mlflow/runs/get"), params={"run_id": "f" * 32})
    assert r.status_code == 404
    body = r.json()
    assert body["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert isinstance(body["message"], str) and body["message"]

    r = requests.get(api("/api/2.0/mlflow/experiments/get"), params={"experiment_id": "987654321"})
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    # already exists -> 400 (not 409!) + RESOURCE_ALREADY_EXISTS
    name = f"dup-{uid()}"
    assert requests.post(api("/api/2.0/mlflow/experiments/create"), json={"name": name}).ok
    r = requests.post(api("/api/2.0/mlflow/experiments/create"), json={"name": name})
    assert r.status_code == 400
    assert r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"

    # missing required field -> 400 INVALID_PARAMETER_VALUE
    r = requests.post(api("/api/2.0/mlflow/experiments/create"), json={})
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "name" in r.json()["message"]

    # wrong JSON type -> 400 INVALID_PARAMETER_VALUE
    r = requests.post(api("/api/2.0/mlflow/experiments/create"), json={"name": 123})
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    # non-numeric experiment id -> 400
    r = requests.get(api("/api/2.0/mlflow/experiments/get"), params={"experiment_id": "abc"})
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    # bad filter -> 400
    r = requests.post(
        api("/api/2.0/mlflow/runs/search"),
        json={"experiment_ids": ["0"], "filter": "metrics.m >>> 1"},
    )
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    # bad page token -> 400
    r = requests.post(
        api("/api/2.0/mlflow/runs/search"),
        json={"experiment_ids": ["0"], "page_token": "garbage"},
    )
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    # unknown endpoint -> 404
    r = requests.get(api("/api/2.0/mlflow/no-such-endpoint"))
    assert r.status_code == 404


def test_get_requests_accept_query_params_and_ajax_prefix(exp_id):
    r = requests.get(
        api("/api/2.0/mlflow/experiments/search"),
        params={"filter": f"attribute.experiment_id = '{exp_id}'", "max_results": 5},
    )
    assert r.status_code == 200
    assert [e["experiment_id"] for e in r.json()["experiments"]] == [exp_id]

    r = requests.get(api("/ajax-api/2.0/mlflow/experiments/get"), params={"experiment_id": exp_id})
    assert r.status_code == 200
    assert r.json()["experiment"]["experiment_id"] == exp_id


def test_metric_history_bulk_interval(client, exp_id):
    run = client.create_run(exp_id)
    rid = run.info.run_id
    client.log_batch(
        rid, metrics=[Metric("loss", float(i), 1000 + i, i) for i in range(10)]
    )
    r = requests.get(
        api("/api/2.0/mlflow/metrics/get-history-bulk-interval"),
        params={"run_ids": [rid], "metric_key": "loss", "max_results": 100},
    )
    assert r.status_code == 200
    metrics = r.json()["metrics"]
    assert [m["step"] for m in metrics] == list(range(10))
    assert all(m["run_id"] == rid and m["key"] == "loss" for m in metrics)
    assert isinstance(metrics[0]["timestamp"], int)

    r = requests.get(
        api("/api/2.0/mlflow/metrics/get-history-bulk-interval"),
        params={"run_ids": [rid], "metric_key": "loss", "start_step": 2, "end_step": 4},
    )
    assert r.status_code == 200
    assert [m["step"] for m in r.json()["metrics"]] == [2, 3, 4]

    r = requests.get(
        api("/api/2.0/mlflow/metrics/get-history-bulk-interval"),
        params={"run_ids": [rid], "metric_key": "loss", "start_step": 2},
    )
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    r = requests.get(
        api("/api/2.0/mlflow/metrics/get-history-bulk-interval"), params={"metric_key": "loss"}
    )
    assert r.status_code == 400


# --------------------------------------------------------------------------------------
# experiments
# --------------------------------------------------------------------------------------


def test_experiment_crud_and_tags(client):
    name = f"crud-{uid()}"
    eid = client.create_experiment(name, tags={"team": "a", "stage": "dev"})
    exp = client.get_experiment(eid)
    assert exp.experiment_id == eid
    assert exp.name == name
    assert exp.lifecycle_stage == "active"
    assert exp.artifact_location == f"mlflow-artifacts:/{eid}"
    assert exp.tags == {"team": "a", "stage": "dev"}
    assert exp.creation_time > 0 and exp.last_update_time >= exp.creation_time

    assert client.get_experiment_by_name(name).experiment_id == eid
    assert client.get_experiment_by_name(f"missing-{uid()}") is None

    client.set_experiment_tag(eid, "k", "v")
    client.set_experiment_tag(eid, "team", "b")
    assert client.get_experiment(eid).tags == {"team": "b", "stage": "dev", "k": "v"}
    client.delete_experiment_tag(eid, "k")
    assert "k" not in client.get_experiment(eid).tags

    new_name = f"renamed-{uid()}"
    client.rename_experiment(eid, new_name)
    assert client.get_experiment(eid).name == new_name
    assert client.get_experiment_by_name(name) is None

    client.delete_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "deleted"
    assert client.get_experiment_by_name(new_name).lifecycle_stage == "deleted"
    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"


def test_experiment_errors(client):
    name = f"dup-{uid()}"
    eid = client.create_experiment(name)
    with pytest.raises(MlflowException) as e:
        client.create_experiment(name)
    assert_error(e, "RESOURCE_ALREADY_EXISTS")

    with pytest.raises(MlflowException) as e:
        client.get_experiment("987654321")
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")

    with pytest.raises(MlflowException) as e:
        client.delete_experiment("987654321")
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")

    with pytest.raises(MlflowException) as e:
        client.set_experiment_tag(eid, "k" * 251, "v")
    assert_error(e, "INVALID_PARAMETER_VALUE")

    # a deleted experiment still owns its name and cannot receive new runs
    client.delete_experiment(eid)
    with pytest.raises(MlflowException) as e:
        client.create_experiment(name)
    assert_error(e, "RESOURCE_ALREADY_EXISTS")
    with pytest.raises(MlflowException) as e:
        client.create_run(eid)
    assert_error(e, "INVALID_PARAMETER_VALUE")


def test_search_experiments_filter_order_paging(client):
    prefix = f"srch-{uid()}"
    ids = {}
    for i, suffix in enumerate(["b", "a", "c"]):
        time.sleep(0.01)  # distinct creation_time (ms) so the default order is deterministic
        ids[suffix] = client.create_experiment(
            f"{prefix}-{suffix}", tags={"idx": str(i), "grp": "even" if i % 2 == 0 else "odd"}
        )

    def names(exps):
        return [e.name.rsplit("-", 1)[1] for e in exps]

    # default order: creation_time DESC (then experiment_id)
    assert names(client.search_experiments(filter_string=f"name LIKE '{prefix}-%'")) == [
        "c",
        "a",
        "b",
    ]
    res = client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%'", order_by=["name ASC"]
    )
    assert names(res) == ["a", "b", "c"]
    res = client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"]
    )
    assert names(res) == ["c", "b", "a"]
    # ILIKE is case-insensitive, LIKE is case-sensitive
    assert len(client.search_experiments(filter_string=f"name ILIKE '{prefix.upper()}-%'")) == 3
    assert len(client.search_experiments(filter_string=f"name LIKE '{prefix.upper()}-%'")) == 0
    # tags, equality, IN on experiment_id, numeric attributes
    res = client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%' AND tags.grp = 'even'", order_by=["name ASC"]
    )
    assert names(res) == ["b", "c"]
    res = client.search_experiments(
        filter_string=f"attribute.experiment_id IN ('{ids['a']}', '{ids['c']}')",
        order_by=["name ASC"],
    )
    assert names(res) == ["a", "c"]
    res = client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%' AND creation_time > 0 AND tags.`idx` != '1'"
    )
    assert sorted(names(res)) == ["b", "c"]
    assert names(client.search_experiments(filter_string=f"name = '{prefix}-a'")) == ["a"]
    res = client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%' AND tags.missing IS NULL"
    )
    assert len(res) == 3

    # paging
    seen = []
    token = None
    pages = 0
    while True:
        page = client.search_experiments(
            filter_string=f"name LIKE '{prefix}-%'",
            order_by=["name ASC"],
            max_results=2,
            page_token=token,
        )
        pages += 1
        seen += names(page)
        token = page.token
        if not token:
            break
    assert seen == ["a", "b", "c"]
    assert pages == 2

    # view types
    client.delete_experiment(ids["b"])
    assert names(client.search_experiments(filter_string=f"name LIKE '{prefix}-%'")) == [
        "c",
        "a",
    ]
    res = client.search_experiments(
        view_type=ViewType.DELETED_ONLY, filter_string=f"name LIKE '{prefix}-%'"
    )
    assert names(res) == ["b"]
    res = client.search_experiments(view_type=ViewType.ALL, filter_string=f"name LIKE '{prefix}-%'")
    assert len(res) == 3

    with pytest.raises(MlflowException) as e:
        client.search_experiments(filter_string="foo = 'bar'")
    assert_error(e, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as e:
        client.search_experiments(max_results=50001)
    assert_error(e, "INVALID_PARAMETER_VALUE")


# --------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------


def test_run_lifecycle(client, exp_id):
    with mlflow.start_run(experiment_id=exp_id, run_name="life") as active:
        rid = active.info.run_id
        run = client.get_run(rid)
        assert run.info.status == "RUNNING"
        assert run.info.run_name == "life"
        assert run.info.experiment_id == exp_id
        assert run.info.lifecycle_stage == "active"
        assert run.info.end_time is None
        assert run.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{rid}/artifacts"
        assert run.data.tags["mlflow.runName"] == "life"
        assert "mlflow.user" in run.data.tags
    run = client.get_run(rid)
    assert run.info.status == "FINISHED"
    assert run.info.end_time >= run.info.start_time

    client.update_run(rid, name="life-renamed")
    run = client.get_run(rid)
    assert run.info.run_name == "life-renamed"
    assert run.data.tags["mlflow.runName"] == "life-renamed"

    client.set_terminated(rid, status="FAILED", end_time=run.info.start_time + 5)
    run = client.get_run(rid)
    assert run.info.status == "FAILED"
    assert run.info.end_time == run.info.start_time + 5

    client.update_run(rid, status="KILLED")
    assert client.get_run(rid).info.status == "KILLED"

    client.delete_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as e:
        client.log_metric(rid, "m", 1.0)
    assert_error(e, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as e:
        client.set_tag(rid, "k", "v")
    assert_error(e, "INVALID_PARAMETER_VALUE")
    client.restore_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "active"
    client.log_metric(rid, "m", 1.0)


def test_run_name_generation_and_conflicts(client, exp_id):
    run = client.create_run(exp_id)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,4}", run.info.run_name), run.info.run_name
    assert run.data.tags["mlflow.runName"] == run.info.run_name

    run = client.create_run(exp_id, tags={"mlflow.runName": "from-tag"})
    assert run.info.run_name == "from-tag"

    with pytest.raises(MlflowException) as e:
        client.create_run(exp_id, run_name="a", tags={"mlflow.runName": "b"})
    assert_error(e, "INVALID_PARAMETER_VALUE")

    run = client.create_run(exp_id, start_time=42)
    assert run.info.start_time == 42
    assert run.info.user_id is not None


def test_run_not_found(client):
    missing = uuid.uuid4().hex
    with pytest.raises(MlflowException) as e:
        client.get_run(missing)
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as e:
        client.log_metric(missing, "m", 1.0)
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as e:
        client.log_param(missing, "p", "v")
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as e:
        client.delete_run(missing)
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")


def test_params_metrics_tags(client, exp_id):
    run = client.create_run(exp_id)
    rid = run.info.run_id
    client.log_param(rid, "lr", "0.01")
    client.log_param(rid, "lr", "0.01")  # identical re-log is fine
    client.log_param(rid, "layers", 3)
    client.set_tag(rid, "team", "x")
    client.set_tag(rid, "team", "y")  # tags are overwritable
    client.set_tag(rid, "to-delete", "1")
    client.delete_tag(rid, "to-delete")

    client.log_metric(rid, "acc", 0.5, step=0, timestamp=1000)
    client.log_metric(rid, "acc", 0.7, step=1, timestamp=1001)
    client.log_metric(rid, "acc", 0.6, step=1, timestamp=900)
    client.log_metric(rid, "acc", 0.7, step=1, timestamp=1001)  # exact duplicate is dropped
    client.log_metric(rid, "late", 5.0, step=10, timestamp=100)
    client.log_metric(rid, "late", 7.0, step=2, timestamp=200)

    run = client.get_run(rid)
    assert run.data.params == {"lr": "0.01", "layers": "3"}
    assert run.data.tags["team"] == "y"
    assert "to-delete" not in run.data.tags
    # latest value = max by (step, timestamp, value)
    assert run.data.metrics["acc"] == 0.7
    assert run.data.metrics["late"] == 5.0

    hist = client.get_metric_history(rid, "acc")
    assert sorted((m.step, m.timestamp, m.value) for m in hist) == [
        (0, 1000, 0.5),
        (1, 900, 0.6),
        (1, 1001, 0.7),
    ]
    assert all(m.key == "acc" for m in hist)
    assert client.get_metric_history(rid, "nope") == []

    with pytest.raises(MlflowException) as e:
        client.log_param(rid, "lr", "0.02")
    assert_error(e, "INVALID_PARAMETER_VALUE")
    assert "lr" in str(e.value)

    with pytest.raises(MlflowException) as e:
        client.delete_tag(rid, "never-set")
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")

    # a finished run still accepts data
    client.set_terminated(rid)
    client.log_metric(rid, "after", 1.0)
    client.set_tag(rid, "after", "1")
    assert client.get_run(rid).data.metrics["after"] == 1.0


def test_name_and_length_validation(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    for bad in ["bad*name", "../escape", "/abs", "a//b"]:
        with pytest.raises(MlflowException) as e:
            client.log_metric(rid, bad, 1.0)
        assert_error(e, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as e:
        client.log_param(rid, "bad?key", "v")
    assert_error(e, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as e:
        client.log_param(rid, "k" * 251, "v")
    assert_error(e, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as e:
        client.log_metric(rid, "m", 1.0, timestamp=-1)
    assert_error(e, "INVALID_PARAMETER_VALUE")
    # allowed characters
    client.log_metric(rid, "a/b c:d-e_f.g", 1.0)
    assert client.get_run(rid).data.metrics["a/b c:d-e_f.g"] == 1.0

    # over-long param / tag values are truncated by the server (MLFLOW_TRUNCATE_LONG_VALUES)
    client.log_param(rid, "long", "x" * 7000)
    client.set_tag(rid, "longtag", "y" * 9000)
    run = client.get_run(rid)
    assert run.data.params["long"] == "x" * 6000
    assert run.data.tags["longtag"] == "y" * 8000


def test_nan_and_infinity_metrics(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    client.log_metric(rid, "nan", float("nan"), step=0)
    client.log_metric(rid, "pinf", float("inf"))
    client.log_metric(rid, "ninf", float("-inf"))
    run = client.get_run(rid)
    assert math.isnan(run.data.metrics["nan"])
    assert run.data.metrics["pinf"] == MAX_FLOAT
    assert run.data.metrics["ninf"] == -MAX_FLOAT
    hist = client.get_metric_history(rid, "nan")
    assert len(hist) == 1 and math.isnan(hist[0].value)

    # NaN participates in search: excluded by '>', included by '!='
    rid2 = client.create_run(exp_id).info.run_id
    client.log_metric(rid2, "nan", 3.0)
    gt = {r.info.run_id for r in client.search_runs([exp_id], "metrics.nan > 0")}
    assert gt == {rid2}
    ne = {r.info.run_id for r in client.search_runs([exp_id], "metrics.nan != 1")}
    assert ne == {rid, rid2}


def test_log_batch_and_limits(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    client.log_batch(
        rid,
        metrics=[Metric("bm", float(i), 1000 + i, i) for i in range(1000)],
        params=[Param(f"p{i}", str(i)) for i in range(100)],
        tags=[RunTag(f"t{i}", str(i)) for i in range(100)],
    )
    run = client.get_run(rid)
    assert len(run.data.params) == 100
    assert run.data.params["p42"] == "42"
    assert run.data.tags["t7"] == "7"
    assert run.data.metrics["bm"] == 999.0
    assert len(client.get_metric_history(rid, "bm")) == 1000

    for kwargs in [
        {"params": [Param("dup", "1"), Param("dup", "2")]},
        {"params": [Param("p1", "changed")]},
    ]:
        with pytest.raises(MlflowException) as e:
            client.log_batch(rid, **kwargs)
        assert_error(e, "INVALID_PARAMETER_VALUE")

    # the server enforces per-request limits (the client splits big batches itself)
    url = api("/api/2.0/mlflow/runs/log-batch")
    for body, word in [
        ({"params": [{"key": f"q{i}", "value": "1"} for i in range(101)]}, "params"),
        ({"tags": [{"key": f"u{i}", "value": "1"} for i in range(101)]}, "tags"),
        (
            {"metrics": [{"key": "m", "value": 1.0, "timestamp": i, "step": i} for i in range(1001)]},
            "metrics",
        ),
        ({"metrics": [{"key": "m", "value": 1.0}]}, "timestamp"),
        ({"params": [{"value": "1"}]}, "key"),
    ]:
        r = requests.post(url, json={"run_id": rid, **body})
        assert r.status_code == 400, body
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert word in r.json()["message"]
    # nothing from the rejected batches leaked in
    run = client.get_run(rid)
    assert "q0" not in run.data.params and "u0" not in run.data.tags
    assert "m" not in run.data.metrics
    assert run.data.params["p1"] == "1"

    # the client transparently splits oversized batches into several requests
    client.log_batch(rid, params=[Param(f"split{i}", "v") for i in range(150)])
    assert len([k for k in client.get_run(rid).data.params if k.startswith("split")]) == 150

    # identical param values in a batch are accepted
    client.log_batch(rid, params=[Param("p1", "1")])
    # empty batch is a no-op
    client.log_batch(rid)


@pytest.fixture
def search_runs_data(client, exp_id):
    r_alpha = client.create_run(exp_id, run_name="alpha", start_time=1000)
    r_beta = client.create_run(exp_id, run_name="beta", start_time=2000)
    r_gamma = client.create_run(exp_id, run_name="Gamma", start_time=3000)
    for r, acc, opt, team in [
        (r_alpha, 1.0, "a", "x"),
        (r_beta, 2.0, "b", "y"),
        (r_gamma, float("nan"), "c", None),
    ]:
        client.log_metric(r.info.run_id, "acc", acc)
        client.log_param(r.info.run_id, "opt", opt)
        if team:
            client.set_tag(r.info.run_id, "team", team)
    client.set_terminated(r_alpha.info.run_id, "FINISHED", end_time=5000)
    names = {
        r_alpha.info.run_id: "alpha",
        r_beta.info.run_id: "beta",
        r_gamma.info.run_id: "Gamma",
    }
    return exp_id, names, (r_alpha, r_beta, r_gamma)


def test_search_runs_filter_grammar(client, search_runs_data):
    eid, names, (alpha, beta, gamma) = search_runs_data

    def q(filter_string=None, **kw):
        return [names[r.info.run_id] for r in client.search_runs([eid], filter_string or "", **kw)]

    assert q() == ["Gamma", "beta", "alpha"]  # default: start_time DESC
    assert q("metrics.acc > 1") == ["beta"]
    assert q("metrics.acc >= 1") == ["beta", "alpha"]
    assert q("metric.acc <= 1.5") == ["alpha"]
    assert q("metrics.acc = 2") == ["beta"]
    assert q("params.opt = 'a'") == ["alpha"]
    assert q('params.opt = "b"') == ["beta"]
    assert q("param.opt != 'a'") == ["Gamma", "beta"]
    assert q("params.opt LIKE '%a%'") == ["alpha"]
    assert q("params.opt ILIKE 'B'") == ["beta"]
    assert q("tags.team = 'x'") == ["alpha"]
    assert q("tags.team IS NULL") == ["Gamma"]
    assert q("tags.team IS NOT NULL") == ["beta", "alpha"]
    assert q("params.opt IS NOT NULL and params.missing IS NULL") == ["Gamma", "beta", "alpha"]
    assert q("tags.`mlflow.runName` = 'beta'") == ["beta"]
    assert q("attributes.run_name = 'alpha'") == ["alpha"]
    assert q("run_name ILIKE 'g%'") == ["Gamma"]
    assert q("attributes.run_name LIKE 'g%'") == []
    assert q("attributes.status = 'FINISHED'") == ["alpha"]
    assert q("attributes.status != 'FINISHED'") == ["Gamma", "beta"]
    assert q("attributes.status LIKE 'RUN%'") == ["Gamma", "beta"]
    assert q("attributes.start_time > 1500") == ["Gamma", "beta"]
    assert q("attributes.created < 1500") == ["alpha"]
    assert q("attributes.end_time > 0") == ["alpha"]
    assert q(f"attributes.run_id IN ('{alpha.info.run_id}', '{gamma.info.run_id}')") == [
        "Gamma",
        "alpha",
    ]
    assert q(f"attributes.run_id NOT IN ('{alpha.info.run_id}')") == ["Gamma", "beta"]
    assert q(f"attributes.run_id = '{beta.info.run_id}'") == ["beta"]
    assert q("metrics.acc > 0 and params.opt = 'b' and tags.team = 'y'") == ["beta"]
    assert q("metrics.missing > 0") == []

    for bad in [
        "metrics.acc > 1 OR metrics.acc < 1",
        "metrics.acc >>> 1",
        "params.opt = 5",
        "metrics.acc > '1'",
        "foo.bar = 'x'",
        "attributes.nonexistent = 'x'",
        "attributes.status IN ('FINISHED')",
        "params.opt IN ('a', 'b')",
        "metrics.acc IS NULL",
    ]:
        with pytest.raises(MlflowException) as e:
            client.search_runs([eid], bad)
        assert_error(e, "INVALID_PARAMETER_VALUE")


def test_search_runs_order_by(client, search_runs_data):
    eid, names, _ = search_runs_data

    def q(order_by):
        return [names[r.info.run_id] for r in client.search_runs([eid], order_by=order_by)]

    # NaN and missing values sort last in both directions
    assert q(["metrics.acc ASC"]) == ["alpha", "beta", "Gamma"]
    assert q(["metrics.acc DESC"]) == ["beta", "alpha", "Gamma"]
    assert q(["params.opt DESC"]) == ["Gamma", "beta", "alpha"]
    assert q(["tags.team ASC"]) == ["alpha", "beta", "Gamma"]
    assert q(["tags.team DESC"]) == ["beta", "alpha", "Gamma"]
    assert q(["attributes.start_time ASC"]) == ["alpha", "beta", "Gamma"]
    assert q(["start_time"]) == ["alpha", "beta", "Gamma"]
    # string ordering is case-sensitive (binary)
    assert q(["attributes.run_name ASC"]) == ["Gamma", "alpha", "beta"]
    assert q(["`metrics`.`acc` DESC"]) == ["beta", "alpha", "Gamma"]
    assert q(["attributes.status ASC", "start_time DESC"]) == ["alpha", "Gamma", "beta"]

    with pytest.raises(MlflowException) as e:
        client.search_runs([eid], order_by=["nonsense.x"])
    assert_error(e, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as e:
        client.search_runs([eid], order_by=["metrics.acc SIDEWAYS"])
    assert_error(e, "INVALID_PARAMETER_VALUE")


def test_search_runs_paging_and_view_type(client, exp_id):
    rids = [client.create_run(exp_id, start_time=1000 + i).info.run_id for i in range(5)]
    seen, token, pages = [], None, 0
    while True:
        page = client.search_runs(
            [exp_id], max_results=2, order_by=["attributes.start_time ASC"], page_token=token
        )
        pages += 1
        assert len(page) <= 2
        seen += [r.info.run_id for r in page]
        token = page.token
        if not token:
            break
    assert seen == rids
    assert pages == 3

    client.delete_run(rids[0])
    active = {r.info.run_id for r in client.search_runs([exp_id])}
    assert active == set(rids[1:])
    deleted = client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [rids[0]]
    assert len(client.search_runs([exp_id], run_view_type=ViewType.ALL)) == 5

    # multiple experiments, and an unknown experiment yields nothing
    other = client.create_experiment(f"other-{uid()}")
    orid = client.create_run(other).info.run_id
    both = {r.info.run_id for r in client.search_runs([exp_id, other])}
    assert both == set(rids[1:]) | {orid}
    assert client.search_runs(["987654321"]) == []

    # fluent API returns a DataFrame built from the same endpoint
    df = mlflow.search_runs([exp_id], order_by=["attributes.start_time ASC"])
    assert list(df["run_id"]) == rids[1:]

    with pytest.raises(MlflowException) as e:
        client.search_runs([exp_id], max_results=50001)
    assert_error(e, "INVALID_PARAMETER_VALUE")


def test_delete_experiment_cascades_to_runs(client):
    eid = client.create_experiment(f"cascade-{uid()}")
    rid = client.create_run(eid).info.run_id
    client.delete_experiment(eid)
    assert client.get_run(rid).info.lifecycle_stage == "deleted"
    client.restore_experiment(eid)
    assert client.get_run(rid).info.lifecycle_stage == "active"


# --------------------------------------------------------------------------------------
# datasets / inputs
# --------------------------------------------------------------------------------------


def test_log_input_datasets(client, exp_id):
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3]})
    pd_ds = mlflow.data.from_pandas(df, name="pd-ds", targets="b")
    np_ds = mlflow.data.from_numpy(np.arange(10).reshape(5, 2), name="np-ds")
    with mlflow.start_run(experiment_id=exp_id) as r:
        mlflow.log_input(pd_ds, context="training", tags={"k": "v"})
        mlflow.log_input(pd_ds, context="training", tags={"k": "v"})  # duplicate: de-duplicated
        mlflow.log_input(np_ds, context="eval")
    rid = r.info.run_id
    inputs = client.get_run(rid).inputs.dataset_inputs
    assert sorted(di.dataset.name for di in inputs) == ["np-ds", "pd-ds"]
    by_name = {di.dataset.name: di for di in inputs}
    pd_in = by_name["pd-ds"]
    assert pd_in.dataset.digest == pd_ds.digest
    assert pd_in.dataset.source_type == "code"
    assert json.loads(pd_in.dataset.schema)["mlflow_colspec"][0]["name"] == "a"
    assert json.loads(pd_in.dataset.profile) == {"num_rows": 3, "num_elements": 6}
    assert {t.key: t.value for t in pd_in.tags} == {"k": "v", "mlflow.data.context": "training"}
    assert {t.key: t.value for t in by_name["np-ds"].tags} == {"mlflow.data.context": "eval"}

    # datasets are searchable
    hits = client.search_runs([exp_id], "datasets.name = 'np-ds'")
    assert [h.info.run_id for h in hits] == [rid]
    assert [h.info.run_id for h in client.search_runs([exp_id], "dataset.context = 'training'")] == [
        rid
    ]
    assert [
        h.info.run_id
        for h in client.search_runs([exp_id], f"datasets.digest IN ('{np_ds.digest}')")
    ] == [rid]
    assert client.search_runs([exp_id], "datasets.name = 'nope'") == []

    # round trip back into a dataset object
    source = mlflow.data.get_source(pd_in)
    assert source is not None


# --------------------------------------------------------------------------------------
# artifacts
# --------------------------------------------------------------------------------------


def _sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_artifacts_roundtrip(client, exp_id, tmp_path):
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "top.txt").write_text("top level")
    (src / "sub" / "mid.json").write_text('{"x": 1}')
    blob = os.urandom(5 * 1024 * 1024 + 123)
    (src / "sub" / "deeper" / "big.bin").write_bytes(blob)
    single = tmp_path / "single.txt"
    single.write_text("hello artifact")

    with mlflow.start_run(experiment_id=exp_id) as r:
        mlflow.log_artifact(str(single))
        mlflow.log_artifact(str(single), artifact_path="nested/dir")
        mlflow.log_artifacts(str(src), artifact_path="tree")
        mlflow.log_text("some text ü", "notes/t.txt")
        mlflow.log_dict({"a": [1, 2]}, "cfg/config.json")
    rid = r.info.run_id

    root = {f.path: f for f in client.list_artifacts(rid)}
    assert set(root) == {"single.txt", "nested", "tree", "notes", "cfg"}
    assert root["single.txt"].is_dir is False
    assert root["single.txt"].file_size == len("hello artifact")
    assert root["tree"].is_dir is True and root["tree"].file_size is None

    tree = {f.path: f for f in client.list_artifacts(rid, "tree/sub")}
    assert set(tree) == {"tree/sub/mid.json", "tree/sub/deeper"}
    deeper = client.list_artifacts(rid, "tree/sub/deeper")
    assert [(f.path, f.file_size) for f in deeper] == [("tree/sub/deeper/big.bin", len(blob))]
    # listing a file path (or a missing path) yields nothing
    assert client.list_artifacts(rid, "single.txt") == []
    assert client.list_artifacts(rid, "does/not/exist") == []

    dst = tmp_path / "dl"
    dst.mkdir()
    local = client.download_artifacts(rid, "tree", str(dst))
    assert os.path.isdir(local)
    assert (dst / "tree" / "top.txt").read_text() == "top level"
    assert (dst / "tree" / "sub" / "mid.json").read_text() == '{"x": 1}'
    got = dst / "tree" / "sub" / "deeper" / "big.bin"
    assert got.stat().st_size == len(blob)
    assert _sha(got) == hashlib.sha256(blob).hexdigest()

    assert mlflow.artifacts.load_text(f"runs:/{rid}/notes/t.txt") == "some text ü"
    assert mlflow.artifacts.load_dict(f"runs:/{rid}/cfg/config.json") == {"a": [1, 2]}
    p = mlflow.artifacts.download_artifacts(
        run_id=rid, artifact_path="nested/dir/single.txt", dst_path=str(tmp_path / "one")
    )
    assert open(p).read() == "hello artifact"
    # artifact_uri form works too
    p = mlflow.artifacts.download_artifacts(
        artifact_uri=f"mlflow-artifacts:/{exp_id}/{rid}/artifacts/single.txt",
        dst_path=str(tmp_path / "two"),
    )
    assert open(p).read() == "hello artifact"

    with pytest.raises(MlflowException):
        mlflow.artifacts.download_artifacts(
            run_id=rid, artifact_path="missing.txt", dst_path=str(tmp_path / "three")
        )


def test_artifact_rest_endpoints(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    base = f"{exp_id}/{rid}/artifacts"
    url = api(f"/api/2.0/mlflow-artifacts/artifacts/{base}/x/y.txt")
    r = requests.put(url, data=b"abc", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200

    r = requests.get(url)
    assert r.status_code == 200 and r.content == b"abc"

    r = requests.get(api("/api/2.0/mlflow-artifacts/artifacts"), params={"path": base})
    assert r.status_code == 200
    assert r.json()["files"] == [{"path": "x", "is_dir": True}]
    r = requests.get(api("/api/2.0/mlflow-artifacts/artifacts"), params={"path": f"{base}/x"})
    assert r.json()["files"] == [{"path": "y.txt", "is_dir": False, "file_size": 3}]
    r = requests.get(
        api("/api/2.0/mlflow-artifacts/artifacts"), params={"path": f"{base}/nonexistent"}
    )
    assert r.status_code == 200 and r.json().get("files", []) == []

    # run-scoped listing returns run-relative paths plus root_uri
    r = requests.get(api("/api/2.0/mlflow/artifacts/list"), params={"run_id": rid, "path": "x"})
    assert r.status_code == 200
    body = r.json()
    assert body["root_uri"] == f"mlflow-artifacts:/{exp_id}/{rid}/artifacts"
    assert body["files"] == [{"path": "x/y.txt", "is_dir": False, "file_size": 3}]

    r = requests.get(api(f"/api/2.0/mlflow-artifacts/artifacts/{base}/missing.txt"))
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    r = requests.get(
        api("/api/2.0/mlflow/artifacts/list"), params={"run_id": rid, "path": "../escape"}
    )
    assert r.status_code == 400
    r = requests.get(api("/api/2.0/mlflow-artifacts/artifacts/%2E%2E/%2E%2E/etc/passwd"))
    assert r.status_code in (400, 404)
    assert b"root:" not in r.content

    r = requests.delete(url)
    assert r.status_code == 200
    assert requests.get(url).status_code == 404
    assert [f.path for f in client.list_artifacts(rid, "x")] == []


# --------------------------------------------------------------------------------------
# logged models
# --------------------------------------------------------------------------------------


def test_pyfunc_log_model_and_load(client, exp_id):
    with mlflow.start_run(experiment_id=exp_id) as r:
        info = mlflow.pyfunc.log_model(
            name="doubler", python_model=Doubler(), pip_requirements=PIP_REQS
        )
    rid = r.info.run_id
    mid = info.model_id
    assert mid.startswith("m-")
    assert info.model_uri == f"models:/{mid}"
    assert info.run_id == rid

    lm = client.get_logged_model(mid)
    assert lm.name == "doubler"
    assert lm.experiment_id == exp_id
    assert lm.source_run_id == rid
    assert lm.status.to_int() == mlflow.entities.LoggedModelStatus.READY.to_int()
    assert lm.artifact_location == f"mlflow-artifacts:/{exp_id}/models/{mid}/artifacts"
    assert lm.creation_timestamp > 0 and lm.last_updated_timestamp >= lm.creation_timestamp

    run = client.get_run(rid)
    assert [o.model_id for o in run.outputs.model_outputs] == [mid]

    # the model's files live under the logged model's artifact location
    files = {f.path for f in mlflow.artifacts.list_artifacts(artifact_uri=lm.artifact_location)}
    assert {"MLmodel", "python_model.pkl"} <= {p.rsplit("/", 1)[-1] for p in files}

    df = pd.DataFrame({"x": [1.0, 2.5]})
    model = mlflow.pyfunc.load_model(info.model_uri)
    assert list(model.predict(df)) == [2.0, 5.0]
    # runs:/<run>/<name> resolves to the logged model via search_logged_models
    model = mlflow.pyfunc.load_model(f"runs:/{rid}/doubler")
    assert list(model.predict(df)) == [2.0, 5.0]


def test_logged_models_crud_and_search(client, exp_id):
    rid = client.create_run(exp_id).info.run_id
    a = client.create_logged_model(
        exp_id,
        name="model-a",
        source_run_id=rid,
        tags={"flavor": "x"},
        params={"alpha": "1"},
        model_type="agent",
    )
    time.sleep(0.01)  # distinct creation timestamps keep the paging order deterministic
    b = client.create_logged_model(exp_id, name="model-b", params={"alpha": "2"})
    time.sleep(0.01)
    c = client.create_logged_model(exp_id)  # server generates a name
    assert a.model_id.startswith("m-") and a.model_id != b.model_id
    assert a.status.to_int() == mlflow.entities.LoggedModelStatus.PENDING.to_int()
    assert a.params == {"alpha": "1"}
    assert a.tags["flavor"] == "x"
    assert a.model_type == "agent"
    assert a.source_run_id == rid
    assert c.name and re.fullmatch(r"[a-z]+-[a-z]+-\d+", c.name)
    assert a.artifact_location == f"mlflow-artifacts:/{exp_id}/models/{a.model_id}/artifacts"

    client.set_logged_model_tags(a.model_id, {"t1": "v1", "t2": "v2"})
    client.delete_logged_model_tag(a.model_id, "t2")
    tags = client.get_logged_model(a.model_id).tags
    assert tags["t1"] == "v1" and "t2" not in tags

    fin = client.finalize_logged_model(b.model_id, "READY")
    assert fin.status.to_int() == mlflow.entities.LoggedModelStatus.READY.to_int()

    # metrics linked to a model
    client.log_metric(rid, "loss", 0.25, model_id=a.model_id)
    got = client.get_logged_model(a.model_id)
    assert [(m.key, m.value, m.model_id) for m in got.metrics] == [("loss", 0.25, a.model_id)]

    def names(models):
        return [m.name for m in models]

    assert set(names(client.search_logged_models([exp_id]))) == {"model-a", "model-b", c.name}
    assert names(client.search_logged_models([exp_id], filter_string="name = 'model-a'")) == [
        "model-a"
    ]
    assert names(client.search_logged_models([exp_id], filter_string="params.alpha = '2'")) == [
        "model-b"
    ]
    assert names(client.search_logged_models([exp_id], filter_string="tags.flavor = 'x'")) == [
        "model-a"
    ]
    assert names(client.search_logged_models([exp_id], filter_string="metrics.loss < 1")) == [
        "model-a"
    ]
    assert names(
        client.search_logged_models([exp_id], filter_string=f"source_run_id = '{rid}'")
    ) == ["model-a"]
    assert names(
        client.search_logged_models(
            [exp_id],
            filter_string="name LIKE 'model-%'",
            order_by=[{"field_name": "name", "ascending": False}],
        )
    ) == ["model-b", "model-a"]

    # paging
    seen, token = [], None
    while True:
        page = client.search_logged_models(
            [exp_id],
            max_results=1,
            page_token=token,
            order_by=[{"field_name": "creation_timestamp", "ascending": True}],
        )
        assert len(page) <= 1
        seen += [m.model_id for m in page]
        token = page.token
        if not token:
            break
    assert seen == [a.model_id, b.model_id, c.model_id]

    with pytest.raises(MlflowException) as e:
        client.get_logged_model("m-" + uuid.uuid4().hex)
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as e:
        client.create_logged_model("987654321")
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")

    client.delete_logged_model(c.model_id)
    with pytest.raises(MlflowException) as e:
        client.get_logged_model(c.model_id)
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")
    assert c.model_id not in {m.model_id for m in client.search_logged_models([exp_id])}


def test_initialize_logged_model_links_run_inputs(client, exp_id):
    with mlflow.start_run(experiment_id=exp_id) as r:
        lm = mlflow.initialize_logged_model(name="init", model_type="t", tags={"k": "v"})
        mlflow.log_metric("score", 0.9, model_id=lm.model_id)
    run = client.get_run(r.info.run_id)
    assert [m.model_id for m in run.inputs.model_inputs] == [lm.model_id]
    got = client.get_logged_model(lm.model_id)
    assert got.source_run_id == r.info.run_id
    assert got.tags["k"] == "v"
    assert [m.key for m in got.metrics] == ["score"]


# --------------------------------------------------------------------------------------
# model registry
# --------------------------------------------------------------------------------------


def test_registered_model_crud(client):
    name = f"rm-{uid()}"
    rm = client.create_registered_model(name, tags={"t": "1"}, description="first")
    assert rm.name == name
    assert rm.description == "first"
    assert rm.tags == {"t": "1"}
    assert rm.creation_timestamp > 0
    assert rm.latest_versions == []

    with pytest.raises(MlflowException) as e:
        client.create_registered_model(name)
    assert_error(e, "RESOURCE_ALREADY_EXISTS")

    client.update_registered_model(name, description="second")
    client.set_registered_model_tag(name, "k", "v")
    client.set_registered_model_tag(name, "t", "2")
    client.delete_registered_model_tag(name, "k")
    rm = client.get_registered_model(name)
    assert rm.description == "second"
    assert rm.tags == {"t": "2"}
    assert rm.last_updated_timestamp >= rm.creation_timestamp

    new = f"{name}-renamed"
    client.rename_registered_model(name, new)
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(name)
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")
    assert client.get_registered_model(new).tags == {"t": "2"}

    client.delete_registered_model(new)
    with pytest.raises(MlflowException) as e:
        client.get_registered_model(new)
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as e:
        client.delete_registered_model(new)
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as e:
        client.create_registered_model(f"bad/name-{uid()}")
    assert_error(e, "INVALID_PARAMETER_VALUE")


@pytest.fixture
def registered_with_versions(client, exp_id, tmp_path):
    """A registered model with v1 from a logged model and v2 from plain run artifacts."""
    name = f"reg-{uid()}"
    with mlflow.start_run(experiment_id=exp_id) as r:
        info = mlflow.pyfunc.log_model(
            name="m",
            python_model=Doubler(),
            pip_requirements=PIP_REQS,
            registered_model_name=name,
        )
        model_dir = tmp_path / "adder"
        mlflow.pyfunc.save_model(str(model_dir), python_model=Adder(), pip_requirements=PIP_REQS)
        mlflow.log_artifacts(str(model_dir), artifact_path="adder_dir")
    rid = r.info.run_id
    mv2 = client.create_model_version(
        name, f"runs:/{rid}/adder_dir", run_id=rid, tags={"src": "run"}, description="from run"
    )
    return name, rid, info, mv2


def test_model_versions_from_logged_model_and_run(client, exp_id, registered_with_versions):
    name, rid, info, mv2 = registered_with_versions
    assert str(info.registered_model_version) == "1"

    mv1 = client.get_model_version(name, "1")
    assert mv1.version == "1"
    assert mv1.source == f"models:/{info.model_id}"
    assert mv1.run_id == rid
    assert mv1.status == "READY"
    assert mv1.current_stage == "None"
    # the logged model records its registrations in a tag
    regs = json.loads(client.get_logged_model(info.model_id).tags["mlflow.modelVersions"])
    assert {"name": name, "version": 1} in regs or {"name": name, "version": "1"} in regs

    assert mv2.version == "2"
    assert mv2.source == f"runs:/{rid}/adder_dir"
    assert mv2.run_id == rid
    assert mv2.description == "from run"
    assert mv2.tags == {"src": "run"}

    assert client.get_model_version_download_uri(name, "1") == (
        f"mlflow-artifacts:/{exp_id}/models/{info.model_id}/artifacts"
    )
    assert client.get_model_version_download_uri(name, "2") in (
        f"runs:/{rid}/adder_dir",
        f"mlflow-artifacts:/{exp_id}/{rid}/artifacts/adder_dir",
    )

    rm = client.get_registered_model(name)
    assert [v.version for v in rm.latest_versions] == ["2"]

    df = pd.DataFrame({"x": [1.0]})
    assert list(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(df)) == [2.0]
    assert list(mlflow.pyfunc.load_model(f"models:/{name}/2").predict(df)) == [101.0]

    with pytest.raises(MlflowException) as e:
        client.get_model_version(name, "99")
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")
    with pytest.raises(MlflowException) as e:
        client.create_model_version(name, f"runs:/{rid}/adder_dir")  # run_id missing
    assert_error(e, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as e:
        client.create_model_version(f"missing-{uid()}", f"runs:/{rid}/adder_dir", run_id=rid)
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")


def test_model_version_tags_aliases_stages(client, registered_with_versions):
    name, rid, info, _ = registered_with_versions
    client.set_model_version_tag(name, "1", "k", "v")
    client.set_model_version_tag(name, "1", "k2", "v2")
    client.delete_model_version_tag(name, "1", "k2")
    assert client.get_model_version(name, "1").tags == {"k": "v"}
    mv = client.update_model_version(name, "1", description="desc-1")
    assert mv.description == "desc-1"

    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    mv = client.get_model_version_by_alias(name, "champion")
    assert mv.version == "1" and "champion" in mv.aliases
    assert client.get_registered_model(name).aliases == {"champion": "1", "challenger": "2"}
    client.set_registered_model_alias(name, "champion", "2")  # move
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert sorted(client.get_model_version(name, "2").aliases) == ["challenger", "champion"]
    # the reserved "latest" alias resolves to the highest version
    assert client.get_model_version_by_alias(name, "latest").version == "2"

    df = pd.DataFrame({"x": [2.0]})
    assert list(mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(df)) == [102.0]

    with pytest.raises(MlflowException) as e:
        client.get_model_version_by_alias(name, "nope")
    assert_error(e, "INVALID_PARAMETER_VALUE")  # (sic) not RESOURCE_DOES_NOT_EXIST
    for reserved in ["latest", "v1", "V7"]:
        with pytest.raises(MlflowException) as e:
            client.set_registered_model_alias(name, reserved, "1")
        assert_error(e, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as e:
        client.set_registered_model_alias(name, "ok", "99")
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")

    client.delete_registered_model_alias(name, "challenger")
    assert client.get_registered_model(name).aliases == {"champion": "2"}
    client.delete_registered_model_alias(name, "never-set")  # no error

    # stages (deprecated but still served)
    mv = client.transition_model_version_stage(name, "1", "staging")
    assert mv.current_stage == "Staging"
    client.transition_model_version_stage(name, "1", "Production")
    mv = client.transition_model_version_stage(
        name, "2", "Production", archive_existing_versions=True
    )
    assert mv.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    latest = {v.current_stage: v.version for v in client.get_latest_versions(name)}
    assert latest == {"Archived": "1", "Production": "2"}
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]
    with pytest.raises(MlflowException) as e:
        client.transition_model_version_stage(name, "1", "Bogus")
    assert_error(e, "INVALID_PARAMETER_VALUE")

    # delete a version: gone, and its number is never reused
    client.delete_model_version(name, "2")
    with pytest.raises(MlflowException) as e:
        client.get_model_version(name, "2")
    assert_error(e, "RESOURCE_DOES_NOT_EXIST")
    assert client.get_registered_model(name).aliases == {}
    mv3 = client.create_model_version(name, f"runs:/{rid}/adder_dir", run_id=rid)
    assert mv3.version == "3"


def test_search_registered_models_and_versions(client, exp_id):
    prefix = f"srm-{uid()}"
    rid = client.create_run(exp_id).info.run_id
    for suffix, tag in [("b", "x"), ("a", "y"), ("c", "x")]:
        client.create_registered_model(f"{prefix}-{suffix}", tags={"grp": tag})
    for i in range(3):
        client.create_model_version(
            f"{prefix}-a", f"runs:/{rid}/m{i}", run_id=rid, tags={"i": str(i)}
        )
    client.create_model_version(f"{prefix}-b", f"runs:/{rid}/other", run_id=rid)

    def names(models):
        return [m.name.rsplit("-", 1)[1] for m in models]

    res = client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")
    assert names(res) == ["a", "b", "c"]  # default: name ASC
    res = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}-%'", order_by=["name DESC"]
    )
    assert names(res) == ["c", "b", "a"]
    res = client.search_registered_models(filter_string=f"name ILIKE '{prefix.upper()}-%'")
    assert len(res) == 3
    res = client.search_registered_models(filter_string=f"name = '{prefix}-b'")
    assert names(res) == ["b"]
    res = client.search_registered_models(
        filter_string=f"name LIKE '{prefix}-%' AND tags.grp = 'x'"
    )
    assert names(res) == ["b", "c"]
    res = client.search_registered_models(
        filter_string=f"name IN ('{prefix}-a', '{prefix}-c')"
    )
    assert names(res) == ["a", "c"]
    a = client.search_registered_models(filter_string=f"name = '{prefix}-a'")[0]
    assert [v.version for v in a.latest_versions] == ["3"]

    seen, token = [], None
    while True:
        page = client.search_registered_models(
            filter_string=f"name LIKE '{prefix}-%'", max_results=2, page_token=token
        )
        seen += names(page)
        token = page.token
        if not token:
            break
    assert seen == ["a", "b", "c"]

    def versions(mvs):
        return [(m.name.rsplit("-", 1)[1], m.version) for m in mvs]

    res = client.search_model_versions(
        f"name = '{prefix}-a'", order_by=["version_number DESC"]
    )
    assert versions(res) == [("a", "3"), ("a", "2"), ("a", "1")]
    res = client.search_model_versions(
        f"name = '{prefix}-a' AND version_number >= 2", order_by=["version_number ASC"]
    )
    assert versions(res) == [("a", "2"), ("a", "3")]
    res = client.search_model_versions(f"name = '{prefix}-a' AND tags.i = '1'")
    assert versions(res) == [("a", "2")]
    res = client.search_model_versions(
        f"run_id = '{rid}'", order_by=["name ASC", "version_number ASC"]
    )
    assert versions(res) == [("a", "1"), ("a", "2"), ("a", "3"), ("b", "1")]
    res = client.search_model_versions(
        f"source_path = 'runs:/{rid}/other'"
    )
    assert versions(res) == [("b", "1")]
    res = client.search_model_versions(
        f"name IN ('{prefix}-a', '{prefix}-b') AND source_path LIKE '%/m%'",
        order_by=["version_number ASC"],
    )
    assert versions(res) == [("a", "1"), ("a", "2"), ("a", "3")]

    seen, token = [], None
    while True:
        page = client.search_model_versions(
            f"name = '{prefix}-a'", max_results=2, page_token=token,
            order_by=["version_number ASC"],
        )
        seen += versions(page)
        token = page.token
        if not token:
            break
    assert seen == [("a", "1"), ("a", "2"), ("a", "3")]

    for bad in ["foo = 'bar'", "name = unquoted", "name > 'a'"]:
        with pytest.raises(MlflowException) as e:
            client.search_registered_models(filter_string=bad)
        assert_error(e, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as e:
        client.search_model_versions("foo = 'bar'")
    assert_error(e, "INVALID_PARAMETER_VALUE")
    with pytest.raises(MlflowException) as e:
        client.search_registered_models(max_results=1001)
    assert_error(e, "INVALID_PARAMETER_VALUE")


# --------------------------------------------------------------------------------------
# prompts (stored as registered models / versions with special tags)
# --------------------------------------------------------------------------------------


def test_prompt_register_load_format(client):
    name = f"prompt-{uid()}"
    v1 = mlflow.genai.register_prompt(
        name=name,
        template="Hello {{name}}!",
        commit_message="first",
        tags={"team": "nlp"},
    )
    assert v1.name == name and v1.version == 1
    v2 = mlflow.genai.register_prompt(
        name=name, template="Hi {{ name }}, {{greeting}}", commit_message="second"
    )
    assert v2.version == 2

    p1 = mlflow.genai.load_prompt(f"prompts:/{name}/1", cache_ttl_seconds=0)
    assert p1.template == "Hello {{name}}!"
    assert p1.commit_message == "first"
    assert p1.format(name="Ada") == "Hello Ada!"
    assert set(p1.variables) == {"name"}
    p2 = mlflow.genai.load_prompt(name, version=2, cache_ttl_seconds=0)
    assert p2.format(name="Ada", greeting="welcome") == "Hi Ada, welcome"
    latest = mlflow.genai.load_prompt(f"prompts:/{name}@latest", cache_ttl_seconds=0)
    assert latest.version == 2

    # storage model: a registered model + model versions carrying prompt tags
    # (MlflowClient hides prompts from the model APIs, so look at the wire directly)
    rm = rest_registered_model(name)
    assert rm["tags"]["mlflow.prompt.is_prompt"] == "true"
    assert rm["tags"]["team"] == "nlp"
    assert rm["description"] == "first"
    mv = rest_model_version(name, "1")
    assert mv["tags"]["mlflow.prompt.text"] == "Hello {{name}}!"
    assert mv["tags"]["mlflow.prompt.is_prompt"] == "true"
    assert mv["tags"]["_mlflow_prompt_type"] == "text"
    assert mv["source"] == "dummy-source"
    assert mv["version"] == "1"
    assert rest_model_version(name, "2")["description"] == "second"
    # prompts are hidden from plain registered-model search
    assert client.search_registered_models(filter_string=f"name = '{name}'") == []

    with pytest.raises(MlflowException):
        mlflow.genai.load_prompt(f"prompts:/{name}/7", cache_ttl_seconds=0)
    assert mlflow.genai.load_prompt(
        f"prompts:/missing-{uid()}/1", allow_missing=True, cache_ttl_seconds=0
    ) is None


def test_prompt_aliases(client):
    name = f"prompt-alias-{uid()}"
    mlflow.genai.register_prompt(name=name, template="one {{x}}")
    mlflow.genai.register_prompt(name=name, template="two {{x}}")
    mlflow.genai.set_prompt_alias(name, alias="production", version=1)
    p = mlflow.genai.load_prompt(f"prompts:/{name}@production", cache_ttl_seconds=0)
    assert p.version == 1 and p.format(x="!") == "one !"
    assert "production" in p.aliases
    mlflow.genai.set_prompt_alias(name, alias="production", version=2)
    p = mlflow.genai.load_prompt(f"prompts:/{name}@production", cache_ttl_seconds=0)
    assert p.version == 2 and p.format(x="?") == "two ?"
    assert rest_registered_model(name)["aliases"] == {"production": "2"}
    mlflow.genai.delete_prompt_alias(name, alias="production")
    with pytest.raises(MlflowException):
        mlflow.genai.load_prompt(f"prompts:/{name}@production", cache_ttl_seconds=0)


def test_prompt_search_chat_and_conflicts(client):
    prefix = f"ps-{uid()}"
    mlflow.genai.register_prompt(name=f"{prefix}-text", template="T {{a}}", tags={"k": "v"})
    chat = mlflow.genai.register_prompt(
        name=f"{prefix}-chat",
        template=[
            {"role": "system", "content": "You are {{persona}}."},
            {"role": "user", "content": "{{question}}"},
        ],
    )
    assert chat.is_text_prompt is False
    loaded = mlflow.genai.load_prompt(f"prompts:/{prefix}-chat/1", cache_ttl_seconds=0)
    assert loaded.format(persona="a bot", question="hi?") == [
        {"role": "system", "content": "You are a bot."},
        {"role": "user", "content": "hi?"},
    ]
    chat_mv = rest_model_version(f"{prefix}-chat", "1")
    assert chat_mv["tags"]["_mlflow_prompt_type"] == "chat"
    assert json.loads(chat_mv["tags"]["mlflow.prompt.text"])[1] == {
        "role": "user",
        "content": "{{question}}",
    }

    found = mlflow.genai.search_prompts(filter_string=f"name LIKE '{prefix}-%'")
    assert sorted(p.name for p in found) == [f"{prefix}-chat", f"{prefix}-text"]
    text = [p for p in found if p.name == f"{prefix}-text"][0]
    assert text.tags.get("k") == "v"
    assert "mlflow.prompt.is_prompt" not in text.tags

    # a regular model name cannot be reused for a prompt (and vice versa is hidden)
    model_name = f"{prefix}-model"
    client.create_registered_model(model_name)
    with pytest.raises(MlflowException) as e:
        mlflow.genai.register_prompt(name=model_name, template="x")
    assert_error(e, "INVALID_PARAMETER_VALUE")
    assert [m.name for m in client.search_registered_models(filter_string=f"name LIKE '{prefix}-%'")] == [
        model_name
    ]
