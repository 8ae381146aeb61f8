"""Capture docs/protocol.md's JSON examples from a running Rounds server.

Run `.venv/bin/python docs/capture_examples.py` (or `make docs-examples`): it
starts one daphne process through `rounds.serve` on a free port, over a
temporary SQLite database migrated and seeded with `seed_demo`
(`tests/live/servers.py:live_cluster`, the live tests' own helper), drives it
with the Python SDK (`client/`) as the demo's personas, and a raw WebSocket
for the refusals the SDK would not send (a malformed or oversized frame).
Every frame each client sends and receives, and every HTTP answer, is kept;
each example is picked from those records, never typed.

In protocol.md, each example sits between `<!-- captured: NAME -->` and
`<!-- /captured -->`; the script rewrites what is between them. Long tokens
(base64, hex, signatures; any string over 40 characters without a space)
are cut to their first 16 characters and `…`. tests/test_protocol_doc.py
captures again and checks that each example in the page still has the shape
(keys at every level, JSON value types) of the fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[1]
if str(BASE_DIR) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(BASE_DIR))

import httpx  # noqa: E402
import websockets  # noqa: E402
from PIL import Image  # noqa: E402
from websockets.typing import Origin  # noqa: E402

from client.membership import make_statement  # noqa: E402
from client.sdk import RoundsClient, RoundsClientError  # noqa: E402
from core.crypto import IdentityKeyPair, RoomKey  # noqa: E402
from core.crypto.keyversions import make_key_version  # noqa: E402
from core.crypto.roomkeys import wrap_room_key  # noqa: E402
from tests.live.sdk import demo_pins  # noqa: E402
from tests.live.servers import DEMO_PASSWORD, Server, live_cluster  # noqa: E402

PROTOCOL_MD = BASE_DIR / "docs" / "protocol.md"
MARKER = re.compile(
    r"(<!-- captured: (?P<name>[a-z0-9_.\-]+) -->\n)(?P<body>.*?)(<!-- /captured -->)", re.S
)
LONG = 40  # a string longer than this, with no space, is a token: shortened
KEEP = 16
WIDTH = 96
# Argon2id's minimum, so a key backup costs milliseconds.
OPSLIMIT, MEMLIMIT = 1, 8192
KEYWORDS = ["hand", "wound-follow-up"]
TIMEOUT = 15.0

Frame = dict[str, Any]


# --- recording ------------------------------------------------------------------------


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    body: Any


class Tap:
    """The client's WebSocket, every frame in and out appended to `log`."""

    def __init__(self, ws: Any, log: list[tuple[str, Frame]]) -> None:
        self._ws = ws
        self._log = log

    async def send(self, text: str) -> None:
        self._log.append(("sent", json.loads(text)))
        await self._ws.send(text)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._received()

    async def _received(self) -> AsyncIterator[str]:
        async for raw in self._ws:
            self._log.append(("received", json.loads(raw)))
            yield raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


class Recorder(RoundsClient):
    """The SDK, unchanged, with its socket tapped and its HTTP answers kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple[str, Frame]] = []
        self.exchanges: list[Exchange] = []
        self.http.event_hooks = {"response": [self._keep]}

    async def _keep(self, response: httpx.Response) -> None:
        await response.aread()
        json_body = response.headers.get("content-type", "").startswith("application/json")
        body = response.json() if response.content and json_body else None
        request = response.request
        self.exchanges.append(
            Exchange(request.method, request.url.path, response.status_code, body)
        )

    async def connect(self) -> dict[str, Any]:
        hello = await super().connect()
        self.log.append(("received", hello))
        return hello

    async def _read(self) -> None:
        self.ws = Tap(self.ws, self.log)
        await super()._read()

    # What was recorded.

    def sent(self, kind: str) -> Frame:
        """The last frame of type `kind` this client sent (`type` and `id` first)."""
        frame = [f for way, f in self.log if way == "sent" and f["type"] == kind][-1]
        return {"type": kind, "id": frame["id"], **frame}

    def reply(self, frame: Frame) -> Frame:
        """The server's answer (ack or error) to `frame`."""
        (answer,) = [
            f
            for way, f in self.log
            if way == "received" and f["type"] in ("ack", "error") and f.get("id") == frame["id"]
        ]
        return answer

    async def pushed(self, kind: str, match: Callable[[Frame], bool] = lambda f: True) -> Frame:
        """The first frame of type `kind` pushed to this client that `match`es (waits)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for way, frame in self.log:
                if way == "received" and frame["type"] == kind and match(frame):
                    return frame
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no {kind} pushed to {self.user and self.user['username']}")

    def answered(self, method: str, path: str, status: int | None = None) -> Any:
        """The body of the last HTTP answer to `method path` (with `status`)."""
        return [
            e.body
            for e in self.exchanges
            if e.method == method and e.path == path and status in (None, e.status)
        ][-1]

    async def refused(self, frame: Frame) -> Frame:
        """Send `frame`, expecting a refusal; the error frame."""
        with contextlib.suppress(RoundsClientError):
            await self.request(frame)
            raise AssertionError(f"{frame['type']} was not refused")
        return self.reply(frame)

    async def call_refused(self, method: str, path: str, **kwargs: Any) -> Any:
        with contextlib.suppress(RoundsClientError):
            await self.call(method, path, **kwargs)
            raise AssertionError(f"{method} {path} was not refused")
        return self.exchanges[-1].body


# --- shortening and rendering -----------------------------------------------------------


def shorten(value: Any) -> Any:
    """Cut every token (a string over LONG characters with no space) to KEEP and `…`."""
    if isinstance(value, dict):
        return {shorten(key): shorten(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shorten(item) for item in value]
    if isinstance(value, str) and len(value) > LONG and " " not in value:
        return value[:KEEP] + "…"
    return value


def render(value: Any, indent: int = 0, lead: int = 0) -> str:
    """JSON on one line when it fits in WIDTH (`lead` columns are taken already);
    else its members or items two spaces deeper, as many to a line as fit."""
    flat = json.dumps(value, ensure_ascii=False)
    if lead + len(flat) <= WIDTH or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + 2
    parts = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = json.dumps(key, ensure_ascii=False)
            parts.append(f"{name}: {render(item, inner, inner + len(name) + 2)}")
        opening, closing = "{", "}"
    else:
        parts = [render(item, inner, inner) for item in value]
        opening, closing = "[", "]"
    lines: list[str] = []
    for part in parts:
        fits = lines and "\n" not in lines[-1] and "\n" not in part
        if fits and inner + len(lines[-1]) + 2 + len(part) <= WIDTH:
            lines[-1] += ", " + part
        else:
            lines.append(part)
    pad = " " * inner
    body = (",\n" + pad).join(lines)
    return f"{opening}\n{pad}{body}\n{' ' * indent}{closing}"


def shape(value: Any) -> Any:
    """What an example promises: the keys at every level and the JSON type of each value.

    A key that is a token (a fingerprint, shortened) stands for any key; a list's
    shape is the distinct shapes of its items, in order of first appearance.
    """
    if isinstance(value, dict):
        return {("…" if key.endswith("…") else key): shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes: list[Any] = []
        for item in value:
            if shape(item) not in shapes:
                shapes.append(shape(item))
        return shapes
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def rewrite(text: str, examples: dict[str, Any]) -> str:
    """`text` with every marker's example replaced by the captured one."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in examples:
            raise KeyError(f"protocol.md names {name!r}, which was not captured")
        return f"{match[1]}```json\n{render(examples[name])}\n```\n{match[4]}"

    return MARKER.sub(replace, text)


def marked(text: str) -> list[str]:
    """The names of the examples `text` has markers for, in order."""
    return [match["name"] for match in MARKER.finditer(text)]


def documented(text: str) -> dict[str, Any]:
    """Each marker's example in `text`, parsed."""
    found = {}
    for match in MARKER.finditer(text):
        body = match["body"].strip()
        if not (body.startswith("```json\n") and body.endswith("```")):
            raise ValueError(f"captured {match['name']}: not one ```json block")
        found[match["name"]] = json.loads(body[len("```json\n") : -3])
    return found


# --- the server and the personas --------------------------------------------------------


@contextlib.contextmanager
def demo_server() -> Iterator[Server]:
    """One daphne process on a temporary SQLite database, migrated and seeded."""
    saved = {name: os.environ.pop(name, None) for name in ("DATABASE_URL", "REDIS_URL")}
    try:
        with live_cluster(1) as cluster:
            yield cluster.servers[0]
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})


@contextlib.asynccontextmanager
async def personas(server: Server, *names: str) -> AsyncIterator[dict[str, Recorder]]:
    """Each persona signed in on a device of its own, pinned to the demo's keys."""
    pins = demo_pins(server)
    with tempfile.TemporaryDirectory(prefix="rounds-capture-") as devices:
        clients: dict[str, Recorder] = {}
        try:
            for name in names:
                client = Recorder(
                    server.url,
                    pinned_admin_fingerprint=pins["admin"],
                    pinned_compliance_fingerprint=pins["compliance"],
                    state_dir=Path(devices) / name,
                    timeout=TIMEOUT,
                )
                clients[name] = client
                await client.login(name, DEMO_PASSWORD)
            yield clients
        finally:
            for client in clients.values():
                await client.aclose()


def jpeg() -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


async def raw_socket(server: Server, token: str, frames: list[str]) -> list[Frame]:
    """Frames the SDK would never send, on a socket of their own; the answers."""
    answers = []
    async with websockets.connect(
        server.ws_url,
        origin=Origin(server.url),
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=2**22,
    ) as ws:
        json.loads(await ws.recv())  # hello
        for text in frames:
            await ws.send(text)
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
    return answers


# --- the scenario ------------------------------------------------------------------------


async def scenario(server: Server) -> dict[str, Any]:
    """Drive the demo hospital through every documented frame; the examples, by name."""
    ex: dict[str, Any] = {}
    names = ("admin", "head_carol", "surgeon_bob", "nurse_alice", "surgeon_henri", "nurse_frank")
    async with personas(server, *names) as people:
        admin, carol, bob = people["admin"], people["head_carol"], people["surgeon_bob"]
        alice, henri = people["nurse_alice"], people["surgeon_henri"]
        ex["http.login"] = bob.answered("POST", "/api/auth/login")

        # Keys: identities, Carol appointed head with the admin key, Bob and Alice admitted.
        for person in (carol, bob, alice):
            await person.setup_keys(opslimit=OPSLIMIT, memlimit=MEMLIMIT)
        ex["http.identity"] = bob.answered("PUT", "/api/keys/identity", 200)
        plastic = next(d["id"] for d in await carol.departments() if d["name"] == "Plastic surgery")
        await admin.appoint_head(
            plastic,
            carol.me(),
            demo_admin_key(server),
            fingerprint=carol.identity.keypair().fingerprint,
        )
        for person in (bob, alice):
            await carol.attest(
                plastic, person.me(), fingerprint=person.identity.keypair().fingerprint
            )

        await bob.connect()
        ex["hello"] = await alice.connect()
        await carol.connect()

        # A thread, a room key version, a message.
        patient = (await bob.find_patients(name="le"))[0]
        thread = await bob.create_thread(plastic, patient["id"], "Wound follow-up")
        ex["thread.created"] = await alice.pushed("thread.created")
        await bob.send_text(thread, "Flap warm and pink, capillary refill under 2 s.")
        ex["http.keys.publish"] = bob.answered("POST", f"/api/departments/{plastic}/keys", 201)
        ex["key.rotated"] = await alice.pushed("key.rotated")
        post = bob.sent("message.post")
        ex["message.post"] = post
        ex["ack.message.post"] = bob.reply(post)
        first = await alice.pushed("message.new")
        ex["message.new"] = first
        message_id = first["message"]["id"]

        # The same post again is a duplicate; the same client_msg_id for other bytes is not.
        await bob.request({k: v for k, v in post.items() if k != "id"})
        ex["ack.message.post.duplicate"] = bob.reply(bob.sent("message.post"))
        with contextlib.suppress(RoundsClientError):
            await bob.send_text(thread, "Another text", client_msg_id=post["client_msg_id"])
        ex["error.client_msg_id_conflict"] = bob.reply(bob.sent("message.post"))

        # Typing, receipts, history, ping.
        await alice.typing(thread["id"])
        ex["typing.client"] = alice.sent("typing")
        ex["ack.typing"] = alice.reply(alice.sent("typing"))
        ex["typing.server"] = await bob.pushed("typing")
        await alice.read(thread["id"], 1)
        ex["receipt.read"] = alice.sent("receipt.read")
        ex["ack.receipt.read"] = alice.reply(alice.sent("receipt.read"))
        ex["receipt.new"] = await bob.pushed("receipt.new")
        frame = {"type": "receipt.read", "thread": thread["id"], "up_to_seq": 99}
        ex["error.invalid_request"] = await alice.refused(frame)
        await alice.receipts(thread["id"])
        ex["ack.receipts.fetch"] = alice.reply(alice.sent("receipts.fetch"))
        await alice.receipts(thread["id"], seq=1)
        ex["receipts.fetch"] = alice.sent("receipts.fetch")
        ex["ack.receipts.fetch.seq"] = alice.reply(alice.sent("receipts.fetch"))
        await alice.history(thread["id"], limit=20)
        ex["history.fetch"] = alice.sent("history.fetch")
        ex["ack.history.fetch"] = alice.reply(alice.sent("history.fetch"))
        await alice.request({"type": "ping"})
        ex["ping"] = alice.sent("ping")
        ex["ack.ping"] = alice.reply(alice.sent("ping"))
        frame = {"type": "history.fetch", "thread": 999_999}
        ex["error.not_found"] = await alice.refused(frame)

        # Resume: from a cursor, with departments not the caller's, from the future.
        position = alice.cursor[str(plastic)]
        await alice.resume({str(plastic): position - 1})
        ex["resume"] = alice.sent("resume")
        ex["ack.resume"] = alice.reply(alice.sent("resume"))
        strangers = {str(plastic + 1): 0, "77": 0}
        await alice.resume({str(plastic): position, **strangers})
        ex["ack.resume.ignored"] = alice.reply(alice.sent("resume"))
        frame = {"type": "resume", "cursor": {str(plastic): position + 1000}}
        ex["error.cursor_invalid"] = await alice.refused(frame)

        # A photo; its uploads named again by another post.
        await bob.send_photos(thread, [jpeg()], keywords=KEYWORDS, text="Day 3")
        photo_post = bob.sent("message.post")
        ex["message.post.photo"] = photo_post
        ex["message.new.photo"] = await alice.pushed(
            "message.new", lambda f: bool(f["message"]["attachments"])
        )
        with contextlib.suppress(RoundsClientError):
            await bob.post_body(thread, b"again", attachments=photo_post["attachments"])
        ex["error.attachment_invalid"] = bob.reply(bob.sent("message.post"))

        # Correction: a new envelope from the sender, bound to the message; every version kept.
        await bob.correct_text(first, "Flap warm and pink, capillary refill 2 s.")
        correction = bob.sent("message.correct")
        ex["message.correct"] = correction
        ex["ack.message.correct"] = bob.reply(correction)
        ex["message.corrected"] = await alice.pushed("message.corrected")
        await alice.history(thread["id"], before_seq=2, limit=1)
        ex["ack.history.fetch.corrected"] = alice.reply(alice.sent("history.fetch"))

        # Redaction: refused to a plain member, done by the sender, replayed as a tombstone.
        ex["error.forbidden"] = await alice.refused(
            {"type": "message.redact", "message": message_id}
        )
        await bob.redact(message_id, reason="Wrong patient: reposted in the right thread")
        ex["message.redact"] = bob.sent("message.redact")
        ex["ack.message.redact"] = bob.reply(bob.sent("message.redact"))
        ex["message.redacted"] = await alice.pushed("message.redacted")
        frame = {
            "type": "message.correct",
            "message": message_id,
            "client_msg_id": "fix-after-redaction",
            "envelope": correction["envelope"],
        }
        ex["error.message_redacted"] = await bob.refused(frame)
        # A socket never sends an event twice: the tombstone is replayed to a new one.
        await alice.disconnect()
        await alice.connect()
        await alice.resume({str(plastic): first["event_seq"] - 1})
        ex["message.new.redacted"] = await alice.pushed(
            "message.new", lambda f: f["message"]["redacted"] is not None
        )

        # The HTTP listings.
        await alice.department_threads(plastic)
        ex["http.threads"] = alice.answered("GET", f"/api/departments/{plastic}/threads")
        ex["http.keys"] = await bob.call("GET", f"/api/departments/{plastic}/keys")
        stale = (await carol.membership.chain(plastic, fresh=True)).head
        ex["http.statements"] = await bob.call("GET", f"/api/departments/{plastic}/statements")

        # Membership and thread events, a head's statements.
        await carol.set_role(plastic, bob.me(), "head")
        ex["member.role_changed"] = await alice.pushed("member.role_changed")
        ex["membership.signed"] = await alice.pushed(
            "membership.signed", lambda frame: frame["kind"] == "role"
        )
        ex["http.statement.post"] = carol.answered(
            "POST", f"/api/departments/{plastic}/statements", 201
        )
        await carol.call("POST", f"/api/threads/{thread['id']}/close")
        ex["thread.closed"] = await alice.pushed("thread.closed")
        await carol.call("POST", f"/api/threads/{thread['id']}/reopen")
        ex["thread.reopened"] = await alice.pushed("thread.reopened")
        await carol.admit(plastic, henri.me(), fingerprint=None)
        ex["member.admitted"] = await alice.pushed("member.admitted")

        # The head adds an on-call role: the department's screens hear of it.
        await carol.call(
            "POST", f"/api/departments/{plastic}/oncall/roles", json={"name": "Wound care nurse"}
        )
        ex["oncall.changed"] = await alice.pushed("oncall.changed")
        # An advice request (docs/advice.md): Bob asks Carol, urgently.
        await bob.ask_advice(thread, "Flap congested?", priority="urgent", to_user=carol.me())
        ex["advice.updated"] = await alice.pushed("advice.updated")

        # Refusals of the key directory: a stale chain head, a version that leaves people out.
        signed = make_statement(
            carol.identity.keypair(),
            head=stale,
            kind="admit",
            department=plastic,
            subject=alice.me(),
            subject_fingerprint=alice.identity.keypair().fingerprint,
            role="member",
            signer_user=carol.me(),
        )
        ex["http.statement.conflict"] = await carol.call_refused(
            "POST", f"/api/departments/{plastic}/statements", json={"signed": signed}
        )
        current = (await bob.call("GET", f"/api/departments/{plastic}/keys"))["key_version"]
        head = (await bob.membership.chain(plastic, fresh=True)).head
        ex["http.keys.conflict"] = await bob.call_refused(
            "POST",
            f"/api/departments/{plastic}/keys",
            json=version_body(bob, plastic, current, stale),
        )
        ex["http.wraps_incomplete"] = await bob.call_refused(
            "POST",
            f"/api/departments/{plastic}/keys",
            json=version_body(bob, plastic, current, head),
        )
        ex["http.identity.conflict"] = await alice.call_refused(
            "PUT",
            "/api/keys/identity",
            json={"public": IdentityKeyPair.generate().public.to_dict()},
        )

        # Alice leaves the department; Frank mistypes his password until locked out.
        await carol.remove_member(plastic, alice.me())
        ex["member.removed"] = await bob.pushed("member.removed")
        frank = people["nurse_frank"]
        for _ in range(10):
            body = await frank.call_refused(
                "POST",
                "/api/auth/login",
                json={"username": "nurse_frank", "password": "x"},
                auth=False,
            )
            if body["code"] == "locked_out":
                ex["http.locked_out"] = body
                break

        # What only a raw socket sends: a malformed frame, an oversized one.
        malformed = {
            "type": "message.post",
            "id": "x2",
            "thread": "1",
            "client_msg_id": "no spaces please",
            "envelope": {"header": {}, "ciphertext": "not base64!"},
        }
        assert bob.token is not None
        answers = await raw_socket(server, bob.token, [json.dumps(malformed), "x" * 70_000])
        ex["error.invalid_frame"], ex["error.frame_too_large"] = answers
    return ex


def demo_admin_key(server: Server) -> IdentityKeyPair:
    """The institution's admin key pair, which seed_demo keeps under var/ for the demo."""
    path = server.root / "var" / "demo-keys" / "admin.key"
    return IdentityKeyPair.from_bytes(bytes.fromhex(path.read_text()))


def version_body(client: Recorder, department: int, current: int, head: Any) -> dict[str, Any]:
    """The next key version made by `client` at `head`, wrapped for `client` alone."""
    identity = client.identity.keypair()
    key = RoomKey.generate(department=department, version=current + 1)
    signed = make_key_version(key, head=head, creator_user=client.me(), creator=identity)
    wrap = wrap_room_key(key, recipient=identity.public, wrapper=identity)
    return {"version": key.version, "record": signed.to_dict(), "wraps": [wrap.to_dict()]}


def capture() -> dict[str, Any]:
    """Start a server, run the scenario, stop it; every example, shortened."""
    with demo_server() as server:
        examples = asyncio.run(scenario(server))
    return {name: shorten(value) for name, value in examples.items()}


def main() -> int:
    started = time.monotonic()
    examples = capture()
    text = PROTOCOL_MD.read_text()
    names = marked(text)
    missing = sorted(set(names) - set(examples))
    if missing:
        print(f"protocol.md names examples that were not captured: {missing}", file=sys.stderr)
        return 1
    PROTOCOL_MD.write_text(rewrite(text, examples))
    unused = sorted(set(examples) - set(names))
    print(
        f"{len(names)} examples captured into docs/protocol.md "
        f"in {time.monotonic() - started:.1f} s" + (f"; not shown: {unused}" if unused else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
