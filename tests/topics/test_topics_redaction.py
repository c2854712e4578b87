"""The redaction rules on data and on text: keys, known values, emails, phones, any depth."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from topics import redaction
from topics.headers import safe_message
from topics.redaction import MASK, SECRET_KEYS, Redactor


def test_known_values_are_masked_wherever_they_appear() -> None:
    """What the event holds under a masked key is masked in any text: Salesforce's echo of an
    invalid address included, which no email pattern would recognise."""
    redactor = Redactor().learning({"requester": {"email": "not-an-email@@example", "id": "7"}})
    message = "Email: invalid email address: not-an-email@@example"
    assert redactor.text(message) == f"Email: invalid email address: {MASK}"
    assert "not-an-email" not in safe_message(message, redactor=redactor)


def test_text_masks_emails_international_phones_and_json_pairs() -> None:
    """Without known values, the patterns still catch the usual forms; dates and offsets stay."""
    redactor = Redactor()
    assert redactor.text("write to jane@acme.example today") == f"write to {MASK} today"
    assert redactor.text("call +1 (415) 555-0100") == f"call {MASK}"
    assert redactor.text('{"Phone": "415 555 0100", "x": 1}') == f'{{"Phone": "{MASK}", "x": 1}}'
    ordinary = "INVALID_FIELD: No such column 'Foo__c' at 2026-11-25T12:00:00+0000 offset +12"
    assert redactor.text(ordinary) == ordinary


def test_secret_only_rules_leave_personal_data() -> None:
    """A deployment that publishes emails (secret keys only) keeps them, in data and text."""
    redactor = Redactor(SECRET_KEYS).learning({"email": "jane@acme.example"})
    assert redactor.text("jane@acme.example") == "jane@acme.example"
    assert redactor.mapping({"Email": "jane@acme.example", "token": "t"}) == {
        "Email": "jane@acme.example",
        "token": MASK,
    }


def test_short_values_are_not_learnt() -> None:
    """A one-character "phone" would mask every digit of every message."""
    assert Redactor().learning({"phone": "1", "email": "a@b.c"}).values == frozenset({"a@b.c"})


def test_data_of_any_depth_is_redacted_without_recursion() -> None:
    """Ten thousand levels: masked at the bottom, no RecursionError."""
    value: object = {"email": "jane@acme.example", "note": "hi"}
    for _ in range(10_000):
        value = {"a": [value]}
    node = Redactor().data(value)
    for _ in range(10_000):
        node = node["a"][0]
    assert node == {"email": MASK, "note": "hi"}


@given(st.text(max_size=60), st.text(max_size=60))
def test_a_known_value_never_survives(before: str, after: str) -> None:
    """Whatever surrounds it, a learnt value is gone from the text."""
    value = "jane.doe@acme.example"
    assert value not in Redactor().learning({"email": value}).text(before + value + after)


# --- the fast paths skip only patterns that cannot match ------------------------------------

_PIECES = (
    "Authorization: Bearer abc.def",
    "AUTHORIZATION=basic x",
    "bearer eyJhbGciOi",
    "access_token=s3cr3t",
    '"Client_Secret": "zz"',
    "PassWord: hunter22",
    "api_key=k",
    "sessionid=1",
    '"phone": "+33 1 23 45 67 89"',
    '"Email": "a@b.co"',
    "jane@example.com",
    "+1 415 555 0100",
    "Jane Requester",
    "\u017fecret=1",
    "\u212a-token=2",
    "é",
    '"',
    "@",
    "+",
    " ",
    "x",
)


def _reference_text(redactor: Redactor, text: str) -> str:
    """What :meth:`Redactor.text` did before its fast paths: every pattern on every string."""
    for pattern, replacement in redaction._CREDENTIALS:
        text = pattern.sub(replacement, text)
    text = redaction._json_pairs(redactor.keys).sub(rf'\1"{MASK}"', text)
    for value in sorted(redactor.values, key=len, reverse=True):
        text = text.replace(value, MASK)
    if "email" in redactor.keys:
        text = redaction._EMAIL.sub(MASK, text)
    if "phone" in redactor.keys:
        text = redaction._PHONE.sub(MASK, text)
    return text


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES) | st.text(max_size=8), max_size=8))
def test_text_masks_exactly_what_every_pattern_on_every_string_masks(parts: list[str]) -> None:
    text = "".join(parts)
    redactor = Redactor().learning({"requester": {"email": "jane@example.com", "name": "x"},
                                    "phone": "+33 1 23 45 67 89"})  # fmt: skip
    assert redactor.text(text) == _reference_text(redactor, text)
