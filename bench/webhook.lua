-- wrk script of bench/webhook.sh: POSTs one GitHub delivery (the body in $BENCH_BODY, signed as
-- $BENCH_SIGNATURE) with a fresh X-GitHub-Delivery per request, so every request is a new
-- delivery to store; prints a JSON summary line at the end.

local body_file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
local body = body_file:read("*a")
body_file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = os.getenv("BENCH_EVENT") or "pull_request"
wrk.headers["X-Hub-Signature-256"] = os.getenv("BENCH_SIGNATURE")
wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local counter = 0
local prefix = os.getenv("BENCH_RUN") or "run"

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. "-" .. tid .. "-" .. counter
  return wrk.format(nil, os.getenv("BENCH_PATH"))
end

status_counts = {}

function response(status, headers, body)
  status_counts[status] = (status_counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local statuses = {}
  for _, t in ipairs(threads) do
    local counts = t:get("status_counts")
    for code, n in pairs(counts) do
      statuses[code] = (statuses[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(statuses) do
    table.insert(parts, string.format('"%d": %d', code, n))
  end
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f, "socket_errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", ")))
end
