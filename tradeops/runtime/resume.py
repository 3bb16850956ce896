"""Where a host picks up each broker's bus: across its own restarts and its gateway's.

Every gateway start is a new bus **epoch** (the ring's session id, its creation time); `seq`
is consecutive within an epoch and starts again at 1 in the next. A host remembers, per
broker, the epoch and seq it handed over last (`cursors.py`, exact across a kill -9; the
once-a-second state file when that cannot be kept). With `resume: replay`:

- the same epoch: it resumes right after the last tick handed over; the rest of the batch it
  was handing over when killed comes again with `FLAG_REPEAT`;
- a new epoch (the gateway restarted meanwhile, or while the host ran): it reads the new
  epoch from its start, so nothing the new gateway published is skipped, the strategies hear
  `on_feed_restart(broker)` and the epoch's first tick carries `FLAG_EPOCH_START`.

With `resume: latest` a host starts from the newest tick; a new epoch is announced the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loguru import logger

from tradeops.process import child
from tradeops.protocol.tick import FLAG_EPOCH_START, FLAG_REPEAT
from tradeops.runtime.cursors import CursorFile


class Resume:
    def __init__(self, mode: str, run_dir: Path, name: str) -> None:
        self.replay = mode == "replay"
        self.run_dir, self.name = run_dir, name
        self.cursors: CursorFile | None = None
        self.start_after: dict[str, tuple[int, int]] = {}  # broker -> (epoch, seq) to follow
        self._repeat_through: dict[str, int] = {}  # broker -> last seq possibly seen already
        self._new_epoch: set[str] = set()  # brokers whose next tick starts a new epoch
        self.restarted: list[str] = []  # brokers whose restart the strategies are to hear of

    def open(self, brokers: list[str]) -> None:
        try:
            self.cursors = CursorFile(self.run_dir / "state" / f"{self.name}.cursors", brokers)
        except OSError as exc:
            logger.warning("cannot keep exact resume positions ({}); resuming from the "
                           "once-a-second state instead", exc.strerror or exc)

    def previous(self, broker: str) -> tuple[int, int] | None:
        """Where an earlier run of this host stood on `broker`: (epoch, last seq handed
        over); None when it never read it or does not replay."""
        if not self.replay:
            return None
        found = self.cursors.found(broker) if self.cursors else None
        if found is not None:
            if found.handing > found.done:
                self._repeat_through[broker] = found.handing
            return found.epoch, found.done
        saved = child.read_state(self.run_dir, self.name)
        cursor = saved.get("cursors", {}).get(broker)
        epoch = saved.get("epochs", {}).get(broker)
        return (int(epoch), int(cursor)) if cursor is not None and epoch else None

    def attached(self, broker: str, epoch: int, cursor: int,
                 previous: tuple[int, int] | None) -> None:
        """A feed of `broker` is open at `epoch`, positioned after `cursor`."""
        self.start_after.pop(broker, None)
        if previous is not None and previous[0] != epoch:
            self._repeat_through.pop(broker, None)  # another epoch's seqs repeat nothing
            self._new_epoch.add(broker)
            self.restarted.append(broker)
        if self.cursors is not None:
            self.cursors.set(broker, epoch, cursor, cursor)

    def needs_flags(self, broker: str) -> bool:
        return broker in self._new_epoch or broker in self._repeat_through

    def flag(self, broker: str, ticks: list[Any]) -> list[Any]:
        """Mark the first tick of a new epoch, and ticks the strategies may have seen."""
        if broker in self._new_epoch:
            self._new_epoch.discard(broker)
            ticks[0] = ticks[0]._replace(flags=ticks[0].flags | FLAG_EPOCH_START)
        through = self._repeat_through.get(broker)
        if through is not None:
            ticks = [t._replace(flags=t.flags | FLAG_REPEAT) if t.seq <= through else t
                     for t in ticks]
            if ticks[-1].seq >= through:
                del self._repeat_through[broker]
        return ticks

    def take_restarted(self) -> list[str]:
        restarted, self.restarted = self.restarted, []
        return restarted

    def close(self) -> None:
        if self.cursors is not None:
            self.cursors.close()
