"""One HTTP exchange with Salesforce, as metrics and traces see it. Pure.

The transport reports a :class:`CallInfo` after every exchange (token requests included) to the
listeners registered with :meth:`salesforce.transport.Transport.on_call`. ``resource`` is a
short, low-cardinality name for what was called, never a record id: ``sobjects/Lead``,
``query``, ``composite/sobjects``, ``oauth2/token``, ``soap``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class CallInfo:
    method: str
    resource: str
    status: int | None  # None: no response came back (timeout, connection refused or reset)
    started_at: float  # epoch seconds
    duration_s: float
    attempt: int  # 1 for the first try of a request; more for its retries

    @property
    def retry(self) -> bool:
        return self.attempt > 1


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
