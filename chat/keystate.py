"""The key a post is written under, checked under the locks the post holds.

A department's room key state (version, rotation, commitment, the chain position
it was made at) is read with the department's event numbers, under its row
lock (chat/numbering.py takes it), so a post racing a removal or a key
publication is either before it or refused; a consult's thread key state is
read under the consult's row, taken after (docs/crypto.md §8 and §14). Used by
the post path (chat/posting.py) and corrections (chat/corrections.py).
"""

from typing import Any, NamedTuple

from accounts.models import User
from chat.models import Consult, ConsultState
from core.crypto import EnvelopeHeader, b64encode
from core.errors import N_, ErrorCode, NotFound, RoundsError
from rooms import access


class KeyState(NamedTuple):
    """A department's room key and chain position, read under its row lock with its numbers."""

    key_version: int
    rotation_required: bool
    key_commitment: str
    key_chain_seq: int
    chain_seq: int


def key_state_of(row: tuple[Any, ...]) -> KeyState:
    version, rotation, commitment, key_chain_seq, chain_seq = row
    return KeyState(int(version), bool(rotation), commitment, int(key_chain_seq), int(chain_seq))


def check_room_key(header: EnvelopeHeader, department_id: int, key_state: KeyState) -> None:
    """The envelope's room, key version and chain position against the department's,
    under its lock (docs/crypto.md §8)."""
    if header.room != department_id:
        raise RoundsError(
            N_("The envelope was made for another department."), code=ErrorCode.ENVELOPE_MISMATCH
        )
    if header.under_thread_key:
        raise RoundsError(
            N_("A thread key is only for a consult's thread."), code=ErrorCode.ENVELOPE_MISMATCH
        )
    check_key_version(header, key_state)


def check_key_version(header: EnvelopeHeader, key_state: KeyState) -> None:
    """The envelope's key version, commitment and chain position against the current
    version of its key (the room's, or a consult thread's)."""
    rotate = RoundsError(
        N_("A new room key version is needed before the next message."),
        code=ErrorCode.KEY_ROTATION_REQUIRED,
        data={
            "current_version": key_state.key_version,
            "rotation_required": key_state.rotation_required,
        },
    )
    if key_state.key_version == 0 or key_state.rotation_required:
        raise rotate
    if header.key_version > key_state.key_version:
        raise RoundsError(
            N_("The envelope names a room key version that does not exist."),
            code=ErrorCode.INVALID_ENVELOPE,
            data={"current_version": key_state.key_version},
        )
    if header.key_version < key_state.key_version:
        raise rotate
    if b64encode(header.key_commitment) != key_state.key_commitment:
        raise RoundsError(
            N_("The envelope commits to another key than the department's current version."),
            code=ErrorCode.INVALID_ENVELOPE,
        )
    if not key_state.key_chain_seq <= header.chain_seq <= key_state.chain_seq:
        raise RoundsError(
            N_("The envelope names a chain head its department lacks at this key version."),
            code=ErrorCode.INVALID_ENVELOPE,
            data={"chain_seq": key_state.chain_seq},
        )


def lock_consult(thread_id: int) -> Consult:
    """The consult of this thread, its row locked (after its department's: chat/numbering.py)."""
    return Consult.objects.select_for_update().get(thread_id=thread_id)


def check_consult_post(
    actor: User,
    consult: Consult,
    department_id: int,
    header: EnvelopeHeader,
    room: KeyState,
    *,
    member: bool,
) -> int | None:
    """A post in a consult's thread: by a member or its guest while it is open, under
    the thread's current key (docs/crypto.md §14). Returns the guest to tell, if open.

    Runs under the thread's, the department's and the consult's locks (`consult` from
    `lock_consult`; `room`: the department's key state read with its lock, for its
    chain position; `member`: the actor's membership, read under that lock).
    """
    is_guest = consult.guest_id == actor.pk and consult.state == ConsultState.OPEN
    if not is_guest and not member:
        if consult.guest_id == actor.pk and access.guest_role(consult.state) is not None:
            access.check_writer(access.FORMER_GUEST)  # they still read it
        raise NotFound(N_("Thread not found."))
    if header.room != department_id or not header.under_thread_key:
        raise RoundsError(
            N_("A consult's thread is written under its thread key."),
            code=ErrorCode.ENVELOPE_MISMATCH,
        )
    state = KeyState(
        consult.key_version,
        consult.rotation_required,
        consult.key_commitment,
        consult.key_chain_seq,
        room.chain_seq,
    )
    check_key_version(header, state)
    return consult.guest_id if consult.state == ConsultState.OPEN else None
