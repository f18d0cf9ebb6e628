"""Reading a JSON object with one array an item at a time: the same values as json.loads,
and every malformed text refused with a message that says where."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.storage.jsonstream import JsonError, read_object

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(
    members=st.dictionaries(st.text().filter(lambda k: k != "targets"), _values, max_size=5),
    targets=st.lists(_values, max_size=30),
    batch=st.integers(1, 7),
    indent=st.sampled_from([None, 0, 2]),
)
def test_the_same_values_as_json_loads(
    members: dict[str, Any], targets: list[Any], batch: int, indent: int | None
) -> None:
    text = json.dumps({**members, "targets": targets}, indent=indent)
    seen: list[list[object]] = []
    read = read_object(text, "targets", batch, lambda items: seen.append(list(items)))
    assert read == {**members, "targets": []}
    assert [item for part in seen for item in part] == targets
    assert all(len(part) == batch for part in seen[:-1]) and all(seen)


def test_an_array_not_streamed_is_read_whole() -> None:
    read = read_object('{"jobs": [1, 2], "targets": "not a list"}', "targets", 1, print)
    assert read == {"jobs": [1, 2], "targets": "not a list"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected '{' at character 0, found the end of the text"),
        ("[]", "expected '{' at character 0, found '['"),
        ('{"a": 1', "expected '}' at character 7, found the end of the text"),
        ('{"a": 1,}', "Expecting value: line 1 column 9"),
        ('{"a" 1}', "expected ':' at character 5, found '1'"),
        ("{1: 2}", "an object's keys are strings"),
        ('{"a": 1, "a": 2}', "'a' appears twice"),
        ('{"targets": [1, 2', "expected ']' at character 17, found the end of the text"),
        ('{"targets": [1 2]}', "expected ']' at character 15, found '2'"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"targets": [-Infinity]}', "-Infinity is not a JSON number"),
        ('{"a": 1} x', "extra data after the object at character 9"),
        ('{"a": "\x00"}', "Invalid control character at: line 1 column 8"),
    ],
)
def test_malformed_text_is_refused_saying_where(text: str, message: str) -> None:
    with pytest.raises(JsonError) as caught:
        read_object(text, "targets", 2, lambda items: None)
    assert str(caught.value) == message
