"""Zendesk settings from the environment: API token or OAuth, secrets from files, never printed."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from zendesk.errors import ConfigurationError
from zendesk.settings import ApiToken, OAuthToken, ZendeskSettings

P = "ACTIONFLOWS_ZENDESK_"


def test_no_url_means_no_connection() -> None:
    assert ZendeskSettings.from_env({}) is None


def test_an_api_token_is_basic_auth_of_email_slash_token() -> None:
    """Zendesk's format: Basic base64('{email}/token:{token}')."""
    settings = ZendeskSettings.from_env(
        {f"{P}SUBDOMAIN": "acme", f"{P}EMAIL": "bot@acme.example", f"{P}API_TOKEN": "s3cret"}
    )
    assert settings is not None
    assert settings.base_url == "https://acme.zendesk.com"
    assert isinstance(settings.auth, ApiToken)
    header = settings.auth.authorization()
    assert base64.b64decode(header.removeprefix("Basic ")) == b"bot@acme.example/token:s3cret"
    assert "s3cret" not in repr(settings)


def test_an_oauth_token_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("oauth-value\n")
    settings = ZendeskSettings.from_env(
        {f"{P}URL": "https://acme.zendesk.com/", f"{P}OAUTH_TOKEN_FILE": str(tmp_path / "token")}
    )
    assert settings is not None
    assert isinstance(settings.auth, OAuthToken)
    assert settings.auth.authorization() == "Bearer oauth-value"
    assert settings.base_url == "https://acme.zendesk.com"
    assert "oauth-value" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({f"{P}URL": "https://a.zendesk.com"}, "neither"),
        ({f"{P}URL": "https://a.zendesk.com", f"{P}API_TOKEN": "t"}, "EMAIL"),
        (
            {f"{P}URL": "https://a.zendesk.com", f"{P}API_TOKEN": "t", f"{P}OAUTH_TOKEN": "o"},
            "not both",
        ),
        ({f"{P}URL": "http://a.zendesk.com", f"{P}OAUTH_TOKEN": "o"}, "loopback"),
        (
            {f"{P}URL": "https://a.zendesk.com", f"{P}OAUTH_TOKEN_FILE": "/nonexistent/x"},
            "cannot read",
        ),
        (
            {f"{P}URL": "https://a.zendesk.com", f"{P}OAUTH_TOKEN": "o", f"{P}TIMEOUT_S": "soon"},
            "TIMEOUT_S",
        ),
    ],
)
def test_incomplete_or_contradictory_settings_say_what_is_wrong(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ZendeskSettings.from_env(env)
