"""The reason a head or a sender gives for a moderation step (a redaction, a thread
closed, a member removed): optional, kept in the audit trail only, never shown to
members."""

from core.errors import N_, InvalidRequest
from core.protocol import MAX_REDACTION_REASON


def checked_reason(reason: str | None) -> str:
    """The reason trimmed ("" for none); InvalidRequest over MAX_REDACTION_REASON characters."""
    reason = (reason or "").strip()
    if len(reason) > MAX_REDACTION_REASON:
        raise InvalidRequest(
            N_("A reason has at most %(max)s characters."), params={"max": MAX_REDACTION_REASON}
        )
    return reason
