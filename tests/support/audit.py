"""Reading the audit trail in assertions."""

from typing import Any


def audit_entries(action: str, **filters: Any) -> list[Any]:
    """The entries of `action` (and `filters`), oldest first."""
    from audit.models import AuditEvent

    return list(AuditEvent.objects.filter(action=action, **filters).order_by("id"))
