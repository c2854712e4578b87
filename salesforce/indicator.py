"""The connection indicator the seed promises: connected or why not, and what is connected.

:func:`build_indicator` asks the org what an integration user may see without extra permissions
(token response, identity URL, ``/services/data/``, ``Sforce-Limit-Info``, global describe) and
the ``Organization`` row when readable. Each look-up after login fails soft: a missing detail
becomes a warning, not a disconnected indicator. The result is plain data for any renderer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from salesforce.client import SalesforceClient
from salesforce.errors import InvalidClientError, InvalidGrantError, SalesforceError
from salesforce.limits import ApiUsage
from salesforce.settings import AuthMethod

Environment = Literal["sandbox", "production"]
Permission = Literal["createable", "updateable", "deletable", "queryable"]

# Scopes that give more than a REST integration needs (web sessions, UI, everything).
BROAD_SCOPES = frozenset({"full", "web", "visualforce", "lightning", "content", "chatter_api"})
REFRESH_SCOPES = frozenset({"refresh_token", "offline_access"})

_HINTS = {
    "user hasn't approved this consumer": (
        "pre-authorise the integration user: connected app > Manage > 'Admin approved users are "
        "pre-authorized', then add the user's profile or permission set"
    ),
    "audience is invalid": "the JWT aud must be https://login.salesforce.com or test.salesforce.com",
    "request not supported on this domain": (
        "client credentials must use the org's My Domain URL as login_url"
    ),
    "no client credentials user enabled": "set a run-as user on the connected app",
    "expired authorization code": "the JWT exp is in the past: check this host's clock",
}


@dataclass(frozen=True, slots=True)
class ActionAvailability:
    name: str
    available: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionIndicator:
    """Everything the admin sees after connecting. ``problem`` says why when not connected."""

    connection: str
    connected: bool
    auth_method: str
    login_url: str
    api_version: str
    problem: str | None = None
    hint: str | None = None
    instance_url: str | None = None
    org_id: str | None = None
    org_name: str | None = None
    user_id: str | None = None
    username: str | None = None
    display_name: str | None = None
    environment: Environment | None = None
    environment_source: str | None = None
    instance_name: str | None = None
    latest_api_version: str | None = None
    api_usage: ApiUsage | None = None
    scopes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    actions: tuple[ActionAvailability, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, api_usage=None))  # ApiUsage holds a read-only mapping
        usage = self.api_usage
        data["api_usage"] = (
            {"used": usage.api.used, "limit": usage.api.limit}
            if usage is not None and usage.api is not None
            else None
        )
        return data


def scope_warnings(scopes: Iterable[str], method: AuthMethod) -> list[str]:
    """Warn on a missing ``api`` scope, a missing refresh scope (refresh flow only), broad ones."""
    granted = set(scopes)
    warnings: list[str] = []
    if not granted:
        return ["the token response listed no scopes: review them on the connected app"]
    if "api" not in granted and "full" not in granted:
        warnings.append("required scope 'api' is not granted")
    if method is AuthMethod.REFRESH_TOKEN and not granted & REFRESH_SCOPES:
        warnings.append("refresh flow without 'refresh_token'/'offline_access' scope")
    for scope in sorted(granted & BROAD_SCOPES):
        warnings.append(f"scope '{scope}' is broader than this integration needs")
    if method is not AuthMethod.REFRESH_TOKEN and granted & REFRESH_SCOPES:
        names = ", ".join(sorted(granted & REFRESH_SCOPES))
        warnings.append(f"scope {names} is not needed by the {method.value} flow")
    return warnings


def environment_from_host(instance_url: str) -> Environment | None:
    """Sandbox from the host alone: ``*.sandbox.my.salesforce.com`` or a legacy ``csNN`` pod."""
    host = urlsplit(instance_url).hostname or ""
    if host.endswith(".sandbox.my.salesforce.com") or re.match(r"cs\d+\.", host):
        return "sandbox"
    if host.endswith(".salesforce.com"):
        return "production"
    return None


def hint_for(error: SalesforceError) -> str | None:
    message = error.message.lower()
    for needle, hint in _HINTS.items():
        if needle in message:
            return hint
    if isinstance(error, InvalidClientError):
        return "check the connected app's consumer key (client_id) and secret"
    if isinstance(error, InvalidGrantError):
        return "check username, certificate and the app's pre-authorised users"
    return None


def availability(
    requirements: Mapping[str, tuple[str, Permission]], sobjects: Sequence[Mapping[str, Any]]
) -> list[ActionAvailability]:
    """Which actions the integration user may run, from the global describe's per-object flags."""
    by_name = {str(s.get("name")): s for s in sobjects}
    out: list[ActionAvailability] = []
    for action, (sobject, permission) in requirements.items():
        described = by_name.get(sobject)
        if described is None:
            out.append(ActionAvailability(action, False, f"{sobject} is not visible to this user"))
        elif not described.get(permission):
            out.append(ActionAvailability(action, False, f"{sobject} is not {permission}"))
        else:
            out.append(ActionAvailability(action, True))
    return out


async def build_indicator(
    client: SalesforceClient,
    actions: Sequence[str] = (),
    *,
    requirements: Mapping[str, tuple[str, Permission]] | None = None,
) -> ConnectionIndicator:
    """Connect and describe the connection. ``requirements`` (action → sObject, permission)
    lets the indicator check each action against the org; without it actions are listed as is."""
    settings = client.settings
    base: dict[str, Any] = {
        "connection": settings.name,
        "auth_method": settings.auth.value,
        "login_url": settings.login_url,
        "api_version": settings.api_version,
    }
    try:
        token = await client.connect()
    except SalesforceError as exc:
        return ConnectionIndicator(connected=False, problem=str(exc), hint=hint_for(exc), **base)
    scopes, warnings = token.scopes, []
    if not scopes and settings.client_secret is not None:
        try:  # some responses omit "scope"; introspection states it
            scopes = frozenset(str((await client.introspect()).get("scope") or "").split())
        except SalesforceError as exc:
            warnings.append(f"token introspection failed: {exc}")
    warnings.extend(scope_warnings(scopes, settings.auth))
    details: dict[str, Any] = {
        "instance_url": token.instance_url,
        "org_id": token.org_id,
        "user_id": token.user_id,
        "scopes": tuple(sorted(scopes)),
    }
    try:
        identity = await client.identity()
        details.update(
            username=identity.get("username"),
            display_name=identity.get("display_name"),
            org_id=identity.get("organization_id") or details["org_id"],
            user_id=identity.get("user_id") or details["user_id"],
        )
    except SalesforceError as exc:
        warnings.append(f"identity URL unreadable: {exc}")
    try:
        [org] = await client.query("SELECT Name, IsSandbox, InstanceName FROM Organization LIMIT 1")
        details.update(
            org_name=org.get("Name"),
            environment="sandbox" if org.get("IsSandbox") else "production",
            environment_source="Organization.IsSandbox",
            instance_name=org.get("InstanceName"),
        )
    except (SalesforceError, ValueError) as exc:
        details.update(
            environment=environment_from_host(token.instance_url),
            environment_source="instance host",
        )
        warnings.append(f"Organization not readable, environment guessed from the host: {exc}")
    try:
        versions = await client.versions()
        details["latest_api_version"] = max(
            (str(v["version"]) for v in versions), key=lambda v: float(v), default=None
        )
    except (SalesforceError, KeyError, ValueError) as exc:
        warnings.append(f"API versions unreadable: {exc}")
    listed = [ActionAvailability(name, True) for name in actions]
    if requirements:
        try:
            described = await client.describe_global()
            listed = availability(requirements, described.get("sobjects") or ())
        except SalesforceError as exc:
            warnings.append(f"global describe failed, actions not checked: {exc}")
    return ConnectionIndicator(
        connected=True,
        api_usage=client.api_usage,
        warnings=tuple(warnings),
        actions=tuple(listed),
        **base,
        **details,
    )
