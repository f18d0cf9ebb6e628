"""What one poll round (a cycle, a quick poll, or a partial poll after a reload) learnt
before it is merged into the snapshot, and the log lines about targets it owes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from exporter.domain.health import news
from exporter.domain.jobs import JobsState
from exporter.domain.state import SweepState, TargetState
from exporter.domain.targets import SweepKey, Target, TargetKey
from exporter.domain.usage import UsageState

log = logging.getLogger(__name__)

MAX_TARGET_LINES = 20  # target state changes logged one by one per round


@dataclass
class Round:
    """What one cycle (or partial poll) learnt, before it is merged."""

    states: dict[TargetKey, TargetState] = field(default_factory=dict)
    dropped: set[TargetKey] = field(default_factory=set)
    sweeps: dict[SweepKey, SweepState] = field(default_factory=dict)
    details: list[Target] = field(default_factory=list)  # still to ask about, one by one
    calls: int = 0
    jobs: dict[str, JobsState] | None = None  # set by a full cycle
    usage: dict[str, UsageState] | None = None  # set by a full cycle
    # Target state changes logged one by one this round, and those past MAX_TARGET_LINES.
    logged: int = 0
    unlogged: int = 0


def log_transition(prev: TargetState | None, state: TargetState, found: Round) -> None:
    """One line when a target starts failing, fails differently, recovers or is gone; not
    every cycle, and at most MAX_TARGET_LINES a round (an outage of 10,000 targets is one
    more line with the rest's number)."""
    key = state.key
    failed = not state.up and news(prev.health if prev else None, state.error_label or "")
    recovered = state.up and prev is not None and not prev.up
    gone = state.exists is False and (prev is None or prev.exists is not False)
    if not (failed or recovered or gone):
        return
    if found.logged >= MAX_TARGET_LINES:
        found.unlogged += 1
        return
    found.logged += 1
    fields = {"resource": key.resource.value, "project_id": key.project_id, "id": key.id}
    if failed:
        log.warning("poll failed: %s", state.error, extra=fields)
    elif recovered:
        log.info("poll recovered", extra=fields)
    if gone:
        log.warning("object does not exist (HTTP 404)", extra=fields)
