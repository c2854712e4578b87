"""The executors: one small async function per action kind, speaking only to the gateway.

Each takes the spec, the step's :class:`~pipeline.actions.ActionInput` and the gateway, and
returns an :class:`~pipeline.actions.ActionResult`. Gateway errors pass through untouched.

Two writes ask the gateway for more than one call's worth of care: an update with ``append``
(:meth:`~pipeline.ports.FlowGateway.append`, each text ending in the event's marker so that it
is added once) and a create with ``unique_by``
(:meth:`~pipeline.ports.FlowGateway.find_or_create` on the business key).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from pipeline.actions import ActionInput, ActionResult, ActionSpec
from pipeline.catalogue import options as opts
from pipeline.catalogue.errors import AmbiguousMatch, InvalidInput, MissingInput, NoMatch
from pipeline.catalogue.objects import MODELS, ObjectModel
from pipeline.catalogue.specs import CONVERT, CREATE, DELETE, FIND, UPDATE, get_action
from pipeline.ports import AppendWrite, FindQuery, FlowGateway, LeadConversion
from pipeline.templating import to_text

# Find compares long text area fields after the query; it reads at most this many candidates.
SCAN_LIMIT = 200


@dataclass(frozen=True, slots=True)
class _Step:
    """What every executor needs: the spec, its object's model, the input, the caller's date."""

    spec: ActionSpec
    model: ObjectModel
    action: ActionInput
    given_today: date | None

    def today(self) -> date:
        return opts.today(self.action.options, self.given_today)

    def where(self) -> str:
        return f"{self.spec.kind} on {self.spec.object}"

    def text(self, name: str) -> str | None:
        """The input ``name`` trimmed; None when absent, null or blank."""
        value = self.action.inputs.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidInput(
                f"{self.where()}: input {name} must be a string, not {type(value).__name__}"
            )
        return value.strip() or None

    def record_id(self, name: str) -> str:
        """A required id input. Absent is a flow error; null means there is no record."""
        if name not in self.action.inputs:
            raise MissingInput(f"{self.where()} needs the input {name}")
        value = self.text(name)
        if value is None:
            raise NoMatch(
                f"{self.where()} needs a record but {name} is empty "
                "(did an earlier find match nothing?)"
            )
        return value


def _check_shape(spec: ActionSpec, action: ActionInput) -> None:
    """Reject inputs the spec does not list and extra fields where they mean nothing."""
    unknown = sorted(set(action.inputs) - set(spec.inputs))
    if unknown:
        hint = ""
        if "phone" in unknown and spec.kind in (CREATE, UPDATE):
            hint = f"; {spec.sobject} has no Phone field: set one through extra_fields"
        raise InvalidInput(
            f"{spec.kind} on {spec.object} has no input {', '.join(unknown)}; "
            f"its inputs: {', '.join(spec.inputs) or 'none'}{hint}"
        )
    if action.extra_fields and spec.kind not in (CREATE, UPDATE):
        raise InvalidInput(f"{spec.kind} takes no extra_fields")
    if action.appends and spec.kind != UPDATE:
        raise InvalidInput(f"{spec.kind} takes no append: only {UPDATE} does")
    if action.unique and spec.kind != CREATE:
        raise InvalidInput(f"{spec.kind} takes no unique_by: only {CREATE} does")
    names = [*action.extra_fields, *action.appends]
    bad = [key for key in names if not opts.is_api_name(key) or key.lower() == "id"]
    if bad:
        raise InvalidInput(
            f"{spec.kind} on {spec.object}: extra_fields must be Salesforce field names "
            f"other than Id, not {bad}"
        )


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _name_fields(model: ObjectModel, name: str) -> dict[str, Any]:
    if len(model.name_fields) == 1:
        return {model.name_fields[0]: name}
    first_field, last_field = model.name_fields
    *first, last = name.split()
    return {first_field: " ".join(first) or None, last_field: last}


def _record_fields(step: _Step) -> dict[str, Any]:
    """The seed's inputs mapped to Salesforce fields, then ``extra_fields`` over them."""
    fields: dict[str, Any] = {}
    name = step.text("name")
    if name is not None:
        fields.update(_name_fields(step.model, name))
    phone = step.text("phone")
    if phone is not None and step.model.phone_field:
        fields[step.model.phone_field] = phone
    description = step.text("description")
    if description is not None:
        fields["Description"] = description
    fields.update(step.action.extra_fields)
    return fields


def _with_defaults(step: _Step, fields: dict[str, Any]) -> dict[str, Any]:
    """Fill what a create needs: ``options.defaults`` first, then the built-in defaults."""
    user_defaults = opts.defaults(step.action.options)
    for field, value in user_defaults.items():
        if _absent(fields.get(field)) and value is not None:
            fields[field] = value
    for required in step.model.required:
        if not _absent(fields.get(required.field)):
            continue
        if required.default is None or required.field in user_defaults:
            source = f"the input {required.source}, " if required.source else ""
            raise MissingInput(
                f"{step.where()}: Salesforce requires {step.model.sobject}.{required.field}; "
                f"give {source}extra_fields.{required.field} or options.defaults.{required.field}"
            )
        fields[required.field] = required.default(step.today())
    return fields


async def _create(step: _Step, gateway: FlowGateway) -> ActionResult:
    fields = _with_defaults(step, _record_fields(step))
    external_id_field = opts.external_id_field(step.action.options)
    key = step.action.idempotency_key
    if external_id_field is not None and external_id_field in fields:
        raise InvalidInput(
            f"{step.where()}: {external_id_field} is the external id field; its value is the "
            "idempotency key, so it cannot also be set in extra_fields or defaults"
        )
    if step.action.unique:
        if key is None:
            raise MissingInput(f"{step.where()}: unique_by is empty: no key to find or create by")
        if external_id_field is None:
            raise InvalidInput(
                f"{step.where()}: unique_by needs an external id field to hold the key "
                f"(options.external_id_field, or one configured for {step.spec.object})"
            )
        sobject = step.model.sobject
        result = await gateway.find_or_create(sobject, external_id_field, key, fields)
        record_id = result.id
    elif external_id_field is not None and key is not None:
        result = await gateway.upsert(step.model.sobject, external_id_field, key, fields)
        record_id = result.id
    else:
        record_id = await gateway.create(step.model.sobject, fields)
    return ActionResult(outputs={"id": record_id}, salesforce_id=record_id)


def append_marker(idempotency_key: str) -> str:
    """``[af:…]``: ten characters of the event's key, ending every text the step appends, so
    that a text already holding it is not added again (a redelivered event)."""
    return f"[af:{idempotency_key.rsplit('-', 1)[-1][:10]}]"


def _appends(step: _Step) -> dict[str, str]:
    """The texts to append, by field, each ending in the marker; blank ones are left out."""
    texts = {name: to_text(value).strip() for name, value in step.action.appends.items()}
    texts = {name: text for name, text in texts.items() if text}
    if texts and step.action.idempotency_key is None:
        raise InvalidInput(f"{step.where()}: append needs the step's idempotency key")
    key = step.action.idempotency_key or ""
    return {name: f"{text} {append_marker(key)}" for name, text in texts.items()}


async def _update(step: _Step, gateway: FlowGateway) -> ActionResult:
    record_id = step.record_id("object_id")
    fields = _record_fields(step)
    appends = _appends(step)
    if appends:
        marker = append_marker(step.action.idempotency_key or "")
        write = AppendWrite(step.model.sobject, record_id, appends, marker, fields)
        await gateway.append(write)
    elif fields:
        await gateway.update(step.model.sobject, record_id, fields)
    return ActionResult(outputs={"id": record_id}, salesforce_id=record_id)


async def _delete(step: _Step, gateway: FlowGateway) -> ActionResult:
    record_id = step.record_id("object_id")
    await gateway.delete(step.model.sobject, record_id)
    return ActionResult(outputs={}, salesforce_id=record_id)


def _same_text(stored: Any, wanted: str) -> bool:
    """Case-insensitive equality, as SOQL's ``=`` compares strings."""
    return isinstance(stored, str) and stored.strip().casefold() == wanted.casefold()


_Criterion = tuple[str, str, str]  # (input name, Salesforce field, value)


def _criteria(step: _Step) -> tuple[list[_Criterion], list[_Criterion]]:
    """The inputs given, split into SOQL conditions and comparisons made after the query."""
    model = step.model
    given = [
        (name, field, value)
        for name, field in model.find_filters.items()
        if (value := step.text(name)) is not None
    ]
    if not given:
        raise MissingInput(f"{step.where()} needs at least one of: {', '.join(model.find_filters)}")
    in_query = [c for c in given if c[0] not in model.find_after_query]
    after = [c for c in given if c[0] in model.find_after_query]
    if after and not in_query:
        queryable = [n for n in model.find_filters if n not in model.find_after_query]
        raise MissingInput(
            f"{step.where()}: Salesforce cannot filter on "
            f"{', '.join(f'{model.sobject}.{field}' for _, field, _ in after)} "
            f"(a long text area); give one of {', '.join(queryable)} too"
        )
    return in_query, after


def _refine(
    step: _Step,
    records: list[dict[str, Any]],
    after: list[_Criterion],
    many: opts.ManyMatchesPolicy,
) -> list[dict[str, Any]]:
    """Keep the scanned candidates that equal every after-query criterion.

    Candidates come oldest first, so a match among the first SCAN_LIMIT is the oldest match
    overall; past the limit, "none" or "only one" cannot be known and the find refuses.
    """
    truncated = len(records) > SCAN_LIMIT
    matches = [
        r
        for r in records[:SCAN_LIMIT]
        if all(_same_text(r.get(field), value) for _, field, value in after)
    ]
    if truncated and (not matches or many == "fail"):
        raise AmbiguousMatch(
            f"{step.where()}: more than {SCAN_LIMIT} records match the other inputs; "
            "narrow the find"
        )
    return matches


async def _find(step: _Step, gateway: FlowGateway) -> ActionResult:
    model = step.model
    no_match = opts.on_no_match(step.action.options)
    many = opts.on_many_matches(step.action.options)
    in_query, after = _criteria(step)
    columns = [c.field for c in model.find_columns]
    columns += [field for _, field, _ in after if field not in columns]
    where = tuple((field, value) for _, field, value in in_query)
    limit = SCAN_LIMIT + 1 if after else 2
    records = await gateway.find(FindQuery(model.sobject, tuple(columns), where, limit))
    if after:
        records = _refine(step, records, after, many)
    criteria = in_query + after
    if not records:
        if no_match == "fail":
            raise NoMatch(f"{step.where()}: no {model.sobject} matches {_describe(criteria)}")
        return ActionResult(outputs=dict.fromkeys(step.spec.outputs), matched=False)
    if len(records) > 1 and many == "fail":
        raise AmbiguousMatch(
            f"{step.where()}: more than one {model.sobject} matches {_describe(criteria)}"
        )
    outputs = {column.output: records[0].get(column.field) for column in model.find_columns}
    return ActionResult(outputs=outputs, salesforce_id=outputs["id"])


def _describe(criteria: list[_Criterion]) -> str:
    return " and ".join(f"{name}={value!r}" for name, _, value in criteria)


async def _convert(step: _Step, gateway: FlowGateway) -> ActionResult:
    lead_id = step.record_id("lead_id")
    default_status = opts.converted_status(step.action.options)
    conversion = LeadConversion(
        lead_id=lead_id,
        account_id=step.text("account_id"),
        converted_status=step.text("converted_status") or default_status,
        opportunity_name=step.text("opportunity_name"),
    )
    result = await gateway.convert_lead(conversion)
    outputs = {
        "opportunity_id": result.opportunity_id,
        "account_id": result.account_id,
        "contact_id": result.contact_id,
    }
    return ActionResult(outputs=outputs, salesforce_id=lead_id)


_Executor = Callable[[_Step, FlowGateway], Awaitable[ActionResult]]

_EXECUTORS: Mapping[str, _Executor] = {
    CREATE: _create,
    UPDATE: _update,
    DELETE: _delete,
    FIND: _find,
    CONVERT: _convert,
}


async def execute(
    action: ActionInput, gateway: FlowGateway, *, today: date | None = None
) -> ActionResult:
    """Run one catalogue action against ``gateway``.

    ``today`` anchors relative defaults (Opportunity.CloseDate); without it ``options.today``
    or the UTC date is used. Raises a :class:`~pipeline.catalogue.errors.CatalogueError` for a
    step that cannot run as written; lets every gateway error through unchanged.
    """
    spec = get_action(action.kind, action.object or None)
    _check_shape(spec, action)
    step = _Step(spec, MODELS[spec.object], action, today)
    return await _EXECUTORS[spec.kind](step, gateway)
