"""Users and their login sessions."""

import hashlib
import re
import secrets
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from rounds.text import fold


class User(AbstractUser):
    """A clinician, a department head or a compliance officer.

    Roles in departments live on `rooms.Membership`; the compliance role is
    institution-wide, so it is a flag here.
    """

    display_name = models.CharField(max_length=150, blank=True)
    is_compliance_officer = models.BooleanField(default=False)
    # The names a head finds a colleague by (rooms/people.py), folded: kept on every
    # save. The username is not in it: the directory finds people, not logins.
    name_key = models.CharField(max_length=500, blank=True, default="", editable=False)

    @property
    def is_admin(self) -> bool:
        """An institution administrator: creates departments, appoints their first head."""
        return self.is_staff or self.is_superuser

    @property
    def label(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name_key = names_key(self)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"display_name", "first_name", "last_name"} & set(
            update_fields
        ):
            kwargs["update_fields"] = {*update_fields, "name_key"}
        super().save(*args, **kwargs)


def names_key(user: "User") -> str:
    """` name words…`: every word of the user's names folded, each after a space, so
    that a word's start is found by `contains(" " + start)` ("Jean-Pierre Lefèvre, RN"
    is ` jean pierre lefevre rn`)."""
    words = name_words(f"{user.display_name} {user.first_name} {user.last_name}")
    return "".join(f" {word}" for word in dict.fromkeys(words))


def name_words(text: str) -> list[str]:
    """The folded words of names, or of what is typed to find them."""
    return re.findall(r"\w+", fold(text))


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
    # Refreshed at most once a minute (accounts.actions.SEEN_EVERY): idle past
    # ROUNDS_DEVICE_IDLE_SECONDS, the device must sign in again.
    last_seen_at = models.DateTimeField(default=timezone.now)
    device_name = models.CharField(max_length=60, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"session {self.pk} of {self.user_id}"

    @property
    def group_name(self) -> str:
        """The channel-layer group of this login's sockets."""
        return f"authsession.{self.pk}"


class PublicKeyFields(models.Model):
    """The public halves of an identity, base64, and their fingerprint (core.crypto)."""

    x25519 = models.CharField(max_length=44)
    ed25519 = models.CharField(max_length=44)
    fingerprint = models.CharField(max_length=64)

    class Meta:
        abstract = True

    def as_public(self) -> dict[str, str]:
        return {"x25519": self.x25519, "ed25519": self.ed25519}


class IdentityKey(PublicKeyFields):
    """A user's published public identity: X25519 to receive wraps, Ed25519 to sign.

    Only public halves reach the server. A replaced key keeps its row (with
    `replaced_at`), so signatures made with it can still be checked.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="identity_keys")
    fingerprint = models.CharField(max_length=64, db_index=True)
    published_at = models.DateTimeField(auto_now_add=True)
    replaced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(replaced_at__isnull=True),
                name="one_active_identity",
            ),
        ]

    def __str__(self) -> str:
        return f"identity {self.fingerprint[:16]} of {self.user_id}"


class KeyBackup(models.Model):
    """The user's private keys, encrypted on their device under their recovery secret.

    Opaque to the server: it stores and returns the blob, nothing more.
    """

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="key_backup")
    blob = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"key backup of {self.user_id}"


class InstitutionKey(PublicKeyFields):
    """The institution's admin key (appoints first heads) or compliance key (reads all).

    Set by an administrator; clients compare its fingerprint with the one
    pinned in their configuration and never take it on trust.
    """

    class Kind(models.TextChoices):
        ADMIN = "admin"
        COMPLIANCE = "compliance"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    set_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField(auto_now_add=True)
    replaced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(replaced_at__isnull=True),
                name="one_active_institution_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} key {self.fingerprint[:16]}"


class TotpDevice(models.Model):
    """A user's authenticator app (RFC 6238 TOTP): the shared secret, and the last
    time step a code was accepted for, so a code signs in once (accounts/factors/totp.py).

    Unconfirmed until the user has typed one code from the app.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="totp")
    secret = models.CharField(max_length=64)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_step = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"authenticator app of {self.user_id}"


class Passkey(models.Model):
    """A WebAuthn credential a user signs in with (accounts/factors/passkeys.py).

    Only the public key is here; the private key never leaves the phone or computer.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="passkeys")
    # base64url, as WebAuthn names it to the browser (at most 1,023 bytes).
    credential_id = models.CharField(max_length=1400, unique=True)
    public_key = models.BinaryField()
    sign_count = models.BigIntegerField(default=0)
    name = models.CharField(max_length=60)
    transports = models.JSONField(default=list)
    backed_up = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"passkey {self.name} of {self.user_id}"


class BackupCode(models.Model):
    """A one-time code that stands in for a lost second factor; only its SHA-256 is kept."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="backup_codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "code_hash"])]

    def __str__(self) -> str:
        return f"backup code of {self.user_id}"


class SignInStep(models.Model):
    """A sign-in between two of its steps, named by a one-use token (only its hash kept).

    `second_factor`: the password was right, a second factor is awaited. `enrol`: the
    password was right, and the user must set up a second factor to finish. `passkey`:
    a WebAuthn challenge issued to whoever asked (a passkey sign-in or a registration).
    The first two carry a challenge too once a passkey is asked for. Five minutes.
    """

    class Kind(models.TextChoices):
        SECOND_FACTOR = "second_factor"
        ENROL = "enrol"
        PASSKEY = "passkey"

    token_hash = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # The WebAuthn challenge (base64url) and the relying party it was issued for.
    challenge = models.CharField(max_length=100, blank=True)
    rp_id = models.CharField(max_length=253, blank=True)
    device_name = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"sign-in step {self.kind} of {self.user_id}"
