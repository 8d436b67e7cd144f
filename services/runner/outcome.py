"""How a plakar run ends up as a job status (pure).

A job succeeds only when plakar exited 0 *and* reported no error: plakar exits 0
on partial failures (`... with N errors`, failed syncs), which count as failures.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.runner.plakar_output import OutputState
from shared.lifecycle import JobStatus

EXIT_MEANINGS = {
    1: "plakar failed",
    2: "plakar rejected its arguments",
    65: "check found corruption",
    66: "store cannot be opened",
    77: "wrong passphrase or decryption failure",
    78: "incompatible store version",
}


@dataclass(frozen=True)
class Outcome:
    status: JobStatus
    error: str | None


def decide(
    task_type: str, exit_code: int, out: OutputState, cancelled_by: str | None = None
) -> Outcome:
    if cancelled_by is not None:
        return Outcome("cancelled", f"cancelled by {cancelled_by}")
    if out.prompt:
        return Outcome(
            "failed",
            f"plakar asked for the {out.prompt}: set the passphrase option of that store connector",
        )
    if exit_code != 0:
        meaning = EXIT_MEANINGS.get(exit_code, f"plakar exited with code {exit_code}")
        detail = _last_error(out)
        return Outcome("failed", f"{meaning}: {detail}" if detail else meaning)
    if out.errors:
        noun = "error" if out.errors == 1 else "errors"
        return Outcome("failed", f"plakar reported {out.errors} {noun}")
    if task_type == "check" and not out.result_seen and not out.ok_items:
        return Outcome("failed", "no snapshot matched the window and labels: nothing was checked")
    if task_type in ("backup", "check") and not out.result_seen:
        return Outcome("failed", f"plakar printed no {task_type} result")
    return Outcome("succeeded", None)


def _last_error(out: OutputState) -> str | None:
    if not out.error_lines:
        return None
    line = out.error_lines[-1]
    # The fatal line is `<argv0>: <error>`; the path of the binary says nothing.
    head, sep, rest = line.partition(": ")
    if sep and head.endswith("plakar"):
        return rest
    return line
