"""graph.json text: the C-level fast paths of parsing and canonical writing give exactly what the
per-number paths give (same document, same bytes, same refusals)."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intref.bundle.jsonio import dumps_canonical, holds_infinity, parse_json
from intref.errors import BundleFormatError

SCALARS = st.one_of(st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans(), st.none(), st.text(max_size=5))
DOCUMENTS = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                          st.dictionaries(st.text(max_size=4), inner, max_size=4)),
                         max_leaves=40)


def per_item(values) -> str:
    """A list of scalars as the writer wrote it before its fast path: one json.dumps per item."""
    return "[" + ", ".join(json.dumps(v, ensure_ascii=True, allow_nan=False) for v in values) + "]\n"


@given(st.one_of(st.lists(st.integers(-(1 << 80), 1 << 80)),
                 st.lists(st.floats(allow_nan=False, allow_infinity=False)),
                 st.lists(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans()))))
def test_scalar_lists_are_written_as_per_item_json(values):
    assert dumps_canonical(values).decode("ascii") == per_item(values)


@pytest.mark.parametrize("values", [[1.0, math.inf], [math.nan], [0.5, -math.inf, 2]])
def test_non_finite_floats_are_still_refused_when_written(values):
    with pytest.raises(ValueError):
        dumps_canonical(values)


@given(DOCUMENTS)
def test_parsing_round_trips_and_finds_no_infinity(document):
    text = json.dumps(document).encode("ascii")
    assert parse_json(text) == json.loads(text)
    assert not holds_infinity(parse_json(text))


@pytest.mark.parametrize("document, found", [
    ([1.0, 2.0, math.inf], True), ({"a": {"b": [[1, "x", -math.inf]]}}, True), ({"a": [1, 2, 3]}, False),
    ([[[[math.inf]]]], True), ({"k": math.inf}, True), ("inf", False), (1e308, False),
])
def test_holds_infinity_finds_one_at_any_depth(document, found):
    assert holds_infinity(document) == found


@pytest.mark.parametrize("text", [b'{"a": [[1, 2, {"b": [0.5, 1e999]}]]}', b'[1, "1e999", 1e999]', b"-1e400"])
def test_an_overflowing_literal_is_named_however_deep(text):
    with pytest.raises(BundleFormatError, match="does not fit a float64"):
        parse_json(text)
