"""Idempotency keys and run keys: deterministic, short, distinct."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pipeline.ledger import business_key, idempotency_key, run_key

triples = st.tuples(st.text(max_size=40), st.text(max_size=40), st.text(max_size=40))


@given(triples)
def test_keys_are_stable_and_fit_an_external_id_field(triple: tuple[str, str, str]) -> None:
    """The same triple always gives the same key, ≤ 80 chars of [a-z2-7] after 'af1-'."""
    key = idempotency_key(*triple)
    assert key == idempotency_key(*triple)
    assert len(key) <= 80
    assert re.fullmatch(r"af1-[a-z2-7]{26}", key)


@given(triples, triples)
def test_distinct_triples_give_distinct_keys(
    a: tuple[str, str, str], b: tuple[str, str, str]
) -> None:
    """Different (event, flow, step) triples never share a key."""
    if a != b:
        assert idempotency_key(*a) != idempotency_key(*b)


def test_field_boundaries_matter() -> None:
    """Moving characters between fields changes the key (no naive concatenation)."""
    assert idempotency_key("a-b", "c", "d") != idempotency_key("a", "b-c", "d")
    assert idempotency_key("ab", "", "c") != idempotency_key("a", "b", "c")


def test_a_known_key_never_changes() -> None:
    """Keys are stored in Salesforce: the scheme must not drift between releases."""
    key = idempotency_key("evt-1", "create-lead", "create_lead")
    assert key == "af1-celcg2mq6yn6buvfluymeddtbu"


def test_run_keys_depend_on_the_flow_version() -> None:
    """A new flow version is a new run; the same version is the same run."""
    assert run_key("e", "f", 1) == run_key("e", "f", 1)
    assert run_key("e", "f", 1) != run_key("e", "f", 2)


@given(st.sampled_from(["lead", "contact", "case"]), st.text(max_size=80), st.text(max_size=80))
def test_business_keys_depend_on_the_object_and_value_only(obj: str, a: str, b: str) -> None:
    """A business key is stable, fits the field, differs per object and value, and never looks
    like an event's key."""
    key = business_key(obj, a)
    assert key == business_key(obj, a)
    assert re.fullmatch(r"afu1-[a-z2-7]{26}", key)
    assert (key == business_key(obj, b)) == (a == b)
    assert key != business_key("account", a)
