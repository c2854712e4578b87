"""One HTTP exchange with Salesforce, as metrics and traces see it.

The transport's ``send`` is :func:`reported`: after every exchange (token requests included) it
hands a :class:`CallInfo` to the listeners registered with
:meth:`salesforce.transport.Transport.on_call`. ``resource`` is a
short, low-cardinality name for what was called, never a record id: ``sobjects/Lead``,
``query``, ``composite/sobjects``, ``oauth2/token``, ``soap``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class CallInfo:
    method: str
    resource: str
    status: int | None  # None: no response came back (timeout, connection refused or reset)
    started_at: float  # epoch seconds
    duration_s: float


_DATA = re.compile(r"^/services/data/v[0-9.]+/?")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


def resource_of(url: str) -> str:
    """The resource a URL addresses: the REST resource with the sObject name kept and record
    ids, external ids and query strings dropped."""
    path = urlsplit(url).path
    if path.startswith("/services/oauth2/"):
        return "oauth2/" + path.removeprefix("/services/oauth2/").strip("/")
    if path.startswith("/services/Soap/"):
        return "soap"
    if not _DATA.match(path):
        return "versions" if path.rstrip("/") == "/services/data" else "other"
    parts = _DATA.sub("", path).strip("/").split("/")
    head = parts[0] or "root"
    if head == "sobjects" and len(parts) > 1 and _NAME.match(parts[1]):
        return f"sobjects/{parts[1]}"
    if head == "composite" and len(parts) > 1 and parts[1] == "sobjects":
        return "composite/sobjects"
    return head if _NAME.match(head) else "other"


class _Answer(Protocol):
    @property
    def status(self) -> int: ...


class _Reporting(Protocol):
    _call_listeners: list[Callable[[CallInfo], None]]


S = TypeVar("S", bound=_Reporting)
R = TypeVar("R", bound=_Answer)
P = ParamSpec("P")


def reported(
    send: Callable[Concatenate[S, str, str, P], Awaitable[R]],
) -> Callable[Concatenate[S, str, str, P], Awaitable[R]]:
    """``send(self, method, url, …)``, each exchange timed and reported to
    ``self._call_listeners`` (status None when no response came back)."""

    async def send_reported(
        self: S, method: str, url: str, /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        started, began, status = time.time(), time.perf_counter(), None
        try:
            response = await send(self, method, url, *args, **kwargs)
            status = response.status
            return response
        finally:
            info = CallInfo(method, resource_of(url), status, started, time.perf_counter() - began)
            for listener in self._call_listeners:
                listener(info)

    return send_reported
