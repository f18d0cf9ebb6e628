"""Which dev-server images are in use: how many ModelArts Lite Servers (dev servers) run each.

One list sweep of a project's dev servers says which image each runs. The exporter keeps,
per project, the number of servers per image and server status, never one entry per
server; the image IDs it keeps are bounded (MAX_IMAGES, the rest counted as OTHER_IMAGE).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from exporter.domain.health import Health, Healthy
from exporter.domain.labels import known
from exporter.domain.targets import DEVSERVER_IMAGE_ID_RE

# Server statuses as documented for ``GET /v1/{project_id}/dev-servers``; anything else is
# counted as "other".
SERVER_STATUSES = (
    "CREATE_FAILED", "CREATING", "DELETED", "DELETE_FAILED", "DELETING", "ERROR", "RUNNING",
    "STARTING", "START_FAILED", "STOPPED", "STOPPING", "STOP_FAILED", "REBOOTING",
    "REBOOT_FAILED", "CHANGINGOS", "CHANGINGOS_FAILED", "REINSTALLINGOS",
    "REINSTALLINGOS_FAILED",
)  # fmt: skip
# Statuses of a server that no longer holds its image: it does not count as a use.
GONE_STATUSES = frozenset({"DELETED", "DELETING"})
# A watched image always has a series with this status (0 when no server runs it), so that
# "no server runs it" is a query, not an absence.
RUNNING = "RUNNING"
# Distinct images per project that get their own series; the rest share OTHER_IMAGE.
MAX_IMAGES = 1000
# Images nobody watches that get their own series, across every project of a process.
MAX_UNWATCHED = 10_000
OTHER_IMAGE = "other"
# A server that names no image.
NO_IMAGE = ""


@dataclass(frozen=True, slots=True)
class DevServer:
    """One dev server as the list shows it: its status is already bounded (documented
    statuses and "other"), ``image_id`` is empty when it names none."""

    id: str
    status: str
    image_id: str


@dataclass(frozen=True, slots=True)
class ImageUse:
    """The servers of one project running one image, by server status (sorted, no zeros);
    ``watched`` when the exporter watches that image (set when the round is merged)."""

    image_id: str
    servers: tuple[tuple[str, int], ...]
    watched: bool = False

    @property
    def in_use(self) -> int:
        """Servers running it that still hold it (not DELETED or DELETING)."""
        return sum(n for status, n in self.servers if status not in GONE_STATUSES)


@dataclass(frozen=True, slots=True)
class UsageState(Healthy):
    """One project's dev-server sweep after its latest run; it fails as list sweeps do:
    the counts keep their last values, marked down."""

    project_id: str
    health: Health
    objects: int | None = None  # servers the last successful sweep listed
    pages: int = 0  # list calls the last sweep made
    complete: bool | None = None  # False when the list said it left servers out
    list_allowed: bool = True  # False after 403
    # Set when ModelArts answered that it is not offered in this project (404 APIGW.0101).
    unavailable_until: float | None = None
    # Set when every user's list was forbidden (403): the caller's own is read until then.
    everyone_denied_until: float | None = None
    # Images the servers run, most used first (at most MAX_IMAGES, then OTHER_IMAGE).
    in_use: tuple[ImageUse, ...] = ()
    # Watched images of the project that no listed server runs (set when merged).
    idle: tuple[str, ...] = ()


def count_images(
    servers: Mapping[str, DevServer], watched: Collection[str] = frozenset()
) -> tuple[ImageUse, ...]:
    """Servers per image and status, the most used images first. Watched images always
    have their own series; of the others, those past MAX_IMAGES are counted together as
    OTHER_IMAGE (one series per status), so that a list cannot create series without bound."""
    per_image: dict[str, dict[str, int]] = {}
    for s in servers.values():
        counts = per_image.setdefault(s.image_id, {})
        counts[s.status] = counts.get(s.status, 0) + 1
    return _ranked(per_image, watched)


def bounded_uses(
    uses: Iterable[tuple[str, Iterable[tuple[str, int]]]],
) -> tuple[ImageUse, ...]:
    """Counts from elsewhere (the state file) held to the bounds a sweep's counts keep: an
    image ID of a dev-server image's shape ("" for none; anything else is OTHER_IMAGE), a
    known status or "other", duplicates added up, at most MAX_IMAGES images before
    OTHER_IMAGE. Watched images are marked when the counts are merged."""
    per_image: dict[str, dict[str, int]] = {}
    for image, servers in uses:
        shaped = image if not image or DEVSERVER_IMAGE_ID_RE.fullmatch(image) else OTHER_IMAGE
        counts = per_image.setdefault(shaped, {})
        for status, n in servers:
            if n:  # a sweep keeps no zero counts
                bounded = known(status, SERVER_STATUSES)
                counts[bounded] = counts.get(bounded, 0) + n
    return _ranked({image: c for image, c in per_image.items() if c}, frozenset())


def _ranked(per_image: dict[str, dict[str, int]], watched: Collection[str]) -> tuple[ImageUse, ...]:
    folded = per_image.pop(OTHER_IMAGE, {})  # servers whose image ID was no image ID

    def rank(image: str) -> tuple[int, str]:
        return -sum(per_image[image].values()), image

    mine = [image for image in per_image if image in watched]
    others = sorted((image for image in per_image if image not in watched), key=rank)
    room = max(MAX_IMAGES - len(mine), 0)
    for image in others[room:]:
        for status, n in per_image.pop(image).items():
            folded[status] = folded.get(status, 0) + n
    kept = [(image, per_image[image]) for image in sorted(per_image, key=rank)]
    if folded:
        kept.append((OTHER_IMAGE, folded))
    return tuple(ImageUse(image, tuple(sorted(counts.items()))) for image, counts in kept)


def bounded_across(usage: Sequence[UsageState]) -> tuple[UsageState, ...]:
    """The usage of every project, at most MAX_UNWATCHED images nobody watches across them
    all (the least used folded into their project's OTHER_IMAGE): MAX_IMAGES a project
    alone would let an account's project count multiply the series."""
    ranked = sorted(
        (-sum(n for _, n in i.servers), u.project_id, i.image_id)
        for u in usage for i in u.in_use if not i.watched and i.image_id != OTHER_IMAGE
    )  # fmt: skip
    if len(ranked) <= MAX_UNWATCHED:
        return tuple(usage)
    folded = {(pid, image) for _, pid, image in ranked[MAX_UNWATCHED:]}
    bounded = []
    for u in usage:
        out = [i for i in u.in_use if (u.project_id, i.image_id) in folded]
        if not out:
            bounded.append(u)
            continue
        other: dict[str, int] = {}
        for i in (*out, *(i for i in u.in_use if i.image_id == OTHER_IMAGE)):
            for status, n in i.servers:
                other[status] = other.get(status, 0) + n
        kept = [i for i in u.in_use if i.image_id != OTHER_IMAGE and i not in out]
        folded_use = ImageUse(OTHER_IMAGE, tuple(sorted(other.items())))
        bounded.append(replace(u, in_use=(*kept, folded_use)))
    return tuple(bounded)
