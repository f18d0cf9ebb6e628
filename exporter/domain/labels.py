"""Label values that come from the cloud and are not identifiers (statuses, job types),
bounded: the documented values, and one catch-all for everything else, so that an API that
misbehaves cannot create series without limit."""

from __future__ import annotations

OTHER = "other"  # every undocumented value, counted together


def known(value: str, values: tuple[str, ...]) -> str:
    """``value`` when documented, else "other"."""
    return value if value in values else OTHER
