"""A software passkey authenticator: real ES256 keys and WebAuthn's real formats.

It answers `navigator.credentials.create` / `.get` options (as the server's JSON
gives them) the way a platform authenticator does, with "none" attestation, so
the server's py_webauthn checks run on genuine bytes: the relying party's hash,
the flags, the counter, CBOR, COSE and a P-256 signature over the client data.
Browser tests use Chromium's virtual authenticator instead.
"""

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    rp_id: str
    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    user_handle: bytes
    counter: int = 0


@dataclass
class SoftAuthenticator:
    """Holds passkeys as a phone does; `user_verified` is the face or finger check."""

    origin: str
    user_verified: bool = True
    credentials: list[Credential] = field(default_factory=list)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin or self.origin}
        return json.dumps({**data, "crossOrigin": False}).encode()

    def _flags(self) -> int:
        return UP | (UV if self.user_verified else 0)

    def create(self, options: dict[str, Any], origin: str | None = None) -> dict[str, Any]:
        """A new passkey for `options` (PublicKeyCredentialCreationOptions as JSON)."""
        rp_id = options["rp"]["id"]
        key = ec.generate_private_key(ec.SECP256R1())
        credential = Credential(
            rp_id, secrets.token_bytes(32), key, unb64url(options["user"]["id"])
        )
        numbers = key.public_key().public_numbers()
        cose = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        attested = (
            bytes(16)
            + struct.pack(">H", len(credential.credential_id))
            + credential.credential_id
            + cose
        )
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([self._flags() | AT])
            + struct.pack(">I", 0)
            + attested
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        self.credentials.append(credential)
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: dict[str, Any],
        origin: str | None = None,
        credential: Credential | None = None,
    ) -> dict[str, Any]:
        """An assertion for `options` (PublicKeyCredentialRequestOptions as JSON), by the
        first passkey allowed for its relying party (or `credential`)."""
        rp_id = options["rpId"]
        allowed = {c["id"] for c in options.get("allowCredentials") or []}
        if credential is None:
            credential = next(
                c
                for c in self.credentials
                if c.rp_id == rp_id and (not allowed or b64url(c.credential_id) in allowed)
            )
        credential.counter += 1
        auth_data = (
            hashlib.sha256(credential.rp_id.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", credential.counter)
        )
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = credential.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(credential.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
