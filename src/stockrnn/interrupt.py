"""Ctrl-C as design.md says: the first stops training after the current batch (the run then
finishes and is marked interrupted); the second raises KeyboardInterrupt at once (exit 130).

A flag rather than an exception for the first press, so that the training loop decides where
to stop (between batches, never mid-update) and the weights stay usable.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_state = {"requested": False}


def requested() -> bool:
    """True once a first Ctrl-C (or `request()`) asked training to stop."""
    return _state["requested"]


def request() -> None:
    """Ask every training loop to stop after its current batch (what a first Ctrl-C does)."""
    _state["requested"] = True


def reset() -> None:
    _state["requested"] = False


@contextmanager
def two_stage_ctrl_c(notify: Callable[[], None]) -> Iterator[None]:
    """Install the two-stage SIGINT handler for the block; `notify` tells the user after the first."""

    def handler(signum, frame) -> None:
        if requested():
            raise KeyboardInterrupt
        request()
        notify()

    reset()
    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C as it is
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        reset()
