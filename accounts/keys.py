"""Key directory use cases: identities, backups, the institution's keys.

The server keeps public keys and opaque blobs. It parses public keys with
core.crypto so a malformed or degenerate key is refused at the door, and it
audits every publication and every backup fetch (a new device recovering).
"""

from collections.abc import Iterable
from typing import Any, NamedTuple

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import IdentityKey, InstitutionKey, KeyBackup, User
from audit.actions import record
from core.crypto import CryptoError, PublicIdentity
from core.crypto.encoding import b64decode
from core.errors import N_, ErrorCode, NotFound, RoundsError
from rooms import access

MAX_BACKUP_BYTES = 4096


def parse_public(data: Any) -> PublicIdentity:
    try:
        return PublicIdentity.from_dict(data)
    except CryptoError as error:
        raise RoundsError(
            N_("Unusable public key: %(error)s"),
            code=ErrorCode.INVALID_KEY,
            params={"error": error},
        ) from None


def identity_data(key: IdentityKey) -> dict[str, Any]:
    return {
        "user": key.user_id,
        "fingerprint": key.fingerprint,
        "public": key.as_public(),
        "published_at": key.published_at.isoformat(),
    }


def active_identity(user_id: int) -> IdentityKey | None:
    return IdentityKey.objects.filter(user_id=user_id, replaced_at__isnull=True).first()


class SenderKey(NamedTuple):
    """A user's current identity key as the post path verifies with it."""

    id: int
    x25519: str
    ed25519: str


# This process's copy of senders' current keys: every post would otherwise read its
# sender's key first. A copy may be stale (the key replaced on another process): the
# post path compares `id` with the database's under its locks and asks again.
_sender_keys: dict[int, SenderKey] = {}
SENDER_KEYS_MAX = 10_000


def sender_keys(user_ids: Iterable[int], *, fresh: bool = False) -> dict[int, SenderKey]:
    """The current identity keys of these users (those who have one), from this
    process's copy unless `fresh` or missing there."""
    wanted = set(user_ids)
    missing = wanted if fresh else wanted - _sender_keys.keys()
    if missing:
        if len(_sender_keys) + len(missing) > SENDER_KEYS_MAX:
            _sender_keys.clear()
        found = {
            key.user_id: SenderKey(key.pk, key.x25519, key.ed25519)
            for key in IdentityKey.objects.filter(user_id__in=missing, replaced_at__isnull=True)
        }
        for user_id in missing:
            if user_id in found:
                _sender_keys[user_id] = found[user_id]
            else:
                _sender_keys.pop(user_id, None)
    return {user_id: _sender_keys[user_id] for user_id in wanted if user_id in _sender_keys}


def check_publish_identity(actor: User, public: Any, *, replace: bool = False) -> dict[str, Any]:
    """Publish the caller's identity; publishing the same one again is a no-op.

    A different key replaces the published one only when asked (`replace`):
    a device that lost its keys and its recovery secret starts over, and
    room keys must then be wrapped for the new identity.
    """
    access.check_authenticated(actor)
    identity = parse_public(public)
    current = active_identity(actor.pk)
    if current is not None and current.fingerprint == identity.fingerprint:
        return identity_data(current)
    if current is not None and not replace:
        raise RoundsError(
            N_("An identity is already published; recover it from the backup, or replace it."),
            code=ErrorCode.CONFLICT,
            data={"fingerprint": current.fingerprint},
        )
    if (
        IdentityKey.objects.filter(fingerprint=identity.fingerprint, replaced_at__isnull=True)
        .exclude(user=actor)
        .exists()
        or InstitutionKey.objects.filter(fingerprint=identity.fingerprint).exists()
    ):
        # One fingerprint, one holder: recipients of wraps are told apart by it.
        raise RoundsError(N_("This key belongs to someone else."), code=ErrorCode.CONFLICT)
    try:
        return do_publish_identity(actor, identity, current)
    except IntegrityError:
        raise RoundsError(
            N_("Another publication of your identity happened at the same time; fetch it."),
            code=ErrorCode.CONFLICT,
        ) from None


def do_publish_identity(
    actor: User, identity: PublicIdentity, current: IdentityKey | None
) -> dict[str, Any]:
    with transaction.atomic():
        if current is not None:
            IdentityKey.objects.filter(pk=current.pk).update(replaced_at=timezone.now())
        key = IdentityKey.objects.create(
            user=actor,
            fingerprint=identity.fingerprint,
            **identity.to_dict(),
        )
        record(
            "key.identity_replaced" if current else "key.identity_published",
            actor=actor,
            object_type="identity",
            object_id=key.pk,
            data={"fingerprint": identity.fingerprint},
        )
    return identity_data(key)


def check_get_identity(actor: User, user_id: int, fingerprint: str | None = None) -> dict[str, Any]:
    """The user's published identity; with `fingerprint`, one they published before.

    A replaced key is still needed to check what was signed with it: old
    messages, and wraps or statements made before the replacement.
    """
    access.access_identity_of(actor, user_id)
    if fingerprint is None:
        key = active_identity(user_id)
    else:
        key = IdentityKey.objects.filter(user_id=user_id, fingerprint=fingerprint).first()
    if key is None:
        raise NotFound(N_("No such published key for this user."))
    data = identity_data(key)
    data["replaced_at"] = key.replaced_at.isoformat() if key.replaced_at else None
    return data


def check_store_backup(actor: User, blob: str) -> dict[str, Any]:
    """Keep the caller's encrypted key backup (base64, at most 4 KiB)."""
    access.check_authenticated(actor)
    try:
        raw = b64decode(blob, field="blob")
    except CryptoError:
        raise RoundsError(
            N_("The backup must be base64."), code=ErrorCode.INVALID_REQUEST
        ) from None
    if not raw or len(raw) > MAX_BACKUP_BYTES:
        raise RoundsError(
            N_("A backup is 1 to %(max)s bytes."),
            code=ErrorCode.INVALID_REQUEST,
            params={"max": MAX_BACKUP_BYTES},
        )
    with transaction.atomic():
        backup, _ = KeyBackup.objects.update_or_create(user=actor, defaults={"blob": blob})
        record(
            "key.backup_stored",
            actor=actor,
            object_type="user",
            object_id=actor.pk,
            data={"bytes": len(raw)},
        )
    return {"updated_at": backup.updated_at.isoformat()}


def check_fetch_backup(actor: User) -> dict[str, Any]:
    """The caller's own backup, for a new device; audited, as a recovery is an access."""
    access.check_authenticated(actor)
    backup = KeyBackup.objects.filter(user=actor).first()
    if backup is None:
        raise NotFound(N_("No key backup stored."))
    record("key.backup_fetched", actor=actor, object_type="user", object_id=actor.pk)
    return {"blob": backup.blob, "updated_at": backup.updated_at.isoformat()}


def institution_data(key: InstitutionKey) -> dict[str, Any]:
    return {
        "kind": key.kind,
        "fingerprint": key.fingerprint,
        "public": key.as_public(),
        "set_at": key.set_at.isoformat(),
    }


def active_institution_key(kind: str) -> InstitutionKey | None:
    return InstitutionKey.objects.filter(kind=kind, replaced_at__isnull=True).first()


def list_institution_keys(actor: User) -> dict[str, Any]:
    access.check_authenticated(actor)
    return {
        kind: institution_data(key) if (key := active_institution_key(kind)) else None
        for kind in InstitutionKey.Kind.values
    }


def check_set_institution_key(actor: User, kind: str, public: Any) -> dict[str, Any]:
    """An administrator sets the admin or compliance public key (its private half stays offline)."""
    access.check_admin(actor)
    if kind not in InstitutionKey.Kind.values:
        raise NotFound(N_("No such institution key."))
    identity = parse_public(public)
    with transaction.atomic():
        InstitutionKey.objects.filter(kind=kind, replaced_at__isnull=True).update(
            replaced_at=timezone.now()
        )
        key = InstitutionKey.objects.create(
            kind=kind, set_by=actor, fingerprint=identity.fingerprint, **identity.to_dict()
        )
        record(
            f"key.{kind}_key_set",
            actor=actor,
            object_type="institution_key",
            object_id=key.pk,
            data={"fingerprint": identity.fingerprint},
        )
    return institution_data(key)
