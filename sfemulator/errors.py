"""The one exception the emulator's pure core raises, and the two shapes Salesforce renders it in.

``ApiError`` carries an HTTP status, a Salesforce ``errorCode`` and message, and optionally the
fields involved. Single-resource REST responses render it as ``[{"message","errorCode","fields"}]``;
sObject Collections, Composite-inside-collections and SOAP results render it as
``{"statusCode","message","fields"}``.
"""

from __future__ import annotations

from typing import Any

NOT_FOUND_MESSAGE = "The requested resource does not exist"


class ApiError(Exception):
    """A Salesforce error response: status, errorCode, message, fields and any extra body keys."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields
        self.extra = extra or {}

    def rest_item(self) -> dict[str, Any]:
        """The element of a REST error array (``errorCode`` keyed)."""
        item: dict[str, Any] = dict(self.extra)
        item["errorCode"] = self.error_code
        item["message"] = self.message
        if self.fields is not None:
            item["fields"] = list(self.fields)
        return item

    def rest_body(self) -> list[dict[str, Any]]:
        """The whole REST error body: a JSON array with one error."""
        return [self.rest_item()]

    def record_error(self) -> dict[str, Any]:
        """The per-record error of sObject Collections (``statusCode`` keyed, fields always set)."""
        return {
            "statusCode": self.error_code,
            "message": self.message,
            "fields": list(self.fields or []),
        }


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)


def malformed_id(label: str, value: object, field: str | None = None) -> ApiError:
    fields = [field] if field else None
    return ApiError(400, "MALFORMED_ID", f"{label}: id value of incorrect type: {value}", fields)


def entity_is_deleted() -> ApiError:
    return ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])


def json_parser_error(detail: str) -> ApiError:
    return ApiError(400, "JSON_PARSER_ERROR", detail)
