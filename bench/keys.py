"""End-to-end keys for tools that make their own envelopes: the benchmarks and the live tests.

Every post they make is a real signed, encrypted v2 envelope (docs/crypto.md
§8), and the server checks it like any other. For that a department needs
what format 2 asks of a client (§6, §7), and `Encryption.ready()` brings it
there over the HTTP API, as the clients and an administrator would:

1. each client publishes an identity (`PUT /api/keys/identity`);
2. the department's head (`GET …/members`, role "head") publishes one too,
   signed in for the purpose (demo password) when not among the clients;
3. if the department's chain (`GET …/statements`, replayed from the pinned
   admin key) does not hold the head, the `admin` demo user posts the
   head's appointment, signed with the institution's admin key;
4. the head signs an admission for every client the department lists and
   the chain does not hold yet, each at the next position;
5. the first client the chain holds publishes the next key version: its
   record names the chain head it was made at, and it is wrapped for every
   member the chain holds (with the key the chain admitted, the server
   listing them as members) and for the compliance key. A version made here
   before is kept while it still covers every client.

Envelopes then name that head (`Keys.envelope`, `Keys.seal`), and `open()`
reads one as a client does: the chain replayed from the pinned admin key,
the version's signed record verified against it, the reader's wrap
unwrapped, then `core.crypto.open_envelope`. One process plays all the
clients and holds every identity; the server cannot tell.

The institution's keys are the demo's: seed_demo leaves their private halves
under the deployment's var dir (`<ROUNDS_VAR_DIR>/demo-keys/`). A real
institution keeps its admin key offline.
"""

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from client.membership import make_statement, verify_listing
from client.transport import Connection
from core.crypto import (
    ChainHead,
    IdentityKeyPair,
    MembershipChain,
    PublicIdentity,
    RoomKey,
    SignedKeyVersion,
    WrapRecord,
    check_key_matches,
    encrypt_message,
    make_key_version,
    open_envelope,
    parse_envelope,
    unwrap_room_key,
    verify_key_version,
    wrap_room_key,
)

ADMIN_USERNAME = "admin"


def demo_key(var_dir: str | os.PathLike, kind: str) -> IdentityKeyPair:
    """One of the institution's demo key pairs (`admin`, `compliance`) that seed_demo wrote."""
    path = Path(var_dir) / "demo-keys" / f"{kind}.key"
    return IdentityKeyPair.from_bytes(bytes.fromhex(path.read_text().strip()))


@dataclass(frozen=True)
class Institution:
    """The institution's keys, and the demo password its head and administrator sign in with.

    The admin key roots every chain and is the pin `open()` replays it
    from; the compliance key is the one every version must be wrapped for.
    """

    admin_key: IdentityKeyPair
    compliance_key: IdentityKeyPair
    password: str

    @classmethod
    def demo(cls, var_dir: str | os.PathLike, password: str) -> "Institution":
        """The demo institution of a deployment whose var dir seed_demo filled."""
        return cls(demo_key(var_dir, "admin"), demo_key(var_dir, "compliance"), password)


@dataclass
class Keys:
    """A department's key version as made here, and the chain head its envelopes name."""

    room_key: RoomKey
    head: ChainHead
    pairs: dict[int, IdentityKeyPair]
    # Fingerprints the version was wrapped for.
    recipients: frozenset[str]

    def seal(
        self,
        plaintext: bytes,
        *,
        sender: int,
        thread: int,
        client_msg_id: str,
        room_key: RoomKey | None = None,
    ) -> dict:
        """An envelope from `sender` under this version (or `room_key`), naming `head`."""
        return encrypt_message(
            plaintext,
            room_key=room_key or self.room_key,
            head=self.head,
            thread=thread,
            sender=sender,
            client_msg_id=client_msg_id,
            signer=self.pairs[sender],
        )

    def envelope(self, sender: int, thread: int, client_msg_id: str, size: int = 256) -> dict:
        """An envelope of `size` random bytes: what the benchmarks post."""
        return self.seal(
            os.urandom(size), sender=sender, thread=thread, client_msg_id=client_msg_id
        )


def user_id(conn: Connection) -> int:
    assert conn.user is not None, "log in first"
    return int(conn.user["id"])


class Encryption:
    """Identities, chains and key versions for one deployment, kept across calls.

    `pairs` holds every identity published here, by user id (a server takes
    one per user, so calling `ready()` again reuses them); `departments` the
    version last made here for each department.
    """

    def __init__(self, institution: Institution) -> None:
        self.institution = institution
        self.pairs: dict[int, IdentityKeyPair] = {}
        self.departments: dict[int, Keys] = {}

    # --- identities and the chain ---------------------------------------------

    async def publish_identity(self, conn: Connection) -> IdentityKeyPair:
        """The user's identity, generated once; publishing it again is a no-op."""
        user = user_id(conn)
        if user not in self.pairs:
            self.pairs[user] = IdentityKeyPair.generate()
        pair = self.pairs[user]
        await conn.call("PUT", "/api/keys/identity", json={"public": pair.public.to_dict()})
        return pair

    async def chain(self, conn: Connection, department: int) -> MembershipChain:
        """The department's chain as `conn` is served it, replayed from the pinned admin key."""
        listing = await conn.call("GET", f"/api/departments/{department}/statements")
        chain = verify_listing(listing, self.institution.admin_key.fingerprint)
        if chain.department not in (None, department):
            raise RuntimeError(f"the statements served for {department} are another department's")
        return chain

    async def _post_statement(
        self,
        conn: Connection,
        department: int,
        chain: MembershipChain,
        *,
        signer: IdentityKeyPair,
        signer_user: int | None,
        kind: str,
        subject: int,
        role: str,
    ) -> MembershipChain:
        """Sign a statement at the chain's next position, post it, and verify the chain again."""
        signed = make_statement(
            signer,
            head=chain.head,
            kind=kind,
            department=department,
            subject=subject,
            subject_fingerprint=self.pairs[subject].fingerprint,
            role=role,
            signer_user=signer_user,
        )
        await conn.call(
            "POST", f"/api/departments/{department}/statements", json={"signed": signed}
        )
        return await self.chain(conn, department)

    async def _appointed(
        self, stack: contextlib.AsyncExitStack, head: Connection, department: int, url: str
    ) -> MembershipChain:
        """The chain, holding `head` as head: the administrator appoints them if it does not."""
        chain = await self.chain(head, department)
        user = user_id(head)
        held = chain.members.get(user)
        if held is not None and held.role == "head":
            return chain
        admin = await self._signed_in(stack, url, ADMIN_USERNAME)
        return await self._post_statement(
            admin,
            department,
            chain,
            signer=self.institution.admin_key,
            signer_user=None,
            kind="admit" if held is None else "role",
            subject=user,
            role="head",
        )

    async def _signed_in(
        self, stack: contextlib.AsyncExitStack, url: str, username: str
    ) -> Connection:
        conn = await stack.enter_async_context(Connection(url, timeout=30))
        await conn.login(username, self.institution.password)
        return conn

    # --- the department, ready to write ----------------------------------------

    async def ready(self, department: int, clients: Sequence[Connection]) -> Keys:
        """Identities, the head's appointment, the clients' admissions, then a key version.

        Clients the department does not list (a member of another one) only
        publish their identity. Idempotent: what the chain already holds is
        not signed again, and the version made here last is kept while the
        server still names it current and it was wrapped for every client
        the chain holds.
        """
        for client in clients:
            await self.publish_identity(client)
        first = clients[0]
        members = await first.call("GET", f"/api/departments/{department}/members")
        roles = {entry["user"]["id"]: entry["role"] for entry in members}
        by_user = {user_id(client): client for client in clients}
        heads = [user for user, role in roles.items() if role == "head"]
        if not heads:
            raise RuntimeError(f"department {department} has no head to sign admissions")
        head_user = next((user for user in heads if user in by_user), heads[0])
        async with contextlib.AsyncExitStack() as stack:
            head = by_user.get(head_user)
            if head is None:
                username = next(
                    e["user"]["username"] for e in members if e["user"]["id"] == head_user
                )
                head = await self._signed_in(stack, first.base_url, username)
                await self.publish_identity(head)
            chain = await self._appointed(stack, head, department, first.base_url)
            for user in by_user:
                if user in roles and user not in chain.members:
                    chain = await self._post_statement(
                        head,
                        department,
                        chain,
                        signer=self.pairs[head_user],
                        signer_user=head_user,
                        kind="admit",
                        subject=user,
                        role=roles[user],
                    )
        held = self.departments.get(department)
        if held is not None:
            state = await first.call("GET", f"/api/departments/{department}/keys")
            covered = all(
                self.pairs[user].fingerprint in held.recipients
                for user in by_user
                if user in chain.members
            )
            if (
                covered
                and state["key_version"] == held.room_key.version
                and not state["rotation_required"]
            ):
                return held
        creator = next((client for client in clients if user_id(client) in chain.members), None)
        if creator is None:
            raise RuntimeError(f"none of the clients is a member of department {department}")
        return await self.publish_version(creator, department)

    async def publish_version(self, creator: Connection, department: int) -> Keys:
        """The department's next key version, made by `creator` at the head of the chain."""
        chain = await self.chain(creator, department)
        state = await creator.call("GET", f"/api/departments/{department}/keys")
        me = user_id(creator)
        pair = self.pairs[me]
        held = chain.members.get(me)
        if held is None or held.fingerprint != pair.fingerprint:
            raise RuntimeError(f"the chain of department {department} does not hold user {me}")
        compliance = self._compliance_key(state)
        listed = {member["fingerprint"] for member in state["members"] if member["fingerprint"]}
        recipients: dict[str, PublicIdentity] = {
            member.fingerprint: chain.key_of(member.fingerprint)
            for member in chain.members.values()
            if member.fingerprint in listed
        }
        recipients[compliance.fingerprint] = compliance
        room_key = RoomKey.generate(department=department, version=state["key_version"] + 1)
        signed = make_key_version(room_key, head=chain.head, creator_user=me, creator=pair)
        wraps = [
            wrap_room_key(room_key, recipient=recipient, wrapper=pair).to_dict()
            for recipient in recipients.values()
        ]
        await creator.call(
            "POST",
            f"/api/departments/{department}/keys",
            json={"version": room_key.version, "record": signed.to_dict(), "wraps": wraps},
        )
        keys = Keys(room_key, chain.head, self.pairs, frozenset(recipients))
        self.departments[department] = keys
        return keys

    def _compliance_key(self, state: dict) -> PublicIdentity:
        """The server's compliance key, which must be the institution's."""
        pinned = self.institution.compliance_key.fingerprint
        served = state.get("compliance") or {}
        if served.get("fingerprint") != pinned:
            raise RuntimeError(
                f"the server's compliance key {served.get('fingerprint')} is not the "
                f"institution's {pinned}"
            )
        public = PublicIdentity.from_dict(served["public"])
        if public.fingerprint != pinned:
            raise RuntimeError("the server's compliance key does not have its fingerprint")
        return public

    # --- reading ----------------------------------------------------------------

    async def open(self, reader: Connection, message: dict) -> bytes:
        """A message's plaintext, verified as `reader`'s client would verify it.

        The envelope must be the one of the message's thread, sender and
        client_msg_id; the sender's head in the chain served to the reader;
        the version's record verified against that chain; the reader's wrap
        made by a key the chain admitted (or the reader's own), holding the
        key the record commits to. Raises (a `CryptoError`, a
        `RoundsClientError` or `ValueError`) otherwise.
        """
        envelope = message["envelope"]
        header = parse_envelope(envelope)
        sender = message["sender"]
        sender_id = sender["id"] if isinstance(sender, dict) else sender
        if (header.thread, header.sender, header.client_msg_id) != (
            message["thread"],
            sender_id,
            message["client_msg_id"],
        ):
            raise ValueError("the envelope names another thread, sender or client_msg_id")
        department = header.room
        chain = await self.chain(reader, department)
        state = await reader.call("GET", f"/api/departments/{department}/keys")
        (entry,) = [v for v in state["versions"] if v["version"] == header.key_version]
        record = verify_key_version(SignedKeyVersion.from_dict(entry["signed"]), chain)
        pair = self.pairs[user_id(reader)]
        (wrap,) = [
            WrapRecord.from_dict(raw)
            for raw in state["my_wraps"]
            if raw["version"] == header.key_version and raw["recipient_fp"] == pair.fingerprint
        ]
        if wrap.wrapper_fp == pair.fingerprint:
            wrapper = pair.public
        elif wrap.wrapper_fp in chain.ever_admitted:
            wrapper = chain.key_of(wrap.wrapper_fp)
        else:
            raise ValueError("the wrap was made by a key the department's chain never admitted")
        room_key = unwrap_room_key(wrap, recipient=pair, wrapper=wrapper)
        check_key_matches(record, room_key)
        _, plaintext = open_envelope(envelope, chain=chain, record=record, room_key=room_key)
        return plaintext


# One per institution (by its admin key) in this process: a second measurement on the
# same deployment (bench/lb_cost.py) reuses the identities the first one published.
_encryptions: dict[str, Encryption] = {}


async def enable_encryption(
    clients: Sequence[Connection], department: int, institution: Institution
) -> Keys:
    """A department ready for `clients` to post: see the module's docstring."""
    fingerprint = institution.admin_key.fingerprint
    encryption = _encryptions.setdefault(fingerprint, Encryption(institution))
    return await encryption.ready(department, clients)
