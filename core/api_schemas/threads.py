"""Threads, history, receipts and redaction (chat/api.py); patients (patients/api.py).

A thread and a message are the socket's own shapes (core/outbound.py): the
history a client pages through is what the socket pushed.
"""

from core.api_schemas.common import Body, UserRef
from core.outbound import MessageOut, PatientRef, ThreadOut

__all__ = [
    "DepartmentThread",
    "History",
    "LatestReceipts",
    "MessageReaders",
    "Patient",
    "PatientRecord",
    "Reader",
    "Receipt",
    "Redacted",
    "Retention",
    "ThreadOut",
]


class DepartmentThread(ThreadOut):
    """A thread of a department's list, with the caller's unread count and last read."""

    unread: int
    last_read_seq: int


class History(Body):
    """A page of a thread's messages, oldest first; `has_more`: older ones remain."""

    thread: int
    messages: list[MessageOut]
    has_more: bool


class Receipt(Body):
    """A member's latest read receipt in a thread: read up to `up_to_seq`, at `read_at`."""

    thread: int
    user: UserRef
    up_to_seq: int
    read_at: str


class LatestReceipts(Body):
    """Each member's latest receipt in the thread (no `seq` asked)."""

    thread: int
    receipts: list[Receipt]


class Reader(Body):
    """Someone who read the message asked for, and when they first did."""

    user: UserRef
    read_at: str


class MessageReaders(Body):
    """Who read message `seq` of the thread (`?seq=`), earliest first."""

    thread: int
    seq: int
    readers: list[Reader]


class Redacted(Body):
    """A redaction's answer, the first time and every repeat alike."""

    message_id: int
    thread: int
    seq: int
    redacted_at: str | None


class Patient(PatientRef):
    """An admitted patient as a search lists them; `ward` None when not admitted now."""


class Retention(Body):
    """Until when a patient's record is kept (None: a stay is open), and by which rule."""

    until: str | None
    rule: str
    last_care: str | None


class PatientRecord(Patient):
    """A patient opened from a search or a thread, with their record's retention."""

    retention: Retention
