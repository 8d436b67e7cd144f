"""The concurrency a runner recommends for its host (pure)."""

from __future__ import annotations


def recommended_concurrency(task_type: str, cpu_count: int | None) -> int:
    """plakar's own default is one worker per CPU but one. Backup, restore and sync
    mostly wait on disks and the network, so two per CPU keeps them busy; check is
    bound by hashing and decryption, so one per CPU."""
    cpus = max(1, cpu_count or 1)
    if task_type == "check":
        return cpus
    return min(64, 2 * cpus)
