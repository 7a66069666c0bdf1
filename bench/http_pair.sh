#!/usr/bin/env bash
# Two Loom binaries (or one) next to the bare Hummingbird route, POST log-metric and log-batch
# with wrk, alternately: how BENCHMARKS.md compared a commit with the one before it on the same
# machine in the same hour. No MLflow; use bench/run.sh for the issue's figures.
#
# Usage: bench/http_pair.sh SECONDS LOOM_BIN [LOOM_BIN ...]
#   BASELINE_BIN overrides the bare route (default .build-rel2/release/loom-bench-baseline).
# Prints, per binary: req/s, p99 and server CPU (cores) for each endpoint, then the bare route's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="$1"; shift
BASELINE="${BASELINE_BIN:-$ROOT/.build-rel2/release/loom-bench-baseline}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
measure() {  # NAME PORT PID RUN_ID
  local ep t0 t1
  for ep in log_metric log_batch; do
    t0=$(awk '{print $14+$15}' "/proc/$3/stat")
    RUN_ID="$4" wrk -t2 -c16 -d"${SECS}s" --latency -s "$ROOT/bench/$ep.lua" "http://127.0.0.1:$2" >"$WORK/wrk.txt" 2>&1
    t1=$(awk '{print $14+$15}' "/proc/$3/stat")
    printf '%s %s %s req/s p99 %s cpu %s\n' "$1" "$ep" "$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")" \
      "$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")" "$(python3 -c "print(f'{($t1-$t0)/100/$SECS:.2f}')")"
  done
}
wait_up() { for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
for bin in "$@"; do
  port=$(free_port); rm -rf "$WORK/data"
  "$bin" server --host 127.0.0.1 --port "$port" --data "$WORK/data" --no-auth >"$WORK/loom.log" 2>&1 & pid=$!
  wait_up "$port" || { echo "loom did not start: $(tail -5 "$WORK/loom.log")" >&2; exit 1; }
  run=$(curl -sf -X POST "http://127.0.0.1:$port/api/2.0/mlflow/runs/create" -d '{"experiment_id":"0"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["run"]["info"]["run_id"])')
  measure "$bin" "$port" "$pid" "$run"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  port=$(free_port)
  "$BASELINE" "$port" >"$WORK/base.log" 2>&1 & pid=$!
  wait_up "$port" || { echo "the bare route did not start" >&2; exit 1; }
  measure "bare route" "$port" "$pid" "-"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
