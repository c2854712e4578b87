"""Bad ``actionflows replay`` / ``dlq`` arguments are clear argparse errors, before any I/O."""

from __future__ import annotations

import pytest

from agents import cli


@pytest.fixture(autouse=True)
def _bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    # An address nothing listens on: every case here must fail before connecting.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")


def fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay"], "say which records to replay"),
        (["replay", "--all", "--raw"], "--raw only apply to --dry-run"),
        (["replay", "--from-offset", "1:x"], "PARTITION:OFFSET"),
        (["replay", "--from-offset", "1", "--since", "2h"], "not allowed with argument"),
        (["replay", "--since", "soon"], "not a time"),
        (["replay", "--since", "1h", "--until", "2h"], "earlier than --until"),
        (["replay", "--all", "--dry-run", "--emulator", "--connection", "prod"], "--emulator"),
        (["replay", "--all", "--progress-every", "0"], "at least 1"),
        (["dlq"], "required"),
        (["dlq", "show", "3-7"], "PARTITION:OFFSET"),
        (["dlq", "list", "--stage", "bogus"], "invalid choice"),
        (["dlq", "list", "--limit", "0"], "at least 1"),
        (["dlq", "redrive"], "say which letters to redrive"),
        (["dlq", "redrive", "0:1", "--since", "1h"], "not both"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each mistake exits 2 with a message naming what is wrong."""
    assert message in fails(argv, capsys)


def test_without_a_cluster_the_commands_say_how_to_name_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No KAFKA_BOOTSTRAP_SERVERS and no --bootstrap-servers: an error, not a local default."""
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS")
    assert "KAFKA_BOOTSTRAP_SERVERS" in fails(["replay", "--all"], capsys)
    assert "KAFKA_BOOTSTRAP_SERVERS" in fails(["dlq", "list"], capsys)


def test_both_commands_are_registered(capsys: pytest.CaptureFixture[str]) -> None:
    """``actionflows`` lists replay and dlq among its commands."""
    cli.main([])
    usage = capsys.readouterr().out
    assert "replay" in usage
    assert "dlq" in usage
