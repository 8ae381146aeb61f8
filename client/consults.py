"""Consults across departments in the Python client (docs/crypto.md §14, docs/advice.md).

A clinician asks another department's on-call role for a consult
(`ask_consult`); whoever it was put to opens it (`open_consult`): their client
signs the guest in, in the department's chain, and makes the thread key's
first version, wrapped for the members the chain holds, the guest and the
pinned compliance key. Both then write in the consult's thread under its
thread key (`send_text` knows a consult's thread), and either ends it
(`end_consult`). Thread keys are checked as room keys are: a version's record
verified against the chain (made by a member at a head in it), each wrap from
a key the chain admitted, each key against its commitment.
"""

from typing import TYPE_CHECKING, Any

from client.errors import RoundsClientError, crypto_refusal
from client.identity import checked_public
from client.membership import make_statement
from core.crypto import (
    ChainHead,
    CryptoError,
    KeyVersionRecord,
    MembershipChain,
    PublicIdentity,
    RoomKey,
    SignedKeyVersion,
    SignedStatement,
    WrapRecord,
    check_current,
    check_key_matches,
    make_key_version,
    unwrap_room_key,
    verify_key_version,
    wrap_room_key,
)

if TYPE_CHECKING:
    from client.sdk import RoundsClient


class ThreadKeys:
    """The thread keys of the consults this client reads or writes, verified."""

    def __init__(self, client: "RoundsClient") -> None:
        self.client = client
        self.keys: dict[tuple[int, int], tuple[RoomKey, KeyVersionRecord]] = {}
        # Consult thread → its department, for the threads known to be consults.
        self.consults: dict[int, int] = {}
        # Thread → the version checked as current, until an event or a refusal says otherwise.
        self.writing: dict[int, tuple[RoomKey, ChainHead]] = {}

    def forget(self, thread: int) -> None:
        self.writing.pop(thread, None)

    def note(self, consult: dict[str, Any]) -> None:
        """Remember a consult the server described (its thread and department)."""
        self.consults[consult["thread"]] = consult["department"]
        self.forget(consult["thread"])
        self.client.threads[consult["thread"]] = consult["department"]

    async def load(self, thread: int) -> tuple[dict[str, Any], MembershipChain]:
        """Fetch the thread's versions and this identity's wraps; keep what verifies."""
        client = self.client
        data = await client.call("GET", f"/api/consults/{thread}/keys")
        self.note(data["consult"])
        department = data["consult"]["department"]
        chain = await client.membership.chain(department)
        records: dict[int, KeyVersionRecord] = {}
        for entry in data["versions"]:
            try:
                parsed = SignedKeyVersion.from_dict(entry["signed"])
                if parsed.record.head.seq > chain.head.seq:
                    chain = await client.membership.chain(department, covers=parsed.record.head)
                record = verify_key_version(parsed, chain)
            except CryptoError as error:
                raise crypto_refusal(error, "thread key version: ") from None
            if (record.thread, record.version) != (thread, entry["version"]):
                raise RoundsClientError(
                    "invalid_envelope", "A thread key version is listed under another name."
                )
            records[record.version] = record
        identity = client.identity.keypair()
        for raw in data["my_wraps"]:
            try:
                wrap = WrapRecord.from_dict(raw)
                verified = records.get(wrap.version)
                if wrap.thread != thread or verified is None:
                    raise RoundsClientError("no_room_key", "A wrap of no verified thread version.")
                if wrap.wrapper_fp not in chain.ever_admitted:
                    raise RoundsClientError(
                        "unverified_member", "The wrap was made by a key the chain never admitted."
                    )
                key = unwrap_room_key(
                    wrap, recipient=identity, wrapper=chain.key_of(wrap.wrapper_fp)
                )
                check_key_matches(verified, key)
            except CryptoError as error:
                raise crypto_refusal(error, "thread key: ") from None
            self.keys[(thread, key.version)] = (key, verified)
        return data, chain

    async def version(self, thread: int, version: int) -> tuple[RoomKey, KeyVersionRecord]:
        if (thread, version) not in self.keys:
            await self.load(thread)
        if (thread, version) not in self.keys:
            raise RoundsClientError(
                "no_room_key", f"This device holds no version {version} of thread {thread}'s key."
            )
        return self.keys[(thread, version)]

    async def current(self, thread: int) -> tuple[RoomKey, ChainHead]:
        """The version to write under: the latest, if no removal or guest's end came
        after it; a member otherwise makes the next one (a guest never does)."""
        if thread in self.writing:
            return self.writing[thread]
        data, chain = await self.load(thread)
        latest = max((v for t, v in self.keys if t == thread), default=0)
        if latest and latest == data["consult"]["key_version"] and not data["rotation_required"]:
            key, record = self.keys[(thread, latest)]
            try:
                check_current(record, chain)
            except CryptoError:
                pass
            else:
                self.writing[thread] = (key, chain.head)
                return key, chain.head
        if self.client.me() not in chain.members:
            raise RoundsClientError(
                "key_rotation_required",
                "The consult's thread key needs a new version, which a member makes.",
            )
        return await self._publish(thread, data, chain, data["consult"]["key_version"] + 1)

    async def _publish(
        self,
        thread: int,
        data: dict[str, Any],
        chain: MembershipChain,
        version: int,
        *,
        opening: dict[str, Any] | None = None,
    ) -> tuple[RoomKey, ChainHead]:
        """Make `version` at the chain's head (or at the head after `opening`, the guest
        statement it is published with) for the members and guests the chain holds
        and the pinned compliance key."""
        client = self.client
        identity = client.identity.keypair()
        department = data["consult"]["department"]
        # The members the chain holds and the server still lists (a removal not signed yet
        # is no reader any more), as for a room key (client/roomkeys.py).
        listing = await client.call("GET", f"/api/departments/{department}/keys")
        compliance = client.room_keys._compliance_key(listing)
        listed = {m["user"]: m.get("fingerprint") for m in listing["members"]}
        recipients: dict[str, PublicIdentity] = {
            held.fingerprint: chain.key_of(held.fingerprint)
            for user, held in chain.members.items()
            if listed.get(user) == held.fingerprint
        }
        for guest in chain.guests_of(thread).values():
            recipients[guest.fingerprint] = chain.key_of(guest.fingerprint)
        head = chain.head
        if opening is not None:
            statement, guest_key = opening["statement"], opening["guest_key"]
            recipients[guest_key.fingerprint] = guest_key
            head = ChainHead(statement.statement.seq, statement.hash)
        recipients[compliance.fingerprint] = compliance
        key = RoomKey.generate(department=department, version=version, thread=thread)
        signed = make_key_version(key, head=head, creator_user=client.me(), creator=identity)
        wraps = [
            wrap_room_key(key, recipient=public, wrapper=identity).to_dict()
            for public in recipients.values()
        ]
        if opening is None:
            await client.call(
                "POST",
                f"/api/consults/{thread}/keys",
                json={"key_version": signed.to_dict(), "wraps": wraps},
            )
        else:
            answer = await client.call(
                "POST",
                f"/api/consults/{thread}/open",
                json={
                    "statement": opening["statement"].to_dict(),
                    "key_version": signed.to_dict(),
                    "wraps": wraps,
                },
            )
            self.note(answer)
            client.membership.forget(department)
        self.keys[(thread, version)] = (key, signed.record)
        return key, head

    async def open(self, thread: int) -> dict[str, Any]:
        """Sign the guest in (a `guest` statement naming their published key, which the
        server gives and this client shows by fingerprint) and publish version 1."""
        client = self.client
        data = await client.call("GET", f"/api/consults/{thread}/keys")
        consult = data["consult"]
        self.note(consult)
        if consult["state"] != "pending":
            raise RoundsClientError("conflict", "This consult is already open or has ended.")
        guest_key = checked_public(data.get("guest_identity"), None, "the guest's key")
        department = consult["department"]
        chain = await client.membership.chain(department)
        identity = client.identity.keypair()
        held = chain.members.get(client.me())
        if held is None or held.fingerprint != identity.fingerprint:
            raise RoundsClientError(
                "not_attested", "The department's chain does not hold you with this key."
            )
        statement = SignedStatement.from_dict(
            make_statement(
                identity,
                head=chain.head,
                kind="guest",
                department=department,
                subject=consult["guest"]["id"],
                subject_fingerprint=guest_key.fingerprint,
                role="guest",
                signer_user=client.me(),
                thread=thread,
            )
        )
        await self._publish(
            thread, data, chain, 1, opening={"statement": statement, "guest_key": guest_key}
        )
        opened: dict[str, Any] = await client.call("GET", f"/api/consults/{thread}")
        return opened

    async def end(self, thread: int) -> dict[str, Any]:
        """Sign the guest out: the guest leaving, or a member ending the consult."""
        client = self.client
        consult = await client.call("GET", f"/api/consults/{thread}")
        self.note(consult)
        department = consult["department"]
        chain = await client.membership.chain(department)
        guest = chain.guests_of(thread).get(consult["guest"]["id"])
        if guest is None:
            raise RoundsClientError("conflict", "The chain holds no guest of this consult.")
        statement = make_statement(
            client.identity.keypair(),
            head=chain.head,
            kind="unguest",
            department=department,
            subject=consult["guest"]["id"],
            subject_fingerprint=guest.fingerprint,
            role="guest",
            signer_user=client.me(),
            thread=thread,
        )
        answer: dict[str, Any] = await client.call(
            "POST", f"/api/consults/{thread}/end", json={"statement": statement}
        )
        client.membership.forget(department)
        return answer

    async def share(self, department: int, user_id: int) -> dict[int, list[int]]:
        """Wrap every verified version of the department's consults this client holds for
        a member the chain holds (a newcomer reads the consults' history, R8).
        Returns, by consult thread, the versions shared; one the member has is skipped."""
        client = self.client
        identity = client.identity.keypair()
        listed = await client.call("GET", "/api/consults", params={"department": department})
        chain = await client.membership.chain(department, fresh=True)
        held = chain.members.get(user_id)
        if held is None:
            raise RoundsClientError(
                "unverified_member",
                f"User {user_id}'s admission is not in the department's chain; nothing is wrapped.",
                {"user": user_id},
            )
        recipient = chain.key_of(held.fingerprint)
        shared: dict[int, list[int]] = {}
        for consult in listed["consults"]:
            thread = consult["thread"]
            if consult["key_version"] == 0:
                continue
            await self.load(thread)
            for (of_thread, version), (key, _) in sorted(self.keys.items()):
                if of_thread != thread:
                    continue
                wrap = wrap_room_key(key, recipient=recipient, wrapper=identity)
                try:
                    await client.call(
                        "POST",
                        f"/api/consults/{thread}/keys/wraps",
                        json={"wraps": [wrap.to_dict()]},
                    )
                except RoundsClientError as error:
                    if error.code != "conflict":
                        raise
                    continue
                shared.setdefault(thread, []).append(version)
        return shared


class ConsultMixin:
    """`RoundsClient`'s consult calls (the client's `thread_keys` does the work)."""

    thread_keys: ThreadKeys

    async def consult_targets(self: Any) -> list[dict[str, Any]]:
        """Departments one may ask for a consult, with their on-call roles."""
        listed: list[dict[str, Any]] = (await self.call("GET", "/api/consults/targets"))[
            "departments"
        ]
        return listed

    async def ask_consult(
        self: Any,
        department: int,
        patient: int,
        *,
        priority: str = "urgent",
        to_role: int | None = None,
        to_user: int | None = None,
    ) -> dict[str, Any]:
        """Ask `department` (not one's own) for a consult about `patient`; returns the
        advice request, whose `thread` is the consult's thread, awaiting the department."""
        body: dict[str, Any] = {
            "consult": {"department": department, "patient": patient},
            "priority": priority,
        }
        body.update({"to_role": to_role} if to_role is not None else {"to_user": to_user})
        request: dict[str, Any] = await self.call("POST", "/api/advice", json=body)
        self.thread_keys.consults[request["thread"]] = department
        self.threads[request["thread"]] = department
        return request

    async def consults(self: Any) -> list[dict[str, Any]]:
        """The consults this user is the guest of."""
        listed: list[dict[str, Any]] = (await self.call("GET", "/api/consults"))["consults"]
        for consult in listed:
            self.thread_keys.note(consult)
        return listed

    async def open_consult(self: Any, thread: int) -> dict[str, Any]:
        opened: dict[str, Any] = await self.thread_keys.open(thread)
        return opened

    async def end_consult(self: Any, thread: int) -> dict[str, Any]:
        ended: dict[str, Any] = await self.thread_keys.end(thread)
        return ended

    async def share_consult_history(
        self: Any, department: int, user_id: int
    ) -> dict[int, list[int]]:
        """A newcomer's wraps of the department's consults' thread keys (with `share_history`,
        which does the room key's)."""
        shared: dict[int, list[int]] = await self.thread_keys.share(department, user_id)
        return shared
