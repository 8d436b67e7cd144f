"""Running plakar as a child process: lines as they come, cancel, no orphan."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from services.runner.lines import LineSplitter
from shared.proc import die_with_parent

READ_CHUNK = 1 << 16  # what Linux's pipes hold by default
# plakar writes a line at a time: reading again at once would wake the runner for each.
# A pause after each read gathers a burst into one read, one handling of its lines and
# one event: at plakar's few thousand lines a second, each wake-up and event costs the
# runner more CPU than the lines it carries, so the pause is the runner's share of the
# host beside plakar (20,000 lines: about 1,000 events at 5 ms, 385 at 15 ms). A line of
# steady output thus waits at most this long to be read; a lone line is read at once.
READ_PAUSE_S = 0.015
# A read this large is output faster than the pause is worth (over 1 MB/s): the next
# read follows at once, so the pause never holds plakar on a full pipe.
PAUSE_BELOW = 1 << 14


class StartFailed(Exception):
    """plakar could not be started: not found, not executable, arguments too long."""


def plakar_env() -> dict[str, str]:
    """A minimal environment: no inherited secrets, no terminal, UTF-8 output."""
    keep = ("PATH", "HOME", "LANG", "TZ", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["TERM"] = "dumb"
    return env


# If the runner dies, even by SIGKILL, the kernel kills plakar too (the parent-death
# signal). `setpriv` sets it in the argument list rather than a preexec_fn in Python: with
# one, Python forks the whole runner for each start instead of using vfork (with a 100 MB
# runner: 15 ms of CPU against 2 ms). The preexec_fn still does where setpriv is missing,
# or where the runner ignores a signal that stops plakar: plakar would inherit it ignored
# (die_with_parent).
SETPRIV = shutil.which("setpriv")
STOPS = (signal.SIGINT, signal.SIGTERM)


async def _start(argv: Sequence[str], stdout: int, stderr: int) -> asyncio.subprocess.Process:
    """plakar started in a session of its own (its group is signalled as one), with
    stdout and stderr as asked, never outliving the runner."""
    if SETPRIV and all(signal.getsignal(s) != signal.SIG_IGN for s in STOPS):
        argv, preexec = [SETPRIV, "--pdeathsig", "KILL", "--", *argv], None
    else:
        preexec = die_with_parent(signal.SIGKILL)
    try:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=plakar_env(),
            start_new_session=True,
            preexec_fn=preexec,
        )
    except OSError as e:  # E2BIG, ENOENT, EACCES...
        raise StartFailed(f"could not start plakar: {e.strerror or e}") from e


async def start_quiet(argv: Sequence[str]) -> asyncio.subprocess.Process:
    """plakar started as `_start` does, its output dropped (a daemon's)."""
    return await _start(argv, asyncio.subprocess.DEVNULL, asyncio.subprocess.DEVNULL)


async def run(
    argv: Sequence[str],
    on_lines: Callable[[list[str]], Awaitable[None]],
    cancel: asyncio.Event | None = None,
    grace_s: float = 5.0,
) -> int:
    """Run plakar, calling on_lines with the lines of stdout and stderr (merged, so
    in the order plakar wrote them) as each read of its output completes them. When
    `cancel` is set, plakar gets SIGINT, then SIGKILL after grace_s. Returns the exit
    code (negative: killed by that signal). Lines are cut at MAX_LINE_BYTES (lines.py)."""
    # A pipe of the runner's own rather than an asyncio stream: a stream's transport
    # reads each line as plakar writes it, waking the runner for every line even while
    # it pauses; this pipe is read only when the runner asks.
    out, into = os.pipe()
    try:
        proc = await _start(argv, stdout=into, stderr=asyncio.subprocess.STDOUT)
    except BaseException:
        os.close(out)
        raise
    finally:
        os.close(into)
    os.set_blocking(out, False)

    async def pump() -> None:
        splitter = LineSplitter()
        while chunk := await _read(out):
            if lines := splitter.feed(chunk):
                await on_lines(lines)
            if len(chunk) < PAUSE_BELOW:
                await asyncio.sleep(READ_PAUSE_S)
        if lines := splitter.finish():
            await on_lines(lines)

    pumping = asyncio.create_task(pump())
    watching = asyncio.create_task(_cancel_on(cancel, proc, grace_s)) if cancel else None
    try:
        await pumping
        return await proc.wait()
    finally:
        if watching:
            watching.cancel()
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
        pumping.cancel()
        await asyncio.wait([pumping])  # its reader is removed before the pipe is closed
        os.close(out)


async def _read(fd: int) -> bytes:
    """What the pipe holds, up to READ_CHUNK bytes, once it holds something (b"": its
    end)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, READ_CHUNK)
        except BlockingIOError:
            readable = loop.create_future()
            loop.add_reader(fd, readable.set_result, None)
            try:
                await readable
            finally:
                loop.remove_reader(fd)


def signal_group(pid: int, sig: int) -> None:
    """Signal a process started here and its group (its session: what it started)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


async def _cancel_on(
    cancel: asyncio.Event, proc: asyncio.subprocess.Process, grace_s: float
) -> None:
    await cancel.wait()
    signal_group(proc.pid, signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        signal_group(proc.pid, signal.SIGKILL)


# The lines of stderr kept while plakar writes a file's bytes on stdout.
MAX_ERROR_LINES = 20


@asynccontextmanager
async def output(argv: Sequence[str]) -> AsyncIterator[Output]:
    """Run plakar for what it writes on stdout (a file's bytes), its stderr kept apart;
    plakar is killed when the block ends before it does."""
    proc = await _start(argv, asyncio.subprocess.PIPE, asyncio.subprocess.PIPE)
    out = Output(proc)
    try:
        yield out
    finally:
        out.errors_read.cancel()
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()


class Output:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._errors: list[str] = []
        # Read all along, so that plakar never blocks on a full stderr pipe.
        self.errors_read = asyncio.create_task(self._read_errors())

    async def _read_errors(self) -> None:
        assert self._proc.stderr is not None
        splitter = LineSplitter()
        while chunk := await self._proc.stderr.read(READ_CHUNK):
            self._errors = [*self._errors, *splitter.feed(chunk)][-MAX_ERROR_LINES:]
        self._errors = [*self._errors, *splitter.finish()][-MAX_ERROR_LINES:]

    async def read(self, size: int) -> bytes:
        """Up to `size` bytes of stdout, fewer only at its end (b"": the end)."""
        assert self._proc.stdout is not None
        data = bytearray()
        while len(data) < size and (part := await self._proc.stdout.read(size - len(data))):
            data += part
        return bytes(data)

    async def finish(self) -> tuple[int, list[str]]:
        """plakar's exit code and its last lines of stderr."""
        code = await self._proc.wait()
        await self.errors_read
        return code, self._errors


def last_line(lines: list[str]) -> str:
    return lines[-1] if lines else ""


def failure(code: int, lines: list[str]) -> str:
    """What a failed plakar run said: its last line, else its exit code."""
    return last_line(lines) or f"exit code {code}"


async def capture(argv: Sequence[str]) -> tuple[int, list[str]]:
    """Run plakar to completion and return its exit code and lines."""
    lines: list[str] = []

    async def keep(more: list[str]) -> None:
        lines.extend(more)

    code = await run(argv, keep)
    return code, lines
