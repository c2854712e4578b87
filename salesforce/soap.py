"""SOAP ``convertLead`` on the partner endpoint, as pure envelope building and parsing.

There is no REST resource for lead conversion: real orgs answer ``/actions/standard/convertLead``
with 404 "Invalid Action Type". The partner SOAP API's ``convertLead`` at
``/services/Soap/u/{version}`` accepts the OAuth access token as ``SessionHeader.sessionId``.
``LeadConvert`` is an ``xsd:sequence``, so the elements are written in the WSDL's order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from pipeline.ports import ConversionResult, LeadConversion
from salesforce.errors import (
    SalesforceError,
    UnexpectedResponseError,
    error_from_record,
    parse_xml,
    text_of,
)
from salesforce.limits import ApiUsage, Usage

SOAP_PATH = "/services/Soap/u/{version}"
SOAP_HEADERS = {
    "Content-Type": "text/xml; charset=UTF-8",
    "Accept": "text/xml",
    "SOAPAction": '""',
}
_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_PARTNER = "urn:partner.soap.sforce.com"
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_COUNT = re.compile(r"[0-9]{1,18}")


def _text(value: str) -> str:
    # A raw CR would come back as LF after XML end-of-line normalisation.
    return escape(value, {"\r": "&#13;"})


def _element(name: str, value: str | bool | None) -> str:
    if value is None or value == "":
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else _text(value)
    return f"<urn:{name}>{text}</urn:{name}>"


def _lead_convert(conversion: LeadConversion, converted_status: str) -> str:
    # Partner WSDL order: accountId, …, contactId, …, convertedStatus, doNotCreateOpportunity,
    # leadId, opportunityId, opportunityName, …
    return (
        "<urn:leadConverts>"
        + _element("accountId", conversion.account_id)
        + _element("contactId", conversion.contact_id)
        + _element("convertedStatus", converted_status)
        + _element("doNotCreateOpportunity", conversion.do_not_create_opportunity)
        + _element("leadId", conversion.lead_id)
        + _element("opportunityName", conversion.opportunity_name)
        + "</urn:leadConverts>"
    )


def convert_lead_envelope(
    session_id: str, conversions: Sequence[tuple[LeadConversion, str]]
) -> bytes:
    """The request body for one ``convertLead`` call; each conversion with its resolved status."""
    converts = "".join(_lead_convert(conv, status) for conv, status in conversions)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{_ENV}" xmlns:urn="{_PARTNER}">'
        "<soapenv:Header><urn:SessionHeader>"
        f"<urn:sessionId>{_text(session_id)}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header>"
        f"<soapenv:Body><urn:convertLead>{converts}</urn:convertLead></soapenv:Body>"
        "</soapenv:Envelope>"
    ).encode()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(element: ElementTree.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            if child.get(_XSI_NIL) == "true" or not (child.text or "").strip():
                return None
            return text_of((child.text or "").strip())
    return None


def _result_error(result: ElementTree.Element) -> SalesforceError:
    for child in result:
        if _local(child.tag) == "errors":
            fields = [f.text or "" for f in child if _local(f.tag) == "fields"]
            return error_from_record(
                {
                    "statusCode": _child_text(child, "statusCode"),
                    "message": _child_text(child, "message") or "convertLead failed",
                    "fields": fields,
                }
            )
    return error_from_record({"message": "convertLead failed without an error"})


def parse_convert_lead_response(body: bytes) -> list[ConversionResult | SalesforceError]:
    """One entry per ``leadConverts`` sent, in order: the result, or the error for that lead.
    A body that is not XML is an :class:`UnexpectedResponseError` (``ambiguous``: the call
    was a conversion, and it may have been applied)."""
    try:
        root = parse_xml(body)
    except ElementTree.ParseError as error:
        raise UnexpectedResponseError(
            f"convertLead: the answer is not XML ({error})", ambiguous=True
        ) from None
    out: list[ConversionResult | SalesforceError] = []
    for element in root.iter():
        if _local(element.tag) != "result":
            continue
        if _child_text(element, "success") != "true":
            out.append(_result_error(element))
            continue
        out.append(
            ConversionResult(
                lead_id=_child_text(element, "leadId") or "",
                account_id=_child_text(element, "accountId"),
                contact_id=_child_text(element, "contactId"),
                opportunity_id=_child_text(element, "opportunityId"),
            )
        )
    return out


def parse_limit_info_header(body: bytes) -> ApiUsage | None:
    """The SOAP ``LimitInfoHeader`` (type "API REQUESTS"), the SOAP twin of Sforce-Limit-Info."""
    try:
        root = parse_xml(body)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if _local(element.tag) == "limitInfo" and _child_text(element, "type") == "API REQUESTS":
            current, limit = _child_text(element, "current"), _child_text(element, "limit")
            if current and limit and _COUNT.fullmatch(current) and _COUNT.fullmatch(limit):
                return ApiUsage(api=Usage(int(current), int(limit)))
    return None
