"""The key directory over HTTP: thin views over accounts.keys."""

from typing import Any

from ninja import Router, Schema

from accounts import keys
from core.api_schemas.accounts import (
    Backup,
    BackupStored,
    Identity,
    IdentityLookup,
    InstitutionKey,
    InstitutionKeys,
)
from core.api_schemas.common import answers
from rounds.http import AuthedRequest

router = Router(tags=["keys"])


class IdentityIn(Schema):
    public: dict[str, Any]
    replace: bool = False


class BackupIn(Schema):
    blob: str


class InstitutionKeyIn(Schema):
    public: dict[str, Any]


@router.put("/identity", response=answers(Identity))
def publish_identity(request: AuthedRequest, body: IdentityIn) -> dict[str, Any]:
    return keys.check_publish_identity(request.user, body.public, replace=body.replace)


@router.get("/identity/{user_id}", response=answers(IdentityLookup))
def get_identity(
    request: AuthedRequest, user_id: int, fingerprint: str | None = None
) -> dict[str, Any]:
    return keys.check_get_identity(request.user, user_id, fingerprint)


@router.put("/backup", response=answers(BackupStored))
def store_backup(request: AuthedRequest, body: BackupIn) -> dict[str, Any]:
    return keys.check_store_backup(request.user, body.blob)


@router.get("/backup", response=answers(Backup))
def fetch_backup(request: AuthedRequest) -> dict[str, Any]:
    return keys.check_fetch_backup(request.user)


@router.get("/institution", response=answers(InstitutionKeys))
def institution_keys(request: AuthedRequest) -> dict[str, Any]:
    return keys.list_institution_keys(request.user)


@router.put("/institution/{kind}", response=answers(InstitutionKey))
def set_institution_key(
    request: AuthedRequest, kind: str, body: InstitutionKeyIn
) -> dict[str, Any]:
    return keys.check_set_institution_key(request.user, kind, body.public)
