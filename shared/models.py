"""Domain and API types: connectors, tasks, jobs. Defined once, used by every service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from shared.durations import DURATION_PATTERN
from shared.excludes import EXCLUDE_PATTERN, MAX_EXCLUDE, MAX_EXCLUDES
from shared.freshness import FreshnessState
from shared.groups import GROUP_PATTERN
from shared.labels import LABEL_PATTERN, MAX_LABELS
from shared.lifecycle import JobStatus
from shared.locations import LOCATION_PATTERN, MAX_LOCATION, MAX_OPTION_VALUE, MAX_OPTIONS, Role
from shared.retention import MAX_COUNT
from shared.retries import MAX_ATTEMPTS
from shared.text import CONTROL, NOT_BLANK, ONE_LINE

TaskType = Literal["backup", "restore", "sync", "check", "prune"]
# The events a notification rule may tell (shared/notifications.py), and what each means.
NoticeKind = Literal["job.failed", "job.recovered", "freshness.lost", "freshness.restored"]
NOTICE_MEANINGS: dict[NoticeKind, str] = {
    "job.failed": "a job failed",
    "job.recovered": "a job succeeded after its task's previous run failed",
    "freshness.lost": "a task or connector went stale: no successful run within its window",
    "freshness.restored": "a stale task or connector is fresh again",
}
# What queued a job: an operator or a script (manual, a retry asked for included), a
# schedule, or a task's retry policy.
Trigger = Literal["manual", "schedule", "retry"]


def _stated(**schema: object) -> msgspec.Meta:
    """Constraints the OpenAPI document states for an input; the api's validation enforces
    them, answering 422 naming the field (msgspec does not check them on decoding)."""
    return msgspec.Meta(extra_json_schema={"extra": schema})


Name = Annotated[str, _stated(min_length=1, max_length=128, pattern=NOT_BLANK)]
Location = Annotated[str, _stated(min_length=1, max_length=MAX_LOCATION, pattern=LOCATION_PATTERN)]
OptionValue = Annotated[str, _stated(max_length=MAX_OPTION_VALUE, pattern=ONE_LINE)]
Options = Annotated[dict[str, OptionValue], _stated(max_properties=MAX_OPTIONS)]
Id = Annotated[str, _stated(format="uuid")]
Label = Annotated[str, _stated(min_length=1, max_length=64, pattern=LABEL_PATTERN)]
Labels = Annotated[list[Label], _stated(max_items=MAX_LABELS)]
# A snapshot id or a prefix of one; a path inside a snapshot, absolute.
SNAPSHOT_REF = r"^[0-9a-fA-F]{4,64}$"
SNAPSHOT_PATH = rf"^/[^{CONTROL}]*$"
SnapshotRef = Annotated[str, _stated(pattern=SNAPSHOT_REF)]
# What a restore restores: a folder (or a file) of the snapshot, an absolute path made of
# names, none of them `.` or `..` (a trailing `/` is dropped).
_SEGMENT = rf"(?:[^/{CONTROL}]{{3,}}|[^./{CONTROL}][^/{CONTROL}]?|\.[^./{CONTROL}])"
RESTORE_PATH = rf"^(?:/|(?:/{_SEGMENT})+/?)$"
MAX_RESTORE_PATH = 4096
RestorePath = Annotated[str, _stated(max_length=MAX_RESTORE_PATH, pattern=RESTORE_PATH)]
# Where a restore writes: a new folder of the destination, or over what the destination
# holds (see docs/api.md).
RestoreMode = Literal["new_folder", "overwrite"]
Window = Annotated[str, _stated(pattern=DURATION_PATTERN)]
Attempts = Annotated[int, _stated(minimum=1, maximum=MAX_ATTEMPTS)]


class RetryPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How many times a failed run of a task is tried again, each how long after the
    failure (a duration of 1 minute to 1 day, shared/retries.py)."""

    attempts: Attempts
    delay: Window


# A prune's retention counts (shared/retention.py).
RetentionCount = Annotated[int, _stated(minimum=1, maximum=MAX_COUNT)]


class Retention(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Which snapshots a prune keeps (shared/retention.py); at least one count is set."""

    days: RetentionCount | None = None
    per_hour: RetentionCount | None = None
    per_day: RetentionCount | None = None
    per_week: RetentionCount | None = None
    per_month: RetentionCount | None = None
    per_year: RetentionCount | None = None

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}


class PrunePlan(msgspec.Struct, kw_only=True):
    """What a prune would do now (POST /tasks/preview): full snapshot ids, newest first.
    Snapshots its labels do not select are in neither list: it leaves them alone."""

    keep: list[str]
    delete: list[str]


class PruneResult(msgspec.Struct, kw_only=True):
    """What a prune job kept and deleted: full snapshot ids, newest first. A job that
    failed part way lists only the snapshots plakar said it deleted."""

    kept: list[str]
    deleted: list[str]


# A backup's excludes (shared/excludes.py).
Exclude = Annotated[str, _stated(min_length=1, max_length=MAX_EXCLUDE, pattern=EXCLUDE_PATTERN)]
Excludes = Annotated[list[Exclude], _stated(max_items=MAX_EXCLUDES)]
Concurrency = Annotated[int, _stated(minimum=1, maximum=1024)]
# The runner group serving a task's jobs or a connector's actions (shared/groups.py).
GroupName = Annotated[str, _stated(min_length=1, max_length=32, pattern=GROUP_PATTERN)]


class Connector(msgspec.Struct, kw_only=True):
    id: str
    name: str
    role: Role
    location: str
    options: dict[str, str] = {}
    created_at: datetime
    # Stores: whether the store is initialized, as the control plane last learned it (an
    # initialize, a test, a job that succeeded with it); null: not known, or not a store.
    initialized: bool | None = None
    # The runners that act on it (test, initialize, snapshots, files); null: the default.
    runner_group: str | None = None
    # How recent its last successful job must be (shared/freshness.py), and whether it is
    # now; null: no rule.
    freshness: str | None = None
    freshness_state: FreshnessState | None = None


class ConnectorCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    role: Role
    location: Location
    options: Options = {}
    runner_group: GroupName | None = None
    freshness: Window | None = None


class ConnectorPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name | None = None
    location: Location | None = None
    # Merged into the stored options; a masked secret keeps its stored value,
    # an empty string removes the key.
    options: Options | None = None
    # Absent: kept; null: the default group.
    runner_group: GroupName | msgspec.UnsetType | None = msgspec.UNSET
    # Absent: kept; null: no rule.
    freshness: Window | msgspec.UnsetType | None = msgspec.UNSET


class RestorePoint(msgspec.Struct, kw_only=True, frozen=True):
    """What a restore task's snapshot holds at its path, learnt from the store when the
    task was saved (one snapshot never changes): its root (files keep their place below
    it) and whether the path is a folder or a file (plakar writes a folder's content into
    its target, a file itself). Its job then opens the store once, to restore."""

    root: str
    kind: Literal["directory", "file"]


class Task(msgspec.Struct, kw_only=True):
    id: str
    name: str | None = None
    type: TaskType
    source_id: str | None = None
    store_id: str | None = None
    destination_id: str | None = None
    target_store_id: str | None = None
    labels: list[str] = []
    # Backups: gitignore patterns of what to leave out.
    excludes: list[str] = []
    snapshot_id: str | None = None
    # Restores: the folder of the snapshot restored (null: all of it), and where it goes.
    restore_path: str | None = None
    restore_mode: RestoreMode | None = None
    # Restores of a chosen snapshot (read only); null: learnt by the job, from the store.
    restore_point: RestorePoint | None = None
    window: str | None = None
    concurrency: int | None = None
    # The runners that run its jobs; null: the default group.
    runner_group: str | None = None
    # Failed runs tried again; null: not.
    retry: RetryPolicy | None = None
    # How recent its last successful job must be, and whether it is now; null: no rule.
    freshness: str | None = None
    freshness_state: FreshnessState | None = None
    # Prunes: which snapshots it keeps.
    retention: Retention | None = None
    created_at: datetime

    def connector_ids(self) -> list[str]:
        ids = (self.source_id, self.store_id, self.destination_id, self.target_store_id)
        return [i for i in ids if i is not None]


class TaskCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: TaskType
    name: Name | None = None
    source_id: Id | None = None
    store_id: Id | None = None
    destination_id: Id | None = None
    target_store_id: Id | None = None
    labels: Labels = []
    # Backups only.
    excludes: Excludes = []
    snapshot_id: SnapshotRef | None = None
    restore_path: RestorePath | None = None
    # Restores only; absent: new_folder.
    restore_mode: RestoreMode | None = None
    window: Window | None = None
    concurrency: Concurrency | None = None
    runner_group: GroupName | None = None
    retry: RetryPolicy | None = None
    freshness: Window | None = None
    # Prunes only.
    retention: Retention | None = None
    # A prune deletes snapshots: it is saved only once the operator has seen its preview
    # and says so (and again when a change alters what it deletes). Not stored.
    confirm: bool = False


class TaskCreated(msgspec.Struct, kw_only=True):
    task: Task
    job_id: str | None


class RunStarted(msgspec.Struct, kw_only=True):
    job_id: str


class Progress(msgspec.Struct, kw_only=True):
    percent: float | None = None
    files: int = 0
    bytes: int = 0


class Job(msgspec.Struct, kw_only=True):
    id: str
    task_id: str
    schedule_id: str | None = None
    trigger: Trigger
    type: TaskType
    status: JobStatus
    due_at: datetime
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempt: int = 0
    runner: str | None = None
    concurrency: int | None = None
    progress: Progress = msgspec.field(default_factory=Progress)
    snapshot_id: str | None = None
    snapshot_url: str | None = None
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None
    connector_ids: list[str] = []
    # Bytes the job wrote to its store (plakar's result line; backup and check only).
    bytes_added: int | None = None
    # Scheduled jobs: their schedule in words (its `description`); null once it is deleted.
    schedule_description: str | None = None
    # The runner group it was queued for (null: the default group).
    runner_group: str | None = None
    # Queued jobs: why no runner has taken it yet, as far as the live runners tell
    # ("no runner of group b is live"); null: nothing stands in its way.
    waiting: str | None = None
    # The job it retries, and the job that retries it (null: none).
    retry_of: str | None = None
    retried_by: str | None = None
    # Prunes that got as far as deleting: what they kept and deleted.
    prune: PruneResult | None = None
    # The token that asked for it by hand (run, retry); null: its schedule or policy.
    requested_by: str | None = None


class JobPage(msgspec.Struct, kw_only=True):
    items: list[Job]
    next_cursor: str | None


class ErrorBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    error: str
    field: str | None = None


class ServiceInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    kind: str
    id: str
    host: str
    pid: int
    started_at: datetime
    # Runners: the jobs this very process is running now.
    jobs: list[str] = []
    # Runners: the concurrency it gives a job of each type that does not set one.
    concurrency: dict[str, int] = {}
    # Runners: the group whose jobs and actions it serves, and how many jobs it runs at once.
    group: str | None = None
    slots: int | None = None


class HealthStatus(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """GET /health without credentials: the status alone (the document says so, which
    tells it apart from Health)."""

    status: Literal["ok", "degraded"]


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok", "degraded"]
    nats: bool
    postgres: bool
    runners: list[ServiceInfo]
    # A runner answered a ping on the connector actions' subject just now.
    runners_answer: bool
    history: list[ServiceInfo]
    schedulers: list[ServiceInfo]
    active_scheduler: str | None


class ActionResult(msgspec.Struct, kw_only=True):
    """What a runner answers to a connector action (test, initialize)."""

    ok: bool
    message: str
    output: list[str] = []
    # Stores: whether the action found the store initialized (null: it could not tell).
    initialized: bool | None = None


class SnapshotInfo(msgspec.Struct, kw_only=True):
    id: str
    created_at: datetime
    tags: list[str]
    size: int | None
    root: str


FileKind = Literal["file", "directory", "symlink", "other"]


class FileEntry(msgspec.Struct, kw_only=True):
    name: str
    type: FileKind
    mode: str
    size: int | None
    modified_at: datetime
    target: str | None = None


class FileList(msgspec.Struct, kw_only=True):
    """A directory of a snapshot."""

    snapshot_id: str
    path: str
    entries: list[FileEntry]


class FilePreview(msgspec.Struct, kw_only=True):
    """The start of a file of a snapshot, shown when it is text."""

    snapshot_id: str
    path: str
    # The most a preview reads, in bytes.
    limit: int
    # Bytes read: the whole file, or `limit` when it is longer (`truncated`).
    size: int
    truncated: bool
    # Null when the file is not text (a NUL byte, or not UTF-8): it is not previewed.
    text: str | None


class TaskPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields to change on a task; absent fields keep their value, null clears."""

    name: Name | msgspec.UnsetType | None = msgspec.UNSET
    source_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    store_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    destination_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    target_store_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    labels: Labels | msgspec.UnsetType = msgspec.UNSET
    excludes: Excludes | msgspec.UnsetType = msgspec.UNSET
    snapshot_id: SnapshotRef | msgspec.UnsetType | None = msgspec.UNSET
    restore_path: RestorePath | msgspec.UnsetType | None = msgspec.UNSET
    restore_mode: RestoreMode | msgspec.UnsetType | None = msgspec.UNSET
    window: Window | msgspec.UnsetType | None = msgspec.UNSET
    concurrency: Concurrency | msgspec.UnsetType | None = msgspec.UNSET
    runner_group: GroupName | msgspec.UnsetType | None = msgspec.UNSET
    retry: RetryPolicy | msgspec.UnsetType | None = msgspec.UNSET
    freshness: Window | msgspec.UnsetType | None = msgspec.UNSET
    retention: Retention | msgspec.UnsetType | None = msgspec.UNSET
    # Needed when the change alters which snapshots a prune deletes.
    confirm: bool = False


class CancelRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /jobs/{id}/cancel (optional)."""

    # Who cancels, as the job's output will say; the caller's token's name when absent.
    by: Annotated[str, _stated(min_length=1, max_length=64, pattern=NOT_BLANK)] | None = None


class CancelAnswer(msgspec.Struct, kw_only=True):
    job_id: str
    # "cancelled": it had not started and never will; "cancelling": plakar is being
    # stopped and the job ends `cancelled` shortly.
    status: Literal["cancelled", "cancelling"]
    by: str
    at: datetime


# Schedules (recurrence maths in shared/recurrence.py)

Recurrence = Literal["twice_daily", "daily", "weekly", "every_30_days", "custom"]


Count = Annotated[int, _stated(minimum=0)]
# An instant to the minute, in UTC.
Minute = Annotated[datetime, _stated(pattern=r"T\d\d:\d\d(:00(\.0+)?)?(Z|[+-]00:?00)$")]


class Interval(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    days: Count = 0
    hours: Count = 0
    minutes: Count = 0


class Schedule(msgspec.Struct, kw_only=True):
    id: str
    task_id: str
    recurrence: Recurrence
    # Also given for named recurrences (daily: 1 day), normalised (36h: 1 day 12 hours).
    interval: Interval
    start_at: datetime | None
    journalised: bool
    enabled: bool
    # Null while disabled.
    next_run_at: datetime | None
    last_run_at: datetime | None
    created_at: datetime
    # In words, as the UI shows it: "Every 2 min", "Daily at 02:30 UTC", "Every Monday at
    # 02:30 UTC" (the time of day of its next run, else its last run, else its start).
    description: str


class ScheduleCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    recurrence: Recurrence
    # Only with `custom`.
    interval: Interval | None = None
    # UTC, to the minute; absent: the schedule starts at once.
    start_at: Minute | None = None
    journalised: bool = True
    enabled: bool = True


class SchedulePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields to change on a schedule; absent fields keep their value."""

    recurrence: Recurrence | msgspec.UnsetType = msgspec.UNSET
    interval: Interval | msgspec.UnsetType | None = msgspec.UNSET
    start_at: Minute | msgspec.UnsetType | None = msgspec.UNSET
    journalised: bool | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class TaskCreateWithSchedules(TaskCreate, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /tasks: a task with schedules does not run one-off."""

    schedules: list[ScheduleCreate] = []


class UpcomingRun(msgspec.Struct, kw_only=True):
    schedule_id: str
    task_id: str
    at: datetime


class ConnectorJobs(msgspec.Struct, kw_only=True):
    """A connector's dashboard: its newest jobs and the runs coming in the next 30 days."""

    past: list[Job]
    upcoming: list[UpcomingRun]
    # Every run up to this instant is listed: 30 days ahead, or less when the list is
    # capped (100 runs).
    upcoming_until: datetime


class OptionInfo(msgspec.Struct, kw_only=True):
    key: str
    secret: bool
    help: str
    pattern: str | None = None


class ConnectorKind(msgspec.Struct, kw_only=True):
    kind: str
    # A location of this kind begins with one of these.
    prefixes: list[str]
    example: str
    # The options each role takes with this kind (absent role: not allowed).
    options: dict[str, list[OptionInfo]]


class ConnectorRules(msgspec.Struct, kw_only=True):
    """What connectors the api accepts (the `connectors` of GET /rules)."""

    kinds: list[ConnectorKind]
    # Option keys whose values are not secrets; every other value is masked.
    non_secret: list[str]
    # When set, every location must be under one of these.
    allowed_paths: list[str]
    max_location: int
    max_option_value: int
    max_options: int


class SlotInfo(msgspec.Struct, kw_only=True):
    field: str
    role: Role
    label: str


class TaskKind(msgspec.Struct, kw_only=True):
    type: TaskType
    description: str
    slots: list[SlotInfo]


class JobState(msgspec.Struct, kw_only=True):
    status: JobStatus
    label: str
    # The job has ended (no event moves it any more).
    terminal: bool
    # An operator may retry a job in this state (POST /jobs/{id}/retry).
    retryable: bool


class RunnerGroupRules(msgspec.Struct, kw_only=True):
    """What a runner group's name may be (the `runner_groups` of GET /rules)."""

    pattern: str
    description: str
    # The group of tasks and connectors that name none.
    default: str


class RunnerGroup(msgspec.Struct, kw_only=True):
    """A group with live runners (GET /runner-groups)."""

    name: str
    runners: int
    # Jobs its runners run at once, at most, and now.
    slots: int
    running: int


class RetentionRule(msgspec.Struct, kw_only=True):
    key: str
    help: str


class RetentionRules(msgspec.Struct, kw_only=True):
    """A prune's retention counts (the `retention` of GET /rules): each from 1 to `max`."""

    counts: list[RetentionRule]
    max: int


class RoleInfo(msgspec.Struct, kw_only=True):
    role: str
    may: str


class Rules(msgspec.Struct, kw_only=True):
    """The rules the api applies, for forms and tools (GET /rules): connectors, the task
    types and the connectors each takes, the states of a job, runner groups' names, a
    prune's retention counts."""

    connectors: ConnectorRules
    tasks: list[TaskKind]
    job_states: list[JobState]
    runner_groups: RunnerGroupRules
    retention: RetentionRules
    # The events a notification rule may tell.
    notifications: list[NoticeKindInfo]
    # The roles a token may have, from the least to the most rights.
    roles: list[RoleInfo]


# Notifications (shared/notifications.py, docs/notifications.md)

TargetKind = Literal["webhook", "email"]
# An address as SMTP carries it: no name, no comment, no blank or control character.
EMAIL_ADDRESS = r"^[^@\s<>()\[\],;:\\\"]{1,64}@[A-Za-z0-9.-]{1,253}$"
EmailAddress = Annotated[str, _stated(max_length=254, pattern=EMAIL_ADDRESS)]
MAX_RECIPIENTS = 20
Port = Annotated[int, _stated(minimum=1, maximum=65535)]
Credential = Annotated[str, _stated(min_length=1, max_length=256, pattern=ONE_LINE)]
WebhookUrl = Annotated[str, _stated(min_length=1, max_length=2048, pattern=r"^https?://")]


class SmtpServer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where an email target's mail goes; `password` is answered masked."""

    host: Annotated[str, _stated(min_length=1, max_length=253)]
    port: Port = 587
    username: Credential | None = None
    password: Credential | None = None
    # Upgrade to TLS (STARTTLS) before signing in; off only for a server on this host.
    starttls: bool = True


class NotificationTarget(msgspec.Struct, kw_only=True):
    """A webhook (`url`, `secret`) or email (`to`, `smtp`) target. Answered masked: the
    secret, the SMTP password, and a webhook URL beyond its origin (its path often holds a
    token)."""

    id: str
    name: str
    kind: TargetKind
    url: str | None = None
    secret: str | None = None
    to: list[str] | None = None
    smtp: SmtpServer | None = None
    created_at: datetime


class TargetCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    kind: TargetKind
    url: WebhookUrl | None = None
    # Signs each webhook delivery (X-Plakar-Signature); none: unsigned.
    secret: Credential | None = None
    to: Annotated[list[EmailAddress], _stated(min_items=1, max_items=MAX_RECIPIENTS)] | None = None
    smtp: SmtpServer | None = None


class TargetPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields to change; a masked value (as answered) keeps the stored one."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    url: WebhookUrl | msgspec.UnsetType = msgspec.UNSET
    secret: Credential | msgspec.UnsetType | None = msgspec.UNSET
    to: (
        Annotated[list[EmailAddress], _stated(min_items=1, max_items=MAX_RECIPIENTS)]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    smtp: SmtpServer | msgspec.UnsetType = msgspec.UNSET


NoticeKinds = Annotated[list[NoticeKind], _stated(min_items=1)]


class NotificationRule(msgspec.Struct, kw_only=True):
    """Which events go to which target: those of one task, of one connector (its jobs,
    its freshness), or of all (both null)."""

    id: str
    target_id: str
    events: list[NoticeKind]
    task_id: str | None = None
    connector_id: str | None = None
    created_at: datetime


class RuleCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    target_id: Id
    events: NoticeKinds
    task_id: Id | None = None
    connector_id: Id | None = None


class RulePatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    target_id: Id | msgspec.UnsetType = msgspec.UNSET
    events: NoticeKinds | msgspec.UnsetType = msgspec.UNSET
    task_id: Id | msgspec.UnsetType | None = msgspec.UNSET
    connector_id: Id | msgspec.UnsetType | None = msgspec.UNSET


class DeliveryAttempt(msgspec.Struct, kw_only=True):
    attempt: int
    at: datetime
    ok: bool
    # "HTTP 204", "HTTP 500", "timed out", "250 OK", …
    detail: str


DeliveryStatus = Literal["pending", "delivered", "failed"]


class Delivery(msgspec.Struct, kw_only=True):
    """One event sent to one target: every attempt, and the next one while pending."""

    id: str
    event_id: str
    kind: NoticeKind
    target_id: str
    status: DeliveryStatus
    attempts: list[DeliveryAttempt]
    next_at: datetime | None
    created_at: datetime


class TestSent(msgspec.Struct, kw_only=True):
    """The answer to POST /notifications/targets/{id}/test."""

    ok: bool
    detail: str


class NoticeKindInfo(msgspec.Struct, kw_only=True):
    kind: NoticeKind
    meaning: str


# API tokens and their roles (services/api/roles.py, docs/api.md)

# What a token may do: read (viewer), also run and stop jobs (operator), everything (admin).
AccessRole = Literal["viewer", "operator", "admin"]


class ApiToken(msgspec.Struct, kw_only=True):
    """A token as listed: never the token itself (only its hash is kept)."""

    id: str
    name: str
    role: AccessRole
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    role: AccessRole


class TokenCreated(msgspec.Struct, kw_only=True):
    """The answer to POST /tokens: the token, shown this once."""

    id: str
    name: str
    role: AccessRole
    token: str


class AuditRecord(msgspec.Struct, kw_only=True):
    """One change made through the api (GET /audit): who, when, what, and the object
    before and after it (null: it did not exist, or the action changes no field)."""

    seq: int
    at: datetime
    token_id: str | None
    token_name: str
    role: AccessRole
    via: Literal["token", "session"]
    # "<kind>.<verb>": connector.create, task.run, job.cancel, token.revoke, session.open, …
    action: str
    object_kind: str
    object_id: str | None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class AuditPage(msgspec.Struct, kw_only=True):
    items: list[AuditRecord]
    next_cursor: str | None
