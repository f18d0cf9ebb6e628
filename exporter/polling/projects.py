"""Reading one state of some kind per project a cycle (build jobs, dev servers), every
project at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol, TypeVar

from exporter.domain.jobs import JobsState
from exporter.domain.targets import ProjectEndpoint
from exporter.domain.usage import UsageState

_S = TypeVar("_S", JobsState, UsageState)
_E_contra = TypeVar("_E_contra", bound=ProjectEndpoint, contravariant=True)
_P = TypeVar("_P", bound=ProjectEndpoint)


class ProjectReader(Protocol[_S, _E_contra]):
    """Reads one project's state of some kind (build jobs, dev servers) a cycle."""

    async def refresh(
        self,
        scope: _E_contra,
        prev: _S | None,
        deadline: float | None,
        slots: asyncio.Semaphore | None,
    ) -> tuple[_S, int]:
        """The project's new state and the calls it took; never raises for the API's sake."""
        ...


async def each_project(
    reader: ProjectReader[_S, _P],
    previous: dict[str, _S],
    scopes: Mapping[str, _P],
    deadline: float,
    slots: asyncio.Semaphore,
) -> tuple[dict[str, _S], int]:
    """Every project's new state, read at once (each request holding one of ``slots``), and
    the calls that took."""
    results = await asyncio.gather(
        *(reader.refresh(scope, previous.get(pid), deadline, slots)
          for pid, scope in sorted(scopes.items()))
    )  # fmt: skip
    return {state.project_id: state for state, _ in results}, sum(n for _, n in results)
