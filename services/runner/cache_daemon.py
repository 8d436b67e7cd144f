"""plakar's `cached` daemon of a kept cache (plakar_cache.py), started by the runner and
kept up from one job of the store to the next.

plakar starts the daemon itself when a command finds none on its cache, and that daemon
exits 5 s after its last work; a plakar that connects to it as it exits takes the lost
connection for a failed rebuild of the store's state, and fails. Stopping it before each
job and letting plakar start a fresh one avoids that, at 0.03 to 0.11 s a job: a fifth
of a small backup's time beyond plakar's.

So the runner starts the daemon itself: `plakar -cachedir DIR cached -foreground`, a
child of its own that the kernel kills with the runner (as every plakar it runs), with
a teardown of its own three times the time the runner keeps it idle: it never exits
while a job may connect to it, and one left behind (a runner killed while its plakar is
a wrapper that does not `exec`) exits by itself. The runner stops it, its whole process
group, `idle_s` after the last job on its cache ended, holding that cache's lock, so that
no job is on it. A kept daemon serves a later job only
- within `idle_s` of the last job's end (however late its stop comes);
- of the same runner process, on the same cache (whose lock lets one job at a time on it);
- for the same store settings: the daemon keeps the settings and the key of the first
  request about a store, and would go on reading the store they name;
- while its plakar is the one installed: a plakar replaced on disk (an upgrade) would
  refuse a daemon of another version.
Each idle daemon holds some 40 MB of memory and the store's key until it is stopped, so a
runner keeps at most `max_idle` of them (its slots): past that, the one idle longest goes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from services.runner import process
from shared.models import Connector

log = logging.getLogger("plakar_cp.runner")

# plakar listens on <cachedir>/cached.sock.
SOCKET = "cached.sock"
# The daemon's own idle time before it exits, in the runner's idle times: never reached
# while the runner may still use it.
TEARDOWN_IDLES = 3
# How long a daemon may take to listen before the job goes on without it (plakar then
# starts one of its own), and how often the runner looks.
START_PATIENCE_S = 5.0
START_POLL_S = 0.005


def store_settings(store: Connector) -> str:
    """What a daemon must have been started for to serve a job of `store` (a digest: the
    options hold secrets)."""
    given = msgspec.json.encode([store.location, sorted(store.options.items())])
    return hashlib.sha256(given).hexdigest()


@dataclass
class _Daemon:
    proc: asyncio.subprocess.Process
    settings: str
    idle_since: float | None = None  # None while a job holds its cache


class CacheDaemons:
    """The daemons one runner keeps, by their cache (given as it, or as a link to it).
    Every call about a cache is made with the cache's lock held."""

    def __init__(
        self,
        plakar: str,
        idle_s: float,
        max_idle: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plakar = plakar
        self.idle_s = idle_s
        self.max_idle = max_idle
        self._clock = clock
        self._kept: dict[Path, _Daemon] = {}

    def take(self, cache: Path, settings: str) -> bool:
        """Whether the daemon kept on `cache` serves the job taking the cache; one that
        may not is stopped."""
        daemon = self._kept.get(cache := _real(cache))
        if daemon is None:
            return False
        alive = daemon.proc.returncode is None
        recent = daemon.idle_since is not None and self._clock() - daemon.idle_since < self.idle_s
        if alive and recent and daemon.settings == settings and not _replaced(daemon.proc.pid):
            daemon.idle_since = None
            return True
        self.stop(cache)
        return False

    async def start(self, cache: Path, given: Path, settings: str) -> bool:
        """Start a daemon on `cache` (`given`: the path plakar is given, the cache or a
        short link to it) and wait until it listens. False if it does not: the job goes
        on without it."""
        teardown = f"{round(TEARDOWN_IDLES * self.idle_s)}s"
        argv = [self.plakar, "-cachedir", str(given), "cached", "-foreground"]
        proc = await process.start_quiet([*argv, "-teardown", teardown])
        self._kept[_real(cache)] = _Daemon(proc, settings)
        deadline = time.monotonic() + START_PATIENCE_S
        while proc.returncode is None and time.monotonic() < deadline:
            if _listens(given / SOCKET):
                return True
            await asyncio.sleep(START_POLL_S)
        log.warning(
            "plakar's cache daemon on %s did not listen (exit code %s); plakar starts its own",
            cache,
            proc.returncode,
        )
        self.stop(cache)
        return False

    def release(self, cache: Path) -> bool:
        """The job on `cache` ended: whether a daemon of this runner's stays up on it."""
        daemon = self._kept.get(cache := _real(cache))
        if daemon is None:
            return False
        if daemon.proc.returncode is not None:
            del self._kept[cache]
            return False
        daemon.idle_since = self._clock()
        return True

    def idle(self, busy: Callable[[Path], bool]) -> list[Path]:
        """The caches whose daemon is to stop: no job used it for `idle_s`, or more than
        `max_idle` are idle and it has been so the longest. One still `busy` (taking in
        the state its last job wrote: seconds) is left to it until idle for twice
        `idle_s`: stopped, it would leave that state to be fetched from the store again."""
        now = self._clock()
        idle = sorted(
            ((d.idle_since, cache) for cache, d in self._kept.items() if d.idle_since is not None),
            reverse=True,
        )
        return [
            cache
            for n, (since, cache) in enumerate(idle)
            if (n >= self.max_idle or now - since >= self.idle_s)
            and (now - since >= 2 * self.idle_s or not busy(cache))
        ]

    def stop(self, cache: Path) -> None:
        """Stop the daemon kept on `cache`, if any: after a job that did not succeed, say,
        it is not trusted with the next (it may be what the job waited on)."""
        daemon = self._kept.pop(_real(cache), None)
        if daemon is not None and daemon.proc.returncode is None:
            # Its group: a plakar behind a wrapper that does not `exec` goes too.
            process.signal_group(daemon.proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for cache in list(self._kept):
            self.stop(cache)


def _real(cache: Path) -> Path:
    return Path(os.path.realpath(cache))


def _listens(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(str(path))
        except BlockingIOError:  # its backlog is full: it listens
            return True
        except OSError:  # not there yet, or no longer
            return False
        return True


def _replaced(pid: int) -> bool:
    """Whether the program a process runs was replaced (or removed) on disk since."""
    try:
        return os.readlink(f"/proc/{pid}/exe").endswith(" (deleted)")
    except OSError:
        return True
