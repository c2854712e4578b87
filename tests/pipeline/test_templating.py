"""Templates: parsing, rendering, type keeping, filters, and errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import TemplateSyntaxError
from pipeline.templating import (
    Constant,
    Expr,
    Filter,
    ListOf,
    MapOf,
    compile_value,
    parse_template,
)

CONTEXT: dict[str, Any] = {
    "event": {
        "ticket_id": "4242",
        "requester": {"email": "Ada@Example.com ", "name": None},
        "ticket": {"tags": ["vip", "hw"], "priority": 3},
        "attributes": {"score": 0.91, "flag": True},
    },
    "steps": {"find_contact": {"id": "003A"}, "skipped": {}},
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(json_values)
def test_a_single_expression_keeps_the_value_and_its_type(value: Any) -> None:
    """`{{ x }}` alone renders to the very value at x, whatever its type."""
    assert parse_template("{{ a.b }}").render({"a": {"b": value}}) == value


@given(st.text().filter(lambda text: "{{" not in text))
def test_text_without_expressions_renders_as_itself(text: str) -> None:
    """Literal text survives parsing and rendering unchanged (and compiles to a constant)."""
    assert parse_template(text).render({}) == text
    assert compile_value(text) == Constant(text)


@given(
    st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20),
    st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20),
)
def test_mixed_text_renders_a_string_around_the_value(before: str, after: str) -> None:
    """Text around an expression is kept verbatim; the value is inserted as text."""
    template = parse_template(f"{before}{{{{ event.ticket_id }}}}{after}")
    assert template.render(CONTEXT) == f"{before}4242{after}"


def test_missing_paths_render_none_and_empty_in_text() -> None:
    """A missing value is None alone, and the empty string inside text."""
    assert parse_template("{{ event.nope.deeper }}").render(CONTEXT) is None
    assert parse_template("{{ steps.skipped.id }}").render(CONTEXT) is None
    assert parse_template("Hi {{ event.requester.name }}!").render(CONTEXT) == "Hi !"


def test_list_indexes_and_non_string_values_in_text() -> None:
    """Digit segments index lists; numbers and booleans read naturally in text."""
    assert parse_template("{{ event.ticket.tags.1 }}").render(CONTEXT) == "hw"
    assert parse_template("{{ event.ticket.tags.9 }}").render(CONTEXT) is None
    text = "p={{ event.ticket.priority }} f={{ event.attributes.flag }}"
    assert parse_template(text).render(CONTEXT) == "p=3 f=true"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ event.requester.email | trim | lower }}", "ada@example.com"),
        ("{{ event.requester.email | upper }}", "ADA@EXAMPLE.COM "),
        ("{{ event.requester.name | default('Unknown') }}", "Unknown"),
        ('{{ event.requester.name | default("it\\"s") }}', 'it"s'),
        ("{{ event.missing | default(0) }}", 0),
        ("{{ event.missing | lower | default('x') }}", "x"),
        ("{{ event.ticket.priority | trim }}", "3"),
        ("{{event.ticket_id}}", "4242"),
    ],
)
def test_filters(source: str, expected: Any) -> None:
    """The four filters do what the docs say, in order."""
    assert parse_template(source).render(CONTEXT) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ event.ticket_id", "unclosed"),
        ("{{ }}", "empty expression"),
        ("{{ event.ticket_id | shout }}", "unknown filter 'shout'"),
        ("{{ event.ticket_id | default }}", "takes one literal argument"),
        ("{{ event.ticket_id | lower('x') }}", "takes no argument"),
        ("{{ 'literal' }}", "expected a path"),
        ("{{ event..x }}", "unexpected"),
        ("{{ a b }}", "unexpected"),
    ],
)
def test_syntax_errors_say_what_is_wrong(source: str, message: str) -> None:
    """Bad templates fail at parse time with a message naming the problem."""
    with pytest.raises(TemplateSyntaxError, match=message):
        parse_template(source)


def test_compiled_mappings_omit_none_and_report_nested_error_paths() -> None:
    """A mapping renders without its None values; errors inside name the nested key."""
    value = compile_value({"a": "{{ event.missing }}", "b": 1, "c": ["{{ event.ticket_id }}"]})
    assert isinstance(value, MapOf)
    assert value.render(CONTEXT) == {"b": 1, "c": ["4242"]}
    assert isinstance(dict(value.items)["c"], ListOf)
    with pytest.raises(TemplateSyntaxError) as caught:
        compile_value({"outer": {"list": ["ok", "{{ bad"]}})
    assert caught.value.path == "outer.list[1]"


names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
texts = st.text(
    alphabet=st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)), max_size=8
)
filters = st.one_of(
    st.sampled_from([Filter("lower"), Filter("upper"), Filter("trim")]),
    st.builds(
        lambda v: Filter("default", v),
        st.text(alphabet="abc xyz'\"\\", max_size=5) | st.integers() | st.booleans(),
    ),
)


def spell(item: Filter) -> str:
    if item.name != "default":
        return item.name
    arg = item.arg
    if isinstance(arg, bool):
        return f"default({'true' if arg else 'false'})"
    if isinstance(arg, int):
        return f"default({arg})"
    escaped = arg.replace("\\", "\\\\").replace("'", "\\'")
    return f"default('{escaped}')"


@given(
    st.lists(
        st.tuples(texts, st.lists(names, min_size=1, max_size=3), st.lists(filters, max_size=2)),
        min_size=1,
        max_size=3,
    ),
    texts,
)
def test_parsing_recovers_the_parts_a_template_was_written_from(
    pieces: list[tuple[str, list[str], list[Filter]]], tail: str
) -> None:
    """Write a template from text, paths and filters; parsing gives back exactly those parts."""
    source, expected = "", []
    for text, path, chain in pieces:
        spelled = "".join(f" | {spell(item)}" for item in chain)
        source += f"{text}{{{{ {'.'.join(path)}{spelled} }}}}"
        expected += [text] if text else []
        expected.append(Expr(tuple(path), tuple(chain)))
    source += tail
    expected += [tail] if tail else []
    assert parse_template(source).parts == tuple(expected)
