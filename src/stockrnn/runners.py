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
import os
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
        from .runners_local import LocalRunner

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


def __getattr__(name: str) -> Any:
    """`LocalRunner` lives in runners_local.py, which builds on this module (imported on demand, so
    that either module may be imported first, as the fork server does)."""
    if name == "LocalRunner":
        from .runners_local import LocalRunner

        return LocalRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
