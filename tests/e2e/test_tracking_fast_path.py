"""MLflow's `log-metric` and `log-batch` on the fast paths (docs/design.md, "Writes: the
tracking fast path"): a real `loom server`, raw HTTP/1.1 over loopback.

A connection that carries only these calls is read from the bytes (the relay); any other
connection takes them after the HTTP decoder. Either way the answers, the stored values, the
error bodies, the request metrics and the audit log are those of the router's handler, and a
request neither path takes (an unusual body, a workspace header, auth on) goes to the router.
"""

from __future__ import annotations

import json
import socket

import pytest
import requests

import loomproc

PREFIX = "/api/2.0/mlflow"


def _request(path: str, body, extra: str = "", method: str = "POST") -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


_responses = loomproc.http_responses


def _counter(metrics: str, prefix: str) -> float:
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(lines[0].split()[-1]) if lines else 0.0


@pytest.fixture(scope="module")
def server():
    data = loomproc.temp_data_dir("loom-tracking-fast-")
    s = loomproc.LoomServer(data=data).start()
    yield s
    s.stop()
    loomproc.remove(data)


def _new_run(server) -> str:
    r = requests.post(f"{server.url}{PREFIX}/runs/create", json={"experiment_id": "0"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["run"]["info"]["run_id"]


def _metrics(server) -> str:
    return requests.get(f"{server.url}/metrics", timeout=10).text


def test_relayed_calls_store_what_they_acknowledge_in_order(server):
    run = _new_run(server)
    before = _metrics(server)
    host, port = "127.0.0.1", server.port
    batch = {"run_id": run, "metrics": [{"key": "loss", "value": 0.5 - i / 100, "timestamp": 1000 + i, "step": i} for i in range(10)],
             "params": [{"key": "lr", "value": "0.01"}], "tags": [{"key": "team", "value": "a"}]}
    with socket.create_connection((host, port), timeout=10) as s:
        # Pipelined on a fresh connection: the relay reads each from the bytes.
        s.sendall(b"".join(_request(f"{PREFIX}/runs/log-metric", {"run_id": run, "key": "acc", "value": 0.9 + i / 1000, "timestamp": 10 + i, "step": i})
                           for i in range(20)) + _request(f"{PREFIX}/runs/log-batch", batch))
        answers = _responses(s, 21)
        assert [a[0] for a in answers] == [200] * 21
        assert all(a[3] == b"{}" and a[2]["content-type"] == "application/json" for a in answers)
        assert answers[0][1] == "HTTP/1.1 200 OK" and answers[0][2]["server"] == "loom" and answers[0][2]["date"].endswith(" GMT")
        # Errors in the router's words: an unknown run, a NaN where MLflow refuses one, a value of the wrong type.
        s.sendall(_request(f"{PREFIX}/runs/log-metric", {"run_id": "0" * 32, "key": "acc", "value": 1, "timestamp": 1}))
        status, line, _, body = _responses(s, 1)[0]
        assert status == 404 and line == "HTTP/1.1 404 Not Found"
        assert json.loads(body)["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        s.sendall(_request(f"{PREFIX}/runs/log-batch", {"run_id": run, "metrics": [{"key": "k", "value": 1, "timestamp": 1}] * 1001}))
        status, _, _, body = _responses(s, 1)[0]
        assert status == 400 and json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE", body
        # The connection goes on after an error.
        s.sendall(_request(f"{PREFIX}/runs/log-metric", {"run_id": run, "key": "last", "value": 1, "timestamp": 1}, extra="Connection: close\r\n"))
        status, _, headers, _ = _responses(s, 1)[0]
        assert status == 200 and headers.get("connection") == "close"
        assert s.recv(10) == b""

    got = requests.get(f"{server.url}{PREFIX}/metrics/get-history", params={"run_id": run, "metric_key": "acc"}, timeout=10).json()["metrics"]
    assert sorted(m["step"] for m in got) == list(range(20))
    assert {m["step"]: m["value"] for m in got}[7] == pytest.approx(0.907)
    info = requests.get(f"{server.url}{PREFIX}/runs/get", params={"run_id": run}, timeout=10).json()["run"]["data"]
    assert {p["key"]: p["value"] for p in info["params"]} == {"lr": "0.01"}
    assert {t["key"]: t["value"] for t in info["tags"]}["team"] == "a"
    assert {m["key"]: m["value"] for m in info["metrics"]}["loss"] == pytest.approx(0.41)
    assert "last" in {m["key"] for m in info["metrics"]}

    after = _metrics(server)
    relayed = _counter(after, 'loom_tracking_fast_path_total{via="relay"}') - _counter(before, 'loom_tracking_fast_path_total{via="relay"}')
    assert relayed == 24, relayed
    # Counted under the router's route names, with their statuses.
    assert _counter(after, f'loom_http_requests_total{{method="POST",route="{PREFIX}/runs/log-metric",status="404"}}') >= 1
    assert _counter(after, f'loom_http_requests_total{{method="POST",route="{PREFIX}/runs/log-batch",status="400"}}') >= 1
    # In the audit log as the router's handler writes them.
    audit = requests.get(f"{server.url}/api/v1/audit", params={"entity_id": run, "max_results": 200}, timeout=10).json()
    events = audit.get("events", audit.get("items", []))
    origins = {e.get("detail", "") for e in events}
    assert any(o.startswith(f"POST {PREFIX}/runs/log-batch") for o in origins), origins
    assert all(e["actor"] == "anonymous" for e in events if e.get("detail", "").startswith(f"POST {PREFIX}/runs/log-"))


def test_other_requests_on_the_connection_keep_their_order(server):
    run = _new_run(server)
    before = _metrics(server)
    get = f"GET {PREFIX}/runs/get?run_id={run} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    escaped = json.dumps({"run_id": run, "key": "esc", "value": 2, "timestamp": 1}).replace('"esc"', '"\\u0065sc"').encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        # Pipelined: answered in the order sent, whoever answers each.
        s.sendall(_request(f"{PREFIX}/runs/log-metric", {"run_id": run, "key": "a", "value": 1, "timestamp": 1})
                  # A body with an escape: the router reads it (and stores the same metric).
                  + _request(f"{PREFIX}/runs/log-metric", escaped)
                  + get
                  # Behind a request the router answers: the router takes it too.
                  + _request(f"{PREFIX}/runs/log-metric", {"run_id": run, "key": "b", "value": 2, "timestamp": 1}))
        answers = _responses(s, 4)
        # One at a time on the same connection: after the HTTP decoder, by the fast path.
        s.sendall(_request(f"{PREFIX}/runs/log-metric", {"run_id": run, "key": "d", "value": 4, "timestamp": 1}))
        answers += _responses(s, 1)
        s.sendall(_request(f"{PREFIX}/runs/log-metric", {"run_id": run, "key": "c", "value": 3, "timestamp": 1}, extra="X-Loom-Workspace: nowhere\r\n"))
        answers += _responses(s, 1)
        s.sendall(get)
        answers += _responses(s, 1)
    assert [a[0] for a in answers] == [200, 200, 200, 200, 200, 404, 200], answers
    assert b"nowhere" in answers[5][3], answers[5]
    first = {m["key"] for m in json.loads(answers[2][3])["run"]["data"]["metrics"]}
    last = {m["key"] for m in json.loads(answers[6][3])["run"]["data"]["metrics"]}
    # Each answer saw every write acknowledged before it.
    assert first == {"a", "esc"} and last == {"a", "esc", "b", "d"}, (first, last)
    after = _metrics(server)
    relay = _counter(after, 'loom_tracking_fast_path_total{via="relay"}') - _counter(before, 'loom_tracking_fast_path_total{via="relay"}')
    decoder = _counter(after, 'loom_tracking_fast_path_total{via="decoder"}') - _counter(before, 'loom_tracking_fast_path_total{via="decoder"}')
    # "a" from the bytes; after the escaped one went to the HTTP decoder, "d" after the decoder.
    assert (relay, decoder) == (1, 1), (relay, decoder)


def test_auth_on_leaves_every_call_to_the_router():
    data = loomproc.temp_data_dir("loom-tracking-fast-auth-")
    s = loomproc.LoomServer(data=data, auth=True, env={"LOOM_ADMIN_PASSWORD": "pw-admin-1"}).start()
    try:
        body = _request(f"{PREFIX}/runs/log-metric", {"run_id": "0" * 32, "key": "a", "value": 1, "timestamp": 1})
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
            sock.sendall(body)
            status, _, headers, answer = _responses(sock, 1)[0]
        assert status == 401 and json.loads(answer)["error_code"] == "UNAUTHENTICATED", answer
        metrics = requests.get(f"{s.url}/metrics", timeout=10).text
        assert _counter(metrics, 'loom_tracking_fast_path_total{via="relay"}') == 0
        assert _counter(metrics, 'loom_tracking_fast_path_total{via="decoder"}') == 0
    finally:
        s.stop()
        loomproc.remove(data)
