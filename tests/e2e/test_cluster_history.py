"""JetStream history across nodes, for real: a gateway on node a, a host on node b with
`resume: replay` stopped while node b's small ring laps several times over, then started
again. With `settings.cluster.jetstream` (nats-server -js, its store in the test's tmp dir)
it gets every tick it missed, from JetStream, then the live ones: no gap, nothing twice.
With a retention shorter than its absence it gets what the stream still holds and the rest
is a gap; without a history, or with one configured on a server without JetStream (which
the bridge reports, with the fix), the same story leaves a gap. A gap is counted and said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cluster import Cluster, NatsServer, gateway_ticks, seqs
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RING = 256  # node b's ring: about 2.5 s of this desk's ticks


def recorder(name: str, out: Path) -> str:
    return (f"  {name}:\n    class: tests.e2e.strategies:SeqRecorder\n    broker: sim\n"
            f"    symbols: [AAPL, MSFT]\n    params: {{out: \"{out}\"}}\n")


RETENTION = {
    "jetstream": "    jetstream: {max_age: 10m, max_bytes: 64MiB}\n",
    # The stream keeps 5 s, more than node b's ring (about 2.5 s) but less than far's
    # absence (4 laps of that ring): far misses more than both hold.
    "expired": "    jetstream: {max_age: 5s, max_bytes: null}\n",
    "no-history": "",
    # On in the topology, but the server runs without JetStream (no -js).
    "server-without-jetstream": "    jetstream: on\n",
}


@pytest.mark.parametrize("history", list(RETENTION))
def test_a_host_restarted_on_a_remote_node_catches_up_from_jetstream(
    tmp_path: Path, history: str
) -> None:
    jetstream = history in ("jetstream", "expired")
    nats = NatsServer(tmp_path / "nats.log", store=tmp_path / "js" if jetstream else None)
    nats.start()
    out, kept = tmp_path / "far.seq", tmp_path / "near.seq"
    duo = Cluster(
        tmp_path, nats.port, out,
        strategies=recorder("rec", out) + recorder("keep", kept),
        cluster=RETENTION[history],
        # `near` keeps the symbols subscribed (and node b's ring moving) while `far` is down.
        processes="  far: {strategies: [rec], node: b, resume: replay}\n"
                  "  near: {strategies: [keep], node: b}",
        node_b=f"cores: 64, ring_capacity: {RING}")
    try:
        duo.up("a")
        duo.up("b")
        wait_for(lambda: len(seqs(out)) >= 30, 60, "ticks on node b")
        if jetstream:
            wait_for(lambda: str(duo.row("a", "bridge-sim")["stats"].get("history"))
                     .startswith("stream tradeops-duo-tick-sim"), 30, "the bridge's stream")
        elif history == "server-without-jetstream":  # said, with the fix; ticks flow anyway
            wait_for(lambda: "start nats-server with -js" in str(
                duo.row("a", "bridge-sim")["stats"].get("history")), 30, "the bridge's report")

        def cursor() -> int:
            return int(duo.row("b", "remote-sim")["stats"].get("cursor") or 0)

        result = duo.desk.cli("stop", "far", "--file", str(duo.desk.file), "--node", "b")
        assert result.returncode == 0, result.stdout + result.stderr
        wait_for(lambda: duo.row("b", "far")["state"] == "stopped", 60, "far stopped")
        stopped_at = seqs(out)[-1]
        # Node b's ring laps several times while far is down: what far missed is gone from it.
        wait_for(lambda: cursor() >= stopped_at + 4 * RING, 90, "node b's ring to lap")
        restart_at = cursor()
        result = duo.desk.cli("start", "far", "--file", str(duo.desk.file), "--node", "b")
        assert result.returncode == 0, result.stdout + result.stderr
        wait_for(lambda: seqs(out)[-1] > restart_at + 100, 90, "live ticks after the restart")

        seen = seqs(out)
        upstream = gateway_ticks(duo.paths("a"))
        expected = [s for s in sorted(upstream)
                    if seen[0] <= s <= seen[-1] and upstream[s][0] in ("AAPL", "MSFT")
                    and upstream[s][1] == "trade"]
        missed = [s for s in expected if stopped_at < s <= restart_at]
        assert len(missed) > RING  # far really missed more than node b's ring holds

        def far() -> dict[str, Any]:
            row: dict[str, Any] = duo.row("b", "far")
            return row

        def replayed() -> int:  # ticks the stand-in served from JetStream (once a second)
            return int(duo.row("b", "remote-sim")["stats"].get("replayed") or 0)

        log = (duo.paths("b").logs / "far.log").read_text()
        if history == "jetstream":
            # Every trade of the gateway's ring, before, during and after far's absence, in
            # order, once: the ticks node b's ring had dropped came from JetStream.
            assert seen == expected
            assert "caught up on broker 'sim' from its history" in log
            assert "are gone" not in log
            wait_for(lambda: replayed() >= len(missed) - RING, 30, "the stand-in's count")
            wait_for(lambda: "lost" in far()["stats"], 30, "far's stats after the restart")
            assert far()["stats"]["lost"] == 0, far()
        else:
            # What nothing kept any more is a gap, visible as one.
            gone = sorted(set(expected) - set(seen))
            assert gone, "far got every tick although nothing kept them all"
            # It begins right after far's last tick before the stop.
            assert gone[0] == next(s for s in expected if s > stopped_at)
            assert seen == sorted(set(seen))  # still in order, nothing twice
            if history == "expired":  # the history gave what it still held, and said the rest
                assert "caught up on broker 'sim' from its history" in log
                assert "neither the ring nor the history holds them" in log
                # ... what the stream held beyond node b's ring came from it.
                wait_for(lambda: replayed() > 0, 30, "the stand-in's count of replayed ticks")
            elif history == "server-without-jetstream":
                assert "cannot catch up on broker 'sim' from its history" in log
                assert "start nats-server with -js" in log
                assert "neither the ring nor the history holds them" in log
            else:
                assert "are gone" in log and "keeps no history" in log
            wait_for(lambda: int(far()["stats"].get("lost") or 0) >= len(gone), 30,
                     "far's lost ticks counted")
    finally:
        try:
            duo.cleanup()
        finally:
            nats.stop()
