"""The `local` engine: units on a pool of worker processes on this machine, started by forkserver.

A worker killed mid-unit breaks the pool: the unit it ran is charged an attempt (a mark file per
worker says which), the others caught in the break run again on a fresh pool.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

import torch

from .interrupt import StopToken, token
from .runners import POLL_SECONDS, Ledger, Result, RunInterrupted, Runner, Unit, run_unit

# Worker-process state of the local engine, set once per process by `_init_worker`.
_WORKER: dict[str, Any] = {}


def _init_worker(shared: Any, threads: int, marks: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    torch.set_num_threads(threads)
    _WORKER.update(shared=shared, threads=threads, marks=marks)


def _local_call(unit: Unit, seed: int) -> Result:
    # Which unit this process runs now, written before it starts, so that a crash is charged to it.
    Path(_WORKER["marks"], str(os.getpid())).write_text(unit.key)
    return run_unit(_WORKER["shared"], unit, seed, _WORKER["threads"])


def _transport_error(error: BaseException) -> Result:
    """A unit whose arguments or result could not cross to or from its worker (not picklable):
    a failure of that unit, not of the run; not retried, since a second attempt pickles the same."""
    message = f"cannot send the unit or its result between processes ({type(error).__name__}: {error})"
    return ("error", type(error).__name__, message, False)


def _forkserver(units: Iterable[Unit] = ()) -> multiprocessing.context.BaseContext:
    """Workers fork from a server that has torch imported already: quick to start, and safe
    (the server never ran torch's thread pools, unlike a plain fork of the driver). The server also
    imports the modules of the first run's units (it starts once per process), so that a fresh
    pool's workers do not each import them again (seconds per worker for stockrnn.tune)."""
    modules = {getattr(unit.fn, "__module__", None) for unit in units} - {None, "__main__"}
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, *sorted(modules)])
    if threading.current_thread() is threading.main_thread():
        # Started with Ctrl-C ignored: the server is in the terminal's process group, and a Ctrl-C
        # while it imports torch (seconds) killed it with a traceback; the driver's next write to it
        # then failed and the run ended with exit 1 and no message. Its workers ignore Ctrl-C anyway.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGINT, previous)
    return context


class LocalRunner(Runner):
    """A process pool on this machine: `jobs` workers, `threads` torch threads each. Workers start by
    forkserver (never fork: torch's thread pools do not survive it) and get the shared data once."""

    def run(self, units, shared=None, on_progress=None, stop=None):
        stop = token(stop)
        ledger = Ledger(units, self.seed, on_progress)
        todo = list(ledger.units)
        while todo:
            todo = self._round(ledger, todo, shared, stop)
        return ledger.outcomes

    def _round(self, ledger: Ledger, keys: list[str], shared: Any, stop: StopToken) -> list[str]:
        """Run `keys` on a fresh pool until done or the pool breaks; return the keys to run again."""
        with tempfile.TemporaryDirectory(prefix="stockrnn-") as marks:
            pool = ProcessPoolExecutor(
                max_workers=min(self.jobs, len(keys)),
                mp_context=_forkserver(ledger.units[key] for key in keys),
                initializer=_init_worker,
                initargs=(shared, self.threads, marks),
            )
            # A sliding window of `jobs` units at a time: a unit handed to the pool cannot be taken
            # back, so a first Ctrl-C (the token) leaves at most `jobs` units to finish.
            pending, futures = list(keys), {}

            def top_up() -> None:
                while pending and len(futures) < self.jobs and not stop.requested:
                    key = pending.pop(0)
                    futures[pool.submit(_local_call, ledger.units[key], ledger.seeds[key])] = key

            workers, again, broken = [], [], []
            try:  # a second Ctrl-C may surface at any read of the token (interrupt.py): all inside
                top_up()
                # The pool's own process table (CPython keeps the exit codes there): the one way to tell
                # the worker that died from those the pool then terminated. Without it, every unit caught
                # in a break is charged an attempt (see _after_crash).
                workers = list((getattr(pool, "_processes", None) or {}).values())
                while futures:
                    finished, _ = wait(set(futures), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                    for future in finished:
                        key = futures.pop(future)
                        error = future.exception()
                        if isinstance(error, BrokenProcessPool):
                            broken.append(key)
                        elif ledger.record(key, future.result() if error is None else _transport_error(error)):
                            again.append(key)
                    if not broken:
                        top_up()
                again += pending if broken else []  # a broken pool runs nothing more: the rest go again
                pool.shutdown(wait=True)
                if stop.requested:
                    return []
            except KeyboardInterrupt:
                workers = workers or list((getattr(pool, "_processes", None) or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for process in workers:
                    process.terminate()
                for process in workers:
                    process.join()
                raise RunInterrupted(ledger.outcomes) from None
            return again + self._after_crash(ledger, broken, workers, Path(marks))

    @staticmethod
    def _after_crash(ledger: Ledger, broken: list[str], workers: list, marks: Path) -> list[str]:
        """Charge an attempt to the unit whose worker died; run the others caught in the break again."""
        if not broken:
            return []
        dead = [p for p in workers if p.exitcode not in (None, 0, -signal.SIGTERM)]
        culprits = {(marks / str(p.pid)).read_text(): p.exitcode for p in dead if (marks / str(p.pid)).exists()}
        culprits = {key: code for key, code in culprits.items() if key in broken}
        if not culprits:  # cannot tell which: charge every unit in the break, so the run still ends
            culprits = dict.fromkeys(broken, None)
        message = "worker process died (exit code {}) while running this unit"
        return [key for key in broken if key not in culprits or ledger.crashed(key, message.format(culprits[key]))]
