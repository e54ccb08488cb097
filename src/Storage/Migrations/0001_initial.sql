-- Per-shard schema (ARCHITECTURE.md §6). Versions are (hlc bigint, origin text), compared as a pair.
-- Names and origins use COLLATE "C": paging, digests and version order must not depend on the database locale.

-- Documents: last-writer-wins registers; a delete is a tombstone (deleted, body NULL) that keeps its version.
-- prev_version_* is the version the writer replaced: a causal hint that tells a conflict from a fast-forward.
CREATE TABLE documents (
    user_id             text COLLATE "C" NOT NULL,
    collection          text COLLATE "C" NOT NULL,
    key                 text COLLATE "C" NOT NULL,
    bucket              int         NOT NULL,
    body                jsonb       NULL,
    deleted             boolean     NOT NULL DEFAULT false,
    version_hlc         bigint      NOT NULL,
    version_origin      text COLLATE "C" NOT NULL,
    prev_version_hlc    bigint      NULL,
    prev_version_origin text COLLATE "C" NULL,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (user_id, collection, key),
    CHECK (deleted = (body IS NULL))
);
CREATE INDEX documents_bucket ON documents (bucket, user_id, collection, key);

-- Counters: a PN counter per (user, name); each region grows only its own component; value = sum(incr) - sum(decr).
CREATE TABLE counters (
    user_id        text COLLATE "C" NOT NULL,
    name           text COLLATE "C" NOT NULL,
    region         text COLLATE "C" NOT NULL,
    bucket         int         NOT NULL,
    incr           bigint      NOT NULL DEFAULT 0 CHECK (incr >= 0),
    decr           bigint      NOT NULL DEFAULT 0 CHECK (decr >= 0),
    version_hlc    bigint      NOT NULL,
    version_origin text COLLATE "C" NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (user_id, name, region)
);
CREATE INDEX counters_bucket ON counters (bucket, user_id, name, region);

-- User erasure: the largest erase version seen. Documents older than it are tombstoned, counters restart from
-- zero, and older replicated writes (or counter components from an older erase epoch) are refused.
CREATE TABLE erased_users (
    user_id        text COLLATE "C" PRIMARY KEY,
    bucket         int         NOT NULL,
    version_hlc    bigint      NOT NULL,
    version_origin text COLLATE "C" NOT NULL,
    erased_at      timestamptz NOT NULL
);
CREATE INDEX erased_users_bucket ON erased_users (bucket);

-- The transactional outbox. Local writes append with origin = this region; replicated applies append with the
-- remote origin (so online moves can replay everything while senders ship only origin = local region).
-- Appends are serialized per shard (advisory lock up to commit), so seq order is commit order and a reader
-- never skips a row that commits later with a lower seq.
CREATE TABLE change_log (
    seq                 bigserial   PRIMARY KEY,
    bucket              int         NOT NULL,
    user_id             text COLLATE "C" NOT NULL,
    kind                text        NOT NULL CHECK (kind IN ('doc', 'counter', 'user_erase')),
    collection          text COLLATE "C" NULL,
    key                 text COLLATE "C" NULL,
    counter_name        text COLLATE "C" NULL,
    counter_region      text COLLATE "C" NULL,
    body                jsonb       NULL,
    deleted             boolean     NOT NULL DEFAULT false,
    incr                bigint      NULL,
    decr                bigint      NULL,
    version_hlc         bigint      NOT NULL,
    version_origin      text COLLATE "C" NOT NULL,
    prev_version_hlc    bigint      NULL,
    prev_version_origin text COLLATE "C" NULL,
    erase_hlc           bigint      NULL,
    erase_origin        text COLLATE "C" NULL,
    origin              text COLLATE "C" NOT NULL,
    created_at          timestamptz NOT NULL
);
CREATE INDEX change_log_origin_seq ON change_log (origin, seq);
CREATE INDEX change_log_bucket_seq ON change_log (bucket, seq);

-- Idempotency records, scoped per user. A claim token guards completion so a stale holder cannot complete.
CREATE TABLE idempotency (
    user_id          text        NOT NULL,
    key              text        NOT NULL,
    request_hash     bytea       NOT NULL,
    state            text        NOT NULL CHECK (state IN ('in_flight', 'done')),
    claim_token      uuid        NOT NULL,
    status           int         NULL,
    response_body    text        NULL,
    response_headers jsonb       NULL,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_expires_at ON idempotency (expires_at);

-- How far this shard has applied each peer's stream (or shipped to it; the stream name says which).
CREATE TABLE replication_checkpoints (
    peer       text        NOT NULL,
    stream     text        NOT NULL,
    last_seq   bigint      NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (peer, stream)
);

-- Conflict log: concurrent values, one of which lost. Unique so redelivery does not log the same conflict twice.
CREATE TABLE conflicts (
    id                 bigserial   PRIMARY KEY,
    bucket             int         NOT NULL,
    user_id            text COLLATE "C" NOT NULL,
    collection         text COLLATE "C" NOT NULL,
    key                text COLLATE "C" NOT NULL,
    winner_version_hlc bigint      NOT NULL,
    winner_origin      text COLLATE "C" NOT NULL,
    loser_version_hlc  bigint      NOT NULL,
    loser_origin       text COLLATE "C" NOT NULL,
    winner_body        jsonb       NULL,
    loser_body         jsonb       NULL,
    winner_deleted     boolean     NOT NULL,
    loser_deleted      boolean     NOT NULL,
    detected_at        timestamptz NOT NULL,
    UNIQUE (user_id, collection, key, winner_version_hlc, winner_origin, loser_version_hlc, loser_origin)
);
CREATE INDEX conflicts_detected_at ON conflicts (detected_at);
