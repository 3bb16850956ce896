"""`tradeops export systemd|compose|k8s`: the files that run a desk as services, per node.

Pure: a topology in, {file name: text} out. Each node's service runs `tradeops up FILE
--node NODE` in the foreground (a desk without `settings.cluster` is one service without
`--node`), so the service manager's stop signal is the desk's graceful stop: hosts first,
then each gateway waits for its cancels. The stop timeout allows for that. Secrets stay out
of every file: the topology's `${VAR}` references are read from the environment or `.env`
on the machine, as with `tradeops up`.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from tradeops.topology.model import Topology

Kind = Literal["systemd", "compose", "k8s"]
KINDS: tuple[Kind, ...] = ("systemd", "compose", "k8s")
#: Where compose and Kubernetes mount the topology's folder.
MOUNT = "/desk"


def stop_timeout(topology: Topology) -> int:
    """Seconds a node may take to stop: the longest gateway cancel wait, plus margin."""
    cancel = max((b.orders.cancel_timeout for b in topology.brokers.values()), default=0.0)
    return int(cancel) + 60


def nodes(topology: Topology) -> list[str | None]:
    cluster = topology.settings.cluster
    return list(cluster.nodes) if cluster is not None else [None]


def export(topology: Topology, file: Path, kind: Kind, tradeops: str = "tradeops",
           image: str = "tradeops:latest", nats: bool = False) -> dict[str, str]:
    """Every file of `kind` for the desk of `file` (absolute), by file name."""
    out: dict[str, str] = {}
    for node in nodes(topology):
        name = f"tradeops-{topology.name}" + (f"-{node}" if node else "")
        if kind == "systemd":
            out[f"{name}.service"] = _systemd(topology, file, node, tradeops)
        elif kind == "compose":
            out[f"{name}.compose.yaml"] = _compose(topology, file, node, image)
        else:
            out[f"{name}.k8s.yaml"] = _k8s(topology, file, node, image)
    if nats and topology.settings.cluster is not None:
        host, port = _nats_address(topology.settings.cluster.servers[0])
        name = f"tradeops-{topology.name}-nats"
        # settings.cluster.jetstream: the server runs JetStream, its store the history's home.
        js = topology.settings.cluster.jetstream is not None
        if kind == "systemd":
            store = f" -js -sd /var/lib/{name}" if js else ""
            out[f"{name}.service"] = (
                f"[Unit]\nDescription=NATS server of tradeops desk {topology.name}\n"
                "After=network-online.target\nWants=network-online.target\n\n"
                f"[Service]\nExecStart=nats-server -a {host} -p {port}{store}\n"
                + (f"StateDirectory={name}\n" if js else "") + "Restart=always\n\n"
                "[Install]\nWantedBy=multi-user.target\n")
        elif kind == "compose":
            store = ', "-js", "-sd", "/data"' if js else ""
            out[f"{name}.compose.yaml"] = (
                f"services:\n  nats:\n    image: nats:2\n"
                f"    command: [\"-p\", \"{port}\"{store}]\n"
                f"    ports: [\"{port}:{port}\"]\n    restart: always\n"
                + ("    volumes: [\"nats-store:/data\"]\nvolumes:\n  nats-store: {}\n"
                   if js else ""))
        else:
            out[f"{name}.k8s.yaml"] = _k8s_nats(topology.name, port, js)
    return out


def _nats_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 4222


def _command(file: Path, node: str | None, tradeops: str) -> list[str]:
    return [tradeops, "up", str(file), *(["--node", node] if node else [])]


def _systemd(topology: Topology, file: Path, node: str | None, tradeops: str) -> str:
    what = f"tradeops desk {topology.name}" + (f", node {node}" if node else "")
    return "\n".join([
        "[Unit]",
        f"Description={what}",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"WorkingDirectory={file.parent}",
        f"EnvironmentFile=-{file.parent / '.env'}",
        f"ExecStart={shlex.join(_command(file, node, tradeops))}",
        # SIGTERM to the supervisor only: it stops its processes in order itself.
        "KillMode=mixed",
        f"TimeoutStopSec={stop_timeout(topology)}",
        "Restart=on-failure",
        "RestartSec=5",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def _compose(topology: Topology, file: Path, node: str | None, image: str) -> str:
    inside = f"{MOUNT}/{file.name}"
    service = f"{topology.name}" + (f"-{node}" if node else "")
    command = ", ".join(f'"{a}"' for a in _command(Path(inside), node, "tradeops"))
    return "\n".join([
        "services:",
        f"  {service}:",
        f"    image: {image}",
        f"    command: [{command}]",
        f"    working_dir: {MOUNT}",
        f"    volumes: [\"{file.parent}:{MOUNT}\"]",
        "    env_file: {path: .env, required: false}",
        "    network_mode: host  # brokers, the proxy and NATS as on the machine itself",
        "    shm_size: 1gb  # the bus: rings and tables in /dev/shm",
        f"    stop_grace_period: {stop_timeout(topology)}s",
        "    restart: on-failure",
        "",
    ])


def _k8s(topology: Topology, file: Path, node: str | None, image: str) -> str:
    name = f"tradeops-{topology.name}" + (f"-{node}" if node else "")
    command = ", ".join(f'"{a}"' for a in _command(Path(f"{MOUNT}/{file.name}"), node,
                                                   "tradeops"))
    selector = f"      nodeSelector: {{tradeops/node: {node}}}\n" if node else ""
    return (
        f"# kubectl create configmap {name} --from-file={file.name}\n"
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  replicas: 1  # one supervisor per node: never two\n"
        "  strategy: {type: Recreate}\n"
        f"  selector: {{matchLabels: {{app: {name}}}}}\n"
        "  template:\n"
        f"    metadata: {{labels: {{app: {name}}}}}\n"
        "    spec:\n"
        f"{selector}"
        f"      terminationGracePeriodSeconds: {stop_timeout(topology)}\n"
        "      containers:\n"
        f"        - name: desk\n          image: {image}\n"
        f"          command: [{command}]\n"
        f"          workingDir: {MOUNT}\n"
        f"          volumeMounts: [{{name: topology, mountPath: {MOUNT}}}, "
        "{name: shm, mountPath: /dev/shm}]\n"
        f"      volumes: [{{name: topology, configMap: {{name: {name}}}}}, "
        "{name: shm, emptyDir: {medium: Memory}}]\n"
    )


def _k8s_nats(desk: str, port: int, jetstream: bool = False) -> str:
    """A NATS Deployment; with JetStream its store is the pod's (an emptyDir: a history for
    host restarts, lost with the pod; mount a volume to keep it longer)."""
    name = f"tradeops-{desk}-nats"
    args = f'"-p", "{port}"' + (', "-js", "-sd", "/data"' if jetstream else "")
    store = (", volumeMounts: [{name: store, mountPath: /data}]" if jetstream else "")
    volumes = "      volumes: [{name: store, emptyDir: {}}]\n" if jetstream else ""
    return (
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata: {{name: {name}}}\n"
        "spec:\n  replicas: 1\n"
        f"  selector: {{matchLabels: {{app: {name}}}}}\n"
        "  template:\n"
        f"    metadata: {{labels: {{app: {name}}}}}\n"
        "    spec:\n      containers:\n"
        f"        - {{name: nats, image: \"nats:2\", args: [{args}], "
        f"ports: [{{containerPort: {port}}}]{store}}}\n"
        f"{volumes}"
        "---\napiVersion: v1\nkind: Service\n"
        f"metadata: {{name: {name}}}\n"
        f"spec: {{selector: {{app: {name}}}, ports: [{{port: {port}}}]}}\n"
    )
