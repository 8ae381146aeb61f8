"""`rounds compliance` on a real daphne process: a case opened, its conversation read offline.

The ward, through the SDK as clinicians' devices make it: the demo admin
key appoints head_carol, who signs Bob's and Alice's admissions; in a thread
on a demo patient Bob writes a note and redacts it with a reason, Alice
posts a photo (keywords, consent) and reads both. In a second thread of the
same patient Bob writes two notes; the test then alters the second one in
the database, as a server could.

compliance_dan then works from the terminal only, holding the demo's
compliance key file (seed_demo writes it under the cluster's var/demo-keys/):
he opens a case by IPP and reads it. Then the refusals, each on its own:
a key file that is not the pinned compliance key, a chain not rooted in the
pinned admin key, a closed case, no case.
"""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from core.crypto import IdentityKeyPair
from tests.client.support import CAPTION, NOTE, REASON, alter, make_ward, open_case
from tests.live.cli import run_rounds
from tests.live.sdk import as_json, query
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def ward(cluster: LiveCluster) -> dict[str, Any]:
    return asyncio.run(make_ward(cluster))


@pytest.fixture(scope="module")
def key_file(cluster: LiveCluster) -> str:
    return str(cluster.root / "var" / "demo-keys" / "compliance.key")


def released(cluster: LiveCluster) -> int:
    return query(cluster, "SELECT COUNT(*) FROM audit_auditevent WHERE action = 'case.released'")[
        0
    ][0]


async def test_a_conversation_with_a_photo_and_a_redaction_read_from_the_terminal(
    cluster: LiveCluster, ward: dict, key_file: str, tmp_path: Path
):
    case = await open_case(cluster, "LIVE-1", "--ipp", ward["ipp"])
    out, _ = await run_rounds(cluster, "compliance_dan", "compliance", "cases")
    assert f"{case}  LIVE-1  opened by compliance_dan" in out and "(open)" in out

    read = ("compliance", "read", str(case), "--key", key_file, "--thread", str(ward["thread"]))
    out, _ = await run_rounds(cluster, "compliance_dan", *read)
    assert "Membership chain: verified from the pinned admin key" in out
    assert f"IPP {ward['ipp']}" in out
    assert NOTE in out and CAPTION in out
    assert "REDACTED" in out and f"by surgeon_bob (sender): {REASON}" in out
    assert "keywords hand; consent teaching" in out
    assert "seen by nurse_alice" in out
    assert out.count("[signature ok]") == 2 and "every check passed" in out
    assert "membership #" not in out.split("Members at the first message")[0]

    folder = tmp_path / "photos"
    out, _ = await run_rounds(cluster, "compliance_dan", *read, "--photos", str(folder))
    (saved,) = folder.iterdir()
    assert f"saved as {saved}" in out
    assert Image.open(saved).size == (64, 48)  # decrypted: the JPEG Alice posted

    out, _ = await run_rounds(cluster, "compliance_dan", *read, "--json")
    (review,) = json.loads(out)["threads"]
    note, pictured = review["messages"]
    assert (note["id"], note["text"], note["check"]) == (ward["note"], NOTE, {"ok": True})
    assert note["redacted"]["reason"] == REASON and note["redacted"]["right"] == "sender"
    assert [p["keywords"] for p in pictured["photos"]] == [["hand"]]
    assert [s["user"]["id"] for s in pictured["seen_by"]] == [ward["alice"]]
    assert [v["check"] for v in review["key_versions"]] == [{"ok": True}]
    assert {s["change"] for s in review["statements"]} == {"admit"}

    # The photo library under the case, without free text.
    out, _ = await run_rounds(
        cluster, "compliance_dan", "library", "--case", str(case), "--patient-ipp", ward["ipp"]
    )
    assert "hand" in out and "teaching" in out
    # The patient's photo report, decrypted with the compliance key, audited under the case.
    report = tmp_path / "report.pdf"
    out, _ = await run_rounds(
        cluster, "compliance_dan", "report", "--case", str(case), "--key", key_file,
        "--patient", ward["ipp"], "--out", str(report),
    )  # fmt: skip
    assert out.startswith(f"{report}: 1 photo(s) of IPP {ward['ipp']}")
    assert report.read_bytes().startswith(b"%PDF-")
    [(data,)] = query(
        cluster, "SELECT data FROM audit_auditevent WHERE action = 'report.generated'"
    )
    assert as_json(data)["case"] == case


async def test_a_tampered_envelope_is_reported_not_hidden(
    cluster: LiveCluster, ward: dict, key_file: str
):
    case = await open_case(cluster, "LIVE-2", "--ipp", ward["ipp"])
    (stored,) = query(
        cluster, "SELECT ciphertext FROM chat_message WHERE id = ?", (ward["altered"],)
    )
    ciphertext = list(stored[0])
    ciphertext[8] = "B" if ciphertext[8] != "B" else "C"
    alter(cluster, "".join(ciphertext), ward["altered"])
    read = ("compliance", "read", str(case), "--key", key_file)
    out, _ = await run_rounds(cluster, "compliance_dan", *read, code=3)
    assert "Dressing changed at 14:00" in out  # the untouched message of that thread
    assert "CHECK FAILED: bad_signature" in out and "1 FAILED their check" in out
    assert "altered later" not in out
    assert NOTE in out  # the other thread of the case reads as before
    out, _ = await run_rounds(cluster, "compliance_dan", *read, "--json", code=3)
    messages = {m["id"]: m for r in json.loads(out)["threads"] for m in r["messages"]}
    assert messages[ward["altered"]]["check"]["code"] == "bad_signature"
    assert messages[ward["altered"]]["text"] is None


async def test_a_key_file_other_than_the_pinned_compliance_key_is_refused_before_any_release(
    cluster: LiveCluster, ward: dict, tmp_path: Path
):
    case = await open_case(cluster, "LIVE-3", "--ipp", ward["ipp"])
    other = tmp_path / "other.key"
    other.write_text(IdentityKeyPair.generate().to_bytes().hex())
    before = released(cluster)
    out, err = await run_rounds(
        cluster, "compliance_dan", "compliance", "read", str(case), "--key", str(other), code=1
    )
    assert out == "" and err.startswith("rounds: error: not_the_compliance_key: ")
    assert err.count("\n") == 1
    assert released(cluster) == before  # nothing was asked of the server


async def test_a_chain_not_rooted_in_the_pinned_admin_key_fails_closed(
    cluster: LiveCluster, ward: dict, key_file: str
):
    case = await open_case(cluster, "LIVE-4", "--ipp", ward["ipp"])
    elsewhere = IdentityKeyPair.generate().fingerprint
    out, err = await run_rounds(
        cluster, "compliance_dan", "compliance", "read", str(case), "--key", key_file,
        code=1, ROUNDS_ADMIN_FINGERPRINT=elsewhere,
    )  # fmt: skip
    assert out == "" and err.startswith("rounds: error: admin_key_mismatch: ")


async def test_a_closed_case_releases_nothing(cluster: LiveCluster, ward: dict, key_file: str):
    case = await open_case(cluster, "LIVE-5", "--ipp", ward["ipp"])
    _, err = await run_rounds(cluster, "compliance_dan", "compliance", "approve", str(case), code=1)
    assert err.startswith("rounds: error: forbidden: ")  # not by the officer who opened it
    out, _ = await run_rounds(cluster, "compliance_dan", "compliance", "close", str(case))
    assert out.startswith(f"closed case {case}  LIVE-5") and "(closed)" in out
    for args in (
        ("compliance", "read", str(case), "--key", key_file),
        ("library", "--case", str(case)),
    ):
        out, err = await run_rounds(cluster, "compliance_dan", *args, code=1)
        assert out == "" and err.startswith("rounds: error: case_closed: "), err


async def test_no_case_no_release(cluster: LiveCluster, ward: dict, key_file: str):
    _, err = await run_rounds(
        cluster, "compliance_dan", "compliance", "read", "987654", "--key", key_file, code=1
    )
    assert err.startswith("rounds: error: not_found: ")
    _, err = await run_rounds(cluster, "compliance_dan", "library", code=1)
    assert err.startswith("rounds: error: invalid_request: ")
    # Another officer's case is no case of theirs.
    case = await open_case(cluster, "LIVE-6", "--ipp", ward["ipp"])
    _, err = await run_rounds(
        cluster, "compliance_eve", "compliance", "read", str(case), "--key", key_file, code=1
    )
    assert err.startswith("rounds: error: not_found: ")
