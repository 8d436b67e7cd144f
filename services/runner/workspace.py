"""A private directory per plakar run: configuration (with secrets, 0600); plakar's cache
fresh for the run, or the store's kept one (plakar_cache.py)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from services.runner.cache_daemon import CacheDaemons, store_settings
from services.runner.plakar_args import ConnectorSet, Workspace, config_files
from services.runner.plakar_cache import MAX_SOCKET_PATH, kept_cache, short_dir, stop_cache_daemon


class WorkDirError(Exception):
    """A work dir another user could tamper with."""


def check_work_dir(root: Path) -> None:
    """Create the runner's work dir (0700) or make sure it is safe to use: a directory
    (not a link) of this user's that nobody else may write to."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        raise WorkDirError(f"work dir {root} is not a directory (a symbolic link?)")
    if st.st_uid != os.geteuid():
        raise WorkDirError(f"work dir {root} belongs to uid {st.st_uid}, not to this runner")
    if st.st_mode & 0o022:
        mode = oct(stat.S_IMODE(st.st_mode))
        raise WorkDirError(f"work dir {root} may be written by other users (mode {mode})")


def _write_private(path: Path, text: str) -> None:
    # A new file of ours, never one found in place (nor where a link points).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(path, flags, 0o600), "w") as f:
        f.write(text)


def _root_for(root: Path) -> Path:
    """The work dir, or when its paths are too long for plakar's socket, a private
    directory of this process's (see plakar_cache.short_dir)."""
    if len(str(root)) + len("/jXXXXXXXX/cache/cached.sock") <= MAX_SOCKET_PATH:
        return root
    return short_dir()


@asynccontextmanager
async def workspace(
    root: Path, connectors: ConnectorSet, keep_cache: CacheDaemons | None = None
) -> AsyncIterator[Workspace]:
    """Create the run's directories; remove them (and plakar's cache daemon) afterwards.
    `keep_cache`: plakar's cache is the store's kept one (plakar_cache.py), not the run's,
    and its daemon one these keep (cache_daemon.py)."""
    base = Path(tempfile.mkdtemp(prefix="j", dir=_root_for(root)))
    config_dir = base / "config"
    config_dir.mkdir(mode=0o700)
    for name, text in config_files(connectors).items():
        _write_private(config_dir / name, text)
    try:
        async with AsyncExitStack() as stack:
            if keep_cache is not None:
                store = connectors.store
                kept = kept_cache(root, store.id, keep_cache, store_settings(store))
                cache_dir = await stack.enter_async_context(kept)
            else:
                cache_dir = base / "cache"
                cache_dir.mkdir(mode=0o700)
                stack.callback(stop_cache_daemon, cache_dir)
            yield Workspace(config_dir=config_dir, cache_dir=cache_dir)
    finally:
        shutil.rmtree(base, ignore_errors=True)
