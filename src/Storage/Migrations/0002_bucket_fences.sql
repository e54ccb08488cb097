-- Online shard moves (ARCHITECTURE.md §9).

-- A row here means: this shard no longer takes writes for the bucket (a move fenced it, and after the flip another
-- shard owns it). Every local write and replicated apply takes the bucket's advisory lock shared and refuses a fenced
-- bucket inside its transaction; the mover takes the lock exclusively to insert the row, so once the fence commits no
-- write that missed it can still be in flight. A move onto this shard deletes the row (the target is never fenced).
CREATE TABLE bucket_fences (
    bucket    int         PRIMARY KEY,
    move_id   text        NOT NULL,
    epoch     bigint      NOT NULL,
    fenced_at timestamptz NOT NULL
);

-- Durable progress of the moves whose source is this shard, so `geoctl shards apply` resumes where it stopped.
-- The directory's move record holds the phase (begun, fenced, flipped, completed, cancelled); this row holds the rest.
CREATE TABLE shard_move_progress (
    move_id       text        PRIMARY KEY,
    region        text        NOT NULL,
    source_shard  text        NOT NULL,
    target_shard  text        NOT NULL,
    buckets       int[]       NOT NULL,
    step          text        NOT NULL,
    copy_seq      bigint      NULL,     -- change-log seq of the copy's snapshot: catch-up replays what came after it
    caught_up_seq bigint      NULL,     -- last source change-log seq applied to the target
    rows_copied   bigint      NOT NULL DEFAULT 0,
    changes_applied bigint    NOT NULL DEFAULT 0,
    fenced_at     timestamptz NULL,
    flipped_at    timestamptz NULL,
    pause_ms      double precision NULL, -- fence -> flip: how long writes to the buckets waited
    rows_cleaned  bigint      NULL,
    verified      text        NULL,
    completed_at  timestamptz NULL,
    updated_at    timestamptz NOT NULL
);
