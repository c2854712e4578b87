"""SOSL /search and /parameterizedSearch: substring, phone-digit and long-text matching."""

from __future__ import annotations

from emulator_helpers import Api


async def seed(api: Api) -> dict[str, str]:
    return {
        "acme": await api.create(
            "Account",
            {
                "Name": "Acme Rockets",
                "Phone": "(415) 555-0100",
                "Description": "Makes very large rockets",
            },
        ),
        "globex": await api.create("Account", {"Name": "Globex", "Phone": "+1 212 555 0199"}),
        "lead": await api.create(
            "Lead", {"LastName": "Coyote", "Company": "Acme Rockets", "Email": "wile@acme.test"}
        ),
    }


async def test_sosl_finds_across_objects_and_long_text(api: Api) -> None:
    """FIND {term} RETURNING matches names, emails and Description, per object, with fields."""
    ids = await seed(api)
    status, body, _ = await api.call(
        "GET",
        "/search",
        params={"q": "FIND {acme} IN ALL FIELDS RETURNING Account(Id, Name), Lead(Id, Email)"},
    )
    assert status == 200
    assert [(r["attributes"]["type"], r["Id"]) for r in body["searchRecords"]] == [
        ("Account", ids["acme"]),
        ("Lead", ids["lead"]),
    ]
    assert body["searchRecords"][1]["Email"] == "wile@acme.test"
    _, body, _ = await api.call(
        "GET", "/search", params={"q": "FIND {large rock*} RETURNING Account(Name)"}
    )
    assert [r["Name"] for r in body["searchRecords"]] == ["Acme Rockets"]


async def test_phone_search_ignores_formatting(api: Api) -> None:
    """IN PHONE FIELDS compares digits only, so any formatting of the number matches."""
    ids = await seed(api)
    _, body, _ = await api.call(
        "GET", "/search", params={"q": "FIND {415-555-0100} IN PHONE FIELDS RETURNING Account(Id)"}
    )
    assert [r["Id"] for r in body["searchRecords"]] == [ids["acme"]]


async def test_parameterized_search_get_and_post(api: Api) -> None:
    """parameterizedSearch takes q, sobject and per-object fields/limits by GET or JSON POST."""
    ids = await seed(api)
    _, body, _ = await api.call(
        "GET",
        "/parameterizedSearch",
        params={
            "q": "globex",
            "sobject": "Account",
            "Account.fields": "Id,Name",
            "Account.limit": "5",
        },
    )
    assert body["searchRecords"][0]["Id"] == ids["globex"]
    _, body, _ = await api.call(
        "POST",
        "/parameterizedSearch",
        json={"q": "rockets", "sobjects": [{"name": "Account", "fields": ["Id", "Phone"]}]},
    )
    assert [(r["Id"], r["Phone"]) for r in body["searchRecords"]] == [
        (ids["acme"], "(415) 555-0100")
    ]


async def test_search_errors(api: Api) -> None:
    """A one-character term and a query without braces are rejected with 400."""
    status, body, _ = await api.call("GET", "/search", params={"q": "FIND {a}"})
    assert (status, body[0]["errorCode"]) == (400, "INVALID_SEARCH")
    status, body, _ = await api.call("GET", "/search", params={"q": "FIND acme"})
    assert (status, body[0]["errorCode"]) == (400, "MALFORMED_SEARCH")
