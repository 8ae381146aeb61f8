"""Streaming file encryption: sizes, truncation, reordering, tampering, flat memory."""

import hashlib
import io
import os
import struct
import tracemalloc

import nacl.bindings as b
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import (
    CHUNK_SIZE,
    DecryptionFailed,
    FileKey,
    InvalidEnvelope,
    InvalidKey,
    TruncatedStream,
    UnsupportedVersion,
    decrypt_stream,
    decrypt_to_bytes,
    encrypt_stream,
    encrypt_to_bytes,
)
from core.crypto.stream import (
    ABYTES,
    HEADER_SIZE,
    MAX_CHUNK_SIZE,
    PREFIX_SIZE,
    ciphertext_size,
)

SMALL = 16
START = PREFIX_SIZE + HEADER_SIZE  # 9 + 24
BLOCK = SMALL + ABYTES


@pytest.fixture(scope="module")
def key() -> FileKey:
    return FileKey.generate()


def _encrypt(key, data, chunk_size=SMALL):
    sink = io.BytesIO()
    info = encrypt_stream(key, io.BytesIO(data), sink, chunk_size)
    return sink.getvalue(), info


def _chunks(stream: bytes) -> list[bytes]:
    body = stream[START:]
    return [body[i : i + BLOCK] for i in range(0, len(body), BLOCK)]


@pytest.mark.parametrize(
    "size, chunks",
    [(0, 1), (1, 1), (SMALL - 1, 1), (SMALL, 1), (SMALL + 1, 2), (3 * SMALL, 3), (200, 13)],
)
def test_round_trip_sizes(key, size, chunks):
    data = bytes(i % 251 for i in range(size))
    stream, info = _encrypt(key, data)
    assert info.chunks == chunks
    assert info.size == len(stream) == START + size + chunks * ABYTES
    assert info.sha256 == hashlib.sha256(stream).digest()
    assert info.plaintext_size == size
    assert decrypt_to_bytes(key, stream) == data
    out = io.BytesIO()
    assert decrypt_stream(key, io.BytesIO(stream), out) == info
    assert out.getvalue() == data


def test_layout_and_tags(key):
    stream, _ = _encrypt(key, bytes(40))
    assert stream[:PREFIX_SIZE] == b"RNDS\x01" + struct.pack(">I", SMALL)
    # Pull with raw libsodium calls: MESSAGE, MESSAGE, FINAL; the prefix is the AD.
    state = b.crypto_secretstream_xchacha20poly1305_state()
    b.crypto_secretstream_xchacha20poly1305_init_pull(state, stream[PREFIX_SIZE:START], bytes(key))
    tags = []
    for chunk in _chunks(stream):
        _, tag = b.crypto_secretstream_xchacha20poly1305_pull(state, chunk, stream[:PREFIX_SIZE])
        tags.append(tag)
    assert tags == [0, 0, 3]
    assert [len(c) for c in _chunks(stream)] == [BLOCK, BLOCK, 8 + ABYTES]


def test_empty_file_is_one_empty_final_chunk(key):
    stream, info = _encrypt(key, b"")
    assert len(stream) == START + ABYTES and info.chunks == 1


def test_default_chunk_size(key):
    assert CHUNK_SIZE == 64 * 1024
    data = bytes(CHUNK_SIZE * 2 + 5)
    stream = encrypt_to_bytes(key, data)
    assert len(stream) == START + len(data) + 3 * ABYTES
    assert decrypt_to_bytes(key, stream) == data


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=300), chunk_size=st.integers(1, 64))
def test_round_trip_property(key, data, chunk_size):
    stream, info = _encrypt(key, data, chunk_size)
    assert decrypt_to_bytes(key, stream, expected_sha256=info.sha256) == data


def test_wrong_key(key):
    stream, _ = _encrypt(key, b"photo")
    with pytest.raises(DecryptionFailed):
        decrypt_to_bytes(FileKey.generate(), stream)


def test_expected_hash(key):
    stream, info = _encrypt(key, b"photo")
    with pytest.raises(DecryptionFailed, match="hash"):
        decrypt_to_bytes(key, stream, expected_sha256=bytes(32))
    assert decrypt_to_bytes(key, stream, expected_sha256=info.sha256) == b"photo"


# --- Truncation ---------------------------------------------------------------


def test_truncation_at_every_chunk_boundary(key):
    stream, info = _encrypt(key, bytes(5 * SMALL + 3))
    assert info.chunks == 6
    for count in range(info.chunks):  # 0 .. 5 whole chunks, the final one missing
        with pytest.raises(TruncatedStream):
            decrypt_to_bytes(key, stream[: START + count * BLOCK])


def test_truncation_inside_every_chunk(key):
    stream, _ = _encrypt(key, bytes(5 * SMALL + 3))
    for cut in range(START + 1, len(stream)):
        if (cut - START) % BLOCK == 0:
            continue  # boundaries: above
        with pytest.raises(DecryptionFailed):  # TruncatedStream is a DecryptionFailed
            decrypt_to_bytes(key, stream[:cut])


def test_truncation_inside_prefix_and_header(key):
    stream, _ = _encrypt(key, b"abc")
    for cut in range(START):
        with pytest.raises(TruncatedStream):
            decrypt_to_bytes(key, stream[:cut])


def test_final_chunk_dropped_from_an_exact_multiple(key):
    stream, info = _encrypt(key, bytes(3 * SMALL))
    assert info.chunks == 3  # the last full chunk carries FINAL: no empty chunk
    with pytest.raises(TruncatedStream):
        decrypt_to_bytes(key, stream[: START + 2 * BLOCK])


# --- Reordering, duplication, extra data --------------------------------------


def test_swapped_chunks(key):
    stream, _ = _encrypt(key, bytes(range(4 * SMALL)))
    c = _chunks(stream)
    for order in ([1, 0, 2, 3], [0, 2, 1, 3], [0, 1, 3, 2], [3, 2, 1, 0]):
        with pytest.raises(DecryptionFailed):
            decrypt_to_bytes(key, stream[:START] + b"".join(c[i] for i in order))


def test_duplicated_chunk(key):
    stream, _ = _encrypt(key, bytes(range(4 * SMALL)))
    c = _chunks(stream)
    for chunks in ([c[0], c[0], c[1], c[2], c[3]], [c[0], c[1], c[1], c[2], c[3]]):
        with pytest.raises(DecryptionFailed):
            decrypt_to_bytes(key, stream[:START] + b"".join(chunks))
    with pytest.raises(DecryptionFailed):  # the final chunk twice
        decrypt_to_bytes(key, stream + c[3])


def test_dropped_middle_chunk(key):
    stream, _ = _encrypt(key, bytes(range(4 * SMALL)))
    c = _chunks(stream)
    with pytest.raises(DecryptionFailed):
        decrypt_to_bytes(key, stream[:START] + c[0] + c[2] + c[3])


@pytest.mark.parametrize("extra", [b"\x00", b"garbage", bytes(BLOCK)])
def test_data_after_the_final_chunk(key, extra):
    # A short final chunk: the extra bytes are read as part of it and fail its tag.
    stream, _ = _encrypt(key, bytes(40))
    with pytest.raises(DecryptionFailed):
        decrypt_to_bytes(key, stream + extra)
    # A full final chunk: it authenticates, then the extra bytes are found.
    stream, _ = _encrypt(key, bytes(48))
    with pytest.raises(DecryptionFailed, match="after the final"):
        decrypt_to_bytes(key, stream + extra)


def test_chunk_from_another_stream(key):
    one, _ = _encrypt(key, bytes(3 * SMALL))
    two, _ = _encrypt(key, bytes(3 * SMALL))
    with pytest.raises(DecryptionFailed):
        decrypt_to_bytes(key, one[:START] + _chunks(two)[0] + b"".join(_chunks(one)[1:]))


# --- Bit flips ----------------------------------------------------------------


def test_every_byte_flipped(key):
    stream, _ = _encrypt(key, bytes(range(2 * SMALL + 5)))
    for index in range(len(stream)):
        tampered = bytearray(stream)
        tampered[index] ^= 0x01
        with pytest.raises((DecryptionFailed, InvalidEnvelope, UnsupportedVersion)):
            decrypt_to_bytes(key, bytes(tampered))


def test_prefix_fields(key):
    stream, _ = _encrypt(key, bytes(40))
    with pytest.raises(InvalidEnvelope):
        decrypt_to_bytes(key, b"RNDX" + stream[4:])
    with pytest.raises(UnsupportedVersion):
        decrypt_to_bytes(key, stream[:4] + b"\x02" + stream[5:])
    for size in (0, MAX_CHUNK_SIZE + 1, 2**32 - 1):
        with pytest.raises(InvalidEnvelope):
            decrypt_to_bytes(key, stream[:5] + struct.pack(">I", size) + stream[9:])
    with pytest.raises(DecryptionFailed):  # the prefix is authenticated as AD
        decrypt_to_bytes(key, stream[:5] + struct.pack(">I", SMALL + 1) + stream[9:])


def test_a_short_message_chunk_is_refused(key):
    """Only the final chunk may be short, even if a writer authenticates a short one."""
    prefix = b"RNDS\x01" + struct.pack(">I", SMALL)
    state = b.crypto_secretstream_xchacha20poly1305_state()
    header = b.crypto_secretstream_xchacha20poly1305_init_push(state, bytes(key))
    short = b.crypto_secretstream_xchacha20poly1305_push(state, b"abc", prefix, 0)
    with pytest.raises(InvalidEnvelope, match="short but not final"):
        decrypt_to_bytes(key, prefix + header + short)


def test_other_tags_are_refused(key):
    prefix = b"RNDS\x01" + struct.pack(">I", SMALL)
    state = b.crypto_secretstream_xchacha20poly1305_state()
    header = b.crypto_secretstream_xchacha20poly1305_init_push(state, bytes(key))
    push = b.crypto_secretstream_xchacha20poly1305_push(
        state, bytes(SMALL), prefix, b.crypto_secretstream_xchacha20poly1305_TAG_PUSH
    )
    final = b.crypto_secretstream_xchacha20poly1305_push(state, b"", prefix, 3)
    with pytest.raises(InvalidEnvelope, match="tag"):
        decrypt_to_bytes(key, prefix + header + push + final)


# --- Partial output and reads ---------------------------------------------------


def test_decrypt_to_bytes_returns_all_or_nothing(key):
    stream, _ = _encrypt(key, bytes(range(100)))
    result = None
    with pytest.raises(TruncatedStream):
        result = decrypt_to_bytes(key, stream[: START + 3 * BLOCK])
    assert result is None


def test_decrypt_stream_documents_partial_output(key):
    """decrypt_stream raises, but earlier chunks are already in the sink: callers discard it."""
    stream, _ = _encrypt(key, bytes(range(100)))
    sink = io.BytesIO()
    with pytest.raises(TruncatedStream):
        decrypt_stream(key, io.BytesIO(stream[: START + 3 * BLOCK]), sink)
    assert sink.getvalue() == bytes(range(3 * SMALL))


class Trickle(io.RawIOBase):
    """A source that returns at most 5 bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 5) if size >= 0 else 5)


def test_short_reads_are_retried(key):
    data = bytes(range(200))
    stream, info = _encrypt(key, data)
    sink = io.BytesIO()
    encrypt_stream(key, Trickle(data), io.BytesIO(), SMALL)
    assert decrypt_stream(key, Trickle(stream), sink).chunks == info.chunks
    assert sink.getvalue() == data


def test_file_key_constructor():
    assert FileKey.KEY_SIZE == 32
    for bad in (b"", bytes(31), bytes(33), "k" * 32, bytearray(32)):
        with pytest.raises(InvalidKey):
            FileKey(bad)
    key = FileKey.generate()
    assert bytes(key).hex() not in repr(key)
    assert key == FileKey(bytes(key)) and key != FileKey.generate()


def test_chunk_size_is_checked(key):
    for bad in (0, -1, MAX_CHUNK_SIZE + 1, True, 1.5):
        with pytest.raises(ValueError):
            encrypt_stream(key, io.BytesIO(b"x"), io.BytesIO(), bad)


# --- Memory -------------------------------------------------------------------


class HashSink(io.RawIOBase):
    """Keeps nothing but a hash, so the sink itself does not grow."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.hash.update(data)
        self.size += len(data)
        return len(data)


def test_decryption_memory_is_flat(key, tmp_path):
    """Decrypting 20 MiB keeps the traced peak under 1 MiB (a few 64 KiB chunks)."""
    size = 20 * 1024 * 1024
    plain = tmp_path / "plain"
    with plain.open("wb") as f:
        for i in range(size // (1024 * 1024)):
            f.write(bytes([i]) * (1024 * 1024))
    encrypted = tmp_path / "encrypted"
    with plain.open("rb") as source, encrypted.open("wb") as sink:
        encrypt_stream(key, source, sink)

    out = HashSink()
    with encrypted.open("rb") as source:
        tracemalloc.start()
        try:
            info = decrypt_stream(key, source, out)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert info.plaintext_size == out.size == size
    expected = hashlib.sha256()
    for i in range(size // (1024 * 1024)):
        expected.update(bytes([i]) * (1024 * 1024))
    assert out.hash.digest() == expected.digest()
    assert peak < 1024 * 1024, f"peak {peak} bytes"


@pytest.mark.parametrize("size", [0, 1, 1000, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 5])
@pytest.mark.parametrize("chunk_size", [1024, 65536])
def test_ciphertext_size_is_what_encryption_stores(size, chunk_size):
    stored = encrypt_to_bytes(FileKey.generate(), os.urandom(size), chunk_size)

    assert ciphertext_size(size, chunk_size) == len(stored)


def test_ciphertext_size_refuses_nonsense():
    with pytest.raises(ValueError):
        ciphertext_size(-1)
    with pytest.raises(ValueError):
        ciphertext_size(10, chunk_size=0)
