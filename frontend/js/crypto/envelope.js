// @ts-check
// Message envelope v2 (docs/crypto.md §8), as core/crypto/envelope.py:
// XChaCha20-Poly1305 under the room key, signed by the sender.
//
//   {"header": {"v": 2, "room", "thread", "key_version", "key_commitment",
//               "chain_seq", "chain_head", "sender", "client_msg_id",
//               "sent_at", "nonce", "sig", "corrects" (a correction only)},
//    "ciphertext": b64(plaintext + 16-byte tag)}
//
// - `corrects`, only in a correction, is the client_msg_id of the sender's
//   message it replaces; in the AD, so signed: a server cannot move a
//   correction onto another message. Absent, the AD is what it always was.
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
 */

/**
 * An envelope parsed (parseEnvelope): the header's fields, decoded.
 * @typedef {Readonly<{room: number, thread: number, key_version: number, key_commitment: Uint8Array,
 *   chain_seq: number, chain_head: string, head: ChainHead, sender: number, client_msg_id: string,
 *   sent_at: string, nonce: Uint8Array, signature: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array,
 *   corrects: string | null}>} ParsedEnvelope
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
const CORRECTION_HEADER_KEYS = [...HEADER_KEYS, "corrects"];

/** @param {AdInput} fields */
function adFields({ room, thread, keyVersion, keyCommitment, chainSeq, chainHash, sender, clientMsgId, sentAt, corrects = null }) {
  /** @type {Record<string, string | number>} */
  const fields = {
    v: ENVELOPE_VERSION, room, thread, key_version: keyVersion, key_commitment: b64encode(keyCommitment),
    chain_seq: chainSeq, chain_head: chainHash, sender, client_msg_id: clientMsgId, sent_at: sentAt,
  };
  if (corrects !== null) fields.corrects = corrects;
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
 * the sender's message it replaces.
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
  checkId(sender, "sender");
  checkClientMsgId(clientMsgId);
  if (corrects !== null) checkClientMsgId(corrects, "corrects");
  sentAt = checkSentAt(sentAt ?? nowTimestamp());
  const header = adFields({
    room: roomKey.department, thread, keyVersion: roomKey.version, keyCommitment: roomKey.commitment,
    chainSeq: seq, chainHash: hash, sender, clientMsgId, sentAt, corrects,
  });
  const ad = canonicalJson(header);
  const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, roomKey.key);
  const signature = sign(signer, CONTEXT_ENVELOPE, concat(ad, nonce, ciphertext));
  return { header: { ...header, nonce: b64encode(nonce), sig: b64encode(signature) }, ciphertext: b64encode(ciphertext) };
}

/**
 * Parse strictly without checking the signature: exact key sets, integer ids,
 * canonical base64 of the exact sizes, a chain head and a time as in §1.
 * Returns {room, thread, key_version, key_commitment, chain_seq, chain_head,
 * head: {seq, hash}, sender, client_msg_id, sent_at, nonce, signature,
 * ciphertext, ad (the authenticated bytes)}.
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
  if (!hasExactly(header, HEADER_KEYS) && !hasExactly(header, CORRECTION_HEADER_KEYS)) {
    throw invalidEnvelope(`envelope header: expected exactly the keys ${[...HEADER_KEYS].sort()}, and corrects in a correction`);
  }
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
  };
  const ad = canonicalJson(adFields({
    room: parsed.room, thread: parsed.thread, keyVersion: parsed.key_version, keyCommitment: parsed.key_commitment,
    chainSeq: parsed.chain_seq, chainHash: parsed.chain_head, sender: parsed.sender,
    clientMsgId: parsed.client_msg_id, sentAt: parsed.sent_at, corrects: parsed.corrects,
  }));
  return Object.freeze({ ...parsed, ad });
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
  if (parsed.room !== roomKey.department || parsed.key_version !== roomKey.version) {
    throw decryptionFailed(
      `envelope is for room ${parsed.room} key version ${parsed.key_version}, `
      + `not room ${roomKey.department} key version ${roomKey.version}`,
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
 * and the sender a member there (sender_not_member).
 * @param {unknown} envelope
 * @param {MembershipChain} chain
 */
export function verifyEnvelopeInChain(envelope, chain) {
  const parsed = parseEnvelope(envelope);
  if (chain.department !== null && parsed.room !== chain.department) {
    throw invalidEnvelope("the envelope names another department than the chain");
  }
  chain.checkCovers(parsed.head);
  const member = chain.memberAt(parsed.sender, parsed.chain_seq);
  if (!member) throw senderNotMember(`user ${parsed.sender} was not a member at statement ${parsed.chain_seq}`);
  checkSignature(parsed, chain.keyOf(member.fingerprint));
  return parsed;
}

/**
 * The envelope's key version against its verified record (keyversions.js)
 * and the sender's head: the record's version with its commitment
 * (key_commitment_mismatch), made no later than the sender's head
 * (invalid_envelope), and not before a removal or key replacement the sender
 * knew of (key_version_stale).
 * @param {ParsedEnvelope} parsed
 * @param {KeyVersionRecord} record
 * @param {MembershipChain} chain
 */
export function checkKeyVersionOf(parsed, record, chain) {
  if (record.department !== parsed.room || record.version !== parsed.key_version) {
    throw invalidEnvelope("the key version record is of another department or version");
  }
  if (!equalBytes(record.commitment, parsed.key_commitment)) {
    throw keyCommitmentMismatch("the envelope commits to another key than its key version");
  }
  if (record.chain_seq > parsed.chain_seq) throw invalidEnvelope("the envelope's chain head is older than its key version");
  const excludedAt = chain.lastExclusionAt(parsed.chain_seq);
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
