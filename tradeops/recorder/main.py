"""The recorder process: one `BrokerRecorder` thread per recorded broker.

Started by the supervisor (tier 2: after the gateways, before the hosts and the proxy) as
``python -m tradeops.recorder --topology FILE --name recorder --run-dir DIR``. At start it
finishes the files a killed run left (`files.recover`, one log line each) and resumes each
broker right after the newest tick it wrote, when the ring still holds it. It publishes its
figures for `status` once a second.

A recording that cannot be written (a full disk, a directory it may not write) is not
something a restart mends: the recorder closes what it can, reports the reason as fatal and
exits, and the supervisor leaves it `fatal` with that reason. It is a bus reader, so the
gateway and the strategies never notice: the desk keeps trading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loguru import logger

from tradeops.process import child
from tradeops.process.entry import RoleContext
from tradeops.recorder.sink import BrokerRecorder, RecordPlan
from tradeops.recording import files, layout

STATE_EVERY = 1.0
#: The exit status of a recorder that reported a fatal reason.
FATAL_EXIT = child.FATAL_EXIT
#: The exit status of a recorder whose reader ended on an unexpected error: the supervisor
#: restarts it (its restart policy), and the new one resumes where the files end.
CRASH_EXIT = 1


def plans(ctx: RoleContext) -> list[RecordPlan]:
    record = ctx.topology.settings.record
    root = layout.recording_dir(ctx.topology, ctx.topology_file)
    assert record is not None and root is not None  # the spec exists only with settings.record
    brokers = [b for b in ctx.topology.brokers if record.brokers is None or b in record.brokers]
    return [
        RecordPlan(root, broker, ctx.paths.bus, ctx.paths.gateway_socket(broker),
                   frozenset(record.symbols) if record.symbols else None,
                   frozenset(record.kinds), record.flush, record.roll)
        for broker in brokers
    ]


def run_recorder(ctx: RoleContext) -> int:
    """Record until `ctx.stop` is set; FATAL_EXIT when the recording cannot be written,
    CRASH_EXIT when a broker's reader ended on anything else."""
    todo = plans(ctx)
    root = todo[0].root if todo else None
    sinks: list[BrokerRecorder] = []
    try:
        if root is not None:
            files.check_writable(root)
        for plan in todo:
            sinks.append(BrokerRecorder(plan, ctx.stop, _resume_at(plan)))
    except files.RecordingError as exc:
        return _fatal(str(exc))
    for sink in sinks:
        sink.thread.start()
    logger.info("recording {} to {}", ", ".join(p.broker for p in todo), root)
    child.report_ready({"dir": str(root)})
    failed: str | None = None
    while not ctx.stop.wait(STATE_EVERY):
        _publish(ctx, root, sinks)
        failed = next((s.error for s in sinks if s.error), None)
        if failed or not all(s.thread.is_alive() for s in sinks):
            break
    ctx.stop.set()  # the other brokers close their files
    for sink in sinks:
        sink.thread.join()
    _publish(ctx, root, sinks)
    failed = failed or next((s.error for s in sinks if s.error), None)
    if failed:
        return _fatal(failed)
    crashed = next((f"broker {s.plan.broker}: {s.crashed}" for s in sinks if s.crashed), None)
    if crashed:
        logger.error("the recorder stops on an unexpected error ({}); restarted, it finishes "
                     "its files and resumes after the last row written", crashed)
        return CRASH_EXIT
    logger.info("recorder stopped")
    return 0


def _resume_at(plan: RecordPlan) -> tuple[int, int] | None:
    """Finish a killed run's files, and say where it stopped: the newer of its position file
    and the newest row its journals held."""
    last = files.read_position(plan.root, plan.broker)
    for done in files.recover(plan.root, plan.broker):
        logger.warning("broker {}: {}", plan.broker, done.message)
        if done.last is not None and (last is None or done.last > last):
            last = done.last
    return last


def _fatal(reason: str) -> int:
    logger.error("the recording cannot be written: {}; the recorder stops (the desk trades "
                 "on). Free space or fix the directory, then `tradeops start recorder`", reason)
    child.report_fatal(reason)
    return FATAL_EXIT


def _publish(ctx: RoleContext, root: Path | None, sinks: list[BrokerRecorder]) -> None:
    state: dict[str, Any] = {"dir": str(root), "brokers": {}}
    for sink in sinks:
        f = sink.figures
        state["brokers"][sink.plan.broker] = {
            "rows": f.rows, "files": f.files_closed, "bytes": f.bytes_closed,
            "open": f.open_files, "lost": f.lost,
            "gaps": f.gaps, "last_gap": f.last_gap, "last_write": f.last_write,
            "session": f.session, "seq": f.seq,
        }
    child.write_state(ctx.paths.run_dir, ctx.spec.name, state)
