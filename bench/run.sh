#!/usr/bin/env bash
# Loom vs. MLflow benchmarks, measured side by side on this machine in one run.
#
# Usage: bench/run.sh [all|client|http|search|memory ...] [--quick] [--skip-build] [--keep]
#
#   all (default)  every benchmark below
#   client         the official mlflow client's workload (runs, metrics, batches, searches,
#                  registry) from several worker processes: ops/s for Loom and for `mlflow server`
#   http           wrk on POST runs/log-metric and runs/log-batch: Loom, mlflow server, and a bare
#                  Hummingbird route returning {} (bench/baseline)
#   search         search_runs latency (metric filter + order by) over 100,000 runs in Loom
#                  (MLflow: as many runs as it can take in the time limit, 10,000 asked)
#   memory         idle RSS after 10 s and cold start (exec -> first 200 from /health)
#   --quick        short runs and small data sets: a smoke test of the harness (~3-4 min)
#   --skip-build   use the existing release binaries in .build-release
#   --keep         keep the temporary data directories and server logs (path printed at the end)
#
# Environment: LOOM_BIN / BASELINE_BIN override the binaries (then nothing is built for them),
# BENCH_WORKERS (client and population processes, default 4), BENCH_VENV (default bench/.venv).
#
# Progress goes to stderr; the Markdown report goes to stdout and to bench/results/latest.md
# (raw JSON in bench/results/latest/). See bench/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
cd "$ROOT"

# --- Options ------------------------------------------------------------------------------------
BENCHES=()
QUICK=0
SKIP_BUILD=0
KEEP=0
for arg in "$@"; do
  case "$arg" in
    all) BENCHES+=(memory client http search) ;;
    client|http|search|memory) BENCHES+=("$arg") ;;
    --quick) QUICK=1 ;;
    --skip-build) SKIP_BUILD=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$arg' (try --help)" >&2; exit 64 ;;
  esac
done
[ ${#BENCHES[@]} -eq 0 ] && BENCHES=(memory client http search)
want() { local b; for b in "${BENCHES[@]}"; do [ "$b" = "$1" ] && return 0; done; return 1; }

WORKERS="${BENCH_WORKERS:-4}"
if [ "$QUICK" = 1 ]; then
  MODE=quick
  CLIENT_SECONDS=5;  CLIENT_WARMUP=1
  HTTP_SECONDS=3;    HTTP_MLFLOW_SECONDS=3; HTTP_WARMUP=1
  SEARCH_LOOM_RUNS=5000; SEARCH_MLFLOW_RUNS=1000; SEARCH_QUERIES=30; SEARCH_MLFLOW_QUERY_SECONDS=15
  SEARCH_LOOM_POPULATE_LIMIT=120; SEARCH_MLFLOW_POPULATE_LIMIT=60
  MEMORY_STARTS=1;   IDLE_SECONDS=10
else
  MODE=full
  CLIENT_SECONDS=30; CLIENT_WARMUP=3
  HTTP_SECONDS=15;   HTTP_MLFLOW_SECONDS=5; HTTP_WARMUP=2
  SEARCH_LOOM_RUNS=100000; SEARCH_MLFLOW_RUNS=10000; SEARCH_QUERIES=200; SEARCH_MLFLOW_QUERY_SECONDS=45
  SEARCH_LOOM_POPULATE_LIMIT=300; SEARCH_MLFLOW_POPULATE_LIMIT=150
  MEMORY_STARTS=2;   IDLE_SECONDS=10
fi

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"

# --- Scratch space and cleanup ------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/loom-bench.XXXXXX")"
RES="$WORK/results"
mkdir -p "$RES"
: >"$RES/notes.txt"
SERVER_PIDS=()

group_alive() {  # PGID: true while a process of the group is alive (zombies do not count)
  local p state
  for p in $(pgrep -g "$1" 2>/dev/null); do
    state="$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)"
    [ -n "$state" ] && [ "$state" != Z ] && return 0
  done
  return 1
}

stop_server() {  # PID: SIGTERM to its process group, SIGKILL after 15 s
  local pid="$1" i
  group_alive "$pid" || return 0
  kill -TERM -- "-$pid" 2>/dev/null || true
  for i in $(seq 1 150); do
    group_alive "$pid" || return 0
    sleep 0.1
  done
  log "process group $pid did not stop after SIGTERM; sending SIGKILL"
  kill -KILL -- "-$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in "${SERVER_PIDS[@]:-}"; do [ -n "$pid" ] && stop_server "$pid"; done
  if [ "$KEEP" = 1 ]; then log "kept data directories and logs in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note() { printf '%s\n' "$*" >>"$RES/notes.txt"; log "note: $*"; }

# --- Build --------------------------------------------------------------------------------------
LOOM="${LOOM_BIN:-$ROOT/.build-release/release/loom}"
BASELINE="${BASELINE_BIN:-$ROOT/.build-release/release/loom-bench-baseline}"
build() {  # PRODUCT
  log "building $1 (release, --scratch-path .build-release)"
  if ! swift build -c release --scratch-path "$ROOT/.build-release" --product "$1" >"$WORK/build-$1.log" 2>&1; then
    tail -40 "$WORK/build-$1.log" >&2
    die "release build of $1 failed"
  fi
}
if [ "$SKIP_BUILD" = 0 ]; then
  [ -z "${LOOM_BIN:-}" ] && build loom
  if want http && [ -z "${BASELINE_BIN:-}" ]; then build loom-bench-baseline; fi
fi
[ -x "$LOOM" ] || die "no Loom binary at $LOOM (build it or set LOOM_BIN)"
if want http; then [ -x "$BASELINE" ] || die "no baseline binary at $BASELINE (set BASELINE_BIN or drop --skip-build)"; fi

# --- Python venv with the MLflow server and client ----------------------------------------------
VENV="${BENCH_VENV:-$BENCH/.venv}"
REQS="mlflow==3.17.2 requests"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.bench-requirements" 2>/dev/null)" != "$REQS" ]; then
  log "creating the Python venv $VENV ($REQS)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q $REQS
  printf '%s' "$REQS" >"$VENV/.bench-requirements"
fi
PY="$VENV/bin/python"
MLFLOW="$VENV/bin/mlflow"
export PYTHONDONTWRITEBYTECODE=1
export GIT_PYTHON_REFRESH=quiet
export MLFLOW_HTTP_REQUEST_MAX_RETRIES=0

# --- Servers ------------------------------------------------------------------------------------
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_server loom|mlflow|mlflow-nojobs|baseline: sets SERVER_PID, SERVER_URL, SERVER_COLD_MS, SERVER_DATA, SERVER_LOG
start_server() {
  local kind="$1" port out
  port="$(free_port)"
  SERVER_DATA="$(mktemp -d "$WORK/$kind.XXXXXX")"
  SERVER_LOG="$SERVER_DATA/server.log"
  SERVER_URL="http://127.0.0.1:$port"
  local cmd env=()
  case "$kind" in
    loom) cmd=("$LOOM" server --host 127.0.0.1 --port "$port" --data "$SERVER_DATA/data" --no-auth) ;;
    mlflow|mlflow-nojobs)
          [ "$kind" = mlflow-nojobs ] && env=(--env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false)
          cmd=("$MLFLOW" server --backend-store-uri "sqlite:///$SERVER_DATA/mlflow.db" --serve-artifacts
                 --artifacts-destination "$SERVER_DATA/artifacts" --host 127.0.0.1 --port "$port") ;;
    baseline) cmd=("$BASELINE" "$port") ;;
  esac
  if ! out="$(cd "$SERVER_DATA" && "$PY" "$BENCH/launch.py" --url "$SERVER_URL" --log "$SERVER_LOG" --timeout 180 "${env[@]}" -- "${cmd[@]}")"; then
    die "could not start $kind"
  fi
  SERVER_PID="$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["pid"])' "$out")"
  SERVER_COLD_MS="$("$PY" -c 'import json, sys; print(json.loads(sys.argv[1])["cold_start_ms"])' "$out")"
  SERVER_PIDS+=("$SERVER_PID")
  log "$kind is up at $SERVER_URL (pid $SERVER_PID, ${SERVER_COLD_MS} ms)"
}

# finish_server NAME BENCH: notes a crash or logged errors, then stops it
finish_server() {
  local name="$1" what="$2"
  local state
  state="$(sed 's/.*) //' "/proc/$SERVER_PID/stat" 2>/dev/null | cut -d' ' -f1)"
  if [ -z "$state" ] || [ "$state" = Z ]; then
    note "$name's server process (pid $SERVER_PID) was gone at the end of the $what benchmark. Log tail: $(tail -c 1500 "$SERVER_LOG" | tr '\n' ' ')"
  fi
  if [ "$name" = Loom ]; then
    local n
    n="$(grep -ciE '(^|[^a-z])(error|critical|fatal)([^a-z]|$)' "$SERVER_LOG" || true)"
    if [ "${n:-0}" != 0 ]; then
      note "Loom logged $n line(s) with error/critical/fatal during the $what benchmark; first: \`$(grep -iE '(^|[^a-z])(error|critical|fatal)([^a-z]|$)' "$SERVER_LOG" | head -3 | cut -c1-300 | tr '\n' ' ')\`"
    fi
  fi
  stop_server "$SERVER_PID"
}

# --- Metadata -----------------------------------------------------------------------------------
"$PY" - "$RES/meta.json" "$MODE" "${BENCHES[*]}" "$LOOM" "$WORKERS" <<'EOF'
import json, os, platform, subprocess, sys, time
out, mode, benches, loom, workers = sys.argv[1:6]
def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except Exception:
        return "?"
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip(); break
mem = "?"
for line in open("/proc/meminfo"):
    if line.startswith("MemTotal"):
        mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"; break
import importlib.metadata as md
json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "mode": mode, "benchmarks": benches,
           "cpu": cpu, "cores": os.cpu_count(), "mem": mem, "loadavg": " ".join(open("/proc/loadavg").read().split()[:3]),
           "loom_bin": loom, "loom_version": run(loom, "--version"), "mlflow_version": md.version("mlflow"),
           "python": platform.python_version(), "wrk": run("wrk", "--version") .split(" Copyright")[0],
           "workers": int(workers)}, open(out, "w"), indent=2)
EOF

# --- 4. Memory and cold start -------------------------------------------------------------------
if want memory; then
  for kind in loom mlflow; do
    for i in $(seq 1 "$MEMORY_STARTS"); do
      log "memory: $kind start $i/$MEMORY_STARTS (idle ${IDLE_SECONDS}s)"
      start_server "$kind"
      "$PY" "$BENCH/memory.py" --pid "$SERVER_PID" --idle "$IDLE_SECONDS" --cold-start-ms "$SERVER_COLD_MS" \
        --out "$RES/memory-$kind-$i.json" >&2
      finish_server "$([ "$kind" = loom ] && echo Loom || echo MLflow)" memory
    done
  done
  # For reference only: MLflow without its job runner and huey consumers (not its default).
  log "memory: mlflow with MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false (idle ${IDLE_SECONDS}s)"
  start_server mlflow-nojobs
  "$PY" "$BENCH/memory.py" --pid "$SERVER_PID" --idle "$IDLE_SECONDS" --cold-start-ms "$SERVER_COLD_MS" \
    --out "$RES/memory-mlflow-nojobs-1.json" >&2
  finish_server MLflow memory
fi

# --- 1. MLflow client workload ------------------------------------------------------------------
if want client; then
  for kind in loom mlflow; do
    log "client workload: $kind ($WORKERS workers, ${CLIENT_SECONDS}s after ${CLIENT_WARMUP}s warm-up)"
    start_server "$kind"
    "$PY" "$BENCH/client_workload.py" --url "$SERVER_URL" --server-pid "$SERVER_PID" --workers "$WORKERS" \
      --duration "$CLIENT_SECONDS" --warmup "$CLIENT_WARMUP" --out "$RES/client-$kind.json" >&2 \
      || note "client workload against $kind failed (see stderr above)"
    finish_server "$([ "$kind" = loom ] && echo Loom || echo MLflow)" client
  done
fi

# --- 2. Raw HTTP with wrk -----------------------------------------------------------------------
if want http; then
  for kind in loom baseline mlflow; do
    secs="$HTTP_SECONDS"; warm="$HTTP_WARMUP"
    if [ "$kind" = mlflow ]; then secs="$HTTP_MLFLOW_SECONDS"; warm=2; fi
    log "http: $kind (wrk -t2 -c16, ${secs}s per endpoint)"
    start_server "$kind"
    "$PY" "$BENCH/http_bench.py" --url "$SERVER_URL" --target "$kind" --duration "$secs" --warmup "$warm" \
      --threads 2 --connections 16 --server-pid "$SERVER_PID" --out "$RES/http-$kind.json" >&2 \
      || note "http benchmark against $kind failed (see stderr above)"
    case "$kind" in loom) name=Loom ;; mlflow) name=MLflow ;; *) name=baseline ;; esac
    finish_server "$name" http
  done
fi

# --- 3. search_runs over a large experiment -----------------------------------------------------
if want search; then
  log "search: mlflow (populate up to $SEARCH_MLFLOW_RUNS runs, at most ${SEARCH_MLFLOW_POPULATE_LIMIT}s)"
  start_server mlflow
  "$PY" "$BENCH/search_bench.py" --url "$SERVER_URL" --sizes "$SEARCH_MLFLOW_RUNS" --workers "$WORKERS" \
    --queries "$SEARCH_QUERIES" --max-query-seconds "$SEARCH_MLFLOW_QUERY_SECONDS" \
    --max-populate-seconds "$SEARCH_MLFLOW_POPULATE_LIMIT" --out "$RES/search-mlflow.json" >&2 \
    || note "search benchmark against mlflow failed (see stderr above)"
  finish_server MLflow search
  # Loom is measured at the size MLflow reached (apples to apples) and then at the full size.
  ml_runs="$("$PY" -c 'import json, sys
try:
    s = json.load(open(sys.argv[1]))["stages"]; print(max(x["runs"] for x in s) if s else 0)
except Exception:
    print(0)' "$RES/search-mlflow.json")"
  sizes="$SEARCH_LOOM_RUNS"
  if [ "$ml_runs" -gt 0 ] && [ "$ml_runs" -lt "$SEARCH_LOOM_RUNS" ]; then sizes="$ml_runs,$SEARCH_LOOM_RUNS"; fi
  log "search: loom (populate to $sizes runs, at most ${SEARCH_LOOM_POPULATE_LIMIT}s)"
  start_server loom
  "$PY" "$BENCH/search_bench.py" --url "$SERVER_URL" --sizes "$sizes" --workers "$WORKERS" \
    --queries "$SEARCH_QUERIES" --max-query-seconds 120 \
    --max-populate-seconds "$SEARCH_LOOM_POPULATE_LIMIT" --out "$RES/search-loom.json" >&2 \
    || note "search benchmark against loom failed (see stderr above)"
  finish_server Loom search
fi

# --- Report -------------------------------------------------------------------------------------
mkdir -p "$BENCH/results"
"$PY" "$BENCH/report.py" "$RES" >"$BENCH/results/latest.md"
rm -rf "$BENCH/results/latest"
cp -r "$RES" "$BENCH/results/latest"
cat "$BENCH/results/latest.md"
log "report written to bench/results/latest.md (raw JSON in bench/results/latest/)"
