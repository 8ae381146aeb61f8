"""consult.json: a consult's guest and thread key (docs/crypto.md §14), for both clients.

One department (12) with a head and a member; the member signs a clinician
of another department in as the guest of thread 877, who writes under the
thread's key and then signs themselves out. Every rule a reader applies to
a consult has a case: who may sign a guest in or out, what a guest may
write, which key version a writer may still use, and the formats' exact
keys. Wraps are sealed boxes (a fresh ephemeral key each run), so the file
is not deterministic; tests/crypto/test_consult_vectors.py checks it.
"""

import json
from typing import Any

from core.crypto import (
    GENESIS,
    ChainHead,
    MembershipStatement,
    RoomKey,
    SignedStatement,
    encrypt_message,
    make_key_version,
    replay_membership_chain,
    sign_statement,
    wrap_room_key,
)
from core.crypto.encoding import b64encode

from .generate import fixed_bytes, identities, persona

DEPARTMENT = 12
THREAD = 877
OTHER_THREAD = 878
USERS = {"head_carol": 3, "nurse_alice": 7, "emergency_eve": 41, "outsider_oscar": 55}
PEOPLE = ("head_carol", "nurse_alice", "emergency_eve", "outsider_oscar", "institution_admin")
SENT_AT = "2025-03-01T03:12:00.000Z"

# (kind, subject, role, thread, issued_at, signer)
CHAIN_STEPS = [
    ("admit", "head_carol", "head", None, "2025-03-01T02:00:00Z", None),
    ("admit", "nurse_alice", "member", None, "2025-03-01T02:05:00Z", "head_carol"),
    ("guest", "emergency_eve", "guest", THREAD, "2025-03-01T03:10:00Z", "nurse_alice"),
    ("unguest", "emergency_eve", "guest", THREAD, "2025-03-01T05:00:00Z", "emergency_eve"),
]


def _statement(
    seq: int,
    prev: str,
    kind: str,
    subject: str,
    role: str,
    thread: int | None,
    signer: str | None,
    issued_at: str = "2025-03-01T04:00:00Z",
) -> SignedStatement:
    signing = persona(signer or "institution_admin")
    statement = MembershipStatement(
        department=DEPARTMENT,
        seq=seq,
        prev=prev,
        kind=kind,  # type: ignore[arg-type]
        subject_user=USERS[subject],
        subject_fingerprint=persona(subject).fingerprint,
        replaces=None,
        role=role,  # type: ignore[arg-type]
        issued_at=issued_at,
        signer_user=None if signer is None else USERS[signer],
        signer_fingerprint=signing.fingerprint,
        thread=thread,
    )
    return sign_statement(statement, signing)


def consult_chain() -> list[SignedStatement]:
    chain: list[SignedStatement] = []
    for kind, subject, role, thread, issued_at, signer in CHAIN_STEPS:
        prev = chain[-1].hash if chain else GENESIS
        chain.append(
            _statement(len(chain) + 1, prev, kind, subject, role, thread, signer, issued_at)
        )
    return chain


def thread_key(version: int, thread: int = THREAD) -> RoomKey:
    return RoomKey(
        fixed_bytes(f"thread-key/{DEPARTMENT}/{thread}/{version}"),
        department=DEPARTMENT,
        version=version,
        thread=thread,
    )


def room_key() -> RoomKey:
    return RoomKey(fixed_bytes(f"room-key/{DEPARTMENT}/1"), department=DEPARTMENT, version=1)


def _key_entry(key: RoomKey) -> dict[str, Any]:
    return {
        "department": key.department,
        "thread": key.thread,
        "version": key.version,
        "key": b64encode(bytes(key)),
        "commitment": b64encode(key.commitment),
    }


def _head(chain: list[SignedStatement], seq: int) -> ChainHead:
    return ChainHead(seq, chain[seq - 1].hash if seq else GENESIS)


def _invalid_chains(chain: list[SignedStatement]) -> list[dict[str, Any]]:
    dicts = [signed.to_dict() for signed in chain]
    h = [signed.hash for signed in chain]

    def forged(seq: int, kind: str, subject: str, role: str, thread: int | None, signer):
        return _statement(seq, h[seq - 2], kind, subject, role, thread, signer).to_dict()

    oscar_in = _statement(4, h[2], "guest", "outsider_oscar", "guest", THREAD, "nurse_alice")
    eve_signs_oscar_out = _statement(
        5, oscar_in.hash, "unguest", "outsider_oscar", "guest", THREAD, "emergency_eve"
    )
    thread_on_admit = json.loads(json.dumps(dicts[1]))
    thread_on_admit["statement"]["thread"] = THREAD
    no_thread = json.loads(json.dumps(dicts[2]))
    del no_thread["statement"]["thread"]
    cases = [
        (
            "guest_signed_by_the_admin_key",
            [*dicts[:2], forged(3, "guest", "emergency_eve", "guest", THREAD, None)],
            "bad_signature",
            2,
        ),
        (
            "guest_signed_by_an_outsider",
            [*dicts[:2], forged(3, "guest", "emergency_eve", "guest", THREAD, "outsider_oscar")],
            "bad_signature",
            2,
        ),
        (
            "a_member_signed_in_as_a_guest",
            [*dicts[:2], forged(3, "guest", "nurse_alice", "guest", THREAD, "head_carol")],
            "invalid_envelope",
            2,
        ),
        (
            "guest_twice_in_one_thread",
            [*dicts[:3], forged(4, "guest", "emergency_eve", "guest", THREAD, "head_carol")],
            "invalid_envelope",
            3,
        ),
        (
            "unguest_of_someone_not_a_guest",
            [
                *dicts[:3],
                forged(4, "unguest", "emergency_eve", "guest", OTHER_THREAD, "nurse_alice"),
            ],
            "invalid_envelope",
            3,
        ),
        (
            "guest_signs_another_guest_out",
            [*dicts[:3], oscar_in.to_dict(), eve_signs_oscar_out.to_dict()],
            "bad_signature",
            4,
        ),
        ("thread_on_an_admission", [dicts[0], thread_on_admit], "invalid_envelope", 1),
        ("guest_without_a_thread", [*dicts[:2], no_thread], "invalid_envelope", 2),
    ]
    return [
        {"name": name, "chain": statements, "error": error, "statement_index": index}
        for name, statements, error, index in cases
    ]


def _envelope_cases(chain: list[SignedStatement]) -> list[dict[str, Any]]:
    eve, alice = USERS["emergency_eve"], USERS["nurse_alice"]
    # (name, signer, sender, head seq, thread of the envelope, key, error)
    cases = [
        ("guest_writes_in_the_consult", "emergency_eve", eve, 3, THREAD, thread_key(1), None),
        ("member_writes_in_the_consult", "nurse_alice", alice, 3, THREAD, thread_key(1), None),
        ("member_after_the_end_new_version", "nurse_alice", alice, 4, THREAD, thread_key(2), None),
        (
            "guest_under_the_room_key",
            "emergency_eve",
            eve,
            3,
            THREAD,
            room_key(),
            "sender_not_member",
        ),
        (
            "guest_in_another_thread",
            "emergency_eve",
            eve,
            3,
            OTHER_THREAD,
            thread_key(1, OTHER_THREAD),
            "sender_not_member",
        ),
        (
            "guest_after_the_end",
            "emergency_eve",
            eve,
            4,
            THREAD,
            thread_key(2),
            "sender_not_member",
        ),
        (
            "member_after_the_end_old_version",
            "nurse_alice",
            alice,
            4,
            THREAD,
            thread_key(1),
            "key_version_stale",
        ),
    ]
    out = []
    for index, (name, signer, sender, seq, thread, key, error) in enumerate(cases):
        plaintext = name.encode()
        envelope = encrypt_message(
            plaintext,
            room_key=key,
            head=_head(chain, seq),
            thread=thread,
            sender=sender,
            client_msg_id=f"consult-{index:04d}",
            signer=persona(signer),
            sent_at=SENT_AT,
            nonce=fixed_bytes(f"consult-nonce/{name}", 24),
        )
        out.append(
            {
                "name": name,
                "envelope": envelope,
                "key": {"thread": key.thread, "version": key.version},
                "plaintext": None if error else b64encode(plaintext),
                "error": error,
            }
        )
    # A header whose `key` names anything but "thread" does not parse.
    bad = json.loads(json.dumps(out[0]["envelope"]))
    bad["header"]["key"] = "room"
    out.append(
        {
            "name": "key_other_than_thread",
            "envelope": bad,
            "key": {"thread": THREAD, "version": 1},
            "plaintext": None,
            "error": "invalid_envelope",
        }
    )
    return out


def build_consult() -> dict[str, Any]:
    chain = consult_chain()
    people = [persona(name).public for name in PEOPLE if name != "institution_admin"]
    replayed = replay_membership_chain(
        chain, admin_key=persona("institution_admin").public, keys=people
    )
    versions = {
        "room/1": make_key_version(
            room_key(),
            head=_head(chain, 2),
            creator_user=USERS["head_carol"],
            creator=persona("head_carol"),
        ),
        f"{THREAD}/1": make_key_version(
            thread_key(1),
            head=_head(chain, 3),
            creator_user=USERS["nurse_alice"],
            creator=persona("nurse_alice"),
        ),
        f"{THREAD}/2": make_key_version(
            thread_key(2),
            head=_head(chain, 4),
            creator_user=USERS["nurse_alice"],
            creator=persona("nurse_alice"),
        ),
        f"{OTHER_THREAD}/1": make_key_version(
            thread_key(1, OTHER_THREAD),
            head=_head(chain, 3),
            creator_user=USERS["nurse_alice"],
            creator=persona("nurse_alice"),
        ),
    }
    by_guest = make_key_version(
        thread_key(3),
        head=_head(chain, 3),
        creator_user=USERS["emergency_eve"],
        creator=persona("emergency_eve"),
    )
    wraps = [
        {
            "recipient": recipient,
            "wrapper": "nurse_alice",
            "record": wrap_room_key(
                thread_key(1), recipient=persona(recipient).public, wrapper=persona("nurse_alice")
            ).to_dict(),
            "thread": THREAD,
            "version": 1,
        }
        for recipient in ("emergency_eve", "head_carol")
    ]
    return {
        "format": "rounds consult v1",
        "generator": "tests/vectors/generate.py",
        "deterministic": False,
        "identities": identities(*PEOPLE),
        "users": USERS,
        "admin_identity": "institution_admin",
        "department": DEPARTMENT,
        "thread": THREAD,
        "chain": [signed.to_dict() for signed in chain],
        "head": replayed.head.to_dict(),
        # For each point of the chain: the members, and the guests of THREAD (user id as a string).
        "members_at": {
            str(seq): {
                str(user): [m.role, m.fingerprint]
                for user in sorted(USERS.values())
                if (m := replayed.member_at(user, seq)) is not None
            }
            for seq in range(5)
        },
        "guests_at": {
            str(seq): {
                str(user): g.fingerprint
                for user in sorted(USERS.values())
                if (g := replayed.guest_at(THREAD, user, seq)) is not None
            }
            for seq in range(5)
        },
        "last_exclusion_at": {
            str(seq): {
                "room": replayed.last_exclusion_at(seq),
                "thread": replayed.last_exclusion_at(seq, THREAD),
            }
            for seq in range(5)
        },
        "keys": {
            "room/1": _key_entry(room_key()),
            f"{THREAD}/1": _key_entry(thread_key(1)),
            f"{THREAD}/2": _key_entry(thread_key(2)),
            f"{OTHER_THREAD}/1": _key_entry(thread_key(1, OTHER_THREAD)),
        },
        # Written under a thread key, these versions are current or not at the head.
        "key_versions": {name: signed.to_dict() for name, signed in versions.items()},
        "current_at_head": {
            "room/1": None,
            f"{THREAD}/1": "key_version_stale",
            f"{THREAD}/2": None,
            f"{OTHER_THREAD}/1": None,
        },
        "version_by_the_guest": {"signed": by_guest.to_dict(), "error": "key_version_unauthorized"},
        "wraps": wraps,
        "envelopes": _envelope_cases(chain),
        "invalid_chains": _invalid_chains(chain),
    }
