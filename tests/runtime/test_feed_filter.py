"""A host's feed decodes only its strategies' symbols while they are a minority of the ring,
and everything once they are most of it (runtime/feed.py): the same ticks reach the
strategies either way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tradeops.bus import RingReader, TickRing, remove_segments
from tradeops.protocol.tick import TRADE, Tick, encode_symbol
from tradeops.runtime.feed import SAMPLE_TICKS, BrokerFeed

SYMBOLS = [f"S{i}" for i in range(10)]


@pytest.fixture
def topology() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    assert remove_segments(name) == []


def write(ring: TickRing, n: int) -> None:
    """n trades, the symbols in turn: each is a tenth of the feed."""
    start = ring.cursor
    ring.extend_records([(TRADE, 0, 0, i, i, encode_symbol(SYMBOLS[i % 10]), float(i), 1.0)
                         for i in range(start, start + n)])  # fmt: skip


def drain(feed: BrokerFeed, ring: TickRing) -> tuple[list[Tick], int]:
    """Everything the feed hands on until it has read the ring; and what it passed over."""
    got: list[Tick] = []
    passed = 0
    while feed.cursor < ring.cursor:
        got += feed.read()
        passed += feed.passed
    return got, passed


def test_the_feed_filters_while_its_symbols_are_few_and_decodes_all_when_they_are_many(
    topology: str,
) -> None:
    ring = TickRing(topology, "sim", capacity=1 << 16)
    reader = RingReader(topology, "sim", start="oldest")
    feed = BrokerFeed("sim", topology, None, reader, None)  # type: ignore[arg-type]
    try:
        wanted = {encode_symbol("S0")}
        feed.symbols = wanted
        write(ring, 2 * SAMPLE_TICKS)
        got, passed = drain(feed, ring)
        # One symbol in ten: only its ticks were decoded; the rest were passed over.
        assert {t.symbol for t in got} == {"S0"} and len(got) == 2 * SAMPLE_TICKS // 10 + 1
        assert passed == 2 * SAMPLE_TICKS - len(got) and feed.filtering
        # The strategies now want every symbol: the feed measures it and decodes all.
        wanted.update(encode_symbol(s) for s in SYMBOLS)
        write(ring, 2 * SAMPLE_TICKS)
        got, passed = drain(feed, ring)
        assert len(got) + passed == 2 * SAMPLE_TICKS and passed == 0
        assert not feed.filtering
        # Down to one again: measured on a sample of the reads, then filtered again.
        wanted.intersection_update({encode_symbol("S3")})
        first = ring.cursor + 1
        got, passed = [], 0
        for _ in range(8):  # in parts the ring holds whole
            write(ring, SAMPLE_TICKS)
            part, part_passed = drain(feed, ring)
            got += part
            passed += part_passed
        assert feed.filtering and passed > 0
        handed = [t.seq for t in got if t.symbol_bytes in wanted]
        s3 = [seq for seq in range(first, ring.cursor + 1) if (seq - 1) % 10 == 3]
        assert handed == s3  # not one of S3's missed, whichever way it was read
        assert feed.cursor == ring.cursor
    finally:
        reader.close()
        ring.close()
