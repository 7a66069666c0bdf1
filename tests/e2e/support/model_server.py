"""A tiny HTTP model server for the endpoint tests: a stand-in for any model server Loom runs
(process runtime) or routes to (external runtime).

GET /ping answers 200; POST /invocations answers {"predictions": [...], "replica": ..., "pid": ...}
with one prediction per row (the row count of the MLflow input formats). The port is $PORT (or
the first argument); with $PID_DIR it writes its pid to $PID_DIR/replica-$LOOM_REPLICA.pid.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def rows(body: dict) -> int:
    if "dataframe_split" in body:
        return len(body["dataframe_split"].get("data", []))
    for key in ("dataframe_records", "instances"):
        if key in body:
            return len(body[key])
    inputs = body.get("inputs")
    if isinstance(inputs, dict):
        return len(next(iter(inputs.values()), []))
    return len(inputs or [])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/ping":
            self.answer(200, {"status": "ok"})
        else:
            self.answer(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path != "/invocations":
            self.answer(404, {"error": "not found"})
            return
        try:
            body = json.loads(raw)
            n = rows(body)
        except (ValueError, AttributeError, TypeError):
            self.answer(400, {"error": "bad input"})
            return
        fail = os.environ.get("FAIL_RATE")
        if fail and float(fail) > 0:
            import random
            if random.random() < float(fail):
                self.answer(500, {"error": "injected fault"})
                return
        self.answer(200, {"predictions": [os.environ.get("PREDICTION", "1")] * n,
                          "replica": os.environ.get("LOOM_REPLICA", "-"), "pid": os.getpid()})


def main() -> None:
    port = int(os.environ.get("PORT") or sys.argv[1])
    pid_dir = os.environ.get("PID_DIR")
    if pid_dir:
        with open(os.path.join(pid_dir, f"replica-{os.environ.get('LOOM_REPLICA', '0')}.pid"), "w") as f:
            f.write(str(os.getpid()))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
