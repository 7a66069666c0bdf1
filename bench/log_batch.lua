-- wrk script: POST /api/2.0/mlflow/runs/log-batch with 10 metric points (keys b0..b9, a new
-- step per request).
--   RUN_ID=<run id> WRK_RESULT=out.json wrk -t2 -c16 -d15s --latency -s bench/log_batch.lua URL
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
wrk.path = "/api/2.0/mlflow/runs/log-batch"
wrk.headers["Content-Type"] = "application/json"

function request()
  local step = c.next_step()
  local parts = {}
  for k = 0, 9 do
    parts[#parts + 1] = string.format('{"key": "b%d", "value": %.6f, "timestamp": %d, "step": %d}',
      k, ((step + k) % 1000) / 1000, ts, step)
  end
  local body = string.format('{"run_id": "%s", "metrics": [%s]}', run_id, table.concat(parts, ", "))
  return wrk.format(nil, nil, nil, body)
end
