-- Idempotency keys of user creation (POST /v1/users with Idempotency-Key). A create has no user to scope its key to,
-- so the key is scoped to the region's directory: the key row and the user row commit in one transaction, and a
-- retried create returns the first user instead of making a second one. Rows expire after their TTL.
CREATE TABLE directory_create_keys (
    idempotency_key text COLLATE "C" PRIMARY KEY,
    request_hash    bytea       NOT NULL,
    user_id         text COLLATE "C" NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL
);

CREATE INDEX directory_create_keys_expiry ON directory_create_keys (expires_at);
