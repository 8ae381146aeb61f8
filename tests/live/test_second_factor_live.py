"""The second factor on real daphne processes (two with Redis, as in CI on PostgreSQL +
Redis; one on SQLite), with ROUNDS_SECOND_FACTOR=privileged: Carol, a head, must set up
an authenticator app at her first sign-in on one process; on the other, the Python
client signs her in with its code and opens a socket; the same code is refused on the
first process (a code signs in once, whichever process sees it again); a passkey she
adds on one process signs her in alone on the other; and wrong codes typed on one
process lock her out on both (accounts/factors, docs/sign-in.md)."""

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator

import httpx
import pyotp
import pytest

from client.errors import RoundsClientError
from client.sdk import RoundsClient
from tests.live.cli import run_rounds
from tests.live.sdk import as_json, demo_pins, query
from tests.live.servers import DEMO_PASSWORD, LiveCluster, Server, live_cluster
from tests.support.authenticator import SoftAuthenticator
from tests.support.factors import code_at, wrong_code

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    processes = 2 if os.environ.get("REDIS_URL") else 1
    with live_cluster(processes, settings={"ROUNDS_SECOND_FACTOR": "privileged"}) as running:
        yield running


@contextlib.asynccontextmanager
async def device(server: Server) -> AsyncIterator[RoundsClient]:
    """A client on a device of its own, not signed in yet."""
    pins = demo_pins(server)
    with tempfile.TemporaryDirectory(prefix="rounds-device-") as state:
        client = RoundsClient(
            server.url,
            pinned_compliance_fingerprint=pins["compliance"],
            pinned_admin_fingerprint=pins["admin"],
            state_dir=state,
        )
        try:
            yield client
        finally:
            await client.aclose()


async def first_sign_in_with_an_app(server: Server) -> tuple[str, list[str]]:
    """Carol's first sign-in: the password, then an app set up to finish it."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        answer = await http.post(
            "/api/auth/login", json={"username": "head_carol", "password": DEMO_PASSWORD}
        )
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == "second_factor_setup_required"
        pending = answer.json()["data"]["pending"]
        setup = (await http.post("/api/auth/login/enrol/totp", json={"pending": pending})).json()
        done = await http.post(
            "/api/auth/login/enrol/totp/confirm",
            json={"pending": pending, "code": code_at(setup["secret"], -1)},
        )
        assert done.status_code == 200, done.text
        return setup["secret"], done.json()["backup_codes"]


async def test_a_second_factor_holds_across_processes(cluster):
    first, other = cluster.servers[0], cluster.servers[-1]
    secret, codes = await first_sign_in_with_an_app(first)
    assert len(codes) == 10

    code = pyotp.TOTP(secret).now()
    async with device(other) as carol:
        with pytest.raises(RoundsClientError) as refused:
            await carol.login("head_carol", DEMO_PASSWORD)
        assert refused.value.code == "second_factor_required"
        await carol.finish_login(refused.value.data["pending"], code)
        await carol.connect()
        await carol.request({"type": "ping"})

        # The same code, seen again by the other process, signs nobody in.
        async with device(first) as replay:
            with pytest.raises(RoundsClientError) as again:
                await replay.login("head_carol", DEMO_PASSWORD, code=code)
            assert again.value.code == "invalid_second_factor"

        phone = SoftAuthenticator(origin=f"http://localhost:{first.port}")
        added = await carol.add_passkey(phone.create, "Carol's phone")
        assert added["backup_codes"] == []  # she has hers from the app's set-up
        assert [p["name"] for p in (await carol.second_factors())["passkeys"]] == ["Carol's phone"]

    async with device(first) as with_passkey:
        await with_passkey.login_with_passkey(phone.get)
        await with_passkey.connect()
        await with_passkey.request({"type": "ping"})

    rows = query(
        cluster, "SELECT data FROM audit_auditevent WHERE action = 'auth.login' ORDER BY id"
    )
    assert [as_json(row[0]) for row in rows] == [
        {"factor": "totp"},
        {"factor": "totp"},
        {"factor": "passkey"},
    ]


def carols_secret(cluster: LiveCluster) -> str | None:
    rows = query(
        cluster,
        "SELECT secret FROM accounts_totpdevice t JOIN accounts_user u ON u.id = t.user_id "
        "WHERE u.username = 'head_carol'",
    )
    return rows[0][0] if rows else None


async def test_the_cli_asks_for_the_code(cluster):
    secret = carols_secret(cluster) or (await first_sign_in_with_an_app(cluster.servers[0]))[0]
    _, err = await run_rounds(cluster, "head_carol", "library", code=1)
    assert "ROUNDS_CODE" in err
    out, _ = await run_rounds(cluster, "head_carol", "library", ROUNDS_CODE=code_at(secret, 1))
    assert "error" not in out.lower()


async def test_wrong_codes_on_one_process_lock_out_on_the_other(cluster):
    first, other = cluster.servers[0], cluster.servers[-1]
    secret = carols_secret(cluster) or (await first_sign_in_with_an_app(first))[0]
    async with device(other) as guesser:
        found = []
        for _ in range(5):
            with pytest.raises(RoundsClientError) as refused:
                await guesser.login("head_carol", DEMO_PASSWORD, code=wrong_code(secret))
            found.append(refused.value.code)
        assert found == ["invalid_second_factor"] * 4 + ["locked_out"]
    async with device(first) as carol:
        with pytest.raises(RoundsClientError) as locked:
            await carol.login("head_carol", DEMO_PASSWORD, code=pyotp.TOTP(secret).now())
        assert locked.value.code == "locked_out"
