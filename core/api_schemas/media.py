"""Uploads (media/upload_api.py) and the photo library (media/library_api.py)."""

from typing import Literal

from core.api_schemas.common import Body, PatientIdentity, UserCard, UserRef
from core.outbound import MessageFields
from core.protocol import ConsentScope

UploadState = Literal["receiving", "complete", "attached", "failed", "expired"]


class Upload(Body):
    """Where an upload stands: bytes received of `size`, its state, the largest chunk
    the server takes, and when an unfinished one is dropped."""

    id: str
    department: int
    size: int
    received: int
    state: UploadState
    sha256: str | None
    chunk_max: int
    expires_at: str


class Keyword(Body):
    """A word of the active nomenclature, the only words a photo is indexed by."""

    code: str
    label: str
    category: str


class ReleasedMessage(MessageFields):
    """A message as the library and a review case give it: for a compliance officer
    under a case, a redacted message keeps its envelope and photos beside `redacted`;
    for a member it is a tombstone, as on the socket."""


class Photo(Body):
    """A photo of the library: its blobs, index fields, patient, sender and message; the
    department's and the sender's names are what a follow-up report prints."""

    id: int
    upload: str
    thumbnail: str | None
    captured_at: str
    keywords: list[str]
    consent: ConsentScope
    annotates: int | None
    department: int
    department_name: str
    thread: int
    patient: PatientIdentity
    sender: UserCard
    message: ReleasedMessage


class PhotoPage(Body):
    """A page of photos, newest capture first; `next_cursor` None on the last page.
    `time_zone`: the institution's (settings.TIME_ZONE, an IANA name), the one zone
    clients show capture times in, and the one whole-day date filters are read in."""

    items: list[Photo]
    next_cursor: str | None
    time_zone: str


class Sequence(Body):
    """The photos of one message about the patient: when captured, how many, which words."""

    message: int
    thread: int
    department: int
    sender: UserRef
    captured_from: str
    captured_to: str
    photos: int
    keywords: list[str]


class Sequences(Body):
    """A patient's photo sequences, newest first."""

    patient: int
    sequences: list[Sequence]


class DepartmentStats(Body):
    """A department's library figures over capture dates: overlays (`annotations`) are
    counted apart from original `photos`."""

    department: int
    date_from: str | None
    date_to: str | None
    patients: int
    sequences: int
    photos: int
    annotations: int
    mean_sequences_per_patient: float


class ReportRecorded(Body):
    """The trace that a follow-up report was made on a device (the server never sees it)."""

    patient: int
    photos: int
    recorded_at: str


class ReviewMark(Body):
    """A case of the weekly review marked reviewed: its patient, by whom and when."""

    patient: int
    by: UserCard
    at: str


class ReviewMarks(Body):
    """The cases a department marked reviewed in one ISO week."""

    department: int
    week: str
    marks: list[ReviewMark]
