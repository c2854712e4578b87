"""Idempotency, business and run keys never change: they are stored in Salesforce (external ids)
and in the ledger, so a key made today must equal the one made for the same event last year."""

from __future__ import annotations

import json

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ledger import business_key, idempotency_key, run_key


def test_keys_made_before_the_encoder_changed_are_made_again() -> None:
    """Values computed with the json.dumps encoding the keys were first made with."""
    assert idempotency_key("e-1", "create-lead", "create_lead") == "af1-in5k363yal2nggoanlevvmdhry"
    assert run_key("zendesk:123", "flow", 7) == "run1-uk4komzty6lbsx4zxbon7b5bgi"
    assert business_key("lead", "Ada@Example.com") == "afu1-mao6mqejkglujzkrxtp5oztduy"
    assert run_key('é\u2028"x\n', "ﬂow😀", -3) == "run1-m3pdbakhdbwz6yat7btogj4nna"


_PART = st.one_of(st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1))


@given(st.lists(_PART, max_size=4))
def test_orjson_encodes_key_parts_as_the_original_json_dumps_did(parts: list[str | int]) -> None:
    try:
        original = json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate: no decoded event holds one
        return
    assert orjson.dumps(tuple(parts)) == original
