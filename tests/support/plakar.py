"""plakar run by hand, to check what the control plane did or to compare with it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def direct(
    plakar: str, workdir: Path, passphrase: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """argv prefix and environment for plakar with its own config and cache dirs."""
    cfg, cache = workdir / "cfg", workdir / "cache"
    cfg.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    base = [plakar, "-configdir", str(cfg), "-cachedir", str(cache)]
    subprocess.run([*base, "-disable-security-check"], check=True, capture_output=True)
    # plakar needs $HOME even when every directory is given.
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir)}
    if passphrase:
        env["PLAKAR_PASSPHRASE"] = passphrase
    return base, env
