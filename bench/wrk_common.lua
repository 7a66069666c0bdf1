-- Shared part of the wrk scripts (loaded with dofile by log_metric.lua and log_batch.lua).
--
-- Environment: RUN_ID (required), WRK_RESULT (file that done() writes one JSON object to).
-- Each wrk thread numbers its requests so that every request logs new metric points
-- (distinct step and value), and counts non-200 answers, keeping the first few bodies verbatim.

local M = {}

local threads = {}
local counter = 0
M.thread_id = 0

function M.setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function M.init(args)
  M.thread_id = thread_id or 0
  bad = 0
  bad_samples = ""
end

function M.next_step()
  counter = counter + 1
  return M.thread_id * 100000000 + counter
end

function M.response(status, headers, body)
  if status ~= 200 then
    bad = bad + 1
    if bad <= 3 then
      local b = (body or ""):sub(1, 300):gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", "\\n"):gsub("\r", "")
      bad_samples = bad_samples .. string.format('{"status": %d, "body": "%s"},', status, b)
    end
  end
end

function M.done(summary, latency, requests)
  local non200, samples = 0, ""
  for _, t in ipairs(threads) do
    non200 = non200 + (t:get("bad") or 0)
    samples = samples .. (t:get("bad_samples") or "")
  end
  samples = samples:gsub(",$", "")
  local e = summary.errors
  local secs = summary.duration / 1e6
  local json = string.format(
    '{"requests": %d, "duration_s": %.3f, "rps": %.1f, "bytes": %d, ' ..
    '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"non200": %d, "non200_samples": [%s]}',
    summary.requests, secs, summary.requests / secs, summary.bytes,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout, non200, samples)
  local path = os.getenv("WRK_RESULT")
  if path and path ~= "" then
    local f = assert(io.open(path, "w"))
    f:write(json, "\n")
    f:close()
  end
  io.write("WRK_JSON ", json, "\n")
end

return M
