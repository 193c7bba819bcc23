"""Ctrl-C as design.md says: the first stops training after the current batch (the run then
finishes and is marked interrupted); the second raises KeyboardInterrupt at once (exit 130).

A token rather than an exception for the first press, so that the training loop decides where
to stop (between batches, never mid-update) and the weights stay usable. A token rather than a
module-level flag, so that no process-wide state decides: whoever can be interrupted (the CLI)
makes one and passes it down (`stop=`) to the training loops and runners it calls.

Python runs a signal handler between any two bytecodes of the main thread, also inside a weakref
callback or a `__del__` (the import system's module locks have such callbacks); an exception raised
there is printed ("Exception ignored in") and dropped. So the second press also marks the token
aborted: its next read raises KeyboardInterrupt again, and so does every output about to be renamed
into place (`raise_if_aborted`, called by files.py), so a swallowed second press still exits 130
leaving nothing; and the dropped one prints no traceback.
"""

from __future__ import annotations

import signal
import sys
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
        self._aborted = False

    @property
    def requested(self) -> bool:
        """True once `request()` (a first Ctrl-C) asked training to stop; raises KeyboardInterrupt
        once `abort()` (a second one) was called, in case Python dropped the handler's own raise."""
        if self._aborted:
            raise KeyboardInterrupt
        return self._requested

    @property
    def aborted(self) -> bool:
        """True once a second Ctrl-C asked the run to end at once (read without raising)."""
        return self._aborted

    def abort(self) -> None:
        """Ask the run to end at once: every later read of `requested` raises KeyboardInterrupt."""
        self._requested = self._aborted = True

    def request(self) -> None:
        """Ask the training loops and runners given this token to stop after their current batch or unit."""
        self._requested = True

    def __reduce__(self):
        return (StopToken, ())  # another process gets a token of its own, never set by this one

    def __repr__(self) -> str:
        return f"StopToken(requested={self._requested}, aborted={self._aborted})"


# The token of the SIGINT handler installed now, if any: one handler per process, so one token.
_installed: StopToken | None = None


def raise_if_aborted() -> None:
    """Raise KeyboardInterrupt if a second Ctrl-C came (files.py calls it before renaming an output
    into place: an aborted run leaves nothing, even where Python dropped the handler's raise)."""
    if _installed is not None and _installed.aborted:
        raise KeyboardInterrupt


def token(stop: StopToken | None) -> StopToken:
    """`stop`, or for a caller who passed none a token that is never set."""
    return stop if stop is not None else StopToken()


@contextmanager
def two_stage_ctrl_c(notify: Callable[[], None]) -> Iterator[StopToken]:
    """Install the two-stage SIGINT handler for the block and yield its token: the first Ctrl-C sets
    it (and `notify` tells the user), the second aborts it and raises KeyboardInterrupt."""
    global _installed
    stop = StopToken()

    def handler(signum, frame) -> None:
        if stop.aborted or stop.requested:
            stop.abort()
            raise KeyboardInterrupt
        stop.request()
        notify()

    def quiet_hook(unraisable) -> None:  # the second press dropped inside a callback: no traceback
        if not (stop.aborted and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            hook(unraisable)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C as it is
        previous = None
    if previous is not None:
        outer, hook = _installed, sys.unraisablehook
        _installed, sys.unraisablehook = stop, quiet_hook
    try:
        yield stop
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
            _installed, sys.unraisablehook = outer, hook
