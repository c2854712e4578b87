"""The SOQL subset, run against the pure store: filters, ordering, relationships, errors."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.catalogue.soql import quote, quote_like
from sfemulator.errors import ApiError
from sfemulator.ids import IdFactory
from sfemulator.schema import DEFAULT_EXTERNAL_ID_FIELDS, build_schema
from sfemulator.soql import parse
from sfemulator.soql_eval import run
from sfemulator.soql_lexer import SoqlError, unescape
from sfemulator.store import Store

V = "62.0"


@pytest.fixture
def store() -> Store:
    ids = IdFactory(1)
    store = Store(
        build_schema(DEFAULT_EXTERNAL_ID_FIELDS),
        ids,
        time.time,
        ids.new("User"),
        duplicate_rules=(),
    )
    store.seed_reference_data(
        {"Name": "Org"},
        {"Id": store.user_id, "Username": "u@example.com", "FirstName": "Int", "LastName": "User"},
    )
    acme = store.create("Account", {"Name": "Acme"})
    for first, last, employees, email in [
        ("Ada", "Lovelace", 10, "ada@acme.test"),
        ("Alan", "Turing", 200, "alan@acme.test"),
        (None, "O'Neil", None, None),
        ("Grace", "Hopper", 50, "grace_h@navy.test"),
    ]:
        fields = {
            "FirstName": first,
            "LastName": last,
            "Company": "Acme",
            "NumberOfEmployees": employees,
            "Email": email,
        }
        store.create("Lead", {k: v for k, v in fields.items() if v is not None})
    store.create("Contact", {"LastName": "Babbage", "AccountId": acme})
    return store


def names(store: Store, soql: str, *, deleted: bool = False) -> list[str]:
    return [r["LastName"] for r in run(soql, store, V, include_deleted=deleted).records]


def test_where_operators_and_ordering(store: Store) -> None:
    """Comparison operators, IN, NOT, NULL and ORDER BY ... NULLS LAST behave as in SOQL."""
    base = "SELECT LastName FROM Lead"
    assert names(store, f"{base} WHERE NumberOfEmployees >= 50 ORDER BY LastName") == [
        "Hopper",
        "Turing",
    ]
    assert names(store, f"{base} WHERE NumberOfEmployees = null") == ["O'Neil"]
    assert names(
        store,
        f"{base} WHERE NumberOfEmployees != null AND NOT LastName = 'hopper' "
        "ORDER BY NumberOfEmployees DESC",
    ) == ["Turing", "Lovelace"]
    assert names(store, f"{base} WHERE LastName IN ('turing', 'Lovelace') ORDER BY LastName") == [
        "Lovelace",
        "Turing",
    ]
    assert names(
        store,
        f"{base} WHERE (LastName = 'Turing' OR LastName = 'Hopper') AND NumberOfEmployees < 100",
    ) == ["Hopper"]
    assert names(store, f"{base} ORDER BY NumberOfEmployees DESC NULLS LAST LIMIT 2 OFFSET 1") == [
        "Hopper",
        "Lovelace",
    ]
    assert names(store, f"{base} WHERE FirstName NOT IN ('Ada')  ORDER BY LastName") == [
        "Hopper",
        "Turing",
    ]


def test_in_on_an_indexed_field_answers_as_a_scan_would(store: Store) -> None:
    """Email IN (…) is served from the index: case ignored, creation order kept, deleted rows
    only with queryAll, the rest of the filter still applied."""
    [ada] = [r for r in store.rows("Lead") if r.get("Email") == "ada@acme.test"]
    assert store.candidates_any("Lead", "Email", ["ADA@acme.test", "x@y.z"]) == [ada]
    base = "SELECT LastName FROM Lead WHERE Email IN ('GRACE_H@navy.test', 'ada@ACME.test')"
    assert names(store, base) == ["Lovelace", "Hopper"]
    assert names(store, f"{base} AND NumberOfEmployees > 20") == ["Hopper"]
    store.delete("Lead", ada["Id"])
    assert names(store, base) == ["Hopper"]
    assert names(store, base, deleted=True) == ["Lovelace", "Hopper"]


def test_like_is_case_insensitive_and_honours_escaped_wildcards(store: Store) -> None:
    """LIKE uses % and _ wildcards, ignores case, and \\_ matches a literal underscore."""
    base = "SELECT LastName FROM Lead WHERE Email LIKE"
    assert sorted(names(store, f"{base} '%@ACME.test'")) == ["Lovelace", "Turing"]
    assert names(store, f"{base} 'grace\\_h%'") == ["Hopper"]
    assert names(store, f"{base} 'grace\\_x%'") == []
    assert names(store, f"{base} 'a_a@%'") == ["Lovelace"]


def test_count_and_relationship_fields(store: Store) -> None:
    """COUNT() reports totalSize only; parent fields render as nested records."""
    count = run("SELECT COUNT() FROM Lead WHERE Company = 'Acme'", store, V, include_deleted=False)
    assert (count.total_size, count.records) == (4, [])
    row = run(
        "SELECT Name, Account.Name, Owner.Name FROM Contact", store, V, include_deleted=False
    ).records[0]
    assert row["Account"]["Name"] == "Acme"
    assert row["Account"]["attributes"]["type"] == "Account"
    assert row["Owner"]["Name"] == "Int User"
    assert row["attributes"]["url"].startswith(f"/services/data/v{V}/sobjects/Contact/")


def test_relative_date_literals(store: Store) -> None:
    """TODAY, LAST_N_DAYS:n and NEXT_N_DAYS:n are day ranges on date and datetime fields."""
    today = dt.date.fromisoformat(store.today())
    for offset in (-10, -1, 0, 5):
        store.create(
            "Opportunity",
            {
                "Name": f"d{offset}",
                "StageName": "Prospecting",
                "CloseDate": (today + dt.timedelta(days=offset)).isoformat(),
            },
        )

    def opportunities(where: str) -> list[str]:
        soql = f"SELECT Name FROM Opportunity WHERE {where} ORDER BY CloseDate"
        result = run(soql, store, V, include_deleted=False)
        return [r["Name"] for r in result.records]

    assert opportunities("CloseDate = TODAY") == ["d0"]
    assert opportunities("CloseDate = LAST_N_DAYS:3") == ["d-1", "d0"]
    assert opportunities("CloseDate < YESTERDAY") == ["d-10"]
    assert opportunities("CloseDate > TODAY") == ["d5"]
    assert opportunities("CloseDate = NEXT_N_DAYS:7") == ["d5"]
    assert len(opportunities("CreatedDate = TODAY")) == 4
    assert opportunities("CreatedDate < TODAY") == []


def test_query_all_sees_soft_deleted_rows(store: Store) -> None:
    """A deleted record disappears from query but stays visible, IsDeleted=true, to queryAll."""
    lead = next(store.rows("Lead"))
    store.delete("Lead", lead["Id"])
    soql = f"SELECT LastName, IsDeleted FROM Lead WHERE Id = '{lead['Id'][:15]}'"
    assert run(soql, store, V, include_deleted=False).records == []
    assert run(soql, store, V, include_deleted=True).records[0]["IsDeleted"] is True


@pytest.mark.parametrize(
    ("soql", "code", "reason"),
    [
        ("SELECT Foo FROM Lead", "INVALID_FIELD", "No such column 'Foo' on entity 'Lead'."),
        ("SELECT Id FROM Nope", "INVALID_TYPE", "sObject type 'Nope' is not supported."),
        ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
        (
            "SELECT Id FROM Lead WHERE LastName = 'a' AND LastName = 'b' OR LastName = 'c'",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        (
            "SELECT Id FROM Lead WHERE NumberOfEmployees = '5'",
            "INVALID_FIELD",
            "value of filter criterion for field 'NumberOfEmployees' must be of type integer and "
            "should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Lead WHERE LastName = 5",
            "INVALID_FIELD",
            "must be of type string and should be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Lead WHERE Id = 'nope'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: nope",
        ),
        ("SELECT Id, id FROM Lead", "MALFORMED_QUERY", "duplicate field selected: id"),
        (
            "SELECT Id FROM Lead WHERE LastName = :name",
            "MALFORMED_QUERY",
            "Bind variables only allowed in Apex code",
        ),
        ("SELECT Boss.Name FROM Lead", "INVALID_FIELD", "Didn't understand relationship 'Boss'"),
        (
            "SELECT Id FROM Account WHERE Description = 'x'",
            "INVALID_FIELD",
            "field 'Description' can not be filtered in query call",
        ),
        (
            "SELECT Id FROM Account ORDER BY Description",
            "INVALID_FIELD",
            "field 'Description' can not be sorted in a query call",
        ),
    ],
)
def test_query_errors_are_worded_like_salesforce(
    store: Store, soql: str, code: str, reason: str
) -> None:
    """Errors echo the query with a caret and ERROR at Row:Column, then the reason."""
    with pytest.raises(ApiError) as caught:
        run(soql, store, V, include_deleted=False)
    err = caught.value
    assert (err.status, err.error_code) == (400, code)
    assert err.message.startswith(f"\n{soql}\n")
    assert "\nERROR at Row:1:Column:" in err.message
    assert reason in err.message


def test_error_column_points_at_the_offending_token() -> None:
    """The caret column is 1-based and points at the bad token."""
    with pytest.raises(SoqlError) as caught:
        parse("SELECT Id FROM Lead LIMIT x")
    assert caught.value.pos == len("SELECT Id FROM Lead LIMIT ")


@given(st.text())
def test_quoted_literals_round_trip(value: str) -> None:
    """quote() produces a literal the parser reads back as exactly the original string."""
    query = parse(f"SELECT Id FROM Lead WHERE LastName = {quote(value)}")
    assert query.where.values[0].value == value


@given(st.text())
def test_unescape_inverts_quote(value: str) -> None:
    """unescape(quote(s)[1:-1]) is the identity."""
    assert unescape(quote(value)[1:-1]) == value


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_escaped_like_patterns_match_only_themselves(value: str) -> None:
    """A LIKE literal from quote_like matches its own text literally."""
    ids = IdFactory(3)
    store = Store(build_schema({}), ids, time.time, ids.new("User"), duplicate_rules=())
    store.create("Account", {"Name": value or "x"})
    store.create("Account", {"Name": (value or "x") + "!"})
    pattern = quote_like(value or "x")
    result = run(
        f"SELECT Name FROM Account WHERE Name LIKE {pattern}",
        store,
        V,
        include_deleted=False,
    )
    assert [r["Name"] for r in result.records] == [value or "x"]


_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


@given(
    employees=st.lists(st.one_of(st.none(), st.integers(0, 50)), max_size=12),
    op=st.sampled_from(sorted(_OPS)),
    pivot=st.integers(0, 50),
    descending=st.booleans(),
)
def test_number_filters_and_ordering_match_a_reference_model(
    employees: list[int | None], op: str, pivot: int, descending: bool
) -> None:
    """Comparisons skip nulls (except != ), and ORDER BY puts nulls first ASC / last DESC."""
    ids = IdFactory(5)
    store = Store(build_schema({}), ids, time.time, ids.new("User"), duplicate_rules=())
    for n, count in enumerate(employees):
        fields = {"LastName": f"L{n}", "Company": "C"}
        if count is not None:
            fields["NumberOfEmployees"] = count
        store.create("Lead", fields)
    direction = "DESC" if descending else "ASC"
    soql = (
        f"SELECT LastName, NumberOfEmployees FROM Lead WHERE NumberOfEmployees {op} {pivot} "
        f"ORDER BY NumberOfEmployees {direction}, LastName"
    )
    got = [
        (r["LastName"], r["NumberOfEmployees"])
        for r in run(soql, store, V, include_deleted=False).records
    ]
    rows = [
        (f"L{n}", c)
        for n, c in enumerate(employees)
        if (c is not None and _OPS[op](c, pivot)) or (c is None and op == "!=")
    ]
    nulls = sorted(r for r in rows if r[1] is None)
    present = sorted(
        (r for r in rows if r[1] is not None), key=lambda r: (-r[1] if descending else r[1], r[0])
    )
    assert got == (nulls + present if not descending else present + nulls)
