"""The colleague directory: a head finds the colleague to admit by name.

A hospital directory shows a name and where the person works, nothing more:
each result is a user's number (what the admission names), their display
name, their current departments with their role, and the fingerprint of
their published identity (a hash, no key material), which the head's
confirmation card shows for comparing aloud before signing. No username,
no email, no login data.

The directory is an enumeration surface (docs/threat-model.md, "The
colleague directory"): it answers heads and administrators only, needs two
letters of a name, gives at most `RESULTS` people, counts each caller's
searches per rolling hour, and audits every search with its counts, never
what was typed, as the patient search does.
"""

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import IdentityKey, User, name_words
from audit.actions import record
from audit.models import AuditEvent
from core.errors import N_, ErrorCode, InvalidRequest, RoundsError
from rooms import access
from rooms.models import Membership

RESULTS = 20
MAX_QUERY = 100
AUDIT_ACTION = "people.searched"


class SearchesRateLimited(RoundsError):
    code = ErrorCode.RATE_LIMITED
    default_message = N_("Too many searches of the directory in the last hour.")


def check_search_people(actor: User, query: str) -> dict[str, Any]:
    """Active colleagues whose names have a word starting with each word typed.

    Args:
        query: at least two letters; case and accents are ignored, and
            "dur ali" finds "Alice Durand, RN".

    Returns:
        `{"people": [...], "more": bool}`: at most `RESULTS` people, by name;
        `more` says that others match too (type more of the name).

    Raises:
        Forbidden: the caller heads no department and is no administrator.
        InvalidRequest: fewer than two letters, or more than `MAX_QUERY` characters.
        SearchesRateLimited: over `ROUNDS_PEOPLE_SEARCHES_PER_HOUR` searches in the
            last hour (`data.per_hour`).
    """
    access.check_may_search_people(actor)
    words = name_words(query)
    if len(query) > MAX_QUERY:
        raise InvalidRequest(
            N_("A search has at most %(max)s characters."), params={"max": MAX_QUERY}
        )
    if sum(len(word) for word in words) < 2:
        raise InvalidRequest(N_("Give at least two letters of the name."))
    check_searches_left(actor)
    return do_search_people(actor, words)


def check_searches_left(actor: User) -> None:
    """The caller's searches of the last hour, counted from the audit trail (each search
    writes one entry). Not under a lock: two searches racing may both take the last
    place, which for a read costs one search more, not a broken quota."""
    per_hour = settings.ROUNDS_PEOPLE_SEARCHES_PER_HOUR
    since = timezone.now() - timedelta(hours=1)
    recent = AuditEvent.objects.filter(actor_id=actor.pk, action=AUDIT_ACTION, at__gt=since)
    if recent.count() >= per_hour:
        raise SearchesRateLimited(data={"per_hour": per_hour})


def do_search_people(actor: User, words: list[str]) -> dict[str, Any]:
    """Search and audit. Assumes the caller may search and `words` are folded."""
    matching = Q()
    for word in words:
        matching &= Q(name_key__contains=f" {word}")
    users = list(
        User.objects.filter(matching, is_active=True)
        .order_by("name_key", "pk")
        .values("pk", "display_name", "first_name", "last_name")[: RESULTS + 1]
    )
    more = len(users) > RESULTS
    users = users[:RESULTS]
    ids = [u["pk"] for u in users]
    departments: dict[int, list[dict[str, Any]]] = {}
    for membership in (
        Membership.objects.active()
        .filter(user_id__in=ids)
        .select_related("department")
        .order_by("department__name")
    ):
        departments.setdefault(membership.user_id, []).append(
            {
                "id": membership.department_id,
                "name": membership.department.name,
                "role": membership.role,
            }
        )
    fingerprints = dict(
        IdentityKey.objects.filter(user_id__in=ids, replaced_at__isnull=True).values_list(
            "user_id", "fingerprint"
        )
    )
    record(
        AUDIT_ACTION,
        actor=actor,
        object_type="people_search",
        data={"words": len(words), "results": len(users), "more": more},
    )
    return {
        "people": [
            {
                "id": u["pk"],
                "display_name": label(u),
                "departments": departments.get(u["pk"], []),
                "fingerprint": fingerprints.get(u["pk"]),
            }
            for u in users
        ],
        "more": more,
    }


def label(user: Mapping[str, Any]) -> str:
    """`User.label` from the values read, short of its last resort, the username: a user
    the directory finds has a name, and the directory never shows a login."""
    full = f"{user['first_name']} {user['last_name']}".strip()
    return str(user["display_name"] or full)
