-- wrk script: POST /api/2.0/mlflow/runs/log-metric, one new point of metric "m" per request.
--   RUN_ID=<run id> WRK_RESULT=out.json wrk -t2 -c16 -d15s --latency -s bench/log_metric.lua URL
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "wrk_common.lua")
local run_id = assert(os.getenv("RUN_ID"), "RUN_ID is not set")
local ts = os.time() * 1000

setup = c.setup
response = c.response
done = c.done

function init(args)
  c.init(args)
end

wrk.method = "POST"
wrk.path = "/api/2.0/mlflow/runs/log-metric"
wrk.headers["Content-Type"] = "application/json"

function request()
  local step = c.next_step()
  local body = string.format(
    '{"run_id": "%s", "run_uuid": "%s", "key": "m", "value": %.6f, "timestamp": %d, "step": %d}',
    run_id, run_id, (step % 1000) / 1000, ts, step)
  return wrk.format(nil, nil, nil, body)
end
