-- Retention (issue 13): tombstones are collected once every replica acknowledged them plus a grace period. A
-- collected tombstone must not let an older write of its key come back (a late replica, anti-entropy), so each bucket
-- keeps the largest version it collected: a replicated document write at or below its bucket's floor for a key this
-- shard no longer holds is skipped. One row per bucket at most (4096), no user ids, collection or key names.
CREATE TABLE tombstone_floors (
    bucket       int         PRIMARY KEY,
    floor_hlc    bigint      NOT NULL,
    floor_origin text COLLATE "C" NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- The collector looks for old tombstones only.
CREATE INDEX documents_tombstones ON documents (version_hlc) WHERE deleted;
