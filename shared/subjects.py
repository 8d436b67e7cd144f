"""NATS names: streams, subjects, consumers and key-value buckets."""

JOBS_STREAM = "PLAKAR_JOBS"
JOB_DUE = "plakar.jobs.due"

EVENTS_STREAM = "PLAKAR_EVENTS"
EVENTS_ALL = "plakar.events.>"

RUNNERS_DURABLE = "runners"
# Where NATS says it gave up on a job message (delivered as often as the runners'
# consumer allows); the runners share a durable of this name on it too.
DEAD_JOBS_STREAM = "PLAKAR_DEAD_JOBS"
MAX_DELIVERIES_ADVISORY = (
    f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.{RUNNERS_DURABLE}"
)
HISTORY_DURABLE = "history"

RPC_CONNECTOR = "plakar.rpc.connector"
RUNNERS_QUEUE = "runners"

# Who holds a job: one key per job, so two runners never run one job at once.
CLAIMS_BUCKET = "plakar_claims"
# Live services: one key per process, expiring unless refreshed.
SERVICES_BUCKET = "plakar_services"
SCHEDULER_LEASE_BUCKET = "plakar_scheduler_lease"
SCHEDULER_LEASE_KEY = "leader"


def job_event(job_id: str, kind: str) -> str:
    return f"plakar.events.job.{job_id}.{kind}"


def job_events(job_id: str) -> str:
    return f"plakar.events.job.{job_id}.>"


def schedule_event(schedule_id: str, kind: str) -> str:
    return f"plakar.events.schedule.{schedule_id}.{kind}"
