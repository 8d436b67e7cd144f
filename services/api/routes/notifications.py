"""Notifications: targets (webhook, email) and rules (which events go where), a test
sending, and the deliveries with their attempts (docs/notifications.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import Parameter

from services.api import audit
from services.api import store as api_store
from services.api.auth import CallerRequest
from services.api.deps import Deps, parse_id
from services.api.errors import conflict, not_found
from services.api.notify import store
from services.api.notify.send import send
from services.api.notify.targets import (
    check_events,
    check_target,
    kept_secret,
    masked,
    masked_url,
)
from services.api.openapi import errors
from services.api.validation import Invalid
from shared.config_db import get_connector
from shared.connector_check import addresses, host_addresses
from shared.events import JobFinished
from shared.ids import new_id
from shared.models import (
    Delivery,
    NotificationRule,
    NotificationTarget,
    RuleCreate,
    RulePatch,
    TargetCreate,
    TargetPatch,
    TestSent,
)
from shared.notifications import job_notice


async def _load_target(deps: Deps, target_id: str) -> NotificationTarget:
    found = await store.get_target(deps.pool, parse_id(target_id, "target"))
    if found is None:
        raise not_found("target")
    return found


async def _checked(body: TargetCreate) -> TargetCreate:
    """The target checked, with the addresses its host resolves to (as connectors are)."""
    if body.smtp is not None:
        return check_target(body, await host_addresses(body.smtp.host))
    return check_target(body, await addresses(body.url or ""))


async def _saved(deps: Deps, body: TargetCreate, target_id: str | None) -> NotificationTarget:
    try:
        if target_id is None:
            return await store.insert_target(deps.pool, body)
        updated = await store.update_target(deps.pool, target_id, body)
    except store.Duplicate:
        raise conflict("a notification target with this name exists", "name") from None
    if updated is None:
        raise not_found("target")
    return updated


def _merged(current: NotificationTarget, patch: TargetPatch) -> TargetCreate:
    """The target as changed; masked values (as answered) keep the stored ones."""

    def given(field: str) -> Any:
        value = getattr(patch, field)
        return getattr(current, field) if value is msgspec.UNSET else value

    url = given("url")
    if current.url and url == masked_url(current.url):
        url = current.url
    smtp = patch.smtp if patch.smtp is not msgspec.UNSET else current.smtp
    if smtp is not None and current.smtp is not None:
        smtp = msgspec.structs.replace(
            smtp, password=kept_secret(smtp.password, current.smtp.password)
        )
    secret = given("secret")
    return TargetCreate(
        name=given("name"),
        kind=current.kind,
        url=url,
        secret=kept_secret(secret, current.secret),
        to=given("to"),
        smtp=smtp,
    )


async def _checked_rule(deps: Deps, rule: NotificationRule) -> NotificationRule:
    """Its target, task and connector exist; its events each once."""
    for field, what, exists in (
        ("target_id", "target", store.get_target),
        ("task_id", "task", api_store.get_task),
        ("connector_id", "connector", get_connector),
    ):
        value = getattr(rule, field)
        if value is None:
            continue
        try:
            parse_id(value, what)
            found = await exists(deps.pool, value)
        except Exception:
            found = None
        if found is None:
            raise Invalid(field, f"{what} {value} does not exist")
    return msgspec.structs.replace(rule, events=check_events(rule.events))


async def _load_rule(deps: Deps, rule_id: str) -> NotificationRule:
    found = await store.get_rule(deps.pool, parse_id(rule_id, "rule"))
    if found is None:
        raise not_found("rule")
    return found


class NotificationController(Controller):
    path = "/api/v1/notifications"
    tags = ["notifications"]

    @get("/targets", responses=errors())
    async def list_targets(self, state: State) -> list[NotificationTarget]:
        return [masked(t) for t in await store.list_targets(state.deps.pool)]

    @post("/targets", responses=errors(409, 422))
    async def create_target(self, request: CallerRequest, data: TargetCreate) -> NotificationTarget:
        deps: Deps = request.app.state.deps
        created = masked(await _saved(deps, await _checked(data), None))
        await audit.record(deps.pool, request.user, "target.create", created.id, after=created)
        return created

    @get("/targets/{target_id:str}", responses=errors(404))
    async def get_target(self, state: State, target_id: str) -> NotificationTarget:
        return masked(await _load_target(state.deps, target_id))

    @patch("/targets/{target_id:str}", responses=errors(404, 409, 422))
    async def update_target(
        self, request: CallerRequest, target_id: str, data: TargetPatch
    ) -> NotificationTarget:
        """Changes the fields given; a masked value (as answered) keeps the stored one.
        The kind cannot change."""
        deps: Deps = request.app.state.deps
        current = await _load_target(deps, target_id)
        body = await _checked(_merged(current, data))
        updated = masked(await _saved(deps, body, current.id))
        before = masked(current)
        await audit.record(deps.pool, request.user, "target.update", current.id, before, updated)
        return updated

    @delete("/targets/{target_id:str}", responses=errors(404))
    async def delete_target(self, request: CallerRequest, target_id: str) -> None:
        """Its rules and deliveries go with it."""
        deps: Deps = request.app.state.deps
        current = await _load_target(deps, target_id)
        if not await store.delete_target(deps.pool, current.id):
            raise not_found("target")
        await audit.record(deps.pool, request.user, "target.delete", current.id, masked(current))

    @post("/targets/{target_id:str}/test", status_code=200, responses=errors(404))
    async def test_target(self, state: State, target_id: str) -> TestSent:
        """Send a test notification now (event header `test`, a failed job's shape) and
        answer whether the receiver took it. Nothing is recorded."""
        deps: Deps = state.deps
        target = await _load_target(deps, target_id)
        nobody = "00000000-0000-4000-8000-000000000000"
        ended = JobFinished(
            job_id=nobody, seq=1, status="failed", attempt=1, error="a test: no job failed"
        )
        sample = job_notice(
            ended, nobody, "(a test of this notification target)", "backup", [], None
        )
        assert sample is not None  # a failure always tells
        sent = await send(target, sample, new_id(), deps.settings.notify_from, event="test")
        return TestSent(ok=sent.ok, detail=sent.detail)

    @get("/rules", responses=errors())
    async def list_rules(self, state: State) -> list[NotificationRule]:
        return await store.list_rules(state.deps.pool)

    @post("/rules", responses=errors(422))
    async def create_rule(self, request: CallerRequest, data: RuleCreate) -> NotificationRule:
        """A rule naming neither a task nor a connector tells of every one."""
        draft = NotificationRule(
            id="",
            target_id=data.target_id,
            events=data.events,
            task_id=data.task_id,
            connector_id=data.connector_id,
            created_at=datetime.now(UTC),
        )
        deps: Deps = request.app.state.deps
        rule = await _checked_rule(deps, draft)
        created = await store.insert_rule(
            deps.pool, rule.target_id, list(rule.events), rule.task_id, rule.connector_id
        )
        await audit.record(deps.pool, request.user, "rule.create", created.id, after=created)
        return created

    @get("/rules/{rule_id:str}", responses=errors(404))
    async def get_rule(self, state: State, rule_id: str) -> NotificationRule:
        return await _load_rule(state.deps, rule_id)

    @patch("/rules/{rule_id:str}", responses=errors(404, 422))
    async def update_rule(
        self, request: CallerRequest, rule_id: str, data: RulePatch
    ) -> NotificationRule:
        deps: Deps = request.app.state.deps
        current = await _load_rule(deps, rule_id)
        changes = {
            f: getattr(data, f)
            for f in RulePatch.__struct_fields__
            if getattr(data, f) is not msgspec.UNSET
        }
        rule = await _checked_rule(deps, msgspec.structs.replace(current, **changes))
        updated = await store.update_rule(deps.pool, rule)
        if updated is None:
            raise not_found("rule")
        await audit.record(deps.pool, request.user, "rule.update", current.id, current, updated)
        return updated

    @delete("/rules/{rule_id:str}", responses=errors(404))
    async def delete_rule(self, request: CallerRequest, rule_id: str) -> None:
        deps: Deps = request.app.state.deps
        current = await _load_rule(deps, rule_id)
        if not await store.delete_rule(deps.pool, current.id):
            raise not_found("rule")
        await audit.record(deps.pool, request.user, "rule.delete", current.id, current)

    @get("/deliveries", responses=errors(422))
    async def deliveries(
        self,
        state: State,
        target_id: UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> list[Delivery]:
        """Newest first, each with its attempts."""
        target = str(target_id) if target_id else None
        return await store.list_deliveries(state.deps.pool, target, limit)
