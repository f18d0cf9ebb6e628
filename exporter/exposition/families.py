"""Building blocks of the snapshot's metric families, shared by every part that renders one."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import GaugeMetricFamily


def polled(text: str, interval: float) -> str:
    """HELP text saying the value comes from a background poll, as the exporter guidelines
    ask of exporters that cache."""
    return f"{text} Value from a background poll every {interval:g}s, not from this scrape."


def gauge(name: str, text: str, every: float, labels: list[str]) -> GaugeMetricFamily:
    """A gauge family of polled values."""
    return GaugeMetricFamily(name, polled(text, every), labels=labels)


def state_set(
    family: GaugeMetricFamily, key: list[str], current: str, known: Iterable[str]
) -> None:
    """Samples of a state set: 1 for ``current``, 0 for every other known state; a state
    nobody documented gets its own series with 1."""
    for status in known:
        family.add_metric([*key, status], 1.0 if status == current else 0.0)
    if current not in known:
        family.add_metric([*key, current], 1.0)
