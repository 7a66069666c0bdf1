"""Evidently's data drift on two CSV files, for the comparison test (tests/e2e/test_drift.py).

Run with the interpreter of the Evidently venv (.venv-evidently: evidently 0.7.23, pandas < 3).
Usage: evidently_drift.py REFERENCE.csv CURRENT.csv [NUM_METHOD|-] [CAT_METHOD|-]
Prints JSON: {"columns": {name: {"method": display name, "threshold": t, "score": s}},
"drifted_count": n, "share": s}.
"""
import json
import sys
import time

import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

reference = pd.read_csv(sys.argv[1])
current = pd.read_csv(sys.argv[2])
num = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
cat = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
started = time.perf_counter()
snapshot = Report([DataDriftPreset(num_method=num, cat_method=cat)]).run(current, reference)
report = snapshot.json()
out = {"columns": {}, "report_seconds": time.perf_counter() - started}
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if config["type"].endswith("ValueDrift"):
        out["columns"][config["column"]] = {"method": config["method"], "threshold": config["threshold"], "score": metric["value"]}
    elif config["type"].endswith("DriftedColumnsCount"):
        out["drifted_count"] = metric["value"]["count"]
        out["share"] = metric["value"]["share"]
print(json.dumps(out))
