"""The REST data API over real HTTP: versions, limits header, describe, CRUD, upsert, query."""

from __future__ import annotations

from typing import Any

import aiohttp
from emulator_helpers import Api

from sfemulator import Emulator, EmulatorConfig, ValidationRule

LEAD = {"LastName": "Lovelace", "FirstName": "Ada", "Company": "Analytical Engines"}


async def test_versions_need_no_auth_and_carry_no_limit_header(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """GET /services/data/ lists versions oldest first, without auth or Sforce-Limit-Info."""
    async with http.get(f"{emu.url}/services/data/") as resp:
        body = await resp.json()
        assert resp.status == 200
        assert "Sforce-Limit-Info" not in resp.headers
    assert body[0] == {"label": "Summer '14", "url": "/services/data/v31.0", "version": "31.0"}
    assert body[-1]["version"] == emu.api_version
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in body
    assert emu.call_counts()["api_calls"] == 0


async def test_counted_responses_carry_usage_and_json_content_type(api: Api) -> None:
    """Every data-API response has Sforce-Limit-Info used/limit and Salesforce's Content-Type."""
    status, body, headers = await api.call("GET", "/limits")
    assert status == 200
    assert headers["Sforce-Limit-Info"] == "api-usage=1/15000"
    assert headers["Content-Type"] == "application/json;charset=UTF-8"
    assert body["DailyApiRequests"] == {"Max": 15000, "Remaining": 14999}
    assert "Retry-After" not in headers
    _, _, headers = await api.call("GET", "/sobjects/Lead/describe")
    assert headers["Sforce-Limit-Info"] == "api-usage=2/15000"


async def test_latest_alias_and_malformed_json(api: Api) -> None:
    """/services/data/latest serves the newest version; a non-JSON body is JSON_PARSER_ERROR."""
    status, body, _ = await api.call("GET", f"{api.emu.url}/services/data/latest/")
    assert (status, body["sobjects"]) == (200, f"/services/data/v{api.emu.api_version}/sobjects")
    async with api.http.post(
        f"{api.base}/sobjects/Lead/",
        data=b"{not json",
        headers=api.headers({"Content-Type": "application/json"}),
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())[0]["errorCode"] == "JSON_PARSER_ERROR"


async def test_unknown_version_and_resource_are_not_found(api: Api) -> None:
    """A version the org does not serve and an unknown path answer 404 NOT_FOUND."""
    not_found = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
    assert (await api.call("GET", f"{api.emu.url}/services/data/v99.0/limits"))[:2] == (
        404,
        not_found,
    )
    assert (await api.call("GET", "/nothing/here"))[:2] == (404, not_found)
    assert (await api.call("GET", "/sobjects/Widget__c/describe"))[:2] == (404, not_found)


async def test_describe_reports_required_fields_prefixes_and_external_ids(api: Api) -> None:
    """Describe carries keyPrefix, the create-required convention and the ext-id field."""
    expected_required = {
        "Lead": ["LastName", "Company"],
        "Contact": ["LastName"],
        "Account": ["Name"],
        "Opportunity": ["Name", "StageName", "CloseDate"],
        "Case": [],
        "Campaign": ["Name"],
    }
    prefixes = {
        "Lead": "00Q",
        "Contact": "003",
        "Account": "001",
        "Opportunity": "006",
        "Case": "500",
        "Campaign": "701",
    }
    for sobject, required in expected_required.items():
        status, body, _ = await api.call("GET", f"/sobjects/{sobject}/describe")
        assert status == 200
        assert body["keyPrefix"] == prefixes[sobject]
        fields = {f["name"]: f for f in body["fields"]}
        assert [
            f["name"]
            for f in body["fields"]
            if f["createable"] and not f["nillable"] and not f["defaultedOnCreate"]
        ] == required
        ext = fields["Actionflows_Key__c"]
        assert (ext["externalId"], ext["unique"], ext["custom"]) == (True, True, True)
    _, lead, _ = await api.call("GET", "/sobjects/Lead/describe")
    status_field = next(f for f in lead["fields"] if f["name"] == "Status")
    assert status_field["restrictedPicklist"] is True
    assert [p["value"] for p in status_field["picklistValues"] if p["defaultValue"]] == [
        "Open - Not Contacted"
    ]
    _, everything, _ = await api.call("GET", "/sobjects/")
    assert everything["maxBatchSize"] == 200
    assert {"CampaignMember", "LeadStatus", "User", "Organization"} <= {
        s["name"] for s in everything["sobjects"]
    }


async def test_create_get_update_delete_round_trip(api: Api) -> None:
    """Create 201, GET with attributes, PATCH 204, DELETE 204, then NOT_FOUND/ENTITY_IS_DELETED."""
    status, body, _ = await api.call("POST", "/sobjects/Lead/", json=LEAD)
    assert status == 201
    lead_id = body["id"]
    assert body == {"id": lead_id, "success": True, "errors": []}
    assert lead_id.startswith("00Q")
    assert len(lead_id) == 18
    status, record, _ = await api.call("GET", f"/sobjects/Lead/{lead_id[:15]}")
    assert status == 200
    assert record["attributes"] == {
        "type": "Lead",
        "url": f"/services/data/v{api.emu.api_version}/sobjects/Lead/{lead_id}",
    }
    assert (record["Id"], record["Name"], record["Status"]) == (
        lead_id,
        "Ada Lovelace",
        "Open - Not Contacted",
    )
    assert record["Email"] is None
    assert record["CreatedDate"].endswith("+0000")
    assert record["OwnerId"] == api.emu.credentials.user_id
    status, partial, _ = await api.call(
        "GET", f"/sobjects/Lead/{lead_id}", params={"fields": "Company,lastname"}
    )
    assert list(partial) == ["attributes", "Company", "LastName"]
    status, body, _ = await api.call(
        "PATCH", f"/sobjects/Lead/{lead_id.lower()}", json={"Phone": "+44 20 7946 0000"}
    )
    assert (status, body) == (204, None)
    assert api.emu.records("Lead")[0]["Phone"] == "+44 20 7946 0000"
    assert (await api.call("DELETE", f"/sobjects/Lead/{lead_id}"))[:2] == (204, None)
    status, body, _ = await api.call("GET", f"/sobjects/Lead/{lead_id}")
    assert (status, body[0]["errorCode"]) == (404, "NOT_FOUND")
    for method, payload in (("PATCH", {"Phone": "1"}), ("DELETE", None)):
        status, body, _ = await api.call(method, f"/sobjects/Lead/{lead_id}", json=payload)
        assert (status, body[0]["errorCode"]) == (404, "ENTITY_IS_DELETED")
    assert api.emu.records("Lead") == []
    assert api.emu.all_records("Lead")[0]["IsDeleted"] is True


async def error_of(api: Api, method: str, path: str, payload: Any) -> tuple[int, dict[str, Any]]:
    status, body, _ = await api.call(method, path, json=payload)
    assert isinstance(body, list), body
    return status, body[0]


async def test_validation_errors_match_the_reference(api: Api) -> None:
    """Required, length, picklist, read-only, unknown-field and Id-in-body errors (§6, §9)."""
    create = ("POST", "/sobjects/Lead/")
    assert await error_of(api, *create, {"FirstName": "x"}) == (
        400,
        {
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName", "Company"],
            "message": "Required fields are missing: [LastName, Company]",
        },
    )
    assert await error_of(api, *create, {**LEAD, "LastName": "x" * 81}) == (
        400,
        {
            "errorCode": "STRING_TOO_LONG",
            "fields": ["LastName"],
            "message": f"Last Name: data value too large: {'x' * 81} (max length=80)",
        },
    )
    assert await error_of(api, *create, {**LEAD, "Status": "Maybe"}) == (
        400,
        {
            "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "fields": ["Status"],
            "message": "Status: bad value for restricted picklist field: Maybe",
        },
    )
    status, err = await error_of(api, *create, {**LEAD, "IsConverted": True})
    assert (status, err["errorCode"], err["fields"]) == (
        400,
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        ["IsConverted"],
    )
    assert err["message"].startswith("Unable to create/update fields: IsConverted.")
    assert await error_of(api, *create, {**LEAD, "Shoe_Size__c": 9}) == (
        400,
        {
            "errorCode": "INVALID_FIELD",
            "message": "No such column 'Shoe_Size__c' on sobject of type Lead",
        },
    )
    assert await error_of(api, *create, {**LEAD, "Id": "00Q000000000000AAA"}) == (
        400,
        {
            "errorCode": "INVALID_FIELD",
            "message": "The Id field should not be specified in the sobject data.",
        },
    )
    status, err = await error_of(api, "POST", "/sobjects/Case/", {"CaseNumber": "1"})
    assert err["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    status, err = await error_of(
        api, "POST", "/sobjects/Contact/", {"LastName": "x", "AccountId": "nope"}
    )
    assert (status, err["errorCode"]) == (400, "MALFORMED_ID")
    status, err = await error_of(api, "GET", "/sobjects/Lead/001000000000000AAA", None)
    assert (status, err["errorCode"]) == (400, "MALFORMED_ID")
    status, err = await error_of(api, "PUT", "/sobjects/Lead/00Q000000000000AAA", {})
    assert (status, err["errorCode"]) == (405, "METHOD_NOT_ALLOWED")


async def test_case_numbers_are_auto_numbered(api: Api) -> None:
    """CaseNumber is assigned on create, sequential and zero-padded; Status defaults to New."""
    first = await api.create("Case", {"Subject": "Printer on fire"})
    second = await api.create("Case", {"Subject": "Printer still on fire"})
    cases = {r["Id"]: r for r in api.emu.records("Case")}
    assert cases[first]["Status"] == "New"
    assert int(cases[second]["CaseNumber"]) == int(cases[first]["CaseNumber"]) + 1
    assert len(cases[first]["CaseNumber"]) == 8


async def test_upsert_by_external_id(api: Api) -> None:
    """201 created:true, then 200 created:false; updateOnly 404; unknown field 404; v45 204."""
    path = "/sobjects/Lead/Actionflows_Key__c/ticket-42"
    status, body, _ = await api.call("PATCH", path, json=LEAD)
    assert status == 201
    assert body == {"id": body["id"], "success": True, "errors": [], "created": True}
    status, again, _ = await api.call("PATCH", path, json={"Title": "Countess"})
    assert (status, again) == (
        200,
        {"id": body["id"], "success": True, "errors": [], "created": False},
    )
    assert len(api.emu.records("Lead")) == 1
    status, _, _ = await api.call(
        "PATCH", "/sobjects/Lead/Actionflows_Key__c/other", json=LEAD, params={"updateOnly": "true"}
    )
    assert status == 404
    status, err, _ = await api.call("PATCH", "/sobjects/Lead/Favourite__c/x", json=LEAD)
    assert (status, err[0]["errorCode"]) == (404, "NOT_FOUND")
    old = f"{api.emu.url}/services/data/v45.0{path}"
    assert (await api.call("PATCH", old, json={"Title": "Dr"}))[:2] == (204, None)
    status, record, _ = await api.call("GET", path)
    assert (status, record["Title"]) == (200, "Dr")


async def test_upsert_with_several_matches_is_300_with_urls(api: Api) -> None:
    """Two records sharing an external ID value make upsert answer 300 with their URLs."""
    ids = [api.emu.insert("Lead", {**LEAD, "Actionflows_Key__c": "dup"}) for _ in range(2)]
    status, body, _ = await api.call("PATCH", "/sobjects/Lead/Actionflows_Key__c/dup", json=LEAD)
    assert status == 300
    assert body == [f"/services/data/v{api.emu.api_version}/sobjects/Lead/{i}" for i in ids]


async def test_unique_external_id_rejects_a_second_record(api: Api) -> None:
    """Creating a second record with the same unique external ID is DUPLICATE_VALUE."""
    first = await api.create("Account", {"Name": "A", "Actionflows_Key__c": "k"})
    status, err = await error_of(
        api, "POST", "/sobjects/Account/", {"Name": "B", "Actionflows_Key__c": "k"}
    )
    assert (status, err["errorCode"]) == (400, "DUPLICATE_VALUE")
    assert first in err["message"]


async def test_duplicate_rules_block_unless_allow_save(api: Api) -> None:
    """A second Lead with the same Email is DUPLICATES_DETECTED unless allowSave=true."""
    await api.create("Lead", {**LEAD, "Email": "ada@example.com"})
    status, body, _ = await api.call(
        "POST", "/sobjects/Lead/", json={**LEAD, "Email": "ADA@example.com"}
    )
    assert status == 400
    assert body[0]["errorCode"] == "DUPLICATES_DETECTED"
    assert body[0]["message"] == "Use one of these records?"
    result = body[0]["duplicateResult"]
    assert result["allowSave"] is True
    assert result["duplicateRule"] == "Standard_Lead_Duplicate_Rule"
    assert result["matchResults"][0]["matchRecords"][0]["record"]["Id"]
    status, _, _ = await api.call(
        "POST",
        "/sobjects/Lead/",
        json={**LEAD, "Email": "ada@example.com"},
        headers={"Sforce-Duplicate-Rule-Header": "allowSave=true"},
    )
    assert status == 201


async def test_query_pages_with_next_records_url(http: aiohttp.ClientSession) -> None:
    """A 450-row result comes back in batchSize pages linked by nextRecordsUrl until done."""
    async with Emulator(EmulatorConfig(seed=11)) as emu:
        api = Api(emu, http, emu.issue_access_token())
        for n in range(450):
            emu.insert("Account", {"Name": f"Account {n:03d}"})
        status, page, _ = await api.query(
            "SELECT Name FROM Account ORDER BY Name",
            headers={"Sforce-Query-Options": "batchSize=200"},
        )
        assert (status, page["totalSize"], page["done"], len(page["records"])) == (
            200,
            450,
            False,
            200,
        )
        assert page["nextRecordsUrl"].startswith(f"/services/data/v{emu.api_version}/query/0r8")
        names = [r["Name"] for r in page["records"]]
        while not page["done"]:
            status, page, _ = await api.call("GET", page["nextRecordsUrl"])
            assert status == 200
            names += [r["Name"] for r in page["records"]]
        assert names == [f"Account {n:03d}" for n in range(450)]
        status, whole, _ = await api.query("SELECT Name FROM Account")
        assert (whole["done"], len(whole["records"])) == (True, 450)
        status, err, _ = await api.call("GET", "/query/0r8000000000000000-200")
        assert (status, err[0]["errorCode"]) == (400, "INVALID_QUERY_LOCATOR")


async def test_query_errors_over_http(api: Api) -> None:
    """A bad column is 400 INVALID_FIELD; a missing q is MALFORMED_QUERY."""
    status, body, headers = await api.query("SELECT Nope FROM Lead")
    assert status == 400
    assert body[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Nope' on entity 'Lead'" in body[0]["message"]
    assert "Sforce-Limit-Info" in headers
    status, body, _ = await api.call("GET", "/query")
    assert (status, body[0]["errorCode"]) == (400, "MALFORMED_QUERY")


async def test_query_all_includes_deleted_records(api: Api) -> None:
    """queryAll returns soft-deleted rows with IsDeleted=true; query does not."""
    lead_id = await api.create("Lead", LEAD)
    await api.call("DELETE", f"/sobjects/Lead/{lead_id}")
    soql = "SELECT Id, IsDeleted FROM Lead"
    assert (await api.query(soql))[1]["totalSize"] == 0
    status, body, _ = await api.call("GET", "/queryAll", params={"q": soql})
    assert (status, body["records"][0]["IsDeleted"]) == (200, True)


async def test_lead_status_and_organization_are_queryable(api: Api) -> None:
    """The converted LeadStatus and the Organization row are there, as real orgs have them."""
    _, body, _ = await api.query("SELECT MasterLabel FROM LeadStatus WHERE IsConverted = true")
    assert [r["MasterLabel"] for r in body["records"]] == ["Closed - Converted"]
    _, org, _ = await api.query("SELECT Id, IsSandbox, OrganizationType FROM Organization")
    assert org["records"][0]["Id"] == api.emu.credentials.org_id
    assert org["records"][0]["IsSandbox"] is False


async def test_deleting_an_account_takes_its_contacts_and_opportunities(api: Api) -> None:
    """Account delete cascades to contacts and opportunities, all visible to queryAll."""
    account_id = await api.create("Account", {"Name": "Acme"})
    await api.create("Contact", {"LastName": "Doe", "AccountId": account_id})
    await api.create(
        "Opportunity",
        {
            "Name": "Deal",
            "StageName": "Prospecting",
            "CloseDate": "2026-12-31",
            "AccountId": account_id,
        },
    )
    assert (await api.call("DELETE", f"/sobjects/Account/{account_id}"))[0] == 204
    assert api.emu.records("Contact") == []
    assert api.emu.records("Opportunity") == []
    assert all(r["IsDeleted"] for r in api.emu.all_records("Contact"))


async def test_platform_refuses_some_deletes(api: Api) -> None:
    """A contact on a case, or an account with a Closed Won opportunity, is DELETE_FAILED."""
    account_id = await api.create("Account", {"Name": "Acme"})
    contact_id = await api.create("Contact", {"LastName": "Doe"})
    await api.create("Case", {"Subject": "help", "ContactId": contact_id})
    status, err = await error_of(api, "DELETE", f"/sobjects/Contact/{contact_id}", None)
    assert (status, err["errorCode"]) == (400, "DELETE_FAILED")
    await api.create(
        "Opportunity",
        {
            "Name": "Won",
            "StageName": "Closed Won",
            "CloseDate": "2026-01-31",
            "AccountId": account_id,
        },
    )
    status, err = await error_of(api, "DELETE", f"/sobjects/Account/{account_id}", None)
    assert (status, err["errorCode"]) == (400, "DELETE_FAILED")
    assert "closed won" in err["message"]
    assert len(api.emu.records("Opportunity")) == 1


async def test_validation_rules_fail_with_the_admins_message(http: aiohttp.ClientSession) -> None:
    """A configured validation rule gives FIELD_CUSTOM_VALIDATION_EXCEPTION at its field."""
    rule = ValidationRule(
        "Case", lambda r: r.get("Origin") is None, "Pick a case origin.", field="Origin"
    )
    async with Emulator(EmulatorConfig(validation_rules=(rule,))) as emu:
        api = Api(emu, http, emu.issue_access_token())
        assert await error_of(api, "POST", "/sobjects/Case/", {"Subject": "x"}) == (
            400,
            {
                "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "message": "Pick a case origin.",
                "fields": ["Origin"],
            },
        )
        assert (await api.call("POST", "/sobjects/Case/", json={"Subject": "x", "Origin": "Web"}))[
            0
        ] == 201


async def test_variable_batch_size_still_pages_everything(http: aiohttp.ClientSession) -> None:
    """With variable_batch_size pages shrink below batchSize, and paging still returns all."""
    async with Emulator(EmulatorConfig(variable_batch_size=True)) as emu:
        api = Api(emu, http, emu.issue_access_token())
        for n in range(700):
            emu.insert("Account", {"Name": f"A{n:03d}"})
        _, page, _ = await api.query(
            "SELECT Name FROM Account", headers={"Sforce-Query-Options": "batchSize=400"}
        )
        sizes, names = [len(page["records"])], [r["Name"] for r in page["records"]]
        while not page["done"]:
            _, page, _ = await api.call("GET", page["nextRecordsUrl"])
            sizes.append(len(page["records"]))
            names += [r["Name"] for r in page["records"]]
        assert names == [f"A{n:03d}" for n in range(700)]
        assert all(200 <= size <= 400 for size in sizes[:-1])
        assert len(sizes) >= 2


async def test_sessions_can_be_made_to_die_after_n_calls(http: aiohttp.ClientSession) -> None:
    """token_max_calls=2: the third call with the same token is 401 INVALID_SESSION_ID."""
    async with Emulator(EmulatorConfig(token_max_calls=2)) as emu:
        api = Api(emu, http, emu.issue_access_token())
        assert [(await api.call("GET", "/limits"))[0] for _ in range(3)] == [200, 200, 401]


async def test_parents_can_be_referenced_by_external_id(api: Api) -> None:
    """{"Account": {"Actionflows_Key__c": k}} sets AccountId; an unknown key is INVALID_FIELD."""
    account_id = await api.create("Account", {"Name": "Acme", "Actionflows_Key__c": "acme"})
    status, _, _ = await api.call(
        "PATCH",
        "/sobjects/Contact/Actionflows_Key__c/c-1",
        json={"LastName": "Doe", "Account": {"Actionflows_Key__c": "acme"}},
    )
    assert status == 201
    assert api.emu.records("Contact")[0]["AccountId"] == account_id
    status, err = await error_of(
        api,
        "POST",
        "/sobjects/Contact/",
        {"LastName": "Roe", "Account": {"Actionflows_Key__c": "nope"}},
    )
    assert (status, err["errorCode"]) == (400, "INVALID_FIELD")
    assert err["message"] == (
        "Foreign key external ID: nope not found for field Actionflows_Key__c in entity Account"
    )
