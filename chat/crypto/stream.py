"""Streaming file encryption: crypto_secretstream_xchacha20poly1305 in fixed-size chunks.

For photos and thumbnails. A random `FileKey` per file; the key, the
ciphertext's SHA-256 and its size travel inside the signed, encrypted
message body, so the server can neither read nor swap the blob.

Stream v1:

    magic       4   b"RNDS"
    version     1   0x01
    chunk_size  4   plaintext bytes per chunk, big-endian (1 .. MAX_CHUNK_SIZE)
    header     24   the secretstream header (random, from init_push)
    chunks          each `chunk_size + 17` bytes, the last one may be shorter

Every chunk but the last holds exactly `chunk_size` plaintext bytes and is
tagged TAG_MESSAGE; the last holds 0 .. chunk_size bytes and is tagged
TAG_FINAL (an empty file is one empty FINAL chunk). Every chunk is pushed
with the 9-byte prefix (magic, version, chunk_size) as additional data, so
the prefix cannot be altered either.

Decryption reads one chunk at a time (memory does not grow with the file)
and refuses truncation, data after the final chunk, reordered, repeated or
altered chunks. It writes each chunk's plaintext to the sink as soon as it
authenticates, so **on an error the sink holds a partial file: write to a
temporary file and delete it if `decrypt_stream` raises**, and only then
move it into place. `decrypt_to_bytes` does this for small blobs in memory.
"""

import hashlib
import io
import struct
from dataclasses import dataclass
from typing import BinaryIO, ClassVar

import nacl.bindings
import nacl.exceptions
import nacl.utils

from .errors import (
    DecryptionFailed,
    InvalidEnvelope,
    InvalidKey,
    TruncatedStream,
    UnsupportedVersion,
)

MAGIC = b"RNDS"
STREAM_VERSION = 1
_PREFIX = struct.Struct(">4sBI")
PREFIX_SIZE = _PREFIX.size
HEADER_SIZE = nacl.bindings.crypto_secretstream_xchacha20poly1305_HEADERBYTES
ABYTES = nacl.bindings.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_FINAL

CHUNK_SIZE = 64 * 1024
# The chunk size is read from the stream, which comes from the server: cap
# it so a hostile prefix cannot make the reader allocate gigabytes.
MAX_CHUNK_SIZE = 1024 * 1024


class FileKey:
    """A file's 32-byte secretstream key.

    :cvar KEY_SIZE: the size of the key.
    """

    KEY_SIZE: ClassVar[int] = nacl.bindings.crypto_secretstream_xchacha20poly1305_KEYBYTES

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != self.KEY_SIZE:
            raise InvalidKey(f"file key must be {self.KEY_SIZE} bytes")
        self._key = key

    @classmethod
    def generate(cls) -> "FileKey":
        return cls(nacl.utils.random(cls.KEY_SIZE))

    def __bytes__(self) -> bytes:
        return self._key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileKey):
            return NotImplemented
        return nacl.bindings.sodium_memcmp(self._key, other._key)

    # Equal keys would need equal hashes, and a hash of the key is not worth
    # exposing: file keys are not meant to be set members or dict keys.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "FileKey(…)"


@dataclass(frozen=True)
class StreamInfo:
    """What a message body records about an encrypted file.

    `size` and `sha256` are those of the whole ciphertext as stored (prefix,
    header and chunks); `chunks` counts the chunks, the final one included;
    `plaintext_size` is the file's size.
    """

    size: int
    sha256: bytes
    chunks: int
    plaintext_size: int


def _read_exact(source: BinaryIO, size: int) -> bytes:
    # A raw file or socket may return fewer bytes than asked before EOF.
    data = source.read(size)
    if len(data) == size or not data:
        return bytes(data)
    parts = [data]
    remaining = size - len(data)
    while remaining:
        more = source.read(remaining)
        if not more:
            break
        parts.append(more)
        remaining -= len(more)
    return b"".join(parts)


def _check_chunk_size(chunk_size: int, error: type[Exception]) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise error("chunk_size must be an integer")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise error(f"chunk_size must be 1 .. {MAX_CHUNK_SIZE}")


def encrypt_stream(
    key: FileKey, source: BinaryIO, sink: BinaryIO, chunk_size: int = CHUNK_SIZE
) -> StreamInfo:
    """Encrypt `source` to `sink` chunk by chunk; return the ciphertext's size and hash.

    Reads one chunk ahead, so that the last chunk (even a full one) carries
    TAG_FINAL and no empty chunk follows a file whose size is a multiple of
    `chunk_size`.
    """
    if not isinstance(key, FileKey):
        raise TypeError("key must be a FileKey")
    _check_chunk_size(chunk_size, ValueError)
    prefix = _PREFIX.pack(MAGIC, STREAM_VERSION, chunk_size)
    state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
    header = nacl.bindings.crypto_secretstream_xchacha20poly1305_init_push(state, bytes(key))
    digest = hashlib.sha256(prefix + header)
    sink.write(prefix + header)
    size = len(prefix) + len(header)
    chunks = 0
    plaintext_size = 0

    current = _read_exact(source, chunk_size)
    while True:
        following = _read_exact(source, chunk_size) if len(current) == chunk_size else b""
        tag = TAG_FINAL if not following else TAG_MESSAGE
        block = nacl.bindings.crypto_secretstream_xchacha20poly1305_push(
            state, current, prefix, tag
        )
        sink.write(block)
        digest.update(block)
        size += len(block)
        chunks += 1
        plaintext_size += len(current)
        if tag == TAG_FINAL:
            break
        current = following
    return StreamInfo(
        size=size, sha256=digest.digest(), chunks=chunks, plaintext_size=plaintext_size
    )


def decrypt_stream(
    key: FileKey,
    source: BinaryIO,
    sink: BinaryIO,
    *,
    expected_sha256: bytes | None = None,
) -> StreamInfo:
    """Decrypt a stream from `source` to `sink`, one chunk at a time.

    On any error the sink may hold the plaintext of the chunks before it:
    the caller must discard it (write to a temporary file; see the module
    docstring).

    Args:
        expected_sha256: The ciphertext hash from the message body; checked
            once the final chunk is read (the chunks themselves are already
            authenticated, this also pins the exact stored bytes).

    Raises:
        InvalidEnvelope: Not a Rounds stream (magic), a chunk size out of
            range, or a chunk tagged other than MESSAGE or FINAL.
        UnsupportedVersion: A stream of another version.
        TruncatedStream: The stream ends before its final chunk.
        DecryptionFailed: A chunk does not authenticate (altered, reordered,
            repeated, cut in the middle, wrong key), data follows the final
            chunk, or the hash differs from `expected_sha256`.
    """
    if not isinstance(key, FileKey):
        raise TypeError("key must be a FileKey")
    prefix = _read_exact(source, PREFIX_SIZE)
    if len(prefix) < PREFIX_SIZE:
        if MAGIC.startswith(prefix[: len(MAGIC)]):
            raise TruncatedStream("stream ends inside its prefix")
        raise InvalidEnvelope("not a Rounds encrypted stream")
    magic, version, chunk_size = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise InvalidEnvelope("not a Rounds encrypted stream")
    if version != STREAM_VERSION:
        raise UnsupportedVersion(f"stream version {version} is not supported")
    _check_chunk_size(chunk_size, InvalidEnvelope)
    header = _read_exact(source, HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        raise TruncatedStream("stream ends inside its header")
    digest = hashlib.sha256(prefix + header)
    size = PREFIX_SIZE + HEADER_SIZE
    state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
    nacl.bindings.crypto_secretstream_xchacha20poly1305_init_pull(state, header, bytes(key))

    block_size = chunk_size + ABYTES
    chunks = 0
    plaintext_size = 0
    while True:
        block = _read_exact(source, block_size)
        if not block:
            raise TruncatedStream(f"stream ends after chunk {chunks} without a final chunk")
        if len(block) < ABYTES:
            raise TruncatedStream(f"stream ends inside chunk {chunks}")
        try:
            plaintext, tag = nacl.bindings.crypto_secretstream_xchacha20poly1305_pull(
                state, block, prefix
            )
        except nacl.exceptions.CryptoError:
            raise DecryptionFailed(f"chunk {chunks} does not authenticate") from None
        digest.update(block)
        size += len(block)
        chunks += 1
        if tag == TAG_FINAL:
            break
        if tag != TAG_MESSAGE:
            raise InvalidEnvelope(f"chunk {chunks - 1} has an unexpected tag {tag}")
        if len(block) != block_size:
            # Only a final chunk may be short; an authentic short MESSAGE
            # chunk means the writer broke the format.
            raise InvalidEnvelope(f"chunk {chunks - 1} is short but not final")
        sink.write(plaintext)
        plaintext_size += len(plaintext)
    if source.read(1):
        raise DecryptionFailed("data after the final chunk")
    sink.write(plaintext)
    plaintext_size += len(plaintext)
    info = StreamInfo(
        size=size, sha256=digest.digest(), chunks=chunks, plaintext_size=plaintext_size
    )
    if expected_sha256 is not None and not nacl.bindings.sodium_memcmp(
        info.sha256, expected_sha256
    ):
        raise DecryptionFailed("stream hash differs from the one in the message")
    return info


def decrypt_to_bytes(key: FileKey, data: bytes, *, expected_sha256: bytes | None = None) -> bytes:
    """Decrypt a whole stream held in memory: all of the plaintext, or an error."""
    sink = io.BytesIO()
    decrypt_stream(key, io.BytesIO(data), sink, expected_sha256=expected_sha256)
    return sink.getvalue()


def encrypt_to_bytes(key: FileKey, data: bytes, chunk_size: int = CHUNK_SIZE) -> bytes:
    """Encrypt a small file held in memory (a thumbnail)."""
    sink = io.BytesIO()
    encrypt_stream(key, io.BytesIO(data), sink, chunk_size)
    return sink.getvalue()
