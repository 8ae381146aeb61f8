"""WebSocket protocol v1: one pydantic model per frame, discriminated on `type`.

This module is the protocol's single definition. Inbound frames are parsed
strictly (extra fields forbidden, no type coercion) before any logic runs;
outbound frames have models too, which the tests validate every emitted
event against. docs/protocol.md mirrors the registries at the bottom.
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
    model_validator,
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


class StoredEnvelope(BaseModel):
    """An envelope as the server sends it back (history, events, the library): its shape
    only. It was checked as `Envelope` when it came in; an answer never re-judges a
    stored body, so a row kept under an older, looser rule still reads back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: dict[str, HeaderValue]
    ciphertext: str


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


# --- Server → client --------------------------------------------------------


class Loose(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserRef(Loose):
    id: int
    username: str


class DepartmentState(Loose):
    id: int
    name: str
    slug: str
    role: Literal["head", "member"]
    event_seq: int


class Hello(Loose):
    type: Literal["hello"]
    protocol_version: int
    user: UserRef
    departments: list[DepartmentState]
    cursor: dict[str, int]
    limits: dict[str, float]


class Ack(Loose):
    type: Literal["ack"]
    id: str
    result: dict[str, Any]


class Error(Loose):
    type: Literal["error"]
    id: str | None
    code: str
    message: str
    data: dict[str, Any] | None = None


class AttachmentOut(Loose):
    id: int
    upload: str
    thumbnail: str | None
    keywords: list[str]
    consent: ConsentScope
    captured_at: str
    annotates: int | None


class RedactedOut(Loose):
    at: str
    by: int


class CorrectionOut(Loose):
    """The latest correction of a message: version 2 is the first correction (the
    message itself is version 1). Its envelope's `corrects` names the message's
    client_msg_id; `envelope` is None only in a replayed `message.corrected`
    of a message redacted since."""

    id: int
    version: int
    client_msg_id: str
    envelope: StoredEnvelope | None
    corrected_at: str


class MessageOut(Loose):
    """A message as members get it. A redacted one is a tombstone: `redacted` set,
    no envelope, no photos (its ciphertext is never sent to a member again).
    `correction` is the latest version of a corrected message, None otherwise."""

    id: int
    thread: int
    seq: int
    sender: UserRef
    client_msg_id: str
    envelope: StoredEnvelope | None
    created_at: str
    attachments: list[AttachmentOut]
    redacted: RedactedOut | None
    correction: CorrectionOut | None

    @model_validator(mode="after")
    def tombstone_has_no_content(self) -> "MessageOut":
        if self.redacted is None and self.envelope is None:
            raise ValueError("only a redacted message comes without its envelope")
        if self.redacted is not None and (
            self.envelope is not None or self.attachments or self.correction is not None
        ):
            raise ValueError("a redacted message comes without its envelope, photos and correction")
        if self.correction is not None and self.correction.envelope is None:
            raise ValueError("a message's correction comes with its envelope")
        return self


class DepartmentEvent(Loose):
    department: int
    event_seq: int


class MessageNew(DepartmentEvent):
    type: Literal["message.new"]
    message: MessageOut


class ReceiptNew(DepartmentEvent):
    type: Literal["receipt.new"]
    thread: int
    user: UserRef
    up_to_seq: int
    read_at: str


class MemberEvent(DepartmentEvent):
    type: Literal["member.admitted", "member.removed", "member.role_changed"]
    user: UserRef
    role: Literal["head", "member"]
    by: UserRef


class ThreadOut(Loose):
    id: int
    department: int
    patient: int
    title: str
    created_by: int
    created_at: str
    closed_at: str | None
    last_seq: int


class ThreadEvent(DepartmentEvent):
    type: Literal["thread.created", "thread.closed", "thread.reopened"]
    thread: ThreadOut
    by: UserRef | None = None


class MembershipSigned(DepartmentEvent):
    """A statement joined the department's signed membership chain: read it again."""

    type: Literal["membership.signed"]
    kind: Literal["admit", "remove", "role", "replace"]
    subject: int
    seq: int
    hash: str
    by: UserRef | None


class KeyRotated(DepartmentEvent):
    """A new room key version exists: fetch your wrap before posting again."""

    type: Literal["key.rotated"]
    key_version: int
    by: UserRef


class MessageRef(Loose):
    id: int
    thread: int
    seq: int


class MessageRedacted(DepartmentEvent):
    """A message was redacted: clients drop its content and show a tombstone."""

    type: Literal["message.redacted"]
    message: MessageRef
    by: UserRef
    redacted_at: str


class MessageCorrected(DepartmentEvent):
    """A sender corrected a message: clients check the correction's binding to it
    (its header's `corrects`, sender and thread) and show the new text, marked edited."""

    type: Literal["message.corrected"]
    message: MessageRef
    by: UserRef
    correction: CorrectionOut


class PersonOut(Loose):
    """A user as lists of people show them (the API's UserCard)."""

    id: int
    username: str
    display_name: str


class AdviceRoleOut(Loose):
    id: int
    name: str


class AdviceAddressee(Loose):
    """Who the request is put to now: a person or an on-call role (the other is null)."""

    role: AdviceRoleOut | None
    user: PersonOut | None


class AdviceStepOut(Loose):
    """One line of a request's timeline; `actor` null for the server's scheduler.
    `data` holds ids and reasons only: `to`, `why`, `from`, `due_at`, `answer`."""

    number: int
    kind: Literal["requested", "escalated", "realerted", "passed", "acknowledged", "cancelled"]
    at: str
    actor: PersonOut | None
    holder: PersonOut | None
    data: dict[str, Any]


class AdviceRequestOut(Loose):
    """An advice request (docs/advice.md): who asked, whom, how urgently, who has it now,
    its state and its latest step. The question is the thread message `message`,
    encrypted end to end; the server knows only these. A consult's request has no
    `message`: its question is posted in its thread once the consult opens."""

    id: int
    department: int
    thread: int
    patient: int
    message: int | None
    requester: PersonOut
    priority: Literal["routine", "urgent", "emergency"]
    to: AdviceAddressee
    holder: PersonOut | None
    status: Literal["open", "acknowledged", "cancelled"]
    answer: Literal["on_it", "call_me"] | None
    answered_by: PersonOut | None
    answered_at: str | None
    due_at: str | None
    created_at: str
    steps: int
    last_step: AdviceStepOut | None


class AdviceUpdated(DepartmentEvent):
    """An advice request was made or changed (docs/advice.md): its state and the step
    that changed it; clients showing it redraw, its new holder is alerted."""

    type: Literal["advice.updated"]
    request: AdviceRequestOut


class OncallChanged(DepartmentEvent):
    """The department's on-call roles or roster changed (docs/oncall.md): screens showing
    them read them again; who is on duty is the roster's to answer, not the event's."""

    type: Literal["oncall.changed"]
    change: Literal[
        "role_created",
        "role_renamed",
        "role_archived",
        "shift_added",
        "shift_removed",
        "roster_imported",
    ]
    role: int | None
    by: UserRef


class ConsultOut(Loose):
    """A consult (docs/advice.md, "Consults"): a thread of `department` opened to one
    guest from elsewhere; `state` pending until a member signs the guest in."""

    thread: int
    department: int
    patient: int
    title: str
    state: Literal["pending", "open", "ended"]
    guest: UserRef
    opened_by: int | None
    opened_at: str | None
    ended_at: str | None
    key_version: int


class ConsultUpdated(DepartmentEvent):
    """A consult was asked for, opened or ended; also sent to its guest's sockets, who
    are no member (their client reads the thread and its key again)."""

    type: Literal["consult.updated"]
    consult: ConsultOut


class PatientRef(Loose):
    """A patient as the hospital knows them (patients/actions.py `patient_data`)."""

    id: int
    ipp: str
    family_name: str
    given_name: str
    birth_date: str
    sex: str
    ward: str | None


class PreviousPatient(Loose):
    id: int
    ipp: str


class ThreadPatientChanged(DepartmentEvent):
    """The thread's patient is another record now: the hospital merged two records of one
    patient (HL7 A40, FHIR Patient.link), and the merged one's threads moved to the
    surviving one (docs/interop.md). The thread, its messages and keys are unchanged."""

    type: Literal["thread.patient_changed"]
    thread: ThreadOut
    patient: PatientRef
    previous: PreviousPatient
    reason: Literal["merge"]


class TypingOut(Loose):
    type: Literal["typing"]
    department: int
    thread: int
    user: UserRef
    active: bool


OutboundFrame = Annotated[
    Hello
    | Ack
    | Error
    | MessageNew
    | ReceiptNew
    | MemberEvent
    | ThreadEvent
    | KeyRotated
    | MembershipSigned
    | MessageRedacted
    | MessageCorrected
    | AdviceUpdated
    | OncallChanged
    | ConsultUpdated
    | ThreadPatientChanged
    | TypingOut,
    Field(discriminator="type"),
]
OUTBOUND = TypeAdapter(OutboundFrame)


def validate_outbound(frame: dict[str, Any]) -> BaseModel:
    """Tests call this on every frame the server sends."""
    return OUTBOUND.validate_python(frame)
