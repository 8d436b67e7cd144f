"""Running plakar as a child process: lines as they come, cancel, no orphan."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Sequence

from shared.proc import die_with_parent

MAX_LINE = 8192


def plakar_env() -> dict[str, str]:
    """A minimal environment: no inherited secrets, no terminal, UTF-8 output."""
    keep = ("PATH", "HOME", "LANG", "TZ", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["TERM"] = "dumb"
    return env


async def run(
    argv: Sequence[str],
    on_line: Callable[[str], Awaitable[None]],
    cancel: asyncio.Event | None = None,
    grace_s: float = 5.0,
) -> int:
    """Run plakar, calling on_line for each line of stdout and stderr (merged, so
    in the order plakar wrote them). When `cancel` is set, plakar gets SIGINT, then
    SIGKILL after grace_s. Returns the exit code (negative: killed by that signal)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=plakar_env(),
        start_new_session=True,
        # If the runner dies, even by SIGKILL, the kernel kills plakar too.
        preexec_fn=die_with_parent(signal.SIGKILL),
        limit=1 << 20,
    )
    assert proc.stdout is not None

    async def pump() -> None:
        assert proc.stdout is not None
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:  # a line longer than the limit: take what there is
                raw = await proc.stdout.read(1 << 20)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            await on_line(line[:MAX_LINE])

    pumping = asyncio.create_task(pump())
    watching = asyncio.create_task(_cancel_on(cancel, proc, grace_s)) if cancel else None
    try:
        await pumping
        return await proc.wait()
    finally:
        if watching:
            watching.cancel()
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


async def _cancel_on(
    cancel: asyncio.Event, proc: asyncio.subprocess.Process, grace_s: float
) -> None:
    await cancel.wait()
    _signal_group(proc.pid, signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        _signal_group(proc.pid, signal.SIGKILL)


async def capture(argv: Sequence[str]) -> tuple[int, list[str]]:
    """Run plakar to completion and return its exit code and lines."""
    lines: list[str] = []

    async def keep(line: str) -> None:
        lines.append(line)

    code = await run(argv, keep)
    return code, lines
