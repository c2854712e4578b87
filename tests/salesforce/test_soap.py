"""The SOAP convertLead envelope: well-formed for any input, values intact, WSDL order kept."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from pipeline.ports import LeadConversion
from salesforce.errors import parse_xml
from salesforce.soap import convert_lead_envelope, parse_limit_info_header

# XML 1.0 cannot carry most control characters at all, escaped or not.
xml_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\x0b\x0c").filter(
        lambda c: c >= " " or c in "\t\n\r"
    ),
    max_size=30,
)
PARTNER = "{urn:partner.soap.sforce.com}"


@example("a\rb", "x\r\n", None, "Closed & <Won>", False)
@given(xml_text, xml_text, st.one_of(st.none(), xml_text), xml_text, st.booleans())
def test_envelope_round_trips(
    session: str, lead: str, account: str | None, status: str, skip_opp: bool
) -> None:
    """Whatever the values, the envelope parses and carries them unchanged, in WSDL order."""
    conversion = LeadConversion(lead, account_id=account, do_not_create_opportunity=skip_opp)
    root = parse_xml(convert_lead_envelope(session, [(conversion, status)]))
    assert root.findtext(f".//{PARTNER}sessionId") == session
    converts = root.find(f".//{PARTNER}leadConverts")
    assert converts is not None
    values = {child.tag.removeprefix(PARTNER): child.text or "" for child in converts}
    assert values.get("leadId", "") == lead
    assert values.get("convertedStatus", "") == status
    assert values.get("accountId") == (account or None)
    assert values["doNotCreateOpportunity"] == ("true" if skip_opp else "false")
    order = [child.tag.removeprefix(PARTNER) for child in converts]
    assert order == sorted(order)  # the partner WSDL lists LeadConvert's elements alphabetically


def test_limit_info_header() -> None:
    """The SOAP LimitInfoHeader 'API REQUESTS' entry is read as used/limit."""
    body = (
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns="urn:partner.soap.sforce.com"><soapenv:Header><LimitInfoHeader><limitInfo>'
        b"<current>42</current><limit>15000</limit><type>API REQUESTS</type>"
        b"</limitInfo></LimitInfoHeader></soapenv:Header><soapenv:Body/></soapenv:Envelope>"
    )
    usage = parse_limit_info_header(body)
    assert usage is not None
    assert usage.api is not None
    assert (usage.api.used, usage.api.limit) == (42, 15000)
    assert parse_limit_info_header(b"not xml") is None
