"""What every area's bodies share: the base model, the error body, small shapes."""

from typing import Any

from pydantic import BaseModel, ConfigDict

from core.errors import HTTP_STATUS
from core.outbound import UserRef

__all__ = [
    "ERROR_STATUSES",
    "Body",
    "CaseRef",
    "ChainHead",
    "ErrorBody",
    "KeyHolder",
    "PatientIdentity",
    "PublicKey",
    "Seal",
    "UserCard",
    "UserRef",
    "answers",
]


class Body(BaseModel):
    """A response body, or a part of one: every key declared, no other accepted."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(Body):
    """Every refusal, whatever the route: `code` from core.errors.ErrorCode, a message
    for people, and `data` (absent when empty) for programs: the socket's error frame
    without `type` and `id`."""

    code: str
    message: str
    data: dict[str, Any] | None = None


# Every status an error can be answered with; the API's exception handlers
# write the body (rounds/http.py), so declaring it changes nothing at runtime.
ERROR_STATUSES = tuple(sorted({*HTTP_STATUS.values(), 400, 401, 404}))


def answers(body: Any, status: int = 200) -> dict[Any, Any]:
    """A route's `response=`: `body` under its success status, ErrorBody under the rest.

    Args:
        body: the success body's model (or a list or union of models).
        status: the success status; a route that answers 201 returns Status(201, ...).
    """
    return {status: body, ERROR_STATUSES: ErrorBody}


class UserCard(Body):
    """A user as lists of people show them."""

    id: int
    username: str
    display_name: str


class PublicKey(Body):
    """A published identity's public halves, base64: X25519 (wraps) and Ed25519 (signatures)."""

    x25519: str
    ed25519: str


class KeyHolder(Body):
    """An institution key (compliance or admin) as a client checks it: fingerprint and key."""

    fingerprint: str
    public: PublicKey


class ChainHead(Body):
    """The head of a department's signed membership chain (seq 0: the empty chain)."""

    seq: int
    hash: str


class Seal(Body):
    """An audit entry's place in the sealed chain: its seal's number and hash."""

    seq: int
    hash: str


class CaseRef(Body):
    """A review case named by its id and its reference."""

    id: int
    reference: str


class PatientIdentity(Body):
    """Who a patient is, for compliance and the library: ids, names, birth date (ISO)."""

    id: int
    ipp: str
    family_name: str
    given_name: str
    birth_date: str


def files(*content_types: str, description: str, status: int = 200) -> dict[str, Any]:
    """A route's `openapi_extra` for a body sent as a file (a stream or a FileResponse),
    which no model describes: its content types, each an opaque binary string.

    Args:
        content_types: the media types the route may answer with.
        description: what the body is, for the schema's reader.
        status: the status the file comes with.
    """
    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {content_type: binary for content_type in content_types}
    return {"responses": {status: {"description": description, "content": content}}}
