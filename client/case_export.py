"""`rounds compliance export`: a case written out as a bundle that verifies offline.

For each thread the case covers: the timeline checked and decrypted by
client/compliance.py (`threads/<id>/timeline.json`), the chain and the
envelopes as released, to check the signatures again (`released.json`), a
PDF transcript whose every page names the case and the patient
(`transcript.pdf`, then `transcript-2.pdf`… for a long thread), and the
decrypted photos of the messages that passed their checks (`photos/`). Then
the case's audit slice as released (`audit.json`), the case (`case.json`),
and `manifest.json`: every file's path, size and SHA-256, signed with the
institution's export signing key (`manifest.sig`). `rounds verify-export`
(client/verify_export.py) checks it with no server.

Files are written one at a time and hashed from disk, so a large case never
sits in memory whole (one photo at a time does, and one transcript volume:
client/export_pdf.py). A `.zip` bundle is built as
a folder beside it, then stored file by file, then the folder removed.

The signing key file is 64 hex digits, the 32-byte Ed25519 seed (the admin
and compliance key files hold 128: the private identity; this is a bare
signing key, not an identity). Its public half (64 hex digits) is what a
verifier pins, as `"export"` in the pins file (docs/compliance.md, Exports).
"""

import argparse
import contextlib
import hashlib
import json
import shutil
import sys
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nacl.signing
from reportlab import rl_config

from client import cases
from client.audit_slice import NotProved, check_proved_slice, pinned_checkpoint_key
from client.compliance import department_of, merge_pages, open_thread
from client.compliance_key import compliance_key
from client.errors import RoundsClientError
from client.export_pdf import write_transcript
from core.crypto import ChainHead, IdentityKeyPair

FORMAT = "rounds-case-export-v2"
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")

# What the bundle proves of the audit slice, written into the manifest so a reader of the
# bundle does not have to know this code (docs/compliance.md, Exports).
CHAIN_PROOF = {
    "built": True,
    "proves": "each entry of the slice is, exactly as shown, in the server's sealed audit "
    "chain at its place: its seal hash covers its record after the previous seal, and an "
    "inclusion path leads from that hash to the tree root a checkpoint signs, checked with "
    "the pinned checkpoint key; every entry names the case; each thread exported has its "
    "timeline release in the slice",
    "does_not_prove": "that the slice holds every entry naming the case (the server chose "
    "them; manage.py audit_verify --checkpoints checks the whole chain on the server), nor "
    "anything about the other entries of the chain, which the proof does not show",
}


def add_arguments(sub: Any) -> None:
    """`export`, on the `rounds compliance` subcommands."""
    export = sub.add_parser("export", help="write a case as a signed bundle (verify-export)")
    export.add_argument("case", type=int)
    export.add_argument("--key", type=Path, required=True, help="the compliance key file")
    export.add_argument(
        "--out", type=Path, required=True, help="the bundle: a new folder, or a .zip file"
    )
    export.add_argument(
        "--signing-key", type=Path, required=True, help="the export signing key file (64 hex)"
    )


def load_signing_key(path: Path) -> nacl.signing.SigningKey:
    """The export signing key: 64 hex digits (an Ed25519 seed), white space around allowed.

    Raises:
        RoundsClientError: `malformed_key_file`.
    """
    try:
        text = path.read_text(encoding="ascii").strip().lower()
    except (OSError, UnicodeDecodeError) as error:
        raise RoundsClientError("malformed_key_file", f"{path} cannot be read: {error}") from None
    if len(text) != 64 or not set(text) <= _HEX:
        raise RoundsClientError(
            "malformed_key_file", f"{path} is not an export signing key (64 hex digits)."
        )
    return nacl.signing.SigningKey(bytes.fromhex(text))


def file_digest(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def progress(line: str) -> None:
    print(f"rounds: export: {line}", file=sys.stderr, flush=True)


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def _target(out: Path) -> tuple[Path, Path | None]:
    """(the folder written, the zip to make of it or None); neither may exist already."""
    if out.exists():
        raise RoundsClientError("invalid_request", f"{out} exists already: name a new bundle.")
    if out.suffix.lower() == ".zip":
        folder = out.with_name(out.name + ".partial")
        if folder.exists():
            raise RoundsClientError("invalid_request", f"{folder} exists already.")
        return folder, out
    return out, None


async def export_case(args: argparse.Namespace, sign_in: Any, pins: Any) -> int:
    """Check both key files, then fetch, verify, decrypt and write the bundle."""
    signer = load_signing_key(args.signing_key)
    folder, archive = _target(args.out)
    with compliance_key(args.key, pins.compliance) as key:
        client = await sign_in(args)
        try:
            case = next((c for c in await cases.list_cases(client) if c["id"] == args.case), None)
            if case is None:
                raise RoundsClientError("not_found", f"No case {args.case} of yours.")
            folder.mkdir(parents=True)
            _write_json(folder / "case.json", case)
            listed = (await cases.case_threads(client, args.case))["threads"]
            failed = 0
            for thread in reversed(listed):  # oldest first
                failed += await _export_thread(client, case, thread["id"], key, pins, folder)
            slice_ = await client.call("POST", f"{cases.CASES}/{args.case}/audit/proof")
        finally:
            await client.aclose()
    checkpoint = _proved(slice_, case["id"], args.pins_file)
    _write_json(folder / "audit.json", slice_)
    progress(
        f"audit slice: {len(slice_.get('entries') or [])} entries, proved to the checkpoint "
        f"at seal {checkpoint['seq']}"
    )
    manifest = write_manifest(folder, case, signer, checkpoint)
    if archive is not None:
        _zip(folder, archive)
    print(
        f"{args.out}: case {case['reference']}, {len(listed)} thread(s), "
        f"{len(manifest['files'])} file(s) signed by {manifest['signing_key']}"
    )
    return 3 if failed else 0


async def _export_thread(
    client: Any, case: dict[str, Any], thread: int, key: IdentityKeyPair, pins: Any, folder: Path
) -> int:
    """One thread's timeline, photos and transcript; the number of messages that failed."""
    pages = await cases.timeline_pages(client, case["id"], thread)
    department = department_of(pages)
    review, bodies = open_thread(pages, key, pins.admin, client.trust.head(department))
    client.trust.keep_head(department, ChainHead(**review["chain"]["head"]))
    where = folder / "threads" / str(thread)
    progress(f"thread {thread}: {len(review['messages'])} message(s)")
    for message in review["messages"]:
        body = bodies.get(message["id"]) or {}
        for entry, shown in zip(body.get("photos") or [], message["photos"], strict=False):
            suffix = {"image/png": ".png"}.get(str(entry.get("media_type")), ".jpg")
            name = f"photos/photo-{shown['attachment'] or entry['upload']}{suffix}"
            (where / "photos").mkdir(parents=True, exist_ok=True)
            await client.download_photo(entry, case=case["id"], out=where / name)
            shown["file"] = name
            progress(f"thread {thread}: {name}")
    _write_json(where / "timeline.json", review)
    _write_json(where / "released.json", released(pages))
    with binary_pdf_streams():
        volumes = write_transcript(where, case, review)
    if len(volumes) > 1:
        progress(f"thread {thread}: transcript in {len(volumes)} volumes")
    return int(review["failed"])


@contextlib.contextmanager
def binary_pdf_streams() -> Iterator[None]:
    """reportlab writing image streams as they are, not ASCII85-encoded, for the block.

    reportlab encodes every stream in ASCII85 by default, in pure Python unless its
    separate accelerator package (rl_accel) is installed, which Rounds does not require:
    in a thread of 2,500 messages and 125 photos of 0.9 MB that took 29 of a 40 s
    export, and the encoded text, a quarter larger than the JPEGs, was held until the
    PDF was saved (bench/compliance.py, docs/performance.md). A PDF stream may be
    binary: each JPEG goes in unchanged (DCTDecode). The setting is reportlab's global
    one, so it is put back afterwards.
    """
    before = rl_config.useA85
    rl_config.useA85 = 0
    try:
        yield
    finally:
        rl_config.useA85 = before


def released(pages: list[dict[str, Any]]) -> dict[str, Any]:
    """What verify-export needs to check the signatures again offline: the department's
    signed chain (the last page's, the one the review verified) and each message's envelope
    as released; ciphertext only, nothing decrypted."""
    page = merge_pages(pages)
    return {
        "thread": {"id": page["thread"]["id"]},
        "department": {"id": page["department"]["id"], "chain": page["department"]["chain"]},
        "messages": [
            {
                "id": m.get("id"),
                "seq": m.get("seq"),
                "sender": {"id": (m.get("sender") or {}).get("id")},
                "client_msg_id": m.get("client_msg_id"),
                "envelope": m.get("envelope"),
            }
            for m in page["messages"]
        ],
    }


def _proved(slice_: dict[str, Any], case: int, pins_file: Path | None) -> dict[str, Any]:
    """The slice checked against its proof before anything is signed; the checkpoint's
    signature too when its key is pinned (verify-export always asks for it)."""
    try:
        key = pinned_checkpoint_key(None, pins_file)
    except RoundsClientError:
        key = None
    try:
        return check_proved_slice(slice_, case, key)
    except NotProved as error:
        raise RoundsClientError(
            "export_mismatch", f"the server's audit slice is not proved: {error}"
        ) from None


def write_manifest(
    folder: Path,
    case: dict[str, Any],
    signer: nacl.signing.SigningKey,
    checkpoint: dict[str, Any],
) -> dict[str, Any]:
    """Hash every file of the folder (from disk), write the manifest and its signature."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        size, sha256 = file_digest(path)
        files.append({"path": path.relative_to(folder).as_posix(), "size": size, "sha256": sha256})
    manifest = {
        "format": FORMAT,
        "case": case["id"],
        "reference": case["reference"],
        "created_at": datetime.now(UTC).isoformat(),
        "signing_key": signer.verify_key.encode().hex(),
        "chain_proof": {
            **CHAIN_PROOF,
            "checkpoint": {k: checkpoint[k] for k in ("seq", "root", "key", "at")},
        },
        "files": files,
    }
    raw = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"
    (folder / MANIFEST).write_bytes(raw)
    (folder / SIGNATURE).write_text(signer.sign(raw).signature.hex() + "\n")
    return manifest


def _zip(folder: Path, archive: Path) -> None:
    """The folder stored file by file (photos are compressed already), then removed."""
    with zipfile.ZipFile(archive, "x", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            bundle.write(path, path.relative_to(folder).as_posix())
    shutil.rmtree(folder)
