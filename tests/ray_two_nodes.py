"""A two-node Ray cluster on this machine with token auth, for test_ray.py; run as a script in a
process of its own (Ray's auth settings are per process) and print what happened as JSON.
`ray_two_nodes.py UNITS [HEAD_IP NODE_IP]` (default: both nodes on 127.0.0.1).

Both nodes use 127.0.0.1: Ray 2.60 keeps a node's servers on loopback only when its address is
exactly 127.0.0.1, and `ray start` refuses to add a second node while
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps that address as it is, so the nodes are started with
Ray's own test cluster (ray.cluster_utils) instead.

Why not 127.0.0.2 and 127.0.0.3 (measured with `ss -ltnp`, include_dashboard=False): the
gcs_server (its port) and each raylet (node manager and object manager ports) then listen on
`*` (every interface); only the RuntimeEnvAgent binds the node's address. The three are Ray's C++
gRPC servers (src/ray/rpc/grpc_server.cc, GrpcServer::Run), whose bind address is either
"127.0.0.1" (listen_to_localhost_only, set when the node's address is 127.0.0.1) or "0.0.0.0":
no flag, RAY_* variable or _system_config key binds them to the node's own address (the
dashboard, agent, metrics and client-server options cover the Python servers only). The drivers'
and workers' own gRPC servers (core workers) bind the same way. So the 127.0.0.2/127.0.0.3
cluster runs only in a network namespace of its own whose one interface is loopback (`unshare
-rn`, test_ray.py), where "every interface" is loopback and nothing can be reached from outside.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import sys

import numpy as np


def listeners(root: int) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every socket listening (TCP) or bound (UDP) in `root`'s tree."""
    import psutil

    parent = psutil.Process(root)
    pids = {root} | {p.pid for p in parent.children(recursive=True)}
    names = {}
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            names[pid] = psutil.Process(pid).name()
    found = []
    for conn in psutil.net_connections("inet"):
        if conn.pid in names and conn.laddr and (conn.status == psutil.CONN_LISTEN or not conn.raddr):
            found.append((names[conn.pid], conn.laddr.ip, conn.laddr.port))
    return found


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def main() -> None:
    import psutil
    import ray
    from ray.cluster_utils import Cluster

    from runner_units import node_and_fit
    from stockrnn.runners import Unit, make_runner

    assert os.environ["RAY_AUTH_MODE"] == "token" and os.environ["RAY_AUTH_TOKEN"]
    head_ip, node_ip = sys.argv[2:4] if len(sys.argv) > 2 else ("127.0.0.1", "127.0.0.1")
    node = dict(num_cpus=1, include_dashboard=False)
    cluster = Cluster(initialize_head=True, head_node_args=dict(node, node_ip_address=head_ip))
    try:
        cluster.add_node(**node, node_ip_address=node_ip)
        cluster.wait_for_nodes()
        units = [Unit(f"ticker-{i}", node_and_fit) for i in range(int(sys.argv[1]))]
        shared = np.sin(np.arange(200) / 7.0)
        with make_runner("ray", jobs=2, address=cluster.address) as runner:
            outcomes = runner.run(units, shared=shared)
            report = {
                "results": {key: o.value[1] for key, o in outcomes.items()},
                "ran_on": {key: o.value[0] for key, o in outcomes.items()},
                "nodes": [n["NodeID"] for n in ray.nodes() if n["Alive"]],
                "node_addresses": sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]),
                "interfaces": sorted(psutil.net_if_addrs()),
                "token_auth": ray._raylet.get_authentication_mode() == ray._raylet.AuthenticationMode.TOKEN,
                "listeners": listeners(os.getpid()),
            }
    finally:
        cluster.shutdown()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
