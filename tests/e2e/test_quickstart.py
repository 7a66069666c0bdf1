"""`loom quickstart` from a fresh folder (README): the whole closed loop with nothing but the
binary, every step printed, and everything left in the store for the UI."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess

import loomproc


def test_quickstart_runs_the_whole_loop():
    base = loomproc.temp_data_dir("loom-quickstart-")
    data = os.path.join(base, "qs")
    try:
        p = subprocess.run([loomproc.loom_bin(), "quickstart", "--data", data, "--exit"], capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        out = p.stdout
        for expected in [
            "registered dataset churn-train version 1",
            "registered it as churn version 1",
            "data_drift passed, prediction_drift passed, data_quality passed",
            "registered churn-train version 2",
            "data_drift FAILED",
            "alert opened: data_drift",
            "retraining: pipeline run",
            "registered churn/2; rollout",
            "rollout succeeded: live traffic now churn-v2 100%",
        ]:
            assert expected in out, f"{expected!r} missing from:\n{out}"
        # The steps come in the loop's order.
        order = [out.index(s) for s in ["passed, data_quality passed", "alert opened: data_drift", "retraining", "rollout succeeded"]]
        assert order == sorted(order)
        assert re.search(r"http://127\.0\.0\.1:\d+/monitors/churn-watch", out)
        # Everything stays in the store: both model versions, the alert with its action, the rollout.
        db = sqlite3.connect(os.path.join(data, "loom.db"))
        versions = db.execute(
            "SELECT v.version FROM model_versions v JOIN registered_models m ON m.id = v.model_ref WHERE m.name = 'churn' ORDER BY v.version").fetchall()
        assert [r[0] for r in versions] == [1, 2]
        alert = db.execute("SELECT action_run_id, action_rollout_id FROM monitor_alerts WHERE signal = 'data_drift'").fetchone()
        assert alert[0] and alert[1]
        assert db.execute("SELECT state FROM rollouts WHERE id = ?", (alert[1],)).fetchone()[0] == "succeeded"
        # A second quickstart into the same folder is refused; nothing is overwritten.
        again = subprocess.run([loomproc.loom_bin(), "quickstart", "--data", data, "--exit"], capture_output=True, text=True, timeout=60)
        assert again.returncode != 0 and "exists" in again.stderr
    finally:
        loomproc.remove(base)
