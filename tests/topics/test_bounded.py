"""Bounded forms: whatever goes in, what comes out fits the limit and says what was cut."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from topics import bounded
from topics.headers import DeadLetterContext, Stage, dead_letter_headers

limits = st.integers(bounded.MIN_LIMIT, 50_000)
keys = st.none() | st.binary(max_size=2_000)
headers = st.lists(st.tuples(st.text(max_size=40), st.binary(max_size=3_000)), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=3_000),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=40,
)
METADATA = frozenset({"schema", "flow", "run_id", "status"})


def metadata() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "schema": st.just("actionflows.step-output/1"),
            "flow": st.text(max_size=30),
            "run_id": st.text(max_size=30),
            "status": st.sampled_from(["succeeded", "failed"]),
        }
    )


@given(keys, st.binary(max_size=60_000), headers, limits)
def test_a_bounded_payload_fits_and_is_a_prefix_with_its_fingerprint(
    key: bytes | None, value: bytes, extra: list[tuple[str, bytes]], limit: int
) -> None:
    """A payload that fits is unchanged; one that does not keeps its first bytes, its original
    size and sha256, and the dead-letter context that says where it came from."""
    context = dead_letter_headers(
        DeadLetterContext("in", 3, 42, Stage.DECODE, "payload_too_large", "X", "too big")
    )
    original = extra + context
    new_key, new_value, new_headers = bounded.bound_payload(key, value, original, limit)
    assert bounded.record_size(new_key, new_value, new_headers) <= limit
    if bounded.record_size(key, value, original) <= limit:
        assert (new_key, new_value, new_headers) == (key, value, original)
        return
    assert value.startswith(new_value)
    found = dict(new_headers)
    assert found[bounded.TRUNCATED] == b"true"
    assert found[bounded.ORIGINAL_BYTES] == str(len(value)).encode()
    assert found[bounded.ORIGINAL_SHA256] == hashlib.sha256(value).hexdigest().encode()
    if limit >= 4 * 1_024:  # room for the context beside the marks
        assert found["actionflows.errors.offset"] == b"42"
        assert found["actionflows.errors.topic"] == b"in"


@settings(max_examples=200)
@given(metadata(), st.dictionaries(st.text(max_size=12), json_values, max_size=8), keys, limits)
def test_a_bounded_document_fits_keeps_its_metadata_and_marks_what_was_cut(
    meta: dict[str, Any], rest: dict[str, Any], key: bytes | None, limit: int
) -> None:
    """A JSON record that does not fit comes out as a JSON object that fits, marked
    truncated, with its metadata fields unchanged; what was cut is replaced by markers that
    give the original size."""
    document = {**rest, **meta}
    value = orjson.dumps(document)
    trace = [("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")]
    new_key, new_value, new_headers = bounded.bound_document(
        key, value, trace, limit, keep=METADATA
    )
    assert bounded.record_size(new_key, new_value, new_headers) <= limit
    if bounded.record_size(key, value, trace) <= limit:
        assert new_value == value
        return
    result = orjson.loads(new_value)
    assert result["truncated"] is True
    if "original_bytes" not in result:  # not the last resort: the metadata survived
        assert {k: result[k] for k in METADATA} == meta
        cut = _markers(result)
        assert cut, "a cut record names at least one cut value"
        assert all(size > 0 for size in cut)


def test_a_two_megabyte_step_output_keeps_its_small_inputs() -> None:
    """The case from issue 9: one huge value; everything else, metadata and small values
    alike, survives, and the huge value's marker gives its size."""
    huge = "x" * 2_000_000
    document = {
        "schema": "actionflows.step-output/1",
        "flow": "create-lead",
        "run_id": "run1-abc",
        "status": "succeeded",
        "inputs": {"name": "Ada Lovelace", "description": huge},
        "outputs": {"id": "00Q000000000001AAA"},
    }
    _, value, _ = bounded.bound_document(
        b"T1", orjson.dumps(document), [], 1_048_576, keep=METADATA
    )
    result = orjson.loads(value)
    assert result["inputs"]["name"] == "Ada Lovelace"
    assert result["outputs"] == {"id": "00Q000000000001AAA"}
    assert result["inputs"]["description"] == {
        "truncated": True,
        "original_bytes": len(orjson.dumps(huge)),
    }


def test_a_value_that_is_not_a_json_object_is_bounded_as_a_payload() -> None:
    """Whatever the bytes, the document bounder falls back to the payload's form."""
    _, value, found = bounded.bound_document(None, b"[" * 5_000, [], 2_000, keep=METADATA)
    assert dict(found)[bounded.TRUNCATED] == b"true"
    assert b"[" * 100 in value


def _markers(node: Any) -> list[int]:
    if isinstance(node, dict):
        if node.keys() == {"truncated", "original_bytes"}:
            return [node["original_bytes"]]
        return [size for child in node.values() for size in _markers(child)]
    if isinstance(node, list):
        return [size for child in node for size in _markers(child)]
    return []
