"""A JSON object read member by member, one of its arrays an item at a time.

Parsing a 40 MB state file in one call holds the GIL for seconds, whichever parser does it,
and a thread that holds the GIL stalls the event loop all the same. Here the standard
library's scanner reads one value per call, so a thread reading a file lets the loop run
between any two of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

_SPACE = re.compile(r"[ \t\n\r]*")


class JsonError(ValueError):
    """The text is not JSON, or not the object expected; the message says where."""


def _no_constant(name: str) -> object:
    raise JsonError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


class _Reader:
    def __init__(self, text: str) -> None:
        self._text = text
        self._at = 0

    def _skip(self) -> None:
        match = _SPACE.match(self._text, self._at)
        assert match is not None  # it matches the empty string
        self._at = match.end()

    def peek(self, char: str) -> bool:
        """Whether the next character (after white space) is ``char``; if so, it is read."""
        self._skip()
        if self._text.startswith(char, self._at):
            self._at += 1
            return True
        return False

    def expect(self, char: str) -> None:
        if not self.peek(char):
            next_char = self._text[self._at : self._at + 1]
            found = repr(next_char) if next_char else "the end of the text"
            raise JsonError(f"expected {char!r} at character {self._at}, found {found}")

    def value(self) -> object:
        """The next value."""
        self._skip()
        try:
            value, self._at = _DECODER.raw_decode(self._text, self._at)
        except json.JSONDecodeError as exc:
            raise JsonError(f"{exc.msg}: line {exc.lineno} column {exc.colno}") from None
        return value

    def end(self) -> None:
        self._skip()
        if self._at != len(self._text):
            raise JsonError(f"extra data after the object at character {self._at}")


def read_object(
    text: str, streamed: str, batch: int, each: Callable[[list[object]], None]
) -> dict[str, object]:
    """The members of the JSON object ``text``, except the array ``streamed``, which is
    handed to ``each`` ``batch`` items at a time (and stands as an empty list in what is
    returned). Raises JsonError."""
    reader = _Reader(text)
    members: dict[str, object] = {}
    reader.expect("{")
    if reader.peek("}"):
        reader.end()
        return members
    while True:
        key = reader.value()
        if not isinstance(key, str):
            raise JsonError("an object's keys are strings")
        if key in members:
            raise JsonError(f"{key!r} appears twice")
        reader.expect(":")
        if key == streamed and reader.peek("["):
            members[key] = []
            _read_array(reader, batch, each)
        else:
            members[key] = reader.value()
        if not reader.peek(","):
            break
    reader.expect("}")
    reader.end()
    return members


def _read_array(reader: _Reader, batch: int, each: Callable[[list[object]], None]) -> None:
    if reader.peek("]"):
        return
    items: list[object] = []
    while True:
        items.append(reader.value())
        if len(items) == batch:
            each(items)
            items = []
        if not reader.peek(","):
            break
    reader.expect("]")
    if items:
        each(items)
