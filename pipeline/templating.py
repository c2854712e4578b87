"""Templates in step inputs: ``"Ticket {{ event.ticket_id }}: {{ event.ticket.subject | trim }}"``.

A small evaluator of our own (no Jinja, no ``eval``): a template is literal text and
``{{ path | filter | filter(arg) }}`` expressions, parsed once at load time into frozen data.

- A path is dotted names from the context root (``event.requester.email``,
  ``steps.find_contact.id``); a segment of digits indexes a list (``event.ticket.tags.0``).
- Filters: ``default(x)`` (x when the value is missing, ``None`` or ``""``), ``lower``,
  ``upper``, ``trim``. Filter arguments are literals: quoted strings, numbers, true/false/null.
- A template that is exactly one expression keeps the value's type (a number stays a number);
  mixed text renders to a string, with a missing value rendered as the empty string.
- A missing path renders as ``None``; the runner omits an input that renders ``None``.

Input values that are not strings (numbers, lists, mappings of templates) compile to
:class:`Constant`, :class:`ListOf` and :class:`MapOf`, so a whole ``inputs:`` block is one value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.errors import TemplateSyntaxError, join_path

Path = tuple[str, ...]

FILTERS: frozenset[str] = frozenset({"default", "lower", "upper", "trim"})
_STRING_FILTERS = frozenset({"lower", "upper", "trim"})

_PATH = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*)\s*")
_FILTER = re.compile(r"\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_ARG = re.compile(
    r"""\(\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)\s*\)\s*"""
)


def parse_path(text: str) -> Path:
    """``"event.requester.email"`` → ``("event", "requester", "email")``; raises on bad syntax."""
    match = _PATH.fullmatch(text)
    if match is None:
        raise TemplateSyntaxError(
            f"invalid path {text!r} (expected dotted names like event.ticket_id)"
        )
    return tuple(match.group(1).split("."))


def resolve(context: Mapping[str, Any], path: Path) -> Any:
    """The value at ``path`` in ``context``, or ``None`` when any segment is missing."""
    value: Any = context
    for segment in path:
        if isinstance(value, Mapping):
            value = value.get(segment)
        elif isinstance(value, Sequence) and not isinstance(value, str) and segment.isdigit():
            index = int(segment)
            value = value[index] if index < len(value) else None
        else:
            return None
        if value is None:
            return None
    return value


def to_text(value: Any) -> str:
    """How a value reads inside mixed text: ``None`` → ``""``; booleans and containers as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | Mapping | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


@dataclass(frozen=True, slots=True)
class Filter:
    name: str
    arg: Any = None

    def apply(self, value: Any) -> Any:
        if self.name == "default":
            return self.arg if value is None or value == "" else value
        if value is None:
            return None  # so that `| lower | default('x')` still sees a missing value
        text = to_text(value)
        if self.name == "lower":
            return text.lower()
        if self.name == "upper":
            return text.upper()
        return text.strip()


@dataclass(frozen=True, slots=True)
class Expr:
    """``path | filter …``: one ``{{ }}`` expression."""

    path: Path
    filters: tuple[Filter, ...] = ()

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        value = resolve(context, self.path)
        for item in self.filters:
            value = item.apply(value)
        return value

    @property
    def yields_string(self) -> bool:
        """True when a filter makes the result a string whatever the path's type."""
        return any(item.name in _STRING_FILTERS for item in self.filters)


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and expressions, in order."""

    source: str
    parts: tuple[str | Expr, ...]

    @property
    def single(self) -> Expr | None:
        """The expression when the template is exactly one ``{{ expr }}`` (its type is kept)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Expr):
            return self.parts[0]
        return None

    def render(self, context: Mapping[str, Any]) -> Any:
        single = self.single
        if single is not None:
            return single.evaluate(context)
        return "".join(
            part if isinstance(part, str) else to_text(part.evaluate(context))
            for part in self.parts
        )

    def expressions(self) -> Iterator[Expr]:
        return (part for part in self.parts if isinstance(part, Expr))


@dataclass(frozen=True, slots=True)
class Constant:
    """A literal input value (number, boolean, null, or a string without ``{{``)."""

    value: Any

    def render(self, context: Mapping[str, Any]) -> Any:
        return self.value

    def expressions(self) -> Iterator[Expr]:
        return iter(())


@dataclass(frozen=True, slots=True)
class ListOf:
    items: tuple[Value, ...]

    def render(self, context: Mapping[str, Any]) -> Any:
        return [item.render(context) for item in self.items]

    def expressions(self) -> Iterator[Expr]:
        for item in self.items:
            yield from item.expressions()


@dataclass(frozen=True, slots=True)
class MapOf:
    """A mapping of values. :meth:`render` omits keys whose value renders ``None``."""

    items: tuple[tuple[str, Value], ...]

    def render(self, context: Mapping[str, Any]) -> dict[str, Any]:
        rendered = ((key, value.render(context)) for key, value in self.items)
        return {key: value for key, value in rendered if value is not None}

    def expressions(self) -> Iterator[Expr]:
        for _, value in self.items:
            yield from value.expressions()


Value = Template | Constant | ListOf | MapOf


def _parse_literal(token: str) -> Any:
    if token[0] in "'\"":
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return json.loads(token)  # numbers, true, false, null: JSON spelling


def parse_expression(text: str) -> Expr:
    """Parse what sits between ``{{`` and ``}}``."""
    if not text.strip():
        raise TemplateSyntaxError("empty expression '{{ }}'")
    match = _PATH.match(text)
    if match is None:
        raise TemplateSyntaxError(f"expected a path at the start of {{{{{text}}}}}")
    path = tuple(match.group(1).split("."))
    position, filters = match.end(), []
    while position < len(text):
        found = _FILTER.match(text, position)
        if found is None:
            raise TemplateSyntaxError(f"unexpected {text[position:]!r} in {{{{{text}}}}}")
        name, position = found.group(1), found.end()
        if name not in FILTERS:
            known = ", ".join(sorted(FILTERS))
            raise TemplateSyntaxError(f"unknown filter {name!r} (known: {known})")
        argument = _ARG.match(text, position)
        if name == "default":
            if argument is None:
                raise TemplateSyntaxError(
                    "filter 'default' takes one literal argument: default('x')"
                )
            filters.append(Filter(name, _parse_literal(argument.group(1))))
            position = argument.end()
        elif argument is not None or text.startswith("(", position):
            raise TemplateSyntaxError(f"filter {name!r} takes no argument")
        else:
            filters.append(Filter(name))
    return Expr(path, tuple(filters))


def parse_template(source: str) -> Template:
    """Parse ``source`` into a :class:`Template`; raises :class:`TemplateSyntaxError`."""
    parts: list[str | Expr] = []
    position = 0
    while (start := source.find("{{", position)) != -1:
        end = source.find("}}", start + 2)
        if end == -1:
            raise TemplateSyntaxError(f"unclosed '{{{{' at character {start + 1}")
        if start > position:
            parts.append(source[position:start])
        parts.append(parse_expression(source[start + 2 : end]))
        position = end + 2
    if position < len(source):
        parts.append(source[position:])
    return Template(source, tuple(parts))


def compile_value(raw: Any) -> Value:
    """Compile a YAML value (string, scalar, list, mapping) into a renderable :data:`Value`.

    Errors in nested values carry the path below ``raw``, e.g. ``Email`` or ``tags[1]``.
    """
    if isinstance(raw, str):
        return parse_template(raw) if "{{" in raw else Constant(raw)
    if isinstance(raw, Mapping):
        items = []
        for key, value in raw.items():
            try:
                items.append((str(key), compile_value(value)))
            except TemplateSyntaxError as exc:
                raise TemplateSyntaxError(exc.message, join_path(str(key), exc.path)) from None
        return MapOf(tuple(items))
    if isinstance(raw, list | tuple):
        values = []
        for index, value in enumerate(raw):
            try:
                values.append(compile_value(value))
            except TemplateSyntaxError as exc:
                raise TemplateSyntaxError(exc.message, join_path(f"[{index}]", exc.path)) from None
        return ListOf(tuple(values))
    return Constant(raw)
