"""Signed checkpoints of the chain head, kept where the database's administrators cannot
rewrite them, and the check of the chain against every one.

The hash chain has no key: whoever can write the audit tables can cut its tail
or rebuild it from any point, and what remains still verifies. A checkpoint
is the head (seal number, hash), the number of entries and the time, signed
with an Ed25519 key kept outside the database (ROUNDS_AUDIT_CHECKPOINT_KEY)
and written to a sink they cannot rewrite (audit/sinks.py). A later chain
must still hold each checkpoint's seal with the same hash: a chain shorter
than a checkpoint was cut, a different hash means it was rewritten, and a
checkpoint whose signature fails under the institution's public key was
forged. Since format v2 a checkpoint also signs `root`, the Merkle tree root
over the seal hashes 1..seq (audit/tree.py), so that one entry can be proved
to it without the others (an export's audit slice; core/crypto/audit_proof.py).
See docs/audit.md.
"""

import json
import logging
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.signing
from django.conf import settings
from django.utils import timezone

from audit.models import GENESIS_HASH, AuditEvent, AuditPrune, AuditSeal
from audit.sinks import Sink, SinkError, configured_sink
from audit.tree import SealTree, SealTreeError, seal_leaves
from core.crypto.audit_proof import (
    CHECKPOINT_FIELDS,
    CHECKPOINT_V1,
    CHECKPOINT_V2,
    PRUNE_V1,
    checkpoint_signature_ok,
    checkpoint_signed_bytes,
    fold,
    roots_at,
)
from rounds import metrics

logger = logging.getLogger(__name__)

# Written in v2; v1 checkpoints (no root) written before stay valid and are checked.
FORMAT = CHECKPOINT_V2
FORMATS = (CHECKPOINT_V1, CHECKPOINT_V2)


class CheckpointError(Exception):
    """A key or a checkpoint that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int  # the head seal's number when signed (0: an empty chain)
    hash: str  # its hash
    count: int  # audit entries in the database when signed, sealed or not
    at: str  # when it was signed, ISO 8601 UTC
    key: str  # the signing key's public half, hex
    signature: str = ""  # Ed25519 over signed_bytes(), hex
    format: str = FORMAT
    root: str = ""  # v2: the tree root over seal hashes 1..seq, hex (v1: absent)

    def fields(self) -> dict[str, Any]:
        """As written: a v1 checkpoint has no root field."""
        data = asdict(self)
        if self.format == CHECKPOINT_V1:
            del data["root"]
        return data

    def signed_bytes(self) -> bytes:
        return checkpoint_signed_bytes(self.fields())

    def to_json(self) -> bytes:
        return json.dumps(self.fields(), sort_keys=True, indent=2).encode() + b"\n"

    def name(self) -> str:
        """Sorted by seal, then time; the random tail keeps two processes apart."""
        stamp = self.at.replace("-", "").replace(":", "").replace("+0000", "Z")
        return f"checkpoint-{self.seq:012d}-{stamp}-{secrets.token_hex(4)}.json"


# --- The key ------------------------------------------------------------------------


def create_key(path: Path) -> nacl.signing.SigningKey:
    """A new key at `path` (its 32-byte seed in hex, mode 0600); never replaces one."""
    key = nacl.signing.SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x") as out:
            path.chmod(0o600)
            out.write(bytes(key).hex() + "\n")
    except FileExistsError:
        raise CheckpointError(f"a checkpoint key already exists at {path}; it is kept") from None
    return key


def load_key(path: Path) -> nacl.signing.SigningKey:
    try:
        seed = bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        raise CheckpointError(
            f"no checkpoint key at {path}: create one with audit_checkpoint --new-key"
        ) from None
    except ValueError:
        raise CheckpointError(f"the checkpoint key at {path} is not hex") from None
    if len(seed) != nacl.bindings.crypto_sign_SEEDBYTES:
        raise CheckpointError(f"the checkpoint key at {path} is not a 32-byte seed")
    return nacl.signing.SigningKey(seed)


def public_key(hex_key: str = "") -> bytes:
    """The key checkpoints must verify under: given (as the DPO recorded it), or the
    public half of the configured key."""
    if not hex_key:
        return bytes(load_key(settings.ROUNDS_AUDIT_CHECKPOINT_KEY).verify_key)
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        raise CheckpointError("--public-key must be 64 hex digits") from None
    if len(key) != 32 or not nacl.bindings.crypto_core_ed25519_is_valid_point(key):
        raise CheckpointError("--public-key is not an Ed25519 public key")
    return key


# --- Writing ------------------------------------------------------------------------


def sign_head(key: nacl.signing.SigningKey) -> Checkpoint:
    """Sign the head seal, the entry count and the tree root over every seal up to it.

    Raises:
        SealTreeError: the seal table has a gap (audit_verify names it).
    """
    head = AuditSeal.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, digest = head if head else (0, GENESIS_HASH)
    unsigned = Checkpoint(
        seq=seq,
        hash=digest,
        count=AuditEvent.objects.count(),
        at=timezone.now().astimezone(UTC).isoformat(timespec="microseconds"),
        key=bytes(key.verify_key).hex(),
        root=SealTree(seq).root().hex(),
    )
    signature = key.sign(unsigned.signed_bytes()).signature.hex()
    return Checkpoint(**{**asdict(unsigned), "signature": signature})


def write_checkpoint(sink: Sink | None = None) -> tuple[Checkpoint, str]:
    """Sign the current head and write it. Returns the checkpoint and its name.

    Raises:
        CheckpointError: no usable key. SinkError: the sink refused or failed.
    """
    global _latest
    try:
        checkpoint = sign_head(load_key(settings.ROUNDS_AUDIT_CHECKPOINT_KEY))
    except SealTreeError as error:
        raise CheckpointError(f"the chain has a gap ({error}): run audit_verify") from None
    name = checkpoint.name()
    (sink or configured_sink()).write(name, checkpoint.to_json())
    metrics.AUDIT_CHECKPOINTS.labels("written").inc()
    with _latest_lock:
        if _latest is None or checkpoint.seq >= _latest[0].seq:
            _latest = (checkpoint, name)
    return checkpoint, name


# The newest checkpoint this process wrote, so that a proof can reuse it rather than
# write one per request (each stays in the sink for years under object lock).
_latest: tuple[Checkpoint, str] | None = None
_latest_lock = threading.Lock()


def checkpoint_covering(seq: int) -> tuple[Checkpoint, str]:
    """A checkpoint at seal `seq` or later: the newest this process wrote if it reaches
    that far, else a new one (the caller sealed what it needs first).

    Raises:
        CheckpointError, SinkError: as write_checkpoint.
    """
    with _latest_lock:
        latest = _latest
    if latest is not None and latest[0].seq >= seq:
        return latest
    return write_checkpoint()


# After a failure (no key yet, the sink unreachable) try again sooner than the interval,
# but not every round: the log would fill at the sealer's rate.
RETRY_AFTER_FAILURE = 60.0
_next_due: float | None = None
_periodic_lock = threading.Lock()


def write_if_due(now: float | None = None) -> bool:
    """From the sealer thread: a checkpoint every ROUNDS_AUDIT_CHECKPOINT_INTERVAL seconds
    (0: never), the first at the thread's first round. A failure is logged and counted,
    and tried again after RETRY_AFTER_FAILURE seconds (or the interval, if shorter)."""
    global _next_due
    interval = settings.ROUNDS_AUDIT_CHECKPOINT_INTERVAL
    now = time.monotonic() if now is None else now
    if interval <= 0 or (_next_due is not None and now < _next_due):
        return False
    with _periodic_lock:
        try:
            write_checkpoint()
        except (CheckpointError, SinkError) as error:
            metrics.AUDIT_CHECKPOINTS.labels("failed").inc()
            logger.error("audit checkpoint not written: %s", error)
            _next_due = now + min(interval, RETRY_AFTER_FAILURE)
            return False
        _next_due = now + interval
    return True


# --- Checking -----------------------------------------------------------------------


def parse(name: str, raw: bytes) -> Checkpoint:
    try:
        data: Any = json.loads(raw)
        checkpoint = Checkpoint(**data)
    except (ValueError, TypeError):
        raise CheckpointError(f"checkpoint {name} is not a checkpoint") from None
    kinds = (int, str, int, str, str, str, str, str)
    values: tuple[object, ...] = (checkpoint.seq, checkpoint.hash, checkpoint.count, checkpoint.at)
    values += (checkpoint.key, checkpoint.signature, checkpoint.format, checkpoint.root)
    fields = set(data) | {"signature"}
    if (
        checkpoint.format not in FORMATS
        or fields != {*CHECKPOINT_FIELDS[checkpoint.format], "signature"}
        or not all(type(v) is k for v, k in zip(values, kinds, strict=True))
    ):
        raise CheckpointError(f"checkpoint {name} is not a {' or '.join(FORMATS)} checkpoint")
    return checkpoint


def signature_ok(checkpoint: Checkpoint, key: bytes) -> bool:
    return checkpoint_signature_ok(checkpoint.fields(), key)


def check_against_checkpoints(report: Any, public_hex: str = "") -> tuple[str, str]:
    """Check a verified chain (`report` of verify_chain) against every checkpoint, and each
    prune of its prefix against its signed record.

    Returns (summary, "") when all match, or ("", the first problem) naming the
    checkpoint: forged, a cut tail, a rewritten chain, entries removed.
    """
    try:
        key = public_key(public_hex)
        sink = configured_sink()
        stored = sink.read_all()
        records = {n: raw for n, raw in stored if n.startswith(PRUNE_PREFIX)}
        checkpoints = [(n, parse(n, raw)) for n, raw in stored if n not in records]
    except (CheckpointError, SinkError) as error:
        return "", str(error)
    if not checkpoints:
        return "", f"no checkpoint in {sink.describe()}: write one with audit_checkpoint"
    anchors = list(AuditPrune.objects.order_by("seq"))
    problem = _prunes_mismatch(anchors, records, key)
    if problem:
        return "", problem
    start = anchors[-1] if anchors else None
    checkpoints.sort(key=lambda item: (item[1].seq, item[1].at, item[0]))
    wanted = {c.seq for _, c in checkpoints}
    hashes = dict(AuditSeal.objects.filter(seq__in=wanted).values_list("seq", "hash"))
    hashes[0] = GENESIS_HASH
    if start is not None:
        hashes[start.seq] = start.hash
    count = AuditEvent.objects.count() + sum(a.removed for a in anchors)
    roots = _roots(checkpoints, report.head_seq, start)
    for name, checkpoint in checkpoints:
        if start is not None and checkpoint.seq < start.seq:
            problem = "" if signature_ok(checkpoint, key) else _forged(name)
        else:
            problem = _mismatch(name, checkpoint, key, report.head_seq, hashes, count)
        checkable = start is None or checkpoint.seq >= start.seq  # leaves before are gone
        if not problem and checkpoint.format == CHECKPOINT_V2 and checkable:
            problem = _root_mismatch(name, checkpoint, roots)
        if problem:
            return "", problem
    name, latest = checkpoints[-1]
    pruned = (
        f"; the prefix up to seal {start.seq} pruned ({len(anchors)} prune(s))" if start else ""
    )
    return (
        f"checkpoints ok: {len(checkpoints)} in {sink.describe()}, the latest {name} "
        f"at seal {latest.seq} signed {latest.at}{pruned}",
        "",
    )


def _forged(name: str) -> str:
    return (
        f"checkpoint {name} has a bad signature: it was forged or altered, or signed by another key"
    )


def _mismatch(
    name: str, checkpoint: Checkpoint, key: bytes, head: int, hashes: dict[int, str], count: int
) -> str:
    if not signature_ok(checkpoint, key):
        return _forged(name)
    if checkpoint.seq > head:
        return (
            f"checkpoint {name} names seal {checkpoint.seq} but the chain ends at seal {head}: "
            "its tail was cut (or a backup older than the checkpoint was restored)"
        )
    if hashes.get(checkpoint.seq) != checkpoint.hash:
        return (
            f"checkpoint {name}: seal {checkpoint.seq} has hash {hashes.get(checkpoint.seq)}, "
            f"the checkpoint {checkpoint.hash}: the chain was rewritten"
        )
    if count < checkpoint.count:
        return (
            f"checkpoint {name} counted {checkpoint.count} audit entries, the database holds "
            f"{count} with those its signed prunes removed: entries were removed"
        )
    return ""


# --- Prunes of the chain's prefix (retention/audit_prune.py) -------------------------

PRUNE_PREFIX = "prune-"


def write_prune_record(fields: dict[str, Any]) -> str:
    """Sign a prune's fields (PRUNE_V1 but `key` and `signature`) and write it to the sink
    before anything is removed. Returns its name.

    Raises:
        CheckpointError: no usable key. SinkError: the sink refused or failed.
    """
    key = load_key(settings.ROUNDS_AUDIT_CHECKPOINT_KEY)
    signed = {**fields, "format": PRUNE_V1, "key": bytes(key.verify_key).hex()}
    signed["signature"] = key.sign(checkpoint_signed_bytes(signed)).signature.hex()
    name = f"{PRUNE_PREFIX}{fields['seq']:012d}-{secrets.token_hex(4)}.json"
    configured_sink().write(name, json.dumps(signed, sort_keys=True, indent=2).encode() + b"\n")
    return name


def _prunes_mismatch(anchors: list[AuditPrune], records: dict[str, bytes], key: bytes) -> str:
    """Each prune in the database has its signed record in the sink, and they agree: a
    prefix removed by anyone but the prune (no record) or otherwise (another seal, hash,
    root or count) is named."""
    for anchor in anchors:
        where = f"the prune up to seal {anchor.seq}"
        raw = records.get(anchor.record)
        if raw is None:
            return (
                f"{where} has no signed record in the sink ({anchor.record}): the chain's "
                "prefix was removed outside the audit retention, or the record was removed"
            )
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if not isinstance(record, dict) or not checkpoint_signature_ok(record, key):
            return (
                f"{where}: its record {anchor.record} is forged, altered or signed by another key"
            )
        root = fold(anchor.frontier_hashes()).hex()
        expected = (anchor.seq, anchor.hash, root, anchor.removed, PRUNE_V1)
        found = tuple(record.get(k) for k in ("seq", "hash", "root", "removed", "format"))
        if found != expected:
            return (
                f"{where}: the database's anchor is not what its signed record {anchor.record} says"
            )
    return ""


def _roots(
    checkpoints: list[tuple[str, Checkpoint]], head: int, start: AuditPrune | None
) -> dict[int, bytes]:
    """The tree root at every v2 checkpoint's seal (from the last prune's on), in one pass
    over the seal hashes, continuing the pruned prefix's frontier."""
    first = start.seq if start is not None else 0
    sizes = {c.seq for _, c in checkpoints if c.format == CHECKPOINT_V2 and first <= c.seq <= head}
    if not sizes:
        return {}
    frontier = start.frontier_hashes() if start is not None else None
    try:
        return roots_at(seal_leaves(max(sizes), first=first + 1), sizes, frontier)
    except SealTreeError:
        return {}  # verify_chain has named the gap already


def _root_mismatch(name: str, checkpoint: Checkpoint, roots: dict[int, bytes]) -> str:
    root = roots.get(checkpoint.seq)
    if root is None or root.hex() != checkpoint.root:
        return (
            f"checkpoint {name}: the tree over seals 1..{checkpoint.seq} has root "
            f"{root.hex() if root else None}, the checkpoint {checkpoint.root}: a seal before "
            "it was rewritten, so proofs made against it would not hold"
        )
    return ""


def reset_schedule() -> None:
    """For tests: the next write_if_due writes, and no checkpoint is remembered."""
    global _next_due, _latest
    _next_due = None
    _latest = None
