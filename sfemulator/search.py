"""Search: a SOSL subset at ``/search`` and ``/parameterizedSearch`` (GET and POST).

SOSL: ``FIND {term} [IN ALL|NAME|EMAIL|PHONE FIELDS] [RETURNING Obj[(f1, f2 [LIMIT n])], ...]
[LIMIT n]``. The term matches case-insensitively as a substring of any searchable field (``*``
and ``?`` are wildcards; phone fields compare digits only, as SOSL does), including long text
areas that SOQL cannot filter. Results come back as ``{"searchRecords": [...]}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .api import ApiRequest, ApiResponse, Router
from .describe import attributes
from .errors import ApiError
from .schema import FieldSpec, ObjectSpec
from .store import Store

SEARCHABLE = ("Account", "Contact", "Lead", "Opportunity", "Case", "Campaign")
_TEXT = {"string", "textarea", "email", "phone", "url"}
_GROUPS = {"ALL": _TEXT, "NAME": {"name"}, "EMAIL": {"email"}, "PHONE": {"phone"}}
_SOSL = re.compile(
    r"^\s*FIND\s+\{(?P<term>(?:[^}\\]|\\.)*)\}"
    r"(?:\s+IN\s+(?P<group>ALL|NAME|EMAIL|PHONE)\s+FIELDS)?"
    r"(?:\s+RETURNING\s+(?P<returning>.+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_RETURN_ITEM = re.compile(r"\s*([A-Za-z]\w*)\s*(?:\(([^)]*)\))?\s*(?:,|$)")


@dataclass(frozen=True)
class _Target:
    sobject: str
    fields: tuple[str, ...]
    limit: int | None = None


class SearchApi:
    def __init__(self, store: Store, router: Router) -> None:
        self.store = store
        router.add("/search", "search", GET=self.sosl)
        router.add(
            "/parameterizedSearch",
            "parameterizedSearch",
            GET=self.parameterized,
            POST=self.parameterized,
        )

    def sosl(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        text = req.query.get("q", "")
        match = _SOSL.match(text)
        if match is None:
            raise ApiError(
                400,
                "MALFORMED_SEARCH",
                "No search term found. The search term must be enclosed in braces.",
            )
        targets = _parse_returning(match.group("returning"))
        limit = int(match.group("limit")) if match.group("limit") else 2000
        group = (match.group("group") or "ALL").upper()
        return self._search(req, match.group("term"), targets, group, limit)

    def parameterized(self, req: ApiRequest, _: re.Match[str]) -> ApiResponse:
        if req.method == "POST":
            body = req.body if isinstance(req.body, dict) else {}
            term = str(body.get("q", ""))
            default_fields = tuple(body.get("fields") or ("Id",))
            targets = [
                _Target(str(s["name"]), tuple(s.get("fields") or default_fields), s.get("limit"))
                for s in body.get("sobjects") or []
            ]
            limit = int(body.get("overallLimit") or body.get("defaultLimit") or 2000)
            group = str(body.get("in", "ALL")).upper()
        else:
            term = req.query.get("q", "")
            names = [n for n in req.query.get("sobject", "").split(",") if n]
            fields = tuple(f for f in req.query.get("fields", "Id").split(",") if f)
            targets = [
                _Target(
                    n,
                    tuple(req.query.get(f"{n}.fields", "").split(","))
                    if req.query.get(f"{n}.fields")
                    else fields,
                    int(req.query[f"{n}.limit"]) if f"{n}.limit" in req.query else None,
                )
                for n in names
            ]
            limit = int(req.query.get("overallLimit") or req.query.get("defaultLimit") or 2000)
            group = req.query.get("in", "ALL").upper()
        return self._search(req, term, targets, group, limit)

    def _search(
        self, req: ApiRequest, term: str, targets: list[_Target], group: str, limit: int
    ) -> ApiResponse:
        if len(term.replace("*", "").replace("?", "").strip()) < 2:
            raise ApiError(400, "INVALID_SEARCH", "search term must be longer than one character")
        if group not in _GROUPS:
            raise ApiError(400, "INVALID_SEARCH", f"Invalid search group: {group}")
        targets = targets or [_Target(name, ("Id",)) for name in SEARCHABLE]
        matcher = _matcher(term)
        found: list[dict[str, Any]] = []
        for target in targets:
            spec = self.store.spec(target.sobject)
            fields = [_field(spec, name) for name in target.fields]
            searched = [f for f in spec.fields if _in_group(f, group)]
            hits = [
                r
                for r in self.store.rows(spec.name)
                if any(matcher(f, r.get(f.name)) for f in searched)
            ]
            for record in hits[: target.limit]:
                row: dict[str, Any] = {
                    "attributes": attributes(spec.name, record["Id"], req.version)
                }
                row.update({f.name: record.get(f.name) for f in fields})
                found.append(row)
        return ApiResponse(200, {"searchRecords": found[:limit]})


def _parse_returning(text: str | None) -> list[_Target]:
    if not text:
        return []
    targets, pos = [], 0
    while pos < len(text):
        item = _RETURN_ITEM.match(text, pos)
        if item is None or item.end() == pos:
            raise ApiError(400, "MALFORMED_SEARCH", f"unexpected token in RETURNING: {text[pos:]}")
        inner = item.group(2) or "Id"
        limit = re.search(r"\bLIMIT\s+(\d+)\s*$", inner, re.IGNORECASE)
        names = inner[: limit.start()] if limit else inner
        targets.append(
            _Target(
                item.group(1),
                tuple(n.strip() for n in names.split(",") if n.strip()),
                int(limit.group(1)) if limit else None,
            )
        )
        pos = item.end()
    return targets


def _field(spec: ObjectSpec, name: str) -> FieldSpec:
    field = spec.field(name)
    if field is None:
        raise ApiError(
            400,
            "INVALID_FIELD",
            f"No such column '{name}' on entity '{spec.name}'. If you are attempting "
            "to use a custom field, be sure to append the '__c' after the custom "
            "field name. Please reference your WSDL or the describe call for the "
            "appropriate names.",
        )
    return field


def _in_group(field: FieldSpec, group: str) -> bool:
    if group == "NAME":
        return field.name in {"Name", "FirstName", "LastName", "Company", "Subject", "CaseNumber"}
    return field.type in _GROUPS[group]


def _matcher(term: str) -> Any:
    words = re.sub(r"\\(.)", r"\1", term).strip().strip('"')
    pattern = re.compile(
        ".*".join(re.escape(p).replace(r"\?", ".") for p in words.split("*")),
        re.IGNORECASE | re.DOTALL,
    )
    digits = re.sub(r"\D", "", words)

    def matches(field: FieldSpec, value: Any) -> bool:
        if not isinstance(value, str) or not value:
            return False
        if field.type == "phone" and len(digits) >= 2:
            return digits in re.sub(r"\D", "", value)
        return pattern.search(value) is not None

    return matches
