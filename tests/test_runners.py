"""The runner interface: sequential and local engines (the ray engine is in test_ray.py)."""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from runner_units import bad_data, fails, fit_tiny, kill_always, kill_once, unpicklable
from stockrnn.errors import ConfigError
from stockrnn.runners import (
    LocalRunner,
    RunInterrupted,
    SequentialRunner,
    Unit,
    failures,
    make_runner,
    resolve_jobs,
    unit_progress,
    unit_seed,
)

SHARED = np.sin(np.arange(200) / 7.0)


def fit_units(n: int = 4) -> list[Unit]:
    return [Unit(f"ticker-{i}", fit_tiny, (10 + i,)) for i in range(n)]


def values(outcomes) -> dict:
    assert all(o.ok for o in outcomes.values()), failures(outcomes)
    return {key: o.value for key, o in outcomes.items()}


def test_unit_seed_is_stable_and_depends_on_run_seed_and_key():
    assert unit_seed(0, "IBM") == unit_seed(0, "IBM") == 573651026
    assert len({unit_seed(0, "IBM"), unit_seed(1, "IBM"), unit_seed(0, "AAPL")}) == 3


def test_local_pool_equals_sequential_to_the_last_digit():
    sequential = values(SequentialRunner(seed=7).run(fit_units(), shared=SHARED))
    local = values(LocalRunner(jobs=2, seed=7).run(fit_units(), shared=SHARED))
    assert local == sequential
    assert len({tuple(v) for v in sequential.values()}) == 4  # the units really differ


def test_results_do_not_depend_on_order():
    units = fit_units(5)
    shuffled = units[:]
    random.Random(3).shuffle(shuffled)
    assert [u.key for u in shuffled] != [u.key for u in units]
    in_order = values(SequentialRunner().run(units, shared=SHARED))
    assert values(SequentialRunner().run(shuffled, shared=SHARED)) == in_order


def test_sequential_restores_the_callers_threads_and_random_state():
    torch.set_num_threads(2)
    before = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    try:
        SequentialRunner(threads=1).run(fit_units(1), shared=SHARED)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert torch.equal(torch.get_rng_state(), before[0])
    assert (np.random.get_state()[1] == before[1]).all()
    assert random.getstate() == before[2]


def test_a_killed_worker_is_retried_once_and_a_unit_killed_twice_fails(tmp_path):
    units = [
        Unit("once", kill_once, (str(tmp_path / "once"),)),
        Unit("always", kill_always, (str(tmp_path / "always"),)),
        *fit_units(3),
    ]
    done = []
    outcomes = LocalRunner(jobs=2).run(units, shared=SHARED, on_progress=lambda *a: done.append(a))
    assert outcomes["once"].ok and outcomes["once"].value == "second attempt" and outcomes["once"].attempts == 2
    assert not outcomes["always"].ok and outcomes["always"].attempts == 2
    assert "worker process died" in outcomes["always"].error
    assert (tmp_path / "always").read_text() == "xx"
    assert values({k: outcomes[k] for k in outcomes if k.startswith("ticker")}) == values(
        SequentialRunner().run(fit_units(3), shared=SHARED)
    )
    assert all(outcomes[f"ticker-{i}"].attempts == 1 for i in range(3))
    assert done[0] == (0, 0, 5) and done[-1] == (5, 1, 5)


@pytest.mark.parametrize("engine", ["sequential", "local"])
def test_bad_data_is_reported_not_retried_and_the_rest_finish(engine, tmp_path):
    units = [Unit("bad", bad_data, (str(tmp_path / "bad"),)), Unit("boom", fails), *fit_units(2)]
    outcomes = make_runner(engine, jobs=2).run(units, shared=SHARED)
    bad = outcomes["bad"]
    assert (bad.ok, bad.error_type, bad.attempts) == (False, "DataError", 1)
    assert bad.error == "prices.csv: row 7: Close is negative (-3.0)"
    assert (tmp_path / "bad").read_text() == "x"
    assert (outcomes["boom"].error_type, outcomes["boom"].attempts) == ("ValueError", 2)
    assert [o.key for o in failures(outcomes)] == ["bad", "boom"]
    assert outcomes["ticker-0"].ok and outcomes["ticker-1"].ok


def test_a_result_that_cannot_be_pickled_is_a_failed_unit_and_the_rest_finish():
    units = [Unit("lambda", unpicklable), *fit_units(3)]
    outcomes = LocalRunner(jobs=2).run(units, shared=SHARED)
    failed = outcomes["lambda"]
    assert (failed.ok, failed.attempts) == (False, 1)
    assert "cannot send the unit or its result between processes" in failed.error and "pickle" in failed.error
    assert [o.key for o in failures(outcomes)] == ["lambda"]
    assert values({k: outcomes[k] for k in outcomes if k != "lambda"}) == values(
        SequentialRunner().run(fit_units(3), shared=SHARED)
    )


@pytest.mark.parametrize("engine", ["sequential", "local"])
def test_ctrl_c_cancels_the_rest_and_keeps_the_finished_units(engine):
    def ctrl_c_after_the_first(done, failed, total):
        if done == 1:
            raise KeyboardInterrupt  # where a Ctrl-C on the driver would land

    runner = make_runner(engine, jobs=2)
    with pytest.raises(RunInterrupted) as caught:
        runner.run(fit_units(6), shared=SHARED, on_progress=ctrl_c_after_the_first)
    finished = caught.value.outcomes
    assert len(finished) == 1 and all(o.ok for o in finished.values())
    assert isinstance(caught.value, KeyboardInterrupt)  # the CLI's exit 130 still applies
    assert multiprocessing.active_children() == []  # no worker left running


@pytest.mark.parametrize("engine", ["sequential", "local"])
def test_a_first_ctrl_c_starts_no_new_unit_and_returns_the_finished(engine):
    """The first Ctrl-C only sets the token (training stops after its batch): the run returns the
    units that finished, with none started after it."""
    from stockrnn.interrupt import StopToken

    stop = StopToken()

    def ctrl_c_after_the_first(done, failed, total):
        if done == 1:
            stop.request()

    units = [Unit(f"ticker-{i}", fit_tiny, (400,)) for i in range(10)]  # a second or so each
    outcomes = make_runner(engine, jobs=2).run(units, shared=SHARED, on_progress=ctrl_c_after_the_first, stop=stop)
    # A pool has at most jobs + 1 units handed to its workers, past cancelling, when the flag is seen.
    assert 1 <= len(outcomes) <= (1 if engine == "sequential" else 5) and all(o.ok for o in outcomes.values())
    assert multiprocessing.active_children() == []


def test_make_runner_picks_the_engine_and_checks_its_options():
    assert isinstance(make_runner(), SequentialRunner)
    assert isinstance(make_runner("local", jobs=1), SequentialRunner)  # one job: no pool to pay for
    assert isinstance(make_runner("local", jobs=2), LocalRunner)
    assert resolve_jobs(0) >= 1
    for kwargs, message in [
        (dict(engine="spark"), "unknown engine 'spark'"),
        (dict(engine="local", jobs=-1), "--jobs must be 0"),
        (dict(threads=0), "--threads must be a positive number"),
        (dict(engine="local", address="127.0.0.1:6379"), "--address joins a Ray cluster"),
    ]:
        with pytest.raises(ConfigError, match=message):
            make_runner(**kwargs)


def test_ray_engine_without_ray_says_how_to_install(monkeypatch):
    for name in ("RAY_USAGE_STATS_ENABLED", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)  # restored after the test; the runner sets them
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ConfigError, match=re.escape("--engine ray needs Ray: pip install 'stockrnn[ray]'")):
        make_runner("ray")


def test_duplicate_keys_are_refused():
    with pytest.raises(ValueError, match="two units share the key 'ticker-0'"):
        SequentialRunner().run([*fit_units(1), *fit_units(1)], shared=SHARED)


def test_units_without_shared_data_get_only_their_arguments():
    outcomes = SequentialRunner().run([Unit("sum", sum, ([1, 2, 3],))])
    assert outcomes["sum"].value == 6


def test_progress_bar_counts_done_and_failed(capsys):
    with unit_progress("tickers") as on_progress:
        outcomes = SequentialRunner().run([Unit("boom", fails), *fit_units(1)], shared=SHARED, on_progress=on_progress)
    assert len(failures(outcomes)) == 1
    err = capsys.readouterr().err
    assert "tickers" in err and "2/2" in err and "failed 1" in err


def test_a_unit_computes_on_the_runners_threads_for_torch_and_the_blas():
    """Ray's workers run the BLAS on one thread (OMP_NUM_THREADS=1): a unit that ran it on the
    caller's threads here gave other last digits of a float64 sum (the global ridge) than on Ray."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from runner_units import threads_inside

    with threadpool_limits(limits=2):
        torch.set_num_threads(2)
        outcomes = SequentialRunner(threads=1).run([Unit("u", threads_inside)])
        assert outcomes["u"].value == (1, [1])
        assert torch.get_num_threads() == 2 and {i["num_threads"] for i in threadpool_info()} == {2}  # restored


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the fork server")
def test_a_ctrl_c_while_the_fork_server_imports_is_a_first_ctrl_c_not_a_crash(folder, tmp_path):
    """The fork server is in the terminal's process group: a Ctrl-C while it imported torch killed it
    with a traceback, and the driver's next write to it ended the run with exit 1 and no message."""
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "stockrnn", "evaluate", "--data", str(folder), "--test-start", "2020-10-01",
        "--models", "ridge_local,persistence", "--engine", "local", "--jobs", "2", "--out", str(out), "--quiet",
        "--no-report",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    server, deadline = None, time.monotonic() + 120
    while server is None and process.poll() is None and time.monotonic() < deadline:
        for pid in children(process.pid):
            try:
                if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    server = pid
            except OSError:
                continue
        time.sleep(0.005)
    assert server is not None, "the fork server never started"
    os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to the whole process group
    _, err = process.communicate(timeout=300)
    assert process.returncode in (0, 130), err  # a first Ctrl-C: kept what finished, or nothing to keep
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
