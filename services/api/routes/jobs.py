"""Job history: list, details, output."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.params import Parameter

from services.api import store
from services.api.deps import Deps, parse_id
from services.api.errors import bad, not_found
from shared.models import Job, JobPage

StatusFilter = Literal["queued", "running", "succeeded", "failed", "cancelled", "skipped"]


def _optional_id(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return parse_id(value, field)
    except Exception:
        raise bad(field, f"{field} must be a UUID") from None


async def load(deps: Deps, job_id: str) -> Job:
    job = await store.get_job(deps.pool, parse_id(job_id, "job"))
    if job is None:
        raise not_found("job")
    return job


class JobController(Controller):
    path = "/api/v1/jobs"
    tags = ["jobs"]

    @get("/")
    async def list_all(
        self,
        state: State,
        status: StatusFilter | None = None,
        task_id: str | None = None,
        connector_id: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> JobPage:
        after = None
        if cursor:
            try:
                after = store.decode_cursor(cursor)
            except (ValueError, UnicodeDecodeError):
                raise bad("cursor", "cursor is not one this api returned") from None
        items, next_cursor = await store.list_jobs(
            state.deps.pool,
            status=status,
            task_id=_optional_id(task_id, "task_id"),
            connector_id=_optional_id(connector_id, "connector_id"),
            limit=limit,
            after=after,
        )
        return JobPage(items=items, next_cursor=next_cursor)

    @get("/{job_id:str}")
    async def get_one(self, state: State, job_id: str) -> Job:
        return await load(state.deps, job_id)

    @get("/{job_id:str}/output", media_type="text/plain")
    async def output(self, state: State, job_id: str) -> Response[str]:
        job = await load(state.deps, job_id)
        lines = await store.job_output(state.deps.pool, job.id)
        text = "".join(f"{line}\n" for _, _, _, line in lines)
        return Response(text, media_type="text/plain; charset=utf-8")
