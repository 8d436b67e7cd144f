"""plakar's cache, kept per store from one job to the next.

plakar caches what it learnt of a store under its `-cachedir`: the store's state (which
blobs are in which packfile; SQLite, `2.0.0/store/<repository id>/state.db`, written only by
its `cached` daemon, read by the commands) and the snapshots' headers (pebble,
`2.0.0/repository/<repository id>/`). With that cache an incremental backup reads only the
states and headers that are new since the previous one; with a fresh one every command
fetches them all from the store again.

Where: `<work dir>/caches/<key>/<n>/`, `<key>` naming the store connector. plakar files
everything inside by the store's own repository id, so a connector moved to another store
(or two connectors of one store) never mix what they cache.

Several jobs of one store at once: each holds one cache of the store alone, the first of
`0`, `1`, ... whose lock (`<n>.lock`, flock: held by the runner's open file, dropped by the
kernel when the runner dies however it dies) it can take; so jobs never share a cache, and
a host keeps as many caches of a store as it ran jobs of it at once. Sharing one would work
for plakar's SQLite state, but its pebble cache admits one process: the second job would go
without it, and a job's end could not stop the `cached` daemon another job still talks to.

plakar's daemon (`cached`) takes in the state a backup wrote (`<state>.state`, removed
once taken in) after the backup has exited. The runner starts that daemon itself and keeps
it up from one job of the store to the next (cache_daemon.py), so the next job finds it
ready and its requests wait behind that state. A cache found without a daemon of this
runner's (plakar started one itself, or another runner held the cache) may have a daemon
left on it by the job before: the job waits for it to take its state in (up to SETTLE_S),
then stops it (a plakar that connects to a daemon as it exits takes the lost connection
for a failed rebuild): a state not taken in by then is fetched from the store again.

A job killed (the runner `kill -9`'d: plakar and the runner's daemon die with it, a daemon
plakar started itself does not):
- the next holder of the cache first stops any daemon left on it, then removes what
  a run leaves only when it is killed: its per-run caches (`scan`, `packing`, `check`,
  which plakar deletes when a run ends) and state files no daemon took in (the store has
  them; they are fetched again);
- what remains was written in transactions plakar commits last (SQLite WAL; a state is
  published after its entries; pebble replays its log), so a process killed mid-write
  leaves it whole.
plakar writes without fsync (SQLite `synchronous=OFF`, pebble `NoSync`): a cache is safe
across processes killed, not across a machine that stopped. So each cache records the boot
it was last used in (`<n>.boot`) and one from an earlier boot is started afresh.

A cache no job has used for UNUSED_S (its store deleted, or no longer backed up from this
host) is swept: removed, under its lock, by the runner at start and every SWEEP_EVERY_S.
Its lock file stays, as another runner may be about to lock it: it holds nothing.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import fcntl
import hashlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from services.runner.cache_daemon import SOCKET, CacheDaemons

CACHES = "caches"
# The caches of one run (plakar deletes them when the run ends).
_PER_RUN = ("scan", "packing", "check")
# Written once per cache by `plakar -disable-security-check` (plakar's cookies live there).
_SECURITY_COOKIE = Path("cookies", "1.0.0", ".disabled-security-check")
# A Unix socket path (plakar's daemon's) has at most 107 bytes.
MAX_SOCKET_PATH = 100
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# How long a job waits for the daemon of the job before it to take in that job's state
# (seconds on a large tree), and how often it looks: at the state files often, for the
# daemon (a read of every process's arguments, milliseconds on a busy host) less so.
SETTLE_S = 10.0
SETTLE_POLL_S = 0.05
DAEMON_POLL_S = 0.5

# A cache unused this long is removed; the sweep looks this often.
UNUSED_S = 30 * 86400.0
SWEEP_EVERY_S = 6 * 3600.0

_short_root: Path | None = None


def cache_key(store_id: str) -> str:
    """A short name for a store connector's caches (plakar's socket path must stay short)."""
    return hashlib.sha256(store_id.encode()).hexdigest()[:16]


def leftovers(cache: Path, daemon_kept: bool = False) -> list[Path]:
    """What only a killed run leaves in a cache: its per-run caches and, unless the
    runner kept a daemon on it to take them in, state files that no daemon took in.
    Removed only while no run uses the cache."""
    found = [p for kind in _PER_RUN for p in sorted(cache.glob(f"*/{kind}/*"))]
    return found if daemon_kept else found + pending_states(cache)


def pending_states(cache: Path) -> list[Path]:
    """States written by a backup that plakar's daemon has not taken in yet."""
    return sorted(cache.glob("*/store/*/*.state"))


def reusable(recorded_boot: str | None, boot: str) -> bool:
    """Whether a cache last used in `recorded_boot` may be used in `boot` (unsynced writes
    do not outlive the machine)."""
    return bool(boot) and recorded_boot == boot


def security_check_disabled(cache: Path) -> bool:
    """Whether plakar's network check is already off in this cache dir."""
    return (cache / _SECURITY_COOKIE).exists()


def short_dir() -> Path:
    """A private directory of this process's, made once with a random name under the
    system's temporary directory, for paths that must be short (plakar's socket)."""
    global _short_root
    if _short_root is None:
        _short_root = Path(tempfile.mkdtemp(prefix="plakar-cp-"))
        atexit.register(shutil.rmtree, _short_root, ignore_errors=True)
    return _short_root


def socket_fits(cache: Path) -> bool:
    return len(str(cache)) + len("/" + SOCKET) <= MAX_SOCKET_PATH


def _boot() -> str:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:  # not Linux: no way to tell boots apart, so never reuse
        return ""


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _lock_of(cache: Path) -> Path:
    return cache.with_name(f"{cache.name}.lock")


def _reset(cache: Path, boot_file: Path, daemon_kept: bool) -> None:
    """Make a cache this run holds ready: no leftover of a killed run, nothing from an
    earlier boot, no daemon on it but the one this runner kept (in the same boot)."""
    boot = _boot()
    if not daemon_kept:
        stop_cache_daemon(cache)
        recorded = boot_file.read_text() if boot_file.exists() else None
        if not reusable(recorded, boot):
            shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(mode=0o700, exist_ok=True)
    for path in leftovers(cache, daemon_kept):
        _remove(path)
    boot_file.write_text(boot)


@asynccontextmanager
async def kept_cache(
    root: Path, store_id: str, daemons: CacheDaemons | None = None, settings: str = ""
) -> AsyncIterator[Path]:
    """The store's cache for this run alone (see the module's doc): the path to give plakar
    as its -cachedir, held until the block ends. With `daemons`, plakar's daemon on it is
    one the runner keeps (cache_daemon.py; `settings`: the store's, store_settings);
    without, plakar starts its own."""
    base = root / CACHES / cache_key(store_id)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    n = 0
    while (fd := _try_lock(_lock_of(base / str(n)))) is None:
        n += 1
    cache = base / str(n)
    try:
        kept = daemons is not None and daemons.take(cache, settings)
        if not kept:
            await settled(cache)
        _reset(cache, base / f"{n}.boot", kept)
        given = cache
        if not socket_fits(cache):
            # A link with a short path: plakar's socket is made through it, in the cache.
            given = short_dir() / f"{cache_key(store_id)}-{n}"
            given.unlink(missing_ok=True)
            given.symlink_to(cache)
        if daemons is not None and not kept:
            await daemons.start(cache, given, settings)
        yield given
    except BaseException:
        if daemons is not None:
            daemons.stop(cache)
        raise
    finally:
        if daemons is not None and daemons.release(cache):
            stop_idle(daemons)  # one more idle: the one idle longest may be one too many
        elif not pending_states(cache):
            stop_cache_daemon(cache)
        os.close(fd)


def stop_idle(daemons: CacheDaemons) -> list[Path]:
    """Stop the daemons the runner keeps idle for too long or too many (CacheDaemons.idle),
    each with its cache's lock held (no job starts on it meanwhile); answers their caches."""
    stopped = []
    for cache in daemons.idle(busy=lambda cache: bool(pending_states(cache))):
        fd = _try_lock(_lock_of(cache))
        if fd is None:
            continue  # a job is taking it
        try:
            daemons.stop(cache)
            stopped.append(cache)
        finally:
            os.close(fd)
    return stopped


def sweep(root: Path, now: float, unused_s: float = UNUSED_S) -> list[Path]:
    """Remove the caches under `root` that no job has used for `unused_s` (their
    `<n>.boot`, written at each use, is that old) and that no job holds now; answers
    those removed."""

    def unused(boot_file: Path) -> bool:
        try:
            return now - boot_file.stat().st_mtime >= unused_s
        except FileNotFoundError:
            return False

    removed: list[Path] = []
    for boot_file in sorted((root / CACHES).glob("*/*.boot")):
        if not unused(boot_file):
            continue
        fd = _try_lock(boot_file.with_suffix(".lock"))
        if fd is None:
            continue  # a job holds it now
        cache = boot_file.with_suffix("")
        try:
            if not unused(boot_file):
                continue  # a job used it meanwhile
            stop_cache_daemon(cache)
            shutil.rmtree(cache, ignore_errors=True)
            boot_file.unlink(missing_ok=True)
            removed.append(cache)
        finally:
            os.close(fd)
    return removed


async def settled(cache: Path, patience_s: float = SETTLE_S) -> None:
    """Wait, up to `patience_s`, for the daemon an earlier job left on the cache to take
    in the states it was left to: stopped halfway, it would leave them to be fetched
    from the store again."""
    deadline = time.monotonic() + patience_s
    daemon_seen_at = -DAEMON_POLL_S
    # Files and processes: nothing to wait on but the looking.
    while (now := time.monotonic()) < deadline and pending_states(cache):
        if now - daemon_seen_at >= DAEMON_POLL_S:
            if not daemons(cache):
                return
            daemon_seen_at = now
        await asyncio.sleep(SETTLE_POLL_S)


def stop_cache_daemon(cache_dir: Path) -> None:
    """Stop any daemon on a cache: plakar starts `plakar -cachedir DIR cached` in a session
    of its own, which would outlive the job by a few seconds."""
    for pid in daemons(cache_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def daemons(cache_dir: Path) -> list[int]:
    """plakar's `cached` daemons of a cache dir (given as it, or as a link to it)."""
    wanted = os.path.realpath(cache_dir)
    found = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        # `plakar -cachedir DIR cached [-flag...]`: plakar's own, or one the runner started.
        at = args.index("-cachedir") if "-cachedir" in args else -1
        if at < 0 or args[at + 2 : at + 3] != ["cached"]:
            continue
        given = args[at + 1]
        if given == str(cache_dir) or os.path.realpath(given) == wanted:
            found.append(int(pid_dir.name))
    return found
