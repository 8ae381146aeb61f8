"""A case's audit slice checked against its proof: each entry is in the sealed chain, at its
place, under a checkpoint signed with the pinned key.

The slice comes from `POST /api/compliance/cases/{id}/audit/proof`
(compliance/proof.py). For each entry: the record its seal covers says what
the entry says; the seal's hash is the chain hash of that record at its place
after its previous hash; and the seal hash's inclusion path leads to the root
the checkpoint signs (core/crypto/audit_proof.py). The checkpoint's signature
is checked with the PINNED checkpoint public key, never the key it names.
Used by `rounds compliance export` before it signs a bundle and by `rounds
verify-export` after; pure, no server.
"""

from datetime import datetime
from pathlib import Path
from typing import Any

from client.pins import pinned_public_key
from core.crypto.audit_proof import (
    CHECKPOINT_V2,
    RECORD_FIELDS,
    canonical_record,
    chain_hash,
    checkpoint_signature_ok,
    leaf_hash,
    verify_inclusion,
)

PIN = "audit_checkpoint"  # its name in the pins file
ENV = "ROUNDS_AUDIT_CHECKPOINT_PUBLIC_KEY"
_HEX = frozenset("0123456789abcdef")


class NotProved(Exception):
    """The first thing in the slice its proof does not hold; the message names it."""


def pinned_checkpoint_key(given: str | None, pins_file: Path | None) -> bytes:
    """The checkpoint public key from the option/environment, else the pins file's
    `audit_checkpoint`. The DPO records it when the key is made (docs/audit.md)."""
    return pinned_public_key(
        given,
        pins_file,
        pin=PIN,
        what="audit checkpoint",
        option="--checkpoint-public-key",
        env=ENV,
    )


def check_proved_slice(
    slice_: dict[str, Any], case: int, checkpoint_key: bytes | None
) -> dict[str, Any]:
    """Check every entry of the slice against its proof; the checkpoint if all hold.

    `checkpoint_key` None checks everything but the checkpoint's signature (the
    exporter, when no checkpoint key is pinned; verify-export always pins one).

    Raises:
        NotProved: the first entry or field that does not hold, named.
    """
    checkpoint = slice_.get("checkpoint")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_V2:
        raise NotProved(f"no {CHECKPOINT_V2} checkpoint with the slice")
    if checkpoint_key is not None and not checkpoint_signature_ok(checkpoint, checkpoint_key):
        raise NotProved(
            f"the checkpoint at seal {checkpoint.get('seq')} does not verify with the pinned "
            f"checkpoint key {checkpoint_key.hex()} (altered, or signed by another key)"
        )
    size, root = checkpoint["seq"], _hash(checkpoint.get("root"), "the checkpoint's root")
    if not isinstance(size, int) or size < 0:
        raise NotProved("the checkpoint names no seal")
    for entry in slice_.get("entries") or []:
        _check_entry(entry, case, size, root)
    return checkpoint


def _check_entry(entry: dict[str, Any], case: int, size: int, root: bytes) -> None:
    where = f"entry {entry.get('id')}"
    record, seal = entry.get("record"), entry.get("seal")
    if not isinstance(record, dict) or set(record) != RECORD_FIELDS:
        raise NotProved(f"{where}: no record of the fields its seal covers")
    if not isinstance(seal, dict) or not isinstance(seal.get("seq"), int):
        raise NotProved(f"{where}: no seal")
    if seal.get("quarantined"):
        raise NotProved(
            f"{where}: quarantined on the server (docs/audit.md): its seal covers a marker, "
            "not its content, so it cannot be proved"
        )
    _same(where, entry, record)
    data = record["data"] if isinstance(record["data"], dict) else {}
    if data.get("case") != case and (record["object_type"], record["object_id"]) != (
        "case",
        str(case),
    ):
        raise NotProved(f"{where} does not name case {case}")
    digest = chain_hash(seal["seq"], str(seal.get("prev_hash")), canonical_record(record))
    if digest != seal.get("hash"):
        raise NotProved(f"{where}: seal {seal['seq']} does not cover the record")
    path = entry.get("path")
    if not isinstance(path, list) or not 1 <= seal["seq"] <= size:
        raise NotProved(f"{where}: seal {seal['seq']} is not under the checkpoint at seal {size}")
    steps = [_hash(step, f"{where}: its path") for step in path]
    leaf = leaf_hash(bytes.fromhex(digest))
    if not verify_inclusion(seal["seq"] - 1, size, leaf, steps, root):
        raise NotProved(
            f"{where}: seal {seal['seq']} is not in the tree the checkpoint at seal {size} signs"
        )


def _same(where: str, entry: dict[str, Any], record: dict[str, Any]) -> None:
    """What the slice shows of the entry is what its seal covers."""
    actor = entry.get("actor") or {}
    shown = (
        entry.get("id"),
        entry.get("action"),
        entry.get("object_type"),
        entry.get("object_id"),
        entry.get("data"),
        entry.get("department"),
        actor.get("id"),
        actor.get("username", ""),
    )
    covered = (
        record["id"],
        record["action"],
        record["object_type"],
        record["object_id"],
        record["data"],
        record["department_id"],
        record["actor_id"],
        record["actor_username"] if record["actor_id"] is not None else "",
    )
    instant = _instant(record["at"])
    if shown != covered or instant is None or _instant(entry.get("at")) != instant:
        raise NotProved(f"{where}: the slice shows other fields than its seal covers")


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _hash(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
        raise NotProved(f"{what} is not a SHA-256 hash")
    return bytes.fromhex(value)
