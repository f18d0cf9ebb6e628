"""What this shard watches, as one value: the only place the sharding rule is applied.

With M shards each unit of work (a sweep, or a configured object outside every sweep) is
owned by one shard (``exporter.domain.sharding``). An Assignment is computed from the
configuration, the accounts' projects and the shard, once per round; the poller, the merge,
a restart's restore and the exposition all read it instead of deciding again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from exporter.domain.sharding import Shard, sweep_unit, target_unit
from exporter.domain.state import TargetState
from exporter.domain.targets import (
    DevServerScope,
    Origin,
    ProjectEndpoint,
    Resource,
    Sweep,
    SweepKey,
    Target,
    TargetKey,
)


def hashed_targets(shard: Shard, targets: tuple[Target, ...]) -> frozenset[TargetKey]:
    """The configured targets this shard would own by their own ID (when no sweep covers
    them); hashed once per configuration, not every round."""
    if shard.total == 1:
        return frozenset(t.key for t in targets)
    return frozenset(t.key for t in targets if shard.owns(target_unit(t.key)))


@dataclass(frozen=True, slots=True)
class Assignment:
    """This shard's part of the work for one round."""

    shard: Shard
    sweeps: tuple[Sweep, ...] = ()  # the sweeps it runs
    owned: tuple[Target, ...] = ()  # the configured targets it reports
    plain: tuple[Target, ...] = ()  # ... of which those it asks about one by one
    # Projects whose image build jobs it reads, and where.
    job_scopes: Mapping[str, ProjectEndpoint] = field(default_factory=dict)
    # Projects whose dev servers it sweeps (to count servers per image), and where: those of
    # its dev-server image sweeps.
    usage_scopes: Mapping[str, DevServerScope] = field(default_factory=dict)
    # Projects whose job counts (in flight, failures) it reports: the owner of the project's
    # image-server sweep, so that shards watching servers of one project count it once.
    job_counts: frozenset[str] = frozenset()
    # Accounts may add sweeps this round does not know yet (their projects are listed
    # later): a restored object of an account's project is kept if its sweep would be ours.
    accounts: bool = False

    def diff(self, old: Assignment) -> tuple[tuple[Target, ...], tuple[Sweep, ...]]:
        """What this assignment polls that ``old`` did not: targets and sweeps to poll now."""
        known = {t.key for t in old.owned}
        known_sweeps = {s.key for s in old.sweeps}
        return (
            tuple(t for t in self.plain if t.key not in known),
            tuple(s for s in self.sweeps if s.key not in known_sweeps),
        )

    def watching(self) -> Callable[[TargetState], bool]:
        """Whether a state kept from before a restart is this shard's to serve (a predicate,
        so that the sets it checks against are built once for 100,000 states)."""
        owned = {t.key for t in self.owned}
        sweeping = self.sweeping()

        def watches(state: TargetState) -> bool:
            k = state.key
            if k in owned:
                return True
            return state.origin is Origin.DISCOVERED and sweeping(k.sweep)

        return watches

    def sweeping(self) -> Callable[[SweepKey], bool]:
        """Whether what a sweep found before a restart is this shard's to serve: a sweep it
        runs, or one it would run once its accounts' projects are listed."""
        swept = {s.key for s in self.sweeps}

        def sweeps(key: SweepKey) -> bool:
            return key in swept or (self.accounts and self.shard.owns(sweep_unit(key)))

        return sweeps


def assign(
    shard: Shard,
    targets: tuple[Target, ...],
    hashed: frozenset[TargetKey],
    sweeps: tuple[Sweep, ...],
    *,
    accounts: bool = False,
) -> Assignment:
    """This shard's part of ``targets`` and ``sweeps`` (every shard's, configured and
    found through accounts); ``hashed`` is ``hashed_targets(shard, targets)``."""
    active = tuple(s for s in sweeps if shard.total == 1 or shard.owns(sweep_unit(s.key)))
    owned, plain = _split(shard, targets, hashed, sweeps, active)
    scopes = _job_scopes(owned, active)
    counts = frozenset(
        pid
        for pid in scopes
        if shard.total == 1 or shard.owns(sweep_unit(SweepKey(Resource.IMAGE_SERVER, pid)))
    )
    usage = {
        s.key.project_id: DevServerScope(
            s.key.project_id, s.endpoint, s.credentials, s.discovery.servers == "all"
        )
        for s in active
        if s.key.resource is Resource.DEVSERVER_IMAGE
    }
    return Assignment(shard, active, owned, plain, scopes, usage, counts, accounts)


def _split(
    shard: Shard,
    targets: tuple[Target, ...],
    hashed: frozenset[TargetKey],
    sweeps: tuple[Sweep, ...],
    active: tuple[Sweep, ...],
) -> tuple[tuple[Target, ...], tuple[Target, ...]]:
    """The configured targets this shard owns (by their sweep's owner when a sweep covers
    them, by their own ID when none does), and those of them it asks one by one."""
    if not sweeps:  # by ID alone (the common case): nothing to sort out per target
        mine_by_id = tuple(t for t in targets if shard.total == 1 or t.key in hashed)
        return mine_by_id, mine_by_id
    covered = {s.key for s in sweeps}
    mine = {s.key for s in active}
    owned, plain = [], []
    for t in targets:
        k = t.key.sweep
        if k not in covered:
            if shard.total == 1 or t.key in hashed:
                owned.append(t)
                plain.append(t)
        elif k in mine:
            owned.append(t)
    return tuple(owned), tuple(plain)


def _job_scopes(owned: tuple[Target, ...], active: tuple[Sweep, ...]) -> dict[str, ProjectEndpoint]:
    """Each project with image servers among ``owned`` and ``active``, and where (and with
    which credentials) its jobs are listed."""
    server = Resource.IMAGE_SERVER
    found: dict[str, ProjectEndpoint] = {}
    for s in active:
        if s.key.resource is server and s.key.project_id not in found:
            found[s.key.project_id] = ProjectEndpoint(s.key.project_id, s.endpoint, s.credentials)
    for t in owned:
        if t.key.resource is server and t.key.project_id not in found:
            found[t.key.project_id] = ProjectEndpoint(t.key.project_id, t.endpoint, t.credentials)
    return found
