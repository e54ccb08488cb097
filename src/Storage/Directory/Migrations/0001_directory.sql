-- Directory database of one region: replicated user entries, the region's shard map with its history, and moves.

-- Users -> residency and home region. No personal data. Last writer wins on (version_hlc, version_origin).
-- change_seq is reassigned on every change, so reading "change_seq > N" yields the latest state of every changed entry.
CREATE SEQUENCE directory_user_change_seq;

CREATE TABLE directory_users (
    user_id        text COLLATE "C" PRIMARY KEY,
    residency      text        NOT NULL,
    home_region    text        NOT NULL,
    version_hlc    bigint      NOT NULL,
    version_origin text COLLATE "C" NOT NULL,
    deleted        boolean     NOT NULL DEFAULT false,
    change_seq     bigint      NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE UNIQUE INDEX directory_users_change_seq ON directory_users (change_seq);

-- The current map of each region: shards[owner_index[bucket + 1]] owns bucket (owner_index is 0-based into shards).
CREATE TABLE shard_maps (
    region         text        PRIMARY KEY,
    epoch          bigint      NOT NULL CHECK (epoch > 0),
    shards         text[]      NOT NULL,
    owner_index    integer[]   NOT NULL CHECK (cardinality(owner_index) = 4096),
    fenced_buckets integer[]   NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL
);

-- Every epoch a map ever had, written in the same transaction as shard_maps (durable before it is announced).
CREATE TABLE shard_map_history (
    region         text        NOT NULL,
    epoch          bigint      NOT NULL,
    shards         text[]      NOT NULL,
    owner_index    integer[]   NOT NULL,
    fenced_buckets integer[]   NOT NULL,
    reason         text        NOT NULL,
    move_id        text,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (region, epoch)
);

CREATE TABLE shard_moves (
    move_id       text        PRIMARY KEY,
    region        text        NOT NULL,
    buckets       integer[]   NOT NULL,
    source_shard  text        NOT NULL,
    target_shard  text        NOT NULL,
    phase         text        NOT NULL CHECK (phase IN ('begun', 'fenced', 'flipped', 'completed', 'cancelled')),
    begun_epoch   bigint      NOT NULL,
    fenced_epoch  bigint,
    flipped_epoch bigint,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE INDEX shard_moves_active ON shard_moves (region) WHERE phase IN ('begun', 'fenced', 'flipped');
