"""Connection settings: several named orgs from env and files, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesforce.settings import AuthMethod, SettingsError, load_settings

PEM = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"


def test_two_connections_from_env() -> None:
    """sandbox and production are read from ACTIONFLOWS_SF_<NAME>_* variables."""
    env = {
        "ACTIONFLOWS_SF_CONNECTIONS": "sandbox,production",
        "ACTIONFLOWS_SF_DEFAULT_CONNECTION": "sandbox",
        "ACTIONFLOWS_SF_SANDBOX_LOGIN_URL": "https://test.salesforce.com/",
        "ACTIONFLOWS_SF_SANDBOX_CLIENT_ID": "3MVGsbx",
        "ACTIONFLOWS_SF_SANDBOX_USERNAME": "svc@acme.com.uat",
        "ACTIONFLOWS_SF_SANDBOX_PRIVATE_KEY": PEM,
        "ACTIONFLOWS_SF_PRODUCTION_LOGIN_URL": "https://acme.my.salesforce.com",
        "ACTIONFLOWS_SF_PRODUCTION_AUTH": "client_credentials",
        "ACTIONFLOWS_SF_PRODUCTION_CLIENT_ID": "3MVGprod",
        "ACTIONFLOWS_SF_PRODUCTION_CLIENT_SECRET": "prodsecret",
        "ACTIONFLOWS_SF_PRODUCTION_API_VERSION": "v64.0",
        "ACTIONFLOWS_SF_PRODUCTION_TIMEOUT_S": "20",
    }
    settings = load_settings(env)
    sandbox, production = settings.get(), settings.get("production")
    assert sandbox.name == "sandbox"
    assert sandbox.login_url == "https://test.salesforce.com"
    assert sandbox.jwt_audience == "https://test.salesforce.com"
    assert sandbox.private_key is not None
    assert sandbox.private_key.get_secret_value() == PEM
    assert production.auth is AuthMethod.CLIENT_CREDENTIALS
    assert production.api_version == "64.0"
    assert production.timeout_s == 20


def test_secrets_never_appear_in_repr_or_errors() -> None:
    """Private keys and client secrets print masked, also inside validation errors."""
    env = {
        "ACTIONFLOWS_SF_PROD_CLIENT_ID": "id",
        "ACTIONFLOWS_SF_PROD_USERNAME": "svc@acme.com",
        "ACTIONFLOWS_SF_PROD_PRIVATE_KEY": PEM,
        "ACTIONFLOWS_SF_PROD_CLIENT_SECRET": "hunter2hunter2",
    }
    settings = load_settings(env)
    shown = repr(settings) + str(settings.get("prod")) + repr(settings.get("prod").model_dump())
    assert "TOPSECRETKEYMATERIAL" not in shown
    assert "hunter2hunter2" not in shown
    env["ACTIONFLOWS_SF_PROD_TIMEOUT_S"] = "120"
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert "TOPSECRETKEYMATERIAL" not in str(caught.value)
    assert "timeout_s" in str(caught.value)


def test_missing_secret_for_the_method_is_named() -> None:
    """JWT without a private key fails at load time, naming the connection and the gap."""
    env = {"ACTIONFLOWS_SF_PROD_CLIENT_ID": "id", "ACTIONFLOWS_SF_PROD_USERNAME": "u"}
    with pytest.raises(SettingsError, match=r"'prod'.*private_key"):
        load_settings(env)


def test_settings_are_immutable() -> None:
    """A loaded connection cannot be changed in place."""
    env = {
        "ACTIONFLOWS_SF_A_CLIENT_ID": "id",
        "ACTIONFLOWS_SF_A_AUTH": "client_credentials",
        "ACTIONFLOWS_SF_A_CLIENT_SECRET": "s",
    }
    connection = load_settings(env).get("a")
    with pytest.raises(ValueError, match="frozen"):
        connection.client_id = "other"  # type: ignore[misc]


def test_toml_file_with_secret_files(tmp_path: Path) -> None:
    """A TOML connections file names secrets by path or variable; env vars override it."""
    key = tmp_path / "sf.key"
    key.write_text(PEM)
    config = tmp_path / "connections.toml"
    config.write_text(
        f"""
default = "production"
[connections.production]
login_url = "https://login.salesforce.com"
client_id = "3MVGprod"
username = "svc@acme.com"
private_key_file = "{key}"

[connections.sandbox]
login_url = "https://test.salesforce.com"
auth = "refresh_token"
client_id = "3MVGsbx"
refresh_token_env = "MY_VAULT_REFRESH"
"""
    )
    env = {
        "ACTIONFLOWS_SF_CONNECTIONS_FILE": str(config),
        "MY_VAULT_REFRESH": "5Aep861-refresh",
        "ACTIONFLOWS_SF_PRODUCTION_API_VERSION": "63.0",
    }
    settings = load_settings(env)
    production = settings.get()
    assert production.name == "production"
    assert production.api_version == "63.0"
    assert production.private_key is not None
    assert "TOPSECRETKEYMATERIAL" in production.private_key.get_secret_value()
    sandbox = settings.get("sandbox")
    assert sandbox.refresh_token is not None
    assert sandbox.refresh_token.get_secret_value() == "5Aep861-refresh"


def test_yaml_file(tmp_path: Path) -> None:
    """YAML connections files work the same way."""
    config = tmp_path / "connections.yaml"
    config.write_text(
        "connections:\n  emu:\n    login_url: http://127.0.0.1:8080\n"
        "    auth: password\n    client_id: demo\n    client_secret: s\n"
        "    username: demo@example.com\n    password: pw\n    verify_tls: false\n"
    )
    emu = load_settings({}, file=config).get("emu")
    assert emu.auth is AuthMethod.PASSWORD
    assert emu.verify_tls is False


def test_unknown_connection_lists_the_known_ones() -> None:
    """Asking for an unconfigured connection names the configured ones."""
    env = {
        "ACTIONFLOWS_SF_A_CLIENT_ID": "id",
        "ACTIONFLOWS_SF_A_AUTH": "client_credentials",
        "ACTIONFLOWS_SF_A_CLIENT_SECRET": "s",
    }
    with pytest.raises(SettingsError, match=r"'b'.*configured: a"):
        load_settings(env).get("b")


def test_bad_values_are_rejected() -> None:
    """A login URL without a scheme or a malformed API version fails at load time."""
    base = {
        "ACTIONFLOWS_SF_A_CLIENT_ID": "id",
        "ACTIONFLOWS_SF_A_AUTH": "client_credentials",
        "ACTIONFLOWS_SF_A_CLIENT_SECRET": "s",
    }
    with pytest.raises(SettingsError, match="login_url"):
        load_settings({**base, "ACTIONFLOWS_SF_A_LOGIN_URL": "login.salesforce.com"})
    with pytest.raises(SettingsError, match="api_version"):
        load_settings({**base, "ACTIONFLOWS_SF_A_API_VERSION": "62"})


def test_escaped_newlines_in_a_pem_are_restored() -> None:
    """A private key pasted into one env line with literal \\n becomes a real PEM."""
    env = {
        "ACTIONFLOWS_SF_A_CLIENT_ID": "id",
        "ACTIONFLOWS_SF_A_USERNAME": "u",
        "ACTIONFLOWS_SF_A_PRIVATE_KEY": PEM.replace("\n", "\\n"),
    }
    key = load_settings(env).get("a").private_key
    assert key is not None
    assert key.get_secret_value() == PEM


def test_missing_ca_file_fails_at_load(tmp_path: Path) -> None:
    """A CA bundle path that does not exist is reported at load time, not at the first call."""
    env = {
        "ACTIONFLOWS_SF_A_CLIENT_ID": "id",
        "ACTIONFLOWS_SF_A_AUTH": "client_credentials",
        "ACTIONFLOWS_SF_A_CLIENT_SECRET": "s",
        "ACTIONFLOWS_SF_A_CA_FILE": str(tmp_path / "no.pem"),
    }
    with pytest.raises(SettingsError, match="ca_file"):
        load_settings(env)
