"""Conditions: operators, operand forms, missing values, and syntax errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.conditions import parse_condition
from pipeline.errors import ConditionSyntaxError

CONTEXT: dict[str, Any] = {
    "event": {
        "type": "ticket.updated",
        "requester": {"email": "ada@example.com", "phone": ""},
        "ticket": {"status": "solved", "tags": ["vip", "hw"], "subject": "Printer on fire"},
        "attributes": {"ai_lead_score": 0.91, "as_text": "0.75"},
    },
    "steps": {"find_contact": {"id": None}, "find_lead": {"id": "00Q1"}},
}


def holds(condition: Any) -> bool:
    return parse_condition(condition).evaluate(CONTEXT)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"eq": ["{{ event.ticket.status }}", "solved"]}, True),
        ({"eq": [{"path": "event.ticket.status"}, "solved"]}, True),
        ({"ne": ["{{ event.ticket.status }}", "solved"]}, False),
        ({"eq": ["event.ticket.status", "solved"]}, False),  # a bare string is a literal
        ({"gt": ["{{ event.attributes.ai_lead_score }}", 0.8]}, True),
        ({"gte": ["{{ event.attributes.ai_lead_score }}", 0.91]}, True),
        ({"lt": ["{{ event.attributes.as_text }}", 0.8]}, True),  # numeric string vs number
        ({"lte": ["{{ event.missing }}", 10]}, False),  # missing never orders
        ({"gt": ["b", "a"]}, True),
        ({"gt": [10**400, 10**400 - 1]}, True),  # huge ints compare exactly, no overflow
        ({"lt": ["{{ event.attributes.as_text }}", 10**400]}, True),
        ({"gt": ["{{ event.ticket.status }}", 1]}, False),  # text vs number: false, no error
        ({"contains": ["{{ event.ticket.tags }}", "vip"]}, True),
        ({"contains": ["{{ event.ticket.subject }}", "fire"]}, True),
        ({"contains": ["{{ event.ticket.tags }}", ["unhashable"]]}, False),
        ({"contains": ["{{ event.missing }}", "x"]}, False),
        ({"in": ["{{ event.ticket.status }}", ["open", "solved"]]}, True),
        ({"in": ["{{ event.ticket.status }}", ["open", "{{ event.type }}"]]}, False),
        ({"exists": "event.requester.email"}, True),
        ({"exists": "event.requester.phone"}, False),  # empty string counts as absent
        ({"exists": "steps.find_contact.id"}, False),
        (
            {
                "and": [
                    {"exists": "steps.find_lead.id"},
                    {"not": {"exists": "steps.find_contact.id"}},
                ]
            },
            True,
        ),
        ({"or": [{"exists": "event.nope"}, {"eq": [1, 1]}]}, True),
        ({"not": {"or": [{"exists": "event.nope"}]}}, True),
    ],
)
def test_operators(condition: Any, expected: bool) -> None:
    """Each operator evaluates as documented; missing values make conditions false, not errors."""
    assert holds(condition) is expected


@given(st.integers(), st.integers())
def test_orderings_agree_with_python_on_numbers(a: int, b: int) -> None:
    """gt/gte/lt/lte on two numbers are exactly Python's comparisons, and ne is not eq."""
    ctx = {"x": a}
    for op, expected in (
        ("gt", a > b),
        ("gte", a >= b),
        ("lt", a < b),
        ("lte", a <= b),
        ("eq", a == b),
        ("ne", a != b),
    ):
        assert parse_condition({op: ["{{ x }}", b]}).evaluate(ctx) is expected


@given(st.booleans(), st.booleans())
def test_boolean_connectives_follow_logic(a: bool, b: bool) -> None:
    """and/or/not over literal conditions follow boolean logic."""
    lit = {True: {"eq": [1, 1]}, False: {"eq": [1, 2]}}
    assert parse_condition({"and": [lit[a], lit[b]]}).evaluate({}) is (a and b)
    assert parse_condition({"or": [lit[a], lit[b]]}).evaluate({}) is (a or b)
    assert parse_condition({"not": lit[a]}).evaluate({}) is (not a)


@pytest.mark.parametrize(
    ("condition", "path", "message"),
    [
        ({"equals": [1, 1]}, "equals", "unknown operator 'equals'"),
        ({"eq": [1]}, "eq", "two operands"),
        ({"eq": [1, 1], "ne": [1, 2]}, "", "exactly one operator"),
        ({"and": []}, "and", "non-empty list"),
        ({"and": [{"eq": [1, 1]}, {"nope": 1}]}, "and[1].nope", "unknown operator"),
        ({"exists": "{{ event.x }}"}, "exists", "bare path"),
        ({"exists": "event..x"}, "exists", "invalid path"),
        ({"eq": [{"value": 1}, 1]}, "eq[0]", "{path:"),
        ({"not": {"eq": ["{{ oops", 1]}}, "not.eq[0]", "unclosed"),
        ("just text", "", "exactly one operator"),
    ],
)
def test_syntax_errors_name_the_place(condition: Any, path: str, message: str) -> None:
    """A bad condition fails at parse time with the path inside the condition."""
    with pytest.raises(ConditionSyntaxError, match=message) as caught:
        parse_condition(condition)
    assert caught.value.path == path


def test_expressions_lists_every_path_read() -> None:
    """Validation sees every path a condition reads, in every nested operand."""
    condition = parse_condition(
        {"and": [{"exists": "event.a"}, {"in": ["{{ event.b }}", [{"path": "steps.s.c"}]]}]}
    )
    assert [expr.path for expr in condition.expressions()] == [
        ("event", "a"),
        ("event", "b"),
        ("steps", "s", "c"),
    ]
