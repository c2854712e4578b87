"""Conditions: ``when:`` on a trigger or a step, parsed once into frozen data, evaluated purely.

A condition is a mapping with exactly one operator::

    {eq: [a, b]}  {ne: [a, b]}  {gt|gte|lt|lte: [a, b]}  {contains: [haystack, needle]}
    {in: [needle, [x, y, …]]}  {exists: path}  {and: [c, …]}  {or: [c, …]}  {not: c}

Operands tell paths from literals without guessing:

- a string containing ``{{ }}`` is a template: ``"{{ event.ticket.status }}"`` is the value at
  that path, with its type kept (``"{{ x | lower }}"`` works too);
- ``{path: event.ticket.status}`` is the same thing spelled as a mapping;
- anything else is a literal: ``solved``, ``0.8``, ``true``, ``[open, pending]``.

``exists`` alone takes a bare path (``{exists: steps.find_contact.id}``); it holds when the value
is present and neither ``null`` nor the empty string.

Semantics, chosen so that a missing value never raises: ``eq``/``ne`` use plain equality;
ordering compares two numbers (a numeric string is read as a number when the other side is one)
or two strings, and is false for anything else, including a missing value; ``contains`` is
substring for strings, membership for lists, key membership for mappings, false otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from pipeline.errors import ConditionSyntaxError, TemplateSyntaxError, join_path
from pipeline.templating import (
    Constant,
    Expr,
    ListOf,
    Value,
    compile_value,
    parse_path,
    parse_template,
    resolve,
)

CompareOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "contains", "in"]
OPERATORS: tuple[str, ...] = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "in",
    "exists",
    "and",
    "or",
    "not",
)


def _number(value: Any) -> int | float | None:
    """A number as is; a numeric string read as a float; anything else (booleans too) None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value  # not float(): a huge int would overflow, and ints compare exactly
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _order(left: Any, right: Any) -> int | None:
    """-1/0/1 when the two values can be ordered, ``None`` when they cannot."""
    if isinstance(left, str) and isinstance(right, str):
        return (left > right) - (left < right)
    if isinstance(left, bool) or isinstance(right, bool):
        return None
    if not isinstance(left, int | float) and not isinstance(right, int | float):
        return None
    a, b = _number(left), _number(right)
    if a is None or b is None:
        return None
    return (a > b) - (a < b)


def _contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, str):
        return isinstance(needle, str) and needle in haystack
    if isinstance(haystack, Mapping | Sequence):
        try:
            return needle in haystack
        except TypeError:  # an unhashable needle cannot be a mapping's key
            return False
    return False


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    left: Value
    right: Value

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        left, right = self.left.render(context), self.right.render(context)
        if self.op == "eq":
            return bool(left == right)
        if self.op == "ne":
            return bool(left != right)
        if self.op == "contains":
            return _contains(left, right)
        if self.op == "in":
            return _contains(right, left)
        order = _order(left, right)
        if order is None:
            return False
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[self.op]

    def expressions(self) -> Iterator[Expr]:
        yield from self.left.expressions()
        yield from self.right.expressions()


@dataclass(frozen=True, slots=True)
class Exists:
    expr: Expr

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        value = resolve(context, self.expr.path)
        return value is not None and value != ""

    def expressions(self) -> Iterator[Expr]:
        yield self.expr


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Condition, ...]

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        return all(item.evaluate(context) for item in self.items)

    def expressions(self) -> Iterator[Expr]:
        for item in self.items:
            yield from item.expressions()


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        return any(item.evaluate(context) for item in self.items)

    def expressions(self) -> Iterator[Expr]:
        for item in self.items:
            yield from item.expressions()


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        return not self.item.evaluate(context)

    def expressions(self) -> Iterator[Expr]:
        return self.item.expressions()


Condition = Compare | Exists | All | AnyOf | Not


def parse_operand(raw: Any) -> Value:
    """A path (template string or ``{path: …}``) or a literal; lists may mix both."""
    if isinstance(raw, Mapping):
        if set(raw) != {"path"} or not isinstance(raw["path"], str):
            raise ConditionSyntaxError("a mapping operand must be {path: <dotted path>}")
        try:
            path = parse_path(raw["path"])
        except TemplateSyntaxError as exc:
            raise ConditionSyntaxError(exc.message, "path") from None
        return parse_template("{{ " + ".".join(path) + " }}")
    if isinstance(raw, list):
        items = []
        for index, item in enumerate(raw):
            try:
                items.append(parse_operand(item))
            except ConditionSyntaxError as exc:
                raise ConditionSyntaxError(exc.message, join_path(f"[{index}]", exc.path)) from None
        return ListOf(tuple(items))
    if isinstance(raw, str):
        try:
            return compile_value(raw)
        except TemplateSyntaxError as exc:
            raise ConditionSyntaxError(exc.message) from None
    return Constant(raw)


def parse_condition(raw: Any) -> Condition:
    """Parse one condition; raises :class:`ConditionSyntaxError` with the path inside it."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise ConditionSyntaxError(
            f"a condition is a mapping with exactly one operator ({', '.join(OPERATORS)})"
        )
    ((op, arg),) = raw.items()
    try:
        return _parse_op(str(op), arg)
    except ConditionSyntaxError as exc:
        raise ConditionSyntaxError(exc.message, join_path(str(op), exc.path)) from None


def _parse_op(op: str, arg: Any) -> Condition:
    if op in ("and", "or"):
        if not isinstance(arg, list) or not arg:
            raise ConditionSyntaxError(f"'{op}' takes a non-empty list of conditions")
        items = []
        for index, item in enumerate(arg):
            try:
                items.append(parse_condition(item))
            except ConditionSyntaxError as exc:
                raise ConditionSyntaxError(exc.message, join_path(f"[{index}]", exc.path)) from None
        return All(tuple(items)) if op == "and" else AnyOf(tuple(items))
    if op == "not":
        return Not(parse_condition(arg))
    if op == "exists":
        if not isinstance(arg, str) or "{{" in arg:
            raise ConditionSyntaxError(
                "'exists' takes a bare path, e.g. {exists: event.requester.email}"
            )
        try:
            return Exists(Expr(parse_path(arg)))
        except TemplateSyntaxError as exc:
            raise ConditionSyntaxError(exc.message) from None
    if op in ("eq", "ne", "gt", "gte", "lt", "lte", "contains", "in"):
        if not isinstance(arg, list) or len(arg) != 2:
            raise ConditionSyntaxError(f"'{op}' takes a list of two operands: {{{op}: [a, b]}}")
        left, right = (_operand(arg, index) for index in (0, 1))
        return Compare(cast(CompareOp, op), left, right)
    raise ConditionSyntaxError(f"unknown operator {op!r} (known: {', '.join(OPERATORS)})")


def _operand(arg: list[Any], index: int) -> Value:
    try:
        return parse_operand(arg[index])
    except ConditionSyntaxError as exc:
        raise ConditionSyntaxError(exc.message, join_path(f"[{index}]", exc.path)) from None
