"""The append-only, hash-chained audit trail.

Entries are written in the same transaction as the action they record and
are never updated or deleted (the model refuses, and so does a database
trigger). A separate, equally append-only table of seals chains them: seal n
holds SHA-256(n, hash of seal n-1, canonical encoding of its entry). Sealing
runs shortly after commit, in batches, so chaining never serialises the
actions themselves; see docs/audit.md.
"""

from datetime import UTC
from typing import Any, NoReturn

from django.db import models

from core.crypto.audit_proof import canonical_record, chain_hash

__all__ = [
    "GENESIS_HASH",
    "AppendOnlyError",
    "AuditEvent",
    "AuditPrune",
    "AuditSeal",
    "chain_hash",
    "latest_prune",
]

GENESIS_HASH = "0" * 64


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit row."""


class AppendOnlyModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only")


class AuditEvent(AppendOnlyModel):
    """Who did what, to which object, when and from where; never content."""

    at = models.DateTimeField(db_index=True)
    # No foreign key: a trail must outlive and never block the rows it names.
    actor_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    department_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    object_type = models.CharField(max_length=32, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.pk} {self.action} by {self.actor_username or '-'}"

    def canonical(self) -> bytes:
        """The exact bytes the chain covers: every field, keys sorted, UTC time."""
        return canonical_record(self.record())

    def record(self) -> dict[str, Any]:
        """The fields the chain covers, as an export's proof carries them."""
        return {
            "id": self.pk,
            "at": self.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor_id": self.actor_id,
            "actor_username": self.actor_username,
            "action": self.action,
            "department_id": self.department_id,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "data": self.data,
            "ip": self.ip,
        }


class AuditSeal(AppendOnlyModel):
    """Position `seq` in the chain, sealing exactly one audit entry."""

    seq = models.BigIntegerField(primary_key=True)
    event = models.OneToOneField(
        AuditEvent, on_delete=models.DO_NOTHING, db_constraint=True, related_name="seal"
    )
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()
    # Set when the entry could not be encoded: the SHA-256 of its stored row,
    # which the chain covers in place of its content (audit/quarantine.py).
    # Nullable so that adding it never rebuilds the append-only table.
    quarantined_sha256 = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

    def __str__(self) -> str:
        return f"seal {self.seq} of {self.event_id}"


class AuditPrune(AppendOnlyModel):
    """The chain's prefix up to seal `seq` was removed at the end of its retention
    (audit/prune.py): the anchor the chain continues from. Its `frontier` lets the tree
    over seal hashes go on as if the prefix were there; the prune was also signed into
    the checkpoint sink as `record`, which audit_verify --checkpoints requires."""

    seq = models.BigIntegerField(primary_key=True)
    hash = models.CharField(max_length=64)  # seal `seq`'s hash: the next seal's prev_hash
    frontier = models.JSONField()  # [[width, hex], ...] of the tree over seals 1..seq
    removed = models.BigIntegerField()  # entries this prune removes (the seals after the last)
    before = models.DateTimeField()  # every entry removed was written before this
    at = models.DateTimeField()
    record = models.CharField(max_length=200)  # the signed prune record's name in the sink

    def __str__(self) -> str:
        return f"pruned up to seal {self.seq}"

    def frontier_hashes(self) -> list[tuple[int, bytes]]:
        """The frontier as the tree's code takes it: (width, hash) pairs."""
        return [(width, bytes.fromhex(digest)) for width, digest in self.frontier]


def latest_prune() -> "AuditPrune | None":
    return AuditPrune.objects.order_by("-seq").first()
