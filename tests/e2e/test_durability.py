"""An acknowledged write survives kill -9 of the server (SQLite, the embedded default)."""

from __future__ import annotations

import threading
import time

import requests

import loomproc


def metric_steps(url: str, run_id: str, key: str = "m") -> set[int]:
    """Every step stored for a metric, following page tokens."""
    steps: set[int] = set()
    token = None
    while True:
        params = {"run_id": run_id, "metric_key": key, "max_results": 25000}
        if token:
            params["page_token"] = token
        body = requests.get(url + "/api/2.0/mlflow/metrics/get-history", params=params).json()
        steps |= {int(m["step"]) for m in body.get("metrics", [])}
        token = body.get("next_page_token")
        if not token:
            return steps


def test_acknowledged_writes_survive_kill_9():
    data = loomproc.temp_data_dir("loom-kill9-")
    server = loomproc.LoomServer(data=data).start()
    try:
        s = requests.Session()
        run = s.post(server.url + "/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()["run"]
        run_id = run["info"]["run_id"]
        acked: list[int] = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(offset: int):
            sess = requests.Session()
            step = offset
            while not stop.is_set():
                try:
                    r = sess.post(
                        server.url + "/api/2.0/mlflow/runs/log-metric",
                        json={"run_id": run_id, "key": "m", "value": step, "timestamp": step, "step": step},
                        timeout=5,
                    )
                except requests.RequestException:
                    return  # the server died mid-request: not acknowledged
                if r.status_code == 200:
                    with lock:
                        acked.append(step)
                step += 1000

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        server.kill9()
        stop.set()
        for t in threads:
            t.join()
        assert len(acked) > 50, f"too few writes acknowledged before the kill: {len(acked)}"

        server = loomproc.LoomServer(data=data).start()
        missing = set(acked) - metric_steps(server.url, run_id)
        assert not missing, f"{len(missing)} acknowledged writes were lost, e.g. {sorted(missing)[:5]}"
    finally:
        server.stop()
        loomproc.remove(data)


def test_graceful_shutdown_finishes_in_flight_writes():
    import signal

    data = loomproc.temp_data_dir("loom-sigterm-")
    server = loomproc.LoomServer(data=data).start()
    try:
        run_id = requests.post(server.url + "/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
        acked: list[int] = []
        lock = threading.Lock()
        stop = threading.Event()

        def writer(offset: int):
            sess = requests.Session()
            step = offset
            while not stop.is_set():
                try:
                    r = sess.post(server.url + "/api/2.0/mlflow/runs/log-batch", json={
                        "run_id": run_id,
                        "metrics": [{"key": "m", "value": 1.0, "timestamp": step, "step": step + k} for k in range(10)],
                    }, timeout=10)
                except requests.RequestException:
                    return
                if r.status_code == 200:
                    with lock:
                        acked.extend(step + k for k in range(10))
                step += 10_000

        threads = [threading.Thread(target=writer, args=(i * 10,)) for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        code = server.stop(signal.SIGTERM)
        stop.set()
        for t in threads:
            t.join()
        assert code == 0, f"graceful shutdown should exit 0, got {code}:\n{server.log()}"
        assert len(acked) > 100

        server = loomproc.LoomServer(data=data).start()
        stored = metric_steps(server.url, run_id)
        assert set(acked) <= stored, f"{len(set(acked) - stored)} acknowledged writes lost on SIGTERM"
    finally:
        server.stop()
        loomproc.remove(data)
