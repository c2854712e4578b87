"""Helpers shared by the emulator tests: an authenticated raw-HTTP caller and JWT assertions."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import jwt

from sfemulator import Emulator

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class Api:
    """An authenticated caller of one emulator's data API (raw aiohttp, no project client)."""

    def __init__(self, emu: Emulator, http: aiohttp.ClientSession, token: str) -> None:
        self.emu = emu
        self.http = http
        self.token = token
        self.base = f"{emu.url}/services/data/v{emu.api_version}"

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        """(status, parsed JSON body or None, headers) of a data-API call."""
        url = (
            path
            if path.startswith("http")
            else (self.emu.url + path if path.startswith("/services/") else self.base + path)
        )
        async with self.http.request(
            method, url, json=json, params=params, headers=self.headers(headers)
        ) as resp:
            raw = await resp.read()
            body = await resp.json(content_type=None) if raw else None
            return resp.status, body, resp.headers

    async def create(self, sobject: str, fields: dict[str, Any]) -> str:
        status, body, _ = await self.call("POST", f"/sobjects/{sobject}/", json=fields)
        assert status == 201, body
        return str(body["id"])

    async def query(self, soql: str, **kw: Any) -> tuple[int, Any, Any]:
        return await self.call("GET", "/query", params={"q": soql}, **kw)


def jwt_assertion(emu: Emulator, **overrides: Any) -> str:
    creds = emu.credentials
    claims = {
        "iss": creds.client_id,
        "sub": creds.username,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    }
    claims.update(overrides)
    key = overrides.pop("_key", None) or creds.private_key_pem
    claims.pop("_key", None)
    return jwt.encode(claims, key, algorithm="RS256")
