-- The audit trail: every change made through the api, by whom (the token, its role, and
-- whether through a UI session), what (an action on an object) and the object before and
-- after (secrets masked). The api may add records and read them, never change or delete
-- one. A job asked for by hand names the token that asked.

CREATE TABLE audit_log (
    seq          bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    token_id     uuid,
    token_name   text NOT NULL,
    role         text NOT NULL,
    via          text NOT NULL CHECK (via IN ('token', 'session')),
    action       text NOT NULL,
    object_kind  text NOT NULL,
    object_id    text,
    before       jsonb,
    after        jsonb
);
CREATE INDEX audit_by_object ON audit_log (object_kind, object_id, seq DESC);

GRANT SELECT, INSERT ON audit_log TO plakar_api;
GRANT USAGE ON SEQUENCE audit_log_seq_seq TO plakar_api;

ALTER TABLE jobs ADD COLUMN requested_by text;
