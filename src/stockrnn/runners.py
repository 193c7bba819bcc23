"""One runner interface, three engines: the library's units of work (fit one ticker, one backtest
fold, one search trial ...) run `sequential`ly, on a `local` process pool, or on `ray`.

Results are identical to the last digit whatever the engine and the number of jobs, because each
unit is seeded from the run seed and its own key (never from scheduling order) and runs with the
same number of torch threads in every engine (floating-point sums differ between thread counts).
A worker killed mid-unit is retried once; a unit that fails twice is reported as failed and the
run finishes the rest. Bad input (`DataError`, `ConfigError`) is reported at once, not retried.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import signal
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, DataError
from .interrupt import StopToken, token

ENGINES = ("sequential", "local", "ray")
# Measured in bench/results/threads.md: one thread per unit is as fast as two on this kind of
# machine and never fights a neighbour; spend the cores on parallel units instead.
DEFAULT_THREADS = 1
POLL_SECONDS = 0.2  # how often a waiting driver looks for a first Ctrl-C
MAX_ATTEMPTS = 2
NOT_RETRIED = (DataError, ConfigError)  # bad input: a second attempt cannot help

ProgressCallback = Callable[[int, int, int], None]  # (done, failed, total)


@dataclass(frozen=True)
class Unit:
    """One unit of work: `fn(shared, *args, **kwargs)` (or `fn(*args, **kwargs)` without shared data).

    `fn` must be a module-level function, so that it pickles by name to other processes."""

    key: str
    fn: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What became of one unit: its value, or the error that ended its last attempt."""

    key: str
    value: Any = None
    error: str | None = None
    error_type: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the outstanding units were cancelled; `outcomes` holds the finished ones."""

    def __init__(self, outcomes: dict[str, Outcome]):
        super().__init__(f"interrupted after {len(outcomes)} finished unit(s)")
        self.outcomes = outcomes


def unit_seed(run_seed: int, key: str) -> int:
    """A 32-bit seed from the run seed and the unit's key: stable across processes and machines
    (sha256, not Python's salted `hash`), and independent of when or where the unit runs."""
    return int.from_bytes(hashlib.sha256(f"{run_seed}:{key}".encode()).digest()[:4], "big")


def resolve_jobs(jobs: int) -> int:
    """`jobs` parallel units; 0 means one per core."""
    if jobs < 0:
        raise ConfigError(f"--jobs must be 0 (every core) or a positive number, got {jobs}")
    return jobs or os.cpu_count() or 1


def failures(outcomes: dict[str, Outcome]) -> list[Outcome]:
    """The failed units, in key order: the caller reports them and exits with code 4."""
    return [outcomes[key] for key in sorted(outcomes) if not outcomes[key].ok]


# -- one unit, in whichever process runs it ----------------------------------------------------
Result = tuple  # ("ok", value) or ("error", type name, message, retryable)


def limit_threads(threads: int) -> None:
    """This process's torch threads and the threads of the BLAS under NumPy (threadpoolctl), from
    now on: a float64 sum split over another number of threads rounds differently, so the driver
    must compute as the workers do (a Ray worker's OMP_NUM_THREADS is 1; the global ridge gave other
    last digits on Ray)."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)


@contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """`limit_threads` for a block only; the caller's thread counts come back afterwards."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def unit_context(seed: int, threads: int) -> Iterator[None]:
    """Run a block on `threads` threads (`thread_limit`) with torch/numpy/random seeded from `seed`;
    restore the caller's threads and random states afterwards (the sequential engine runs in it)."""
    states = random.getstate(), np.random.get_state()
    try:
        with thread_limit(threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed)
            random.seed(seed)
            yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])


def run_unit(shared: Any, unit: Unit, seed: int, threads: int) -> Result:
    """Run one unit and return its result as plain data (exceptions need not unpickle elsewhere)."""
    args = unit.args if shared is None else (shared, *unit.args)
    with unit_context(seed, threads):
        try:
            return ("ok", unit.fn(*args, **unit.kwargs))
        except NOT_RETRIED as exc:
            return ("error", type(exc).__name__, str(exc), False)
        except Exception as exc:
            return ("error", type(exc).__name__, str(exc) or repr(exc), True)


class Ledger:
    """The driver's book of a run: attempts per unit, the outcomes so far, and progress."""

    def __init__(self, units: Iterable[Unit], run_seed: int, on_progress: ProgressCallback | None):
        self.units = {}
        for unit in units:
            if unit.key in self.units:
                raise ValueError(f"two units share the key '{unit.key}'")
            self.units[unit.key] = unit
        self.seeds = {key: unit_seed(run_seed, key) for key in self.units}
        self.attempts = dict.fromkeys(self.units, 0)
        self.outcomes: dict[str, Outcome] = {}
        self.on_progress = on_progress
        self.progress()

    def record(self, key: str, result: Result) -> bool:
        """File one attempt's result; True when the unit should run again."""
        self.attempts[key] += 1
        if result[0] == "ok":
            return self._finish(Outcome(key, value=result[1], attempts=self.attempts[key]))
        _, error_type, message, retryable = result
        if retryable and self.attempts[key] < MAX_ATTEMPTS:
            return True
        return self._finish(Outcome(key, error=message, error_type=error_type, attempts=self.attempts[key]))

    def crashed(self, key: str, message: str) -> bool:
        """The process running `key` died (killed, out of memory): retry once."""
        return self.record(key, ("error", "WorkerCrashed", message, True))

    def _finish(self, outcome: Outcome) -> bool:
        self.outcomes[outcome.key] = outcome
        self.progress()
        return False

    def progress(self) -> None:
        if self.on_progress is not None:
            failed = sum(not o.ok for o in self.outcomes.values())
            self.on_progress(len(self.outcomes), failed, len(self.units))


# -- the engines --------------------------------------------------------------------------------
class Runner:
    """Runs units and returns {key: Outcome} for every unit, failed ones included."""

    def __init__(self, jobs: int = 1, threads: int = DEFAULT_THREADS, seed: int = 0):
        if threads < 1:
            raise ConfigError(f"--threads must be a positive number, got {threads}")
        self.jobs = resolve_jobs(jobs)
        self.threads = threads
        self.seed = seed

    def run(
        self,
        units: Iterable[Unit],
        shared: Any = None,
        on_progress: ProgressCallback | None = None,
        stop: StopToken | None = None,
    ) -> dict[str, Outcome]:
        """A `stop` request (a first Ctrl-C) starts no new unit; the finished ones are returned."""
        raise NotImplementedError

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        pass


class SequentialRunner(Runner):
    """Every unit in this process, one after another: the default for one job."""

    def run(self, units, shared=None, on_progress=None, stop=None):
        stop = token(stop)
        ledger = Ledger(units, self.seed, on_progress)
        try:
            for key, unit in ledger.units.items():
                if stop.requested:  # a first Ctrl-C: no new unit starts; the finished ones stand
                    break
                while ledger.record(key, run_unit(shared, unit, ledger.seeds[key], self.threads)):
                    pass
        except KeyboardInterrupt:
            raise RunInterrupted(ledger.outcomes) from None
        return ledger.outcomes


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


def make_runner(
    engine: str = "sequential",
    jobs: int = 1,
    threads: int = DEFAULT_THREADS,
    address: str | None = None,
    seed: int = 0,
) -> Runner:
    """The runner for `--engine`, `--jobs` (0 = every core), `--threads` and `--address`."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine '{engine}' (choose from {', '.join(ENGINES)})")
    if address is not None and engine != "ray":
        raise ConfigError("--address joins a Ray cluster: it needs --engine ray")
    if engine == "ray":
        from .runners_ray import RayRunner

        return RayRunner(jobs=jobs, threads=threads, seed=seed, address=address)
    if engine == "local" and resolve_jobs(jobs) > 1:
        return LocalRunner(jobs=jobs, threads=threads, seed=seed)
    return SequentialRunner(jobs=jobs, threads=threads, seed=seed)


@contextmanager
def unit_progress(label: str = "units", quiet: bool = False) -> Iterator[ProgressCallback]:
    """A progress bar on stderr for a run: units done of all, failed so far, time spent and left."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=quiet,
    )
    task = progress.add_task(label, total=None, failed=0)

    def on_progress(done: int, failed: int, total: int) -> None:
        progress.update(task, completed=done, total=total, failed=failed)

    with progress:
        yield on_progress
