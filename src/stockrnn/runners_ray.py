"""The `ray` engine: units as Ray tasks, on an embedded local Ray or on a cluster (`--address`).

Needs the `ray` extra (`pip install 'stockrnn[ray]'`). Two traps measured on Linux with Ray 2.60:
- Ray keeps its servers on loopback only when the node's address is exactly 127.0.0.1, and it
  rewrites 127.0.0.1 to the machine's network address unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0.
  The embedded Ray therefore sets that variable and 127.0.0.1: nothing listens beyond loopback.
  Joining a head on a loopback address sets the variable too, or Ray dials the network address.
- A plain `ray.init()` with RAY_AUTH_MODE unset writes a token to ~/.ray/auth_token, after which
  `ray start` demands it. Every process here sets RAY_AUTH_MODE explicitly.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ConfigError
from .interrupt import StopToken, token
from .runners import POLL_SECONDS, Ledger, Result, RunInterrupted, Runner, run_unit

LOOPBACK = "127.0.0.1"
CONNECT_SECONDS = 10.0  # for the reachability check of --address
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_REMOTE: dict[str, Any] = {}


def ray_environment(embedded: bool, loopback: bool) -> None:
    """Set Ray's environment in this process (children inherit it): no usage statistics, an explicit
    auth mode, and for the embedded Ray or a head on loopback, loopback only (else Ray dials the
    machine's network address for 127.0.0.1). Call before Ray starts or connects."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if loopback:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if embedded:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    else:
        has_token = "RAY_AUTH_TOKEN" in os.environ or "RAY_AUTH_TOKEN_PATH" in os.environ
        os.environ.setdefault("RAY_AUTH_MODE", "token" if has_token else "disabled")


def import_ray(address: str | None):
    """Ray, with `ray_environment` applied for `address` (None: the embedded Ray), or a ConfigError
    saying how to install it."""
    loopback = address is None or is_loopback(host_port(address)[0])
    ray_environment(address is None, loopback)
    try:
        import ray
        from ray._private import ray_constants
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'stockrnn[ray]'") from None
    if loopback:
        # Read once when Ray is imported; if something imported Ray before the variable was set,
        # Ray would still advertise (and dial, and for the embedded one bind) the machine's address.
        ray_constants.ENABLE_RAY_CLUSTER = False
    return ray


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_port(address: str) -> tuple[str, int]:
    """(host, port) of `--address` (HOST:PORT, or ray://HOST:PORT for Ray Client), or a ConfigError."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address {address!r}: give HOST:PORT of a running Ray head (ray start --head --port=PORT)")
    return host.strip("[]"), int(port)


def reachable(address: str, timeout: float = CONNECT_SECONDS) -> None:
    """Refuse an address where no Ray head answers: Ray itself retries such a one for ever, deaf to
    Ctrl-C, and so it does where something else listens (the dashboard's port, say). One TCP
    connection to the address the user gave, and the opening of an HTTP/2 (gRPC) session on it."""
    try:
        with socket.create_connection(host_port(address), timeout=timeout) as connection:
            grpc = speaks_grpc(connection)
    except OSError as exc:
        reason = exc.strerror or ("timed out" if isinstance(exc, TimeoutError) else type(exc).__name__)
        raise ConfigError(
            f"--address {address}: no Ray head answers there ({reason}); start one with ray start --head"
        ) from None
    if not grpc:
        raise ConfigError(
            f"--address {address}: something listens there, but no Ray head (it speaks no gRPC; a dashboard "
            "port? give the head's --port, 6379 by default)"
        )


def speaks_grpc(connection: socket.socket) -> bool:
    """Whether the server answers a client's HTTP/2 preface with a SETTINGS frame, as every gRPC
    server does (Ray's GCS and its Ray Client server). A TLS cluster (RAY_USE_TLS) is not probed."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return True
    connection.sendall(HTTP2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # and an empty SETTINGS
    head = b""
    while len(head) < 9:  # a frame header: length (3 bytes), type, flags, stream (4)
        chunk = connection.recv(9 - len(head))
        if not chunk:
            return False
        head += chunk
    return head[3] == 0x04


def CRASHES(ray) -> tuple:  # noqa: N802 - reads as the tuple it returns
    """Ray's errors for a task whose process or node died under it: the unit is retried once."""
    errors = ray.exceptions
    return (
        errors.WorkerCrashedError,
        errors.NodeDiedError,
        errors.LocalRayletDiedError,
        errors.ObjectLostError,
        errors.OutOfMemoryError,
    )


def _remote(ray):
    if "call" not in _REMOTE:
        # No retries by Ray: the ledger retries a crashed unit once and counts its attempts.
        _REMOTE["call"] = ray.remote(max_retries=0)(run_unit)
    return _REMOTE["call"]


class RayRunner(Runner):
    """Units as Ray tasks. Without `address`, an embedded Ray with `jobs` x `threads` CPUs starts for
    the run (or for a `with` block) and stops after; with `address` the run joins that cluster, whose
    workers need only stockrnn installed. The shared data goes to the object store once per run."""

    def __init__(self, jobs: int = 1, threads: int = 1, seed: int = 0, address: str | None = None):
        super().__init__(jobs=jobs, threads=threads, seed=seed)
        self.address = address
        self._session = None
        if address is not None:
            reachable(address)  # a malformed or dead address fails before any work, as a missing Ray does
        import_ray(address)  # fail fast, before any work, when Ray is missing

    def __enter__(self) -> RayRunner:
        self._session = self._connect()
        self._session.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        session, self._session = self._session, None
        session.__exit__(*exc)

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        ray = import_ray(self.address)
        if ray.is_initialized():  # the caller's Ray: use it, leave it running
            yield ray
            return
        if self.address is None:
            ray.init(
                address="local",  # a new Ray of our own, never a cluster that happens to run on this machine
                num_cpus=self.jobs * self.threads,
                include_dashboard=False,
                _node_ip_address=LOOPBACK,
                log_to_driver=False,
                logging_level="WARNING",
            )
        else:
            try:
                ray.init(address=self.address, log_to_driver=False, logging_level="WARNING")
            except (ConnectionError, ValueError, RuntimeError) as exc:  # a malformed or dead address
                reason = " ".join(str(exc).split())[:200]
                raise ConfigError(f"--address {self.address}: cannot join a Ray cluster there ({reason})") from None
        try:
            yield ray
        finally:
            ray.shutdown()

    def run(self, units, shared=None, on_progress=None, stop=None):
        if self._session is not None:
            return self._run(units, shared, on_progress, token(stop))
        with self:
            return self._run(units, shared, on_progress, token(stop))

    def _run(self, units, shared, on_progress, stop: StopToken) -> dict:
        import ray

        ledger = Ledger(units, self.seed, on_progress)
        # SPREAD: units are CPU-bound, so a cluster run uses every node rather than filling one first.
        call = _remote(ray).options(num_cpus=self.threads, scheduling_strategy="SPREAD")
        shared_ref = None if shared is None else ray.put(shared)  # once per run, not once per task

        def submit(key: str):
            return call.remote(shared_ref, ledger.units[key], ledger.seeds[key], self.threads)

        # `jobs` tasks at a time, as the local engine: a first Ctrl-C submits no more and lets the
        # running ones finish (it cancelled them all, so the units under way were lost on Ray only).
        pending, running = list(ledger.units), {}
        try:
            while True:
                while pending and len(running) < self.jobs and not stop.requested:
                    key = pending.pop(0)
                    running[submit(key)] = key
                if not running:
                    break
                done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
                if done:
                    key = running.pop(done[0])
                    if self._collect(ray, ledger, key, done[0]):
                        pending.insert(0, key)  # its retry goes first
        except KeyboardInterrupt:
            for ref in running:
                ray.cancel(ref, force=True)
            raise RunInterrupted(ledger.outcomes) from None
        return ledger.outcomes

    @staticmethod
    def _collect(ray, ledger: Ledger, key: str, ref) -> bool:
        """File a finished task; True when the unit should run again."""
        try:
            result: Result = ray.get(ref)
        except ray.exceptions.TaskCancelledError:  # cancelled by a first Ctrl-C: not run, not failed
            return False
        except CRASHES(ray):
            return ledger.crashed(key, "Ray worker died while running this unit")
        except ray.exceptions.RayError as exc:  # e.g. the unit's function cannot be unpickled there
            message = str(exc).strip().splitlines()
            return ledger.record(key, ("error", type(exc).__name__, message[-1] if message else repr(exc), True))
        return ledger.record(key, result)
