"""`rounds`: post clinical photos, browse the library, fetch a photo, build a patient report,
and (compliance officers) open review cases and read them offline with the compliance key.

Configuration from options or the environment, so a script needs no
prompt: ROUNDS_URL, ROUNDS_USER, ROUNDS_PASSWORD, ROUNDS_RECOVERY_SECRET,
and the institution's pinned key fingerprints: ROUNDS_PINS_FILE (the
deployment's pins file; `seed_demo` writes the demo's as
var/institution.json), or ROUNDS_ADMIN_FINGERPRINT and
ROUNDS_COMPLIANCE_FINGERPRINT. Without the pins it refuses to start
(`pins_required`). The password and the recovery secret are prompted for
(without echo) when not set. This machine keeps no keys: each run recovers
the user's identity from the server's sealed backup with the recovery
secret; what it remembers to refuse rollbacks and replays is in the state
directory, ROUNDS_STATE_DIR (docs/client.md).

`rounds report` and `rounds library` write in English or French:
`--language`, else the environment's as gettext reads it (LANGUAGE, LC_ALL,
LC_MESSAGES, LANG), else English (client/i18n.py).

Exit codes: 0 done, 1 refused (a one-line `rounds: error: code: message`
on stderr, never a traceback), 2 bad usage, 130 interrupted.
"""

import argparse
import asyncio
import functools
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import websockets

from client import case_export, compliance_cli, fhir_export, verify_export
from client.errors import RoundsClientError
from client.i18n import LANGUAGES, SOURCE_LANGUAGE, resolve, translation
from client.photo_sdk import CONSENTS
from client.photos import PhotoRefused
from client.pins import resolve_pins
from client.report import local_time, parse_time, write_patient_report
from client.sdk import RoundsClient

DEFAULT_URL = "http://127.0.0.1:8000"
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png"}
LANGUAGE_HELP = "en or fr (default: from LANGUAGE, LC_ALL, LC_MESSAGES or LANG, else en)"


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="rounds", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=env("ROUNDS_URL", DEFAULT_URL), help="server address")
    parser.add_argument("--user", default=env("ROUNDS_USER"), help="user name (ROUNDS_USER)")
    parser.add_argument(
        "--admin-fingerprint",
        default=env("ROUNDS_ADMIN_FINGERPRINT"),
        help="the institution's admin key fingerprint, from your IT department",
    )
    parser.add_argument(
        "--compliance-fingerprint",
        default=env("ROUNDS_COMPLIANCE_FINGERPRINT"),
        help="the institution's compliance key fingerprint",
    )
    parser.add_argument(
        "--pins-file",
        default=env("ROUNDS_PINS_FILE"),
        type=Path,
        help="a JSON file with both fingerprints, {admin, compliance} (ROUNDS_PINS_FILE)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    photo = commands.add_parser("photo", help="post photos in a patient's thread")
    photo.add_argument("files", nargs="+", type=Path, metavar="FILE")
    photo.add_argument("--thread", type=int, required=True)
    photo.add_argument("--keyword", action="append", default=[], help="a nomenclature code")
    photo.add_argument("--consent", choices=CONSENTS, default="care")
    photo.add_argument("--text", default="", help="a caption (encrypted)")
    photo.add_argument("--annotates", type=int, help="the attachment id this photo annotates")
    photo.add_argument("--no-progress", action="store_true")

    library = commands.add_parser("library", help="list photos (newest capture first)")
    library.add_argument("--patient-ipp")
    library.add_argument("--patient", type=int, help="patient id")
    library.add_argument("--keyword", action="append", default=[])
    library.add_argument("--department", type=int)
    library.add_argument("--from", dest="date_from", metavar="DATE")
    library.add_argument("--to", dest="date_to", metavar="DATE")
    library.add_argument("--limit", type=int, default=50)
    library.add_argument("--case", type=int, help="a compliance officer's open case id")
    library.add_argument("--language", choices=LANGUAGES, help=LANGUAGE_HELP)

    fetch = commands.add_parser("fetch", help="download and decrypt photos")
    which = fetch.add_mutually_exclusive_group(required=True)
    which.add_argument("--message", type=int, help="every photo of this message")
    which.add_argument("--attachment", type=int, help="one photo")
    fetch.add_argument("--out", type=Path, default=Path.cwd(), help="directory")
    fetch.add_argument("--thumbnail", action="store_true")
    fetch.add_argument("--patient-ipp", help="narrows the search")

    report = commands.add_parser("report", help="a patient's photo follow-up as PDF")
    report.add_argument("--patient", required=True, metavar="IPP")
    report.add_argument("--out", type=Path, required=True)
    report.add_argument("--case", type=int, help="a compliance officer's open case (with --key)")
    report.add_argument("--key", type=Path, help="the compliance key file, with --case")
    report.add_argument("--language", choices=LANGUAGES, help=LANGUAGE_HELP)
    record = commands.add_parser("record", help="send photos to the patient record (FHIR)")
    record.add_argument("--attachment", type=int, action="append", required=True, metavar="ID")
    compliance_cli.add_commands(commands)
    verify_export.add_command(commands)
    return parser


def _secret(name: str, prompt: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    if not sys.stdin.isatty():
        raise RoundsClientError("missing_credentials", f"Set {name} or run interactively.")
    return getpass.getpass(prompt)


async def _signed_in(
    args: argparse.Namespace, *, socket: bool = False, keys: bool = True
) -> RoundsClient:
    """Log in; recover the user's identity unless `keys` is False (a compliance officer
    reads through a case and the compliance key, never with an identity of their own)."""
    if not args.user:
        raise RoundsClientError("missing_credentials", "Give --user or set ROUNDS_USER.")
    client = RoundsClient(
        args.url,
        pinned_admin_fingerprint=args.admin_fingerprint,
        pinned_compliance_fingerprint=args.compliance_fingerprint,
        pins_file=args.pins_file,
    )
    try:
        await _login(client, args.user)
        if keys:
            await _keys(client)
        if socket:
            await client.connect()
    except BaseException:
        await client.aclose()
        raise
    return client


async def _login(client: RoundsClient, username: str) -> None:
    """The password, then the second factor's code when the account has one."""
    try:
        await client.login(username, _secret("ROUNDS_PASSWORD", f"Password for {username}: "))
    except RoundsClientError as refusal:
        if refusal.code == "second_factor_setup_required":
            raise RoundsClientError(
                refusal.code,
                "Your role requires a second factor: sign in once in the browser to set up "
                "a passkey or an authenticator app, then use its code here.",
            ) from refusal
        if refusal.code != "second_factor_required":
            raise
        code = _secret(
            "ROUNDS_CODE", "Code from your authenticator app (or a one-time backup code): "
        )
        await client.finish_login(refusal.data["pending"], code)


async def _keys(client: RoundsClient) -> None:
    """Recover the user's identity from the server's backup (or, for a user who has
    none yet, create one and show its new recovery secret once)."""
    secret = os.environ.get("ROUNDS_RECOVERY_SECRET") or None
    try:
        created = await client.setup_keys(secret)
    except RoundsClientError as error:
        if error.code != "recovery_secret_required":
            raise
        created = await client.setup_keys(_secret("ROUNDS_RECOVERY_SECRET", "Recovery secret: "))
    if created:
        print(
            f"rounds: new keys made for {client.user and client.user['username']}; "
            f"your recovery secret (shown once, keep it safe): {created}",
            file=sys.stderr,
        )


async def _photo(client: RoundsClient, args: argparse.Namespace) -> None:
    ack = await client.send_photos(
        args.thread,
        list(args.files),
        keywords=args.keyword,
        consent=args.consent,
        text=args.text,
        annotates=args.annotates,
        progress=not args.no_progress,
    )
    ids = [a.get("id") for a in ack.get("attachments", [])]
    suffix = f", attachments {', '.join(map(str, ids))}" if ids else ""
    print(f"posted message {ack.get('message_id')} (seq {ack.get('seq')}){suffix}")


def _row(item: dict[str, Any], zone: str) -> list[str]:
    patient = item.get("patient") or {}
    sender = item.get("sender") or {}
    captured = parse_time(item.get("captured_at"))
    return [
        str(item.get("id")),
        local_time(captured, zone) if captured else "",
        str(patient.get("ipp", "")),
        f"{str(patient.get('family_name', '')).upper()} {patient.get('given_name', '')}",
        str(sender.get("display_name") or sender.get("username") or ""),
        ",".join(item.get("keywords") or []),
        str(item.get("consent", "")),
        str((item.get("message") or {}).get("id", "")),
    ]


def print_table(
    items: Sequence[dict[str, Any]], zone: str, language: str = SOURCE_LANGUAGE
) -> None:
    """The items, capture times on the institution's clock, the zone named in the header.

    The headers are in `language`; the cells are data (names, keyword and consent
    codes) and stay as the server gave them.
    """
    t = translation(language)
    if not items:
        print(t.gettext("No photos."))
        return
    header = [
        t.pgettext("library column", "id"),
        t.pgettext("library column", "captured (%(zone)s)") % {"zone": zone},
        # Translators: the patient's hospital number (identifiant permanent du patient).
        t.pgettext("library column", "ipp"),
        t.pgettext("library column", "patient"),
        # Translators: who took the photo.
        t.pgettext("library column", "by"),
        t.pgettext("library column", "keywords"),
        t.pgettext("library column", "consent"),
        t.pgettext("library column", "message"),
    ]
    rows = [header, *(_row(item, zone) for item in items)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


async def _library(client: RoundsClient, args: argparse.Namespace) -> None:
    filters = {
        "ipp": args.patient_ipp,
        "patient": args.patient,
        "keyword": args.keyword,
        "department": args.department,
        "date_from": args.date_from,
        "date_to": args.date_to,
        "case": args.case,
    }
    items: list[dict[str, Any]] = []
    zone = "UTC"
    async for page in client.library_pages(**filters, limit=min(args.limit, 200)):
        zone = page.get("time_zone") or zone
        items.extend(page.get("items", []))
        if len(items) >= args.limit:
            break
    print_table(items[: args.limit], zone, resolve(args.language))


async def _fetch(client: RoundsClient, args: argparse.Namespace) -> None:
    wanted = []
    async for item in client.library_items(ipp=args.patient_ipp):
        if args.attachment == item["id"] or args.message == (item.get("message") or {}).get("id"):
            wanted.append(item)
    if not wanted:
        raise RoundsClientError("not_found", "No such photo in your departments.")
    args.out.mkdir(parents=True, exist_ok=True)
    bodies: dict[int, dict[str, Any]] = {}
    for item in wanted:
        message = item["message"]
        if message["id"] not in bodies:
            department = item["department"]
            department = department["id"] if isinstance(department, dict) else department
            bodies[message["id"]] = await client.open_photo_message(message, department=department)
        body = bodies[message["id"]]
        (entry,) = [p for p in body["photos"] if p["upload"] == str(item["upload"])]
        media_type = "image/jpeg" if args.thumbnail else entry.get("media_type", "")
        suffix = "-thumb" if args.thumbnail else ""
        path = args.out / f"photo-{item['id']}{suffix}{EXTENSIONS.get(media_type, '.bin')}"
        await client.download_photo(entry, thumbnail=args.thumbnail, out=path)
        print(path)


async def _report(client: RoundsClient, args: argparse.Namespace) -> None:
    done = await write_patient_report(
        client, args.patient, args.out, language=resolve(args.language)
    )
    print(
        f"{done['path']}: {done['photos']} photo(s) of IPP {done['patient'].get('ipp')}, "
        f"times in {done['zone']}"
    )


COMMANDS = {
    "photo": _photo,
    "library": _library,
    "fetch": _fetch,
    "report": _report,
    "record": fhir_export.run_record,
    "compliance": compliance_cli.run,
}


async def run(args: argparse.Namespace) -> int:
    """Run one command; its exit code (0, or compliance_cli.CHECK_FAILED)."""
    if args.command == "verify-export":  # offline: no server, no sign-in
        return verify_export.run(args)
    officer = functools.partial(_signed_in, keys=False)
    if args.command == "compliance" and args.action == "export":
        pins = resolve_pins(
            admin=args.admin_fingerprint,
            compliance=args.compliance_fingerprint,
            pins_file=args.pins_file,
        )
        return await case_export.export_case(args, officer, pins)
    if args.command == "compliance" and args.action == "read":
        return await compliance_cli.read_case(args, officer)
    if args.command == "report" and (args.case is not None or args.key is not None):
        return await compliance_cli.report_case(args, officer)
    # Listing the library or a case decrypts nothing: no identity is recovered or made.
    keys = args.command not in ("compliance", "library")
    client = await _signed_in(args, socket=args.command == "photo", keys=keys)
    try:
        return await COMMANDS[args.command](client, args) or 0
    finally:
        await client.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except (RoundsClientError, PhotoRefused) as error:
        print(f"rounds: error: {error.code}: {error.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rounds: interrupted", file=sys.stderr)
        return 130
    except (OSError, httpx.HTTPError, websockets.WebSocketException) as error:
        print(f"rounds: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
