"""The emulated endpoints and their documented answers.

- ``GET /api/v2/users/show_many.json?ids=1,2`` → ``{"users": [...]}``, the users that exist;
- ``GET /api/v2/organizations/show_many.json?ids=1,2`` → ``{"organizations": [...]}``.

Error answers keep Zendesk's shapes (developer.zendesk.com/api-reference/introduction/requests,
.../rate-limits): business errors are JSON (``{"error": "RecordNotFound", "description":
"Not found"}``; a 401 is ``{"error": "Couldn't authenticate you"}``), API-level ones
``text/plain``; a 429 carries ``Retry-After`` (seconds) and every answer ``X-Rate-Limit`` and
``X-Rate-Limit-Remaining``. More than 100 ids is refused with a 400: Zendesk documents the
limit but not its answer, so that one is the emulator's choice.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from zdemulator.emulator import ZendeskEmulator

MAX_IDS = 100
STATE: web.AppKey[ZendeskEmulator] = web.AppKey("zendesk_emulator")

BODIES: dict[int, tuple[str, bytes]] = {
    400: ("text/plain", b"Too many ids: show_many takes at most 100"),
    401: ("application/json", orjson.dumps({"error": "Couldn't authenticate you"})),
    403: (
        "application/json",
        orjson.dumps(
            {
                "error": "Forbidden",
                "description": "You do not have access to this page. Please contact the "
                "account owner of this help desk for further help.",
            }
        ),
    ),
    404: (
        "application/json",
        orjson.dumps({"error": "RecordNotFound", "description": "Not found"}),
    ),
    429: ("text/plain", b"Number of allowed API requests per minute exceeded"),
    500: ("text/plain", b"Internal Server Error"),
    502: ("text/plain", b"Bad Gateway"),
    503: ("text/plain", b"Service Unavailable"),
}


def build_app(emulator: ZendeskEmulator) -> web.Application:
    app = web.Application()
    app[STATE] = emulator
    app.router.add_get("/api/v2/users/show_many.json", _show_many_users)
    app.router.add_get("/api/v2/organizations/show_many.json", _show_many_organizations)
    return app


def error(
    status: int, emulator: ZendeskEmulator, *, retry_after_s: float | None = None
) -> web.Response:
    content_type, body = BODIES[status]
    headers = limit_headers(emulator)
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return web.Response(status=status, body=body, content_type=content_type, headers=headers)


async def _show_many_users(request: web.Request) -> web.Response:
    return await _show_many(request, "users")


async def _show_many_organizations(request: web.Request) -> web.Response:
    return await _show_many(request, "organizations")


async def _show_many(request: web.Request, kind: str) -> web.Response:
    emulator = request.app[STATE]
    ids = [part for part in request.query.get("ids", "").split(",") if part]
    emulator.calls.append((kind, ids))
    refused = await emulator.admit(_credentials(request.headers.get("Authorization", "")))
    if refused is not None:
        return refused
    if len(ids) > MAX_IDS:
        return error(400, emulator)
    records = emulator.users if kind == "users" else emulator.organizations
    found: list[dict[str, Any]] = [
        {**records[i], "url": f"{emulator.url}/api/v2/{kind}/{i}.json"} for i in ids if i in records
    ]
    return web.Response(
        body=orjson.dumps(
            {kind: found, "next_page": None, "previous_page": None, "count": len(found)}
        ),
        content_type="application/json",
        headers=limit_headers(emulator),
    )


def _credentials(header: str) -> tuple[str, str]:
    """("basic", "email/token:TOKEN") or ("bearer", TOKEN); ("", "") for anything else."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return "bearer", value.strip()
    if scheme.lower() == "basic":
        try:
            return "basic", base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
    return "", ""


def limit_headers(emulator: ZendeskEmulator) -> dict[str, str]:
    return {
        "X-Rate-Limit": str(emulator.rate_limit),
        "X-Rate-Limit-Remaining": str(max(0, emulator.remaining)),
    }
