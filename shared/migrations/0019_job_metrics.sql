-- What GET /metrics tells of the jobs, kept as the jobs are written rather than counted
-- at each scrape (a scrape of a million jobs read them all: seconds). A trigger on jobs,
-- whoever writes them, notes in the same transaction what a job adds (its lateness when
-- a schedule queued it, its status and duration when it ends) as rows of its own; the
-- writer folds them into the totals at the end of its transaction (metric_fold: one
-- update per total, where updating a total per job would make a batch of a thousand jobs
-- walk a thousand versions of one row). Counts only grow: a job removed from the history
-- stays counted, as Prometheus counters want.

-- The bounds of each histogram's buckets (seconds), its one definition: the api reads
-- them from here.
CREATE TABLE metric_bounds (
    metric  text PRIMARY KEY,
    bounds  float8[] NOT NULL
);
INSERT INTO metric_bounds VALUES
    -- From a job's start to its end: from a quick check to a day-long first backup.
    ('job_duration_seconds', '{1,5,15,30,60,120,300,600,1800,3600,7200,14400,43200,86400}'),
    -- From a scheduled job's due instant to its firing.
    ('scheduler_lateness_seconds', '{0.05,0.1,0.25,0.5,1,2.5,5,10,30,60,300}');

-- Observations per bucket (not cumulative; the last one past every bound), their count
-- and their sum, per metric and label (a job type, or '').
CREATE TABLE metric_histograms (
    metric  text NOT NULL REFERENCES metric_bounds,
    label   text NOT NULL,
    counts  bigint[] NOT NULL,
    total   bigint NOT NULL,
    sum     float8 NOT NULL,
    PRIMARY KEY (metric, label)
);

-- Jobs ended, by type and final status.
CREATE TABLE job_totals (
    type    text NOT NULL,
    status  text NOT NULL,
    n       bigint NOT NULL,
    PRIMARY KEY (type, status)
);

-- The bucket of `v`: the first whose bound it does not exceed (Prometheus' `le`).
CREATE FUNCTION metric_bucket(bounds float8[], v float8) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(min(i), array_length(bounds, 1) + 1)
    FROM generate_subscripts(bounds, 1) AS i WHERE v <= bounds[i]
$$;

-- What the jobs written add, not folded yet.
CREATE TABLE job_total_deltas (
    type    text NOT NULL,
    status  text NOT NULL
);
CREATE TABLE metric_deltas (
    metric  text NOT NULL,
    label   text NOT NULL,
    v       float8 NOT NULL
);

-- Adds the deltas to the totals, and removes them: called by the writer of jobs at the
-- end of each transaction (folding at once is safe: each delta is removed by one).
CREATE FUNCTION metric_fold() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH d AS (DELETE FROM job_total_deltas RETURNING type, status)
    INSERT INTO job_totals SELECT type, status, count(*) FROM d GROUP BY 1, 2
    ON CONFLICT (type, status) DO UPDATE SET n = job_totals.n + excluded.n;

    WITH d AS (DELETE FROM metric_deltas RETURNING metric, label, v),
    per_bucket AS (
        SELECT d.metric, d.label, metric_bucket(b.bounds, d.v) AS i, count(*) AS n,
               sum(d.v) AS s
        FROM d JOIN metric_bounds b USING (metric)
        GROUP BY 1, 2, 3
    )
    INSERT INTO metric_histograms
    SELECT p.metric, p.label,
           ARRAY(SELECT coalesce(sum(q.n), 0)::bigint
                 FROM generate_series(1, array_length(b.bounds, 1) + 1) AS k
                 LEFT JOIN per_bucket q
                   ON q.metric = p.metric AND q.label = p.label AND q.i = k
                 GROUP BY k ORDER BY k),
           sum(p.n), sum(p.s)
    FROM per_bucket p JOIN metric_bounds b USING (metric)
    GROUP BY p.metric, p.label, b.bounds
    ON CONFLICT (metric, label) DO UPDATE SET
        counts = ARRAY(SELECT a + e FROM unnest(metric_histograms.counts, excluded.counts)
                       WITH ORDINALITY AS t(a, e, k) ORDER BY k),
        total = metric_histograms.total + excluded.total,
        sum = metric_histograms.sum + excluded.sum;
END
$$;

-- The final statuses of a job (shared/lifecycle.py TERMINAL; a test checks they agree).
CREATE FUNCTION job_ended(status text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT status IN ('succeeded', 'failed', 'cancelled', 'skipped')
$$;

CREATE FUNCTION jobs_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.trigger = 'schedule' THEN
        INSERT INTO metric_deltas VALUES ('scheduler_lateness_seconds', '',
                                          EXTRACT(EPOCH FROM NEW.queued_at - NEW.due_at));
    END IF;
    IF job_ended(NEW.status) AND (TG_OP = 'INSERT' OR NOT job_ended(OLD.status)) THEN
        INSERT INTO job_total_deltas VALUES (NEW.type, NEW.status);
        IF NEW.started_at IS NOT NULL AND NEW.finished_at IS NOT NULL THEN
            INSERT INTO metric_deltas VALUES ('job_duration_seconds', NEW.type,
                                              EXTRACT(EPOCH FROM NEW.finished_at - NEW.started_at));
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- The jobs already in the history, counted once.
INSERT INTO job_total_deltas SELECT type, status FROM jobs WHERE job_ended(status);
INSERT INTO metric_deltas
SELECT 'job_duration_seconds', type, EXTRACT(EPOCH FROM finished_at - started_at)
FROM jobs WHERE job_ended(status) AND started_at IS NOT NULL AND finished_at IS NOT NULL;
INSERT INTO metric_deltas
SELECT 'scheduler_lateness_seconds', '', EXTRACT(EPOCH FROM queued_at - due_at)
FROM jobs WHERE trigger = 'schedule';
SELECT metric_fold();

CREATE TRIGGER jobs_count AFTER INSERT OR UPDATE OF status ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_count();

GRANT SELECT ON metric_bounds TO plakar_history, plakar_api;
GRANT SELECT, INSERT, UPDATE ON metric_histograms, job_totals TO plakar_history;
GRANT SELECT, INSERT, DELETE ON metric_deltas, job_total_deltas TO plakar_history;
GRANT SELECT ON metric_histograms, job_totals TO plakar_api;
