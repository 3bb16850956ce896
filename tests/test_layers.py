"""Layers point one way (DESIGN.md): protocol ← bus ← roles ← supervisor ← cli.

Checked on the source, with `ast`, so an import hidden inside a function counts as much as one
at the top: a lazy import still makes the lower layer depend on the higher one.

- protocol/ is pure wire formats: it imports nothing of tradeops outside protocol/ and no
  I/O library, so every dialect is tested with bytes, and a tool reading the bus's tick
  layout does not start an event loop or a logger;
- bus/ knows no role: the gateway writes the ring, the ring does not know the gateway;
- no role imports the supervisor: roles run alone (``python -m tradeops.ROLE``); only the
  CLI and the supervisor itself may;
- the proxy and the recorder reach a gateway only through its public client
  (``gateway/client.py``);
- recording/ (the Parquet layout) imports no role: the recorder, the sim and the CLI use it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tradeops"
IO_MODULES = frozenset({
    "loguru", "asyncio", "socket", "selectors", "threading", "websockets", "websocket",
    "aiohttp", "subprocess",
})  # fmt: skip
ABOVE_BUS = ("gateway", "proxy", "runtime", "supervisor", "sim", "process", "recorder",
             "cluster")
ROLES = ("gateway", "proxy", "runtime", "sim", "recorder", "process", "bus", "protocol",
         "topology", "recording", "cluster")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for every import in the file, at any depth. `from a import b`
    yields `a.b` too, since b may be a submodule (`from tradeops import supervisor`)."""
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def sources(*packages: str) -> list[Path]:
    return sorted(p for name in packages for p in (PACKAGE / name).rglob("*.py"))


def within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def violations(paths: list[Path], bad: Callable[[str], bool]) -> list[str]:
    found = []
    for path in paths:
        for line, module in imports(path):
            if bad(module):
                found.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    return sorted(set(found))


def test_protocol_imports_only_protocol_and_no_io() -> None:
    def bad(module: str) -> bool:
        if module.split(".")[0] in IO_MODULES:
            return True
        return within(module, "tradeops") and not within(module, "tradeops.protocol")

    assert violations(sources("protocol"), bad) == []


def test_bus_imports_no_role() -> None:
    above = tuple(f"tradeops.{name}" for name in ABOVE_BUS)
    assert violations(sources("bus"), lambda m: within(m, *above)) == []


def test_no_role_imports_the_supervisor() -> None:
    assert violations(sources(*ROLES), lambda m: within(m, "tradeops.supervisor")) == []


def test_the_recording_format_imports_no_role() -> None:
    """recording/ (the Parquet layout, its files and readers) sits below the roles: the
    recorder writes it, the sim replays it, `tradeops data` reads it."""
    above = tuple(f"tradeops.{name}" for name in ABOVE_BUS)
    assert violations(sources("recording"), lambda m: within(m, *above)) == []


def test_the_recorder_uses_only_the_gateways_public_client() -> None:
    def bad(module: str) -> bool:
        allowed = within(module, "tradeops.gateway.client") or module == "tradeops.gateway"
        return within(module, "tradeops.gateway") and not allowed

    assert violations(sources("recorder"), bad) == []


def test_the_proxy_uses_only_the_gateways_public_client() -> None:
    """The proxy is a gateway client like any host: gateway/client.py is the gateway's
    public API; its pool, core and servers are internals the proxy must not lean on."""

    def bad(module: str) -> bool:
        allowed = within(module, "tradeops.gateway.client") or module == "tradeops.gateway"
        return within(module, "tradeops.gateway") and not allowed

    assert violations(sources("proxy"), bad) == []


def test_the_cluster_bridges_use_only_the_gateways_public_client() -> None:
    """A bridge is one more gateway client (one lease per remote node), and the remote
    stand-in speaks the protocol itself: neither leans on the gateway's internals."""

    def bad(module: str) -> bool:
        allowed = within(module, "tradeops.gateway.client") or module == "tradeops.gateway"
        return within(module, "tradeops.gateway") and not allowed

    assert violations(sources("cluster"), bad) == []


def test_only_the_cluster_imports_nats() -> None:
    """A single-machine desk never needs NATS: nats-py is imported in tradeops/cluster alone."""
    others = [p for p in sources(".") if "cluster" not in p.relative_to(PACKAGE).parts]
    assert violations(others, lambda m: m.split(".")[0] == "nats") == []


def test_the_checker_sees_relative_imports_inside_functions(tmp_path: Path) -> None:
    source = "def later() -> None:\n    from ..supervisor import lifecycle\n    import asyncio\n"
    path = tmp_path / "tradeops" / "protocol" / "probe.py"
    path.parent.mkdir(parents=True)
    path.write_text(source)
    found = {m for _, m in imports(path, tmp_path)}
    assert {"tradeops.supervisor", "tradeops.supervisor.lifecycle", "asyncio"} <= found


PROTOCOL_MODULES = sorted(
    module_name(p) for p in sources("protocol") if not p.name.startswith("_")
)


@pytest.mark.e2e  # a fresh interpreter per module
@pytest.mark.parametrize("module", ["tradeops", "tradeops.protocol", *PROTOCOL_MODULES])
def test_importing_a_wire_format_loads_no_io_library(module: str) -> None:
    """What we promise at run time, in a fresh interpreter: importing the package face or any
    protocol module loads none of the I/O libraries (not even indirectly through the stdlib)."""
    code = (
        f"import sys, {module}\n"
        f"loaded = {{m.split('.')[0] for m in sys.modules}} & set({sorted(IO_MODULES)!r})\n"
        "assert not loaded, sorted(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
