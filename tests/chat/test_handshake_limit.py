"""A bound on anonymous handshakes per client address (issue 17).

Each anonymous handshake made the server look a session or token up; nothing
bounded how many one address could open. Past ROUNDS_WS_FAILED_HANDSHAKES_PER_MINUTE
failures, an address's sockets are answered `rate_limited` and closed with 4429
without any lookup, until its bucket refills. Successful handshakes never count.
"""

import pytest

from chat.consumers import auth
from chat.consumers.limits import FailedHandshakes
from core import protocol
from tests.support.sockets import assert_closed, finish, open_socket, recv, token_for

pytestmark = pytest.mark.django_db(transaction=True)

PER_MINUTE = 3
ATTACKER = "198.51.100.7"
COLLEAGUE = "198.51.100.8"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(settings, monkeypatch) -> Clock:
    """A fresh limiter on a clock the test moves."""
    settings.ROUNDS_WS_FAILED_HANDSHAKES_PER_MINUTE = PER_MINUTE
    clock = Clock()
    monkeypatch.setattr(auth, "failed_handshakes", FailedHandshakes(clock=clock))
    return clock


@pytest.fixture
def lookups(monkeypatch) -> list[str | None]:
    """The tokens the handshakes looked up."""
    looked_up: list[str | None] = []
    resolve = auth.resolve_socket_auth

    def counted(token, auth_session_id, key):
        looked_up.append(token)
        return resolve(token, auth_session_id, key)

    monkeypatch.setattr(auth, "resolve_socket_auth", counted)
    return looked_up


async def handshake(token: str | None, address: str) -> int:
    """Open a socket from `address`; the code it is closed with (0: it is open)."""
    communicator = await open_socket(token)
    communicator.scope["client"] = (address, 40000)
    connected, _ = await communicator.connect()
    assert connected
    output = await communicator.receive_output(timeout=5)
    if output["type"] == "websocket.send" and '"hello"' in output["text"]:
        await communicator.disconnect()
        return 0
    if output["type"] == "websocket.send":  # the refusal's error frame, then the close
        assert '"rate_limited"' in output["text"], output
        output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    await finish(communicator)
    return output["code"]


async def test_an_address_failing_handshakes_is_closed_with_4429_without_a_lookup(
    live_hospital, clock, lookups
):
    codes = [await handshake("not-a-token", ATTACKER) for _ in range(PER_MINUTE + 2)]
    assert codes == [protocol.CLOSE_UNAUTHENTICATED] * PER_MINUTE + [protocol.CLOSE_FLOOD] * 2
    assert len(lookups) == PER_MINUTE  # the refused ones cost no database read


async def test_the_refusal_is_a_typed_error_frame(live_hospital, clock):
    for _ in range(PER_MINUTE):
        await handshake(None, ATTACKER)
    communicator = await open_socket(None)
    communicator.scope["client"] = (ATTACKER, 40001)
    assert (await communicator.connect())[0]
    error = await recv(communicator)
    assert (error["type"], error["id"], error["code"]) == ("error", None, "rate_limited")
    await assert_closed(communicator, protocol.CLOSE_FLOOD)
    await finish(communicator)


async def test_other_addresses_and_a_refilled_bucket_are_served(live_hospital, clock):
    token = await token_for(live_hospital.surgeon_bob)
    for _ in range(PER_MINUTE):
        await handshake(None, ATTACKER)
    assert await handshake(token, ATTACKER) == protocol.CLOSE_FLOOD
    assert await handshake(token, COLLEAGUE) == 0
    clock.now += 60 / PER_MINUTE  # one failure forgiven
    assert await handshake(token, ATTACKER) == 0


async def test_signed_in_handshakes_never_count(live_hospital, clock):
    """A ward behind one NAT address opens many sockets: only failures are counted."""
    token = await token_for(live_hospital.nurse_alice)
    for _ in range(PER_MINUTE * 3):
        assert await handshake(token, COLLEAGUE) == 0
    assert await handshake(None, COLLEAGUE) == protocol.CLOSE_UNAUTHENTICATED


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "/run/rounds.sock"])
async def test_loopback_and_unix_peers_are_not_counted(live_hospital, clock, address):
    """A local proxy without --proxy-headers: every client would share its address."""
    for _ in range(PER_MINUTE + 1):
        assert await handshake(None, address) == protocol.CLOSE_UNAUTHENTICATED


def test_the_limiter_forgets_addresses_once_it_tracks_too_many():
    clock = Clock()
    limiter = FailedHandshakes(clock=clock, tracked=2)
    limiter.failed("a", PER_MINUTE)
    limiter.failed("b", PER_MINUTE)
    clock.now += 60  # both refilled: forgotten when a third comes
    limiter.failed("c", PER_MINUTE)
    assert list(limiter.buckets) == ["c"]
    limiter.failed("d", PER_MINUTE)
    limiter.failed("e", PER_MINUTE)  # none refilled: the oldest goes
    assert list(limiter.buckets) == ["d", "e"]
