"""The one validation schema: each bad input named by field, old names as aliases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detection.schema import (
    ALIASES,
    FieldError,
    InvalidTransactions,
    TransactionIn,
    validate_batch,
    validate_transaction,
)
from tests.factories import CSV_NAMES, transaction_data

# A naive timestamp, read as UTC, and the optional previous date, given.
VALID: dict[str, Any] = transaction_data(
    timestamp="2023-04-11 16:29:14", previous_transaction_at="2024-11-04 08:08:08"
)
OLD_JSON = {**CSV_NAMES, "ip_address": "IPAddress"}


def _valid(**overrides: Any) -> dict[str, Any]:
    return {**VALID, **overrides}


def _errors(data: Any) -> list[FieldError]:
    with pytest.raises(InvalidTransactions) as excinfo:
        validate_transaction(data)
    return excinfo.value.errors


def _only_error(data: Any) -> FieldError:
    errors = _errors(data)
    assert len(errors) == 1, errors
    return errors[0]


def _batch_errors(items: Any, max_items: int = 1000) -> list[dict[str, Any]]:
    with pytest.raises(InvalidTransactions) as excinfo:
        validate_batch(items, max_items=max_items)
    return [error.as_dict() for error in excinfo.value.errors]


# --- the valid case ----------------------------------------------------------


def test_it_accepts_a_valid_transaction_and_types_every_value():
    row = validate_transaction(VALID).as_row()

    assert row == {
        "transaction_id": "TX000001",
        "account_id": "AC00001",
        "amount": Decimal("42.50"),
        "timestamp": datetime(2023, 4, 11, 16, 29, 14, tzinfo=UTC),
        "transaction_type": "Debit",
        "location": "Houston",
        "device_id": "D000001",
        "ip_address": "10.0.0.1",
        "merchant_id": "M001",
        "channel": "Online",
        "customer_age": 40,
        "customer_occupation": "Engineer",
        "duration_seconds": 60,
        "login_attempts": 1,
        "account_balance": Decimal("5000.00"),
        "previous_transaction_at": datetime(2024, 11, 4, 8, 8, 8, tzinfo=UTC),
    }


@pytest.mark.parametrize("value", [None, ""])
def test_it_makes_the_previous_transaction_date_optional(value):
    data = _valid(previous_transaction_at=value)

    assert validate_transaction(data).previous_transaction_at is None
    del data["previous_transaction_at"]
    assert validate_transaction(data).previous_transaction_at is None


def test_it_strips_whitespace_around_values():
    item = validate_transaction(_valid(transaction_id=" TX9 ", location="  Paris ", amount=" 5 "))

    assert item.transaction_id == "TX9"
    assert item.location == "Paris"
    assert item.amount == Decimal("5")


def test_it_reads_a_float_amount_as_its_decimal_text():
    # 14.09 as a float is 14.0899999…; the stored money must be exactly 14.09.
    assert validate_transaction(_valid(amount=14.09)).amount == Decimal("14.09")
    assert validate_transaction(_valid(account_balance=0.1)).account_balance == Decimal("0.1")


def test_it_reads_integers_given_as_text_or_whole_floats():
    item = validate_transaction(_valid(customer_age="30", duration_seconds=81.0))

    assert item.customer_age == 30
    assert item.duration_seconds == 81


def test_it_canonicalises_ip_addresses():
    assert validate_transaction(_valid(ip_address="2001:DB8::1")).ip_address == "2001:db8::1"
    assert validate_transaction(_valid(ip_address="2001:db8:0:0::1")).ip_address == "2001:db8::1"


def test_it_unpacks_an_ipv4_mapped_address_like_the_model_field():
    # Transaction.ip_address unpacks IPv4-mapped addresses; the schema must too,
    # or one client appears under two addresses and looks like a new IP.
    assert validate_transaction(_valid(ip_address="::ffff:1.2.3.4")).ip_address == "1.2.3.4"


# --- times -------------------------------------------------------------------


def test_it_reads_naive_times_as_utc():
    item = validate_transaction(_valid(timestamp="2023-04-11 16:29:14"))

    assert item.timestamp == datetime(2023, 4, 11, 16, 29, 14, tzinfo=UTC)
    assert item.timestamp.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-04-11T16:29:14+02:00", datetime(2023, 4, 11, 14, 29, 14, tzinfo=UTC)),
        ("2023-04-11T16:29:14-05:30", datetime(2023, 4, 11, 21, 59, 14, tzinfo=UTC)),
        ("2023-04-11T16:29:14Z", datetime(2023, 4, 11, 16, 29, 14, tzinfo=UTC)),
        ("2023-12-31T23:30:00-01:00", datetime(2024, 1, 1, 0, 30, tzinfo=UTC)),
    ],
)
def test_it_converts_offsets_to_utc(text, expected):
    item = validate_transaction(_valid(timestamp=text, previous_transaction_at=text))

    assert item.timestamp == expected
    assert item.timestamp.tzinfo is UTC
    assert item.previous_transaction_at == expected
    assert item.previous_transaction_at.tzinfo is UTC


def test_it_converts_an_aware_datetime_object_to_utc():
    paris_summer = timezone(timedelta(hours=2))
    value = datetime(2023, 4, 11, 18, 29, 14, tzinfo=paris_summer)

    item = validate_transaction(_valid(timestamp=value))

    assert item.timestamp == datetime(2023, 4, 11, 16, 29, 14, tzinfo=UTC)
    assert item.timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    ["2023-13-01", "2023-02-30", "2023-04-11 25:00:00", "yesterday", "11/04/2023", "2023-04-1"],
)
def test_it_refuses_a_date_it_cannot_read(value):
    error = _only_error(_valid(timestamp=value))

    assert error.field == "timestamp"
    assert "datetime" in error.message


@pytest.mark.parametrize("value", ["20230411", "1681230554", 20230411, 1681230554, 1.5])
def test_it_refuses_a_number_as_a_date(value):
    # Read as Unix seconds, 20230411 would silently become 23 August 1970.
    error = _only_error(_valid(timestamp=value))

    assert error.field == "timestamp"
    assert "date" in error.message


@pytest.mark.parametrize(
    "value",
    [
        "1969-12-31 23:59:59",
        "2101-01-01 00:00:00",
        "1970-01-01T00:30:00+01:00",
        "2100-12-31T23:00:00-05:00",
    ],
)
def test_it_refuses_a_date_outside_1970_to_2100_in_utc(value):
    error = _only_error(_valid(timestamp=value))

    assert error == FieldError("timestamp", "must be between 1970 and 2100")


def test_it_checks_the_previous_transaction_date_too():
    error = _only_error(_valid(previous_transaction_at="not a date"))

    assert error.field == "previous_transaction_at"


# --- NaN, infinity, wrong types ---------------------------------------------


@pytest.mark.parametrize("field", ["amount", "account_balance"])
@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        "NaN",
        "Infinity",
        "-Infinity",
        Decimal("NaN"),
        Decimal("Infinity"),
    ],
)
def test_it_refuses_nan_and_infinity(field, value):
    error = _only_error(_valid(**{field: value}))

    assert error.field == field
    assert "finite number" in error.message


def _outcome(data: dict[str, Any]) -> Any:
    try:
        return validate_transaction(data)
    except InvalidTransactions as exc:
        return exc.errors


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["amount", "account_balance"]),
    value=st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(min_value=-1, max_value=2e7).map(lambda x: round(x, 2)),
        st.integers(min_value=-(10**8), max_value=10**8),
        st.sampled_from([0.0, -0.0, 1e-05, 0.001, 1e6, 1e6 + 0.01, 1e7, 1e7 + 0.01, 5.0]),
    ),
)
def test_it_takes_a_json_number_as_it_takes_the_same_number_written_out(field, value):
    # JSON numbers skip the full checks when plainly valid: the outcome must
    # be the one the full checks give the number's text.
    assert _outcome(_valid(**{field: value})) == _outcome(_valid(**{field: repr(value)}))


@pytest.mark.parametrize(
    "field", ["amount", "account_balance", "customer_age", "duration_seconds", "login_attempts"]
)
@pytest.mark.parametrize("value", [True, False])
def test_it_refuses_a_boolean_for_a_number(field, value):
    error = _only_error(_valid(**{field: value}))

    assert error == FieldError(field, "expected a number, not a boolean")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("amount", "twelve", "valid decimal"),
        ("amount", "1,000", "valid decimal"),
        ("amount", [14], "decimal"),
        ("amount", None, "decimal"),
        ("customer_age", "old", "valid integer"),
        ("customer_age", 30.5, "fractional part"),
        ("customer_age", None, "valid integer"),
        ("duration_seconds", {"s": 1}, "valid integer"),
        ("login_attempts", "", "valid integer"),
        ("location", 12, "valid string"),
        ("location", None, "valid string"),
        ("transaction_id", 1, "valid string"),
        ("account_id", ["AC1"], "valid string"),
        ("ip_address", 16909060, "valid string"),
        ("timestamp", None, "datetime"),
        ("timestamp", True, "datetime"),
    ],
)
def test_it_refuses_a_value_of_the_wrong_type(field, value, fragment):
    error = _only_error(_valid(**{field: value}))

    assert error.field == field
    assert fragment in error.message


def test_it_refuses_an_amount_with_more_than_two_decimals():
    error = _only_error(_valid(amount="14.091"))

    assert error == FieldError("amount", "decimal input should have no more than 2 decimal places")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount", "-0.01", "input should be greater than or equal to 0"),
        ("amount", "1000000.01", "input should be less than or equal to 1000000"),
        ("customer_age", 17, "input should be greater than or equal to 18"),
        ("customer_age", 121, "input should be less than or equal to 120"),
        ("duration_seconds", -1, "input should be greater than or equal to 0"),
        ("duration_seconds", 10_001, "input should be less than or equal to 10000"),
        ("login_attempts", -1, "input should be greater than or equal to 0"),
        ("login_attempts", 11, "input should be less than or equal to 10"),
        ("account_balance", "-0.01", "input should be greater than or equal to 0"),
        ("account_balance", "10000000.01", "input should be less than or equal to 10000000"),
    ],
)
def test_it_refuses_an_out_of_range_value(field, value, message):
    assert _only_error(_valid(**{field: value})) == FieldError(field, message)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "0"),
        ("amount", "1000000"),
        ("customer_age", 18),
        ("customer_age", 120),
        ("duration_seconds", 0),
        ("duration_seconds", 10_000),
        ("login_attempts", 0),
        ("login_attempts", 10),
        ("account_balance", "0.00"),
        ("account_balance", "10000000.00"),
    ],
)
def test_it_accepts_the_edges_of_each_range(field, value):
    item = validate_transaction(_valid(**{field: value}))

    assert getattr(item, field) == type(getattr(item, field))(value)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("transaction_type", "Refund", "'Credit' or 'Debit'"),
        ("transaction_type", "debit", "'Credit' or 'Debit'"),
        ("channel", "Mobile", "'Online', 'ATM' or 'Branch'"),
        ("customer_occupation", "Pilot", "'Doctor', 'Student', 'Retired', 'Engineer' or 'Other'"),
    ],
)
def test_it_refuses_an_unknown_enum_value_and_lists_the_choices(field, value, expected):
    error = _only_error(_valid(**{field: value}))

    assert error == FieldError(field, f"{value!r} is not one of {expected}")


@pytest.mark.parametrize("value", ["999.1.1.1", "1.2.3", "localhost", "1.2.3.4/24", "::g"])
def test_it_refuses_a_bad_ip_address(value):
    assert _only_error(_valid(ip_address=value)) == FieldError(
        "ip_address", "must be an IPv4 or IPv6 address"
    )


# --- strings -----------------------------------------------------------------


def test_it_refuses_an_oversized_location():
    error = _only_error(_valid(location="x" * 65))

    assert error == FieldError("location", "string should have at most 64 characters")


def test_it_counts_characters_not_bytes():
    assert validate_transaction(_valid(location="ü" * 64)).location == "ü" * 64


@pytest.mark.parametrize("field", ["transaction_id", "account_id", "device_id", "merchant_id"])
@pytest.mark.parametrize("value", ["X" * 33, "", "TX 1", "-TX1", "TX1;DROP", "TX\u00e91"])
def test_it_refuses_a_malformed_identifier(field, value):
    error = _only_error(_valid(**{field: value}))

    assert error.field == field
    assert "should match pattern" in error.message


def test_it_accepts_a_32_character_identifier():
    assert validate_transaction(_valid(transaction_id="T" * 32)).transaction_id == "T" * 32


@pytest.mark.parametrize("value", ["", "   "])
def test_it_refuses_an_empty_location(value):
    assert _only_error(_valid(location=value)) == FieldError(
        "location", "string should have at least 1 character"
    )


@pytest.mark.parametrize("value", ["San\x00Diego", "San\nDiego", "San\x1bDiego", "\x7f"])
def test_it_refuses_control_characters_in_a_location(value):
    # PostgreSQL cannot store NUL in text: accepting it would fail at insert.
    error = _only_error(_valid(location=value))

    assert error.field == "location"
    assert "control character" in error.message


def test_it_refuses_a_megabyte_string_without_choking():
    error = _only_error(_valid(location="x" * 1_000_000))

    assert error.field == "location"


# --- shape: missing, unknown, not an object ----------------------------------


@pytest.mark.parametrize("field", [name for name in VALID if name != "previous_transaction_at"])
def test_it_refuses_a_missing_required_field(field):
    data = _valid()
    del data[field]

    assert _only_error(data) == FieldError(field, "this field is required")


def test_it_names_every_problem_at_once():
    data = _valid(amount="NaN", customer_age=5, channel="Fax")
    del data["location"]

    fields = sorted(error.field for error in _errors(data))

    assert fields == ["amount", "channel", "customer_age", "location"]


@pytest.mark.parametrize("name", ["is_fraud", "Amount", "transactionId", "transaction id"])
def test_it_refuses_an_unknown_field(name):
    assert _only_error(_valid(**{name: "x"})) == FieldError(name, "unknown field")


def test_it_refuses_a_field_given_twice_under_two_names():
    error = _only_error(_valid(TransactionID="TX000002"))

    assert error.field == "TransactionID"
    assert "transaction_id" in error.message


@pytest.mark.parametrize("data", [[VALID], "TX000001", 42, None, b"{}"])
def test_it_refuses_something_that_is_not_an_object(data):
    assert _only_error(data) == FieldError("__all__", "expected an object")


# --- aliases -----------------------------------------------------------------


@pytest.mark.parametrize("names", [CSV_NAMES, OLD_JSON], ids=["csv-header", "old-json"])
def test_it_accepts_the_old_names_with_identical_results(names):
    renamed = {names[key]: value for key, value in VALID.items()}

    assert validate_transaction(renamed) == validate_transaction(VALID)


def test_it_accepts_a_mix_of_old_and_new_names():
    mixed = {(OLD_JSON[k] if i % 2 else k): v for i, (k, v) in enumerate(VALID.items())}

    assert validate_transaction(mixed) == validate_transaction(VALID)


def test_it_knows_both_old_names_of_the_ip_address():
    assert set(ALIASES["ip_address"]) == {"IPAddress", "IP Address"}
    for alias in ("IPAddress", "IP Address"):
        data = _valid(ip_address="162.198.218.92")
        data[alias] = data.pop("ip_address")
        assert validate_transaction(data).ip_address == "162.198.218.92"


@pytest.mark.parametrize("names", [CSV_NAMES, OLD_JSON], ids=["csv-header", "old-json"])
def test_it_reports_errors_under_the_snake_case_name_whatever_name_came_in(names):
    renamed = {names[key]: value for key, value in _valid(customer_age=7, amount="x").items()}
    del renamed[names["location"]]

    fields = sorted(error.field for error in _errors(renamed))

    assert fields == ["amount", "customer_age", "location"]


# --- batches -----------------------------------------------------------------


def test_it_accepts_a_batch_and_keeps_its_order():
    items = [_valid(transaction_id=f"TX{n}") for n in range(5)]

    valid = validate_batch(items, max_items=5)

    assert [item.transaction_id for item in valid] == [f"TX{n}" for n in range(5)]


def test_it_accepts_a_single_object_as_a_batch_of_one():
    valid = validate_batch(VALID, max_items=1)

    assert valid == [validate_transaction(VALID)]


def test_it_refuses_an_empty_batch():
    assert _batch_errors([]) == [{"field": "__all__", "message": "the batch is empty"}]


def test_it_refuses_an_oversized_batch():
    items = [_valid(transaction_id=f"TX{n}") for n in range(4)]

    assert validate_batch(items[:3], max_items=3)
    assert _batch_errors(items, max_items=3) == [
        {"field": "__all__", "message": "at most 3 transactions per request"}
    ]


@pytest.mark.parametrize("items", ["[]", 42, None, ("a",)])
def test_it_refuses_a_batch_that_is_neither_object_nor_list(items):
    assert _batch_errors(items) == [{"field": "__all__", "message": "expected an object or a list"}]


def test_it_indexes_each_error_by_its_item():
    items = [
        _valid(transaction_id="TX0"),
        _valid(transaction_id="TX1", customer_age=200),
        "not an object",
        _valid(transaction_id="TX3", channel="Fax", amount="NaN"),
    ]

    errors = _batch_errors(items)

    assert sorted((e["index"], e["field"]) for e in errors) == [
        (1, "customer_age"),
        (2, "__all__"),
        (3, "amount"),
        (3, "channel"),
    ]
    assert {"field": "__all__", "message": "expected an object", "index": 2} in errors


@pytest.mark.parametrize("item", [42, None, [], ["a"], True, 1.5])
def test_it_names_an_item_that_is_not_an_object(item):
    errors = _batch_errors([_valid(transaction_id="TX0"), item])

    assert errors == [{"field": "__all__", "message": "expected an object", "index": 1}]


def test_it_refuses_duplicate_ids_inside_a_batch():
    items = [_valid(transaction_id=tx_id) for tx_id in ("TX0", "TX1", "TX0", "TX1", "TX0")]

    assert _batch_errors(items) == [
        {"field": "transaction_id", "message": "duplicate of item 0 in this batch", "index": 2},
        {"field": "transaction_id", "message": "duplicate of item 1 in this batch", "index": 3},
        {"field": "transaction_id", "message": "duplicate of item 0 in this batch", "index": 4},
    ]


def test_it_finds_duplicates_even_when_other_items_are_invalid():
    items = [
        _valid(transaction_id="TX0"),
        _valid(transaction_id="TX1", amount="bad"),
        {**{OLD_JSON[k]: v for k, v in VALID.items()}, "TransactionID": "TX0"},
    ]

    errors = _batch_errors(items)

    assert {"field": "amount", "message": "input should be a valid decimal", "index": 1} in errors
    assert {
        "field": "transaction_id",
        "message": "duplicate of item 0 in this batch",
        "index": 2,
    } in errors


def test_it_reports_every_error_of_a_batch_in_the_exception_message():
    with pytest.raises(InvalidTransactions) as excinfo:
        validate_batch([_valid(customer_age=1)], max_items=10)

    assert str(excinfo.value) == "item 0: customer_age: input should be greater than or equal to 18"


# --- property: anything valid validates and round-trips ----------------------

_identifiers = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:\-]{0,31}\Z")
_money = st.decimals(min_value=0, max_value=1_000_000, places=2, allow_nan=False)
_balances = st.decimals(min_value=0, max_value=10_000_000, places=2, allow_nan=False)
_times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC)
)
_locations = st.text(
    st.characters(codec="utf-8", categories=["L", "N", "Zs", "P"], exclude_characters="\u3000"),
    min_size=1,
    max_size=64,
).filter(lambda s: s.strip() == s and s)
_ipv4 = st.ip_addresses(v=4).map(str)

_transactions = st.fixed_dictionaries(
    {
        "transaction_id": _identifiers,
        "account_id": _identifiers,
        "amount": _money,
        "timestamp": _times,
        "transaction_type": st.sampled_from(["Credit", "Debit"]),
        "location": _locations,
        "device_id": _identifiers,
        "ip_address": _ipv4,
        "merchant_id": _identifiers,
        "channel": st.sampled_from(["Online", "ATM", "Branch"]),
        "customer_age": st.integers(18, 120),
        "customer_occupation": st.sampled_from(
            ["Doctor", "Student", "Retired", "Engineer", "Other"]
        ),
        "duration_seconds": st.integers(0, 10_000),
        "login_attempts": st.integers(0, 10),
        "account_balance": _balances,
        "previous_transaction_at": st.none() | _times,
    }
)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, datetime) else str(value)


@settings(max_examples=200, deadline=None)
@given(data=_transactions, as_text=st.booleans(), old_names=st.booleans())
def test_it_validates_and_round_trips_any_valid_transaction(data, as_text, old_names):
    sent = dict(data)
    if as_text:
        # What a CSV row or a JSON client sends: every value as text.
        sent = {key: _as_text(value) for key, value in sent.items()}
    if old_names:
        sent = {OLD_JSON[key]: value for key, value in sent.items()}

    row = validate_transaction(sent).as_row()

    assert row == data
    assert isinstance(validate_transaction(sent), TransactionIn)
