"""The contract between flows and the Salesforce action catalogue.

The catalogue (:mod:`pipeline.catalogue`) is data: one :class:`ActionSpec` per supported
(action kind, object) pair, with the seed's input and output names. The flow validator reads the
specs; the runner hands one :class:`ActionInput` to :func:`pipeline.catalogue.execute`, which speaks
only to the :class:`~pipeline.ports.SalesforceGateway` port and returns one :class:`ActionResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ValueType = Literal["string", "id", "number", "boolean", "date", "object", "list", "any"]

OBJECTS: tuple[str, ...] = ("lead", "contact", "account", "opportunity", "case", "campaign")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One named input or output of an action."""

    name: str
    type: ValueType
    required: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What one action on one object takes and gives, e.g. (salesforce.find_record, lead)."""

    kind: str  # "salesforce.create_record", "salesforce.update_record", "salesforce.delete_record",
    # "salesforce.find_record", "salesforce.convert_lead"
    object: str  # one of OBJECTS
    sobject: str  # the Salesforce API name: "Lead", "Contact", ...
    inputs: Mapping[str, FieldSpec]
    outputs: Mapping[str, FieldSpec]
    writes: bool  # True when the action changes Salesforce (dry runs skip these)
    description: str = ""


@dataclass(frozen=True, slots=True)
class ActionInput:
    """One unit of work for an executor: the action, its resolved inputs, and how to make it safe.

    ``idempotency_key`` is deterministic for (event, flow, step); creates use it as the value of
    the object's external-id field (an upsert) when one is configured in ``options``. With
    ``unique`` it is a business key instead (the step's ``unique_by``, the same for every event
    about one person): the create finds or creates the one record that carries it, and ``None``
    then means the business key rendered empty. ``appends`` (update only) maps a field to the
    text to add to its end.
    """

    kind: str
    object: str
    inputs: Mapping[str, Any]
    extra_fields: Mapping[str, Any] = field(default_factory=dict)  # raw Salesforce fields
    idempotency_key: str | None = None
    unique: bool = False
    appends: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)  # per-step: external_id_field,
    # on_no_match, on_many_matches, defaults for required fields, ...
    step: str = ""  # the flow step this input is for (traces and logs name it)


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The named outputs of one executed action, plus what was written (for the step record)."""

    outputs: Mapping[str, Any]
    matched: bool = True  # find: False when nothing matched (and on_no_match allowed it)
    salesforce_id: str | None = None  # the record the action touched, for run history
