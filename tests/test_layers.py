"""Nothing imports upward: each subpackage of ``exporter`` imports only from layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "exporter"
# Lower layers first; a module may import its own layer and any layer before it.
LAYERS = [
    "support",
    "domain",
    "cloud",
    "config",
    "storage",
    "polling",
    "exposition",
    "web",
    "simulator",
    "(top level)",
]


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts == ["exporter"]:
        return -1  # the package root holds only __version__, which anyone may read
    name = parts[1] if len(parts) > 1 else ""
    return LAYERS.index(name) if name in LAYERS else LAYERS.index("(top level)")


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("exporter"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("exporter")]
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_no_upward_import(path: Path) -> None:
    module = ".".join(("exporter", *path.relative_to(PACKAGE).with_suffix("").parts))
    own = layer_of(module)
    upward = [m for m in imports(path) if layer_of(m) > own]
    assert not upward, f"{module} (layer {LAYERS[own]}) imports upward: {upward}"
