"""Job history: list, details, output, cancel, retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.response import Stream

from services.api import audit, cancel, retry, store
from services.api.auth import CallerRequest
from services.api.deps import Deps, parse_id
from services.api.errors import not_found
from services.api.openapi import errors, stated
from services.api.roles import OPERATOR
from services.api.runner_groups import with_waiting
from services.api.validation import Invalid, check_period
from shared.models import CancelAnswer, CancelRequest, Job, JobPage, RunStarted

# Lines per query when sending a job's output.
OUTPUT_PAGE = 5000

StatusFilter = Literal["queued", "running", "succeeded", "failed", "cancelled", "skipped"]


async def load(deps: Deps, job_id: str) -> Job:
    job = await store.get_job(deps.pool, parse_id(job_id, "job"))
    if job is None:
        raise not_found("job")
    return job


class JobController(Controller):
    path = "/api/v1/jobs"
    tags = ["jobs"]

    @get("/", responses=errors(422))
    async def list_all(
        self,
        state: State,
        status: StatusFilter | None = None,
        task_id: UUID | None = None,
        connector_id: UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: str | None = None,
        since: Annotated[str | None, stated(format="date-time")] = None,
        until: Annotated[str | None, stated(format="date-time")] = None,
    ) -> JobPage:
        """Newest first. `since` (included) and `until` (excluded) bound when the jobs
        were queued (RFC 3339)."""
        start, end = check_period(since, until)
        after = None
        if cursor:
            try:
                after = store.decode_cursor(cursor)
            except (ValueError, UnicodeDecodeError):
                raise Invalid("cursor", "cursor is not one this api returned") from None
        items, next_cursor = await store.list_jobs(
            state.deps.pool,
            status=status,
            task_id=str(task_id) if task_id else None,
            connector_id=str(connector_id) if connector_id else None,
            limit=limit,
            after=after,
            since=start,
            until=end,
        )
        return JobPage(items=await with_waiting(state.deps, items), next_cursor=next_cursor)

    @get("/{job_id:str}", responses=errors(404))
    async def get_one(self, state: State, job_id: str) -> Job:
        """A queued job says why it waits (`waiting`), as far as the live runners tell."""
        [job] = await with_waiting(state.deps, [await load(state.deps, job_id)])
        return job

    @get("/{job_id:str}/output", media_type="text/plain", responses=errors(404))
    async def output(self, state: State, job_id: str) -> Stream:
        """Every line of the job, a page at a time: a long output is never held whole."""
        pool = state.deps.pool
        job = await load(state.deps, job_id)

        async def pages() -> AsyncIterator[str]:
            after = 0
            while rows := await store.job_output(pool, job.id, after, limit=OUTPUT_PAGE):
                yield "".join(f"{line}\n" for _, _, _, line in rows)
                after = rows[-1][0]

        return Stream(pages(), media_type="text/plain; charset=utf-8")

    @post("/{job_id:str}/cancel", status_code=202, responses=errors(404, 409, 422), opt=OPERATOR)
    async def cancel_job(
        self, request: CallerRequest, job_id: str, data: CancelRequest | None = None
    ) -> Response[CancelAnswer]:
        """Queued: ends `cancelled` now (200). Running: plakar is stopped and the job
        ends `cancelled` shortly (202). Finished or already being cancelled: 409. The job
        says who cancelled it: `by` when given, else the caller's token."""
        deps: Deps = request.app.state.deps
        by = cancel.who(data.by if data else None, request.user.holder.name)
        job = await load(deps, job_id)
        answer = await cancel.cancel(deps, job, by)
        await audit.record(deps.pool, request.user, "job.cancel", job.id, after=answer)
        return Response(answer, status_code=200 if answer.status == "cancelled" else 202)

    @post("/{job_id:str}/retry", status_code=202, responses=errors(404, 409), opt=OPERATOR)
    async def retry_job(self, request: CallerRequest, job_id: str) -> RunStarted:
        """A failed or cancelled job: queue a job of its task that retries it (its
        `retry_of`). A job is retried once: 409 when it was, or for any other status."""
        deps: Deps = request.app.state.deps
        job = await load(deps, job_id)
        retried = await retry.retry(deps, job, request.user.holder.name)
        await audit.record(deps.pool, request.user, "job.retry", job.id, after={"job_id": retried})
        return RunStarted(job_id=retried)
