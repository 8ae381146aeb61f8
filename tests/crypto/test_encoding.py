"""Strict base64 and canonical JSON: one accepted spelling per value."""

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.crypto import InvalidEnvelope, b64decode, b64encode, canonical_json
from chat.crypto.encoding import (
    MAX_SAFE_INTEGER,
    check_fingerprint,
    check_id,
    check_version,
    parse_canonical_json,
)
from chat.crypto.errors import UnsupportedVersion


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
