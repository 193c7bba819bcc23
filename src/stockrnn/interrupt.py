"""Ctrl-C as design.md says: the first stops training after the current batch (the run then
finishes and is marked interrupted); the second raises KeyboardInterrupt at once (exit 130).

A token rather than an exception for the first press, so that the training loop decides where
to stop (between batches, never mid-update) and the weights stay usable. A token rather than a
module-level flag, so that no process-wide state decides: whoever can be interrupted (the CLI)
makes one and passes it down (`stop=`) to the training loops and runners it calls.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class StopToken:
    """A request to stop: set once by `request()`, read between batches and units (`requested`).

    Local to its process: a copy sent to another process (a runner's worker) is a fresh token that
    nothing sets, since the driver stops work elsewhere by cancelling units, not by reaching into
    them. A plain attribute rather than a threading.Event: the signal handler sets it, and setting
    an Event takes a lock that the interrupted code could hold."""

    def __init__(self) -> None:
        self._requested = False

    @property
    def requested(self) -> bool:
        """True once `request()` (a first Ctrl-C) asked training to stop."""
        return self._requested

    def request(self) -> None:
        """Ask the training loops and runners given this token to stop after their current batch or unit."""
        self._requested = True

    def __reduce__(self):
        return (StopToken, ())  # another process gets a token of its own, never set by this one

    def __repr__(self) -> str:
        return f"StopToken(requested={self._requested})"


def token(stop: StopToken | None) -> StopToken:
    """`stop`, or for a caller who passed none a token that is never set."""
    return stop if stop is not None else StopToken()


@contextmanager
def two_stage_ctrl_c(notify: Callable[[], None]) -> Iterator[StopToken]:
    """Install the two-stage SIGINT handler for the block and yield its token: the first Ctrl-C sets
    it (and `notify` tells the user), the second raises KeyboardInterrupt."""
    stop = StopToken()

    def handler(signum, frame) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.request()
        notify()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C as it is
        previous = None
    try:
        yield stop
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
