"""HTML out: Jinja2 templates with autoescaping on for every template, and the filters they use.

Every value a template prints is escaped unless the template marks it safe, and none does: a
ticket id or subject full of HTML renders as text. Masked data (step inputs and outputs, dead
letter payloads) is shown as indented JSON inside ``<pre>``, escaped the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson
from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined

from agents.console.auth import LOGOUT, PREFIX, SESSION


def pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def moment(value: str | datetime | int | None) -> str:
    """An ISO time (as the history gives it), a datetime or epoch milliseconds (a redrive
    marker's), as UTC text to the second."""
    if value is None:
        return "-"
    if isinstance(value, int):
        when = datetime.fromtimestamp(value / 1000, UTC)
    else:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


STYLE_SHEET = resources.files("agents.console").joinpath("static/console.css").read_bytes()


class Templates:
    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("agents.console", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(pretty=pretty, duration=duration, moment=moment, number=number)
        self.env.globals.update(prefix=PREFIX, logout=LOGOUT)

    def page(
        self, request: web.Request, template: str, *, status: int = 200, **context: Any
    ) -> web.Response:
        """``template`` rendered for ``request``: with its session's CSRF tokens, if any."""
        session = request.get(SESSION)
        html = self.env.get_template(template).render(
            path=request.path,
            signed_in=session is not None,
            csrf=session.csrf if session is not None else None,
            **context,
        )
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
