"""A released thread opened offline with the compliance key: checked, decrypted, marked.

The server releases ciphertext and the records to check it
(compliance/timeline.py), and it may lie. Nothing here takes its word: the
department's chain is replayed from the pinned admin key, and a chain that
does not verify stops the review (no chain, no timeline: which key a sender
signed with is only known from it); every key version record is verified
against the chain; a compliance wrap is used only if a key the chain
admitted made it and it holds the key the record commits to; every envelope
is opened as a member's client opens it (`core.crypto.open_envelope`). A
message that fails a check stays in the timeline, marked with the code and
without content: a reviewer must see what the server served, not a cleaned
copy. Pure: pages and keys in, a timeline out; no I/O.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from client.errors import RoundsClientError
from client.membership import verify_listing
from client.photo_sdk import check_matches_attachments, parse_photo_body
from client.trust import envelope_hash
from core.crypto import (
    ChainHead,
    CryptoError,
    EnvelopeHeader,
    IdentityKeyPair,
    KeyVersionRecord,
    MembershipChain,
    RoomKey,
    SignedKeyVersion,
    SignedStatement,
    WrapRecord,
    check_key_matches,
    open_envelope,
    parse_envelope,
    unwrap_room_key,
    verify_key_version,
)

OK: dict[str, Any] = {"ok": True}


def failed(code: str, detail: str = "") -> dict[str, Any]:
    return {"ok": False, "code": code, "detail": detail}


def _failure(error: Exception) -> dict[str, Any]:
    if isinstance(error, CryptoError | RoundsClientError):
        return failed(error.code, str(error.args[0]) if error.args else "")
    raise error


@dataclass
class OpenedVersion:
    """One key version as this review holds it: the key, if its record and a wrap verified."""

    version: int
    record: KeyVersionRecord | None
    key: RoomKey | None
    check: dict[str, Any]


def merge_pages(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """A thread's timeline pages as one: messages, receipts and attachments in order; the
    department and identities of the last page (the newest chain)."""
    if not pages:
        raise RoundsClientError("invalid_request", "No timeline page to review.")
    last = pages[-1]
    return {
        **last,
        "messages": [m for p in pages for m in p.get("messages") or []],
        "receipts": [r for p in pages for r in p.get("receipts") or []],
        "attachments": [a for p in pages for a in p.get("attachments") or []],
    }


def verified_chain(
    pages: list[dict[str, Any]], pinned_admin: str, known: ChainHead | None = None
) -> MembershipChain:
    """The department's chain of the last page, replayed from the pinned admin key; every
    earlier page's chain, and `known` (the head this machine verified before, R1), must be
    a part of it (a server showing two chains is a fork).

    Raises:
        RoundsClientError: `admin_key_mismatch`, `no_admin_key`,
            `membership_unverified`, `membership_fork`, `membership_rollback`.
    """
    department = pages[-1]["department"]
    chains = [verify_listing(p["department"]["chain"], pinned_admin) for p in pages]
    chain = chains[-1]
    if chain.department not in (None, department["id"]):
        raise RoundsClientError(
            "membership_unverified", "The chain released is another department's."
        )
    heads = [earlier.head for earlier in chains[:-1]] + ([known] if known else [])
    for head in heads:
        try:
            chain.check_extends(head)
        except CryptoError as error:
            raise RoundsClientError(error.code, f"department {department['id']}: {error}") from None
    return chain


def _unwrap(
    wraps: list[Any], record: KeyVersionRecord, chain: MembershipChain, key: IdentityKeyPair
) -> RoomKey:
    """The first wrap for this compliance key that a key the chain admitted made, carrying the
    record's commitment, holding the key committed to (docs/crypto.md §9, R3)."""
    reason: Exception = RoundsClientError(
        "no_room_key",
        f"Key version {record.version} has no wrap for this compliance key "
        "(it may have been wrapped for a compliance key since replaced).",
    )
    for raw in wraps:
        try:
            wrap = WrapRecord.from_dict((raw or {}).get("record"))
            if wrap.recipient_fp != key.fingerprint:
                continue
            if (wrap.department, wrap.thread, wrap.version) != (
                record.department,
                record.thread,
                record.version,
            ):
                raise RoundsClientError("invalid_envelope", "A wrap filed under another version.")
            if wrap.wrapper_fp not in chain.ever_admitted:
                raise RoundsClientError(
                    "unverified_member", "A wrap made by a key the chain never admitted."
                )
            if wrap.commitment != record.commitment:
                raise RoundsClientError(
                    "key_commitment_mismatch", "A wrap that commits to another key than its record."
                )
            room_key = unwrap_room_key(wrap, recipient=key, wrapper=chain.key_of(wrap.wrapper_fp))
            check_key_matches(record, room_key)
            return room_key
        except (CryptoError, RoundsClientError) as error:
            reason = error
    raise reason


def open_versions(
    department: dict[str, Any],
    chain: MembershipChain,
    key: IdentityKeyPair,
    thread: int | None = None,
    entries: list[Any] | None = None,
) -> dict[int, OpenedVersion]:
    """Every key version released: its record verified against the chain, its key unwrapped
    from the compliance wrap; a version that fails keeps the reason. With `thread`, the
    `entries` are that consult thread's own key versions (docs/crypto.md §14)."""
    opened: dict[int, OpenedVersion] = {}
    listed = department.get("key_versions") if entries is None else entries
    for entry in listed or []:
        number = entry.get("version") if isinstance(entry, dict) else None
        if not isinstance(number, int):
            continue
        record = None
        try:
            record = verify_key_version(SignedKeyVersion.from_dict(entry.get("signed")), chain)
            if (record.department, record.thread, record.version) != (
                department["id"],
                thread,
                number,
            ):
                raise RoundsClientError(
                    "invalid_envelope", "A key version record filed under another number."
                )
            room_key = _unwrap(entry.get("compliance_wraps") or [], record, chain, key)
        except (CryptoError, RoundsClientError) as error:
            opened[number] = OpenedVersion(number, record, None, _failure(error))
            continue
        opened[number] = OpenedVersion(number, record, room_key, OK)
    return opened


def _photos(
    plaintext: bytes, message: dict[str, Any], records: list[dict[str, Any]]
) -> tuple[str, list[dict[str, Any]], Any]:
    """The caption and photos of a photos body, checked against what the server indexed,
    and the body itself (its file keys open the blobs)."""
    body = parse_photo_body(plaintext)
    check_matches_attachments(body, message.get("attachments") or [])
    photos: list[dict[str, Any]] = []
    for index, photo in enumerate(body["photos"]):
        record = next((r for r in records if r.get("position") == index), None)
        photos.append(
            {
                "attachment": None if record is None else record.get("id"),
                "keywords": photo.get("keywords") or [],
                "consent": photo.get("consent"),
                "captured_at": photo.get("captured_at"),
                "annotates": photo.get("annotates"),
                "media_type": photo.get("media_type"),
                "width": photo.get("width"),
                "height": photo.get("height"),
                "upload": photo.get("upload"),
            }
        )
    return str(body.get("text") or ""), photos, body


def _is_photos_body(plaintext: bytes) -> bool:
    if plaintext[:1] != b"{":
        return False
    try:
        body = json.loads(plaintext)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("type") == "photos"


def _content(
    plaintext: bytes, message: dict[str, Any], records: list[dict[str, Any]]
) -> tuple[str, list[dict[str, Any]], Any]:
    """Text, or a photos body's caption and photos (a message with attachments must be one)."""
    if message.get("attachments") or _is_photos_body(plaintext):
        return _photos(plaintext, message, records)
    try:
        return plaintext.decode("utf-8"), [], None
    except UnicodeDecodeError:
        raise RoundsClientError("invalid_envelope", "The plaintext is not UTF-8 text.") from None


class _Reader:
    """Opens one thread's messages against one verified chain and its opened versions."""

    def __init__(
        self,
        page: dict[str, Any],
        chain: MembershipChain,
        versions: dict[int, OpenedVersion],
        thread_versions: dict[int, OpenedVersion] | None = None,
    ) -> None:
        self.page = page
        self.chain = chain
        self.versions = versions
        self.thread_versions = thread_versions or {}
        self.seen: dict[tuple[int, str], tuple[str, Any]] = {}
        # Message id → the photos body of a message whose checks all passed.
        self.bodies: dict[Any, dict[str, Any]] = {}
        self.records: dict[Any, list[dict[str, Any]]] = {}
        for record in page.get("attachments") or []:
            self.records.setdefault(record.get("message"), []).append(record)

    def open(self, message: dict[str, Any]) -> dict[str, Any]:
        sender = message.get("sender") or {}
        event: dict[str, Any] = {
            "kind": "message",
            "id": message.get("id"),
            "seq": message.get("seq"),
            "sender": sender,
            "server_time": message.get("created_at"),
            "sent_at": None,
            "head": None,
            "text": None,
            "photos": [],
            "redacted": message.get("redacted"),
        }
        try:
            plaintext = self._open(message, event)
            event["text"], event["photos"], body = _content(
                plaintext, message, self.records.get(message.get("id"), [])
            )
            self._check_seen(message)
            if body is not None:
                self.bodies[message.get("id")] = body
        except (CryptoError, RoundsClientError) as error:
            event["check"] = _failure(error)
        else:
            event["check"] = OK
        corrections = message.get("corrections") or []
        event["versions"] = [self._open_version(message, c) for c in corrections]
        return event

    def _open_version(self, message: dict[str, Any], correction: Any) -> dict[str, Any]:
        """One correction of `message`, checked as a message is and bound to it: the same
        sender, thread and department, and `corrects` its client_msg_id."""
        correction = correction if isinstance(correction, dict) else {}
        version: dict[str, Any] = {
            "version": correction.get("version"),
            "client_msg_id": correction.get("client_msg_id"),
            "corrected_at": correction.get("corrected_at"),
            "sent_at": None,
            "text": None,
        }
        try:
            envelope = correction.get("envelope")
            if not isinstance(envelope, dict):
                raise RoundsClientError("missing_envelope", "The server released no envelope.")
            header = parse_envelope(envelope)
            version["sent_at"] = header.sent_at
            expected = (
                self.page["thread"]["id"],
                self.page["department"]["id"],
                (message.get("sender") or {}).get("id"),
                correction.get("client_msg_id"),
                message.get("client_msg_id"),
            )
            found = (header.thread, header.room, header.sender, header.client_msg_id)
            if (*found, header.corrects) != expected:
                raise RoundsClientError(
                    "correction_mismatch",
                    "This correction was not made by the message's sender for this message.",
                )
            plaintext = self._decrypt(envelope, header)
            version["text"] = (
                str(json.loads(plaintext).get("text") or "")
                if _is_photos_body(plaintext)
                else plaintext.decode("utf-8")
            )
        except UnicodeDecodeError:
            version["check"] = failed("invalid_envelope", "The plaintext is not UTF-8 text.")
            return version
        except (CryptoError, RoundsClientError) as error:
            version["check"] = _failure(error)
            return version
        version["check"] = OK
        return version

    def _open(self, message: dict[str, Any], event: dict[str, Any]) -> bytes:
        envelope = message.get("envelope")
        if not isinstance(envelope, dict):
            raise RoundsClientError("missing_envelope", "The server released no envelope.")
        header = parse_envelope(envelope)
        event["sent_at"], event["head"] = header.sent_at, header.chain_seq
        sender = message.get("sender") or {}
        expected = (
            self.page["thread"]["id"],
            self.page["department"]["id"],
            sender.get("id"),
            message.get("client_msg_id"),
        )
        if (header.thread, header.room, header.sender, header.client_msg_id) != expected or (
            header.corrects is not None
        ):
            raise RoundsClientError(
                "envelope_mismatch",
                "The envelope was made for another thread, department, sender or "
                "client_msg_id, or is a correction.",
            )
        return self._decrypt(envelope, header)

    def _decrypt(self, envelope: dict[str, Any], header: EnvelopeHeader) -> bytes:
        versions = self.thread_versions if header.under_thread_key else self.versions
        version = versions.get(header.key_version)
        if version is None:
            raise RoundsClientError(
                "no_room_key", f"Key version {header.key_version} was not released."
            )
        if version.key is None or version.record is None:
            raise RoundsClientError(
                version.check["code"],
                f"key version {header.key_version}: {version.check['detail']}",
            )
        _, plaintext = open_envelope(
            envelope, chain=self.chain, record=version.record, room_key=version.key
        )
        return plaintext

    def _check_seen(self, message: dict[str, Any]) -> None:
        """The same envelope twice is a duplicate; two under one (sender, id) a replay (R6)."""
        slot = ((message.get("sender") or {}).get("id"), message.get("client_msg_id"))
        digest = envelope_hash(message.get("envelope"))
        # The server's ids, unchecked here: a missing one is a slot of its own.
        first = self.seen.setdefault(slot, (digest, message.get("id")))  # type: ignore[arg-type]
        if first[0] != digest:
            raise RoundsClientError("replay", "Another envelope under this sender's message id.")
        if first[1] != message.get("id"):
            raise RoundsClientError(
                "duplicate", f"The same envelope as message {first[1]}: delivered twice."
            )


def seen_by(seqs: list[Any], receipts: list[dict[str, Any]]) -> dict[Any, list[dict[str, Any]]]:
    """For each message seq, who read up to it or further, each at their earliest such
    receipt, earliest first (then by user id). One pass from the newest message down:
    the receipts that reach a seq are those that reached the next one, plus those that
    stop at it."""
    usable = [r for r in receipts if isinstance(r.get("up_to_seq"), int)]
    usable.sort(key=lambda r: r["up_to_seq"], reverse=True)
    first: dict[Any, dict[str, Any]] = {}
    out: dict[Any, list[dict[str, Any]]] = {}
    taken = 0
    for seq in sorted((s for s in seqs if isinstance(s, int)), reverse=True):
        while taken < len(usable) and usable[taken]["up_to_seq"] >= seq:
            receipt, taken = usable[taken], taken + 1
            user = receipt.get("user") or {}
            held = first.get(user.get("id"))
            if held is None or _when(receipt.get("read_at")) < held["when"]:
                at = receipt.get("read_at")
                first[user.get("id")] = {"user": user, "at": at, "when": _when(at)}
        ordered = sorted(first.values(), key=lambda r: (r["when"], str(r["user"].get("id"))))
        out[seq] = [{"user": r["user"], "at": r["at"]} for r in ordered]
    return out


def _when(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.max.replace(tzinfo=datetime.now().astimezone().tzinfo)


def members_at(chain: MembershipChain, users: set[int], seq: int) -> list[dict[str, Any]]:
    """Who the chain holds once its first `seq` statements applied, with their role."""
    held = ((user, chain.member_at(user, seq)) for user in sorted(users))
    return [{"user": user, "role": m.role} for user, m in held if m is not None]


def _statements(listing: dict[str, Any], chain: MembershipChain) -> list[dict[str, Any]]:
    """The chain's statements as membership events (verified: the listing replayed)."""
    events = []
    for item in listing.get("statements") or []:
        statement = SignedStatement.from_dict(item["signed"]).statement
        events.append(
            {
                "kind": "membership",
                "seq": statement.seq,
                "at": statement.issued_at,
                "change": statement.kind,
                "user": statement.subject_user,
                "role": statement.role,
                "by": statement.signer_user,
                "fingerprint": statement.subject_fingerprint,
            }
        )
    return events[: chain.head.seq]


def review_thread(
    pages: list[dict[str, Any]], key: IdentityKeyPair, pinned_admin: str
) -> dict[str, Any]:
    """One released thread, every check done: its messages (each with `check`), membership
    changes, receipts as `seen_by`, key versions with their checks, names for display.

    Raises:
        RoundsClientError: the chain does not verify from the pinned admin key
            (see `verified_chain`): nothing of the thread can be checked.
    """
    return open_thread(pages, key, pinned_admin)[0]


def open_thread(
    pages: list[dict[str, Any]],
    key: IdentityKeyPair,
    pinned_admin: str,
    known: ChainHead | None = None,
) -> tuple[dict[str, Any], dict[Any, dict[str, Any]]]:
    """`review_thread`, and the photos bodies (with their file keys) of the messages that
    passed every check, by message id: kept out of the review, which may be printed.
    `known` is the department's head this machine verified before (R1).

    Raises:
        RoundsClientError: see `review_thread`; `invalid_release` for pages
            that do not have the shape of a release.
    """
    try:
        return _open_thread(pages, key, pinned_admin, known)
    except (KeyError, TypeError):
        raise invalid_release() from None


def invalid_release() -> RoundsClientError:
    return RoundsClientError(
        "invalid_release", "The released timeline does not have the shape of a release."
    )


def department_of(pages: list[dict[str, Any]]) -> int:
    """The department the last page names (to look up the head this machine verified)."""
    department = (pages[-1].get("department") or {}).get("id") if pages else None
    if isinstance(department, bool) or not isinstance(department, int):
        raise invalid_release()
    return department


def _open_thread(
    pages: list[dict[str, Any]],
    key: IdentityKeyPair,
    pinned_admin: str,
    known: ChainHead | None,
) -> tuple[dict[str, Any], dict[Any, dict[str, Any]]]:
    page = merge_pages(pages)
    chain = verified_chain(pages, pinned_admin, known)
    department = page["department"]
    versions = open_versions(department, chain, key)
    thread_versions = open_versions(
        department, chain, key, page["thread"]["id"], page.get("thread_key_versions") or []
    )
    reader = _Reader(page, chain, versions, thread_versions)
    messages = [reader.open(m) for m in page["messages"]]
    seen = seen_by([m["seq"] for m in messages], page.get("receipts") or [])
    for event in messages:
        event["seen_by"] = seen.get(event["seq"], [])
    statements = _statements(department["chain"], chain)
    users = {s["user"] for s in statements}
    for event in messages:
        if isinstance(event["head"], int):
            event["members"] = members_at(chain, users, event["head"])
    names = _names(page)
    server_key = (department.get("compliance") or {}).get("fingerprint")
    return {
        "case": page.get("case"),
        "thread": page["thread"],
        "department": department["id"],
        "chain": {"head": chain.head.to_dict(), "statements": len(statements)},
        "server_compliance_key_is_this_one": server_key == key.fingerprint,
        "key_versions": [{"version": v.version, "check": v.check} for v in versions.values()],
        "thread_key_versions": [
            {"version": v.version, "check": v.check} for v in thread_versions.values()
        ],
        "memberships": department.get("memberships") or [],
        "messages": messages,
        "statements": statements,
        "names": names,
        # A message counts once, whether it or one of its corrections failed its checks.
        "failed": sum(
            1
            for m in messages
            if not m["check"]["ok"] or any(not v["check"]["ok"] for v in m.get("versions", []))
        ),
    }, reader.bodies


def _names(page: dict[str, Any]) -> dict[int, str]:
    """User id → username, for display only (the server's word; ids are what was checked)."""
    names: dict[int, str] = {}
    people = [m.get("user") for m in page["department"].get("memberships") or []]
    people += [m.get("sender") for m in page.get("messages") or []]
    people += [r.get("user") for r in page.get("receipts") or []]
    for person in people:
        if isinstance(person, dict) and isinstance(person.get("id"), int):
            names[person["id"]] = str(person.get("username"))
    return names
