"""The ray engine: the same results as the other engines, crashes retried, loopback only, two nodes.

One embedded Ray (started and stopped by RayRunner itself) serves the whole module; the two-node
cluster runs in a process of its own (tests/ray_two_nodes.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ray_two_nodes import is_loopback, listeners
from runner_units import bad_data, fails, fit_tiny, kill_always, kill_once
from stockrnn.errors import ConfigError
from stockrnn.runners import LocalRunner, SequentialRunner, Unit, failures

from conftest import make_prices

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray is not installed: pip install 'stockrnn[ray]'"
)

TESTS = Path(__file__).resolve().parent
SHARED = np.sin(np.arange(200) / 7.0)


def fit_units(n: int = 4) -> list[Unit]:
    return [Unit(f"ticker-{i}", fit_tiny, (10 + i,)) for i in range(n)]


def values(outcomes) -> dict:
    assert all(o.ok for o in outcomes.values()), failures(outcomes)
    return {key: o.value for key, o in outcomes.items()}


def worker_path() -> str:
    """PYTHONPATH for Ray's workers: the tests (units travel by name) and this checkout's source."""
    entries = [str(TESTS), *(str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return os.pathsep.join(entries)


@pytest.fixture(scope="module")
def ray_runner():
    from stockrnn.runners_ray import RayRunner

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    os.environ["PYTHONPATH"] = worker_path()  # Ray's workers inherit the driver's environment
    try:
        with RayRunner(jobs=2, seed=7) as runner:
            yield runner
        import ray

        assert not ray.is_initialized()  # the runner stopped the Ray it started
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_all_three_engines_give_the_same_results_to_the_last_digit(ray_runner):
    sequential = values(SequentialRunner(seed=7).run(fit_units(), shared=SHARED))
    assert len({tuple(v) for v in sequential.values()}) == 4  # the units really differ
    assert values(ray_runner.run(fit_units(), shared=SHARED)) == sequential
    assert values(LocalRunner(jobs=2, seed=7).run(fit_units(), shared=SHARED)) == sequential


def test_ray_results_do_not_depend_on_order_and_shared_data_is_put_once(ray_runner, monkeypatch):
    import ray

    puts = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value: puts.append(1) or real_put(value))
    units = fit_units(5)
    random.Random(5).shuffle(units)
    expected = values(SequentialRunner(seed=7).run(fit_units(5), shared=SHARED))
    assert values(ray_runner.run(units, shared=SHARED)) == expected
    assert len(puts) == 1


def test_ray_retries_a_killed_worker_once_and_reports_the_rest(ray_runner, tmp_path):
    units = [
        Unit("once", kill_once, (str(tmp_path / "once"),)),
        Unit("always", kill_always, (str(tmp_path / "always"),)),
        Unit("bad", bad_data, (str(tmp_path / "bad"),)),
        Unit("boom", fails),
        *fit_units(2),
    ]
    progress = []
    outcomes = ray_runner.run(units, shared=SHARED, on_progress=lambda *a: progress.append(a))
    assert (outcomes["once"].value, outcomes["once"].attempts) == ("second attempt", 2)
    assert (outcomes["always"].ok, outcomes["always"].attempts) == (False, 2)
    assert (tmp_path / "always").read_text() == "xx"
    assert (outcomes["bad"].error_type, outcomes["bad"].attempts) == ("DataError", 1)
    assert (tmp_path / "bad").read_text() == "x"
    assert (outcomes["boom"].error_type, outcomes["boom"].attempts) == ("ValueError", 2)
    assert [o.key for o in failures(outcomes)] == ["always", "bad", "boom"]
    assert values({k: outcomes[k] for k in ("ticker-0", "ticker-1")}) == values(
        SequentialRunner(seed=7).run(fit_units(2), shared=SHARED)
    )
    assert progress[0] == (0, 0, 6) and progress[-1] == (6, 3, 6)


def test_embedded_ray_listens_on_loopback_only(ray_runner):
    import ray

    ray_runner.run(fit_units(2), shared=SHARED)  # workers up
    found = listeners(os.getpid())
    names = {name for name, _, _ in found}
    assert {"gcs_server", "raylet"} <= names, found
    assert [x for x in found if not is_loopback(x[1])] == []
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}


def test_tune_on_a_folder_runs_its_trials_on_ray_as_in_this_process(ray_runner, tmp_path, monkeypatch):
    """The global network's trials as Ray tasks (the embedded Ray of the module): the very trials
    that the same batches give in this process."""
    import stockrnn.tune as tune_module
    from stockrnn.tune import tune
    from test_tune_panel import SEARCH, write_panel

    folder = write_panel(tmp_path / "panel")
    on_ray = tune(str(folder), "gru", 2, tmp_path / "ray", jobs=2, engine="ray", **SEARCH)
    monkeypatch.setattr(tune_module, "make_runner", lambda *args: SequentialRunner(jobs=2))
    here = tune(str(folder), "gru", 2, tmp_path / "here", jobs=2, **SEARCH)
    assert [t["state"] for t in on_ray.trials] == ["complete"] * 2 and on_ray.trials == here.trials


def test_a_first_ctrl_c_on_ray_lets_the_running_units_finish(ray_runner):
    """As on the local engine: no unit starts after it, the running ones finish and are kept (Ray
    cancelled them, so a Ctrl-C kept fewer units on Ray than in a pool)."""
    from stockrnn.interrupt import StopToken

    stop = StopToken()

    def ctrl_c_after_the_first(done, failed, total):
        if done == 1:
            stop.request()

    # Two at a time: a short unit, then long ones (a few seconds), one of which runs at the press.
    units = [Unit(f"ticker-{i}", fit_tiny, (50 if i == 0 else 2000,)) for i in range(6)]
    outcomes = ray_runner.run(units, shared=SHARED, on_progress=ctrl_c_after_the_first, stop=stop)
    assert sorted(outcomes) == ["ticker-0", "ticker-1"] and all(o.ok for o in outcomes.values())


def test_a_bad_or_dead_address_is_one_clear_error_before_any_file(cli, tmp_path):
    """A malformed address was an internal error (exit 1) that left tune's study folder behind; one
    where nothing listens hung for ever, deaf to Ctrl-C. Only loopback is ever contacted here."""
    import socket

    from stockrnn.runners import make_runner

    with pytest.raises(ConfigError, match="give HOST:PORT of a running Ray head"):
        make_runner("ray", address="bogus")
    with socket.socket() as free:  # a loopback port nothing listens on once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    data = tmp_path / "KO.csv"
    make_prices(400).to_csv(data)
    for address in ("bogus", f"127.0.0.1:{port}"):
        out = tmp_path / "study"
        code, _, err = cli("tune", "--data", data, "--trials", "1", "--epochs", "1", "--engine", "ray",
                           "--address", address, "--out", out, "--quiet")  # fmt: skip
        assert code == 2 and len(err.strip().splitlines()) == 1 and f"--address {address}" in err.replace("'", ""), err
        assert not out.exists()
    assert "no Ray head answers there" in err


def test_an_address_where_no_ray_head_listens_is_refused_before_ray_hangs_on_it(monkeypatch):
    """Something listening that is no Ray head (the dashboard's port, a web server, a silent
    socket) passed the TCP check, and ray.init then retried it for ever, deaf to Ctrl-C and SIGTERM.
    A head on loopback was dialled at the machine's network address. Only loopback is contacted."""
    import socket
    import threading

    from stockrnn.runners import make_runner
    from stockrnn.runners_ray import import_ray, reachable

    def serve(reply: bytes | None):
        server = socket.create_server(("127.0.0.1", 0))

        def answer():
            connection, _ = server.accept()
            with connection:
                connection.recv(64)
                if reply is not None:
                    connection.sendall(reply)
                    connection.shutdown(socket.SHUT_WR)
                else:
                    time.sleep(2)  # silent until the client gives up

        threading.Thread(target=answer, daemon=True).start()
        return server, f"127.0.0.1:{server.getsockname()[1]}"

    server, address = serve(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    with server, pytest.raises(ConfigError, match="something listens there, but no Ray head"):
        make_runner("ray", address=address)
    server, address = serve(None)
    with server, pytest.raises(ConfigError, match=r"no Ray head answers there \(timed out"):
        reachable(address, timeout=0.5)
    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", raising=False)
    import_ray("127.0.0.1:6380")
    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"


def two_nodes(prefix: list[str], ips: tuple[str, ...] = ()) -> dict:
    """Run ray_two_nodes.py (6 units, nodes on `ips`) after `prefix` (such as `unshare`) with token
    auth; check that the work landed on both nodes and equals the sequential run; return its report."""
    env = dict(
        os.environ,
        PYTHONPATH=worker_path(),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )
    done = subprocess.run(
        [*prefix, sys.executable, str(TESTS / "ray_two_nodes.py"), "6", *ips], env=env, capture_output=True,
        text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["token_auth"]
    assert len(report["nodes"]) == 2 and set(report["ran_on"].values()) == set(report["nodes"])
    sequential = SequentialRunner().run([Unit(f"ticker-{i}", fit_tiny, (5,)) for i in range(6)], shared=SHARED)
    assert report["results"] == values(sequential)
    return report


def test_two_node_cluster_with_token_auth_uses_both_nodes_and_matches_sequential():
    report = two_nodes([])
    assert [x for x in report["listeners"] if not is_loopback(x[1])] == []


def private_loopback() -> list[str] | None:
    """`unshare` and `ip` that start a command in a network namespace of its own (a user namespace
    too, so no root is needed) with loopback up and no other interface; None where not allowed."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    prefix = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    return prefix if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0 else None


def test_two_nodes_on_127_0_0_2_and_127_0_0_3_in_a_loopback_only_network_namespace():
    """The issue's cluster on 127.0.0.2 and 127.0.0.3. On any address but 127.0.0.1, Ray's C++ gRPC
    servers (gcs_server, raylet, core workers) bind every interface (ray_two_nodes.py says why),
    so the nodes run in a network namespace whose one interface is loopback."""
    prefix = private_loopback()
    if prefix is None:
        pytest.skip("no network namespace of our own here (unshare -rn and ip are needed)")
    report = two_nodes(prefix, ("127.0.0.2", "127.0.0.3"))
    assert report["interfaces"] == ["lo"] and report["node_addresses"] == ["127.0.0.2", "127.0.0.3"]
    wildcard = {"0.0.0.0", "::"}
    assert [x for x in report["listeners"] if not (is_loopback(x[1]) or x[1] in wildcard)] == []
    assert {ip for name, ip, _ in report["listeners"] if "RuntimeEnvAgent" in name} == {"127.0.0.2", "127.0.0.3"}
