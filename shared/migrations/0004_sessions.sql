-- Browser sessions of the web UI, written by the api. The cookie carries a random value;
-- only its SHA-256 is kept, so this table gives no session away.

CREATE TABLE sessions (
    id_hash     bytea PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
