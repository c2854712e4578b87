"""Loading a folder (every error at once, file + path + line), compiling, and routing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipeline.errors import FlowLoadError
from pipeline.events import Event
from pipeline.loader import load_flows, validate_directory
from pipeline.retry import RetryPolicy
from tests.pipeline.flow_fakes import CATALOGUE, make_event

GOOD = """name: {name}
version: 1
{extra}
steps:
  - id: find_contact
    action: salesforce.find_record
    object: contact
    inputs: {{email: "{{{{ event.requester.email }}}}"}}
  - id: create_lead
    when: {{not: {{exists: steps.find_contact.id}}}}
    action: salesforce.create_record
    object: lead
    inputs: {{name: "{{{{ event.requester.name }}}}"}}
"""

TYPO = """name: typo
version: 1
steps:
  - id: find_contact
    action: salesforce.find_record
    object: contact
    inputs: {email: "{{ event.requester.email }}"}
  - id: update
    action: salesforce.update_record
    object: contact
    inputs:
      object_id: "{{ steps.find_contct.id }}"
      description: "{{ event.requester.nam }}"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def good(name: str, extra: str = "") -> str:
    return GOOD.format(name=name, extra=extra)


def test_errors_name_file_path_and_line(tmp_path: Path) -> None:
    """Each error is one line: file, dotted path, message, and the line in the file."""
    path = write(tmp_path, "x.yaml", TYPO)
    errors = validate_directory(tmp_path, CATALOGUE)
    assert [str(e) for e in errors] == [
        f"{path}: steps[1].inputs.object_id: unknown step 'find_contct' "
        "(known earlier steps: find_contact) (line 12)",
        f"{path}: steps[1].inputs.description: unknown event path 'event.requester.nam' "
        "(event.requester has: id, name, email, phone) (line 13)",
    ]


def test_a_folder_reports_every_error_of_every_file(tmp_path: Path) -> None:
    """Errors are collected across files; duplicate names across files are reported too."""
    write(tmp_path, "a.yaml", good("same"))
    write(tmp_path, "b.yml", good("same"))
    write(tmp_path, "c.yaml", TYPO)
    write(tmp_path, "d.yaml", "name: [broken\n")
    write(tmp_path, "README.md", "not a flow")
    errors = validate_directory(tmp_path, CATALOGUE)
    by_file = sorted({Path(e.file).name for e in errors})
    assert by_file == ["b.yml", "c.yaml", "d.yaml"]
    duplicate = next(e for e in errors if e.file.endswith("b.yml"))
    assert duplicate.path == "name"
    assert "duplicate flow name 'same'" in duplicate.message
    assert duplicate.message.endswith("a.yaml)")
    broken = next(e for e in errors if e.file.endswith("d.yaml"))
    assert broken.message.startswith("invalid YAML")
    assert broken.line == 2


def test_load_flows_refuses_a_folder_with_errors_and_lists_them_all(tmp_path: Path) -> None:
    """load_flows raises one FlowLoadError whose message lists every error, one per line."""
    write(tmp_path, "a.yaml", TYPO)
    write(tmp_path, "b.yaml", good("b").replace("salesforce.create_record", "sf.create"))
    with pytest.raises(FlowLoadError) as caught:
        load_flows(tmp_path, catalogue=CATALOGUE)
    assert len(caught.value.errors) == 3
    assert str(caught.value).startswith("3 errors in flow definitions:\n")
    assert "unknown action 'sf.create'" in str(caught.value)


def test_compiled_plans_are_immutable_and_carry_their_settings(tmp_path: Path) -> None:
    """Plans are frozen; policies merge flow → step; only creates get the external-id field."""
    extra = "policy: {max_attempts: 9, backoff: {max_s: 2}}"
    write(
        tmp_path,
        "a.yaml",
        good("a", extra).replace(
            "    object: lead\n", "    object: lead\n    policy: {timeout_s: 3}\n"
        ),
    )
    flows = load_flows(
        tmp_path, catalogue=CATALOGUE, external_id_fields={"lead": "Key__c", "contact": "Key__c"}
    )
    (plan,) = flows
    find, create = plan.steps
    assert create.policy == RetryPolicy(max_attempts=9, max_s=2.0, timeout_s=3.0)
    assert find.policy == RetryPolicy(max_attempts=9, max_s=2.0)
    assert dict(create.options.render({})) == {"external_id_field": "Key__c"}
    assert dict(find.options.render({})) == {}
    assert (find.idempotent, create.idempotent) == (True, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.name = "other"  # type: ignore[misc]
    plain = load_flows(tmp_path, catalogue=CATALOGUE)
    assert not plain.plans[0].steps[1].idempotent  # a plain create cannot be retried blindly


def test_routing_honours_topics_types_conditions_and_enabled(tmp_path: Path) -> None:
    """match() returns the enabled plans whose trigger accepts the event and the topic."""
    write(tmp_path, "all.yaml", good("all"))
    write(tmp_path, "tickets.yaml", good("tickets", "trigger: {topics: [tickets]}"))
    write(tmp_path, "glob.yaml", good("glob", 'trigger: {event_types: ["interaction.*"]}'))
    write(
        tmp_path,
        "vip.yaml",
        good("vip", 'trigger: {when: {contains: ["{{ event.ticket.tags }}", vip]}}'),
    )
    write(tmp_path, "off.yaml", good("disabled", "enabled: false"))
    flows = load_flows(tmp_path, catalogue=CATALOGUE)
    assert len(flows) == 5

    def names(topic: str | None, **event: object) -> list[str]:
        return sorted(p.name for p in flows.match(make_event(**event), topic))

    assert names("tickets") == ["all", "tickets", "vip"]
    assert names("interactions", type="interaction.call") == ["all", "glob", "vip"]
    assert names("interactions", ticket={"tags": []}) == ["all"]
    assert names(None, ticket={}) == ["all", "tickets"]  # no topic: no topic filter
    assert flows.get("disabled") is not None
    assert flows.get("nope") is None


def test_routing_builds_the_event_context_only_for_a_trigger_condition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Matching by topic and type needs no template context; one `when` needs it once."""
    built: list[str] = []
    as_context = Event.as_context
    monkeypatch.setattr(Event, "as_context", lambda e: built.append(e.id) or as_context(e))
    write(tmp_path, "all.yaml", good("all"))
    write(tmp_path, "glob.yaml", good("glob", 'trigger: {event_types: ["ticket.*"]}'))
    plain = load_flows(tmp_path, catalogue=CATALOGUE)
    assert len(plain.match(make_event(), "tickets")) == 2
    assert built == []
    for name in ("vip", "vip2"):
        condition = 'trigger: {when: {contains: ["{{ event.ticket.tags }}", vip]}}'
        write(tmp_path, f"{name}.yaml", good(name, condition))
    conditional = load_flows(tmp_path, catalogue=CATALOGUE)
    assert len(conditional.match(make_event(), "tickets")) == 4
    assert built == ["evt-1"]


def test_the_digest_changes_with_the_content_not_the_formatting(tmp_path: Path) -> None:
    """Reformatting a flow keeps its digest; changing what it says changes it."""
    write(tmp_path, "a.yaml", good("a"))
    before = load_flows(tmp_path, catalogue=CATALOGUE).plans[0].digest
    write(tmp_path, "a.yaml", "# a comment\n" + good("a").replace("version: 1", "version:   1"))
    assert load_flows(tmp_path, catalogue=CATALOGUE).plans[0].digest == before
    write(tmp_path, "a.yaml", good("a").replace("event.requester.name", "event.requester.email"))
    assert load_flows(tmp_path, catalogue=CATALOGUE).plans[0].digest != before
    assert len(before) == 16
