"""Child processes that never outlive their parent."""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A preexec_fn: the kernel sends `sig` to the child when its parent dies. The
    signals the project stops children with take their default action in the child:
    one ignored in the parent (a background job of a shell ignores SIGINT) would be
    ignored by the child too, so a cancel could not interrupt it, nor its parent's
    death stop it."""

    stops = {sig, signal.SIGINT, signal.SIGTERM} - {signal.SIGKILL}  # SIGKILL has no handler

    def apply() -> None:
        for stop in stops:
            signal.signal(stop, signal.SIG_DFL)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return apply
