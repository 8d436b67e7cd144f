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


def damage_file_data(store: Path, data: bytes) -> None:
    """Flip 64 bytes of a file's data (`data`, which must not compress) where a plaintext
    store keeps them, and nothing else. Packfiles of the same data differ in size and
    layout from one backup to the next: damage by position (the middle of the largest)
    missed the data about one run in twelve, and plakar rightly found nothing wrong."""
    needle = data[len(data) // 2 :][:64]
    packs = [p for p in (store / "packfiles").rglob("*") if p.is_file()]
    [pack] = [p for p in packs if needle in p.read_bytes()]
    packed = bytearray(pack.read_bytes())
    at = packed.find(needle)
    packed[at : at + len(needle)] = bytes(b ^ 0xFF for b in needle)
    pack.write_bytes(bytes(packed))
