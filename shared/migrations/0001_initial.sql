-- Configuration, written by the api.

CREATE TABLE connectors (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('source', 'store', 'destination')),
    location    text NOT NULL,
    options     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (role, name)
);

CREATE TABLE tasks (
    id               uuid PRIMARY KEY,
    name             text,
    type             text NOT NULL CHECK (type IN ('backup', 'restore', 'sync', 'check')),
    -- RESTRICT: a connector a task uses cannot be deleted (the api answers 409).
    source_id        uuid REFERENCES connectors (id) ON DELETE RESTRICT,
    store_id         uuid REFERENCES connectors (id) ON DELETE RESTRICT,
    destination_id   uuid REFERENCES connectors (id) ON DELETE RESTRICT,
    target_store_id  uuid REFERENCES connectors (id) ON DELETE RESTRICT,
    labels           text[] NOT NULL DEFAULT '{}',
    snapshot_id      text,
    snapshot_window  text,
    concurrency      integer CHECK (concurrency >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_source ON tasks (source_id);
CREATE INDEX tasks_store ON tasks (store_id);
CREATE INDEX tasks_destination ON tasks (destination_id);
CREATE INDEX tasks_target_store ON tasks (target_store_id);

-- Job history, written only by the history service from events.

CREATE TABLE jobs (
    id             uuid PRIMARY KEY,
    task_id        uuid NOT NULL,
    schedule_id    uuid,
    trigger        text NOT NULL,
    type           text NOT NULL,
    status         text NOT NULL,
    due_at         timestamptz NOT NULL,
    queued_at      timestamptz NOT NULL,
    started_at     timestamptz,
    finished_at    timestamptz,
    attempt        integer NOT NULL DEFAULT 0,
    runner         text,
    concurrency    integer,
    progress       jsonb NOT NULL DEFAULT '{"percent": null, "files": 0, "bytes": 0}',
    progress_seq   bigint NOT NULL DEFAULT 0,
    snapshot_id    text,
    exit_code      integer,
    error          text,
    reason         text,
    connector_ids  uuid[] NOT NULL DEFAULT '{}',
    -- The store the job reads or writes, for the snapshot link.
    store_id       uuid,
    -- Highest event seq applied to the job's state; older events change nothing.
    last_seq       bigint NOT NULL DEFAULT 0,
    -- A schedule fires once per instant, whatever happens to the schedulers.
    UNIQUE (schedule_id, due_at)
);
CREATE INDEX jobs_newest ON jobs (queued_at DESC, id DESC);
CREATE INDEX jobs_status_newest ON jobs (status, queued_at DESC, id DESC);
CREATE INDEX jobs_task_newest ON jobs (task_id, queued_at DESC, id DESC);
CREATE INDEX jobs_connectors ON jobs USING gin (connector_ids);
CREATE INDEX jobs_active ON jobs (task_id) WHERE status IN ('queued', 'running');

CREATE TABLE job_attempts (
    job_id       uuid NOT NULL,
    attempt      integer NOT NULL,
    runner       text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    status       text NOT NULL,
    exit_code    integer,
    error        text,
    PRIMARY KEY (job_id, attempt)
);

CREATE TABLE job_output (
    job_id  uuid NOT NULL,
    seq     bigint NOT NULL,
    ts      timestamptz NOT NULL,
    stream  text NOT NULL,
    line    text NOT NULL,
    PRIMARY KEY (job_id, seq)
);
