"""Users and their login sessions."""

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A clinician, a department head or a compliance officer.

    Roles in departments live on `rooms.Membership`; the compliance role is
    institution-wide, so it is a flag here.
    """

    display_name = models.CharField(max_length=150, blank=True)
    is_compliance_officer = models.BooleanField(default=False)

    @property
    def label(self) -> str:
        return self.display_name or self.get_full_name() or self.username


def hash_token(token: str) -> str:
    """Only a token's SHA-256 is stored, so a database dump yields no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "rnd_" + secrets.token_urlsafe(32)


class AuthSession(models.Model):
    """One login on one device: a bearer token and, for a browser, a Django session.

    Logging out revokes both and closes the sockets opened with either.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_sessions")
    token_hash = models.CharField(max_length=64, unique=True)
    session_key = models.CharField(max_length=40, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.user_id}"

    @property
    def group_name(self) -> str:
        """The channel-layer group of this login's sockets."""
        return f"authsession.{self.pk}"
