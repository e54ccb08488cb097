-- wrk -s bench/wrk-report.lua: one line "RESULT req/s p50_us p99_us errors" at the end of a run (used by the bench scripts).
done = function(summary, latency, requests)
  local bad = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.0f %.0f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), bad))
end
