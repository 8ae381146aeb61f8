"""`rounds compliance export` and `rounds verify-export` on a real daphne process.

The ward of tests/client/support.py (a thread with a redacted note and a
photo, another with two notes); compliance_dan opens a case on the patient
and exports it with the demo compliance key and an export signing key of
the institution's. The bundle verifies; then each refusal on its own copy:
a file altered, removed or added, the manifest altered, another signing
key pinned, a forged audit entry, a forged message signature — each named
by verify-export, exit 1. Last, a message the server altered: exported
marked (exit 3), and the bundle still verifies.
"""

import asyncio
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from PIL import Image

from client.case_export import MANIFEST, SIGNATURE, write_manifest
from core.crypto.audit_proof import canonical_record, chain_hash
from tests.client.support import CAPTION, NOTE, REASON, alter, make_ward, open_case
from tests.live.cli import run_rounds
from tests.live.sdk import query
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

SIGNER = nacl.signing.SigningKey(bytes(range(32)))
PUBLIC = SIGNER.verify_key.encode().hex()


@pytest.fixture(scope="module")
def exported(cluster: LiveCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The case exported once, as a folder and as a zip."""
    ward = asyncio.run(make_ward(cluster))
    root = tmp_path_factory.mktemp("export")
    signing_key = root / "export.key"
    signing_key.write_text(SIGNER.encode().hex() + "\n")
    key_file = str(cluster.root / "var" / "demo-keys" / "compliance.key")

    async def export() -> tuple[int, str, str, str]:
        case = await open_case(cluster, "LIVE-EXPORT", "--ipp", ward["ipp"])
        runs = []
        for out in (root / "bundle", root / "bundle.zip"):
            command = ("compliance", "export", str(case), "--key", key_file, "--out", str(out))
            runs.append(
                await run_rounds(
                    cluster, "compliance_dan", *command, "--signing-key", str(signing_key)
                )
            )
        (out, err), _ = runs
        return case, out, err, ward["ipp"]

    case, out, err, ipp = asyncio.run(export())
    return {
        "case": case,
        "out": out,
        "err": err,
        "ipp": ipp,
        "ward": ward,
        "folder": root / "bundle",
        "zip": root / "bundle.zip",
    }


def checkpoint_public_key(cluster: LiveCluster) -> str:
    """The public half of the cluster's audit checkpoint key, as its DPO recorded it."""
    seed = (cluster.root / "var" / "audit-checkpoint.key").read_text().strip()
    return nacl.signing.SigningKey(bytes.fromhex(seed)).verify_key.encode().hex()


async def verify(
    cluster: LiveCluster,
    bundle: Path,
    *,
    code: int = 0,
    key: str = PUBLIC,
    checkpoint_key: str | None = None,
    **env: str,
) -> str:
    pinned = (
        ()
        if checkpoint_key == ""
        else ("--checkpoint-public-key", checkpoint_key or checkpoint_public_key(cluster))
    )
    out, err = await run_rounds(
        cluster, "compliance_dan", "verify-export", str(bundle), "--signing-public-key", key,
        *pinned, code=code, **env,
    )  # fmt: skip
    return out if code == 0 else err


def copy(exported: dict[str, Any], tmp_path: Path) -> Path:
    folder = tmp_path / "bundle"
    shutil.copytree(exported["folder"], folder)
    return folder


def sign_again(folder: Path) -> None:
    """What an exporter fed forged data would do: sign what it wrote, with the right key."""
    case = json.loads((folder / "case.json").read_text())
    checkpoint = json.loads((folder / MANIFEST).read_text())["chain_proof"]["checkpoint"]
    (folder / MANIFEST).unlink()
    (folder / SIGNATURE).unlink()
    write_manifest(folder, case, SIGNER, checkpoint)


async def test_a_case_with_a_photo_and_a_redaction_exports_and_verifies(
    cluster: LiveCluster, exported: dict[str, Any]
):
    folder, ward = exported["folder"], exported["ward"]
    assert "rounds: export: thread" in exported["err"] and "photos/photo-" in exported["err"]
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["signing_key"] == PUBLIC and manifest["reference"] == "LIVE-EXPORT"
    assert manifest["chain_proof"]["built"] is True
    audit = json.loads((folder / "audit.json").read_text())
    assert manifest["chain_proof"]["checkpoint"]["seq"] == audit["checkpoint"]["seq"]
    assert audit["checkpoint"]["key"] == checkpoint_public_key(cluster)
    assert all(e["path"] and e["record"]["id"] == e["id"] for e in audit["entries"])
    paths = {f["path"] for f in manifest["files"]}
    thread = f"threads/{ward['thread']}"
    assert {"case.json", "audit.json", f"{thread}/timeline.json", f"{thread}/transcript.pdf"} <= (
        paths
    )
    assert f"threads/{ward['other']}/timeline.json" in paths

    review = json.loads((folder / thread / "timeline.json").read_text())
    note, pictured = review["messages"]
    assert note["text"] == NOTE and note["redacted"]["reason"] == REASON
    assert pictured["text"] == CAPTION and [p["keywords"] for p in pictured["photos"]] == [["hand"]]
    (photo,) = pictured["photos"]
    assert Image.open(folder / thread / photo["file"]).size == (64, 48)
    assert [s["user"]["id"] for s in pictured["seen_by"]] == [ward["alice"]]

    pdf = (folder / thread / "transcript.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert b"Case LIVE-EXPORT" in pdf and f"IPP {exported['ipp']}".encode() in pdf
    assert pdf.count(b"Case LIVE-EXPORT") >= pdf.count(b"/Type /Page\n") >= 1
    assert REASON.encode() in pdf

    audit = json.loads((folder / "audit.json").read_text())
    assert {e["data"].get("thread_id") for e in audit["entries"]} >= {ward["thread"]}

    assert (await verify(cluster, folder)).startswith("export ok: case LIVE-EXPORT")
    assert (await verify(cluster, exported["zip"])).startswith("export ok: case LIVE-EXPORT")
    with zipfile.ZipFile(exported["zip"]) as bundle:
        assert set(bundle.namelist()) == paths | {MANIFEST, SIGNATURE}


async def test_a_file_altered_is_named(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    folder = copy(exported, tmp_path)
    timeline = folder / "threads" / str(exported["ward"]["thread"]) / "timeline.json"
    timeline.write_text(timeline.read_text().replace(NOTE, NOTE.upper()))
    err = await verify(cluster, folder, code=1)
    assert f"export_mismatch: threads/{exported['ward']['thread']}/timeline.json: SHA-256" in err


async def test_a_file_removed_is_named(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    folder = copy(exported, tmp_path)
    (photo,) = (folder / "threads" / str(exported["ward"]["thread"]) / "photos").iterdir()
    photo.unlink()
    err = await verify(cluster, folder, code=1)
    assert f"{photo.relative_to(folder).as_posix()}: listed in the manifest, missing" in err


async def test_a_file_added_is_named(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    folder = copy(exported, tmp_path)
    (folder / "threads" / "note.txt").write_text("added later")
    err = await verify(cluster, folder, code=1)
    assert "threads/note.txt: in the bundle, not in the manifest" in err


async def test_the_manifest_altered_is_named(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    folder = copy(exported, tmp_path)
    manifest = (folder / MANIFEST).read_text()
    (folder / MANIFEST).write_text(manifest.replace("LIVE-EXPORT", "LIVE-EXPORTED"))
    err = await verify(cluster, folder, code=1)
    assert "manifest.sig: the manifest's signature does not verify with the pinned" in err


async def test_a_wrong_signing_key_is_named(cluster: LiveCluster, exported: dict[str, Any]):
    other = nacl.signing.SigningKey(bytes(32)).verify_key.encode().hex()
    err = await verify(cluster, exported["zip"], code=1, key=other)
    assert f"does not verify with the pinned export key {other}" in err


def forge_audit(folder: Path, change: Any) -> dict[str, Any]:
    """Change audit.json with `change(audit)` and sign the bundle again; the audit."""
    audit = json.loads((folder / "audit.json").read_text())
    change(audit)
    (folder / "audit.json").write_text(json.dumps(audit))
    sign_again(folder)
    return audit


async def test_a_forged_audit_entry_is_named_even_in_a_bundle_signed_again(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    """An entry shown otherwise than its seal covers, its record changed too, its seal
    recomputed too: each named, in a bundle signed again with the right key."""
    first = json.loads((exported["folder"] / "audit.json").read_text())["entries"][0]
    where = f"audit.json: entry {first['id']}"

    def shown(audit):
        audit["entries"][0]["action"] = "case.closed"

    def recorded(audit):
        for part in (audit["entries"][0], audit["entries"][0]["record"]):
            part["action"] = "case.closed"

    def resealed(audit):
        recorded(audit)
        entry = audit["entries"][0]
        raw = canonical_record(entry["record"])
        entry["seal"]["hash"] = chain_hash(entry["seal"]["seq"], entry["seal"]["prev_hash"], raw)

    expected = {
        shown: f"{where}: the slice shows other fields than its seal covers",
        recorded: f"{where}: seal {first['seal']['seq']} does not cover the record",
        resealed: f"{where}: seal {first['seal']['seq']} is not in the tree the checkpoint",
    }
    for n, (change, message) in enumerate(expected.items()):
        folder = copy(exported, tmp_path / str(n))
        forge_audit(folder, change)
        assert message in await verify(cluster, folder, code=1)


async def test_an_entry_shown_twice_or_a_forged_checkpoint_is_named(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    def twice(audit):
        audit["entries"].insert(1, audit["entries"][0])

    folder = copy(exported, tmp_path / "twice")
    first = forge_audit(folder, twice)["entries"][0]["id"]
    assert f"audit.json: entry {first} is not after entry {first}" in await verify(
        cluster, folder, code=1
    )

    def rooted(audit):
        audit["checkpoint"]["root"] = "0" * 64

    folder = copy(exported, tmp_path / "rooted")
    forge_audit(folder, rooted)
    err = await verify(cluster, folder, code=1)
    assert "does not verify with the pinned checkpoint key" in err


async def test_the_checkpoint_key_must_be_pinned_and_be_the_one(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    pinned = json.loads((cluster.root / "var" / "institution.json").read_text())
    assert pinned["audit_checkpoint"] == checkpoint_public_key(cluster)  # the demo pins it
    assert (await verify(cluster, exported["zip"], checkpoint_key="")).startswith("export ok")
    without = tmp_path / "pins.json"
    del pinned["audit_checkpoint"]
    without.write_text(json.dumps(pinned))
    err = await verify(
        cluster, exported["zip"], code=1, checkpoint_key="", ROUNDS_PINS_FILE=str(without)
    )
    assert "pins_required" in err and "audit checkpoint public key" in err
    other = nacl.signing.SigningKey(bytes(32)).verify_key.encode().hex()
    err = await verify(cluster, exported["zip"], code=1, checkpoint_key=other)
    assert f"does not verify with the pinned checkpoint key {other}" in err


async def test_a_thread_released_without_its_entry_is_named(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    folder = copy(exported, tmp_path)
    thread = exported["ward"]["thread"]
    audit = json.loads((folder / "audit.json").read_text())
    audit["entries"] = [e for e in audit["entries"] if e["data"].get("thread_id") != thread]
    (folder / "audit.json").write_text(json.dumps(audit))
    sign_again(folder)
    err = await verify(cluster, folder, code=1)
    assert f"audit.json: no timeline release of thread {thread} in the slice" in err


async def test_a_forged_message_signature_is_named_even_in_a_bundle_signed_again(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    folder = copy(exported, tmp_path)
    thread = folder / "threads" / str(exported["ward"]["thread"])
    released = json.loads((thread / "released.json").read_text())
    header = released["messages"][1]["envelope"]["header"]
    signature = header["sig"]
    header["sig"] = ("B" if signature[5] != "B" else "C").join((signature[:5], signature[6:]))
    (thread / "released.json").write_text(json.dumps(released))
    sign_again(folder)
    err = await verify(cluster, folder, code=1)
    message = released["messages"][1]["id"]
    assert f"released.json: message {message} is recorded as verified, but bad_signature" in err


async def test_a_message_the_server_altered_is_exported_marked_and_the_bundle_verifies(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    """Exit 3 on export, as `read`; the failure is recorded, not hidden, and holds together."""
    ward = exported["ward"]
    (stored,) = query(
        cluster, "SELECT ciphertext FROM chat_message WHERE id = ?", (ward["altered"],)
    )
    ciphertext = list(stored[0])
    ciphertext[8] = "B" if ciphertext[8] != "B" else "C"
    alter(cluster, "".join(ciphertext), ward["altered"])
    signing_key = tmp_path / "export.key"
    signing_key.write_text(SIGNER.encode().hex())
    out = tmp_path / "altered"
    key_file = str(cluster.root / "var" / "demo-keys" / "compliance.key")
    command = ("compliance", "export", str(exported["case"]), "--key", key_file, "--out", str(out))
    await run_rounds(cluster, "compliance_dan", *command, "--signing-key", str(signing_key), code=3)
    review = json.loads((out / "threads" / str(ward["other"]) / "timeline.json").read_text())
    assert review["failed"] == 1
    (failed,) = [m for m in review["messages"] if not m["check"]["ok"]]
    assert failed["id"] == ward["altered"] and failed["text"] is None
    assert (await verify(cluster, out)).startswith("export ok")


async def test_a_signed_bundle_that_is_not_shaped_as_an_export_is_a_mismatch_not_a_crash(
    cluster: LiveCluster, exported: dict[str, Any], tmp_path: Path
):
    """Signed with the right key, yet its audit slice is a list: named, exit 1, no traceback."""
    folder = copy(exported, tmp_path)
    (folder / "audit.json").write_text(json.dumps([{"entries": "not a list of entries"}]))
    sign_again(folder)
    err = await verify(cluster, folder, code=1)
    assert "audit.json: not shaped as an export (" in err
    assert "Traceback" not in err
