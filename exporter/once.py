"""What ``--once`` says on standard error: one line per thing that failed, with its reason,
and a summary. Its exit code is 1 when any line was said, so that a CI job, a cron check or
a newcomer's first try stops on a typo (an ID that does not exist), a forbidden list or a
failing build-job read, not only on a target that could not be asked."""

from __future__ import annotations

import sys
from collections.abc import Callable

from exporter.domain.state import Snapshot
from exporter.domain.targets import Origin


def report_failures(snapshot: Snapshot, redact: Callable[[str], str]) -> int:
    """Print each failure (redacted) and a summary to standard error; returns how many."""
    targets = [t for t in snapshot.targets if not t.up]
    # A configured ID the API answers 404 for: most often a typo, or an object deleted.
    missing = [
        t for t in snapshot.targets
        if t.up and t.exists is False and t.origin is Origin.CONFIGURED
    ]  # fmt: skip
    # A service the project is not offered (404 APIGW.0101) is no failure.
    sweeps = [s for s in snapshot.sweeps if not s.up and s.unavailable_until is None]
    usage = [u for u in snapshot.usage if not u.up and u.unavailable_until is None]
    jobs = [j for j in snapshot.jobs if not j.up]
    accounts = [a for a in snapshot.accounts if not a.up]
    lines = [f"target failed: {t.key.resource.value} {t.key.project_id}/{t.key.id}: {t.error}"
             for t in targets]  # fmt: skip
    lines += [
        f"target missing: {t.key.resource.value} {t.key.project_id}/{t.key.id}: the API "
        "answers 404 (no such object): check the ID, or remove it if it was deleted"
        for t in missing
    ]
    lines += [f"sweep failed: {s.key.resource.value} in project {s.key.project_id}: {s.error}"
              for s in sweeps]  # fmt: skip
    lines += [f"dev-server list failed: project {u.project_id}: {u.error}" for u in usage]
    lines += [f"build jobs failed: project {j.project_id}: {j.error}" for j in jobs]
    lines += [f"account failed: {a.name}: {a.error}" for a in accounts]
    for line in lines:
        print(redact(line), file=sys.stderr)
    if lines:
        print(
            f"--once: {len(targets)} of {len(snapshot.targets)} targets failed and "
            f"{len(missing)} do not exist; {len(sweeps)} of {len(snapshot.sweeps)} sweeps, "
            f"{len(usage)} dev-server lists, {len(jobs)} build-job reads and {len(accounts)} "
            f"of {len(snapshot.accounts)} accounts failed; their metrics above keep the last "
            "values known",
            file=sys.stderr,
        )
    return len(lines)
