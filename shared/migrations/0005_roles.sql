-- One role per service, each with only the privileges it needs, none a superuser.
-- `plakar-cp migrate` gives them their passwords (a role without one cannot sign in);
-- only migrations run as a superuser.

DO $$
DECLARE
    role text;
BEGIN
    FOREACH role IN ARRAY ARRAY['plakar_api', 'plakar_scheduler', 'plakar_history', 'plakar_runner']
    LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE', role);
        END IF;
    END LOOP;
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO plakar_api, plakar_scheduler, plakar_history, plakar_runner;

-- The api writes the configuration and the UI's sessions, and reads the history.
GRANT SELECT, INSERT, UPDATE, DELETE ON connectors, tasks, schedules, sessions TO plakar_api;
GRANT SELECT ON schedule_journal, jobs, job_attempts, job_output, job_connectors TO plakar_api;

-- The scheduler reads the schedules, their tasks and active jobs, and keeps its journal.
GRANT SELECT ON schedules, tasks, jobs TO plakar_scheduler;
GRANT SELECT, INSERT, UPDATE ON schedule_journal TO plakar_scheduler;

-- The history projects the events.
GRANT SELECT, INSERT, UPDATE ON jobs, job_attempts, job_output, job_connectors TO plakar_history;

-- A runner reads the connectors of the jobs it runs, nothing else.
GRANT SELECT ON connectors TO plakar_runner;
