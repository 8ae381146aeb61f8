"""The typed errors a client may see: the only exceptions that cross an edge.

Anything else raised below an edge is a bug, or a component failing (the
database restarting): it is logged without content and answered with
`internal_error`, which a client retries (a post with the same
`client_msg_id` is safe); a socket handler's failure also closes the socket
with 4500 (an HTTP request gets a bare 500).
"""

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any


def N_(message: str) -> str:
    """Mark an English message for the catalogue, untranslated.

    The core imports no Django, and an error is raised where the reader's
    language may not be known (a batch of posts from several sockets): the
    message stays English here and is translated once, at the edge that
    answers (rounds/i18n.py). `manage.py makemessages` passes `--keyword=N_`.
    """
    return message


class ErrorCode(StrEnum):
    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_FRAME = "invalid_frame"
    UNKNOWN_TYPE = "unknown_type"
    FRAME_TOO_LARGE = "frame_too_large"
    RATE_LIMITED = "rate_limited"
    NOT_AUTHENTICATED = "not_authenticated"
    LOCKED_OUT = "locked_out"
    INVALID_CREDENTIALS = "invalid_credentials"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    THREAD_CLOSED = "thread_closed"
    CLIENT_MSG_ID_CONFLICT = "client_msg_id_conflict"
    CURSOR_INVALID = "cursor_invalid"
    LAST_HEAD = "last_head"
    ALREADY_MEMBER = "already_member"
    CONFLICT = "conflict"
    INVALID_REQUEST = "invalid_request"
    INVALID_KEY = "invalid_key"
    BAD_SIGNATURE = "bad_signature"
    KEY_ROTATION_REQUIRED = "key_rotation_required"
    WRAPS_INCOMPLETE = "wraps_incomplete"
    NOT_ATTESTED = "not_attested"
    INTERNAL_ERROR = "internal_error"
    INVALID_ENVELOPE = "invalid_envelope"
    ENVELOPE_MISMATCH = "envelope_mismatch"
    UPLOAD_TOO_LARGE = "upload_too_large"
    WRONG_OFFSET = "wrong_offset"
    BEYOND_DECLARED_SIZE = "beyond_declared_size"
    CHUNK_CONFLICT = "chunk_conflict"
    UPLOAD_STATE = "upload_state"
    UPLOAD_INCOMPLETE = "upload_incomplete"
    HASH_MISMATCH = "hash_mismatch"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    ATTACHMENT_INVALID = "attachment_invalid"
    CASE_CLOSED = "case_closed"
    CASE_NOT_APPROVED = "case_not_approved"
    CHECKPOINT_UNAVAILABLE = "checkpoint_unavailable"
    CORRECTION_WINDOW_CLOSED = "correction_window_closed"
    MESSAGE_REDACTED = "message_redacted"
    NOT_A_MEMBER = "not_a_member"
    ROSTER_REFUSED = "roster_refused"
    SECOND_FACTOR_REQUIRED = "second_factor_required"
    SECOND_FACTOR_SETUP_REQUIRED = "second_factor_setup_required"
    INVALID_SECOND_FACTOR = "invalid_second_factor"
    SIGN_IN_EXPIRED = "sign_in_expired"
    PASSKEYS_UNAVAILABLE = "passkeys_unavailable"


# The HTTP status each code maps to at the JSON API edge.
HTTP_STATUS = {
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.INVALID_UTF8: 400,
    ErrorCode.INVALID_FRAME: 400,
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.CURSOR_INVALID: 400,
    ErrorCode.FRAME_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.LOCKED_OUT: 429,
    ErrorCode.NOT_AUTHENTICATED: 401,
    ErrorCode.INVALID_CREDENTIALS: 401,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.THREAD_CLOSED: 409,
    ErrorCode.CLIENT_MSG_ID_CONFLICT: 409,
    ErrorCode.LAST_HEAD: 409,
    ErrorCode.ALREADY_MEMBER: 409,
    ErrorCode.CONFLICT: 409,
    ErrorCode.INVALID_KEY: 400,
    ErrorCode.BAD_SIGNATURE: 400,
    ErrorCode.KEY_ROTATION_REQUIRED: 409,
    ErrorCode.WRAPS_INCOMPLETE: 409,
    ErrorCode.NOT_ATTESTED: 403,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.INVALID_ENVELOPE: 400,
    ErrorCode.ENVELOPE_MISMATCH: 400,
    ErrorCode.UPLOAD_TOO_LARGE: 413,
    ErrorCode.WRONG_OFFSET: 409,
    ErrorCode.BEYOND_DECLARED_SIZE: 400,
    ErrorCode.CHUNK_CONFLICT: 409,
    ErrorCode.UPLOAD_STATE: 409,
    ErrorCode.UPLOAD_INCOMPLETE: 409,
    ErrorCode.HASH_MISMATCH: 409,
    ErrorCode.RANGE_NOT_SATISFIABLE: 416,
    ErrorCode.ATTACHMENT_INVALID: 400,
    ErrorCode.CASE_CLOSED: 409,
    ErrorCode.CASE_NOT_APPROVED: 409,
    ErrorCode.CHECKPOINT_UNAVAILABLE: 503,
    ErrorCode.CORRECTION_WINDOW_CLOSED: 409,
    ErrorCode.MESSAGE_REDACTED: 409,
    ErrorCode.NOT_A_MEMBER: 409,
    ErrorCode.ROSTER_REFUSED: 400,
    ErrorCode.SECOND_FACTOR_REQUIRED: 401,
    ErrorCode.SECOND_FACTOR_SETUP_REQUIRED: 401,
    ErrorCode.INVALID_SECOND_FACTOR: 401,
    ErrorCode.SIGN_IN_EXPIRED: 401,
    ErrorCode.PASSKEYS_UNAVAILABLE: 400,
}


class RoundsError(Exception):
    """An error the client is told about, with a stable code and plain data.

    `close_code` is set when the socket must close after the error frame
    (unauthenticated, abusing limits); otherwise the connection stays up.

    `message` is the English msgid, marked with N_(); its named placeholders
    (`%(limit)s`) are filled from `params` after translation, so a translator
    sees one sentence and may move the values. `self.message` is the English.
    """

    code: ErrorCode = ErrorCode.INVALID_REQUEST
    default_message = N_("The request was refused.")

    def __init__(
        self,
        message: str | None = None,
        *,
        code: ErrorCode | None = None,
        data: dict[str, Any] | None = None,
        close_code: int | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        self.code = code or self.code
        self.msgid = message or self.default_message
        self.params = dict(params or {})
        self.message = self.msgid % self.params if self.params else self.msgid
        self.data = data or {}
        self.close_code = close_code
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 400)

    def as_dict(self, translate: Callable[[str], str] | None = None) -> dict[str, Any]:
        """The error as a client reads it; `translate` (the edge's gettext) turns the
        msgid into the reader's language before the values are put in."""
        message = self.message
        if translate is not None:
            message = translate(self.msgid)
            message = message % self.params if self.params else message
        out: dict[str, Any] = {"code": str(self.code), "message": message}
        if self.data:
            out["data"] = self.data
        return out


class NotAuthenticated(RoundsError):
    """No live session or token: the HTTP edge, the byte views and the permission module
    refuse alike."""

    code = ErrorCode.NOT_AUTHENTICATED
    default_message = N_("Sign in first.")


class NotFound(RoundsError):
    """Missing or forbidden alike, so a client cannot probe what exists."""

    code = ErrorCode.NOT_FOUND
    default_message = N_("Not found.")


class Forbidden(RoundsError):
    """The object is visible to the caller but this action is not theirs."""

    code = ErrorCode.FORBIDDEN
    default_message = N_("This action is not allowed for your role.")


class InvalidRequest(RoundsError):
    code = ErrorCode.INVALID_REQUEST


class Conflict(RoundsError):
    code = ErrorCode.CONFLICT
