"""WebSocket protocol v1, client → server: one pydantic model per frame, discriminated
on `type`, with the protocol's version, limits and close codes.

Inbound frames are parsed strictly (extra fields forbidden, no type coercion) before
any logic runs. The frames the server sends are modelled in core/outbound.py.
docs/protocol.md mirrors the registry at the bottom (`INBOUND_TYPES`).
"""

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
)

PROTOCOL_VERSION = 1

# Close codes (RFC 6455 leaves 4000-4999 to applications).
CLOSE_UNAUTHENTICATED = 4401  # no valid session or token, or signed out
CLOSE_TOO_MANY_CONNECTIONS = 4409
CLOSE_FLOOD = 4429  # kept flooding after rate_limited errors
# 4500 and not 1011: a server may not send 1011 over autobahn (daphne), which
# refuses it and leaves the socket open. 4503: this process is restarting
# (drained on SIGTERM); reconnect at once, another process takes over.
CLOSE_INTERNAL = 4500
CLOSE_RESTARTING = 4503

MAX_HEADER_BYTES = 4096
MAX_HEADER_KEYS = 32

FrameId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ClientMsgId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{8,64}$")]
PositiveId = Annotated[int, Field(ge=1, le=2**62)]
# Canonical lower-case UUIDs only: the client compares them, as text, with its signed body.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
UploadId = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
KeywordCode = Annotated[str, StringConstraints(pattern=r"^[-a-zA-Z0-9_]{1,64}$")]
ConsentScope = Literal["care", "teaching", "publication"]
MAX_ATTACHMENTS = 10
MAX_KEYWORDS = 16
MAX_REDACTION_REASON = 200
HeaderValue = str | int | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Envelope(Strict):
    """An end-to-end encrypted body: a small routing header and the ciphertext.

    The frame schema only bounds it; core.crypto.verify_envelope then checks
    it as a v2 envelope signed by the sender (chat.posting.check_envelope).
    The server stores and relays both as they came and never decrypts.
    """

    header: dict[str, HeaderValue]
    ciphertext: Annotated[str, StringConstraints(min_length=4)]

    @field_validator("header")
    @classmethod
    def header_is_small(cls, header: dict[str, HeaderValue]) -> dict[str, HeaderValue]:
        if len(header) > MAX_HEADER_KEYS:
            raise ValueError(f"at most {MAX_HEADER_KEYS} header fields")
        if len(json.dumps(header, separators=(",", ":"))) > MAX_HEADER_BYTES:
            raise ValueError(f"header over {MAX_HEADER_BYTES} bytes")
        return header

    @field_validator("ciphertext")
    @classmethod
    def ciphertext_is_base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("ciphertext must be standard base64") from None
        return value


class AttachmentRef(Strict):
    """A photo of a post, as the server may see it: blob ids and index metadata.

    The file keys, hashes and caption are in the encrypted body; these fields
    are what the library indexes (docs/media.md).
    """

    upload: UploadId
    thumbnail: UploadId | None = None
    keywords: Annotated[list[KeywordCode], Field(max_length=MAX_KEYWORDS)] = []
    consent: ConsentScope
    captured_at: str | None = None
    annotates: PositiveId | None = None

    @field_validator("keywords")
    @classmethod
    def keywords_are_distinct(cls, keywords: list[str]) -> list[str]:
        if len(set(keywords)) != len(keywords):
            raise ValueError("keywords must be distinct")
        return keywords

    @field_validator("captured_at")
    @classmethod
    def captured_at_is_aware(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("captured_at must be an ISO 8601 date and time") from None
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("captured_at must carry a UTC offset")
        return value


# --- Client → server --------------------------------------------------------


class ClientFrame(Strict):
    id: FrameId


class MessagePost(ClientFrame):
    """Post an envelope to a thread; `client_msg_id` makes a retry safe.

    `attachments` names the photos the body describes (at most 10); a post
    with photos is stored on its own, with its Attachment rows.
    """

    type: Literal["message.post"]
    thread: PositiveId
    client_msg_id: ClientMsgId
    envelope: Envelope
    attachments: Annotated[list[AttachmentRef], Field(max_length=MAX_ATTACHMENTS)] = []


class HistoryFetch(ClientFrame):
    """A page of a thread's messages, oldest first, before `before_seq`."""

    type: Literal["history.fetch"]
    thread: PositiveId
    before_seq: PositiveId | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class Resume(ClientFrame):
    """Replay every department event after the cursor, then continue live."""

    type: Literal["resume"]
    cursor: dict[str, Annotated[int, Field(ge=0)]]

    @field_validator("cursor")
    @classmethod
    def keys_are_ids(cls, cursor: dict[str, int]) -> dict[str, int]:
        if len(cursor) > 500:
            raise ValueError("at most 500 departments")
        for key in cursor:
            # isascii: str.isdigit() also accepts "²", which int() then refuses.
            if not (key.isascii() and key.isdigit()) or len(key) > 18:
                raise ValueError("cursor keys are department ids")
        return cursor


class ReceiptRead(ClientFrame):
    """Mark the thread read up to and including message `up_to_seq`."""

    type: Literal["receipt.read"]
    thread: PositiveId
    up_to_seq: PositiveId


class ReceiptsFetch(ClientFrame):
    """Who read the thread how far (or, with `seq`, who read that message and when)."""

    type: Literal["receipts.fetch"]
    thread: PositiveId
    seq: PositiveId | None = None


class Typing(ClientFrame):
    """Ephemeral: relayed to connected members of the department, never stored."""

    type: Literal["typing"]
    thread: PositiveId
    active: bool = True


class MessageRedact(ClientFrame):
    """Hide a message from members: its sender's "delete", or a head's moderation.

    The message and its photos are kept for compliance (chat/redaction.py).
    `reason` is a plain-text note for the audit trail, seen by the server and
    compliance staff, never by members: no patient details in it.
    """

    type: Literal["message.redact"]
    message: PositiveId
    reason: Annotated[str, StringConstraints(max_length=MAX_REDACTION_REASON)] | None = None


class MessageCorrect(ClientFrame):
    """Replace the text of one's own recent message with a new signed envelope.

    The envelope is sealed like a post's (current room key, this thread, this
    sender, `client_msg_id`) and its header's `corrects` names the
    client_msg_id of `message`. `client_msg_id` makes a retry safe. Every
    version is kept for compliance (chat/corrections.py).
    """

    type: Literal["message.correct"]
    message: PositiveId
    client_msg_id: ClientMsgId
    envelope: Envelope


class Ping(ClientFrame):
    type: Literal["ping"]


INBOUND_MODELS = (
    MessagePost,
    HistoryFetch,
    Resume,
    ReceiptRead,
    ReceiptsFetch,
    Typing,
    MessageRedact,
    MessageCorrect,
    Ping,
)
InboundFrame = Annotated[
    MessagePost
    | HistoryFetch
    | Resume
    | ReceiptRead
    | ReceiptsFetch
    | Typing
    | MessageRedact
    | MessageCorrect
    | Ping,
    Field(discriminator="type"),
]
INBOUND = TypeAdapter(InboundFrame)
INBOUND_TYPES: dict[str, type[ClientFrame]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in INBOUND_MODELS
}


def parse_inbound(data: Any) -> InboundFrame:
    """Raises pydantic.ValidationError; the consumer turns it into a typed error."""
    return INBOUND.validate_python(data)
