"""Running one job: from a job-due message to the finished event.

Transport (NATS, the job's connectors as the api hands them over) comes in as
arguments; this module decides what plakar runs and what the job's outcome is.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from services.runner import plakar_args as pa
from services.runner import process
from services.runner.cache_daemon import CacheDaemons
from services.runner.concurrency import recommended_concurrency
from services.runner.outcome import Outcome, decide
from services.runner.plakar_cache import security_check_disabled
from services.runner.plakar_output import (
    OutputState,
    snapshot_of,
)
from services.runner.progress import ProgressTracker
from services.runner.prune_plan import PlanReader, PlanUnreadable, RemovalReader
from services.runner.restore_point import Located, StoreUnreadable, Unresolved, locate
from services.runner.workspace import workspace
from shared import connector_check
from shared.durations import DurationError, parse_duration
from shared.events import JobDue, JobFinished, JobStarted, utcnow
from shared.job_events import JobEventSink
from shared.locations import Policy, excluded_from, ignore_pattern, local_path
from shared.models import Connector, PruneResult, RestorePoint
from shared.secrets import redact, secret_values

log = logging.getLogger("plakar_cp.runner")


@dataclass
class Cancellation:
    """Set by the transport when someone cancels the running job. `settled` is the job's
    side: plakar is done and the outcome known, so a stopping runner lets the job report
    it rather than interrupt it and run the job a second time."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    by: str | None = None
    at: datetime | None = None

    def request(self, by: str, at: datetime) -> None:
        self.by, self.at = by, at
        self.event.set()


@dataclass(frozen=True)
class RunnerContext:
    runner_id: str
    plakar: str
    work_dir: Path
    cancel_grace_s: float
    # plakar's cache daemons the runner keeps between the jobs of a store.
    daemons: CacheDaemons
    policy: Policy = field(default_factory=Policy)


# The job's connectors that still exist, by id (the api decides which: the runner only
# names the job it holds).
LoadConnectors = Callable[[], Awaitable[dict[str, Connector]]]


class JobFailure(Exception):
    """The job cannot run; the message says why."""


async def check_connectors(connectors: list[Connector], policy: Policy) -> None:
    """The rules the api applied when the connectors were saved hold here too (they may
    have been saved under other rules, or written past the api)."""
    for c in connectors:
        if found := await connector_check.problem(c.role, c.location, c.options, policy):
            raise JobFailure(f"the {c.role} connector {c.name!r} is refused: {found[1]}")


def resolve_connectors(due: JobDue, found: dict[str, Connector]) -> pa.ConnectorSet:
    task = due.task

    def need(cid: str | None, slot: str) -> Connector:
        if cid is None or cid not in found:
            raise JobFailure(f"{slot} connector {cid} no longer exists")
        return found[cid]

    return pa.ConnectorSet(
        store=need(task.store_id, "store"),
        source=need(task.source_id, "source") if task.type == "backup" else None,
        destination=need(task.destination_id, "destination") if task.type == "restore" else None,
        target=need(task.target_store_id, "target store") if task.type == "sync" else None,
    )


async def run_job(
    ctx: RunnerContext,
    due: JobDue,
    attempt: int,
    sink: JobEventSink,
    load_connectors: LoadConnectors,
    cancel: Cancellation,
) -> JobFinished:
    task = due.task
    concurrency = task.concurrency or recommended_concurrency(task.type, os.cpu_count())
    await sink.emit(
        JobStarted(
            job_id=due.job_id,
            seq=sink.next_seq(),
            attempt=attempt,
            runner=ctx.runner_id,
            concurrency=concurrency,
        )
    )
    source = "recommended" if task.concurrency is None else "set on the task"
    await sink.log(
        "system",
        f"runner {ctx.runner_id}, attempt {attempt}, concurrency {concurrency} ({source})",
    )
    execution = _Execution(ctx, due, sink, cancel, concurrency)
    try:
        connectors = resolve_connectors(due, await load_connectors())
        execution.secrets = [s for c in _all(connectors) for s in secret_values(c.options)]
        await check_connectors(_all(connectors), ctx.policy)
        async with workspace(ctx.work_dir, connectors, keep_cache=ctx.daemons) as ws:
            outcome = await execution.perform(ws, connectors)
            if outcome.status != "succeeded":
                ctx.daemons.stop(ws.cache_dir)
    except (JobFailure, DurationError, process.StartFailed) as e:
        outcome = Outcome("failed", str(e))
    except Exception as e:
        # A fault of this runner's (a full disk, a bug): the job fails, the runner goes on.
        log.exception("job %s failed in the runner", due.job_id)
        outcome = Outcome("failed", redact(f"the runner failed: {e!r}", execution.secrets))
    cancel.settled.set()
    await sink.log(
        "system",
        f"job {outcome.status}" + (f": {outcome.error}" if outcome.error else ""),
    )
    progress = execution.tracker.final(outcome.status == "succeeded")
    await sink.progress(progress, force=True)
    finished = JobFinished(
        job_id=due.job_id,
        seq=sink.next_seq(),
        status=outcome.status,
        attempt=attempt,
        exit_code=execution.exit_code,
        error=outcome.error,
        snapshot_id=execution.snapshot_id,
        progress=progress,
        bytes_added=execution.tracker.bytes_added,
        prune=execution.prune,
    )
    await sink.emit(finished)
    await sink.close()
    return finished


async def _set_when(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


def _all(cs: pa.ConnectorSet) -> list[Connector]:
    return [c for c in (cs.store, cs.source, cs.destination, cs.target) if c is not None]


class _Execution:
    def __init__(
        self,
        ctx: RunnerContext,
        due: JobDue,
        sink: JobEventSink,
        cancel: Cancellation,
        concurrency: int,
    ) -> None:
        self.ctx = ctx
        self.due = due
        self.sink = sink
        self.cancel = cancel
        self.concurrency = concurrency
        self.secrets: list[str] = []
        self.exit_code: int | None = None
        self.snapshot_id: str | None = None
        # A restore's new folder, to be named after the snapshot once plakar said which.
        self.unnamed_folder: str | None = None
        # Who cancelled while plakar ran; a cancel arriving after it ended changes nothing.
        self.stopped_by: str | None = None
        self.tracker = ProgressTracker()
        # A prune's plan and deletions, as plakar told them.
        self.prune: PruneResult | None = None

    async def perform(self, ws: pa.Workspace, cs: pa.ConnectorSet) -> Outcome:
        task = self.due.task
        p = self.ctx.plakar
        if not security_check_disabled(ws.cache_dir):  # once per kept cache
            await self._quiet(pa.disable_security_check_argv(p, ws), "prepare plakar")
        if task.type == "prune":
            return await self._prune(ws)
        window = self._since(task.window)
        measuring: asyncio.Task[None] | None = None
        if task.type == "backup":
            assert cs.source is not None
            self.tracker.watch_source(cs.source.location)
            # Beside plakar rather than before it: the backup starts at once.
            measuring = asyncio.create_task(asyncio.to_thread(self.tracker.measure_source))
            source = local_path(cs.source.location) or "/"
            # The control plane's own files (credentials among them) stay out of backups,
            # whatever the task's excludes say after them (a later `!` cannot bring them in).
            ignore = [*task.excludes]
            ignore += [ignore_pattern(d) for d in excluded_from(source, self.ctx.policy)]
            argv = pa.backup_argv(p, ws, task, self.concurrency, task.name or task.id, ignore)
        elif task.type == "restore":
            assert cs.destination is not None
            argv = await self._restore_argv(ws, cs.destination)
        elif task.type == "sync":
            argv = pa.sync_argv(p, ws, task, self.concurrency, window)
        else:
            argv = pa.check_argv(p, ws, task, self.concurrency, window)
        out = await self._plakar(argv)
        if measuring:
            await measuring  # done long before, but for the smallest sources (at most 2 s)
        if not self.stopped_by and (task.type != "restore" or self.snapshot_id is None):
            self.snapshot_id = snapshot_of(task.type, out)
            if self.snapshot_id:
                await self.sink.log("system", f"snapshot {self.snapshot_id}")
        if self.unnamed_folder and self.snapshot_id:
            await self._name_folder(self.unnamed_folder, self.snapshot_id)
        return decide(task.type, self.exit_code or 0, out, self.stopped_by)

    async def _prune(self, ws: pa.Workspace) -> Outcome:
        """Plan with plakar's dry run, then delete exactly the planned snapshots (a backup
        ending meanwhile changes nothing): the job records what plakar said it kept and
        deleted."""
        task = self.due.task
        assert task.retention is not None
        reader = PlanReader()
        argv = pa.prune_plan_argv(
            self.ctx.plakar, ws, task.labels, task.retention, self.concurrency
        )
        out = await self._plakar(argv, reader.feed)
        if self.stopped_by or self.exit_code or out.prompt:
            return decide(task.type, self.exit_code or 0, out, self.stopped_by)
        try:
            plan = reader.plan()
        except PlanUnreadable as e:
            raise JobFailure(f"{e}; nothing was deleted") from None
        self.prune = PruneResult(kept=plan.keep, deleted=[])
        await self.sink.log(
            "system", f"keeping {len(plan.keep)} snapshots, deleting {len(plan.delete)}"
        )
        if not plan.delete:
            return Outcome("succeeded", None)
        if self.cancel.by:  # cancelled between the plan and the deletion
            self.stopped_by = self.cancel.by
            return decide(task.type, 0, out, self.stopped_by)
        removal = RemovalReader()
        out = await self._plakar(pa.remove_argv(self.ctx.plakar, ws, plan.delete), removal.feed)
        deleted = removal.confirmed(plan.delete)
        self.prune = PruneResult(kept=plan.keep, deleted=deleted)
        outcome = decide(task.type, self.exit_code or 0, out, self.stopped_by)
        if outcome.status == "succeeded" and len(deleted) != len(plan.delete):
            unsure = ", ".join(i[:8] for i in plan.delete if i not in deleted)
            return Outcome(
                "failed",
                f"plakar confirmed deleting {len(deleted)} of {len(plan.delete)} snapshots; "
                f"not confirmed: {unsure}",
            )
        return outcome

    def _since(self, window: str | None) -> str | None:
        if not window:
            return None
        start = utcnow() - timedelta(seconds=parse_duration(window))
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")

    async def _plakar(
        self, argv: list[str], also: Callable[[str], None] | None = None
    ) -> OutputState:
        """Run plakar as the job's output; `also` reads each line too."""
        out = OutputState()
        await self.sink.log("system", "$ " + redact(" ".join(argv), self.secrets))
        # Stopped when the user cancels, or when plakar waits for terminal input.
        stop = asyncio.Event()
        relay = asyncio.create_task(_set_when(self.cancel.event, stop))

        async def on_lines(lines: list[str]) -> None:
            lines = [redact(line, self.secrets) for line in lines]
            for line in lines:
                out.feed(line)
                self.tracker.feed(out)
                if also:
                    also(line)
            await self.sink.log_lines("plakar", lines)
            await self.sink.progress(self.tracker.current())
            if out.prompt and not stop.is_set():
                await self.sink.log("system", "plakar asks for input on a terminal; stopping it")
                stop.set()

        try:
            self.exit_code = await process.run(argv, on_lines, stop, self.ctx.cancel_grace_s)
        finally:
            relay.cancel()
        self.stopped_by = self.cancel.by
        if self.stopped_by:
            when = self.cancel.at.isoformat() if self.cancel.at else "now"
            await self.sink.log("system", f"cancelled by {self.stopped_by} at {when}")
        await self.sink.log("system", f"plakar exited with code {self.exit_code}")
        return out

    async def _capture(self, argv: list[str]) -> tuple[int, list[str]]:
        """Run a helper plakar command whose lines are not part of the job's output."""
        code, lines = await process.capture(argv)
        return code, [redact(line, self.secrets) for line in lines]

    async def _quiet(self, argv: list[str], what: str) -> list[str]:
        code, lines = await self._capture(argv)
        if code != 0:
            raise JobFailure(f"could not {what}: {process.failure(code, lines)}")
        return lines

    async def _restore_argv(self, ws: pa.Workspace, destination: Connector) -> list[str]:
        task, due = self.due.task, self.due
        if pa.plakar_finds_it(task) or task.restore_point:
            # Nothing to learn first: plakar finds the snapshot itself (or says it found
            # none), and the job records the id plakar restored (snapshot_of). What a
            # snapshot chosen on the task holds was learnt when the task was saved.
            snapshot_id = (task.snapshot_id or "").lower()
            point = task.restore_point or RestorePoint(root="/", kind="directory")
            try:
                path = pa.restore_source(point.root, task.restore_path)
            except pa.RestoreOutside as e:
                raise JobFailure(str(e)) from None
            what = (
                f"snapshot {snapshot_id} (chosen on the task)"
                if snapshot_id
                else (
                    "the latest snapshot" + "".join(f" carrying {label}" for label in task.labels)
                )
            )
            await self.sink.log("system", f"restoring {what}")
        else:
            located = await self._locate(ws)
            self.snapshot_id = snapshot_id = located.snapshot_id
            path, point = located.path, located.point
        # A task without a mode (saved before there were modes) overwrites, as it did.
        new = task.restore_mode == "new_folder"
        folder = pa.restore_folder(snapshot_id, due.due_at, due.job_id) if new else None
        if new and not snapshot_id:
            # Named after the snapshot once plakar has said which it restored.
            self.unnamed_folder = os.path.join(
                local_path(destination.location) or "/", folder or ""
            )
        where = local_path(destination.location) or "/"
        plan = pa.restore_plan(snapshot_id, point, path, where, folder)
        # The target is below the destination, but a link on the way could lead elsewhere.
        if found := await connector_check.problem("destination", plan.target, {}, self.ctx.policy):
            raise JobFailure(f"cannot restore into {plan.target}: {found[1]}")
        try:
            os.makedirs(plan.target, exist_ok=True)  # plakar makes the last directory only
        except OSError as e:
            raise JobFailure(f"cannot make {plan.target}: {e.strerror or e}") from None
        how = "into a new folder" if new else "over the files there"
        await self.sink.log("system", f"restoring {plan.what} to {plan.target} ({how})")
        return pa.restore_argv(
            self.ctx.plakar, ws, self.concurrency, plan, self.snapshot_id is None, task.labels
        )

    async def _locate(self, ws: pa.Workspace) -> Located:
        task = self.due.task
        try:
            located = await locate(
                self._capture, self.ctx.plakar, ws, task.snapshot_id, task.labels, task.restore_path
            )
        except (Unresolved, StoreUnreadable) as e:
            raise JobFailure(str(e)) from None
        how = "chosen on the task" if task.snapshot_id else "latest matching the labels"
        await self.sink.log("system", f"restoring snapshot {located.snapshot_id} ({how})")
        return located

    async def _name_folder(self, folder: str, snapshot_id: str) -> None:
        """Name the new folder of a restore after the snapshot plakar restored."""
        named = os.path.join(
            os.path.dirname(folder),
            pa.restore_folder(snapshot_id, self.due.due_at, self.due.job_id),
        )
        try:
            os.rename(folder, named)
        except OSError as e:
            await self.sink.log("system", f"the files stay in {folder}: cannot rename it: {e}")
            return
        await self.sink.log("system", f"the files are in {named}")
