"""What may import what: the package's layers as a graph, every edge allowed on purpose.

Each subpackage of ``exporter`` (and ``bench``) may import only the packages listed for it
below; an edge that is not straight down the layers says why it is there. The package root
(``exporter.__version__``) may be read by anyone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "exporter"
TOP = "(top level)"  # cli, runtime, logs, rules: they wire everything together
EVERYTHING = {"support", "domain", "cloud", "config", "storage", "polling", "exposition",
              "web", "simulator", TOP}  # fmt: skip

ALLOWED: dict[str, set[str]] = {
    "support": set(),
    "domain": {"support"},
    "cloud": {"support", "domain"},
    "config": {"support", "domain", "cloud"},
    "storage": {"support", "domain", "cloud", "config"},
    "polling": {"support", "domain", "cloud", "config"},
    "exposition": {"support", "domain"},
    "web": {"support", "domain", "config", "exposition"},
    "simulator": {"support", "domain", "cloud"},
    TOP: EVERYTHING - {TOP},
    "bench": EVERYTHING,
}

# The edges that are not simply "a layer uses the ones below it", and why each is kept.
REASONS = {
    ("config", "cloud"): "cloud.regions: the table of endpoints by region belongs to the "
    "client; configuration resolves a region's default endpoints from it",
    ("storage", "cloud"): "cloud.sanitize and cloud.convert: the state file reads back within "
    "the very bounds the cloud's strings and times are cut to on the way in",
    ("storage", "config"): "config.files: the bounded, regular-files-only reader every file "
    "the exporter reads goes through",
    ("web", "config"): "config.files and config.validation: the web configuration is a file, "
    "read and validated like the configuration",
    ("polling", "config"): "config.settings: the poll settings the poller is given as one value",
    ("simulator", "cloud"): "cloud.signing: the fake gateway checks signatures with the same "
    "code the client signs with, itself checked against the official SDK's signer",
}


def layer(module: str) -> str | None:
    """The layer of a module name: a subpackage, the top level, bench; None for the root."""
    parts = module.split(".")
    if parts[0] == "bench":
        return "bench"
    if parts == ["exporter"]:
        return None
    return parts[1] if (PACKAGE / parts[1]).is_dir() else TOP


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("exporter"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("exporter")]
    return found


MODULES = sorted([*PACKAGE.rglob("*.py"), *(ROOT / "bench").rglob("*.py")])


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_imports_follow_the_graph(path: Path) -> None:
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    own = layer(module)
    assert own is not None
    wrong = [m for m in imports(path) if layer(m) not in (None, own, *ALLOWED[own])]
    assert not wrong, f"{module} ({own}) may not import {wrong}"


def test_every_sideways_edge_has_its_reason() -> None:
    # Straight down: anyone may use support and domain; polling drives the cloud client,
    # and web serves what exposition renders.
    straight = {("polling", "cloud"), ("web", "exposition")}
    sideways = {
        (src, dst)
        for src, dsts in ALLOWED.items()
        if src not in (TOP, "bench")
        for dst in dsts
        if dst not in ("support", "domain") and (src, dst) not in straight
    }
    assert sideways == REASONS.keys()


def test_the_graph_has_no_cycle() -> None:
    def reaches(src: str, dst: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(n == dst or (n not in seen and reaches(n, dst, seen | {n}))
                   for n in ALLOWED.get(src, ()))  # fmt: skip

    assert not [name for name in ALLOWED if name != "bench" and reaches(name, name)]
