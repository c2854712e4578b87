"""An unmodified third-party client (simple-salesforce, over https) works against the emulator."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from sfemulator import Emulator, EmulatorConfig


def lead_lifecycle(sf: Salesforce) -> dict[str, object]:
    created = sf.Lead.create({"LastName": "Lovelace", "Company": "Engines", "Email": "a@e.test"})
    found = sf.query(f"SELECT Id, Name, Company FROM Lead WHERE Id = '{created['id']}'")
    status = sf.Lead.update(created["id"], {"Company": "Analytical Engines"})
    record = sf.Lead.get(created["id"])
    upserted = sf.Lead.upsert(
        "Actionflows_Key__c/ticket-1", {"LastName": "Hopper", "Company": "Navy"}
    )
    try:
        sf.Lead.create({"LastName": "No company"})
    except SalesforceMalformedRequest as err:
        malformed = err.content[0]["errorCode"]
    sf.Lead.delete(created["id"])
    try:
        sf.Lead.get(created["id"])
    except SalesforceResourceNotFound:
        gone = True
    return {
        "created": created,
        "found": found,
        "update_status": status,
        "record": record,
        "upsert_status": upserted,
        "malformed": malformed,
        "gone": gone,
        "usage": sf.api_usage.get("api-usage"),
        "sandbox": sf.is_sandbox(),
        "accounts": sf.query_all("SELECT Id, Name FROM Account")["totalSize"],
        "lead_fields": len(sf.Lead.describe()["fields"]),
    }


async def test_simple_salesforce_crud_over_tls(tmp_path: Path) -> None:
    """simple-salesforce creates, queries, updates, upserts and deletes a Lead, pages query_all,
    describes and checks is_sandbox, all unchanged."""
    async with Emulator(EmulatorConfig(tls=True, seed=3)) as emu:
        assert emu.url.startswith("https://")
        cafile = tmp_path / "emulator-ca.pem"
        cafile.write_text(emu.tls_certificate_pem or "")
        session = requests.Session()
        session.verify = str(cafile)
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over verify
        for n in range(2500):  # more than one 2000-record batch, so query_all must page
            emu.insert("Account", {"Name": f"Account {n}"})
        sf = Salesforce(
            instance_url=emu.url,
            session_id=emu.issue_access_token(),
            version=emu.api_version,
            session=session,
        )
        outcome = await asyncio.to_thread(lead_lifecycle, sf)
        session.close()
    created = outcome["created"]
    assert created["success"] is True
    assert outcome["found"]["totalSize"] == 1
    assert outcome["found"]["records"][0]["Name"] == "Lovelace"
    assert outcome["update_status"] == 204
    assert outcome["record"]["Company"] == "Analytical Engines"
    assert outcome["upsert_status"] == 201
    assert outcome["malformed"] == "REQUIRED_FIELD_MISSING"
    assert outcome["gone"] is True
    assert outcome["sandbox"] is False
    assert outcome["accounts"] == 2500
    assert outcome["lead_fields"] > 30
    # simple-salesforce records Sforce-Limit-Info per object; sf.api_usage is from the query,
    # the second call made.
    assert (outcome["usage"].used, outcome["usage"].total) == (2, 15000)


async def test_tls_certificate_is_trusted_through_client_ssl_context() -> None:
    """With tls=True an aiohttp client trusting emu.client_ssl_context() reaches the org."""
    async with Emulator(EmulatorConfig(tls=True)) as emu, aiohttp.ClientSession() as http:
        context = emu.client_ssl_context()
        assert context is not None
        async with http.get(f"{emu.url}/services/data/", ssl=context) as resp:
            assert resp.status == 200
