"""Reading the files a configuration names: bounded, regular files only, UTF-8, safe YAML.

A configuration file, a web configuration or a secret file may be anything a path can
name: a FIFO that never ends (opening one for reading would block), /dev/zero, a file
of gigabytes, bytes that are not UTF-8, or YAML whose aliases expand a few kilobytes into
millions of nodes. Each is refused with one line that names the file and the fix.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

from exporter.config.errors import ConfigError

MAX_CONFIG_BYTES = 16 << 20  # a configuration with 100,000 IDs is a few MB
MAX_SECRET_BYTES = 64 << 10  # a key, a token or a password: a few hundred bytes at most
MAX_YAML_NODES = 1_000_000  # nodes after alias expansion (100,000 IDs are about 100,000)


def read_bytes(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """The contents of a regular file of at most ``limit`` bytes; ConfigError otherwise."""
    name = repr(os.fspath(path))
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; a regular file ignores it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError([f"{what}: cannot read {name}: {exc.strerror or exc}"]) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                [f"{what}: {name} is not a regular file; point it at a file, not a pipe or device"]
            )
        if info.st_size > limit:  # refused at once: a sparse file of a gigabyte reads fast
            raise ConfigError([f"{what}: {name} is over {limit} bytes; is it the right file?"])
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise ConfigError([f"{what}: {name} is over {limit} bytes; is it the right file?"])
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError([f"{what}: cannot read {name}: {exc.strerror or exc}"]) from None
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str], limit: int, what: str) -> str:
    """``read_bytes`` decoded as UTF-8 (an initial byte-order mark is allowed)."""
    data = read_bytes(path, limit, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                f"{what}: {os.fspath(path)!r} is not UTF-8 text (byte {exc.start} cannot be "
                "decoded); save it as UTF-8"
            ]
        ) from None


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes the document has once aliases are expanded (shared nodes counted each time)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = size = min(size, MAX_YAML_NODES + 1)
    return size


class _TooLarge(Exception):
    """The document expands beyond MAX_YAML_NODES."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents that alias expansion would make huge."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > MAX_YAML_NODES:
            raise _TooLarge
        return node


def parse_yaml(text: str, what: str) -> Any:
    """YAML parsed safely; a syntax error, deep nesting or alias bomb is one ConfigError."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise ConfigError([f"{what}: nested too deeply to read; flatten the YAML"]) from None
    except _TooLarge:
        raise ConfigError(
            [
                f"{what}: expands to more than {MAX_YAML_NODES} YAML nodes through aliases; "
                "write it out without aliases"
            ]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        # PyYAML names a tab as the two characters backslash and t.
        tab = "\\t" in problem
        fix = "indent with spaces, not tabs" if tab else "check the indentation, colons and quotes"
        raise ConfigError([f"{what}: invalid YAML{where}: {problem}; {fix}"]) from None
