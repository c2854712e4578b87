"""Hand-written fakes for the engine-core tests: a tiny catalogue, a scripted executor, a clock.

The catalogue mirrors the seed's table on three objects, enough for the rules under test
without depending on :mod:`pipeline.catalogue`'s details.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pipeline.actions import ActionInput, ActionResult, ActionSpec, FieldSpec
from pipeline.events import Event, Organization, Person
from pipeline.ledger import InMemoryLedger
from pipeline.ports import GatewayError, SalesforceGateway
from pipeline.runner import Ports
from pipeline.validate import Catalogue

FIND, CREATE, UPDATE, DELETE, CONVERT = (
    "salesforce.find_record",
    "salesforce.create_record",
    "salesforce.update_record",
    "salesforce.delete_record",
    "salesforce.convert_lead",
)


def _fields(*specs: FieldSpec) -> dict[str, FieldSpec]:
    return {spec.name: spec for spec in specs}


_RECORD_IN = _fields(
    FieldSpec("name", "string"), FieldSpec("phone", "string"), FieldSpec("description", "string")
)
_ID_OUT = _fields(FieldSpec("id", "id"))


def _spec(
    kind: str,
    obj: str,
    inputs: Mapping[str, FieldSpec],
    outputs: Mapping[str, FieldSpec],
    writes: bool,
) -> ActionSpec:
    return ActionSpec(kind, obj, obj.capitalize(), inputs, outputs, writes)


_PERSON_FIND = _fields(
    FieldSpec("first_name", "string"),
    FieldSpec("last_name", "string"),
    FieldSpec("email", "string"),
)
_PERSON_OUT = _fields(
    FieldSpec("id", "id"),
    FieldSpec("email", "string"),
    FieldSpec("name", "string"),
    FieldSpec("score", "number"),
    FieldSpec("raw", "object"),
)

ACTIONS: dict[tuple[str, str], ActionSpec] = {
    (k.kind, k.object): k
    for k in (
        _spec(FIND, "contact", _PERSON_FIND, _PERSON_OUT, False),
        _spec(FIND, "lead", _PERSON_FIND, _PERSON_OUT, False),
        _spec(
            FIND,
            "account",
            _fields(FieldSpec("name", "string")),
            _fields(FieldSpec("id", "id"), FieldSpec("name", "string")),
            False,
        ),
        _spec(CREATE, "lead", _RECORD_IN, _ID_OUT, True),
        _spec(CREATE, "contact", _RECORD_IN, _ID_OUT, True),
        _spec(
            UPDATE,
            "contact",
            {**_fields(FieldSpec("object_id", "id", required=True)), **_RECORD_IN},
            _ID_OUT,
            True,
        ),
        _spec(DELETE, "lead", _fields(FieldSpec("object_id", "id", required=True)), {}, True),
        _spec(
            CONVERT,
            "lead",
            _fields(FieldSpec("lead_id", "id", required=True), FieldSpec("account_id", "id")),
            _fields(FieldSpec("opportunity_id", "id")),
            True,
        ),
    )
}

CATALOGUE = Catalogue(ACTIONS)


class Transient(GatewayError):
    retriable: ClassVar[bool] = True


class Permanent(GatewayError):
    retriable: ClassVar[bool] = False


class Throttled(GatewayError):
    retriable: ClassVar[bool] = True
    throttle: ClassVar[bool] = True


Reply = ActionResult | BaseException | Callable[[ActionInput], ActionResult]


@dataclass
class ScriptedExecutor:
    """Answers each (kind, object) from a script: a list of replies consumed in order, the last
    one repeating. Unscripted finds match nothing; unscripted writes return a fresh id."""

    script: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    calls: list[ActionInput] = field(default_factory=list)
    hang: set[tuple[str, str]] = field(default_factory=set)
    _next_id: int = 0

    def on(self, kind: str, obj: str, *replies: Reply) -> ScriptedExecutor:
        self.script[(kind, obj)] = list(replies)
        return self

    def kinds(self) -> list[tuple[str, str]]:
        return [(call.kind, call.object) for call in self.calls]

    async def __call__(self, action: ActionInput, gateway: SalesforceGateway) -> ActionResult:
        self.calls.append(action)
        key = (action.kind, action.object)
        if key in self.hang:
            await asyncio.sleep(3600)
        replies = self.script.get(key)
        if replies:
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
            if isinstance(reply, BaseException):
                raise reply
            return reply(action) if callable(reply) else reply
        if action.kind == FIND:
            return ActionResult(outputs={"id": None}, matched=False)
        self._next_id += 1
        new_id = f"00X{self._next_id:015d}"
        return ActionResult(outputs={"id": new_id}, salesforce_id=new_id)


class FakeClock:
    """Time stands still unless someone sleeps; sleeps are recorded, not waited."""

    def __init__(self) -> None:
        self.time = 1_700_000_000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def monotonic(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds


class FixedRandom:
    def __init__(self, value: float = 0.5) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


class NoGateway:
    """The scripted executor never reaches the gateway; any call is a test bug."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected gateway call {name}")


def make_ports(executor: ScriptedExecutor, ledger: InMemoryLedger | None = None) -> Ports:
    return Ports(
        gateway=NoGateway(),
        ledger=ledger if ledger is not None else InMemoryLedger(),
        clock=FakeClock(),
        execute=executor,
        rng=FixedRandom(),
    )


def make_event(**overrides: Any) -> Event:
    values: dict[str, Any] = {
        "id": "evt-1",
        "type": "ticket.created",
        "ticket_id": "4242",
        "ticket": {"subject": "Printer on fire", "status": "new", "tags": ["vip", "hw"]},
        "requester": Person(
            id="u1", name="Ada Lovelace", email="ada@example.com", phone="+44 20 7946 0000"
        ),
        "organization": Organization(id="o1", name="Analytical Engines Ltd"),
        "attributes": {"ai_lead_score": 0.91},
    }
    values.update(overrides)
    return Event(**values)
