"""NATS names: streams, subjects, consumers and key-value buckets."""

JOBS_STREAM = "PLAKAR_JOBS"
# Job-due messages, one subject per runner group (shared/groups.py); JOB_DUE is the
# default group's.
JOBS_DUE_ALL = "plakar.jobs.due.>"
JOB_DUE = "plakar.jobs.due.default"

EVENTS_STREAM = "PLAKAR_EVENTS"
EVENTS_ALL = "plakar.events.>"

RUNNERS_DURABLE = "runners"
# Where NATS says it gave up on a job message (delivered as often as a group's runners'
# consumer allows); the runners of every group share a durable of this name on it.
DEAD_JOBS_STREAM = "PLAKAR_DEAD_JOBS"
MAX_DELIVERIES_ADVISORY = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.*"
HISTORY_DURABLE = "history"

# Connector actions, one subject per runner group; RPC_CONNECTOR is the default group's.
RPC_CONNECTOR_ALL = "plakar.rpc.connector.*"
RPC_CONNECTOR = "plakar.rpc.connector.default"
RUNNERS_QUEUE = "runners"

# Who holds a job: one key per job, so two runners never run one job at once.
CLAIMS_BUCKET = "plakar_claims"
# Live services: one key per process, expiring unless refreshed.
SERVICES_BUCKET = "plakar_services"
SCHEDULER_LEASE_BUCKET = "plakar_scheduler_lease"
SCHEDULER_LEASE_KEY = "leader"


_JOB_EVENT = "plakar.events.job."


def job_event(job_id: str, kind: str) -> str:
    return f"{_JOB_EVENT}{job_id}.{kind}"


def is_job_event(subject: str) -> bool:
    return subject.startswith(_JOB_EVENT)


def is_job_log(subject: str) -> bool:
    """Whether a subject is that of a job's lines (job_event(id, "log"))."""
    return is_job_event(subject) and subject.endswith(".log")


def job_events(job_id: str) -> str:
    return f"{_JOB_EVENT}{job_id}.>"


def schedule_event(schedule_id: str, kind: str) -> str:
    return f"plakar.events.schedule.{schedule_id}.{kind}"


def freshness_event(watched: str, watched_id: str, kind: str) -> str:
    """`kind` is `freshness.lost` or `freshness.restored`."""
    return f"plakar.events.freshness.{watched}.{watched_id}.{kind.removeprefix('freshness.')}"


# Runner groups: each has its job subject, its durable consumer on the jobs stream, and
# its connector actions' subject (the names are checked by shared/groups.py).


def job_due(group: str) -> str:
    return f"plakar.jobs.due.{group}"


def runners_durable(group: str) -> str:
    return f"{RUNNERS_DURABLE}-{group}"


def rpc_connector(group: str) -> str:
    return f"plakar.rpc.connector.{group}"


# A runner asks the api for the connectors of a job it holds (shared/rpc.py
# JobConnectors), under its group's subject: the api answers only for that group's jobs,
# so a runner group's NATS user reaches no other group's connectors. The api processes
# answer as one queue group.
RPC_JOB_CONNECTORS_ALL = "plakar.rpc.job.connectors.*"


def rpc_job_connectors(group: str) -> str:
    return f"plakar.rpc.job.connectors.{group}"


def group_of_subject(subject: str) -> str:
    """The runner group a per-group subject ends with."""
    return subject.rsplit(".", 1)[-1]


API_QUEUE = "api"
# Runners' reply subjects: apart from every other service's `_INBOX.`, so that a
# runner's NATS user may receive its replies and no other service's.
RUNNER_INBOX_PREFIX = "_INBOX_runner"
