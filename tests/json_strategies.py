"""Hypothesis strategies for JSON documents, shared by the fuzz tests of the decoder and the
Salesforce client's parsers."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

#: Every JSON scalar, integers past 64 bits included (orjson reads those as floats).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)


def json_documents(
    scalars: st.SearchStrategy[Any] = json_scalars, *, width: int = 4, leaves: int = 25
) -> st.SearchStrategy[Any]:
    """Arrays and objects of ``scalars``, nested at random."""
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=width)
            | st.dictionaries(st.text(max_size=8), inner, max_size=width)
        ),
        max_leaves=leaves,
    )
