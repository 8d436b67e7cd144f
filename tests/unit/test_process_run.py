"""Running a child as a job's output (services/runner/process.py run): its lines, merged
and in order, whatever their amount; the pipe closed however the run ends."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import pytest

from services.runner import process


def child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def lines_of(argv: list[str]) -> tuple[int, list[str], int]:
    """Exit code, lines and how many calls of on_lines brought them."""
    got: list[str] = []
    calls = 0

    async def keep(more: list[str]) -> None:
        nonlocal calls
        calls += 1
        got.extend(more)

    code = await process.run(argv, keep)
    return code, got, calls


def test_stdout_and_stderr_come_merged_in_order_and_the_last_line_without_newline() -> None:
    code = (
        "import os, sys\n"
        "os.write(1, b'one\\n'); os.write(2, b'two\\n'); os.write(1, b'three')\n"
        "sys.exit(3)"
    )
    before = open_fds()
    assert asyncio.run(lines_of(child(code)))[:2] == (3, ["one", "two", "three"])
    assert open_fds() == before


def test_output_larger_than_the_pipe_is_read_whole_in_order() -> None:
    # Written at once, several times what the pipe holds: reads of a full chunk follow
    # each other without the pause, and nothing is lost or reordered.
    code = "import sys\nsys.stdout.write(''.join(f'line {i}\\n' for i in range(200_000)))"
    exit_code, got, calls = asyncio.run(lines_of(child(code)))
    assert exit_code == 0
    assert got == [f"line {i}" for i in range(200_000)]
    assert calls > 1


def test_lines_written_one_by_one_are_read_together() -> None:
    # 2,000 lines written one write each over about 0.4 s: the pause after each read
    # gathers them (about 30 reads at 15 ms), where reading each as it came would take
    # one read per line.
    code = (
        "import os, time\n"
        "for i in range(2000):\n"
        "    os.write(1, b'%d\\n' % i)\n"
        "    if i % 10 == 9: time.sleep(0.002)"
    )
    exit_code, got, calls = asyncio.run(lines_of(child(code)))
    assert (exit_code, got) == (0, [str(i) for i in range(2000)])
    assert calls <= 1000


def test_when_reading_fails_the_child_is_killed_and_the_pipe_closed() -> None:
    before = open_fds()

    async def refuse(lines: list[str]) -> None:
        raise RuntimeError("no room")

    with pytest.raises(RuntimeError, match="no room"):
        asyncio.run(
            process.run(child("import time\nprint('x', flush=True)\ntime.sleep(60)"), refuse)
        )
    assert open_fds() == before


# The runner handles SIGINT (plakar then starts with it at its default, through setpriv),
# or, started as a background job of a shell, inherits it ignored (plakar's is reset).
@pytest.mark.parametrize("runners_sigint", [signal.default_int_handler, signal.SIG_IGN])
def test_a_cancel_interrupts_the_child(runners_sigint: Any) -> None:
    code = "import time\nprint('ready', flush=True)\ntime.sleep(60)"

    async def go() -> int:
        cancel = asyncio.Event()

        async def on_lines(lines: list[str]) -> None:
            cancel.set()

        return await process.run(child(code), on_lines, cancel, grace_s=5)

    previous = signal.signal(signal.SIGINT, runners_sigint)
    try:
        # Ended by the SIGINT (an uncaught KeyboardInterrupt), long before the SIGKILL.
        assert asyncio.run(asyncio.wait_for(go(), 20)) == -2
    finally:
        signal.signal(signal.SIGINT, previous)
