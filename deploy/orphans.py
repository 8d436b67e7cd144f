"""The supervisor adopts what its services leave behind, and stops what a dead job left.

A runner starts each plakar in a session of its own, and the kernel kills that process
when the runner dies, even by `kill -9`. A process plakar or a wrapper script forked is
not killed with it: a `PLAKAR_CP_PLAKAR_BIN` that runs plakar without `exec` leaves a
plakar that goes on writing to the store or the destination while the job's next attempt
does the same. As a child subreaper, `plakar-cp up` becomes the parent of every process
orphaned below it, and kills those whose session's leader is gone: the runner's sessions
are its jobs' (and its cache daemons'), so one whose leader died is a job whose runner
died. A process in a live session (plakar's own cache daemon leads its own, PostgreSQL's
backends are in the supervisor's) is left to end by itself, and reaped when it does.

Linux keeps a session's id from being given to a new process while any process is in
that session, so a session whose leader is gone is never mistaken for a new one."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Proc:
    pid: int
    state: str
    session: int


def become_subreaper() -> None:
    """Processes orphaned below this one are given to it rather than to init."""
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def sort_out(
    adopted: Iterable[Proc], leader_alive: Callable[[int], bool]
) -> tuple[list[int], list[int]]:
    """Of the processes adopted (children not started by the supervisor): those to
    reap (they exited) and those to kill (their session's leader is gone)."""
    reap: list[int] = []
    kill: list[int] = []
    for p in adopted:
        if p.state == "Z":
            reap.append(p.pid)
        elif p.session != p.pid and not leader_alive(p.session):
            kill.append(p.pid)
    return reap, kill


def tend(own: Collection[int]) -> list[int]:
    """Reap the adopted processes that exited and kill those a dead job left; `own`: the
    supervisor's own children, which their `Popen` waits for. Returns the pids killed."""
    reap, kill = sort_out(_adopted(own), _alive)
    for pid in reap:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    for pid in kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return kill


def _adopted(own: Collection[int]) -> list[Proc]:
    found = []
    for pid in _children():
        if pid not in own and (p := _stat(pid)) is not None:
            found.append(p)
    return found


def _children() -> list[int]:
    """The supervisor's children, as the kernel lists them for each of its threads (a
    few reads, where all of /proc would be hundreds)."""
    pids: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{tid}/children") as f:
            pids += [int(c) for c in f.read().split()]
    return pids


def _stat(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # After the command's name (which may hold spaces and parentheses): state,
            # parent, process group, session.
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return Proc(pid, fields[0], int(fields[3]))


def _alive(pid: int) -> bool:
    p = _stat(pid)
    return p is not None and p.state != "Z"
