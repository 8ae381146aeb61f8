"""Departments (rooms) and their membership history."""

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower


class Department(models.Model):
    """A care department: the unit of membership and of real-time fan-out.

    `event_seq` is the last sequence number given to an event of this
    department; it is advanced under the row lock, so the department's
    event stream has no gaps and is numbered in commit order.
    """

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    event_seq = models.BigIntegerField(default=0)
    # The room key version messages must use, and whether a removal since
    # its publication requires a new one before the next message.
    key_version = models.IntegerField(default=0)
    rotation_required = models.BooleanField(default=False)
    # The current version's commitment (base64) and the chain position it was
    # made at: a post is checked against both under the same row lock.
    key_commitment = models.CharField(max_length=44, blank=True, default="")
    key_chain_seq = models.IntegerField(default=0)
    # The head of the department's signed membership chain (docs/crypto.md §6):
    # statements are appended under this row's lock, one position at a time.
    chain_seq = models.IntegerField(default=0)
    chain_head = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return self.name

    @property
    def group_name(self) -> str:
        return f"dept.{self.pk}"


class Role(models.TextChoices):
    HEAD = "head", "Head of department"
    MEMBER = "member", "Member"


class MembershipQuerySet(models.QuerySet["Membership"]):
    def active(self) -> "MembershipQuerySet":
        return self.filter(removed_at__isnull=True)


class Membership(models.Model):
    """A user's place in a department; removal closes the row, never deletes it."""

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    admitted_at = models.DateTimeField(auto_now_add=True)
    admitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["department", "user"],
                condition=Q(removed_at__isnull=True),
                name="one_active_membership",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["head", "member"]), name="membership_role"
            ),
        ]
        indexes = [models.Index(fields=["user", "removed_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.department_id} as {self.role}"


class RoomKeyVersion(models.Model):
    """One version of a department's room key, known to the server only as wraps.

    `record` is the version's signed record (docs/crypto.md §7): the chain
    head it was made at, its creator and its key's commitment. Versions made
    before format 2 have none; clients no longer read them (docs/operations.md).
    """

    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="key_versions"
    )
    version = models.IntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    record = models.JSONField(null=True, blank=True)
    commitment = models.CharField(max_length=44, blank=True, default="")
    chain_seq = models.IntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["department", "version"], name="room_key_version_unique"
            ),
            models.CheckConstraint(condition=Q(version__gt=0), name="room_key_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.department_id} key v{self.version}"


class KeyWrap(models.Model):
    """A room key version sealed for one recipient identity and signed by its wrapper.

    `recipient_user` is empty for the institution's compliance key.
    """

    key_version = models.ForeignKey(RoomKeyVersion, on_delete=models.PROTECT, related_name="wraps")
    recipient_fingerprint = models.CharField(max_length=64)
    recipient_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    wrapper = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    record = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key_version", "recipient_fingerprint"], name="one_wrap_per_recipient"
            ),
        ]

    def __str__(self) -> str:
        return f"wrap of {self.key_version_id} for {self.recipient_fingerprint[:16]}"


class MembershipStatement(models.Model):
    """An admission, removal, role change or key replacement as signed by a head
    (or the admin key), at position `seq` of the department's chain.

    The server checks and keeps them; clients verify them again before they
    wrap a room key for anyone, so the server cannot add a reader. Statements
    of format 1 (before the chain was hash-linked) keep `seq` empty: they stay
    for the audit trail and are no longer served (docs/operations.md).
    """

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="statements")
    kind = models.CharField(max_length=10)
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    signed = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    seq = models.IntegerField(null=True, blank=True)
    hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["department", "seq"], name="one_statement_per_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.subject_id} in {self.department_id}"


class OnCallRoleQuerySet(models.QuerySet["OnCallRole"]):
    def active(self) -> "OnCallRoleQuerySet":
        return self.filter(archived_at__isnull=True)


class OnCallRole(models.Model):
    """A department's on-call role ("On-call plastic surgeon"), held in turn by the
    members its roster names (docs/oncall.md).

    A role is archived, never deleted: its shifts and the audit trail keep naming it.
    Two active roles of a department never share a name, whatever its case; an
    archived role's name may be taken again.
    """

    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="oncall_roles"
    )
    name = models.CharField(max_length=120)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    archived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = OnCallRoleQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "department",
                condition=Q(archived_at__isnull=True),
                name="oncall_role_unique_active_name",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="oncall_role_named"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.department_id})"

    @property
    def is_active(self) -> bool:
        return self.archived_at is None


class RosterShiftQuerySet(models.QuerySet["RosterShift"]):
    def standing(self) -> "RosterShiftQuerySet":
        """The shifts not removed: what the roster says now."""
        return self.filter(removed_at__isnull=True)

    def covering(self, at: datetime) -> "RosterShiftQuerySet":
        """Standing shifts whose half-open period [starts_at, ends_at) holds `at`."""
        return self.standing().filter(starts_at__lte=at, ends_at__gt=at)

    def overlapping(self, start: datetime, end: datetime) -> "RosterShiftQuerySet":
        """Standing shifts with some time inside [start, end)."""
        return self.standing().filter(starts_at__lt=end, ends_at__gt=start)


class RosterShift(models.Model):
    """One person holding one on-call role from `starts_at` (inclusive) to `ends_at`
    (exclusive), both timezone-aware.

    A removed shift keeps its row, marked with who removed it and when, so the
    roster as it stood at any moment can be told from the rows and the audit trail.
    """

    role = models.ForeignKey(OnCallRole, on_delete=models.PROTECT, related_name="shifts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = RosterShiftQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="roster_shift_ends_after_start"
            ),
        ]
        indexes = [models.Index(fields=["role", "starts_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} as {self.role_id} from {self.starts_at:%Y-%m-%d %H:%M}"
