-- Tracing (issue 15): the W3C traceparent of the request that wrote a change, so the replicator's send and the
-- peer's apply join the writer's trace. NULL for changes written outside a trace and for rows before this migration.
ALTER TABLE change_log ADD COLUMN trace_parent text NULL;
