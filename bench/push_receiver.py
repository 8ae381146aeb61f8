"""A local RFC 8030 push service: a real HTTP server on 127.0.0.1 that checks what
Rounds sends as a push service would, and decrypts it as the browser would. The
tests (tests/push, tests/browser/test_push.py) and the escalation benchmark use it.

Each `subscribe()` makes what a browser's PushManager makes: an endpoint on this
server, a P-256 key pair and a 16-byte auth secret (RFC 8291 §3.2), the public
halves to post to /api/push/subscriptions. A POST to an endpoint is answered:
- 410 Gone for an endpoint the test marked gone, 404 for one it never made;
- 401 without a valid VAPID Authorization (RFC 8292 §3: `vapid t=JWT,k=key`, the
  JWT's ES256 signature checked with `k`, its `aud` this server's origin, its `exp`
  in the next 24 hours, its `sub` a mailto: or https: contact);
- 400 without a TTL, with another Content-Encoding than aes128gcm, or a body
  that does not decrypt with the subscription's private key and auth secret;
- else 201, keeping the decrypted payload with its TTL, Urgency and Topic headers.
"""

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Subscriber:
    """One browser's subscription: what it posts to Rounds, and its private halves."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def as_json(self) -> dict[str, Any]:
        """As PushSubscription.toJSON() gives it."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


@dataclass
class Received:
    """A push as the browser would get it, with what the push service saw."""

    token: str
    payload: dict[str, Any]
    ttl: int
    urgency: str | None
    topic: str | None
    vapid_key: str  # the `k` of the Authorization header
    claims: dict[str, Any]
    size: int  # of the encrypted body
    at: float = 0.0  # time.time() when it arrived (the benchmark's delivery time)


@dataclass
class PushReceiver:
    origin: str = ""
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    refused: list[tuple[str, int, str]] = field(default_factory=list)  # token, status, why
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def subscribe(self, host: str = "127.0.0.1") -> Subscriber:
        token = secrets.token_urlsafe(16)
        port = self.origin.rsplit(":", 1)[1]
        subscriber = Subscriber(
            endpoint=f"http://{host}:{port}/push/{token}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=secrets.token_bytes(16),
        )
        self.subscribers[token] = subscriber
        return subscriber

    def mark_gone(self, subscriber: Subscriber) -> None:
        self.gone.add(subscriber.endpoint.rsplit("/", 1)[1])

    def for_(self, subscriber: Subscriber) -> list[Received]:
        token = subscriber.endpoint.rsplit("/", 1)[1]
        return [push for push in self.received if push.token == token]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The pushes received, once there are `count` of them (or the time is up)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count and time.monotonic() < deadline:
                self._changed.wait(0.1)
            return list(self.received)

    def note(self, push: Received | None, refusal: tuple[str, int, str] | None) -> None:
        with self._changed:
            if push is not None:
                self.received.append(push)
            if refusal is not None:
                self.refused.append(refusal)
            self._changed.notify_all()


def verify_vapid(header: str, origin: str) -> tuple[str, dict[str, Any]]:
    """The key and the claims of a valid `vapid t=…,k=…` header; ValueError otherwise."""
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError("not the vapid scheme")
    fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
    token, key = fields["t"], fields["k"]
    signing_input, _, signature = token.rpartition(".")
    head, _, body = signing_input.partition(".")
    if json.loads(unb64url(head)).get("alg") != "ES256":
        raise ValueError("not ES256")
    raw = unb64url(signature)
    if len(raw) != 64:
        raise ValueError("not a raw ES256 signature")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("bad signature") from None
    claims = json.loads(unb64url(body))
    now = time.time()
    if claims.get("aud") != origin:
        raise ValueError("wrong audience")
    if not now < int(claims.get("exp", 0)) <= now + 24 * 3600:
        raise ValueError("expired, or expiring beyond 24 hours")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise ValueError("no contact")
    return key, claims


def handler_for(receiver: PushReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(self, status: int, token: str, why: str = "") -> None:
            if status != 201:
                receiver.note(None, (token, status, why))
            self.send_response(status)
            if status == 201:
                self.send_header("Location", f"{receiver.origin}/message/{secrets.token_hex(8)}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrived = time.time()
            token = self.path.rsplit("/", 1)[-1]
            subscriber = receiver.subscribers.get(token)
            if subscriber is None or not self.path.startswith("/push/"):
                return self.answer(404, token, "unknown endpoint")
            if token in receiver.gone:
                return self.answer(410, token, "gone")
            try:
                # The audience is this push service's origin, as the sender named it.
                origin = f"http://{self.headers.get('Host', '')}"
                key, claims = verify_vapid(self.headers.get("Authorization", ""), origin)
            except (KeyError, ValueError) as error:
                return self.answer(401, token, f"vapid: {error}")
            if self.headers.get("TTL") is None:
                return self.answer(400, token, "no TTL")
            if self.headers.get("Content-Encoding") != "aes128gcm":
                return self.answer(400, token, "not aes128gcm")
            try:
                plain = http_ece.decrypt(
                    body,
                    private_key=subscriber.private_key,
                    auth_secret=subscriber.auth_secret,
                    version="aes128gcm",
                )
            except Exception as error:
                return self.answer(400, token, f"does not decrypt: {error}")
            receiver.note(
                Received(
                    token=token,
                    payload=json.loads(plain),
                    ttl=int(self.headers["TTL"]),
                    urgency=self.headers.get("Urgency"),
                    topic=self.headers.get("Topic"),
                    vapid_key=key,
                    claims=claims,
                    size=len(body),
                    at=arrived,
                ),
                None,
            )
            return self.answer(201, token)

    return Handler


@contextmanager
def push_receiver() -> Iterator[PushReceiver]:
    """A receiver serving on 127.0.0.1 (a port of its own) until the block ends."""
    receiver = PushReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(receiver))
    receiver.origin = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
