"""Conditional requests on sObject Rows as the REST API guide documents them, timestamps to the
second, the Date header, and duplicate rules that do not compare records saved together."""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import pytest
from emulator_helpers import Api

from sfemulator import conditional
from sfemulator.errors import ApiError

LEAD = {"LastName": "Lovelace", "Company": "Analytical Engines"}


def http(record: dict[str, Any]) -> str:
    """The record's LastModifiedDate as an HTTP date."""
    return format_datetime(conditional.modified_at(record), usegmt=True)


async def fetch(api: Api, sobject: str, record_id: str, **headers: str) -> tuple[int, Any, Any]:
    return await api.call("GET", f"/sobjects/{sobject}/{record_id}", headers=headers)


async def patch(
    api: Api, sobject: str, record_id: str, fields: dict[str, Any], **headers: str
) -> tuple[int, Any, Any]:
    return await api.call("PATCH", f"/sobjects/{sobject}/{record_id}", json=fields, headers=headers)


async def test_timestamps_are_whole_seconds_and_answers_are_dated(api: Api) -> None:
    """CreatedDate and LastModifiedDate end in .000+0000; every answer has the org's Date."""
    lead_id = await api.create("Lead", LEAD)
    status, record, headers = await fetch(api, "Lead", lead_id)
    assert status == 200
    assert record["LastModifiedDate"].endswith(".000+0000")
    assert record["CreatedDate"].endswith(".000+0000")
    served = parsedate_to_datetime(headers["Date"])
    assert served >= conditional.modified_at(record)


async def test_if_modified_since_answers_304_until_the_record_changes(api: Api) -> None:
    """GET with If-Modified-Since at the last change is 304 with no body; after a change, 200."""
    lead_id = await api.create("Lead", LEAD)
    _, record, _ = await fetch(api, "Lead", lead_id)
    since = {"If-Modified-Since": http(record)}
    status, body, _ = await api.call("GET", f"/sobjects/Lead/{lead_id}", headers=since)
    assert (status, body) == (304, None)
    api.emu.advance_clock(2)
    assert (await patch(api, "Lead", lead_id, {"Title": "CEO"}))[0] == 204
    status, body, _ = await api.call("GET", f"/sobjects/Lead/{lead_id}", headers=since)
    assert (status, body["Title"]) == (200, "CEO")
    garbage = {"If-Modified-Since": "yesterday"}  # an invalid date on GET is ignored
    assert (await api.call("GET", f"/sobjects/Lead/{lead_id}", headers=garbage))[0] == 200


async def test_if_unmodified_since_refuses_a_patch_after_a_change(api: Api) -> None:
    """PATCH with the date read succeeds; once someone else wrote in a later second, 412 and
    nothing is written."""
    lead_id = await api.create("Lead", LEAD)
    _, record, _ = await fetch(api, "Lead", lead_id)
    read_at = {"If-Unmodified-Since": http(record)}
    status, _, _ = await api.call(
        "PATCH", f"/sobjects/Lead/{lead_id}", json={"Title": "A"}, headers=read_at
    )
    assert status == 204
    api.emu.advance_clock(2)
    assert (await patch(api, "Lead", lead_id, {"Title": "B"}))[0] == 204
    status, body, _ = await api.call(
        "PATCH", f"/sobjects/Lead/{lead_id}", json={"Title": "C"}, headers=read_at
    )
    assert status == 412
    assert body[0]["errorCode"] == "PRECONDITION_FAILED"
    assert (await fetch(api, "Lead", lead_id))[1]["Title"] == "B"


async def test_an_invalid_precondition_on_patch_is_400_and_delete_ignores_them(api: Api) -> None:
    """An unparsable If-Unmodified-Since on PATCH is 400 BAD_REQUEST; DELETE ignores it."""
    lead_id = await api.create("Lead", LEAD)
    bad = {"If-Unmodified-Since": "not a date"}
    status, body, _ = await api.call(
        "PATCH", f"/sobjects/Lead/{lead_id}", json={"Title": "A"}, headers=bad
    )
    assert (status, body[0]["errorCode"]) == (400, "BAD_REQUEST")
    past = {"If-Unmodified-Since": "Tue, 10 Aug 2015 00:00:00 GMT"}
    assert (await api.call("DELETE", f"/sobjects/Lead/{lead_id}", headers=past))[0] == 204


async def test_accounts_carry_an_etag_that_if_match_and_if_none_match_check(api: Api) -> None:
    """Account rows answer with an ETag; If-None-Match with it is 304 on GET and 412 on PATCH;
    If-Match with another tag is 412; with the current one the PATCH goes through."""
    account_id = await api.create("Account", {"Name": "Acme"})
    status, _, headers = await fetch(api, "Account", account_id)
    tag = headers["ETag"]
    assert status == 200
    assert tag.endswith('-gzip"')
    assert (await fetch(api, "Account", account_id, **{"If-None-Match": tag}))[0] == 304
    stale = {"If-Match": '"not-the-tag-gzip"'}
    assert (await patch(api, "Account", account_id, {"Phone": "1"}, **stale))[0] == 412
    assert (await patch(api, "Account", account_id, {"Phone": "1"}, **{"If-None-Match": tag}))[
        0
    ] == 412
    assert (await patch(api, "Account", account_id, {"Phone": "2"}, **{"If-Match": tag}))[0] == 204
    _, record, changed = await fetch(api, "Account", account_id)
    assert (record["Phone"], changed["ETag"] != tag) == ("2", True)
    bad = {"If-Match": "no-quotes"}
    assert (await patch(api, "Account", account_id, {"Phone": "3"}, **bad))[0] == 400


async def test_other_objects_have_no_etag_and_ignore_the_etag_headers(api: Api) -> None:
    """A Lead answers without ETag; If-Match on it changes nothing (Account records only)."""
    lead_id = await api.create("Lead", LEAD)
    status, _, headers = await fetch(api, "Lead", lead_id)
    assert status == 200
    assert "ETag" not in headers
    assert (await patch(api, "Lead", lead_id, {"Title": "X"}, **{"If-Match": '"x"'}))[0] == 204


async def test_records_saved_together_are_not_compared_by_duplicate_rules(api: Api) -> None:
    """Two leads with one email in one Collections call are both saved; a third, alone, is
    DUPLICATES_DETECTED. A unique external id is enforced inside one save too."""
    same = {"attributes": {"type": "Lead"}, **LEAD, "Email": "twin@example.com"}
    status, results, _ = await api.call(
        "POST", "/composite/sobjects", json={"allOrNone": False, "records": [same, same]}
    )
    assert status == 200
    assert [r["success"] for r in results] == [True, True]
    status, body, _ = await api.call(
        "POST", "/sobjects/Lead/", json={**LEAD, "Email": "twin@example.com"}
    )
    assert (status, body[0]["errorCode"]) == (400, "DUPLICATES_DETECTED")
    keyed = {"attributes": {"type": "Lead"}, **LEAD, "Actionflows_Key__c": "k1"}
    _, results, _ = await api.call(
        "POST", "/composite/sobjects", json={"allOrNone": False, "records": [keyed, keyed]}
    )
    assert results[0]["success"] is True
    assert results[1]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"


RECORD = {"Id": "00Q000000000001AAA", "LastModifiedDate": "2026-03-01T10:00:05.000+0000"}
AT = "Sun, 01 Mar 2026 10:00:05 GMT"
BEFORE = "Sun, 01 Mar 2026 10:00:04 GMT"


def verdict(method: str, headers: dict[str, str], tag: str | None = None) -> int | None:
    return conditional.evaluate(method, headers.get, RECORD, tag)


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {"If-Modified-Since": AT}, 304),
        ("GET", {"If-Modified-Since": BEFORE}, None),
        ("GET", {"If-Unmodified-Since": AT}, None),
        ("PATCH", {"If-Unmodified-Since": AT}, None),
        ("PATCH", {"If-Modified-Since": AT}, None),  # GET and HEAD only
        ("DELETE", {"If-Unmodified-Since": BEFORE}, None),
        ("PATCH", {"If-Match": '"other"', "If-Unmodified-Since": AT}, None),  # not Account
    ],
)
def test_weak_validation_compares_whole_seconds(
    method: str, headers: dict[str, str], expected: int | None
) -> None:
    """The record changed at 10:00:05: "since 10:00:05" is unchanged, "since :04" changed."""
    assert verdict(method, headers) == expected


def test_a_change_after_the_date_fails_the_precondition() -> None:
    """If-Unmodified-Since one second before the change is 412 on PATCH and on GET."""
    for method in ("PATCH", "GET"):
        with pytest.raises(ApiError) as failed:
            verdict(method, {"If-Unmodified-Since": BEFORE})
        assert failed.value.status == 412


def test_if_match_wins_over_if_unmodified_since_on_an_account() -> None:
    """With an ETag, a matching If-Match decides and the stale date is not consulted (HTTP)."""
    headers = {"If-Match": '"t1", "t2"', "If-Unmodified-Since": BEFORE}
    assert verdict("PATCH", headers, tag='"t2"') is None
    assert verdict("PATCH", {"If-Match": "*"}, tag='"t2"') is None
    assert verdict("GET", {"If-None-Match": 'W/"t2"'}, tag='"t2"') == 304
    assert verdict("GET", {"If-None-Match": '"t3"', "If-Modified-Since": AT}, tag='"t2"') is None
