"""The catalogue as specs: one :class:`~pipeline.actions.ActionSpec` per (kind, object).

Built once at import from :mod:`pipeline.catalogue.objects`, so the flow validator and the
executors read the same tables.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from pipeline.actions import OBJECTS, ActionSpec, FieldSpec
from pipeline.catalogue.errors import UnknownAction, UnsupportedObject
from pipeline.catalogue.objects import MODELS, Column, ObjectModel

CREATE = "salesforce.create_record"
UPDATE = "salesforce.update_record"
DELETE = "salesforce.delete_record"
FIND = "salesforce.find_record"
CONVERT = "salesforce.convert_lead"

KINDS: tuple[str, ...] = (CREATE, UPDATE, DELETE, FIND, CONVERT)

# The ``options`` keys each kind reads (values are checked by ``validate_options``).
CATALOGUE_OPTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        CREATE: frozenset({"external_id_field", "defaults", "today"}),
        UPDATE: frozenset(),
        DELETE: frozenset(),
        FIND: frozenset({"on_no_match", "on_many_matches"}),
        CONVERT: frozenset({"converted_status"}),
    }
)


def _fields(*specs: FieldSpec) -> Mapping[str, FieldSpec]:
    return MappingProxyType({spec.name: spec for spec in specs})


def _name_input(model: ObjectModel) -> FieldSpec:
    if len(model.name_fields) == 2:
        where = "split: last word -> LastName, the words before it -> FirstName"
    else:
        where = f"-> {model.sobject}.{model.name_fields[0]}"
    return FieldSpec("name", "string", description=where)


def _record_inputs(model: ObjectModel) -> tuple[FieldSpec, ...]:
    """The seed's name, phone, description, where the object has somewhere to put them."""
    phone = (
        (FieldSpec("phone", "string", description=f"-> {model.sobject}.{model.phone_field}"),)
        if model.phone_field
        else ()
    )
    description = FieldSpec("description", "string", description=f"-> {model.sobject}.Description")
    return (_name_input(model), *phone, description)


_OBJECT_ID = FieldSpec("object_id", "id", required=True, description="the record to act on")
_ID_OUTPUT = _fields(FieldSpec("id", "id", required=True, description="the record's id"))


def _create(model: ObjectModel) -> ActionSpec:
    return ActionSpec(
        kind=CREATE,
        object=model.object,
        sobject=model.sobject,
        inputs=_fields(*_record_inputs(model)),
        outputs=_ID_OUTPUT,
        writes=True,
        description=f"Create a {model.sobject}; an upsert by external id when one is configured.",
    )


def _update(model: ObjectModel) -> ActionSpec:
    return ActionSpec(
        kind=UPDATE,
        object=model.object,
        sobject=model.sobject,
        inputs=_fields(_OBJECT_ID, *_record_inputs(model)),
        outputs=_ID_OUTPUT,
        writes=True,
        description=f"Change the given fields of one {model.sobject}; no call when none given.",
    )


def _delete(model: ObjectModel) -> ActionSpec:
    return ActionSpec(
        kind=DELETE,
        object=model.object,
        sobject=model.sobject,
        inputs=_fields(_OBJECT_ID),
        outputs=_fields(),
        writes=True,
        description=f"Delete one {model.sobject} (to the recycle bin).",
    )


def _column_doc(model: ObjectModel, column: Column) -> str:
    note = f" ({column.description})" if column.description else ""
    return f"{model.sobject}.{column.field}{note}; null when nothing matched"


def _find(model: ObjectModel) -> ActionSpec:
    inputs = _fields(
        *(
            FieldSpec(name, "string", description=f"{model.sobject}.{field} equals this")
            for name, field in model.find_filters.items()
        )
    )
    outputs = _fields(
        *(
            FieldSpec(c.output, c.type, description=_column_doc(model, c))
            for c in model.find_columns
        )
    )
    return ActionSpec(
        kind=FIND,
        object=model.object,
        sobject=model.sobject,
        inputs=inputs,
        outputs=outputs,
        writes=False,
        description=(
            f"Find the oldest {model.sobject} whose fields equal every input given (at least one)."
        ),
    )


_CONVERT = ActionSpec(
    kind=CONVERT,
    object="lead",
    sobject="Lead",
    inputs=_fields(
        FieldSpec("lead_id", "id", required=True, description="the lead to convert"),
        FieldSpec(
            "account_id",
            "id",
            description="merge into this account; absent: Salesforce creates one",
        ),
        FieldSpec(
            "converted_status",
            "string",
            description="a LeadStatus with IsConverted=true; absent: the org's default",
        ),
        FieldSpec(
            "opportunity_name", "string", description="absent: Salesforce names it after the lead"
        ),
    ),
    outputs=_fields(
        FieldSpec("opportunity_id", "id", required=True, description="the new opportunity"),
        FieldSpec("account_id", "id", required=True, description="the account, new or merged"),
        FieldSpec("contact_id", "id", required=True, description="the contact made from the lead"),
    ),
    writes=True,
    description="Convert a lead into an account, a contact and an opportunity.",
)


def _all_specs() -> Iterator[ActionSpec]:
    for object_ in OBJECTS:
        model = MODELS[object_]
        yield _create(model)
        yield _update(model)
        if model.deletable:
            yield _delete(model)
        yield _find(model)
    yield _CONVERT


ACTIONS: Mapping[tuple[str, str], ActionSpec] = MappingProxyType(
    {(spec.kind, spec.object): spec for spec in _all_specs()}
)


def objects_for(kind: str) -> tuple[str, ...]:
    """The objects ``kind`` supports, in alphabetical order."""
    return tuple(sorted(object_ for k, object_ in ACTIONS if k == kind))


def get_action(kind: str, object: str | None) -> ActionSpec:
    """The spec for ``kind`` on ``object``; convert_lead implies ``lead`` when object is None."""
    if kind not in KINDS:
        raise UnknownAction(f"unknown action {kind!r}; known: {', '.join(KINDS)}")
    if object is None and kind == CONVERT:
        object = "lead"
    spec = ACTIONS.get((kind, object)) if object is not None else None
    if spec is None:
        supported = ", ".join(objects_for(kind))
        if object is None:
            raise UnsupportedObject(f"{kind} needs an object; it supports: {supported}")
        raise UnsupportedObject(
            f"{kind} does not support object {object!r}; it supports: {supported}"
        )
    return spec
