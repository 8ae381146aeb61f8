"""Strict base64, canonical JSON, ids, hashes and times: one accepted spelling per value."""

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import GENESIS, InvalidEnvelope, b64decode, b64encode, canonical_json
from core.crypto.encoding import (
    MAX_SAFE_INTEGER,
    check_fingerprint,
    check_hash,
    check_id,
    check_version,
    parse_canonical_json,
    parse_timestamp,
)
from core.crypto.errors import UnsupportedVersion
from tests.crypto.support import moments, raises_exactly, spell_time, times


@settings(max_examples=50)
@given(st.binary(max_size=200))
def test_base64_round_trip(data):
    text = b64encode(data)
    assert text == base64.b64encode(data).decode()
    assert b64decode(text) == data


@pytest.mark.parametrize(
    "text",
    [
        "QQ",  # missing padding
        "QQ=",  # short padding
        "QQ===",  # extra padding
        "QR==",  # non-canonical: trailing bits set
        "QUI=x",
        "QU I=",  # whitespace
        "QUI=\n",
        "-_8=",  # URL-safe alphabet
        "Q===",
        "=QQ=",
        "QUJD\u00e9",
        "\uff31\uff35\uff2a\uff24",  # fullwidth letters
    ],
)
def test_base64_refuses_other_spellings(text):
    with pytest.raises(InvalidEnvelope):
        b64decode(text)


@pytest.mark.parametrize("value", [None, 1, b"QUJD", ["QUJD"]])
def test_base64_refuses_non_strings(value):
    with pytest.raises(InvalidEnvelope):
        b64decode(value)


def test_base64_size_is_checked():
    assert b64decode(b64encode(bytes(24)), size=24) == bytes(24)
    with pytest.raises(InvalidEnvelope, match="nonce: expected 24 bytes"):
        b64decode(b64encode(bytes(23)), size=24, field="nonce")


def test_canonical_json_known_answer():
    value = {"b": [1, True, None], "a": "é\n\u2028", "A": -5, "c": {"z": 0, "y": ""}}
    expected = '{"A":-5,"a":"é\\n\u2028","b":[1,true,null],"c":{"y":"","z":0}}'
    assert canonical_json(value) == expected.encode("utf-8")


def test_canonical_json_escapes_like_json_stringify():
    assert canonical_json('\x00\x1f\b\t"\\/\x7f') == b'"\\u0000\\u001f\\b\\t\\"\\\\/\x7f"'


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        {"x": 0.5},
        [float("nan")],
        MAX_SAFE_INTEGER + 1,
        -MAX_SAFE_INTEGER - 1,
        {1: "non-string key"},
        {"clé": "non-ASCII key"},
        b"bytes",
        {"x": object()},
        "\ud800",  # lone surrogate: not encodable as UTF-8
    ],
)
def test_canonical_json_refuses(value):
    with pytest.raises(InvalidEnvelope):
        canonical_json(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(max_codepoint=127), max_size=8), children, max_size=4
        )
    ),
    max_leaves=12,
)


@settings(max_examples=50)
@given(json_values)
def test_canonical_json_round_trip(value):
    data = canonical_json(value)
    assert json.loads(data) == value
    assert parse_canonical_json(data) == value
    assert canonical_json(json.loads(data)) == data


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":1,"a":2}',  # unsorted
        b'{"a": 1}',  # whitespace
        b'{"a":1,"a":1}',  # duplicate key
        b'{"a":1.0}',  # float
        b'{"a":NaN}',
        b'"\\u00e9"',  # escaped non-ASCII
        b"\xff",
        b"{",
    ],
)
def test_parse_canonical_json_refuses(data):
    with pytest.raises(InvalidEnvelope):
        parse_canonical_json(data)


def test_field_checks():
    assert check_id(1, "x") == 1
    for bad in (0, -1, True, "1", 1.0, MAX_SAFE_INTEGER + 1, None):
        with pytest.raises(InvalidEnvelope):
            check_id(bad, "x")
    assert check_fingerprint("ab" * 32, "fp") == "ab" * 32
    for bad in ("AB" * 32, "ab" * 31, "zz" * 32, None):
        with pytest.raises(InvalidEnvelope):
            check_fingerprint(bad, "fp")
    check_version({"v": 1}, "x")
    with pytest.raises(UnsupportedVersion):
        check_version({"v": 2}, "x")
    for bad in ({}, {"v": True}, {"v": "1"}):
        with pytest.raises(InvalidEnvelope):
            check_version(bad, "x")


def test_hash_checks():
    for good in (GENESIS, "ab" * 32, "0123456789abcdef" * 4):
        assert check_hash(good, "chain_head") == good
    for bad in ("AB" * 32, "ab" * 31, "ab" * 32 + "a", "zz" * 32, " " + "a" * 63, b"ab" * 32, None):
        with raises_exactly(InvalidEnvelope, "chain_head"):
            check_hash(bad, "chain_head")


# --- Times: RFC 3339 with an offset of at most 23:59 --------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-01-31T08:00:00Z", datetime(2025, 1, 31, 8, tzinfo=UTC)),
        ("2025-01-31T08:00:00.5Z", datetime(2025, 1, 31, 8, 0, 0, 500_000, tzinfo=UTC)),
        ("2025-01-31T08:00:00.123456Z", datetime(2025, 1, 31, 8, 0, 0, 123_456, tzinfo=UTC)),
        ("2025-01-31T09:00:00+01:00", datetime(2025, 1, 31, 8, tzinfo=UTC)),
        ("2025-01-31T08:00:00-00:00", datetime(2025, 1, 31, 8, tzinfo=UTC)),
        ("2025-02-01T07:59:00+23:59", datetime(2025, 1, 31, 8, tzinfo=UTC)),
        ("2025-01-30T08:01:00-23:59", datetime(2025, 1, 31, 8, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
        ("0001-01-01T23:59:00+23:59", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
    ],
)
def test_times_parse(text, expected):
    moment = parse_timestamp(text, "sent_at")
    assert moment == expected
    assert moment.utcoffset() is not None


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-31T08:00:00",  # no offset
        "2025-01-31T08:00:00+24:00",
        "2025-01-31T08:00:00-24:00",
        "2025-01-31T08:00:00+12:60",
        "2025-01-31T08:00:00+99:99",
        "2025-01-31T08:00:00+01",
        "2025-01-31T08:00:00+0100",
        "2025-01-31T08:00:00+01:00:00",
        "2025-01-31T08:00:00.000+01:00:30",
        "2025-01-31T08:00:00z",
        "2025-01-31t08:00:00Z",
        "2025-01-31 08:00:00Z",
        "2025-01-31T08:00Z",
        "2025-01-31T08:00:00.Z",
        "2025-01-31T08:00:00.1234567Z",
        "2025-01-31T08:00:00,5Z",
        "2025-01-31T08:00:00ZZ",
        "2025-01-31T08:00:00Z\n",
        "2025-1-31T08:00:00Z",
        "25-01-31T08:00:00Z",
        "+2025-01-31T08:00:00Z",
        "2025-02-29T08:00:00Z",
        "2025-04-31T08:00:00Z",
        "2025-00-10T08:00:00Z",
        "2025-01-31T24:00:00Z",
        "2025-01-31T08:60:00Z",
        "2025-01-31T23:59:60Z",
        "0000-01-31T08:00:00Z",
        "2025-01-31",
        "08:00:00Z",
        "2025-W05-5T08:00:00Z",
        "\uff12025-01-31T08:00:00Z",  # a fullwidth digit
        "",
        1738310400,
        None,
        datetime(2025, 1, 31, tzinfo=UTC),
    ],
)
def test_other_time_spellings_are_refused(text):
    with raises_exactly(InvalidEnvelope, "sent_at"):
        parse_timestamp(text, "sent_at")


@settings(max_examples=100)
@given(moment=moments, timespec=st.sampled_from(["seconds", "milliseconds", "microseconds"]))
def test_what_isoformat_writes_parses_back(moment, timespec):
    for zulu in (False, True):
        text = spell_time(moment, timespec, zulu)
        parsed = parse_timestamp(text, "issued_at")
        assert parsed.utcoffset() == moment.utcoffset()
        unit = {"seconds": 10**6, "milliseconds": 1000, "microseconds": 1}[timespec]
        assert parsed == moment.replace(microsecond=moment.microsecond // unit * unit)


@settings(max_examples=100)
@given(text=times)
def test_times_strategy_writes_only_valid_times(text):
    assert parse_timestamp(text, "sent_at").utcoffset() is not None


@settings(max_examples=100)
@given(hours=st.integers(0, 99), minutes=st.integers(0, 99), sign=st.sampled_from("+-"))
def test_offsets_beyond_23_59_are_refused(hours, minutes, sign):
    text = f"2025-01-31T08:00:00{sign}{hours:02d}:{minutes:02d}"
    if hours <= 23 and minutes <= 59:
        offset = timedelta(hours=hours, minutes=minutes) * (1 if sign == "+" else -1)
        assert parse_timestamp(text, "t").utcoffset() == offset
        assert parse_timestamp(text, "t").tzinfo == timezone(offset)
    else:
        # datetime.fromisoformat alone would read +12:60 as 13 hours.
        with raises_exactly(InvalidEnvelope):
            parse_timestamp(text, "t")
