"""The partner SOAP API at ``/services/Soap/u/{version}``, limited to ``convertLead``.

An OAuth access token is accepted as ``SessionHeader.sessionId`` (reference §4). Responses and
faults follow the partner WSDL: ``convertLeadResponse/result`` elements in WSDL order, a
``LimitInfoHeader``, and ``soapenv:Fault`` with an ``sf:`` faultcode and ``UnexpectedErrorFault``
detail, returned with HTTP 500 as Salesforce does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

from .convert import LeadConvert, LeadConvertResult, convert_lead
from .store import Store

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
CONTENT_TYPE = "text/xml; charset=utf-8"
MAX_CONVERTS = 200


@dataclass(frozen=True)
class SoapCall:
    session_id: str | None
    operation: str
    body: ET.Element


class SoapFault(Exception):
    def __init__(self, code: str, message: str, *, client: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client = client

    def xml(self) -> str:
        if self.client:
            return _envelope(
                "",
                f"<soapenv:Fault><faultcode>soapenv:Client</faultcode>"
                f"<faultstring>{escape(self.message)}</faultstring></soapenv:Fault>",
                partner_default=False,
            )
        return _envelope(
            "",
            (
                f"<soapenv:Fault><faultcode>sf:{self.code}</faultcode>"
                f"<faultstring>{self.code}: {escape(self.message)}</faultstring><detail>"
                '<sf:UnexpectedErrorFault xsi:type="sf:UnexpectedErrorFault">'
                f"<sf:exceptionCode>{self.code}</sf:exceptionCode>"
                f"<sf:exceptionMessage>{escape(self.message)}</sf:exceptionMessage>"
                "</sf:UnexpectedErrorFault></detail></soapenv:Fault>"
            ),
            partner_default=False,
        )


def parse_call(raw: bytes) -> SoapCall:
    """The session ID, operation name and operation element of a SOAP request."""
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise SoapFault("", "DOCTYPE is not allowed in SOAP requests", client=True)
    try:
        root = ET.fromstring(raw)  # noqa: S314 - DOCTYPE/ENTITY refused above
    except ET.ParseError as err:
        raise SoapFault("", f"Unable to parse the request envelope: {err}", client=True) from None
    if _local(root.tag) != "Envelope":
        raise SoapFault("", "Expected a SOAP Envelope", client=True)
    session = None
    for element in root.iter():
        if _local(element.tag) == "sessionId":
            session = (element.text or "").strip()
    body = next((c for c in root if _local(c.tag) == "Body"), None)
    operation = next(iter(body), None) if body is not None else None
    if operation is None:
        raise SoapFault("", "No operation in the SOAP Body", client=True)
    return SoapCall(session, _local(operation.tag), operation)


def handle(call: SoapCall, store: Store, limit_info: tuple[int, int]) -> str:
    """The response envelope for a call whose session the caller has checked, or ``SoapFault``.

    ``limit_info`` is (requests used, daily limit) for the ``LimitInfoHeader``.
    """
    if call.operation != "convertLead":
        raise SoapFault(
            "", f"No operation available for request {{{PARTNER}}}{call.operation}", client=True
        )
    converts = [_lead_convert(e) for e in call.body if _local(e.tag) == "leadConverts"]
    if not converts:
        raise SoapFault("INVALID_FIELD", "leadConverts must contain at least one LeadConvert")
    if len(converts) > MAX_CONVERTS:
        raise SoapFault("LIMIT_EXCEEDED", "Cannot convert more than 200 leads in one call")
    results = "".join(_result_xml(convert_lead(store, c)) for c in converts)
    current, limit = limit_info
    header = (
        "<LimitInfoHeader><limitInfo>"
        f"<current>{current}</current><limit>{limit}</limit><type>API REQUESTS</type>"
        "</limitInfo></LimitInfoHeader>"
    )
    return _envelope(header, f"<convertLeadResponse>{results}</convertLeadResponse>")


def _lead_convert(element: ET.Element) -> LeadConvert:
    values = {_local(child.tag): (child.text or "").strip() for child in element}

    def flag(name: str) -> bool:
        return values.get(name, "").lower() == "true"

    return LeadConvert(
        lead_id=values.get("leadId", ""),
        converted_status=values.get("convertedStatus") or None,
        account_id=values.get("accountId") or None,
        contact_id=values.get("contactId") or None,
        do_not_create_opportunity=flag("doNotCreateOpportunity"),
        opportunity_name=values.get("opportunityName") or None,
        opportunity_id=values.get("opportunityId") or None,
        overwrite_lead_source=flag("overwriteLeadSource"),
        owner_id=values.get("ownerId") or None,
    )


def _result_xml(result: LeadConvertResult) -> str:
    def value(name: str, text: str | None) -> str:
        return f'<{name} xsi:nil="true"/>' if text is None else f"<{name}>{escape(text)}</{name}>"

    errors = "".join(
        "<errors>"
        + "".join(f"<fields>{escape(f)}</fields>" for f in (e.fields or []))
        + f"<message>{escape(e.message)}</message><statusCode>{e.error_code}</statusCode>"
        "</errors>"
        for e in result.errors
    )
    return (
        "<result>"
        + value("accountId", result.account_id)
        + value("contactId", result.contact_id)
        + errors
        + value("leadId", result.lead_id)
        + value("opportunityId", result.opportunity_id)
        + f"<success>{'true' if result.success else 'false'}</success></result>"
    )


def _envelope(header: str, body: str, *, partner_default: bool = True) -> str:
    # Faults carry unqualified faultcode/faultstring, so they get no default namespace.
    default = f' xmlns="{PARTNER}"' if partner_default else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"{default} '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        + (f"<soapenv:Header>{header}</soapenv:Header>" if header else "")
        + f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
