"""How the latest poll of something went: one type for every kind of poll (an object's
detail call or list sweep, a sweep itself, an account's project list, a project's jobs).

Each state holds a Health and shows its fields (``state.up``, ``state.last_success``,
``state.error``, ``state.error_label``) through the Healthy mixin; the collector, the status
page and the state file read them the same way whatever the state.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Health:
    """Whether the latest poll got an answer, when one last did, and why not (its message,
    and the bounded ``error_code`` label)."""

    up: bool
    last_success: float | None
    error: str | None = None
    error_label: str | None = None

    def failed(self, error: str, error_label: str) -> Health:
        """Down with this reason, the last success kept."""
        return Health(False, self.last_success, error, error_label)

    def news(self, error_label: str) -> bool:
        """Whether failing with ``error_label`` is worth a line: after a success, or with
        another reason than last time (not every cycle of the same failure)."""
        return self.up or self.error_label != error_label


_UNKNOWN = Health(False, None)  # nothing polled yet


def failed(prev: Health | None, error: str, error_label: str) -> Health:
    """A failure after ``prev`` (None: the first poll)."""
    return (prev or _UNKNOWN).failed(error, error_label)


def news(prev: Health | None, error_label: str) -> bool:
    """Whether a failure after ``prev`` is worth a line; the first one always is."""
    return prev is None or prev.news(error_label)


class Healthy:
    """A state with a Health, its fields at hand."""

    __slots__ = ()
    health: Health

    @property
    def up(self) -> bool:
        """Whether the latest poll got an answer."""
        return self.health.up

    @property
    def last_success(self) -> float | None:
        """When a poll last got an answer."""
        return self.health.last_success

    @property
    def error(self) -> str | None:
        """Why the latest poll failed."""
        return self.health.error

    @property
    def error_label(self) -> str | None:
        """The bounded label of why the latest poll failed."""
        return self.health.error_label
