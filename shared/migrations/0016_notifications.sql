-- Notifications. Targets (a webhook, or email over SMTP) and rules (which events go to
-- which target, for a task or a connector or all). The events rules may notify are
-- written where they are decided, once each (keyed by event id): a job's failure or
-- recovery by the history as it projects the job's end, a freshness change by the
-- scheduler as it journals it. The api fans each out to the targets of the rules it
-- matches (a delivery per event and target) and delivers, recording every attempt.

CREATE TABLE notification_targets (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('webhook', 'email')),
    url         text,
    secret      text,
    email_to    text[],
    smtp        jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'webhook') = (url IS NOT NULL)),
    CHECK ((kind = 'email') = (email_to IS NOT NULL AND smtp IS NOT NULL))
);

CREATE TABLE notification_rules (
    id            uuid PRIMARY KEY,
    target_id     uuid NOT NULL REFERENCES notification_targets ON DELETE CASCADE,
    events        text[] NOT NULL,
    task_id       uuid REFERENCES tasks ON DELETE CASCADE,
    connector_id  uuid REFERENCES connectors ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_rules_target ON notification_rules (target_id);

CREATE TABLE notification_events (
    event_id       uuid PRIMARY KEY,
    kind           text NOT NULL,
    at             timestamptz NOT NULL,
    task_id        uuid,
    connector_ids  uuid[] NOT NULL DEFAULT '{}',
    body           jsonb NOT NULL,
    fanned_out     boolean NOT NULL DEFAULT false
);
CREATE INDEX notification_events_new ON notification_events (at) WHERE NOT fanned_out;

CREATE TABLE notification_deliveries (
    id          uuid PRIMARY KEY,
    event_id    uuid NOT NULL REFERENCES notification_events ON DELETE CASCADE,
    target_id   uuid NOT NULL REFERENCES notification_targets ON DELETE CASCADE,
    status      text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts    int NOT NULL DEFAULT 0,
    next_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, target_id)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_at)
    WHERE status = 'pending';
CREATE INDEX notification_deliveries_of_target ON notification_deliveries (target_id, created_at);

CREATE TABLE notification_attempts (
    delivery_id  uuid NOT NULL REFERENCES notification_deliveries ON DELETE CASCADE,
    attempt      int NOT NULL,
    at           timestamptz NOT NULL,
    ok           boolean NOT NULL,
    detail       text NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

GRANT SELECT, INSERT, UPDATE, DELETE
    ON notification_targets, notification_rules, notification_events,
       notification_deliveries, notification_attempts
    TO plakar_api;
-- Writers of events only: neither reads a target (nor its secret).
GRANT INSERT ON notification_events TO plakar_history, plakar_scheduler;
-- The history names the task of a job it tells of.
GRANT SELECT (id, name, type) ON tasks TO plakar_history;
