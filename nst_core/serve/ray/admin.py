"""The operator's commands: ``python -m nst_core.serve.ray status|restart`` (also reachable as
``python -m nst_core.serve.ray_backend``), and :func:`shutdown_service`, which the tests and the
benchmark use to end the registries they started."""

from __future__ import annotations

import os

import ray

from .common import NAMESPACE, REGISTRY_NAME, WORKER_PREFIX, check_address


def shutdown_service(registry_name: str = REGISTRY_NAME, worker_prefix: str = WORKER_PREFIX,
                     message: str = "The run service was restarted; press Run again.") -> int:
    """Stop the registry's runs (they keep their best images), then end the registry and its worker
    processes; how many runs it ended. The next app process to attach creates them anew, with its
    code and its settings: what an upgrade of the app needs (docs/ray.md). Call after ``ray.init``."""
    ended = 0
    try:
        registry = ray.get_actor(registry_name, namespace=NAMESPACE)
    except ValueError:
        registry = None
    if registry is not None:
        ended = ray.get(registry.reset.remote(message), timeout=120)
        ray.kill(registry)
    missing, i = 0, 0
    while missing < 8:  # workers are numbered from 0; a few gaps are tolerated
        try:
            ray.kill(ray.get_actor(f"{worker_prefix}_{i}", namespace=NAMESPACE))
            missing = 0
        except ValueError:
            missing += 1
        i += 1
    return ended


def main(argv=None) -> None:
    """``python -m nst_core.serve.ray status|restart``, on a node of the cluster: what the
    run service holds, or end it so the next app process recreates it (docs/ray.md)."""
    import argparse
    import json
    p = argparse.ArgumentParser(prog="python -m nst_core.serve.ray", description=main.__doc__)
    p.add_argument("command", choices=["status", "restart"])
    p.add_argument("--address", default=os.environ.get("NST_RAY_ADDRESS", "auto"))
    p.add_argument("--registry", default=REGISTRY_NAME)
    p.add_argument("--workers", default=WORKER_PREFIX, help="the workers' name prefix")
    args = p.parse_args(argv)
    ray.init(address=check_address(args.address), namespace=NAMESPACE, log_to_driver=False)
    if args.command == "restart":
        print(f"ended {shutdown_service(args.registry, args.workers)} run(s); the registry and its workers are gone")
        return
    try:
        registry = ray.get_actor(args.registry, namespace=NAMESPACE)
    except ValueError:
        print(f"no registry '{args.registry}' in namespace '{NAMESPACE}': no app process has attached yet")
        return
    info = ray.get(registry.info.remote(), timeout=30)
    info["worker_pids"] = ray.get(registry.worker_pids.remote(), timeout=30)
    print(json.dumps(info, indent=2, default=str))
