"""Shared helpers for Loom's benchmark harness (bench/run.sh).

Only the standard library is used here so that `launch.py` starts fast and the helpers work in
any Python 3.9+ interpreter; the client workload additionally needs the `mlflow` package.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import time
from typing import Iterable

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- Processes ----------------------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 = state)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split()


def process_tree(root: int) -> list[int]:
    """`root` and all of its descendants, plus any process in `root`'s session (a server started
    with setsid is a session leader; workers that were re-parented still share its session)."""
    parents: dict[int, int] = {}
    sessions: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is None or fields[0] == "Z":
            continue
        parents[int(name)] = int(fields[1])
        sessions[int(name)] = int(fields[3])
    if root not in parents:
        return []
    tree = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                changed = True
    root_sid = sessions.get(root)
    if root_sid == root:  # only when the root leads its own session
        tree.update(pid for pid, sid in sessions.items() if sid == root_sid)
    return sorted(tree)


def rss_kib(pids: Iterable[int]) -> int:
    """Sum of VmRSS (KiB) over `pids`, read from /proc/<pid>/status."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def pss_kib(pids: Iterable[int]) -> int:
    """Sum of Pss (KiB) over `pids`, from /proc/<pid>/smaps_rollup: like RSS, but a page shared by
    N processes counts 1/N in each, so the sum over a process tree does not count shared
    libraries (or copy-on-write pages of forked workers) more than once."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds consumed so far by `pids` (plus their reaped children)."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # utime, stime, cutime, cstime are fields 14..17 of stat (1-based) => index 11..14 here
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def tree_cpu_seconds(root: int) -> float:
    return cpu_seconds(process_tree(root))


def tree_rss_mib(root: int) -> float:
    return rss_kib(process_tree(root)) / 1024.0


# --- HTTP ---------------------------------------------------------------------------------------

class Http:
    """A tiny keep-alive JSON client on http.client (much cheaper per call than `requests`, so the
    Python side does not hide the server's speed in the population and latency loops)."""

    def __init__(self, url: str, timeout: float = 120):
        assert url.startswith("http://")
        hostport = url[len("http://"):].rstrip("/")
        host, _, port = hostport.partition(":")
        self.host, self.port, self.timeout = host, int(port or 80), timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def request(self, method: str, path: str, body: object | None = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, payload
            except (http.client.HTTPException, ConnectionError, socket.timeout, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: object | None = None) -> dict:
        status, payload = self.request(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path} -> HTTP {status}: {payload[:500]!r}")
        return json.loads(payload or b"{}")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def create_experiment(url: str, name: str) -> str:
    return Http(url).json("POST", "/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]


def create_run(http: Http, experiment_id: str, name: str = "bench") -> str:
    body = {"experiment_id": experiment_id, "run_name": name, "start_time": int(time.time() * 1000)}
    return http.json("POST", "/api/2.0/mlflow/runs/create", body)["run"]["info"]["run_id"]


# --- Statistics ---------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an unsorted list; NaN when empty."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def summarize_ms(values_s: list[float]) -> dict:
    ms = [v * 1000.0 for v in values_s]
    return {
        "n": len(ms),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else float("nan"),
    }


def write_json(path: str, obj: object) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
