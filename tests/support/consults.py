"""Consults as the clients make them (docs/crypto.md §14): asked by a clinician of
another department, opened by a member who signs the guest in with the thread key's
first version, written in under that key, ended by an unguest."""

from typing import Any

from core.crypto import ChainHead, RoomKey, encrypt_message
from tests.support.hospital import Hospital


def ask_consult(h: Hospital, guest: str = "nurse_ines", to: str = "surgeon_bob") -> int:
    """`guest`'s urgent consult request to `to` of Plastic surgery; returns its thread."""
    from advice.actions import check_request_consult

    made, _ = check_request_consult(
        h.user(guest), h.plastic.pk, h.patient.pk, "urgent", h.user(to).pk, None
    )
    vars(h)["_request_id"] = made["id"]
    vars(h)["_consult_thread"] = made["thread"]
    return made["thread"]


def guest_statement(
    h: Hospital, thread_id: int, kind: str, signer: str, guest: str = "nurse_ines"
) -> Any:
    """A `guest` or `unguest` of `guest` in the consult's thread, signed by `signer` at the
    head of Plastic surgery's chain."""
    from rooms.demo import sign_membership

    return sign_membership(
        department=h.plastic.pk,
        at=h.head(h.plastic),
        kind=kind,  # type: ignore[arg-type]  # "guest" or "unguest"
        subject_user=h.user(guest).pk,
        subject_fingerprint=h.keys[guest].fingerprint,
        role="guest",
        signing=h.keys[signer],
        signer_user=h.user(signer).pk,
        thread=thread_id,
    )


def unguest_statement(h: Hospital, thread_id: int, signer: str, guest: str = "nurse_ines") -> Any:
    return guest_statement(h, thread_id, "unguest", signer, guest)


def open_body(
    h: Hospital, thread_id: int, opener: str = "surgeon_bob", guest: str = "nurse_ines"
) -> tuple[dict[str, Any], RoomKey, Any]:
    """The body of POST /api/consults/{thread}/open as `opener`'s client makes it, the
    thread key, and the guest statement (append it to `h.chains` once kept)."""
    from rooms.demo import new_key_version

    guest_in = guest_statement(h, thread_id, "guest", opener, guest)
    key = RoomKey.generate(department=h.plastic.pk, version=1, thread=thread_id)
    members = ("head_carol", "surgeon_bob", "nurse_alice", guest)
    assert h.compliance_key is not None
    recipients = [h.keys[name].public for name in members] + [h.compliance_key.public]
    signed, wraps = new_key_version(
        key,
        at=ChainHead(guest_in.statement.seq, guest_in.hash),
        creator_user=h.user(opener).pk,
        creator=h.keys[opener],
        recipients=recipients,
    )
    body = {
        "statement": guest_in.to_dict(),
        "key_version": signed.to_dict(),
        "wraps": [wrap.to_dict() for wrap in wraps],
    }
    return body, key, guest_in


def open_consult(h: Hospital, opener: str = "surgeon_bob", guest: str = "nurse_ines") -> RoomKey:
    """Ask and open a consult through the use cases; returns its thread key."""
    from chat.consults import check_open_consult

    thread_id = ask_consult(h, guest)
    body, key, guest_in = open_body(h, thread_id, opener, guest)
    check_open_consult(h.user(opener), thread_id, **body)
    h.chains[h.plastic.pk].append(guest_in)
    vars(h)["_thread_key"] = key
    return key


def consult_sealed(
    h: Hospital, sender: str, thread_id: int, key: RoomKey, cmid: str, text: bytes = b"Q?"
) -> dict[str, Any]:
    """An envelope in the consult's thread under its thread key, as `sender`'s client makes it."""
    return encrypt_message(
        text,
        room_key=key,
        head=h.head(h.plastic),
        thread=thread_id,
        sender=h.user(sender).pk,
        client_msg_id=cmid,
        signer=h.keys[sender],
    )
