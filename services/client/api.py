"""The api as the command-line client calls it: where it is, with which token, and what
it answered (transport only)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import httpx

# Seconds a request may take; a job's output is followed over a WebSocket, not this.
TIMEOUT_S = 60.0
# What may be named by its name rather than its id.
NAMED = ("connectors", "tasks")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class ClientError(Exception):
    """Why the client cannot do what was asked (printed as is; exit status 2)."""


class NotFound(ClientError):
    """The api answered 404."""


# A job just queued is known to the api once the history has recorded it: moments later.
RECORDED_WITHIN_S = 10.0


class Endpoint:
    """The api's URL and a token, from the first of: --api-url and --token-file, the
    environment (PLAKAR_CP_API_URL, PLAKAR_CP_TOKEN), endpoints.json of the data dir of
    `plakar-cp up`. A token is never taken from the command line itself: other users
    of the machine can read it there."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    @classmethod
    def find(cls, url: str | None, token_file: Path | None, data_dir: Path) -> Endpoint:
        token = None
        if token_file is not None:
            try:
                token = token_file.read_text().strip()
            except OSError as e:
                raise ClientError(f"--token-file {token_file}: {e.strerror or e}") from None
        url = url or os.environ.get("PLAKAR_CP_API_URL")
        token = token or os.environ.get("PLAKAR_CP_TOKEN")
        if not (url and token):
            path = data_dir / "endpoints.json"
            try:
                found = json.loads(path.read_text())
                url, token = url or found["api_url"], token or found["api_token"]
            except (OSError, ValueError, KeyError):
                raise ClientError(
                    "no api to talk to: set PLAKAR_CP_API_URL and PLAKAR_CP_TOKEN, pass "
                    f"--api-url and --token-file, or point --data-dir at a running "
                    f"`plakar-cp up` ({path} not readable)"
                ) from None
        return cls(str(url), str(token))

    def ws_url(self, path: str) -> str:
        return re.sub(r"^http", "ws", self.url, count=1) + path


class Api:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.http = httpx.Client(
            base_url=endpoint.url,
            headers={"Authorization": f"Bearer {endpoint.token}"},
            timeout=TIMEOUT_S,
        )

    def call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """The answer's JSON (text when it is not JSON); raises ClientError with the api's
        own reason when it refused."""
        try:
            r = self.http.request(
                method,
                path,
                json=body,
                params={k: v for k, v in (params or {}).items() if v is not None},
            )
        except httpx.HTTPError as e:
            raise ClientError(f"cannot reach the api at {self.endpoint.url}: {e}") from None
        if r.status_code >= 400:
            error = NotFound if r.status_code == 404 else ClientError
            raise error(f"{method} {path}: {r.status_code} {_reason(r)}")
        if not r.content:
            return None
        if "json" in r.headers.get("content-type", ""):
            return r.json()
        return r.text

    def resolve(self, kind: str, ref: str) -> str:
        """The id `ref` names: an id as is; a connector or a task may be named by its name.
        Nothing else goes into a path of the api."""
        if UUID.fullmatch(ref):
            return ref
        if kind not in NAMED:
            raise ClientError(f"{ref!r} is not a {kind.removesuffix('s')} id")
        found = [x["id"] for x in self.call("GET", f"/{kind}") if x.get("name") == ref]
        if len(found) != 1:
            what = "no" if not found else f"{len(found)}"
            raise ClientError(f"{what} {kind} named {ref!r}: give its id")
        return str(found[0])


def _reason(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:500]
    if isinstance(body, dict) and "error" in body:
        field = f" ({body['field']})" if body.get("field") else ""
        return f"{body['error']}{field}"
    return json.dumps(body)[:500]
