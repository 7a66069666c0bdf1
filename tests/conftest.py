"""Test session setup: when MLFLOW_TRACKING_URI is not given, start a real `loom server`.

LOOM_TEST_STORE selects its metadata store: `sqlite` (default, the embedded data folder) or
`postgresql` (a fresh schema in LOOM_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import loomproc  # noqa: E402

_server = None
_data = None


def pytest_configure(config):
    global _server, _data
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return
    store_kind = os.environ.get("LOOM_TEST_STORE", "sqlite")
    _data = loomproc.temp_data_dir("loom-compat-")
    store = loomproc.postgres_url() if store_kind == "postgresql" else None
    _server = loomproc.LoomServer(data=_data, store=store).start()
    os.environ["MLFLOW_TRACKING_URI"] = _server.url
    os.environ["LOOM_TEST_SERVER_STORE"] = store_kind


def pytest_unconfigure(config):
    if _server:
        code = _server.stop()
        if code not in (0, None):
            print(f"loom server exited with {code}:\n{_server.log()}", file=sys.stderr)
    if _data:
        loomproc.remove(_data)


def pytest_report_header(config):
    return f"loom server: {os.environ.get('MLFLOW_TRACKING_URI')} (store: {os.environ.get('LOOM_TEST_SERVER_STORE', 'external')})"
