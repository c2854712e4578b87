"""sObject Collections and Composite: per-record results, allOrNone rollback, references."""

from __future__ import annotations

from typing import Any

from emulator_helpers import Api

ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the "
    "request was using AllOrNone header",
    "fields": [],
}


def account(name: str | None) -> dict[str, Any]:
    record: dict[str, Any] = {"attributes": {"type": "Account"}}
    if name is not None:
        record["Name"] = name
    return record


async def test_collection_create_reports_each_record_in_order(api: Api) -> None:
    """Without allOrNone, valid records are saved and failures carry statusCode errors."""
    status, body, headers = await api.call(
        "POST",
        "/composite/sobjects",
        json={"allOrNone": False, "records": [account("A"), account(None), account("C")]},
    )
    assert status == 200
    assert [r["success"] for r in body] == [True, False, True]
    assert body[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Name]",
                "fields": ["Name"],
            }
        ],
    }
    assert sorted(r["Name"] for r in api.emu.records("Account")) == ["A", "C"]
    assert headers["Sforce-Limit-Info"] == "api-usage=1/15000"


async def test_collection_all_or_none_rolls_everything_back(api: Api) -> None:
    """With allOrNone one failure rolls back the valid records too (ROLLED_BACK errors)."""
    status, body, _ = await api.call(
        "POST",
        "/composite/sobjects",
        json={"allOrNone": True, "records": [account("A"), account(None)]},
    )
    assert status == 200
    assert body[0] == {"success": False, "errors": [ROLLED_BACK]}
    assert body[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert api.emu.records("Account") == []


async def test_collection_update_upsert_retrieve_delete(api: Api) -> None:
    """PATCH by id, upsert by external id (created flags), GET ?ids, DELETE ?ids."""
    first = await api.create("Lead", {"LastName": "A", "Company": "X"})
    _, body, _ = await api.call(
        "PATCH",
        "/composite/sobjects",
        json={
            "records": [
                {"attributes": {"type": "Lead"}, "id": first, "Title": "CEO"},
                {"attributes": {"type": "Lead"}, "Title": "no id"},
            ]
        },
    )
    assert body[0] == {"id": first, "success": True, "errors": []}
    assert body[1]["errors"][0] == {
        "statusCode": "MISSING_ARGUMENT",
        "message": "Id not specified in an update call",
        "fields": [],
    }
    _, upserted, _ = await api.call(
        "PATCH",
        "/composite/sobjects/Lead/Actionflows_Key__c",
        json={
            "records": [
                {
                    "attributes": {"type": "Lead"},
                    "Actionflows_Key__c": "k1",
                    "LastName": "B",
                    "Company": "Y",
                },
                {"attributes": {"type": "Lead"}, "Actionflows_Key__c": "k1", "Title": "again"},
            ]
        },
    )
    assert [(r["success"], r["created"]) for r in upserted] == [(True, True), (True, False)]
    ids = f"{first},{upserted[0]['id']},00Q000000000000AAA"
    _, records, _ = await api.call(
        "GET", "/composite/sobjects/Lead", params={"ids": ids, "fields": "Id,Title"}
    )
    assert [r and r["Title"] for r in records] == ["CEO", "again", None]
    _, deleted, _ = await api.call(
        "DELETE", "/composite/sobjects", params={"ids": f"{first},{first}", "allOrNone": "false"}
    )
    assert deleted[0] == {"id": first, "success": True, "errors": []}
    assert deleted[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


async def test_collection_limits(api: Api) -> None:
    """More than 200 records is a 400 for the whole request; a record without type fails."""
    status, body, _ = await api.call(
        "POST", "/composite/sobjects", json={"records": [account(str(n)) for n in range(201)]}
    )
    assert (status, body[0]["errorCode"]) == (400, "EXCEEDED_ID_LIMIT")
    status, body, _ = await api.call(
        "POST", "/composite/sobjects", json={"records": [{"Name": "untyped"}]}
    )
    assert body[0]["errors"][0] == {
        "statusCode": "INVALID_TYPE",
        "message": "Must send a concrete entity type.",
        "fields": [],
    }


def sub(method: str, url: str, ref: str, body: Any = None) -> dict[str, Any]:
    entry = {"method": method, "url": url, "referenceId": ref}
    if body is not None:
        entry["body"] = body
    return entry


async def test_composite_chains_references_and_counts_one_call(api: Api) -> None:
    """@{ref.id} feeds later subrequests; the whole composite is one API call."""
    v = f"/services/data/v{api.emu.api_version}"
    status, body, headers = await api.call(
        "POST",
        "/composite",
        json={
            "compositeRequest": [
                sub("POST", f"{v}/sobjects/Account", "acct", {"Name": "Acme"}),
                sub(
                    "POST",
                    f"{v}/sobjects/Contact",
                    "person",
                    {"LastName": "Doe", "AccountId": "@{acct.id}"},
                ),
                sub("GET", f"{v}/sobjects/Contact/@{{person.id}}?fields=AccountId", "check"),
                sub("GET", f"{v}/query?q=SELECT+Id+FROM+Contact", "q"),
                sub(
                    "PATCH", f"{v}/sobjects/Contact/@{{q.records[0].Id}}", "upd", {"Title": "Boss"}
                ),
            ]
        },
    )
    assert status == 200
    responses = body["compositeResponse"]
    assert [r["httpStatusCode"] for r in responses] == [201, 201, 200, 200, 204]
    account_id = responses[0]["body"]["id"]
    assert responses[0]["httpHeaders"]["Location"] == f"{v}/sobjects/Account/{account_id}"
    assert responses[2]["body"]["AccountId"] == account_id
    assert api.emu.records("Contact")[0]["Title"] == "Boss"
    assert headers["Sforce-Limit-Info"] == "api-usage=1/15000"


async def test_composite_all_or_none_rolls_back_and_halts(api: Api) -> None:
    """With allOrNone a failure keeps its error, and every other subrequest is PROCESSING_HALTED."""
    v = f"/services/data/v{api.emu.api_version}"
    status, body, _ = await api.call(
        "POST",
        "/composite",
        json={
            "allOrNone": True,
            "compositeRequest": [
                sub("POST", f"{v}/sobjects/Account", "ok", {"Name": "Acme"}),
                sub("POST", f"{v}/sobjects/Contact", "bad", {"FirstName": "no last name"}),
                sub("POST", f"{v}/sobjects/Account", "later", {"Name": "Never"}),
            ],
        },
    )
    assert status == 200
    halted = [
        {
            "errorCode": "PROCESSING_HALTED",
            "message": "The transaction was rolled back since another operation in the same "
            "transaction failed.",
        }
    ]
    responses = body["compositeResponse"]
    assert [(r["referenceId"], r["httpStatusCode"]) for r in responses] == [
        ("ok", 400),
        ("bad", 400),
        ("later", 400),
    ]
    assert responses[0]["body"] == halted
    assert responses[2]["body"] == halted
    assert responses[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert api.emu.records("Account") == []


async def test_composite_without_all_or_none_skips_dependents(api: Api) -> None:
    """Without allOrNone only subrequests referring to the failed one are skipped."""
    v = f"/services/data/v{api.emu.api_version}"
    _, body, _ = await api.call(
        "POST",
        "/composite",
        json={
            "compositeRequest": [
                sub("POST", f"{v}/sobjects/Account", "bad", {}),
                sub(
                    "POST",
                    f"{v}/sobjects/Contact",
                    "dep",
                    {"LastName": "x", "AccountId": "@{bad.id}"},
                ),
                sub("POST", f"{v}/sobjects/Account", "free", {"Name": "Fine"}),
            ]
        },
    )
    statuses = [r["httpStatusCode"] for r in body["compositeResponse"]]
    assert statuses == [400, 400, 201]
    assert body["compositeResponse"][1]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert [r["Name"] for r in api.emu.records("Account")] == ["Fine"]


async def test_composite_rejects_malformed_requests_whole(api: Api) -> None:
    """Over 25 subrequests, a forbidden header or a missing referenceId fail with 400."""
    v = f"/services/data/v{api.emu.api_version}"
    many = [sub("GET", f"{v}/limits", f"r{n}") for n in range(26)]
    assert (await api.call("POST", "/composite", json={"compositeRequest": many}))[0] == 400
    header = sub("GET", f"{v}/limits", "h")
    header["httpHeaders"] = {"Authorization": "Bearer x"}
    assert (await api.call("POST", "/composite", json={"compositeRequest": [header]}))[0] == 400
    missing = {"method": "GET", "url": f"{v}/limits"}
    assert (await api.call("POST", "/composite", json={"compositeRequest": [missing]}))[0] == 400


async def test_batch_counts_each_subrequest_and_halts_on_error(api: Api) -> None:
    """Composite batch runs subrequests independently, each counted; haltOnError gives 412."""
    v = f"v{api.emu.api_version}"
    status, body, headers = await api.call(
        "POST",
        "/composite/batch",
        json={
            "haltOnError": True,
            "batchRequests": [
                {"method": "POST", "url": f"{v}/sobjects/Account", "richInput": {"Name": "A"}},
                {"method": "POST", "url": f"{v}/sobjects/Account", "richInput": {}},
                {"method": "GET", "url": f"{v}/limits"},
            ],
        },
    )
    assert status == 200
    assert body["hasErrors"] is True
    assert [r["statusCode"] for r in body["results"]] == [201, 400, 412]
    assert body["results"][2]["result"][0]["errorCode"] == "BATCH_PROCESSING_HALTED"
    assert headers["Sforce-Limit-Info"] == "api-usage=2/15000"  # the halted one is not counted


async def test_composite_graph_is_all_or_nothing_per_graph(api: Api) -> None:
    """Each graph commits or rolls back on its own; one API call for the whole payload."""
    v = f"/services/data/v{api.emu.api_version}"
    good = [
        sub("POST", f"{v}/sobjects/Account", "a", {"Name": "Kept"}),
        sub("POST", f"{v}/sobjects/Contact", "c", {"LastName": "X", "AccountId": "@{a.id}"}),
    ]
    bad = [
        sub("POST", f"{v}/sobjects/Account", "a", {"Name": "Gone"}),
        sub("POST", f"{v}/sobjects/Contact", "c", {"FirstName": "no last name"}),
    ]
    status, body, headers = await api.call(
        "POST",
        "/composite/graph",
        json={
            "graphs": [
                {"graphId": "g1", "compositeRequest": good},
                {"graphId": "g2", "compositeRequest": bad},
            ]
        },
    )
    assert status == 200
    assert [(g["graphId"], g["isSuccessful"]) for g in body["graphs"]] == [
        ("g1", True),
        ("g2", False),
    ]
    failed = body["graphs"][1]["graphResponse"]["compositeResponse"]
    assert failed[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert [r["Name"] for r in api.emu.records("Account")] == ["Kept"]
    assert headers["Sforce-Limit-Info"] == "api-usage=1/15000"
