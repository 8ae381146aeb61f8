// @ts-check
// File stream v1 (docs/crypto.md §8), as core/crypto/stream.py: secretstream
// chunks under a random file key, the 9-byte prefix as every chunk's AD,
// TAG_FINAL on the last; truncation, reordering and trailing data refused.
// In memory here (photos are a few MB); decryptStream returns all or throws.
import sodium from "./sodium.js";
import { concat, equalBytes, utf8 } from "./encoding.js";
import { decryptionFailed, invalidEnvelope, invalidKey, truncatedStream, unsupportedVersion } from "./errors.js";

const MAGIC = utf8("RNDS");
const PREFIX_SIZE = 9;
const HEADER_SIZE = 24;
const ABYTES = 17;
export const CHUNK_SIZE = 64 * 1024;
const MAX_CHUNK_SIZE = 1024 * 1024;
const TAG_MESSAGE = 0;
const TAG_FINAL = 3;

export function generateFileKey() {
  return sodium.crypto_secretstream_xchacha20poly1305_keygen();
}

/** @param {unknown} key @returns {asserts key is Uint8Array} */
function checkKey(key) {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw invalidKey("file key must be 32 bytes");
}

/**
 * Encrypt bytes; returns {stream, size, sha256, chunks, plaintextSize}.
 * @param {Uint8Array} key a file key (generateFileKey)
 * @param {Uint8Array} plaintext
 * @param {number} [chunkSize]
 */
export function encryptStream(key, plaintext, chunkSize = CHUNK_SIZE) {
  checkKey(key);
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) throw new RangeError("chunk_size out of range");
  const prefix = new Uint8Array(PREFIX_SIZE);
  prefix.set(MAGIC);
  prefix[4] = 1;
  new DataView(prefix.buffer).setUint32(5, chunkSize);
  const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
  const parts = [prefix, header];
  const hash = sodium.crypto_hash_sha256_init();
  sodium.crypto_hash_sha256_update(hash, prefix);
  sodium.crypto_hash_sha256_update(hash, header);
  let offset = 0;
  let chunks = 0;
  // The last chunk carries FINAL even when full: no empty chunk follows a multiple of chunk_size.
  do {
    const piece = plaintext.subarray(offset, offset + chunkSize);
    offset += piece.length;
    const tag = offset < plaintext.length ? TAG_MESSAGE : TAG_FINAL;
    const block = sodium.crypto_secretstream_xchacha20poly1305_push(state, piece, prefix, tag);
    sodium.crypto_hash_sha256_update(hash, block);
    parts.push(block);
    chunks += 1;
    if (tag === TAG_FINAL) break;
  } while (true); // eslint-disable-line no-constant-condition -- left by the break on the final tag
  const stream = concat(...parts);
  return { stream, size: stream.length, sha256: sodium.crypto_hash_sha256_final(hash), chunks, plaintextSize: plaintext.length };
}

/**
 * Decrypt a whole stream held in memory: all of the plaintext, or an error.
 * @param {Uint8Array} key
 * @param {Uint8Array} data
 * @param {{expectedSha256?: Uint8Array | null}} [options] the SHA-256 of `data` the signed message gives
 * @returns {Uint8Array<ArrayBuffer>} a fresh buffer, never shared
 */
export function decryptStream(key, data, { expectedSha256 = null } = {}) {
  checkKey(key);
  if (data.length < PREFIX_SIZE) {
    const head = data.subarray(0, 4);
    if (equalBytes(head, MAGIC.subarray(0, head.length))) throw truncatedStream("stream ends inside its prefix");
    throw invalidEnvelope("not a Rounds encrypted stream");
  }
  const prefix = data.slice(0, PREFIX_SIZE);
  if (!equalBytes(prefix.subarray(0, 4), MAGIC)) throw invalidEnvelope("not a Rounds encrypted stream");
  if (prefix[4] !== 1) throw unsupportedVersion(`stream version ${prefix[4]} is not supported`);
  const chunkSize = new DataView(prefix.buffer).getUint32(5);
  if (chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) throw invalidEnvelope(`chunk_size must be 1 .. ${MAX_CHUNK_SIZE}`);
  if (data.length < PREFIX_SIZE + HEADER_SIZE) throw truncatedStream("stream ends inside its header");
  const header = data.slice(PREFIX_SIZE, PREFIX_SIZE + HEADER_SIZE);
  const state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(header, key);
  const blockSize = chunkSize + ABYTES;
  const out = [];
  let at = PREFIX_SIZE + HEADER_SIZE;
  let chunks = 0;
  while (true) {
    const block = data.subarray(at, at + blockSize);
    if (block.length === 0) throw truncatedStream(`stream ends after chunk ${chunks} without a final chunk`);
    if (block.length < ABYTES) throw truncatedStream(`stream ends inside chunk ${chunks}`);
    const pulled = sodium.crypto_secretstream_xchacha20poly1305_pull(state, block, prefix);
    if (!pulled) throw decryptionFailed(`chunk ${chunks} does not authenticate`);
    at += block.length;
    chunks += 1;
    out.push(pulled.message);
    if (pulled.tag === TAG_FINAL) break;
    if (pulled.tag !== TAG_MESSAGE) throw invalidEnvelope(`chunk ${chunks - 1} has an unexpected tag ${pulled.tag}`);
    if (block.length !== blockSize) throw invalidEnvelope(`chunk ${chunks - 1} is short but not final`);
  }
  if (at < data.length) throw decryptionFailed("data after the final chunk");
  if (expectedSha256 !== null && !sodium.memcmp(sodium.crypto_hash_sha256(data), expectedSha256)) {
    throw decryptionFailed("stream hash differs from the one in the message");
  }
  return concat(...out);
}
