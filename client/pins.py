"""The institution's key fingerprints this client trusts, from configuration only.

The admin key roots every department's membership chain and the compliance
key reads every room key version, so a server that could name its own would
read everything. They are pinned: given to the constructor, or in
`ROUNDS_ADMIN_FINGERPRINT` and `ROUNDS_COMPLIANCE_FINGERPRINT`, or in a pins
file (`pins_file=`, or `ROUNDS_PINS_FILE`): `{"admin": "<64 hex>",
"compliance": "<64 hex>"}`, the file browsers get as `/app/institution.json`
and `seed_demo` writes as `var/institution.json`. Without both, the client
refuses to start (`pins_required`): there is no trust on first use
(docs/crypto.md §9, R0).
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from client.errors import RoundsClientError

_HEX = frozenset("0123456789abcdef")


def normalise_fingerprint(fingerprint: str) -> str:
    """64 lowercase hex digits, from that or the grouped form people compare.

    Raises:
        ValueError: Not a fingerprint.
    """
    if not isinstance(fingerprint, str):
        raise ValueError("a fingerprint is a string of 64 hex digits")
    compact = "".join(fingerprint.split()).lower()
    if len(compact) != 64 or not set(compact) <= _HEX:
        raise ValueError("a fingerprint is 64 hex digits")
    return compact


@dataclass(frozen=True)
class Pins:
    """The pinned fingerprints: `admin` (root of the chains), `compliance` (reads every version)."""

    admin: str
    compliance: str


def _from_file(path: str | os.PathLike[str]) -> dict[str, str]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RoundsClientError(
            "pins_required", f"The pins file {path} cannot be read: {error}"
        ) from None
    if not isinstance(data, dict):
        raise RoundsClientError("pins_required", f"The pins file {path} is not a JSON object.")
    return {kind: data[kind] for kind in ("admin", "compliance") if isinstance(data.get(kind), str)}


def resolve_pins(
    *,
    admin: str | None = None,
    compliance: str | None = None,
    pins_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Pins:
    """The pins, from the arguments, else the environment, else the pins file.

    Raises:
        RoundsClientError: `pins_required` when either is missing or is not a
            fingerprint, naming where to put it.
    """
    env = os.environ if environ is None else environ
    found: dict[str, str | None] = {
        "admin": admin or env.get("ROUNDS_ADMIN_FINGERPRINT") or None,
        "compliance": compliance or env.get("ROUNDS_COMPLIANCE_FINGERPRINT") or None,
    }
    path = pins_file or env.get("ROUNDS_PINS_FILE") or None
    if path is not None and not all(found.values()):
        from_file = _from_file(path)
        for kind in found:
            found[kind] = found[kind] or from_file.get(kind)
    missing = [kind for kind, value in found.items() if not value]
    if missing:
        raise RoundsClientError(
            "pins_required",
            f"No pinned {' and '.join(missing)} key fingerprint: give it from your IT department "
            "(pinned_admin_fingerprint= and pinned_compliance_fingerprint=, "
            "ROUNDS_ADMIN_FINGERPRINT and ROUNDS_COMPLIANCE_FINGERPRINT, or a pins file in "
            "ROUNDS_PINS_FILE). Without them nothing proves who may read a department.",
            {"missing": missing},
        )
    try:
        return Pins(
            admin=normalise_fingerprint(found["admin"] or ""),
            compliance=normalise_fingerprint(found["compliance"] or ""),
        )
    except ValueError as error:
        raise RoundsClientError(
            "pins_required", f"A pinned fingerprint is invalid: {error}"
        ) from None


def pinned_public_key(
    given: str | None, pins_file: Path | None, *, pin: str, what: str, option: str, env: str
) -> bytes:
    """An Ed25519 public key a verifier pins (64 hex digits): `given` (the option), else
    the environment variable `env`, else `pin` in the pins file; never one a bundle names.

    Raises:
        RoundsClientError: `pins_required`, naming the three places to put it.
    """
    value = given or os.environ.get(env)
    path = pins_file or os.environ.get("ROUNDS_PINS_FILE")
    if not value and path:
        try:
            value = json.loads(Path(path).read_text(encoding="utf-8")).get(pin)
        except (OSError, ValueError, AttributeError):
            value = None
    try:
        key = bytes.fromhex("".join(str(value or "").split()).lower())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise RoundsClientError(
            "pins_required",
            f"No pinned {what} public key (64 hex digits): give {option}, set {env}, or put "
            f'"{pin}" in the pins file.',
        )
    return key
