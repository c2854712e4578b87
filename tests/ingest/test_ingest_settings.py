"""The ingest's settings: secrets from the environment and from files, several at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.ingest.settings import IngestSettings, IngestSettingsError

P = "ACTIONFLOWS_INGEST_"


def test_secrets_and_tokens_from_variables_and_files_together(tmp_path: Path) -> None:
    """During a rotation both places may hold secrets: all of them count, each once."""
    secrets = tmp_path / "secrets"
    secrets.write_text("# Zendesk signing secrets\nnew-secret\n\nold-secret\n")
    settings = IngestSettings.from_env(
        "k:9092",
        {
            f"{P}ZENDESK_SECRETS": "old-secret, env-secret",
            f"{P}ZENDESK_SECRETS_FILE": str(secrets),
            f"{P}TOKENS": "t1",
        },
    )
    assert [s.get_secret_value() for s in settings.signing_secrets] == [
        "old-secret",
        "env-secret",
        "new-secret",
    ]
    assert [t.get_secret_value() for t in settings.bearer_tokens] == ["t1"]
    assert (settings.host, settings.port, settings.enrichment) == ("127.0.0.1", 8088, None)
    assert "old-secret" not in repr(settings)


def test_nothing_to_accept_is_refused() -> None:
    """Without any secret or token every request would be refused: say so at start-up."""
    with pytest.raises(IngestSettingsError, match="ZENDESK_SECRETS"):
        IngestSettings.from_env("k:9092", {})


def test_enrichment_follows_the_zendesk_connection() -> None:
    base = {
        f"{P}TOKENS": "t",
        "ACTIONFLOWS_ZENDESK_URL": "https://a.zendesk.com",
        "ACTIONFLOWS_ZENDESK_OAUTH_TOKEN": "o",
    }
    settings = IngestSettings.from_env("k:9092", {**base, f"{P}ENRICH_TIMEOUT_S": "1.5"})
    assert settings.enrichment is not None
    assert settings.enrichment.timeout_s == 1.5
    assert IngestSettings.from_env("k:9092", {**base, f"{P}ENRICH": "off"}).enrichment is None
    with pytest.raises(IngestSettingsError, match="needs a Zendesk connection"):
        IngestSettings.from_env("k:9092", {f"{P}TOKENS": "t", f"{P}ENRICH": "on"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({f"{P}PORT": "eighty"}, "PORT"),
        ({f"{P}ZENDESK_SECRETS_FILE": "/nonexistent/secrets"}, "cannot read"),
        ({f"{P}ENRICH": "maybe"}, "ENRICH"),
        ({f"{P}MAX_BYTES": "0"}, "MAX_BYTES"),
    ],
)
def test_malformed_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(IngestSettingsError, match=message):
        IngestSettings.from_env("k:9092", {f"{P}TOKENS": "t", **env})
