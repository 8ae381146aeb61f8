"""Consults (chat/consults_api.py, docs/advice.md "Consults")."""

from typing import Any

from core.api_schemas.common import Body
from core.outbound import ConsultOut


class ConsultList(Body):
    consults: list[ConsultOut]


class ConsultKeys(Body):
    """The thread key's versions, the caller's wraps and who wrapped them, the guest's key."""

    consult: ConsultOut
    rotation_required: bool
    chain: dict[str, Any]
    guest_identity: dict[str, str] | None
    versions: list[dict[str, Any]]
    my_wraps: list[dict[str, Any]]
    wrappers: dict[str, Any]


class KeyPublished(Body):
    thread: int
    key_version: int
    wraps: int


class ConsultTarget(Body):
    id: int
    name: str
    roles: list[dict[str, Any]]


class ConsultTargets(Body):
    departments: list[ConsultTarget]


class WrapsShared(Body):
    thread: int
    added: int
