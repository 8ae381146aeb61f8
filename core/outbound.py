"""WebSocket protocol v1, server → client: one pydantic model per frame the server
sends, discriminated on `type`, and the shapes the HTTP API shares with them.

The inbound half, the limits and the close codes are in core/protocol.py. The server
builds these frames itself, so the models only forbid extra fields: the tests validate
every emitted frame against `OUTBOUND` (`validate_outbound`), and docs/protocol.md
mirrors that registry.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from core.protocol import ConsentScope, HeaderValue


class StoredEnvelope(BaseModel):
    """An envelope as the server sends it back (history, events, the library): its shape
    only. It was checked as `Envelope` when it came in; an answer never re-judges a
    stored body, so a row kept under an older, looser rule still reads back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: dict[str, HeaderValue]
    ciphertext: str


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


class MessageFields(Loose):
    """A message's fields, as the socket and the HTTP API give them (`MessageOut`, and
    the library's and a case's `ReleasedMessage`)."""

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


class MessageOut(MessageFields):
    """A message as members get it. A redacted one is a tombstone: `redacted` set,
    no envelope, no photos (its ciphertext is never sent to a member again).
    `correction` is the latest version of a corrected message, None otherwise."""

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
    """A patient as the hospital knows them (patients/actions.py `patient_data`); an HTTP
    search lists the same fields (core/api_schemas/threads.py `Patient`)."""

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
