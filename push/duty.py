"""Who is on duty now, for the quiet mode: rooms.oncall's resolution rule, for many
users at once (docs/oncall.md, "Who is on duty").

A user is on duty when they hold some active on-call role at the instant: a standing
shift whose half-open period [starts_at, ends_at) holds it, in a department they
are still an active member of, as an active user.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Exists, OuterRef

from rooms.models import Membership, RosterShift


def on_duty_user_ids(user_ids: Iterable[int], at: datetime) -> set[int]:
    """Those of `user_ids` who hold an on-call shift at `at`, in one query."""
    ids = list(user_ids)
    if not ids:
        return set()
    member = Membership.objects.active().filter(
        department_id=OuterRef("role__department_id"), user_id=OuterRef("user_id")
    )
    shifts = RosterShift.objects.covering(at).filter(
        user_id__in=ids,
        user__is_active=True,
        role__archived_at__isnull=True,
    )
    return set(shifts.filter(Exists(member)).values_list("user_id", flat=True))
