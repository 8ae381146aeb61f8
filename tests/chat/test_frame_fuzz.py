"""Hypothesis-generated frames against a real consumer, through the full ASGI stack.

Every frame type of core/protocol.py, well formed with random values and malformed
(keys missing or extra, wrong types, huge numbers, NUL and lone surrogates, deep
nesting, JSON that is no object, binary frames, invalid UTF-8). Whatever comes in, the
answer is an `ack` or a typed `error` (a known code, never `internal_error`), valid
against the outbound schema; the socket is never closed (1011 or 4500 would be a
crash) and still answers a ping.

Each example is a batch of frames on one socket. The default run is short (CI, a few
seconds); a long one, without pyproject.toml's 120 seconds a test:

    ROUNDS_FUZZ_EXAMPLES=5000 .venv/bin/pytest --timeout=0 tests/chat/test_frame_fuzz.py
"""

import base64
import json
import os
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core import outbound, protocol
from core.errors import ErrorCode
from tests.support.sockets import connect_with, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

EXAMPLES = int(os.environ.get("ROUNDS_FUZZ_EXAMPLES", "100"))
# Codes a frame may be refused with; internal_error means the server failed.
TYPED_CODES = {code.value for code in ErrorCode} - {ErrorCode.INTERNAL_ERROR.value}
SCHEMA_CODES = {ErrorCode.INVALID_JSON, ErrorCode.INVALID_FRAME, ErrorCode.UNKNOWN_TYPE}


@dataclass(frozen=True)
class Known:
    """An id of the test's hospital, put in when the frame is sent (its primary keys are
    only known then), so frames reach the handlers' permission and state checks."""

    name: str


def resolve(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, Known):
        return ids[value.name]
    if isinstance(value, dict):
        return {
            resolve(k, ids) if isinstance(k, Known) else k: resolve(v, ids)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [resolve(item, ids) for item in value]
    return value


# --- Values --------------------------------------------------------------------------

lone_surrogates = st.integers(0xD800, 0xDFFF).map(chr)
# Text with what no database column stores: NUL and lone surrogates among the rest.
hostile_text = st.lists(
    st.one_of(st.characters(), st.just("\x00"), lone_surrogates), max_size=80
).map("".join)
any_text = st.one_of(st.text(max_size=80), hostile_text)
huge_ints = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**31, 2**53, 2**62, 2**62 + 1, 2**63, 2**64, -(2**63) - 1, 10**300]),
)
json_scalars = st.one_of(st.none(), st.booleans(), huge_ints, st.floats(allow_nan=False), any_text)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)
    ),
    max_leaves=12,
)

positive_ids = st.one_of(st.integers(1, 2**62), st.sampled_from([1, 2, 3, 2**53 - 1, 2**62]))
thread_ids = st.one_of(st.sampled_from([Known("thread"), Known("vascular_thread")]), positive_ids)
message_ids = st.one_of(st.just(Known("message")), positive_ids)
frame_ids = st.text(min_size=1, max_size=64)
client_msg_ids = st.from_regex(r"[A-Za-z0-9_\-]{8,64}", fullmatch=True)
uuids = st.uuids().map(str)
keywords = st.from_regex(r"[-a-zA-Z0-9_]{1,64}", fullmatch=True)
header_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=40)
)
envelopes = st.fixed_dictionaries(
    {
        "header": st.dictionaries(st.text(max_size=12), header_values, max_size=6),
        "ciphertext": st.binary(min_size=1, max_size=120).map(
            lambda raw: base64.b64encode(raw).decode()
        ),
    }
)
attachments = st.fixed_dictionaries(
    {"upload": uuids, "consent": st.sampled_from(["care", "teaching", "publication"])},
    optional={
        "thumbnail": st.none() | uuids,
        "keywords": st.lists(keywords, max_size=16, unique=True),
        "captured_at": st.none() | st.datetimes().map(lambda when: when.isoformat() + "+00:00"),
        "annotates": st.none() | message_ids,
    },
)
cursor_keys = st.one_of(st.just(Known("plastic")), st.integers(0, 10**18 - 1).map(str))


def frame(kind: str, required: dict, optional: dict | None = None) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {"type": st.just(kind), "id": frame_ids, **required}, optional=optional or {}
    )


# One strategy per inbound frame type, values within the schema's bounds.
WELL_FORMED = {
    "message.post": frame(
        "message.post",
        {"thread": thread_ids, "client_msg_id": client_msg_ids, "envelope": envelopes},
        {"attachments": st.lists(attachments, max_size=3)},
    ),
    "history.fetch": frame(
        "history.fetch",
        {"thread": thread_ids},
        {"before_seq": st.none() | positive_ids, "limit": st.integers(1, 200)},
    ),
    "resume": frame(
        "resume",
        {
            "cursor": st.dictionaries(
                cursor_keys, st.one_of(st.integers(0, 50), st.integers(min_value=0)), max_size=4
            )
        },
    ),
    "receipt.read": frame("receipt.read", {"thread": thread_ids, "up_to_seq": positive_ids}),
    "receipts.fetch": frame(
        "receipts.fetch", {"thread": thread_ids}, {"seq": st.none() | positive_ids}
    ),
    "typing": frame("typing", {"thread": thread_ids}, {"active": st.booleans()}),
    "message.redact": frame(
        "message.redact",
        {"message": message_ids},
        {"reason": st.none() | st.text(max_size=protocol.MAX_REDACTION_REASON) | hostile_text},
    ),
    "message.correct": frame(
        "message.correct",
        {"message": message_ids, "client_msg_id": client_msg_ids, "envelope": envelopes},
    ),
    "ping": frame("ping", {}),
}
assert set(WELL_FORMED) == set(protocol.INBOUND_TYPES), "a frame type has no strategy"

well_formed = st.one_of(*WELL_FORMED.values())


@st.composite
def mutated(draw) -> dict:
    """A well-formed frame with one thing wrong: a key gone, a key too many, a value
    replaced by any JSON value (wrong type, huge number, hostile text, nesting)."""
    data = dict(draw(well_formed))
    how = draw(st.sampled_from(["drop", "extra", "replace"]))
    if how == "drop":
        del data[draw(st.sampled_from(sorted(data)))]
    elif how == "extra":
        data[draw(any_text)] = draw(json_values)
    else:
        data[draw(st.sampled_from(sorted(data)))] = draw(json_values)
    return data


def nested(depth: int, opener: str, closer: str) -> str:
    return opener * depth + closer * depth


# Text that is no valid frame: broken or deep JSON, numbers past int()'s digit limit.
raw_texts = st.one_of(
    st.text(min_size=1, max_size=200),
    hostile_text.filter(bool),
    st.builds(nested, st.integers(1, 100_000), st.just("["), st.just("]")),
    st.builds(nested, st.integers(1, 50_000), st.just('{"a":'), st.just("}")),
    st.integers(4000, 6000).map(lambda digits: '{"type":"ping","id":"p","n":' + "9" * digits + "}"),
    st.sampled_from(["{", '{"type":"ping","id":', "NaN", "[1,2", '{"id":"x"}{}']),
)


@dataclass(frozen=True)
class Sent:
    """One frame as it goes out: a JSON value (as text, or as UTF-8 in a binary frame),
    raw text or raw bytes."""

    value: Any = None
    binary: bool = False
    text: str | None = None
    data: bytes | None = None


sent_frames = st.one_of(
    well_formed.map(lambda v: Sent(value=v)),
    mutated().map(lambda v: Sent(value=v)),
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: Sent(value=v)),
    st.dictionaries(any_text, json_values, max_size=5).map(lambda v: Sent(value=v)),
    raw_texts.map(lambda t: Sent(text=t)),
    st.one_of(well_formed, mutated()).map(lambda v: Sent(value=v, binary=True)),
    st.binary(min_size=1, max_size=200).map(lambda b: Sent(data=b)),
    st.sampled_from([b"\xff\xfe", b'{"type":"ping","id":"\xc3"}', b"\xed\xa0\x80"]).map(
        lambda b: Sent(data=b)
    ),
)


# --- Sending --------------------------------------------------------------------------


def frame_id(text: str) -> str | None:
    """The id an answer may carry: the frame's own, if it has one (cut to 64 characters)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"][:64]
    return None


async def answer(communicator, sent: Sent, ids: dict[str, int]) -> dict[str, Any]:
    """Send one frame, check its answer and return it (events are passed over)."""
    if sent.data is not None:
        await communicator.send_to(bytes_data=sent.data)
        text = sent.data.decode(errors="replace")
    else:
        # ensure_ascii: a lone surrogate travels as a JSON escape, as a browser would send it.
        text = sent.text if sent.text is not None else json.dumps(resolve(sent.value, ids))
        if sent.binary:
            await communicator.send_to(bytes_data=text.encode())
        else:
            await communicator.send_to(text_data=text)
    expected_id = frame_id(text)
    while True:
        output = await communicator.receive_output(timeout=5)
        assert output["type"] == "websocket.send", f"socket closed: {output} after {sent}"
        reply = json.loads(output["text"])
        outbound.validate_outbound(reply)
        if reply["type"] in ("ack", "error"):
            break
    if reply["type"] == "ack":
        assert reply["id"] == expected_id, (reply, sent)
    else:
        assert reply["code"] in TYPED_CODES, (reply, sent)
        assert reply["id"] in (None, expected_id), (reply, sent)
    return reply


async def assert_alive(communicator) -> None:
    """A ping still gets its ack (past the events earlier frames caused, such as the
    sender's own `typing`, which Redis may deliver after that frame's ack)."""
    reply = await answer(communicator, Sent(value={"type": "ping", "id": "alive"}), {})
    assert reply["type"] == "ack", reply


@pytest.fixture
async def bob(live_hospital):
    """Bob's token and the hospital's ids, made once for all the examples of a test."""
    h = live_hospital
    from chat.models import Message

    message = await Message.objects.filter(thread=h.thread).afirst()
    ids = {
        "thread": h.thread.pk,
        "vascular_thread": h.vascular_thread.pk,
        "plastic": str(h.plastic.pk),
        "message": message.pk if message else 1,
    }
    return await token_for(h.surgeon_bob), ids


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(batch=st.lists(sent_frames, min_size=1, max_size=8))
# Issue 17's finding: a lone surrogate in the id was echoed in the error, then 1011.
@example(batch=[Sent(value={"type": "ping", "id": "\ud800"})])
@example(
    batch=[
        Sent(
            value={
                "type": "history.fetch",
                "id": "n",
                "thread": Known("thread"),
                "before_seq": 2**63,
            }
        )
    ]
)
@example(batch=[Sent(value={"type": "resume", "id": "r", "cursor": {Known("plastic"): 10**30}})])
@example(batch=[Sent(text=nested(100_000, "[", "]")), Sent(data=b"\xed\xa0\x80")])
async def test_any_frame_gets_a_typed_answer(bob, batch):
    token, ids = bob
    communicator, _ = await connect_with(token)
    try:
        for sent in batch:
            await answer(communicator, sent, ids)
        await assert_alive(communicator)
    finally:
        await communicator.disconnect()


@FUZZ
@given(frame=well_formed)
async def test_well_formed_frames_of_every_type(bob, frame):
    token, ids = bob
    communicator, _ = await connect_with(token)
    try:
        reply = await answer(communicator, Sent(value=frame), ids)
        # Refused, if at all, past its schema (the strategies keep within it): NUL in a
        # text is not the schema's to refuse, but the one storable-text check's.
        assert reply["type"] == "ack" or reply["code"] not in SCHEMA_CODES, (reply, frame)
        await assert_alive(communicator)
    finally:
        await communicator.disconnect()
