"""The transport-free request and response of the data API, and a tiny regex router.

Handlers take an ``ApiRequest`` and return an ``ApiResponse``; the aiohttp layer (``app.py``)
and the Composite resource (``composite.py``) both call the same ``Router.dispatch``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, not_found


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str  # below /services/data/vXX.X, e.g. "/sobjects/Lead/00Q..."
    version: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    lock_indexes: frozenset[int] = frozenset()  # injected per-record UNABLE_TO_LOCK_ROW

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    @property
    def allow_save(self) -> bool:
        """``Sforce-Duplicate-Rule-Header: allowSave=true`` was sent."""
        raw = self.header("Sforce-Duplicate-Rule-Header") or ""
        options = dict(p.strip().partition("=")[::2] for p in raw.split(";") if "=" in p)
        return options.get("allowSave", "").lower() == "true"

    @property
    def version_number(self) -> float:
        return float(self.version)


@dataclass
class ApiResponse:
    status: int
    body: Any = None  # JSON-able, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, err: ApiError) -> ApiResponse:
        if err.status == 300:  # multiple external-ID matches: the body is their URLs
            return cls(300, err.extra.get("urls", []))
        return cls(err.status, err.rest_body())


Handler = Callable[[ApiRequest, re.Match[str]], ApiResponse]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler], str]] = []

    def add(self, pattern: str, name: str, **handlers: Handler) -> None:
        methods = {method.upper(): handler for method, handler in handlers.items()}
        self._routes.append((re.compile(f"^{pattern}/?$"), methods, name))

    def route_name(self, method: str, path: str) -> str:
        for pattern, _, name in self._routes:
            if pattern.match(path):
                return name
        return path

    def dispatch(self, request: ApiRequest) -> ApiResponse:
        for pattern, methods, _ in self._routes:
            match = pattern.match(request.path)
            if match is None:
                continue
            handler = methods.get(request.method.upper())
            if handler is None:
                allowed = ",".join(sorted(methods))
                return ApiResponse(
                    405,
                    [
                        {
                            "errorCode": "METHOD_NOT_ALLOWED",
                            "message": f"HTTP Method '{request.method.upper()}' not allowed. "
                            f"Allowed are {allowed}",
                        }
                    ],
                )
            try:
                return handler(request, match)
            except ApiError as err:
                return ApiResponse.error(err)
        return ApiResponse.error(not_found())
