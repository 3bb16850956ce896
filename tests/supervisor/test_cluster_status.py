"""How `tradeops status` shows the other nodes of a cluster desk: an unreachable node is said
so, never left out, and a process down on another node makes the desk degraded."""

from __future__ import annotations

from tradeops.supervisor.cli.drive import node_problems, render_node


def test_an_unreachable_node_is_shown_and_degrades_the_desk() -> None:
    nodes = {"b": {"error": "no answer over NATS (NoRespondersError)"}}
    assert render_node("b", nodes["b"]) == (
        "\nnode b: UNREACHABLE (no answer over NATS (NoRespondersError))")
    assert node_problems(nodes) == [
        "node b is unreachable: no answer over NATS (NoRespondersError)"]


def test_another_node_s_processes_and_what_is_down_there() -> None:
    answer = {"node": "b", "processes": [
        {"name": "remote-sim", "role": "remote", "state": "running", "pid": 12, "restarts": 0},
        {"name": "far", "role": "host", "state": "fatal", "pid": None, "restarts": 5,
         "reason": "crash loop"}]}
    text = render_node("b", answer)
    assert text.splitlines()[1:] == [
        "node b:",
        "  remote-sim     remote    running   12       restarts 0",
        "  far            host      fatal     -        restarts 5  crash loop"]
    assert node_problems({"b": answer}) == ["far on node b is fatal: crash loop"]
