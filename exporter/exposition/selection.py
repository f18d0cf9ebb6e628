"""Which metric families are served: ``--metric-allowlist`` / ``--metric-denylist``.

As in kube-state-metrics, each list is comma-separated regular expressions, each matched
against a whole family name. A family is named as its ``# TYPE`` line names it in either
format, so a counter is matched by ``x`` and by ``x_total``, an info family by ``x`` and by
``x_info``. A dropped family is left out of every rendering: its lines are never written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

_SUFFIXES = {"counter": "_total", "info": "_info"}
# Sample names that belong to a family named without them.
_SAMPLE_SUFFIXES = ("_total", "_info", "_bucket", "_count", "_sum", "_created")


@dataclass(frozen=True, slots=True)
class Selection:
    """The families served: all but those matched (a denylist), or only those matched (an
    allowlist). The default serves every family."""

    patterns: tuple[re.Pattern[str], ...] = ()
    allow: bool = False

    @classmethod
    def parse(cls, text: str, *, allow: bool) -> Selection:
        """A list from its flag's value; a bad expression is a ``ValueError`` naming it."""
        flag = "--metric-allowlist" if allow else "--metric-denylist"
        items = [item.strip() for item in text.split(",")]
        if not any(items):
            raise ValueError(f"{flag}: no expression given; write e.g. {flag}='.*_info'")
        patterns = []
        for item in items:
            if not item:
                raise ValueError(f"{flag}: an empty expression in {text!r}; remove the extra comma")
            try:
                patterns.append(re.compile(item))
            except re.error as exc:
                raise ValueError(
                    f"{flag}: {item!r} is not a regular expression ({exc}); "
                    "escape special characters with a backslash"
                ) from None
        return cls(tuple(patterns), allow)

    def keeps(self, name: str, kind: str = "gauge") -> bool:
        """Whether the family ``name`` of type ``kind`` is served."""
        if not self.patterns:
            return True
        names = (name, name + _SUFFIXES[kind]) if kind in _SUFFIXES else (name,)
        matched = any(p.fullmatch(n) for p in self.patterns for n in names)
        return matched is self.allow

    def dropped(self, families: Iterable[tuple[str, str]]) -> list[str]:
        """The names of the families (name, kind) this selection drops."""
        return [name for name, kind in families if not self.keeps(name, kind)]

    def describe(self) -> str:
        """The selection as its flag is written."""
        flag = "--metric-allowlist" if self.allow else "--metric-denylist"
        return f"{flag}={','.join(p.pattern for p in self.patterns)}"


ALL = Selection()


def family_of(sample: str, families: dict[str, str]) -> str | None:
    """The family (of ``families``, name to kind) a sample name such as ``x_bucket`` or
    ``x_total`` belongs to; None for a name no family has."""
    if sample in families:
        return sample
    for suffix in _SAMPLE_SUFFIXES:
        base = sample.removesuffix(suffix)
        if base != sample and base in families:
            return base
    return None


class Selected(Collector):
    """A collector's families less those a selection drops."""

    def __init__(self, collector: Collector, selection: Selection) -> None:
        self._collector = collector
        self._selection = selection

    def collect(self) -> Iterator[Metric]:
        """The kept families."""
        return (f for f in self._collector.collect() if self._selection.keeps(f.name, f.type))
