"""The browser client against a server that lies with correctly signed data.

tests/client/test_malicious_server.py, in Chromium: a real daphne keeps a
real ward, and each browser context talks to it through a scripted server
made of Playwright's interception (`ScriptedServer` below). `context.route`
forwards every API request to the real server (`route.fetch`) and rewrites
chosen JSON answers (`route.fulfill`), as a compromised server would
(docs/crypto.md §13); `context.route_web_socket` relays the socket both
ways and lets the test push frames the real server never sent. Every
request and every frame the page sends is recorded. Each scenario of issue
11's table, and each smaller rule, is refused with its own code, read where
the browser shows it (`data-code` on a message that cannot be read, on a
duplicate, on an alert; the code of a message that was not sent; or the
`.code` of the error `window.rounds.e2e` throws where the screen has no
place for it), and nothing is wrapped, signed or posted under what was
refused.

The ward (built once for the module, with the Python SDK where it is
faster): the admin key appoints head_carol (statement 1); she admits
surgeon_bob, nurse_alice and nurse_frank (2 to 4); Bob's first message makes
key version 1 at statement 4; Carol removes Frank in her browser (5); Bob's
next message makes version 2 at statement 5. The browser users' identities
are put into their browser's IndexedDB (keystore.js), as on their own
device. Alice's and Carol's browsers then read both messages: they verified
statement 5 and version 2 (`rounds-trust`). A "fresh" browser is a new
context with the same identity and nothing remembered, like a new phone.
"""

import contextlib
import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, WebSocketRoute, expect
from playwright.sync_api import Error as PlaywrightError

from core.crypto import (
    ChainHead,
    IdentityKeyPair,
    RoomKey,
    WrapRecord,
    encrypt_message,
    make_key_version,
    wrap_room_key,
)
from tests.browser.support import (
    choose_passphrase,
    device_dir,
    institution_keys,
    new_context,
    pins_file,
    python_client,
    run_async,
    shot,
    sign_in,
)
from tests.live.forgeries import (
    another_key_under_commitment,
    chain_under,
    hand_over_wrap,
    non_canonical,
    substitute_institution_key,
    substitute_member_key,
    without_last_statement,
)
from tests.live.sdk import LIMITS, department_named, new_thread
from tests.live.servers import DEMO_PASSWORD, LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

FIRST = "Flap warm, refill 2 s"
SECOND = "Frank is off the rota"


# --- the scripted server -----------------------------------------------------------------------


class ScriptedServer:
    """The real server behind one browser context, some of its answers rewritten; every
    request and every socket frame the page sends recorded; frames pushed on demand."""

    def __init__(self, context: BrowserContext) -> None:
        self.rewrites: list[tuple[str, re.Pattern, Callable[[Any], Any]]] = []
        self.requests: list[tuple[str, str, str | None]] = []
        self.frames: list[dict] = []  # what the page sent on its sockets
        self.sockets: list[WebSocketRoute] = []
        context.on("request", self._record)
        context.route(lambda url: urlsplit(url).path.startswith("/api/"), self._answer)
        context.route_web_socket(lambda url: urlsplit(url).path == "/ws/", self._relay)

    def rewrite(self, method: str, path: str, change: Callable[[Any], Any]) -> None:
        """Answer `method path` (a regex) with `change(real answer)`."""
        self.rewrites.append((method, re.compile(path), change))

    def honest(self) -> None:
        """No rewriting from now on."""
        self.rewrites.clear()

    def reset(self) -> None:
        """Honest, and what was recorded so far forgotten."""
        self.honest()
        self.requests.clear()
        self.frames.clear()

    def sent(self, method: str, path: str) -> list[Any]:
        """The JSON bodies the page sent to `method path` (a regex)."""
        return [
            json.loads(body) if body else None
            for m, p, body in self.requests
            if m == method and re.fullmatch(path, p)
        ]

    def posted(self, kind: str) -> list[dict]:
        """The frames of this type the page sent on its sockets."""
        return [frame for frame in self.frames if frame.get("type") == kind]

    def push(self, frame: dict) -> None:
        """A frame on the page's current socket, as if the server had sent it."""
        self.sockets[-1].send(json.dumps(frame))

    def _record(self, request: Request) -> None:
        self.requests.append((request.method, urlsplit(request.url).path, request.post_data))

    def _answer(self, route) -> None:
        request = route.request
        path = urlsplit(request.url).path
        for method, pattern, change in self.rewrites:
            if request.method == method and pattern.fullmatch(path):
                try:
                    response = route.fetch()
                    body = response.json()
                except PlaywrightError:
                    # The page left while the answer was read (a navigation disposes of
                    # it): nobody waits for this request any more, nothing to rewrite.
                    with contextlib.suppress(PlaywrightError):
                        route.abort()
                    return
                route.fulfill(response=response, json=change(copy.deepcopy(body)))
                return
        route.continue_()

    def _relay(self, page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()

        def from_page(message: str | bytes) -> None:
            with contextlib.suppress(ValueError, TypeError):
                self.frames.append(json.loads(message))
            server_side.send(message)

        page_side.on_message(from_page)
        server_side.on_message(page_side.send)
        self.sockets.append(page_side)


# --- the ward ----------------------------------------------------------------------------------


@dataclass
class Ward:
    cluster: LiveCluster
    browser: Browser
    department: int = 0
    thread: int = 0
    users: dict[str, int] = field(default_factory=dict)
    identities: dict[str, IdentityKeyPair] = field(default_factory=dict)
    heads: dict[int, ChainHead] = field(default_factory=dict)
    room_keys: dict[int, RoomKey] = field(default_factory=dict)
    messages: list[dict] = field(default_factory=list)  # the thread's history page
    # Alice's and Carol's own browsers, kept for the module; every browser opened.
    devices: dict[str, "Device"] = field(default_factory=dict)
    opened: list["Device"] = field(default_factory=list)
    python_devices: dict[str, str] = field(default_factory=dict)  # username → SDK state directory

    def path(self, tail: str) -> str:
        return f"/api/departments/{self.department}{tail}"

    def device(self, username: str) -> "Device":
        """`username`'s own browser, with what it remembers, talking to the real server
        (nothing recorded yet)."""
        device = self.devices[username]
        device.server.reset()
        return device

    def fresh(
        self,
        username: str,
        server: Callable[[ScriptedServer], None] | None = None,
        *,
        home: bool = True,
    ) -> "Device":
        """`username` on a new browser (same keys, nothing remembered), signed in; `server`
        scripts it before the first request."""
        device = Device.open(self, username)
        if server:
            server(device.server)
        device.sign_in(home=home)
        return device

    def message_count(self, device: "Device") -> int:
        answer = device.context.request.get(f"/api/threads/{self.thread}/messages")
        assert answer.ok
        return len(answer.json()["messages"])


SAVE_IDENTITY = """async (record) => {
  const keystore = await import('/app/js/keystore.js');
  await keystore.saveIdentity({ ...record, secret: Uint8Array.from(record.secret) });
}"""

REFUSAL = """async ([call, args]) => {
  try {
    await window.rounds.e2e[call](...args);
    return null;
  } catch (error) {
    return { code: error.code ?? String(error), data: error.data ?? null };
  }
}"""

OUTBOX_CODE = """(text) => {
  const entry = [...window.rounds.state.outbox.values()].find((o) => o.text === text);
  return entry?.failed?.code ?? null;
}"""


EXPLAIN = "async (code) => (await import('/app/js/ui.js')).explain({ code })"


@dataclass
class Device:
    """A browser of `username`: a context and its page, behind a ScriptedServer."""

    ward: Ward
    username: str
    context: BrowserContext
    page: Page
    server: ScriptedServer

    @classmethod
    def open(cls, ward: Ward, username: str) -> "Device":
        context = new_context(ward.browser, ward.cluster)
        server = ScriptedServer(context)
        device = cls(ward, username, context, context.new_page(), server)
        ward.opened.append(device)
        return device

    def sign_in(self, *, home: bool = True) -> None:
        """Sign in with the user's keys already in this browser, as on their own device."""
        identity = self.ward.identities[self.username]
        record = {
            "user": self.ward.users[self.username],
            "secret": list(identity.to_bytes()),
            "fingerprint": identity.fingerprint,
            "backupStored": True,
        }
        self.page.goto("/")
        self.page.evaluate(SAVE_IDENTITY, record)
        sign_in(self.page, self.username)
        if home:
            expect(self.page.get_by_role("heading", name="My departments")).to_be_visible()

    def load(self, route: str) -> None:
        """Load the app afresh at `route` (a reload: what the page held in memory is gone)."""
        self.page.goto("about:blank")
        self.page.goto(f"/{route}")

    def open_thread(self, *, reload: bool = False) -> None:
        route = f"#/t/{self.ward.thread}"
        if reload:
            self.load(route)
        else:
            self.page.goto(f"/{route}")
        expect(self.page.locator("li.msg")).to_have_count(2)

    def entry(self, message: dict) -> Any:
        return self.page.locator(f"li.msg[data-seq='{message['seq']}']")

    def refused(self, call: str, *args: Any) -> dict | None:
        """The code and data of the error `window.rounds.e2e[call](...args)` throws (None: none)."""
        return self.page.evaluate(REFUSAL, [call, list(args)])

    def send_refused(self, text: str) -> str:
        """Write `text` in the open conversation; it must stay unsent: its code."""
        composer = self.page.get_by_role("textbox", name="Message")
        composer.fill(text)
        composer.press("Enter")
        expect(self.page.locator("li.msg.mine", has_text=text).locator("time")).to_have_text(
            "Not sent"
        )
        code = self.page.evaluate(OUTBOX_CODE, text)
        # The person reads the sentence for that code (ui.js explain).
        sentence = self.page.evaluate(EXPLAIN, code)
        expect(self.page.locator("#toast")).to_have_text(f"Not sent: {sentence}")
        return code

    def deliver(self, message: dict) -> None:
        """The server pushes `message.new` for `message`, numbered after the page's cursor."""
        department = self.ward.department
        self.page.wait_for_function("() => window.rounds.socket?.isOnline")
        cursor = self.page.evaluate("(d) => window.rounds.socket.cursor[String(d)]", department)
        frame = {
            "type": "message.new",
            "department": department,
            "event_seq": cursor + 1,
            "message": message,
        }
        self.server.push(frame)

    def close(self) -> None:
        self.context.close()


@contextlib.asynccontextmanager
async def python_device(ward: Ward, username: str, *, connect: bool = False):
    """`username` in the Python SDK, on a device of their own (pinned from the deployment file)."""
    state = ward.python_devices.setdefault(username, device_dir())
    async with python_client(ward.cluster, state) as client:
        await client.login(username, DEMO_PASSWORD)
        if username in ward.identities:
            client.keys.identity = ward.identities[username]
            client.keys.backup_stored = True
        if connect:
            await client.connect()
        yield client


async def keys_admissions_and_version_1(ward: Ward) -> None:
    for name in ("head_carol", "surgeon_bob", "nurse_alice", "nurse_frank", "intern_jules"):
        async with python_device(ward, name) as client:
            await client.setup_keys(**LIMITS)
            ward.identities[name] = client.keys.identity
            ward.users[name] = client.me()
    async with python_device(ward, "head_carol") as carol:
        ward.department = await department_named(carol, "Plastic surgery")
        async with python_device(ward, "admin") as admin:
            await admin.appoint_head(
                ward.department,
                ward.users["head_carol"],
                institution_keys(ward.cluster)["admin"],
                fingerprint=ward.identities["head_carol"].fingerprint,
            )
        for name in ("surgeon_bob", "nurse_alice", "nurse_frank"):
            fingerprint = ward.identities[name].fingerprint
            assert await carol.attest(ward.department, ward.users[name], fingerprint=fingerprint)
    async with python_device(ward, "surgeon_bob", connect=True) as bob:
        thread = await new_thread(bob, ward.department, "Scripted server: flap")
        ward.thread = thread["id"]
        await bob.send_text(thread, FIRST)


async def version_2(ward: Ward) -> None:
    async with python_device(ward, "surgeon_bob", connect=True) as bob:
        await bob.send_text(ward.thread, SECOND, department=ward.department)
        ward.room_keys = {v: bob.keys.room_key(ward.department, v) for v in (1, 2)}
        chain = await bob.membership.chain(ward.department)
        ward.heads = {seq: ChainHead(seq, chain.hash_at(seq)) for seq in (4, 5)}
        page = await bob.call("GET", f"/api/threads/{ward.thread}/messages")
        ward.messages = page["messages"]
    assert [m["envelope"]["header"]["key_version"] for m in ward.messages] == [1, 2]
    assert [m["envelope"]["header"]["chain_seq"] for m in ward.messages] == [4, 5]


def remove_frank_in_her_browser(carol: Device) -> None:
    page = carol.page
    page.goto(f"/#/d/{carol.ward.department}/members")
    page.locator("[data-remove=nurse_frank]").click()
    page.locator("#confirm-remove").click()
    expect(page.locator("#toast")).to_contain_text("was removed")
    expect(page.locator("[data-member=nurse_frank]")).to_have_count(0)
    assert carol.server.sent("POST", carol.ward.path("/statements"))


@pytest.fixture(scope="module")
def ward(browser: Browser, cluster: LiveCluster):
    built = Ward(cluster, browser)
    run_async(keys_admissions_and_version_1(built))
    carol = built.devices["head_carol"] = Device.open(built, "head_carol")
    carol.sign_in()
    remove_frank_in_her_browser(carol)
    run_async(version_2(built))
    alice = built.devices["nurse_alice"] = Device.open(built, "nurse_alice")
    alice.sign_in()
    # Alice's and Carol's browsers read both: they verified statement 5 and version 2.
    for device in (alice, carol):
        device.open_thread()
        expect(device.page.locator("li.msg .text")).to_have_text([FIRST, SECOND])
        # What the page sends on its socket is recorded (history.fetch, as message.post would be).
        assert device.server.posted("history.fetch")
    yield built
    for device in built.opened:  # a test that failed may have left its browser open
        device.close()


def grouped(fingerprint: str) -> str:
    """A fingerprint in 16 groups, as the screens show it."""
    return " ".join(fingerprint[i : i + 4] for i in range(0, len(fingerprint), 4))


def nothing_published(device: Device) -> None:
    """No version, wrap or statement was posted, and no message."""
    server, ward = device.server, device.ward
    for tail in ("/keys", "/keys/wraps", "/statements"):
        assert server.sent("POST", ward.path(tail)) == [], tail
    assert server.posted("message.post") == []


# --- A: an older key version named as current --------------------------------------------------


def test_a_an_older_version_named_current_is_refused(ward: Ward):
    alice = ward.device("nurse_alice")
    before = ward.message_count(alice)
    alice.server.rewrite(
        "GET",
        ward.path("/keys"),
        lambda keys: {**keys, "key_version": 1, "rotation_required": False},
    )
    # Alice's browser verified version 2: version 1 is a rollback.
    alice.open_thread(reload=True)
    expect(alice.page.locator("li.msg .text")).to_have_text([FIRST, SECOND])
    assert alice.send_refused("Under the key Frank holds?") == "key_version_rollback"
    assert alice.refused("currentKey", ward.department)["data"] == {"server": 1, "verified": 2}
    nothing_published(alice)

    # A new browser of hers has no memory; the server hides version 2 from it too. The
    # chain shows Frank's removal after version 1 was made: a removed member may hold it.
    def hiding(server: ScriptedServer) -> None:
        server.rewrite(
            "GET",
            ward.path("/keys"),
            lambda keys: {
                **keys,
                "key_version": 1,
                "rotation_required": False,
                "versions": [v for v in keys["versions"] if v["version"] == 1],
                "my_wraps": [w for w in keys["my_wraps"] if w["version"] == 1],
            },
        )

    phone = ward.fresh("nurse_alice", hiding)
    phone.open_thread()
    expect(phone.entry(ward.messages[1])).to_have_attribute("data-code", "no_room_key")
    assert phone.send_refused("Under the key Frank holds?") == "key_version_stale"
    nothing_published(phone)
    phone.close()
    assert ward.message_count(alice) == before


def test_a2_no_version_yet_to_a_device_that_holds_one_is_refused(ward: Ward):
    alice = ward.device("nurse_alice")
    alice.server.rewrite(
        "GET",
        ward.path("/keys"),
        lambda keys: {**keys, "key_version": 0, "rotation_required": False, "my_wraps": []},
    )
    alice.load(f"#/t/{ward.thread}")
    expect(alice.page.locator("li.msg.undecryptable")).to_have_count(2)
    assert alice.send_refused("A fresh version 1, please") == "key_version_rollback"
    refusal = alice.refused("currentKey", ward.department)
    assert refusal == {"code": "key_version_rollback", "data": {"server": 0, "verified": 2}}
    # Nothing was published under the server's say-so.
    nothing_published(alice)


# --- B: a version made and wrapped by a removed member -----------------------------------------


@pytest.mark.parametrize(
    ("head_seq", "code"),
    [(5, "key_version_unauthorized"), (4, "key_version_stale")],
    ids=["after_his_removal", "naming_a_head_before_it"],
)
def test_b_a_version_made_by_a_removed_member_is_refused(ward: Ward, head_seq, code):
    frank, alice = ward.identities["nurse_frank"], ward.identities["nurse_alice"]
    planted = RoomKey.generate(department=ward.department, version=3)
    record = make_key_version(
        planted, head=ward.heads[head_seq], creator_user=ward.users["nurse_frank"], creator=frank
    )
    wrap = wrap_room_key(planted, recipient=alice.public, wrapper=frank).to_dict()

    def serve_franks_version(keys: dict) -> dict:
        keys["versions"].append({"version": 3, "signed": record.to_dict(), "created_at": "now"})
        keys["my_wraps"].append(wrap)
        return {**keys, "key_version": 3, "rotation_required": False}

    phone = ward.fresh(
        "nurse_alice",
        lambda server: server.rewrite("GET", ward.path("/keys"), serve_franks_version),
    )
    phone.open_thread()
    expect(phone.page.locator("li.msg .text")).to_have_text([FIRST, SECOND])
    assert phone.send_refused("Under Frank's key?") == code
    held = phone.page.evaluate(
        "(d) => { const keys = window.rounds.e2e.keys;"
        " return [keys.roomKey(d, 3) !== null, keys.current.get(d) ?? null]; }",
        ward.department,
    )
    assert held == [code == "key_version_stale", None]  # his key is used for nothing
    nothing_published(phone)
    phone.close()


# --- C: a key the chain never admitted, shown as a member's ------------------------------------


def test_c_a_key_the_chain_never_admitted_is_never_trusted(ward: Ward):
    bob, impostor = ward.users["surgeon_bob"], IdentityKeyPair.generate()

    def impostor_for_bob(keys: dict) -> dict:
        for member in keys["members"]:
            if member["user"] == bob:
                member["identity"] = impostor.public.to_dict()
                member["fingerprint"] = impostor.fingerprint
        return {**keys, "rotation_required": True}

    def script(server: ScriptedServer) -> None:
        server.rewrite("GET", ward.path("/keys"), impostor_for_bob)
        server.rewrite(
            "GET",
            f"/api/keys/identity/{bob}",
            lambda data: {
                **data,
                "public": impostor.public.to_dict(),
                "fingerprint": impostor.fingerprint,
            },
        )

    phone = ward.fresh("nurse_alice", script)
    phone.open_thread()
    real = ward.messages[1]
    forged = {
        **copy.deepcopy(real),
        "id": real["id"] + 1000,
        "seq": real["seq"] + 1000,
        "client_msg_id": "impostor-0001",
        "envelope": encrypt_message(
            b"Stop the anticoagulants",
            room_key=ward.room_keys[2],
            head=ward.heads[5],
            thread=ward.thread,
            sender=bob,
            client_msg_id="impostor-0001",
            signer=impostor,
        ),
    }
    phone.deliver(forged)
    expect(phone.entry(forged)).to_have_attribute("data-code", "bad_signature")
    expect(phone.entry(forged)).to_contain_text("Cannot be read on this device")
    expect(phone.page.get_by_text("Stop the anticoagulants")).to_have_count(0)
    # The real message still opens: the chain's key for Bob is his admitted one.
    expect(phone.entry(real).locator(".text")).to_have_text(SECOND)
    # Asked for a new version, the browser wraps for no key the chain does not hold for
    # Bob, and since the server shows another, for none of his: it lists him as awaiting
    # a signature, and refuses when the (real) server insists on a wrap for him.
    assert phone.refused("currentKey", ward.department)["code"] == "unverified_member"
    published = phone.server.sent("POST", ward.path("/keys"))
    assert published, "the browser tried to publish a version"
    for body in published:
        recipients = {WrapRecord.from_dict(w).recipient_fp for w in body["wraps"]}
        assert impostor.fingerprint not in recipients
        assert ward.identities["surgeon_bob"].fingerprint not in recipients
    unattested = phone.page.evaluate(
        "(d) => [...window.rounds.e2e.unattested.get(d)]", ward.department
    )
    assert unattested == [bob]
    assert phone.server.posted("message.post") == []
    phone.close()


# --- D: the same envelope delivered again ------------------------------------------------------


def again(message: dict, offset: int, **changes: Any) -> dict:
    """`message` under a new message id and position, as a server delivering it again."""
    return {
        **copy.deepcopy(message),
        "id": message["id"] + offset,
        "seq": message["seq"] + offset,
        **changes,
    }


def test_d_an_envelope_delivered_again_is_a_duplicate_across_reloads(ward: Ward):
    """The server delivers Bob's first envelope again, as a new event under a new message
    id: Alice sees it as a duplicate pointing to the first, never as a new message, also
    after a reload; a browser that never saw it opens it, then refuses the first one."""
    first = ward.messages[0]
    alice = ward.device("nurse_alice")
    page = alice.page
    alice.open_thread(reload=True)  # the same message again (a history page) opens as before
    expect(page.locator("li.msg .text")).to_have_text([FIRST, SECOND])
    copy_1 = again(first, 1000)
    alice.deliver(copy_1)
    duplicate = alice.entry(copy_1)
    expect(duplicate).to_have_attribute("data-code", "duplicate")
    expect(duplicate).to_have_attribute("data-duplicate-of", str(first["id"]))
    expect(duplicate).to_contain_text("Delivered again by the server")
    expect(page.locator("li.msg .text", has_text=FIRST)).to_have_count(1)
    duplicate.get_by_role("button", name="Show the first delivery").click()
    expect(page.locator(f"li.msg[data-message-id='{first['id']}']")).to_be_focused()
    shot(page, "25-duplicate")
    # After a reload, the browser remembers (rounds-trust).
    alice.open_thread(reload=True)
    copy_2 = again(first, 2000)
    alice.deliver(copy_2)
    expect(alice.entry(copy_2)).to_have_attribute("data-code", "duplicate")
    expect(alice.entry(copy_2)).to_have_attribute("data-duplicate-of", str(first["id"]))
    expect(page.locator("li.msg .text", has_text=FIRST)).to_have_count(1)

    # A browser that never saw it opens the copy, and from then on refuses the first one.
    phone = ward.fresh("nurse_alice")
    phone.deliver(copy_1)
    phone.page.wait_for_function(
        "([t, seq]) => window.rounds.state.threadMessages(t).get(seq)?.text",
        arg=[ward.thread, copy_1["seq"]],
    )
    phone.page.goto(f"/#/t/{ward.thread}")
    expect(phone.entry(first)).to_have_attribute("data-code", "duplicate")
    expect(phone.entry(first)).to_have_attribute("data-duplicate-of", str(copy_1["id"]))
    expect(phone.entry(copy_1).locator(".text")).to_have_text(FIRST)
    phone.close()


def test_d_another_envelope_under_a_seen_id_is_a_replay(ward: Ward):
    first = ward.messages[0]
    alice = ward.device("nurse_alice")
    alice.open_thread(reload=True)
    swapped = again(
        first,
        3000,
        envelope=encrypt_message(
            b"Flap necrotic, back to theatre",
            room_key=ward.room_keys[1],
            head=ward.heads[4],
            thread=ward.thread,
            sender=ward.users["surgeon_bob"],
            client_msg_id=first["client_msg_id"],
            signer=ward.identities["surgeon_bob"],
        ),
    )
    alice.deliver(swapped)
    replay = alice.entry(swapped)
    expect(replay).to_have_attribute("data-code", "replay")
    expect(replay).to_contain_text("Cannot be read on this device")
    expect(alice.page.get_by_text("Flap necrotic")).to_have_count(0)


# --- E: a removal left out of the chain --------------------------------------------------------


def test_e_a_removal_left_out_is_seen_by_whoever_verified_it(ward: Ward):
    # Carol signed the removal in this browser: it verified statement 5.
    carol = ward.device("head_carol")
    carol.server.rewrite("GET", ward.path("/statements"), without_last_statement)
    carol.load(f"#/t/{ward.thread}")
    for message in ward.messages:
        expect(carol.entry(message)).to_have_attribute("data-code", "membership_rollback")
    assert carol.send_refused("Who reads this?") == "membership_rollback"
    carol.page.goto(f"/#/d/{ward.department}/members")
    expect(carol.page.locator("#members-error")).to_have_attribute(
        "data-code", "membership_rollback"
    )
    expect(carol.page.locator("[data-sign]")).to_have_count(0)
    nothing_published(carol)
    # A browser that never saw it: Bob's message names statement 5, and so does the
    # current key version; both are refused, and nothing is wrapped for Frank.
    phone = ward.fresh(
        "nurse_alice",
        lambda server: server.rewrite("GET", ward.path("/statements"), without_last_statement),
    )
    phone.open_thread()
    expect(phone.entry(ward.messages[0]).locator(".text")).to_have_text(FIRST)
    expect(phone.entry(ward.messages[1])).to_have_attribute("data-code", "membership_withheld")
    assert phone.send_refused("Who reads this?") == "membership_withheld"
    nothing_published(phone)
    phone.close()


# --- F and G: the institution's keys substituted -----------------------------------------------


def test_f_the_servers_own_compliance_key_gets_no_wrap(ward: Ward):
    """With IT's deployment file pinning the real compliance key."""
    substitute = IdentityKeyPair.generate()
    alice = ward.device("nurse_alice")
    with_substitute = substitute_institution_key("compliance", substitute)
    alice.server.rewrite("GET", "/api/keys/institution", with_substitute)
    alice.server.rewrite(
        "GET", ward.path("/keys"), lambda keys: {**with_substitute(keys), "rotation_required": True}
    )
    alice.load("#/")
    # Said at once on the home screen, not only when something is refused.
    expect(alice.page.locator("[role=alert][data-code=compliance_key_mismatch]")).to_be_visible()
    alice.open_thread()
    assert alice.send_refused("For the compliance officer") == "compliance_key_mismatch"
    refusal = alice.refused("currentKey", ward.department)
    assert refusal["code"] == "compliance_key_mismatch"
    assert refusal["data"]["server"] == substitute.fingerprint
    assert refusal["data"]["pinned"] == institution_keys(ward.cluster)["compliance"].fingerprint
    nothing_published(alice)


def test_f_without_the_deployment_file_the_compliance_key_is_confirmed_like_the_admin_key(
    ward: Ward,
):
    """No trust on first use: a browser without IT's file shows each institution key to
    confirm, the compliance key exactly as the admin key; the server naming its own
    compliance key shows that one's fingerprint, and until it is confirmed nothing is
    wrapped."""
    real = {kind: pair.fingerprint for kind, pair in institution_keys(ward.cluster).items()}
    substitute = IdentityKeyPair.generate()

    def script(server: ScriptedServer) -> None:
        server.rewrite(
            "GET", "/api/keys/institution", substitute_institution_key("compliance", substitute)
        )
        server.rewrite(
            "GET",
            ward.path("/keys"),
            lambda keys: {
                **substitute_institution_key("compliance", substitute)(keys),
                "rotation_required": True,
            },
        )

    deployment = pins_file(ward.cluster)
    kept = deployment.read_text()
    deployment.unlink()
    try:
        phone = ward.fresh("nurse_alice", script, home=False)
        phone.page.wait_for_url("**/#/pin")
    finally:
        deployment.write_text(kept)
    page = phone.page
    # The admin key first: its fingerprint to compare, nothing verified until confirmed.
    expect(page.locator("#admin-fingerprint")).to_have_text(grouped(real["admin"]))
    refusal = phone.refused("chain", ward.department)
    assert refusal == {"code": "pins_required", "data": {"missing": ["admin"]}}
    page.locator("#confirm-admin-key").click()
    # Then the compliance key, the same way: the server's own, shown for the user to see
    # that it is not the one IT published.
    shown = page.locator("#compliance-fingerprint")
    expect(shown).to_have_text(grouped(substitute.fingerprint))
    assert grouped(real["compliance"]) != shown.inner_text()
    expect(page.locator("#confirm-compliance-key")).to_be_visible()
    refusal = phone.refused("currentKey", ward.department)
    assert refusal == {"code": "pins_required", "data": {"missing": ["compliance"]}}
    pins = page.evaluate(
        "async () => { const k = await import('/app/js/keystore.js');"
        " return [await k.loadPin('admin'), await k.loadPin('compliance')]; }"
    )
    assert pins == [real["admin"], None]
    nothing_published(phone)
    phone.close()


def test_g_a_chain_under_the_servers_own_admin_key_is_refused(ward: Ward):
    fake_admin = IdentityKeyPair.generate()
    forged = chain_under(
        fake_admin, ward.department, ward.users["nurse_alice"], ward.identities["nurse_alice"]
    )

    def script(server: ScriptedServer) -> None:
        server.rewrite("GET", ward.path("/statements"), forged)
        server.rewrite(
            "GET", "/api/keys/institution", substitute_institution_key("admin", fake_admin)
        )

    phone = ward.fresh("nurse_alice", script)
    expect(phone.page.locator("[role=alert][data-code=admin_key_mismatch]")).to_be_visible()
    phone.open_thread()
    for message in ward.messages:
        expect(phone.entry(message)).to_have_attribute("data-code", "admin_key_mismatch")
    refusal = phone.refused("chain", ward.department)
    assert refusal["code"] == "admin_key_mismatch"
    assert refusal["data"]["server"] == fake_admin.fingerprint
    assert phone.send_refused("To the head the server made") == "admin_key_mismatch"
    nothing_published(phone)
    phone.close()


# --- the smaller rules -------------------------------------------------------------------------


def test_rule_another_key_under_a_versions_commitment_is_refused(ward: Ward):
    """A member who can sign hands Alice another key under version 2's commitment."""
    wraps = another_key_under_commitment(
        ward.room_keys[2], ward.identities["surgeon_bob"], ward.identities["nurse_alice"]
    )
    for wrap in wraps:
        phone = ward.fresh(
            "nurse_alice",
            lambda server, wrap=wrap: server.rewrite(
                "GET", ward.path("/keys"), hand_over_wrap(2, wrap)
            ),
        )
        phone.open_thread()
        expect(phone.entry(ward.messages[0]).locator(".text")).to_have_text(FIRST)
        expect(phone.entry(ward.messages[1])).to_have_attribute(
            "data-code", "key_commitment_mismatch"
        )
        assert phone.page.evaluate(
            "(d) => window.rounds.e2e.keys.roomKey(d, 2) === null", ward.department
        )
        nothing_published(phone)
        phone.close()


def listed(pair: IdentityKeyPair) -> dict[str, Any]:
    return {"identity": pair.public.to_dict(), "fingerprint": pair.fingerprint}


def listing_as(user: int, key: dict[str, Any]) -> Callable[[dict], dict]:
    """A /keys answer listing `user` with `key` ({identity, fingerprint})."""
    return substitute_member_key(user, key["identity"], key["fingerprint"])


def test_rule_a_non_canonical_x25519_key_is_refused_by_browser_and_server(ward: Ward):
    alice = ward.identities["nurse_alice"]
    spelled = non_canonical(alice)  # the same point, spelled with the top bit set
    carol = ward.device("head_carol")
    carol.server.rewrite(
        "GET",
        ward.path("/keys"),
        substitute_member_key(ward.users["nurse_alice"], spelled, alice.fingerprint),
    )
    carol.load("#/")
    expect(carol.page.get_by_role("heading", name="My departments")).to_be_visible()
    refusal = carol.refused(
        "attest",
        ward.department,
        ward.users["nurse_alice"],
        {"fingerprint": alice.fingerprint},
    )
    assert refusal["code"] == "invalid_key"
    nothing_published(carol)
    # The server refuses to publish it too (Alice's own browser, her session).
    answer = ward.device("nurse_alice").page.evaluate(
        """async (pub) => { const api = await import('/app/js/api.js');
          try { await api.put('/api/keys/identity', { public: pub, replace: true }); return null; }
          catch (error) { return error.code; } }""",
        spelled,
    )
    assert answer == "invalid_key"


def test_rule_a_weak_passphrase_protects_nothing(ward: Ward):
    """test_keys_browser.py refuses a passphrase below the floor and `Summer2024Summer`;
    these pass the floor or fall to zxcvbn's estimate the same way."""
    device = Device.open(ward, "nurse_karim")
    page = device.page
    workers: list[str] = []
    page.on("worker", lambda worker: workers.append(worker.url))
    sign_in(page, "nurse_karim")
    expect(page.get_by_role("button", name="Create my keys")).to_be_visible()
    alert = page.get_by_role("alert").first
    for weak in ("Password12345678", "qwertyuiop123456", "hospital hospital"):
        choose_passphrase(page, weak)
        expect(alert).to_have_attribute("data-code", "weak_passphrase")
        expect(alert).to_contain_text("This passphrase is too easy to guess.")
        expect(page.get_by_role("button", name="Create my keys")).to_be_enabled()
    # Nothing was made, published or stored.
    assert workers == []
    assert device.server.sent("PUT", "/api/keys/identity") == []
    assert device.server.sent("PUT", "/api/keys/backup") == []
    me = page.evaluate("() => window.rounds.state.user.id")
    assert device.context.request.get(f"/api/keys/identity/{me}").status == 404
    device.close()


def test_rule_a_head_signs_only_the_key_compared(ward: Ward):
    """Runs last: it admits Jules. "Sign new key" and "Admit and sign" show the key the
    server lists, to compare; a server showing another by the time it is signed gets
    nothing signed (fingerprint_mismatch), nor one showing another than compared."""
    alice, jules = ward.users["nurse_alice"], ward.users["intern_jules"]
    shown = {"key": listed(IdentityKeyPair.generate())}
    carol = ward.device("head_carol")
    page = carol.page
    carol.server.rewrite(
        "GET", ward.path("/keys"), lambda keys: listing_as(alice, shown["key"])(keys)
    )
    carol.load(f"#/d/{ward.department}/members")
    # The server lists another key for Alice: a "new key" to sign, after the comparison,
    # which shows that key's fingerprint, not the one Alice reads on her screen.
    row = page.locator("[data-member=nurse_alice]")
    expect(row).to_contain_text("New key: awaiting your signature")
    page.locator("[data-sign=nurse_alice]").click()
    dialog = page.get_by_role("dialog", name="Compare fingerprints")
    compared = dialog.locator("#compare-fingerprint")
    expect(compared).to_have_text(grouped(shown["key"]["fingerprint"]))
    assert compared.inner_text() != grouped(ward.identities["nurse_alice"].fingerprint)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert carol.server.sent("POST", ward.path("/statements")) == []
    # Compared, then the server shows yet another key when it is signed: nothing is.
    page.locator("[data-sign=nurse_alice]").click()
    expect(compared).to_have_text(grouped(shown["key"]["fingerprint"]))
    shown["key"] = listed(IdentityKeyPair.generate())
    dialog.get_by_role("button", name="It matches: sign").click()
    expect(page.locator("#members-error")).to_have_attribute("data-code", "fingerprint_mismatch")
    # The API, asked to sign the key Alice really has, or no fingerprint at all.
    refusal = carol.refused(
        "attest",
        ward.department,
        alice,
        {"fingerprint": ward.identities["nurse_alice"].fingerprint},
    )
    assert refusal["code"] == "fingerprint_mismatch"
    assert refusal["data"]["published"] == shown["key"]["fingerprint"]
    refusal = carol.refused("attest", ward.department, alice, {"fingerprint": "not a fingerprint"})
    assert refusal["code"] == "fingerprint_mismatch"
    assert carol.server.sent("POST", ward.path("/statements")) == []

    # "Admit and sign" a colleague found by name: the card shows the code of the key the
    # directory gives for Jules, compared with him; once he is admitted, the server lists
    # another key for him: nothing is signed, and the screen says he awaits a signature.
    substitute = IdentityKeyPair.generate()
    carol.server.honest()
    carol.server.rewrite("GET", ward.path("/keys"), listing_as(jules, listed(substitute)))
    page.get_by_label("Colleague's name").fill("jules")
    page.locator(f"[data-person='{jules}']").check()
    page.locator("#admit-chosen").click()
    card = page.get_by_role("dialog", name="Confirm admissions")
    real = grouped(ward.identities["intern_jules"].fingerprint)
    expect(card.locator(f"[data-code-for='{jules}']")).to_have_text(" ".join(real.split()[:6]))
    card.locator("#confirm-admit").click()
    expect(page.locator("#admit-error")).to_have_attribute("data-code", "fingerprint_mismatch")
    expect(page.locator("#admit-error")).to_contain_text("admission is not signed")
    assert carol.server.sent("POST", ward.path("/members")) == [
        {"user_id": jules, "role": "member"}
    ]
    expect(page.locator("[data-member=intern_jules]")).to_contain_text("Awaiting your signature")
    assert carol.server.sent("POST", ward.path("/statements")) == []


def test_the_scenarios_are_all_here():
    """Issue 11's table, A to G, and the smaller rules, each with its test above (a guard
    against losing one)."""
    names = {name for name in globals() if name.startswith("test_")}
    for letter in ("a", "a2", "b", "c", "d", "e", "f", "g"):
        assert any(name.startswith(f"test_{letter}_") for name in names), letter
    for rule in ("commitment", "non_canonical_x25519", "weak_passphrase", "signs_only_the_key"):
        assert any(name.startswith("test_rule_") and rule in name for name in names), rule
