"""Which units of work a shard owns, when N replicas split the work between them.

The unit is a (resource, project) sweep, or one configured object polled by detail call.
Rendezvous (highest random weight) hashing gives each unit to one shard: every process
computes the same answer from the unit's name alone (blake2b, not ``hash()``, so Python
versions and hash seeds do not matter), and going from M to M+1 shards moves about
1/(M+1) of the units, all of them to the new shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from exporter.domain.targets import SweepKey, TargetKey

# Each unit's owner is found by hashing it once per shard: past this many shards that costs
# more than the polling it splits (and no fleet needs it: 1,000 shards of 100,000 objects).
MAX_SHARDS = 1000


def owner(unit: str, total: int) -> int:
    """The shard, from 0 to ``total`` - 1, that owns ``unit``."""
    best, best_score = 0, -1
    for shard in range(total):
        digest = hashlib.blake2b(f"{shard}\0{unit}".encode(), digest_size=8).digest()
        score = int.from_bytes(digest, "big")
        if score > best_score:
            best, best_score = shard, score
    return best


def sweep_unit(key: SweepKey) -> str:
    """The unit name of a sweep."""
    return f"{key.resource.value}/{key.project_id}"


def target_unit(key: TargetKey) -> str:
    """The unit name of a configured object polled by detail call."""
    return f"{key.resource.value}/{key.project_id}/{key.id}"


@dataclass(frozen=True, slots=True)
class Shard:
    """This process's shard: ``index`` of ``total``; 0 of 1 owns everything."""

    index: int = 0
    total: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.total <= MAX_SHARDS:
            raise ValueError(f"there must be 1 to {MAX_SHARDS} shards, not {self.total}")
        if not 0 <= self.index < self.total:
            raise ValueError(
                f"shard {self.index} is not one of 0 to {self.total - 1} "
                f"(shards are numbered from 0 below the total, {self.total})"
            )

    def owns(self, unit: str) -> bool:
        """Whether this shard polls ``unit``."""
        return self.total == 1 or owner(unit, self.total) == self.index
