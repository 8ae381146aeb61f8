"""A case's audit slice proved to a signed checkpoint, so that its export verifies offline.

Each entry comes with the record its seal covers, the seal (place, previous
hash, hash) and its inclusion path in the tree whose root the checkpoint
signs (core/crypto/audit_proof.py). Nothing about anyone else's entries is
released: the paths are hashes of hashes. Pending entries are sealed first,
and the checkpoint is the newest this process wrote if it covers the slice,
else a new one written to the sink: one per export at most, not one per call
(each stays in the sink for the retention of audit records).

Not audited, as the slice itself (compliance/actions.py `check_case_audit`):
it releases the trail of the case, no patient data.
"""

import logging
from typing import Any

from accounts.models import User
from audit.actions import seal_all
from audit.checkpoints import CheckpointError, checkpoint_covering
from audit.sinks import SinkError
from audit.tree import SealTree
from compliance.actions import case_slice, slice_entry
from core.errors import N_, ErrorCode, RoundsError
from rooms import access

logger = logging.getLogger(__name__)


class CheckpointUnavailable(RoundsError):
    code = ErrorCode.CHECKPOINT_UNAVAILABLE
    default_message = N_(
        "No signed audit checkpoint can be written now (no checkpoint key, or the sink is "
        "unreachable): the audit slice cannot be proved. Try again; the administrators are told."
    )


def check_case_audit_proof(actor: User, case_id: int) -> dict[str, Any]:
    """The slice up to a checkpoint, each entry with its proof; entries after it are
    counted in `later` (written while this ran: the next export has them).

    Raises:
        NotFound: not the caller's case. CheckpointUnavailable: as its message says.
    """
    case = access.access_case_record(actor, case_id)
    seal_all()
    entries = [e for e in case_slice(case) if getattr(e, "seal", None) is not None]
    try:
        checkpoint, name = checkpoint_covering(max((e.seal.seq for e in entries), default=0))
    except (CheckpointError, SinkError) as error:
        logger.error("audit proof for case %s: no checkpoint: %s", case.pk, error)
        raise CheckpointUnavailable() from None
    proved = [e for e in entries if e.seal.seq <= checkpoint.seq]
    tree = SealTree(checkpoint.seq, proving=[e.seal.seq for e in proved])
    if tree.root().hex() != checkpoint.root:
        # The seals changed since the checkpoint was signed: audit_verify names where.
        logger.error("audit proof for case %s: the seals no longer match %s", case.pk, name)
        raise RoundsError(
            N_("The audit chain no longer matches checkpoint %(name)s: nothing is proved."),
            params={"name": name},
            code=ErrorCode.INTERNAL_ERROR,
        )
    return {
        "case": case.pk,
        "checkpoint": checkpoint.fields(),
        "checkpoint_name": name,
        "later": len(entries) - len(proved),
        "entries": [_proved(e, tree) for e in proved],
    }


def _proved(entry: Any, tree: SealTree) -> dict[str, Any]:
    seal = entry.seal
    return {
        **slice_entry(entry),
        "seal": {
            "seq": seal.seq,
            "prev_hash": seal.prev_hash,
            "hash": seal.hash,
            "quarantined": bool(seal.quarantined_sha256),
        },
        "record": entry.record(),
        "path": [step.hex() for step in tree.path(seal.seq)],
    }
