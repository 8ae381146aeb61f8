"""`rounds compliance …`: a compliance officer's cases, and a case's threads read offline.

`cases`, `open`, `approve` and `close` are one call each to the server's
case routes (client/cases.py). `read` checks the key file against the
pinned compliance fingerprint before asking the server anything, fetches
every page of each thread the case covers, and has client/compliance.py
verify and decrypt it; a chain that does not verify from the pinned admin
key stops it (exit 1, nothing printed), a message whose check fails is
printed marked, and the exit code is then 3 (docs/client.md).
"""

import argparse
import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from client import cases
from client.case_report import write_case_report
from client.compliance import department_of, open_thread
from client.compliance_key import compliance_key
from client.errors import RoundsClientError
from client.i18n import resolve
from client.pins import Pins, resolve_pins
from client.transport import Connection
from core.crypto import ChainHead

CHECK_FAILED = 3  # exit code: the timeline was printed, but a check failed


def add_commands(commands: Any) -> None:
    """The `compliance` command and its subcommands, on the `rounds` parser."""
    compliance = commands.add_parser("compliance", help="review cases (compliance officers)")
    sub = compliance.add_subparsers(dest="action", required=True)
    sub.add_parser("cases", help="your cases, and those awaiting a second officer")
    opened = sub.add_parser("open", help="open a case (scope fields combine with AND)")
    opened.add_argument("--reference", required=True, help="the request's reference, unique")
    opened.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    patient = opened.add_mutually_exclusive_group()
    patient.add_argument("--patient", type=int, help="patient id")
    patient.add_argument("--ipp", help="the patient's IPP")
    opened.add_argument("--department", type=int, help="department id")
    opened.add_argument(
        "--user", dest="subject", type=int, help="user id: threads they took part in"
    )
    opened.add_argument("--from", dest="date_from", type=_from, metavar="DATE")
    opened.add_argument("--to", dest="date_to", type=_to, metavar="DATE")
    for name, text in (("approve", "approve another officer's case"), ("close", "close a case")):
        sub.add_parser(name, help=text).add_argument("case", type=int)
    read = sub.add_parser("read", help="decrypt and check a case's threads offline")
    read.add_argument("case", type=int)
    read.add_argument("--key", type=Path, required=True, help="the compliance key file")
    read.add_argument("--thread", type=int, help="only this thread")
    read.add_argument("--json", action="store_true", help="the checked timeline as JSON")
    read.add_argument(
        "--photos", type=Path, metavar="DIR", help="also download and decrypt the photos here"
    )
    from client import case_export  # here: its transcript prints with format_review, below

    case_export.add_arguments(sub)


def _moment(value: str, end: bool) -> str:
    """An aware ISO time for the server: as given with its offset, or a date taken as this
    machine's local day (its start for --from, its last microsecond for --to)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max if end else time.min).astimezone().isoformat()
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or a date and time: {value!r}") from None
    return (moment if moment.tzinfo else moment.astimezone()).isoformat()


def _from(value: str) -> str:
    return _moment(value, end=False)


def _to(value: str) -> str:
    return _moment(value, end=True)


def _person(value: Any) -> str:
    return str(value.get("username")) if isinstance(value, dict) else "-"


def case_line(case: dict[str, Any]) -> str:
    scope = ", ".join(f"{k} {v}" for k, v in (case.get("scope") or {}).items() if v is not None)
    state = "closed" if case.get("closed_at") else "open"
    if case.get("awaits_approval"):
        state += ", awaits a second officer"
    elif case.get("approved_by"):
        state += f", approved by {_person(case['approved_by'])}"
    return (
        f"{case.get('id')}  {case.get('reference')}  opened by {_person(case.get('opened_by'))} "
        f"{_t(case.get('opened_at'))}  ({state})  scope: {scope or '-'}"
    )


async def run(client: Connection, args: argparse.Namespace) -> int:
    """The case subcommands (`read` goes through `read_case`, which needs the key first)."""
    if args.action == "cases":
        for case in await cases.list_cases(client):
            print(case_line(case))
        return 0
    if args.action == "open":
        case = await cases.open_case(
            client,
            args.reference,
            args.reason,
            patient=args.patient,
            ipp=args.ipp,
            department=args.department,
            user=args.subject,
            date_from=args.date_from,
            date_to=args.date_to,
        )
        print(f"opened case {case_line(case)}")
        return 0
    done = await {"approve": cases.approve_case, "close": cases.close_case}[args.action](
        client, args.case
    )
    print(f"{args.action}d case {case_line(done)}")
    return 0


def _pins(args: argparse.Namespace) -> Pins:
    return resolve_pins(
        admin=args.admin_fingerprint,
        compliance=args.compliance_fingerprint,
        pins_file=args.pins_file,
    )


async def read_case(args: argparse.Namespace, sign_in: Any) -> int:
    """Check the key file, then fetch, verify, decrypt and print the case's threads."""
    pins = _pins(args)
    with compliance_key(args.key, pins.compliance) as key:
        client = await sign_in(args)
        try:
            if args.thread is not None:
                threads = [args.thread]
            else:
                listed = (await cases.case_threads(client, args.case))["threads"]
                threads = [t["id"] for t in reversed(listed)]  # oldest first
            reviews = []
            for thread in threads:
                pages = await cases.timeline_pages(client, args.case, thread)
                department = department_of(pages)
                review, bodies = open_thread(pages, key, pins.admin, client.trust.head(department))
                client.trust.keep_head(department, ChainHead(**review["chain"]["head"]))
                reviews.append(review)
                if args.photos is not None:
                    await _save_photos(client, args.case, review, bodies, args.photos)
        finally:
            await client.aclose()
    if args.json:
        print(json.dumps({"case": args.case, "threads": reviews}, ensure_ascii=False, indent=2))
    else:
        if not reviews:
            print(f"Case {args.case} covers no thread.")
        for review in reviews:
            print("\n".join(format_review(review)))
    return CHECK_FAILED if any(r["failed"] for r in reviews) else 0


async def _save_photos(
    client: Any, case: int, review: dict[str, Any], bodies: dict[Any, Any], folder: Path
) -> None:
    """Each photo of a message that passed its checks, downloaded under the case, its hash
    checked and decrypted (client/media.py), as `photo-<attachment>.<ext>`."""
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before any download)
    for message in review["messages"]:
        body = bodies.get(message["id"])
        for entry, shown in zip((body or {}).get("photos") or [], message["photos"], strict=False):
            suffix = {"image/png": ".png"}.get(str(entry.get("media_type")), ".jpg")
            path = folder / f"photo-{shown['attachment'] or entry['upload']}{suffix}"
            await client.download_photo(entry, case=case, out=path)
            shown["file"] = str(path)


async def report_case(args: argparse.Namespace, sign_in: Any) -> int:
    """`rounds report --case CASE --key FILE`: the patient's photo report under a case."""
    if args.case is None or args.key is None:
        raise RoundsClientError("invalid_request", "A report under a case needs --case and --key.")
    pins = _pins(args)
    with compliance_key(args.key, pins.compliance) as key:
        client = await sign_in(args)
        try:
            done = await write_case_report(
                client,
                args.case,
                args.patient,
                args.out,
                key,
                pins.admin,
                language=resolve(args.language),
            )
        finally:
            await client.aclose()
    print(f"{done['path']}: {done['photos']} photo(s) of IPP {done['patient'].get('ipp')}")
    return 0


# --- the timeline as text ---------------------------------------------------------------


def _t(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return str(value)


def _key(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC)
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)


def _patient(thread: dict[str, Any]) -> str:
    patient = thread.get("patient")
    if not isinstance(patient, dict):
        return f"patient {patient}"
    return (
        f"{str(patient.get('family_name', '')).upper()} {patient.get('given_name', '')}, "
        f"born {patient.get('birth_date')}, IPP {patient.get('ipp')}"
    )


def format_review(review: dict[str, Any]) -> list[str]:
    """One thread's checked timeline, for a person: messages and membership changes in order."""
    names: dict[int, str] = review["names"]

    def who(user: Any) -> str:
        if isinstance(user, dict):
            user = user.get("id")
        return names.get(user, f"user {user}") if user is not None else "the admin key"

    thread, chain = review["thread"], review["chain"]
    versions = ", ".join(
        f"{v['version']} {'ok' if v['check']['ok'] else 'FAILED ' + v['check']['code']}"
        for v in review["key_versions"]
    )
    lines = [
        f"Case {review['case']}, thread {thread.get('id')} {thread.get('title')!r} "
        f"(department {review['department']})",
        f"Patient: {_patient(thread)}",
        f"Membership chain: verified from the pinned admin key, {chain['statements']} "
        f"statement(s), head {chain['head']['seq']} ({chain['head']['hash'][:16]}…)",
        f"Key versions: {versions or 'none'}",
    ]
    if not review["server_compliance_key_is_this_one"]:
        lines.append("Note: the server names another compliance key as current than this file.")
    messages = review["messages"]
    first = next((m["head"] for m in messages if isinstance(m.get("head"), int)), None)
    if first is not None:
        members = next(m for m in messages if m.get("head") == first).get("members") or []
        held = ", ".join(f"{who(m['user'])} ({m['role']})" for m in members)
        lines.append(f"Members at the first message (statement {first}): {held or 'none'}")
    events = [(_key(m["server_time"]), 1, m) for m in messages]
    events += [
        (_key(s["at"]), 0, s) for s in review["statements"] if first is None or s["seq"] > first
    ]
    lines.append("")
    for _, _, event in sorted(events, key=lambda e: (e[0], e[1])):
        if event["kind"] == "membership":
            lines.append(
                f"{_t(event['at'])}  membership #{event['seq']}: {event['change']} "
                f"{who(event['user'])} ({event['role']}), signed by {who(event['by'])}"
            )
            continue
        lines.extend(_message_lines(event, who))
    failed = review["failed"]
    lines.append(
        f"{len(messages)} message(s); "
        + (f"{failed} FAILED their check." if failed else "every check passed.")
    )
    lines.append("")
    return lines


def _message_lines(event: dict[str, Any], who: Any) -> list[str]:
    check = event["check"]
    mark = "signature ok" if check["ok"] else f"CHECK FAILED: {check['code']}"
    lines = [f"{_t(event['server_time'])}  #{event['seq']} {who(event['sender'])}  [{mark}]"]
    if event.get("sent_at"):
        lines.append(f"    sent at {event['sent_at']} (the sender's clock, signed)")
    if not check["ok"]:
        lines.append(f"    content not shown: {check['detail']}")
    elif event["text"]:
        lines.extend(f"    {line}" for line in str(event["text"]).splitlines() or [""])
    for photo in event["photos"]:
        lines.append(
            f"    photo (attachment {photo['attachment']}): keywords "
            f"{', '.join(photo['keywords']) or 'none'}; consent {photo['consent']}; "
            f"captured {photo['captured_at'] or 'unknown'}"
            + (f"; annotates {photo['annotates']}" if photo.get("annotates") else "")
            + (f"; saved as {photo['file']}" if photo.get("file") else "")
        )
    for version in event.get("versions") or []:
        check = version["check"]
        mark = "signature ok" if check["ok"] else f"CHECK FAILED: {check['code']}"
        lines.append(
            f"    CORRECTED {_t(version['corrected_at'])}, version {version['version']} [{mark}]"
        )
        if check["ok"]:
            lines.extend(f"      {line}" for line in str(version["text"]).splitlines() or [""])
    redacted = event.get("redacted")
    if redacted:
        lines.append(
            f"    REDACTED {_t(redacted.get('at'))} by {who(redacted.get('by'))} "
            f"({redacted.get('right') or '?'}): {redacted.get('reason') or '(no reason given)'}"
        )
    for seen in event.get("seen_by") or []:
        lines.append(f"    seen by {who(seen['user'])} at {_t(seen['at'])}")
    return lines
