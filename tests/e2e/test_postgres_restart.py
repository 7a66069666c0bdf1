"""When PostgreSQL restarts under load, the server answers 503 meanwhile (never 500), reconnects
by itself, and loses no acknowledged write."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
import requests

import loomproc

RESTART = os.environ.get("LOOM_TEST_PG_RESTART")


@pytest.mark.skipif(not RESTART, reason="LOOM_TEST_PG_RESTART is not set (scripts/test sets it)")
def test_postgres_restart_under_load():
    data = loomproc.temp_data_dir("loom-pgrestart-")
    server = loomproc.LoomServer(data=data, store=loomproc.postgres_url()).start()
    try:
        run_id = requests.post(server.url + "/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
        acked: list[int] = []
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        stop = threading.Event()

        def writer(offset: int):
            sess = requests.Session()
            step = offset
            while not stop.is_set():
                try:
                    r = sess.post(
                        server.url + "/api/2.0/mlflow/runs/log-metric",
                        json={"run_id": run_id, "key": "m", "value": 1.0, "timestamp": step, "step": step},
                        timeout=20,
                    )
                    code = r.status_code
                except requests.RequestException:
                    code = -1
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1
                    if code == 200:
                        acked.append(step)
                step += 1000
                if code != 200:
                    time.sleep(0.05)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        before = len(acked)
        subprocess.run(RESTART, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        # Keep writing after the restart: the server must reconnect on its own.
        deadline = time.time() + 30
        after_restart = len(acked)
        while time.time() < deadline and len(acked) < after_restart + 50:
            time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join()
        assert before > 10, f"too few writes before the restart: {before}"
        assert len(acked) >= after_restart + 50, f"the server did not recover: statuses {statuses}"
        assert set(statuses) <= {200, 503}, f"unexpected statuses during the restart: {statuses}"

        history = set()
        token = None
        while True:
            params = {"run_id": run_id, "metric_key": "m", "max_results": 25000}
            if token:
                params["page_token"] = token
            body = requests.get(server.url + "/api/2.0/mlflow/metrics/get-history", params=params).json()
            history |= {int(m["step"]) for m in body.get("metrics", [])}
            token = body.get("next_page_token")
            if not token:
                break
        missing = set(acked) - history
        assert not missing, f"{len(missing)} acknowledged writes were lost"
        assert requests.get(server.url + "/ready").status_code == 200
    finally:
        server.stop()
        loomproc.remove(data)
