// @ts-check
// Message envelope v2 (docs/crypto.md §8), as core/crypto/envelope.py:
// XChaCha20-Poly1305 under the room key, signed by the sender.
//
//   {"header": {"v": 2, "room", "thread", "key_version", "key_commitment",
//               "chain_seq", "chain_head", "sender", "client_msg_id",
//               "sent_at", "nonce", "sig", "corrects" (a correction only),
//               "key" (under a consult thread's key only)},
//    "ciphertext": b64(plaintext + 16-byte tag)}
//
// - `corrects`, only in a correction, is the client_msg_id of the sender's
//   message it replaces; in the AD, so signed: a server cannot move a
//   correction onto another message. Absent, the AD is what it always was.
// - `key`, only under a consult thread's key (docs/crypto.md §14), is "thread":
//   key_version and key_commitment then name a version of the key of the
//   envelope's thread, and its sender may be a guest of that thread.
// - AD = canonical_json(header without nonce and sig), so the ciphertext only
//   opens in the room, thread and key version it was written for, under the
//   name of its sender, and carries the chain head its sender had verified: a
//   reader whose server withholds a statement the sender saw notices it.
// - sig = Ed25519(CONTEXT_ENVELOPE ‖ AD ‖ nonce ‖ ciphertext) by the sender;
//   AD is self-delimiting and the nonce of fixed size, so this is unambiguous.
//
// A reader calls openEnvelope, which takes the sender's key from the verified
// chain, never from the key directory.
import sodium from "./sodium.js";
import {
  b64decode, b64encode, canonicalJson, checkHash, checkId, checkVersion, concat, equalBytes, hasExactly, isObject,
  parseTimestamp,
} from "./encoding.js";
import { CONTEXT_ENVELOPE, sign, verify } from "./identity.js";
import {
  decryptionFailed, invalidEnvelope, keyCommitmentMismatch, keyVersionStale, senderNotMember,
} from "./errors.js";
import { chainHead } from "./chain.js";
import { checkCommitment, COMMITMENT_SIZE } from "./roomkeys.js";

/** @import { ChainHead, MembershipChain } from "./chain.js" */
/** @import { Identity, PublicIdentity } from "./identity.js" */
/** @import { KeyVersionRecord } from "./keyversions.js" */
/** @import { RoomKey } from "./roomkeys.js" */

/**
 * The fields the AD covers, in the code's names.
 * @typedef {object} AdInput
 * @property {number} room
 * @property {number} thread
 * @property {number} keyVersion
 * @property {Uint8Array} keyCommitment
 * @property {number} chainSeq
 * @property {string} chainHash
 * @property {number} sender
 * @property {string} clientMsgId
 * @property {string} sentAt
 * @property {string | null} [corrects]
 * @property {string | null} [key] THREAD_KEY under a consult thread's key
 */

/**
 * An envelope parsed (parseEnvelope): the header's fields, decoded.
 * @typedef {Readonly<{room: number, thread: number, key_version: number, key_commitment: Uint8Array,
 *   chain_seq: number, chain_head: string, head: ChainHead, sender: number, client_msg_id: string,
 *   sent_at: string, nonce: Uint8Array, signature: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array,
 *   corrects: string | null, key: string | null, key_thread: number | null}>} ParsedEnvelope
 * `key_thread` is the thread of the key it is under: its own thread under a
 * thread key, null under the room key.
 */

export const ENVELOPE_VERSION = 2;
const NONCE_SIZE = 24;
const TAG_SIZE = 16;
// 47 KiB: base64 makes the ciphertext 4/3 as long, so the largest envelope
// fits the server's 64 KiB frame with its message.post wrapper.
export const MAX_PLAINTEXT = 47 * 1024;
const MAX_CIPHERTEXT = MAX_PLAINTEXT + TAG_SIZE;
// The same rule as core/protocol.py's ClientMsgId.
const CLIENT_MSG_ID = /^[A-Za-z0-9_-]{8,64}$/;
const AD_KEYS = ["v", "room", "thread", "key_version", "key_commitment", "chain_seq", "chain_head", "sender", "client_msg_id", "sent_at"];
const HEADER_KEYS = [...AD_KEYS, "nonce", "sig"];
// `corrects` in a correction, `key` under a consult thread's key: each optional.
const OPTIONAL_KEYS = ["corrects", "key"];
/** The one value of `key`: the envelope is under its thread's key (docs/crypto.md §14). */
export const THREAD_KEY = "thread";

/** @param {AdInput} fields */
function adFields({
  room, thread, keyVersion, keyCommitment, chainSeq, chainHash, sender, clientMsgId, sentAt, corrects = null, key = null,
}) {
  /** @type {Record<string, string | number>} */
  const fields = {
    v: ENVELOPE_VERSION, room, thread, key_version: keyVersion, key_commitment: b64encode(keyCommitment),
    chain_seq: chainSeq, chain_head: chainHash, sender, client_msg_id: clientMsgId, sent_at: sentAt,
  };
  if (corrects !== null) fields.corrects = corrects;
  if (key !== null) fields.key = key;
  return fields;
}

/** @param {unknown} value @param {string} [field] @returns {string} */
function checkClientMsgId(value, field = "client_msg_id") {
  if (typeof value !== "string" || !CLIENT_MSG_ID.test(value)) {
    throw invalidEnvelope(`${field} must be 8 to 64 of A-Z a-z 0-9 _ -`);
  }
  return value;
}

/** @param {unknown} value */
function checkSentAt(value) {
  parseTimestamp(value, "sent_at");
  return /** @type {string} */ (value); // parseTimestamp refuses anything but a string
}

/** A random client_msg_id: 32 hex digits, like the Python client's uuid4().hex. */
export function newClientMsgId() {
  return sodium.to_hex(sodium.randombytes_buf(16));
}

/** This moment as sent_at: UTC, milliseconds, `Z` (Python: now_timestamp). */
export function nowTimestamp() {
  return new Date().toISOString();
}

/**
 * Encrypt and sign a message body; the wire dict. `roomKey` (roomkeys.js)
 * gives room, key_version and key_commitment; `head` ({seq, hash}) is the
 * department's chain head as the sender verified it; `signer` the sender's
 * identity (the key the chain admitted for them); `sentAt` the sender's clock,
 * now when omitted. `nonce` is for test vectors only: never reuse one with the
 * same room key. `corrects`, for a correction only, is the client_msg_id of
 * the sender's message it replaces. A consult thread's key (one with a
 * `thread`) adds `"key": "thread"` and must be the key of `thread`
 * (RangeError otherwise).
 * @param {Uint8Array} plaintext
 * @param {object} options
 * @param {RoomKey} options.roomKey
 * @param {{seq: number, hash: string}} options.head
 * @param {number} options.thread
 * @param {number} options.sender
 * @param {string} options.clientMsgId
 * @param {Identity} options.signer
 * @param {string | null} [options.sentAt]
 * @param {Uint8Array | null} [options.nonce]
 * @param {string | null} [options.corrects]
 */
export function encryptMessage(plaintext, { roomKey, head, thread, sender, clientMsgId, signer, sentAt = null, nonce = null, corrects = null }) {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError("plaintext must be bytes");
  if (plaintext.length > MAX_PLAINTEXT) throw new RangeError(`plaintext over MAX_PLAINTEXT (${MAX_PLAINTEXT} bytes)`);
  if (!isObject(head)) throw new TypeError("head must be a chain head {seq, hash}");
  nonce = nonce ?? sodium.randombytes_buf(NONCE_SIZE);
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_SIZE) throw new RangeError("nonce must be 24 bytes");
  const { seq, hash } = chainHead(head.seq, head.hash);
  checkId(thread, "thread");
  if (roomKey.thread !== null && roomKey.thread !== thread) {
    throw new RangeError(`a key of thread ${roomKey.thread} for a message in thread ${thread}`);
  }
  checkId(sender, "sender");
  checkClientMsgId(clientMsgId);
  if (corrects !== null) checkClientMsgId(corrects, "corrects");
  sentAt = checkSentAt(sentAt ?? nowTimestamp());
  const header = adFields({
    room: roomKey.department, thread, keyVersion: roomKey.version, keyCommitment: roomKey.commitment,
    chainSeq: seq, chainHash: hash, sender, clientMsgId, sentAt, corrects,
    key: roomKey.thread === null ? null : THREAD_KEY,
  });
  const ad = canonicalJson(header);
  const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, roomKey.key);
  const signature = sign(signer, CONTEXT_ENVELOPE, concat(ad, nonce, ciphertext));
  return { header: { ...header, nonce: b64encode(nonce), sig: b64encode(signature) }, ciphertext: b64encode(ciphertext) };
}

/**
 * Parse strictly without checking the signature: exact key sets (`corrects`
 * and `key` the optional keys), integer ids, canonical base64 of the exact
 * sizes, a chain head and a time as in §1. Returns {room, thread, key_version,
 * key_commitment, chain_seq, chain_head, head: {seq, hash}, sender,
 * client_msg_id, sent_at, nonce, signature, ciphertext, corrects, key,
 * key_thread, ad (the authenticated bytes)}.
 * @param {unknown} envelope
 * @returns {ParsedEnvelope}
 */
export function parseEnvelope(envelope) {
  if (!isObject(envelope) || !hasExactly(envelope, ["header", "ciphertext"])) {
    throw invalidEnvelope("envelope: expected exactly header and ciphertext");
  }
  const header = envelope.header;
  if (!isObject(header)) throw invalidEnvelope("envelope: header must be an object");
  checkVersion(header, "envelope", ENVELOPE_VERSION);
  const keys = Object.keys(header);
  if (!HEADER_KEYS.every((k) => Object.hasOwn(header, k)) || !keys.every((k) => HEADER_KEYS.includes(k) || OPTIONAL_KEYS.includes(k))) {
    throw invalidEnvelope(
      `envelope header: expected exactly the keys ${[...HEADER_KEYS].sort()}, corrects in a correction and key under a thread key`,
    );
  }
  if (Object.hasOwn(header, "key") && header.key !== THREAD_KEY) throw invalidEnvelope(`key: the only value is "${THREAD_KEY}"`);
  const text = envelope.ciphertext;
  // Refuse an oversized ciphertext before decoding it.
  if (typeof text !== "string" || text.length > 4 * (Math.floor(MAX_CIPHERTEXT / 3) + 1)) {
    throw invalidEnvelope("ciphertext: expected base64 of at most MAX_CIPHERTEXT bytes");
  }
  const ciphertext = b64decode(text, { field: "ciphertext" });
  if (ciphertext.length < TAG_SIZE || ciphertext.length > MAX_CIPHERTEXT) {
    throw invalidEnvelope(`ciphertext: expected ${TAG_SIZE} to ${MAX_CIPHERTEXT} bytes`);
  }
  const head = chainHead(header.chain_seq, checkHash(header.chain_head, "chain_head"));
  const parsed = {
    room: checkId(header.room, "room"),
    thread: checkId(header.thread, "thread"),
    key_version: checkId(header.key_version, "key_version"),
    key_commitment: b64decode(header.key_commitment, { size: COMMITMENT_SIZE, field: "key_commitment" }),
    chain_seq: head.seq,
    chain_head: head.hash,
    head,
    sender: checkId(header.sender, "sender"),
    client_msg_id: checkClientMsgId(header.client_msg_id),
    sent_at: checkSentAt(header.sent_at),
    nonce: b64decode(header.nonce, { size: NONCE_SIZE, field: "nonce" }),
    signature: b64decode(header.sig, { size: 64, field: "sig" }),
    ciphertext,
    corrects: Object.hasOwn(header, "corrects") ? checkClientMsgId(header.corrects, "corrects") : null,
    key: Object.hasOwn(header, "key") ? THREAD_KEY : null,
  };
  const ad = canonicalJson(adFields({
    room: parsed.room, thread: parsed.thread, keyVersion: parsed.key_version, keyCommitment: parsed.key_commitment,
    chainSeq: parsed.chain_seq, chainHash: parsed.chain_head, sender: parsed.sender,
    clientMsgId: parsed.client_msg_id, sentAt: parsed.sent_at, corrects: parsed.corrects, key: parsed.key,
  }));
  return Object.freeze({ ...parsed, key_thread: parsed.key === THREAD_KEY ? parsed.thread : null, ad });
}

/** @param {ParsedEnvelope} parsed @param {PublicIdentity} senderKey */
function checkSignature(parsed, senderKey) {
  verify(senderKey, CONTEXT_ENVELOPE, concat(parsed.ad, parsed.nonce, parsed.ciphertext), parsed.signature);
}

/**
 * Parse and check the sender's signature with a given key; no decryption.
 * The server's check (it has the sender's published key, not the room key).
 * @param {unknown} envelope
 * @param {PublicIdentity} senderKey
 */
export function verifyEnvelope(envelope, senderKey) {
  const parsed = parseEnvelope(envelope);
  checkSignature(parsed, senderKey);
  return parsed;
}

/** @param {ParsedEnvelope} parsed @param {RoomKey} roomKey @returns {Uint8Array} */
function decrypt(parsed, roomKey) {
  if (parsed.room !== roomKey.department || parsed.key_thread !== roomKey.thread || parsed.key_version !== roomKey.version) {
    throw decryptionFailed(
      `envelope is for room ${parsed.room} key ${parsed.key_thread ?? "room"} version ${parsed.key_version}, `
      + `not room ${roomKey.department} key ${roomKey.thread ?? "room"} version ${roomKey.version}`,
    );
  }
  checkCommitment(roomKey, parsed.key_commitment);
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, parsed.ciphertext, parsed.ad, parsed.nonce, roomKey.key);
  } catch {
    throw decryptionFailed("ciphertext does not authenticate under this room key");
  }
}

/**
 * Verify against `senderKey`, then decrypt: the whole plaintext or an error,
 * never part of it. The primitive step of openEnvelope, for callers that
 * already chose the sender's key (test vectors). The commitment is checked
 * before the AEAD (key_commitment_mismatch).
 * @param {unknown} envelope
 * @param {{roomKey: RoomKey, senderKey: PublicIdentity}} keys
 */
export function decryptMessage(envelope, { roomKey, senderKey }) {
  return decrypt(verifyEnvelope(envelope, senderKey), roomKey);
}

/**
 * Parse and check the signature with the key the chain admitted for the
 * sender at the head the envelope names. That head must be in `chain` (the
 * reader's verified chain of the room: membership_withheld, membership_fork),
 * and the sender a member there, or under a thread key a guest of that thread
 * (sender_not_member).
 * @param {unknown} envelope
 * @param {MembershipChain} chain
 */
export function verifyEnvelopeInChain(envelope, chain) {
  const parsed = parseEnvelope(envelope);
  if (chain.department !== null && parsed.room !== chain.department) {
    throw invalidEnvelope("the envelope names another department than the chain");
  }
  chain.checkCovers(parsed.head);
  const underThreadKey = parsed.key_thread !== null;
  const member = chain.memberAt(parsed.sender, parsed.chain_seq)
    ?? (underThreadKey ? chain.guestAt(parsed.thread, parsed.sender, parsed.chain_seq) : null);
  if (!member) {
    throw senderNotMember(
      `user ${parsed.sender} was not a member at statement ${parsed.chain_seq}`
      + (underThreadKey ? `, nor a guest of thread ${parsed.thread}` : ""),
    );
  }
  checkSignature(parsed, chain.keyOf(member.fingerprint));
  return parsed;
}

/**
 * The envelope's key version against its verified record (keyversions.js)
 * and the sender's head: the record's thread and version with its commitment
 * (key_commitment_mismatch), made no later than the sender's head
 * (invalid_envelope), and not before a removal or key replacement (or, for a
 * thread key, an unguest of its thread) the sender knew of (key_version_stale).
 * @param {ParsedEnvelope} parsed
 * @param {KeyVersionRecord} record
 * @param {MembershipChain} chain
 */
export function checkKeyVersionOf(parsed, record, chain) {
  if (record.department !== parsed.room || record.thread !== parsed.key_thread || record.version !== parsed.key_version) {
    throw invalidEnvelope("the key version record is of another department, thread or version");
  }
  if (!equalBytes(record.commitment, parsed.key_commitment)) {
    throw keyCommitmentMismatch("the envelope commits to another key than its key version");
  }
  if (record.chain_seq > parsed.chain_seq) throw invalidEnvelope("the envelope's chain head is older than its key version");
  const excludedAt = chain.lastExclusionAt(parsed.chain_seq, parsed.key_thread);
  if (record.chain_seq < excludedAt) {
    throw keyVersionStale(
      `written under key version ${record.version} (statement ${record.chain_seq}) after `
      + `the removal or key replacement of statement ${excludedAt}`,
    );
  }
}

/**
 * Everything a reader checks, then the plaintext: the client's one way in.
 * `chain` is the reader's verified chain of the room, `record` the verified
 * record of the envelope's key version, `roomKey` its key.
 * Returns {header (as parseEnvelope), plaintext}, or throws.
 * @param {unknown} envelope
 * @param {{chain: MembershipChain, record: KeyVersionRecord, roomKey: RoomKey}} verified
 */
export function openEnvelope(envelope, { chain, record, roomKey }) {
  const parsed = verifyEnvelopeInChain(envelope, chain);
  checkKeyVersionOf(parsed, record, chain);
  return { header: parsed, plaintext: decrypt(parsed, roomKey) };
}
