"""API tokens: created with a name and a role (the token shown once), listed, revoked."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.datastructures import State

from services.api import audit, tokens
from services.api.auth import CallerRequest
from services.api.deps import parse_id
from services.api.errors import conflict, not_found
from services.api.openapi import errors
from services.api.roles import ADMIN
from services.api.validation import check_name
from shared.models import ApiToken, TokenCreate, TokenCreated


class TokenController(Controller):
    path = "/api/v1/tokens"
    tags = ["tokens"]

    @post("/", responses=errors(409, 422))
    async def create(self, request: CallerRequest, data: TokenCreate) -> TokenCreated:
        """The token is in this answer only: keep it; it cannot be shown again."""
        pool = request.app.state.deps.pool
        try:
            made, token = await tokens.create(pool, check_name(data.name), data.role)
        except tokens.Duplicate:
            raise conflict(
                "a token with this name exists (revoked ones keep theirs)", "name"
            ) from None
        await audit.record(pool, request.user, "token.create", made.id, after=made)
        return TokenCreated(id=made.id, name=made.name, role=made.role, token=token)

    @get("/", responses=errors(), opt=ADMIN)
    async def list_all(self, state: State) -> list[ApiToken]:
        """Every token, revoked ones too, with when each was last used (to the minute)."""
        return await tokens.list_all(state.deps.pool)

    @delete("/{token_id:str}", status_code=200, responses=errors(404, 409))
    async def revoke(self, request: CallerRequest, token_id: str) -> ApiToken:
        """Revoke a token at once: its requests and its UI sessions are refused from now
        on. The last admin token cannot be revoked."""
        pool = request.app.state.deps.pool
        try:
            revoked = await tokens.revoke(pool, parse_id(token_id, "token"))
        except tokens.LastAdmin:
            raise conflict("the last admin token cannot be revoked: create another first") from None
        if revoked is None:
            raise not_found("token")
        await audit.record(pool, request.user, "token.revoke", revoked.id, after=revoked)
        return revoked
