"""Event.as_context: the plain data templates see, as dataclasses.asdict would give it."""

from __future__ import annotations

from dataclasses import asdict

from hypothesis import given
from hypothesis import strategies as st

from pipeline.events import Event, Interaction, Organization, Person

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
texts = st.none() | st.text(max_size=8)
events = st.builds(
    Event,
    id=st.text(min_size=1),
    type=st.sampled_from(["ticket.created", "interaction.call"]),
    ticket_id=st.text(min_size=1),
    ticket=st.dictionaries(st.text(), json_values, max_size=4),
    requester=st.builds(Person, id=texts, name=texts, email=texts, phone=texts),
    organization=st.builds(Organization, id=texts, name=texts),
    interaction=st.builds(Interaction, channel=texts, body=texts),
    attributes=st.dictionaries(st.text(), json_values, max_size=4),
)


@given(events)
def test_the_context_is_what_asdict_gives(event: Event) -> None:
    """Same keys, values and container types as dataclasses.asdict."""
    context = event.as_context()
    assert context == asdict(event)
    assert type(context["ticket"]) is dict
    assert type(context["requester"]) is dict


def test_the_context_is_a_new_dict_each_time() -> None:
    """Setting a key of a context changes neither the event nor the next context (nested
    ticket and attribute values are shared: templates and conditions only read them)."""
    event = Event(id="e", type="ticket.created", ticket_id="1", ticket={"status": "new"})
    context = event.as_context()
    context["ticket"]["status"] = "changed"
    context["requester"]["email"] = "x@y.z"
    assert event.ticket == {"status": "new"}
    assert event.as_context()["ticket"]["status"] == "new"
    assert event.requester.email is None
