"""A private directory per plakar run: configuration (with secrets, 0600) and cache."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.runner.plakar_args import ConnectorSet, Workspace, config_files


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


# plakar listens on <cachedir>/cached.sock; a Unix socket path has at most 107 bytes.
_MAX_SOCKET_PATH = 100
_short_root: Path | None = None


def _root_for(root: Path) -> Path:
    """The work dir, or when its paths are too long for plakar's socket, a private
    directory of this process's under the system's temporary directory (made once, with
    a random name, so nobody can have made it before)."""
    global _short_root
    if len(str(root)) + len("/jXXXXXXXX/cache/cached.sock") <= _MAX_SOCKET_PATH:
        return root
    if _short_root is None:
        _short_root = Path(tempfile.mkdtemp(prefix="plakar-cp-"))
        atexit.register(shutil.rmtree, _short_root, ignore_errors=True)
    return _short_root


@contextmanager
def workspace(root: Path, connectors: ConnectorSet) -> Iterator[Workspace]:
    """Create the run's directories; remove them (and plakar's cache daemon) afterwards."""
    base = Path(tempfile.mkdtemp(prefix="j", dir=_root_for(root)))
    ws = Workspace(config_dir=base / "config", cache_dir=base / "cache")
    ws.config_dir.mkdir(mode=0o700)
    ws.cache_dir.mkdir(mode=0o700)
    for name, text in config_files(connectors).items():
        _write_private(ws.config_dir / name, text)
    try:
        yield ws
    finally:
        stop_cache_daemon(ws.cache_dir)
        shutil.rmtree(base, ignore_errors=True)


def stop_cache_daemon(cache_dir: Path) -> None:
    """plakar starts `plakar -cachedir DIR cached` in a session of its own, which would
    outlive the job by a few seconds; the run's cache dir identifies it exactly."""
    wanted = str(cache_dir)
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if len(args) >= 4 and args[-1] == "cached" and wanted in args:
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
