"""A patient's access report: every audit entry that touched them, read from the trail alone.

For a patient's right of access (GDPR art. 15) and identity vigilance: who
read, wrote or released what about one patient, when, and under which case.
Nothing here trusts anything but the audit trail for *what happened*; the
current rows (threads, messages, attachments, memberships, cases) only say
which objects are the patient's, since most entries name a thread, a
message or an upload and not the patient (docs/compliance.md, "The
patient's access report", lists what resolves and what cannot).

Each entry is `certain` (it names the patient or one of their objects) or
`possible`: a photo library search made without a patient filter records
only its filters' names and a count, so all the report can say is that the
patient's photos were within its reach when it ran.
"""

import uuid
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import CharField, Count, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy, ngettext

from accounts.models import User
from audit.models import AuditEvent
from chat.models import Event, Message, Thread
from compliance.models import Case
from media.models import Attachment, AttachmentKeyword
from rooms.models import Department, Membership, Role

CHUNK = 500
PAGE_MAX = 500

CERTAIN, POSSIBLE = "certain", "possible"
MESSAGE_ACTIONS = (
    "message.posted",
    "message.redacted",
    "message.corrected",
    "attachment.attached",
)


@dataclass(frozen=True)
class Photo:
    department_id: int
    thread_id: int
    created_at: datetime
    keywords: frozenset[str]


@dataclass
class Footprint:
    """The patient's objects as the trail names them, read once per report."""

    patient_id: int
    threads: dict[int, Thread]
    uploads: dict[str, int]  # upload or thumbnail id -> thread id
    photos: list[Photo]
    # Department -> sorted event seqs of the patient's messages (what a resume replays).
    event_seqs: dict[int, list[int]]
    # Cases opened on the patient, and any other whose scope reaches their threads.
    cases: dict[int, Case]
    reached: dict[int, set[int]]  # case id -> the patient's threads it covers
    # By user: the memberships of the departments holding the patient's photos.
    memberships: dict[int, list[Membership]] = field(default_factory=dict)


def footprint(patient_id: int) -> Footprint:
    """What names the patient's objects, read in a fixed number of queries (one more
    per case): most entries name a thread, a message or an upload, not the patient."""
    threads: dict[int, Thread] = {
        t.pk: t
        for t in Thread.objects.filter(patient_id=patient_id).annotate(kept=Count("messages"))
    }
    rows = list(
        Attachment.objects.filter(patient_id=patient_id).values_list(
            "id", "upload_id", "thumbnail_id", "department_id", "thread_id", "created_at"
        )
    )
    keywords: dict[int, set[str]] = {}
    for attachment_id, code in AttachmentKeyword.objects.filter(
        attachment_id__in=[r[0] for r in rows]
    ).values_list("attachment_id", "keyword_id"):
        keywords.setdefault(attachment_id, set()).add(code)
    uploads: dict[str, int] = {}
    for _, upload, thumbnail, _, thread_id, _ in rows:
        uploads[str(upload)] = thread_id
        if thumbnail is not None:
            uploads[str(thumbnail)] = thread_id
    photos = [
        Photo(department, thread_id, created_at, frozenset(keywords.get(pk, ())))
        for pk, _, _, department, thread_id, created_at in rows
    ]
    # The purge at the end of retention keeps a thread's row (its tombstone) but removes
    # its messages, attachments and uploads: their ids are then known from the trail only.
    for data in AuditEvent.objects.filter(
        action="attachment.attached", object_type="message", data__thread_id__in=gone(threads)
    ).values_list("data", flat=True):
        for upload in data.get("uploads") or []:
            uploads.setdefault(_uuid(upload), data["thread_id"])
    event_seqs: dict[int, list[int]] = {}
    for department_id, seq in (
        Event.objects.filter(message__thread__patient_id=patient_id)
        .order_by("department_id", "seq")
        .values_list("department_id", "seq")
    ):
        event_seqs.setdefault(department_id, []).append(seq)
    cases: dict[int, Case] = {}
    reached: dict[int, set[int]] = {}
    # Cases are few (each is an officer's review); asking each which threads it covers
    # is the one way to know, as the scope combines patient, department, user and dates.
    for case in Case.objects.all():
        covered = set(
            case.covered_threads().filter(patient_id=patient_id).values_list("pk", flat=True)
        )
        if covered or case.patient_id == patient_id:
            cases[case.pk], reached[case.pk] = case, covered
    departments = {p.department_id for p in photos}
    memberships: dict[int, list[Membership]] = {}
    for m in Membership.objects.filter(department_id__in=departments):
        memberships.setdefault(m.user_id, []).append(m)
    return Footprint(patient_id, threads, uploads, photos, event_seqs, cases, reached, memberships)


def gone(threads: dict[int, Thread]) -> list[int]:
    """Threads with fewer messages stored than numbered: purged, in whole or in part."""
    # `kept` is the footprint's annotate(); a Thread from elsewhere has none.
    return [pk for pk, t in threads.items() if t.kept < t.last_seq]  # type: ignore[attr-defined]


def _uuid(text: Any) -> str:
    """An upload id as `record` wrote it (str of the UUID); a client may have named it
    in another spelling."""
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        return str(text)


def candidates(fp: Footprint, case: Case) -> QuerySet[AuditEvent]:
    """Entries that may concern the patient, within the case's dates; `resolve` decides."""
    p = fp.patient_id
    messages = (
        Message.objects.filter(thread__patient_id=p)
        .annotate(key=Cast("pk", output_field=CharField()))
        .values("key")
    )
    # A photo sent to the patient record (photo.exported) names its attachment.
    attachments = (
        Attachment.objects.filter(patient_id=p)
        .annotate(key=Cast("pk", output_field=CharField()))
        .values("key")
    )
    q = (
        Q(object_type="thread", object_id__in=[str(t) for t in fp.threads])
        | Q(object_type="message", object_id__in=messages)
        | Q(object_type="attachment", object_id__in=attachments)
        | Q(object_type="upload", object_id__in=list(fp.uploads))
        | Q(object_type="patient", object_id=str(p))
        | Q(object_type="case", object_id__in=[str(c) for c in fp.cases])
        | Q(action="library.query", data__patient_id=p)
        | Q(action="events.resumed", department_id__in=list(fp.event_seqs))
    )
    purged = gone(fp.threads)
    if purged:
        # Entries on messages carry their thread: found again once the messages are gone.
        q |= Q(action__in=MESSAGE_ACTIONS, object_type="message", data__thread_id__in=purged)
    if fp.photos:
        first = min(photo.created_at for photo in fp.photos)
        q |= Q(action="library.query", object_id="photos", at__gte=first)
    return case.within_dates(AuditEvent.objects.filter(q), "at")


def resolve(entry: AuditEvent, fp: Footprint) -> str | None:
    """Whether the entry concerns the patient: CERTAIN, POSSIBLE, or None."""
    data = entry.data if isinstance(entry.data, dict) else {}
    kind, key = entry.object_type, entry.object_id
    if entry.action == "library.query":
        if "patient_id" in data:
            return CERTAIN if data["patient_id"] == fp.patient_id else None
        case_id = data.get("case")
        case = fp.cases.get(case_id) if isinstance(case_id, int) else None
        if case is not None and case.patient_id == fp.patient_id:
            return CERTAIN  # a case on the patient covers their photos only
        if key != "photos" or not data.get("count"):
            return None  # statistics show no photo; an empty page showed none
        return POSSIBLE if _search_reached(entry, data, fp) else None
    if entry.action == "events.resumed":
        seqs = fp.event_seqs.get(entry.department_id or 0, [])
        start, end = data.get("from_seq"), data.get("to_seq")
        if not isinstance(start, int) or not isinstance(end, int):
            return None
        return CERTAIN if bisect_right(seqs, end) > bisect_right(seqs, start) else None
    if kind == "case":
        return _case_entry(entry, data, fp)
    if kind == "patient":
        return CERTAIN if key == str(fp.patient_id) else None
    return CERTAIN if kind in ("thread", "message", "upload", "attachment") else None


def _case_entry(entry: AuditEvent, data: dict[str, Any], fp: Footprint) -> str | None:
    """A case opened on the patient concerns them in every entry; another case only in
    what it released once it covered one of their threads."""
    case = fp.cases.get(int(entry.object_id))
    if case is None:
        return None
    if case.patient_id == fp.patient_id:
        return CERTAIN
    if entry.action != "case.released":
        return None
    what = data.get("what")
    threads = fp.reached.get(case.pk, set())
    if what == "threads":
        made = any(fp.threads[t].created_at <= entry.at for t in threads)
        return CERTAIN if made else None
    if what == "library.photos":
        reached = any(p.thread_id in threads and p.created_at <= entry.at for p in fp.photos)
        return POSSIBLE if reached else None
    return None


def _search_reached(entry: AuditEvent, data: dict[str, Any], fp: Footprint) -> bool:
    """Whether one of the patient's photos was within a search's reach when it ran: in
    the department it named, else in the searcher's departments then, or under the case
    it named; and tagged with every keyword it asked for. Its dates, sender and consent
    filters are recorded by name only, so they cannot narrow it."""
    wanted = frozenset(data.get("keywords") or ())
    photos = [p for p in fp.photos if p.created_at <= entry.at and wanted <= p.keywords]
    case_id = data.get("case")
    if case_id is not None:
        threads = fp.reached.get(case_id, set())
        return any(p.thread_id in threads for p in photos)
    if entry.department_id is not None:
        departments = {entry.department_id}
    else:
        departments = {
            m.department_id
            for m in fp.memberships.get(entry.actor_id or 0, [])
            if m.admitted_at <= entry.at and (m.removed_at is None or m.removed_at > entry.at)
        }
    return any(p.department_id in departments for p in photos)


# --- Rows ----------------------------------------------------------------------------------


def entries(case: Case, patient_id: int, after_id: int = 0) -> Iterator[dict[str, Any]]:
    """Every entry that concerns the patient, oldest first, after entry `after_id`; read
    in chunks by id (keyset), so a long history is never held whole.

    The footprint is read now, the entries only as they are asked for: a streamed
    export (compliance/access_export.py) that fails here fails before its first byte,
    with an error status rather than a truncated file.

    The rows are worded (`what`, the object's `label`) in the language active now, the
    request's: a streamed export asks for them later, past the request's middleware.
    Only those words change with it; the seals name the audit entries, not the words,
    so `audit_verify` proves the same entries in either language."""
    return _entries(footprint(patient_id), case, after_id, translation.get_language())


def _entries(
    fp: Footprint, case: Case, after_id: int, language: str | None
) -> Iterator[dict[str, Any]]:
    rows = candidates(fp, case).select_related("seal").order_by("id")
    departments = dict(Department.objects.values_list("pk", "name"))
    while True:
        chunk = list(rows.filter(id__gt=after_id)[:CHUNK])
        if not chunk:
            return
        people = _people({e.actor_id for e in chunk if e.actor_id is not None})
        for entry in chunk:
            certainty = resolve(entry, fp)
            if certainty is not None:
                # Not around the yield: the consumer runs in its own language.
                with translation.override(language):
                    row = _row(entry, certainty, fp, people, departments)
                yield row
        after_id = chunk[-1].pk


def page(
    case: Case, patient_id: int, after_id: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` rows after `after_id`, and the id to ask after for the next page."""
    found: list[dict[str, Any]] = []
    for row in entries(case, patient_id, after_id):
        if len(found) == limit:
            return found, found[-1]["id"]
        found.append(row)
    return found, None


@dataclass(frozen=True)
class Person:
    user: User
    memberships: list[Membership]
    # (department id, when, the role it became), oldest first, from member.role_changed.
    role_changes: list[tuple[int | None, datetime, str]]


def _people(ids: set[int]) -> dict[int, Person]:
    """The chunk's actors with every membership they ever held and every change of role
    the trail recorded, in three queries."""
    held: dict[int, list[Membership]] = {}
    for m in Membership.objects.filter(user_id__in=ids):
        held.setdefault(m.user_id, []).append(m)
    changes: dict[str, list[tuple[int | None, datetime, str]]] = {}
    for object_id, department_id, at, data in (
        AuditEvent.objects.filter(
            action="member.role_changed", object_type="user", object_id__in=[str(i) for i in ids]
        )
        .order_by("id")
        .values_list("object_id", "department_id", "at", "data")
    ):
        changes.setdefault(object_id, []).append((department_id, at, str(data.get("role"))))
    return {
        u.pk: Person(u, held.get(u.pk, []), changes.get(str(u.pk), []))
        for u in User.objects.filter(pk__in=ids)
    }


def _row(
    entry: AuditEvent,
    certainty: str,
    fp: Footprint,
    people: dict[int, Person],
    departments: dict[int, str],
) -> dict[str, Any]:
    data = entry.data if isinstance(entry.data, dict) else {}
    case_id = data.get("case")
    if case_id is None and entry.object_type == "case":
        case_id = int(entry.object_id)
    seal = getattr(entry, "seal", None)
    return {
        "id": entry.pk,
        "at": entry.at.astimezone(UTC).isoformat(),
        "who": _who(entry, people, case_id, fp),
        "action": entry.action,
        "what": describe(entry, data),
        "object": {
            "type": entry.object_type,
            "id": entry.object_id,
            "label": _label(entry, data, fp),
        },
        "department": None
        if entry.department_id is None
        else {"id": entry.department_id, "name": departments.get(entry.department_id, "")},
        "case": case_id,
        "certainty": certainty,
        "seal": None if seal is None else {"seq": seal.seq, "hash": seal.hash},
    }


def _who(
    entry: AuditEvent, people: dict[int, Person], case_id: Any, fp: Footprint
) -> dict[str, Any] | None:
    """Who, by the id and username the entry copied; name and role from the user row."""
    if entry.actor_id is None:
        return None
    person = people.get(entry.actor_id)
    return {
        "id": entry.actor_id,
        "username": entry.actor_username,
        "name": person.user.label if person is not None else entry.actor_username,
        "role": _role(entry, person, case_id, fp),
    }


def _role(entry: AuditEvent, person: Person | None, case_id: Any, fp: Footprint) -> str:
    """The role the access was made in: compliance under a case, else the role then of
    the membership of the entry's department that held at that moment. A membership row
    keeps only its latest role; the trail has every change (member.role_changed), so
    the role then is the one the first change after the access replaced."""
    if case_id is not None or entry.action.startswith("case."):
        return "compliance officer"
    if person is None:
        return ""
    department_id = entry.department_id
    if department_id is None and entry.object_type == "thread" and entry.object_id.isdigit():
        thread = fp.threads.get(int(entry.object_id))
        department_id = None if thread is None else thread.department_id
    for m in person.memberships:
        if (
            m.department_id == department_id
            and m.admitted_at <= entry.at
            and (m.removed_at is None or m.removed_at > entry.at)
        ):
            return _role_then(m, entry.at, person.role_changes)
    user = person.user
    if user.is_compliance_officer:
        return "compliance officer"
    if user.is_admin:
        return "administrator"
    return "member" if person.memberships else ""


def _role_then(m: Membership, at: datetime, changes: list[tuple[int | None, datetime, str]]) -> str:
    later = [
        role
        for department_id, when, role in changes
        if department_id == m.department_id
        and when > at
        and (m.removed_at is None or when <= m.removed_at)
    ]
    if not later:
        return str(m.role)
    # A change is recorded only when the role differs, and there are two roles.
    return str(Role.MEMBER if later[0] == Role.HEAD else Role.HEAD)


def _label(entry: AuditEvent, data: dict[str, Any], fp: Footprint) -> str:
    """The object in plain words, in the active language; the values it quotes (a
    thread's title, a case's reference, ids) as recorded."""
    kind, key = entry.object_type, entry.object_id
    if kind == "thread" and key.isdigit() and int(key) in fp.threads:
        # Translators: a thread of the access report, with its title.
        return gettext("thread %(id)s «%(title)s»") % {
            "id": key,
            "title": fp.threads[int(key)].title,
        }
    if kind == "message":
        return gettext("message %(id)s in thread %(thread)s") % {
            "id": key,
            "thread": data.get("thread_id", "?"),
        }
    if kind == "upload":
        return gettext("photo %(id)s in thread %(thread)s") % {
            "id": key,
            "thread": fp.uploads.get(key, "?"),
        }
    if kind == "attachment":
        return gettext("photo %(id)s") % {"id": key}
    if kind == "patient":
        return gettext("the patient's record")
    if kind == "case":
        reference = data.get("reference", "")
        if reference == "":
            return gettext("case %(id)s") % {"id": key}
        # Translators: a compliance case, with its reference.
        return gettext("case %(id)s (%(reference)s)") % {"id": key, "reference": reference}
    if kind == "library":
        # Translators: the photo library, and which of its queries (photos, sequences, stats).
        return gettext("photo library (%(name)s)") % {"name": key}
    if kind == "department":
        return gettext("department %(id)s") % {"id": key}
    return f"{kind} {key}".strip()  # an object type the report does not know: its names


# Each action in plain words, one whole sentence each: the `what` of an entry, read by
# whoever answers the patient's request (docs/compliance.md). Worded when a row is made,
# in the language then active (see `entries`); their subject is the `who`.
WORDS = {
    "thread.created": gettext_lazy("created the thread"),
    "thread.closed": gettext_lazy("closed the thread"),
    "thread.reopened": gettext_lazy("reopened the thread"),
    "history.read": gettext_lazy("read the thread's messages"),
    "message.posted": gettext_lazy("posted a message"),
    "message.redacted": gettext_lazy("redacted a message"),
    "message.corrected": gettext_lazy("corrected a message"),
    "attachment.attached": gettext_lazy("attached photos to a message"),
    "attachment.downloaded": gettext_lazy("downloaded a photo"),
    "upload.created": gettext_lazy("began uploading a photo"),
    "upload.completed": gettext_lazy("finished uploading a photo"),
    "upload.failed": gettext_lazy("uploaded a photo that failed its check"),
    "patient.viewed": gettext_lazy("viewed the patient's record"),
    "events.resumed": gettext_lazy("received the patient's messages on reconnecting"),
    "case.opened": gettext_lazy("opened a compliance case on the patient"),
    "case.approved": gettext_lazy("approved the compliance case"),
    "case.closed": gettext_lazy("closed the compliance case"),
}
# The same with what the entry recorded, when it recorded it (`_details`).
DETAILED = {
    "history.read": gettext_lazy("read the thread's messages (messages %(from)s to %(to)s)"),
    "receipt.read": gettext_lazy("marked the thread read (up to message %(seq)s)"),
    "attachment.downloaded": gettext_lazy("downloaded a photo (bytes %(first)s to %(last)s)"),
    "review.marked": gettext_lazy(
        "marked the patient's case reviewed at the weekly photo review (week %(week)s)"
    ),
    "review.unmarked": gettext_lazy(
        "cleared the weekly photo review's mark on the patient's case (week %(week)s)"
    ),
}
# What a case released (`case.released`, by its `what`).
RELEASED = {
    "threads": gettext_lazy("released under a case: the list of threads it covers"),
    "timeline": gettext_lazy("released under a case: the thread's full timeline"),
    "library.photos": gettext_lazy("released under a case: a photo library search"),
    "library.sequences": gettext_lazy("released under a case: the patient's photo sequences"),
    "library.stats": gettext_lazy("released under a case: department photo statistics"),
    "access_report": gettext_lazy("released under a case: the patient's access report"),
}


def describe(entry: AuditEvent, data: dict[str, Any]) -> str:
    """The action in plain words, with the counts the entry recorded, in the active
    language; an action the report does not know is shown by its name."""
    action = entry.action
    if action == "case.released":
        what = data.get("what")
        released = RELEASED.get(str(what))
        if released is not None:
            return str(released)
        return gettext("released under a case: %(what)s") % {"what": what}
    if action == "library.query":
        if entry.object_id == "sequences":
            return gettext("listed the patient's photo sequences (%(count)s)") % {
                "count": data.get("count", 0)
            }
        return _searched(data)
    if action == "report.generated":
        count, n = _count(data.get("photos"))
        return ngettext(
            "made a follow-up photo report (%(count)s photo)",
            "made a follow-up photo report (%(count)s photos)",
            n,
        ) % {"count": count}
    details = _details(action, data)
    if details is not None:
        return DETAILED[action] % details
    return str(WORDS.get(action, action))


def _details(action: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The values of the action's DETAILED sentence, or None when the entry recorded none."""
    if action == "history.read" and data.get("from_seq") is not None:
        return {"from": data["from_seq"], "to": data.get("to_seq")}
    if action == "receipt.read":
        return {"seq": data.get("up_to_seq")}
    if action == "attachment.downloaded" and data.get("range"):
        return {"first": data["range"][0], "last": data["range"][1]}
    if action in ("review.marked", "review.unmarked"):
        return {"week": data.get("week")}
    return None


def _searched(data: dict[str, Any]) -> str:
    """A photo library search: the names of its filters (as recorded) and what it found."""
    filters = ", ".join(data.get("filters") or [])
    count, n = _count(data.get("count"))
    if not filters:
        return ngettext(
            "searched the photo library (filters: none; %(count)s photo)",
            "searched the photo library (filters: none; %(count)s photos)",
            n,
        ) % {"count": count}
    return ngettext(
        "searched the photo library (filters: %(filters)s; %(count)s photo)",
        "searched the photo library (filters: %(filters)s; %(count)s photos)",
        n,
    ) % {"filters": filters, "count": count}


def _count(recorded: Any) -> tuple[Any, int]:
    """A count as the entry recorded it (0 when it recorded none), and the number that
    chooses the plural form: a count that is not an integer (none is recorded so) the
    English plural."""
    count = recorded or 0
    return count, count if isinstance(count, int) else 2
