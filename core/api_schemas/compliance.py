"""Review cases, their audit slice and releases (compliance/api.py); legal holds
(retention/api.py)."""

from typing import Any

from core.api_schemas.common import (
    Body,
    CaseRef,
    KeyHolder,
    PatientIdentity,
    PublicKey,
    Seal,
    UserRef,
)
from core.api_schemas.departments import Chain
from core.api_schemas.media import ReleasedMessage
from core.outbound import CorrectionOut, RedactedOut, ThreadOut

# --- Cases ------------------------------------------------------------------------


class CaseScope(Body):
    """What a case covers: a patient, a department, a user, between two times (each
    None when not restricted)."""

    patient: int | None
    department: int | None
    user: int | None
    date_from: str | None
    date_to: str | None


class Case(Body):
    """A review case: its reference and reason, scope, and who opened, approved (under
    four-eyes) and closed it, and when."""

    id: int
    reference: str
    reason: str
    scope: CaseScope
    opened_by: UserRef
    opened_at: str
    four_eyes: bool
    awaits_approval: bool
    approved_by: UserRef | None
    approved_at: str | None
    closed_by: UserRef | None
    closed_at: str | None


# --- The case's audit slice and its proof ----------------------------------------


class AuditEntryFields(Body):
    """An audit entry's fields as a case's slice shows them."""

    id: int
    at: str
    actor: UserRef | None
    action: str
    department: int | None
    object_type: str
    object_id: str
    data: dict[str, Any]


class AuditEntry(AuditEntryFields):
    """An entry of the case's audit slice, with its seal (None until sealed)."""

    seal: Seal | None


class CaseAudit(Body):
    """The audit entries that concern the case, oldest first."""

    case: int
    entries: list[AuditEntry]


class ProvedSeal(Body):
    """A seal as a proof needs it: its predecessor's hash, and whether the entry's
    content was quarantined (its hash kept, its data set aside)."""

    seq: int
    prev_hash: str
    hash: str
    quarantined: bool


class AuditRecord(Body):
    """The fields the seal chain covers, as they were hashed."""

    id: int
    at: str
    actor_id: int | None
    actor_username: str
    action: str
    department_id: int | None
    object_type: str
    object_id: str
    data: dict[str, Any]
    ip: str | None


class ProvedEntry(AuditEntryFields):
    """An entry of the slice with what proves it: its sealed record and its path to the
    checkpoint's tree root (hex)."""

    seal: ProvedSeal
    record: AuditRecord
    path: list[str]


class CheckpointV1(Body):
    """A signed audit checkpoint written before tree roots (format v1: no `root`)."""

    seq: int
    hash: str
    count: int
    at: str
    key: str
    signature: str
    format: str


class Checkpoint(CheckpointV1):
    """A signed audit checkpoint: the head seal, the entry count, the tree root, the
    signing key and its signature (hex)."""

    root: str


class AuditProof(Body):
    """The case's slice up to a checkpoint, each entry with its proof; `later` counts
    the entries written after it (the next export has them)."""

    case: int
    checkpoint: Checkpoint | CheckpointV1
    checkpoint_name: str
    later: int
    entries: list[ProvedEntry]


# --- Threads released under a case ------------------------------------------------


class CaseThread(ThreadOut):
    """A thread the case covers, with its patient's identity."""

    patient: PatientIdentity  # type: ignore[assignment]  # the id, then the whole patient


class CaseThreads(Body):
    """The threads the case covers, newest first; `truncated`: more than were listed."""

    case: int
    threads: list[CaseThread]
    truncated: bool


class ExplainedRedaction(RedactedOut):
    """A redaction with the why its audit entry kept: the reason given, and the right
    it was made by (`sender` or `head`)."""

    reason: str
    right: str | None


class TimelineMessage(ReleasedMessage):
    """A message of a review: kept content, its redaction explained when audited, and
    every correction of it (oldest first; `correction` is the latest), each a version
    with its own signed envelope."""

    redacted: ExplainedRedaction | RedactedOut | None
    corrections: list[CorrectionOut]


class TimelineReceipt(Body):
    """A read receipt within the case's dates."""

    user: UserRef
    up_to_seq: int
    read_at: str


class TimelineAttachment(Body):
    """A photo of a message of the page, with its index fields."""

    id: int
    message: int
    position: int
    upload: str
    thumbnail: str | None
    captured_at: str
    consent: str
    annotates: int | None
    sender: int
    patient: int
    keywords: list[str]


class MembershipRecord(Body):
    """A membership, current or closed: who admitted and who removed, and when."""

    user: UserRef
    role: str
    admitted_at: str
    admitted_by: int | None
    removed_at: str | None
    removed_by: int | None


class ComplianceWrap(Body):
    """A room key version's wrap for the institution's compliance key."""

    recipient_fingerprint: str
    wrapper: int
    record: dict[str, Any]
    created_at: str


class KeyVersionRecord(Body):
    """A room key version with its compliance wraps (`signed` None for a version kept
    from before signed records)."""

    version: int
    signed: dict[str, Any] | None
    created_by: int
    created_at: str
    compliance_wraps: list[ComplianceWrap]


class IdentityRecord(Body):
    """An identity key a user published, replaced or not."""

    user: int
    public: PublicKey
    replaced_at: str | None


class DepartmentRecord(Body):
    """The thread's department for a review: every membership over time, its signed
    chain, every key version with the compliance wraps, and whoever made them."""

    id: int
    memberships: list[MembershipRecord]
    chain: Chain
    key_versions: list[KeyVersionRecord]
    compliance: KeyHolder | None
    wrappers: dict[str, IdentityRecord]


class Timeline(Body):
    """A page of a covered thread's full timeline for an offline review: messages after
    `after_seq`, the receipts and photos of the page, the department's keys and chain,
    and the senders' identities (by fingerprint)."""

    case: int
    thread: CaseThread
    messages: list[TimelineMessage]
    has_more: bool
    receipts: list[TimelineReceipt]
    attachments: list[TimelineAttachment]
    department: DepartmentRecord
    # A consult thread's own key versions (docs/crypto.md §14); empty for any other thread.
    thread_key_versions: list[KeyVersionRecord]
    identities: dict[str, IdentityRecord]


# --- The access report -------------------------------------------------------------


class Who(Body):
    """Who made an access: id and username as the entry kept them, name and role then."""

    id: int
    username: str
    name: str
    role: str


class AccessedObject(Body):
    """What was accessed, with a label for people."""

    type: str
    id: str
    label: str


class DepartmentRef(Body):
    """A department by id and name."""

    id: int
    name: str


class AccessRow(Body):
    """One access to the patient's data: when, who, what, and how certain it is that it
    reached this patient."""

    id: int
    at: str
    who: Who | None
    action: str
    what: str
    object: AccessedObject
    department: DepartmentRef | None
    case: int | None
    certainty: str
    seal: Seal | None


class AccessReport(Body):
    """A page of the patient's access report under a case, oldest first; `next_after`
    asks for the next page (None: the last). `?format=csv|pdf` gives the whole
    report as a file instead."""

    case: CaseRef
    patient: PatientIdentity
    date_from: str | None
    date_to: str | None
    generated_at: str
    entries: list[AccessRow]
    next_after: int | None


# --- Legal holds ---------------------------------------------------------------------


class HoldScope(Body):
    """What a hold keeps from purges: a patient, a thread or a user."""

    kind: str
    id: int


class Hold(Body):
    """A legal hold: its scope, the case it serves, why, who placed and released it."""

    id: int
    scope: HoldScope
    case: CaseRef
    reason: str
    placed_by: UserRef
    placed_at: str
    active: bool
    released_by: UserRef | None
    released_at: str | None
    release_reason: str | None
