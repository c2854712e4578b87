"""Lead conversion through SOAP convertLead, the only standard route real orgs offer."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import aiohttp
from emulator_helpers import Api

NS = {"s": "http://schemas.xmlsoap.org/soap/envelope/", "p": "urn:partner.soap.sforce.com"}
LEAD = {
    "FirstName": "Ada",
    "LastName": "Lovelace",
    "Company": "Analytical Engines",
    "Email": "ada@engines.test",
    "Phone": "+44 1",
    "LeadSource": "Web",
}


def envelope(session: str, **convert: str) -> str:
    fields = "".join(f"<urn:{k}>{v}</urn:{k}>" for k, v in convert.items())
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader>'
        f"<urn:sessionId>{session}</urn:sessionId></urn:SessionHeader></soapenv:Header>"
        f"<soapenv:Body><urn:convertLead><urn:leadConverts>{fields}</urn:leadConverts>"
        "</urn:convertLead></soapenv:Body></soapenv:Envelope>"
    )


async def soap(api: Api, body: str) -> tuple[int, ET.Element, str]:
    url = f"{api.emu.url}/services/Soap/u/{api.emu.api_version}"
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "convertLead"}
    async with api.http.post(url, data=body, headers=headers) as resp:
        text = await resp.text()
        return resp.status, ET.fromstring(text), resp.headers["Content-Type"]  # noqa: S314 - our own emulator's reply


def result_of(root: ET.Element) -> dict[str, str | None]:
    result = root.find(".//p:convertLeadResponse/p:result", NS)
    assert result is not None
    return {
        child.tag.split("}")[1]: child.text
        for child in result
        if child.tag.endswith(("Id", "success"))
    }


async def test_convert_lead_creates_account_contact_and_opportunity(api: Api) -> None:
    """convertLead creates the three records and marks the lead converted with their ids."""
    lead_id = await api.create("Lead", LEAD)
    status, root, content_type = await soap(
        api, envelope(api.token, leadId=lead_id, convertedStatus="Closed - Converted")
    )
    assert status == 200
    assert content_type.startswith("text/xml")
    result = result_of(root)
    assert result["success"] == "true"
    assert result["leadId"] == lead_id
    lead = api.emu.records("Lead")[0]
    assert lead["IsConverted"] is True
    assert lead["Status"] == "Closed - Converted"
    assert lead["ConvertedAccountId"] == result["accountId"]
    assert lead["ConvertedContactId"] == result["contactId"]
    assert lead["ConvertedOpportunityId"] == result["opportunityId"]
    assert lead["ConvertedDate"]
    contact = api.emu.records("Contact")[0]
    assert (contact["LastName"], contact["Email"], contact["AccountId"]) == (
        "Lovelace",
        "ada@engines.test",
        result["accountId"],
    )
    assert api.emu.records("Account")[0]["Name"] == "Analytical Engines"
    assert api.emu.records("Opportunity")[0]["StageName"] == "Prospecting"
    assert root.find(".//p:LimitInfoHeader/p:limitInfo/p:type", NS).text == "API REQUESTS"


async def test_convert_into_existing_account_without_opportunity(api: Api) -> None:
    """With accountId and doNotCreateOpportunity, the lead merges into that account only."""
    account_id = await api.create("Account", {"Name": "Existing Ltd"})
    lead_id = await api.create("Lead", LEAD)
    _, root, _ = await soap(
        api,
        envelope(
            api.token,
            leadId=lead_id,
            accountId=account_id,
            convertedStatus="Closed - Converted",
            doNotCreateOpportunity="true",
        ),
    )
    result = result_of(root)
    assert result["accountId"] == account_id
    assert result["opportunityId"] is None
    assert api.emu.records("Opportunity") == []
    assert api.emu.records("Account")[0]["Name"] == "Existing Ltd"
    assert api.emu.records("Account")[0]["Phone"] == "+44 1"  # empty fields are filled


async def test_convert_lead_rules_fail_per_lead(api: Api) -> None:
    """A non-converted status, an opportunity name with doNotCreateOpportunity, fail cleanly."""
    lead_id = await api.create("Lead", LEAD)
    _, root, _ = await soap(
        api, envelope(api.token, leadId=lead_id, convertedStatus="Working - Contacted")
    )
    assert root.find(".//p:result/p:success", NS).text == "false"
    assert root.find(".//p:result/p:errors/p:statusCode", NS).text == "INVALID_STATUS"
    _, root, _ = await soap(
        api,
        envelope(
            api.token,
            leadId=lead_id,
            convertedStatus="Closed - Converted",
            doNotCreateOpportunity="true",
            opportunityName="Deal",
        ),
    )
    assert root.find(".//p:result/p:errors/p:message", NS).text == (
        "If doNotCreateOpportunity is true, opportunityName and opportunityId must be null"
    )
    assert api.emu.records("Account") == []
    assert api.emu.records("Lead")[0]["IsConverted"] is False


async def test_converted_lead_cannot_be_updated_or_converted_again(api: Api) -> None:
    """After conversion PATCH is CANNOT_UPDATE_CONVERTED_LEAD and a second convert fails."""
    lead_id = await api.create("Lead", LEAD)
    await soap(api, envelope(api.token, leadId=lead_id, convertedStatus="Closed - Converted"))
    status, body, _ = await api.call("PATCH", f"/sobjects/Lead/{lead_id}", json={"Phone": "2"})
    assert (status, body) == (
        400,
        [
            {
                "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD",
                "message": "cannot reference converted lead",
            }
        ],
    )
    _, root, _ = await soap(
        api, envelope(api.token, leadId=lead_id, convertedStatus="Closed - Converted")
    )
    assert root.find(".//p:result/p:errors/p:statusCode", NS).text == (
        "CANNOT_UPDATE_CONVERTED_LEAD"
    )


async def test_invalid_session_is_a_soap_fault(api: Api) -> None:
    """A bad SessionHeader answers HTTP 500 with an sf:INVALID_SESSION_ID fault."""
    status, root, _ = await soap(
        api, envelope("not-a-session", leadId="x", convertedStatus="Closed - Converted")
    )
    assert status == 500
    fault = root.find(".//s:Fault", NS)
    assert fault is not None
    assert fault.find("faultcode").text == "sf:INVALID_SESSION_ID"
    assert fault.find("faultstring").text == (
        "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session"
    )


async def test_rest_convert_lead_action_does_not_exist(
    api: Api, http: aiohttp.ClientSession
) -> None:
    """/actions/standard/convertLead is 404 as on real orgs, and absent from the action list."""
    lead_id = await api.create("Lead", LEAD)
    status, body, _ = await api.call(
        "POST", "/actions/standard/convertLead", json={"inputs": [{"leadId": lead_id}]}
    )
    assert status == 404
    assert body[0]["errorCode"] == "NOT_FOUND"
    _, listing, _ = await api.call("GET", "/actions/standard")
    assert "convertLead" not in {a["name"] for a in listing["actions"]}
    assert api.emu.records("Lead")[0]["IsConverted"] is False


async def test_convert_into_existing_contact_and_opportunity_with_owner(api: Api) -> None:
    """contactId/opportunityId attach the lead to existing records; overwriteLeadSource applies."""
    account_id = await api.create("Account", {"Name": "Existing Ltd"})
    contact_id = await api.create(
        "Contact", {"LastName": "Lovelace", "AccountId": account_id, "LeadSource": "Other"}
    )
    opportunity_id = await api.create(
        "Opportunity",
        {
            "Name": "Deal",
            "StageName": "Prospecting",
            "CloseDate": "2026-12-31",
            "AccountId": account_id,
        },
    )
    lead_id = await api.create("Lead", {**LEAD, "Email": "ada2@engines.test"})
    _, root, _ = await soap(
        api,
        envelope(
            api.token,
            leadId=lead_id,
            convertedStatus="Closed - Converted",
            accountId=account_id,
            contactId=contact_id,
            opportunityId=opportunity_id,
            overwriteLeadSource="true",
            ownerId=api.emu.credentials.user_id,
        ),
    )
    result = result_of(root)
    assert (result["success"], result["contactId"], result["opportunityId"]) == (
        "true",
        contact_id,
        opportunity_id,
    )
    assert api.emu.records("Contact")[0]["LeadSource"] == "Web"
    assert len(api.emu.records("Opportunity")) == 1
