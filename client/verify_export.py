"""`rounds verify-export BUNDLE`: a case export checked offline, first mismatch named.

In order, stopping at the first thing that does not match:
1. `manifest.json` and `manifest.sig` are there, and the signature verifies with
   the PINNED export public key (`--signing-public-key`, `ROUNDS_EXPORT_PUBLIC_KEY`
   or `"export"` in the pins file), never the key the manifest names;
2. no file is missing, none is extra, and every file has its size and SHA-256;
3. each thread's timeline.json records a check for every message, its count of
   failed checks is the one recorded, and the photo files it names are in the bundle;
   its released.json chain replays from the PINNED admin key, it holds the same
   messages, and every message recorded as verified has an envelope whose signature
   verifies with the key the chain admitted for its sender, made for this thread;
4. the audit slice: its checkpoint verifies with the PINNED checkpoint key
   (`--checkpoint-public-key`, ROUNDS_AUDIT_CHECKPOINT_PUBLIC_KEY or
   `"audit_checkpoint"` in the pins file) and is the one the manifest names; every
   entry names the case, its seal covers its record, and its inclusion path leads to
   the checkpoint's root (client/audit_slice.py); ids and seals strictly increase, and
   each exported thread has its `timeline` release in the slice. What this does not
   prove is written in the manifest (`chain_proof`) and in docs/compliance.md.

Files are hashed in chunks from the folder or the zip: nothing is held whole.
"""

import argparse
import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import nacl.exceptions
import nacl.signing

from client import pins
from client.audit_slice import ENV, PIN, NotProved, check_proved_slice, pinned_checkpoint_key
from client.case_export import CHUNK, FORMAT, MANIFEST, SIGNATURE
from client.errors import RoundsClientError
from client.membership import verify_listing
from client.pins import resolve_pins
from core.crypto import CryptoError, MembershipChain, verify_envelope_in_chain

MAX_MANIFEST = 64 << 20


class Mismatch(RoundsClientError):
    """The first thing in the bundle that does not match; its message names it."""

    def __init__(self, message: str) -> None:
        super().__init__("export_mismatch", message)


def add_command(commands: Any) -> None:
    verify = commands.add_parser("verify-export", help="check a case export offline")
    verify.add_argument("bundle", type=Path, help="the bundle's folder or .zip")
    verify.add_argument(
        "--signing-public-key",
        default=os.environ.get("ROUNDS_EXPORT_PUBLIC_KEY"),
        help='the export key\'s public half, 64 hex (else "export" in the pins file)',
    )
    verify.add_argument(
        "--checkpoint-public-key",
        default=None,
        help=f"the audit checkpoint key's public half, 64 hex (else ${ENV}, else "
        f'"{PIN}" in the pins file)',
    )


class Bundle:
    """A folder or a zip, read the same way: names, and files opened for streaming."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise Mismatch(f"{path} is neither a folder nor a zip file") from None
        elif not path.is_dir():
            raise RoundsClientError("not_found", f"No bundle at {path}.")

    def names(self) -> set[str]:
        if self.zip is not None:
            return {i.filename for i in self.zip.infolist() if not i.is_dir()}
        return {p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()}

    def open(self, name: str) -> IO[bytes]:
        if self.zip is not None:
            return self.zip.open(name)
        return (self.path / name).open("rb")

    def read(self, name: str, limit: int = MAX_MANIFEST) -> bytes:
        with self.open(name) as file:
            data = file.read(limit + 1)
        if len(data) > limit:
            raise Mismatch(f"{name} is larger than any this tool reads whole")
        return data

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError:
            raise Mismatch(f"{name} is not JSON") from None

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def pinned_public_key(given: str | None, pins_file: Path | None) -> bytes:
    """The export public key from the option/environment, else the pins file's `export`."""
    return pins.pinned_public_key(
        given,
        pins_file,
        pin="export",
        what="export",
        option="--signing-public-key",
        env="ROUNDS_EXPORT_PUBLIC_KEY",
    )


def verify_bundle(
    path: Path, public_key: bytes, pinned_admin: str, checkpoint_key: bytes, say: Any = None
) -> dict[str, Any]:
    """Check the bundle at `path`; the manifest if it all matches.

    Raises:
        Mismatch: the first thing that does not match, named.
    """
    bundle = Bundle(path)
    stage = MANIFEST
    try:
        manifest = _signed_manifest(bundle, public_key)
        stage = "the files"
        _files(bundle, manifest, say)
        stage = "the timelines"
        threads = _timelines(bundle, manifest, pinned_admin)
        stage = "audit.json"
        _audit(bundle, manifest, threads, checkpoint_key)
        return manifest
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        # A bundle can be signed with the right key and still not be an export (a
        # field missing, a list where an object goes): a mismatch, not a crash.
        raise Mismatch(
            f"{stage}: not shaped as an export ({type(error).__name__}: {error})"
        ) from None
    finally:
        bundle.close()


def _signed_manifest(bundle: Bundle, public_key: bytes) -> dict[str, Any]:
    names = bundle.names()
    for name in (MANIFEST, SIGNATURE):
        if name not in names:
            raise Mismatch(f"{name} is missing")
    raw = bundle.read(MANIFEST)
    try:
        signature = bytes.fromhex(bundle.read(SIGNATURE, 1024).decode("ascii").strip())
        nacl.signing.VerifyKey(public_key).verify(raw, signature)
    except (ValueError, nacl.exceptions.BadSignatureError):
        raise Mismatch(
            f"{SIGNATURE}: the manifest's signature does not verify with the pinned export key "
            f"{public_key.hex()} (manifest altered, or signed by another key)"
        ) from None
    manifest: dict[str, Any] = json.loads(raw)
    if manifest.get("format") != FORMAT:
        raise Mismatch(f"{MANIFEST}: format {manifest.get('format')!r}, not {FORMAT}")
    return manifest


def _files(bundle: Bundle, manifest: dict[str, Any], say: Any) -> None:
    listed = [f["path"] for f in manifest["files"]]
    present = bundle.names() - {MANIFEST, SIGNATURE}
    for name in listed:
        if name not in present:
            raise Mismatch(f"{name}: listed in the manifest, missing from the bundle")
    for name in sorted(present - set(listed)):
        raise Mismatch(f"{name}: in the bundle, not in the manifest")
    for number, entry in enumerate(manifest["files"], 1):
        size, sha256 = _digest(bundle.open(entry["path"]))
        if size != entry["size"]:
            raise Mismatch(f"{entry['path']}: {size} bytes, the manifest says {entry['size']}")
        if sha256 != entry["sha256"]:
            raise Mismatch(
                f"{entry['path']}: SHA-256 {sha256}, the manifest says {entry['sha256']}"
            )
        if say is not None:
            say(f"{number}/{len(listed)} {entry['path']}")


def _digest(file: IO[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _timelines(bundle: Bundle, manifest: dict[str, Any], pinned_admin: str) -> set[int]:
    """Each thread's recorded checks, its signatures again; the ids of the threads exported."""
    names = {f["path"] for f in manifest["files"]}
    threads = set()
    for name in sorted(n for n in names if n.endswith("/timeline.json")):
        review = bundle.json(name)
        folder = name.rsplit("/", 1)[0]
        threads.add(int(review["thread"]["id"]))
        failed = 0
        for message in _messages(review, name):
            check = message.get("check")
            if not isinstance(check, dict) or not isinstance(check.get("ok"), bool):
                raise Mismatch(f"{name}: message {message.get('id')} has no recorded check")
            failed += not check["ok"]
            for photo in message.get("photos") or []:
                if photo.get("file") and f"{folder}/{photo['file']}" not in names:
                    raise Mismatch(f"{name}: photo file {photo['file']} is not in the bundle")
        if failed != review.get("failed"):
            raise Mismatch(f"{name}: {failed} failed check(s), recorded {review.get('failed')}")
        _signatures(bundle, f"{folder}/released.json", review, pinned_admin)
    return threads


def _signatures(bundle: Bundle, name: str, review: dict[str, Any], pinned_admin: str) -> None:
    """The signatures of the messages recorded as verified, checked again from the released
    envelopes and the chain replayed from the pinned admin key (nothing decrypted)."""
    released = bundle.json(name)
    try:
        chain = verify_listing(released["department"]["chain"], pinned_admin)
    except (KeyError, TypeError, RoundsClientError) as error:
        raise Mismatch(
            f"{name}: the chain does not verify from the pinned admin key: {error}"
        ) from None
    envelopes = {m.get("id"): m for m in _messages(released, name)}
    recorded = list(_messages(review, name))
    if [m.get("id") for m in recorded] != list(envelopes):
        raise Mismatch(f"{name}: not the messages of the timeline recorded beside it")
    for message in recorded:
        if message["check"]["ok"]:
            _signed(name, envelopes[message["id"]], released, chain)


def _signed(
    name: str, message: dict[str, Any], released: dict[str, Any], chain: MembershipChain
) -> None:
    try:
        header = verify_envelope_in_chain(message.get("envelope"), chain)
    except CryptoError as error:
        raise Mismatch(
            f"{name}: message {message.get('id')} is recorded as verified, but {error.code}: "
            f"{error}"
        ) from None
    made_for = (header.thread, header.room, header.sender, header.client_msg_id)
    expected = (
        released["thread"]["id"],
        released["department"]["id"],
        (message.get("sender") or {}).get("id"),
        message.get("client_msg_id"),
    )
    if made_for != expected:
        raise Mismatch(
            f"{name}: message {message.get('id')}'s envelope was made for another thread, "
            "department, sender or client_msg_id"
        )


def _messages(review: Any, name: str) -> Iterator[dict[str, Any]]:
    messages = review.get("messages") if isinstance(review, dict) else None
    if not isinstance(messages, list):
        raise Mismatch(f"{name}: no messages list")
    yield from messages


def _audit(
    bundle: Bundle, manifest: dict[str, Any], threads: set[int], checkpoint_key: bytes
) -> None:
    case = manifest["case"]
    slice_ = bundle.json("audit.json")
    if slice_.get("case") != case:
        raise Mismatch(f"audit.json: the slice of case {slice_.get('case')}, not {case}")
    try:
        checkpoint = check_proved_slice(slice_, case, checkpoint_key)
    except NotProved as error:
        raise Mismatch(f"audit.json: {error}") from None
    named = manifest["chain_proof"]["checkpoint"]
    if any(named.get(k) != checkpoint.get(k) for k in ("seq", "root", "key", "at")):
        raise Mismatch("audit.json: not the checkpoint the manifest names")
    last_id, last_seq, released = 0, 0, set()
    for entry in slice_.get("entries") or []:
        where = f"audit.json: entry {entry.get('id')}"
        if not isinstance(entry.get("id"), int) or entry["id"] <= last_id:
            raise Mismatch(f"{where} is not after entry {last_id}")
        if entry["seal"]["seq"] <= last_seq:
            raise Mismatch(f"{where}: seal {entry['seal']['seq']} is not after seal {last_seq}")
        last_id, last_seq = entry["id"], entry["seal"]["seq"]
        data = entry.get("data") or {}
        if entry.get("action") == "case.released" and data.get("what") == "timeline":
            released.add(data.get("thread_id"))
    for thread in sorted(threads - released):
        raise Mismatch(f"audit.json: no timeline release of thread {thread} in the slice")


def run(args: argparse.Namespace) -> int:
    key = pinned_public_key(args.signing_public_key, args.pins_file)
    checkpoint_key = pinned_checkpoint_key(args.checkpoint_public_key, args.pins_file)
    pins = resolve_pins(
        admin=args.admin_fingerprint,
        compliance=args.compliance_fingerprint,
        pins_file=args.pins_file,
    )
    manifest = verify_bundle(
        args.bundle,
        key,
        pins.admin,
        checkpoint_key,
        lambda line: print(f"rounds: verify: {line}", file=sys.stderr),
    )
    print(f"export ok: case {manifest['reference']}, {len(manifest['files'])} file(s)")
    return 0
