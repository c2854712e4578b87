"""``actionflows connect [--connection NAME]``: log in and print the connection indicator.

Exit status: 0 connected, 1 not connected (the indicator says why), 2 settings unusable.
Works the same against a real org and against the emulator: point a connection's login URL at
the emulator (``ACTIONFLOWS_SF_<NAME>_LOGIN_URL`` or ``--login-url``) with its demo credentials.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping

import orjson
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from pipeline.catalogue import ACTIONS, CONVERT, CREATE, DELETE, FIND, UPDATE
from salesforce.client import SalesforceClient
from salesforce.indicator import ConnectionIndicator, Permission, build_indicator
from salesforce.settings import ConnectionSettings, SettingsError, load_settings

_PERMISSION: Mapping[str, Permission] = {
    CREATE: "createable",
    UPDATE: "updateable",
    DELETE: "deletable",
    FIND: "queryable",
    CONVERT: "updateable",  # conversion edits the lead (and creates account/contact/opportunity)
}


def catalogue_requirements() -> dict[str, tuple[str, Permission]]:
    """Each catalogue action as 'kind object' with the sObject permission it needs."""
    return {
        f"{spec.kind} {spec.object}": (spec.sobject, _PERMISSION[spec.kind])
        for spec in ACTIONS.values()
    }


async def _indicator(settings: ConnectionSettings) -> ConnectionIndicator:
    async with SalesforceClient(settings) as client:
        return await build_indicator(client, requirements=catalogue_requirements())


def render(indicator: ConnectionIndicator, console: Console) -> None:
    status = "[green]● connected[/]" if indicator.connected else "[red]● not connected[/]"
    details = Table.grid(padding=(0, 2))
    details.add_column(style="bold")
    details.add_column()
    rows = [
        ("status", status),
        ("connection", indicator.connection),
        ("auth", indicator.auth_method),
        ("login URL", indicator.login_url),
        ("instance", indicator.instance_url),
        ("organization", " ".join(filter(None, [indicator.org_name, indicator.org_id]))),
        (
            "environment",
            indicator.environment
            and f"{indicator.environment} (from {indicator.environment_source})",
        ),
        ("user", " ".join(filter(None, [indicator.username, indicator.user_id]))),
        (
            "API version",
            indicator.api_version
            + (f" (latest {indicator.latest_api_version})" if indicator.latest_api_version else ""),
        ),
        ("API usage", str(indicator.api_usage) if indicator.api_usage else None),
        ("scopes", " ".join(indicator.scopes) or None),
        ("problem", indicator.problem and f"[red]{indicator.problem}[/]"),
        ("hint", indicator.hint),
    ]
    for name, value in rows:
        if value:
            details.add_row(name, value)
    for warning in indicator.warnings:
        details.add_row("[yellow]warning[/]", f"[yellow]{warning}[/]")
    console.print(Panel(details, title="Salesforce connection", expand=False))
    if indicator.actions:
        actions = Table("action", "available", title="Salesforce actions")
        for action in indicator.actions:
            mark = "[green]yes[/]" if action.available else f"[red]no[/] {action.reason or ''}"
            actions.add_row(action.name, mark)
        console.print(actions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="actionflows connect", description="Connect to Salesforce and show the indicator."
    )
    parser.add_argument("--connection", help="connection name (default: the configured default)")
    parser.add_argument("--login-url", help="override the login URL (e.g. a local emulator)")
    parser.add_argument("--json", action="store_true", help="print the indicator as JSON")
    args = parser.parse_args(argv)
    console = Console()
    try:
        settings = load_settings().get(args.connection)
    except SettingsError as exc:
        console.print(f"[red]Salesforce settings: {exc}[/]")
        return 2
    if args.login_url:
        try:
            settings = ConnectionSettings.model_validate(
                {**settings.model_dump(), "login_url": args.login_url}
            )
        except ValueError as exc:
            console.print(f"[red]--login-url: {exc}[/]")
            return 2
    indicator = asyncio.run(_indicator(settings))
    if args.json:
        print(orjson.dumps(indicator.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        render(indicator, console)
    return 0 if indicator.connected else 1


if __name__ == "__main__":
    raise SystemExit(main())
