"""Web Push subscriptions (RFC 8030) and each user's quiet mode (docs/push.md).

A subscription belongs to one login on one device (accounts.AuthSession):
signing out removes it, and one whose login has ended is never used even
before that. Nothing is deleted: a removed subscription keeps its row with
`removed_at`, one the push service called gone (404/410) with `gone_at`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuthSession

MAX_ENDPOINT = 1000


class PushSubscriptionQuerySet(models.QuerySet["PushSubscription"]):
    def standing(self) -> "PushSubscriptionQuerySet":
        """Neither removed nor gone: what the unique endpoint constraint covers."""
        return self.filter(removed_at__isnull=True, gone_at__isnull=True)

    def live(self) -> "PushSubscriptionQuerySet":
        """Standing, of a login still open and a user still active: the ones pushed to.

        The login's end is checked here, not only at sign-out, so a subscription whose
        session expired or was revoked another way (deactivation) is never sent to.
        """
        return self.standing().filter(
            auth_session__revoked_at__isnull=True,
            auth_session__expires_at__gt=timezone.now(),
            user__is_active=True,
        )


class PushSubscription(models.Model):
    """A browser's push subscription: where to POST (the push service's endpoint, a
    capability URL) and the keys the payload is encrypted for (RFC 8291), base64url."""

    class Removal(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed"  # the browser asked (DELETE)
        SIGNED_OUT = "signed_out"
        REPLACED = "replaced"  # the same login subscribed another endpoint
        REBOUND = "rebound"  # the same browser subscription now serves another login

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="push_subscriptions"
    )
    auth_session = models.ForeignKey(
        AuthSession, on_delete=models.PROTECT, related_name="push_subscriptions"
    )
    endpoint = models.URLField(max_length=MAX_ENDPOINT)
    p256dh = models.CharField(max_length=100)
    auth = models.CharField(max_length=30)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    removal = models.CharField(max_length=20, choices=Removal.choices, blank=True, default="")
    gone_at = models.DateTimeField(null=True, blank=True)

    objects = PushSubscriptionQuerySet.as_manager()

    class Meta:
        constraints = [
            # One standing row per endpoint; retired rows stay beside it.
            models.UniqueConstraint(
                fields=["endpoint"],
                condition=Q(removed_at__isnull=True, gone_at__isnull=True),
                name="push_one_standing_endpoint",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "removed_at", "gone_at"]),
            models.Index(fields=["auth_session", "removed_at"]),
        ]

    def __str__(self) -> str:
        return f"push subscription {self.pk} of {self.user_id}"


class PushPreference(models.Model):
    """A user's choice for routine pushes; no row means the defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="push_preference"
    )
    # Off duty (no on-call shift now, rooms.oncall's rule), routine pushes are held back.
    quiet_off_duty = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"push preference of {self.user_id}"
