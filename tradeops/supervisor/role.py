"""The entry point of every supervised process: `python -m tradeops.supervisor.role ROLE ...`.

    ROLE                 sim | gateway | proxy | host
    --topology FILE      the desk's topology
    --name NAME          this process's name (sim-BROKER, gateway-BROKER, proxy, or a group name)
    --run-dir DIR        where sockets, logs and state live
    --url URL            gateway of a sim broker: the sim's address
    --port PORT          sim: the port to bind (a restarted sim keeps its address)

It checks that its supervisor is alive, sets up logging and CPU pins, then runs the role until
SIGTERM. A role can also be started by hand with the same arguments, for debugging.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
from pathlib import Path

from loguru import logger

from tradeops.supervisor import child
from tradeops.supervisor.spec import ProcessSpec, RunPaths, process_specs
from tradeops.topology.load import TopologyError, load_topology
from tradeops.topology.model import Broker, Topology


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradeops.supervisor.role")
    parser.add_argument("role", choices=["sim", "gateway", "proxy", "host"])
    parser.add_argument("--topology", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--url")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    child.check_parent()
    try:
        topology = load_topology(args.topology)
    except TopologyError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    specs = {s.name: s for s in process_specs(topology)}
    spec = specs.get(args.name)
    if spec is None or spec.role != args.role:
        sys.stderr.write(f"no {args.role} named {args.name!r} in {args.topology}\n")
        return 2
    paths = RunPaths(Path(args.run_dir), topology.name)
    child.setup_logging(spec.name, paths.run_dir, spec.log_level)
    child.pin(list(spec.cpu))
    stop = threading.Event()
    child.stop_on_signals(stop)
    try:
        if spec.role == "sim":
            return run_sim(topology, spec, args.port, stop)
        if spec.role == "gateway":
            from tradeops.gateway.main import run_gateway

            return int(run_gateway(topology, spec.broker, paths, args.url, stop))
        if spec.role == "proxy":
            from tradeops.proxy.main import run_proxy

            return run_proxy(topology, paths, stop)
        from tradeops.runtime.host import run_host

        return int(run_host(topology, spec, paths, stop, Path(args.topology).resolve().parent))
    except Exception:
        logger.exception("{} failed", spec.name)
        return 1


def sim_credentials(broker_name: str, broker: Broker) -> tuple[str, str] | None:
    """The key pair a sim broker uses: its topology credentials, else the pair the supervisor
    generated for this run (in the environment), else None (the sim accepts any key)."""
    if broker.credentials is not None:
        return (
            broker.credentials.key.get_secret_value(),
            broker.credentials.secret.get_secret_value(),
        )
    pairs = json.loads(os.environ.get("TRADEOPS_SIM_CREDENTIALS", "{}"))
    pair = pairs.get(broker_name)
    return (str(pair[0]), str(pair[1])) if pair else None


def run_sim(topology: Topology, spec: ProcessSpec, port: int, stop: threading.Event) -> int:
    from tradeops.sim.options import SimOptions
    from tradeops.sim.server import start

    broker = topology.brokers[spec.broker]
    market = broker.market
    creds = sim_credentials(spec.broker, broker)
    rate = broker.orders.rate_limit
    limits = {
        "port": port,
        "symbols_per_connection": broker.pool.symbols_per_connection,
        "max_connections": broker.pool.max_connections,
        "keys": {creds[0]: creds[1]} if creds else {},
        "order_rate_limit": (rate.requests, rate.seconds) if rate else None,
    }
    if market is not None:
        options = SimOptions(
            seed=market.seed,
            rate=market.rate,
            max_rate=market.max_rate,
            spread_bps=market.spread_bps,
            hours=market.hours,
            speed=market.speed,
            replay=Path(market.replay) if market.replay else None,
            **limits,  # type: ignore[arg-type]
        )
    else:
        options = SimOptions(**limits)  # type: ignore[arg-type]

    async def serve() -> None:
        sim = await start(options)
        logger.info("simulated exchange for broker '{}' listening on {}", spec.broker, sim.url)
        child.report_ready({"url": sim.url, "http": sim.http_url, "port": sim.port})
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)), daemon=True
        ).start()
        try:
            await done.wait()
        finally:
            await sim.close()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
