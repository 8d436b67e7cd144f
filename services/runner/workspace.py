"""A private directory per plakar run: configuration (with secrets, 0600) and cache."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.runner.plakar_args import ConnectorSet, Workspace, config_files


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


# plakar listens on <cachedir>/cached.sock; a Unix socket path has at most 107 bytes.
_MAX_SOCKET_PATH = 100


def _root_for(root: Path) -> Path:
    if len(str(root)) + len("/jXXXXXXXX/cache/cached.sock") <= _MAX_SOCKET_PATH:
        return root
    return Path(tempfile.gettempdir()) / "plakar-cp"


@contextmanager
def workspace(root: Path, connectors: ConnectorSet) -> Iterator[Workspace]:
    """Create the run's directories; remove them (and plakar's cache daemon) afterwards."""
    root = _root_for(root)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    base = Path(tempfile.mkdtemp(prefix="j", dir=root))
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
