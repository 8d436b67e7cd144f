-- API tokens, each with a name and a role (viewer, operator, admin). Only a token's
-- SHA-256 is kept: it is shown once, when created. A revoked token stays, revoked (its
-- name and hash cannot come back). A UI session belongs to the token that opened it, and
-- has its role; revoking the token ends its sessions.

CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    role          text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    hash          bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

-- Sessions opened before tokens had roles had no token: they end (sign in again).
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN token_id uuid NOT NULL REFERENCES api_tokens ON DELETE CASCADE;

GRANT SELECT, INSERT, UPDATE ON api_tokens TO plakar_api;
