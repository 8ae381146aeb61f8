// @ts-check
// Room keys, their commitments and signed wrap records (docs/crypto.md §5), as
// core/crypto/roomkeys.py. The sealed content names its department and
// version, so a wrap moved to another room or version is refused even if a
// member re-signed it; and every version has one commitment, signed in its key
// version record, in every wrap and in every envelope, so a version cannot
// carry one key for some members and another for others.
//
// A consult thread's key (docs/crypto.md §14) is a room key with a `thread`:
// its commitment has its own domain, and its wrap record and sealed content
// carry the thread; without a thread every byte is a room key's.
import sodium from "./sodium.js";
import {
  b64decode, b64encode, canonicalJson, checkFingerprint, checkId, checkVersion, concat, equalBytes,
  hasExactly, isObject, parseCanonicalJson, utf8,
} from "./encoding.js";
import { CONTEXT_WRAP, sign, verify } from "./identity.js";
import { badSignature, decryptionFailed, invalidEnvelope, invalidKey, keyCommitmentMismatch } from "./errors.js";

export const WRAP_VERSION = 2;
export const COMMITMENT_SIZE = 32;
const COMMITMENT_DOMAIN = utf8("rounds-key-commitment-v2\0");
// Another domain, so a room key version can never pass for a thread key version, nor the other way round.
const THREAD_COMMITMENT_DOMAIN = utf8("rounds-thread-key-commitment-v1\0");
const SEAL_OVERHEAD = 48; // ephemeral public key + tag
// The sealed content is about 80 bytes; anything much larger is not a wrap.
const MAX_SEALED_SIZE = 512;
/** @import { Identity, PublicIdentity } from "./identity.js" */

/**
 * Version `version` of a department's 32-byte key, with its commitment; with a
 * `thread`, of that one consult thread's key (versioned on its own), null for the room key.
 * @typedef {Readonly<{key: Uint8Array, department: number, thread: number | null, version: number,
 *   commitment: Uint8Array}>} RoomKey
 */

/**
 * A parsed wrap record: a room key sealed for one recipient, signed by its wrapper.
 * @typedef {object} WrapRecord
 * @property {number} department
 * @property {number} version
 * @property {Uint8Array} commitment
 * @property {string} recipient_fp
 * @property {string} wrapper_fp
 * @property {Uint8Array} sealed
 * @property {Uint8Array} signature
 * @property {number | null} thread a thread key's thread, null for a room key
 */

const RECORD_KEYS = ["v", "department", "version", "commitment", "recipient_fp", "wrapper_fp", "sealed", "sig"];
const THREAD_RECORD_KEYS = [...RECORD_KEYS, "thread"];

/**
 * BLAKE2b-256 keyed with the room key, over the domain and canonical
 * {department, version}; a thread key's over its own domain and {department,
 * thread, version}. Keyed BLAKE2b is collision resistant in its key as well:
 * no one, the key's creator included, can find a second key with the same
 * commitment.
 * @param {Uint8Array} key
 * @param {number} department
 * @param {number} version
 * @param {number | null} [thread]
 */
export function keyCommitment(key, department, version, thread = null) {
  const message = thread === null
    ? concat(COMMITMENT_DOMAIN, canonicalJson({ department, version }))
    : concat(THREAD_COMMITMENT_DOMAIN, canonicalJson({ department, thread, version }));
  return sodium.crypto_generichash(COMMITMENT_SIZE, message, key);
}

/**
 * {department, thread, version, key, commitment}: version `version` of a
 * department's 32-byte key, or with a `thread` of that consult thread's key.
 * @param {unknown} key
 * @param {unknown} department
 * @param {unknown} version
 * @param {unknown} [thread] null (or omitted) for the room key
 * @returns {RoomKey}
 */
export function roomKey(key, department, version, thread = null) {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw invalidKey("room key must be 32 bytes");
  const d = checkId(department, "department", (m) => new RangeError(m));
  const v = checkId(version, "version", (m) => new RangeError(m));
  const t = thread === null ? null : checkId(thread, "thread", (m) => new RangeError(m));
  return Object.freeze({ key, department: d, thread: t, version: v, commitment: keyCommitment(key, d, v, t) });
}

/** @param {number} department @param {number} version @param {number | null} [thread] */
export function generateRoomKey(department, version, thread = null) {
  return roomKey(sodium.randombytes_buf(32), department, version, thread);
}

/** @param {RoomKey} a @param {RoomKey} b */
export function sameRoomKey(a, b) {
  return a.department === b.department && a.thread === b.thread && a.version === b.version
    && sodium.memcmp(a.key, b.key);
}

/**
 * Refuse a room key that is not the one `commitment` names (key_commitment_mismatch).
 * @param {RoomKey} key
 * @param {Uint8Array} commitment
 */
export function checkCommitment(key, commitment) {
  if (!equalBytes(key.commitment, commitment)) {
    throw keyCommitmentMismatch(`room key version ${key.version} does not match its signed commitment`);
  }
}

// CONTEXT_WRAP signs canonical_json({v, department, version, commitment,
// recipient_fp, wrapper_fp}, plus thread for a thread key) ‖ sealed: the JSON
// object is self-delimiting, so the split is unambiguous.
/** @param {Omit<WrapRecord, "sealed" | "signature">} r */
function recordFields(r) {
  /** @type {Record<string, string | number>} */
  const fields = {
    v: WRAP_VERSION, department: r.department, version: r.version, commitment: b64encode(r.commitment),
    recipient_fp: r.recipient_fp, wrapper_fp: r.wrapper_fp,
  };
  if (r.thread !== null) fields.thread = r.thread;
  return fields;
}

/** @param {Omit<WrapRecord, "signature">} r */
function signedBytes(r) {
  return concat(canonicalJson(recordFields(r)), r.sealed);
}

/** Parse a wrap record strictly: {department, version, commitment, recipient_fp, wrapper_fp, sealed, signature, thread}. */
/**
 * @param {unknown} data
 * @returns {WrapRecord}
 */
export function parseWrapRecord(data) {
  if (!isObject(data)) throw invalidEnvelope("wrap record must be an object");
  checkVersion(data, "wrap record", WRAP_VERSION);
  const expected = Object.hasOwn(data, "thread") ? THREAD_RECORD_KEYS : RECORD_KEYS;
  if (!hasExactly(data, expected)) throw invalidEnvelope("wrap record: expected exactly the keys " + [...expected].sort());
  const record = {
    department: checkId(data.department, "department"),
    version: checkId(data.version, "version"),
    commitment: b64decode(data.commitment, { size: COMMITMENT_SIZE, field: "commitment" }),
    recipient_fp: checkFingerprint(data.recipient_fp, "recipient_fp"),
    wrapper_fp: checkFingerprint(data.wrapper_fp, "wrapper_fp"),
    sealed: b64decode(data.sealed, { field: "sealed" }),
    signature: b64decode(data.sig, { size: 64, field: "sig" }),
    thread: Object.hasOwn(data, "thread") ? checkId(data.thread, "thread") : null,
  };
  if (!(record.sealed.length > SEAL_OVERHEAD && record.sealed.length <= MAX_SEALED_SIZE)) {
    throw invalidEnvelope("sealed: wrong size");
  }
  return record;
}

/** The bytes a wrapper signs after CONTEXT_WRAP (Python: WrapRecord.signed_bytes). */
/** @param {WrapRecord} record */
export function wrapSignedBytes(record) {
  return signedBytes(record);
}

/**
 * Seal a room key for `recipient` (a checked public identity) and sign as
 * `wrapper`; the wire dict. Only wrap for a member at the head of the
 * department's verified chain (chain.js), a thread key also for a guest of its
 * thread there (guestsOf), or for the pinned compliance key.
 * @param {RoomKey} key
 * @param {PublicIdentity} recipient
 * @param {Identity} wrapper
 */
export function wrapRoomKey(key, recipient, wrapper) {
  /** @type {Record<string, string | number>} */
  const content = { department: key.department, version: key.version, key: b64encode(key.key) };
  if (key.thread !== null) content.thread = key.thread;
  const record = {
    department: key.department,
    thread: key.thread,
    version: key.version,
    commitment: key.commitment,
    recipient_fp: recipient.fingerprint,
    wrapper_fp: wrapper.fingerprint,
    sealed: sodium.crypto_box_seal(canonicalJson(content), recipient.x25519),
  };
  const signature = sign(wrapper, CONTEXT_WRAP, signedBytes(record));
  return { ...recordFields(record), sealed: b64encode(record.sealed), sig: b64encode(signature) };
}

/**
 * Check the wrapper's signature, open the sealed key, check it is this
 * record's and matches the record's commitment. The caller still compares
 * that commitment with the key version's record (keyversions.js).
 * @param {WrapRecord} record
 * @param {Identity} recipient
 * @param {PublicIdentity} wrapper
 * @returns {RoomKey}
 */
export function unwrapRoomKey(record, recipient, wrapper) {
  if (record.wrapper_fp !== wrapper.fingerprint) throw badSignature("wrap record was not made by this wrapper");
  verify(wrapper, CONTEXT_WRAP, signedBytes(record), record.signature);
  if (record.recipient_fp !== recipient.fingerprint) throw decryptionFailed("wrap record is for another recipient");
  let content;
  try {
    content = sodium.crypto_box_seal_open(record.sealed, recipient.public.x25519, recipient.boxSecret);
  } catch {
    throw decryptionFailed("sealed room key does not open");
  }
  const data = parseCanonicalJson(content);
  const expected = record.thread === null ? ["department", "version", "key"] : ["department", "version", "key", "thread"];
  if (!isObject(data) || !hasExactly(data, expected)) {
    throw invalidEnvelope(`sealed room key: expected exactly ${[...expected].sort()}`);
  }
  const department = checkId(data.department, "sealed department");
  const version = checkId(data.version, "sealed version");
  const thread = record.thread === null ? null : checkId(data.thread, "sealed thread");
  if (department !== record.department || thread !== record.thread || version !== record.version) {
    throw invalidEnvelope("sealed room key names another department, thread or version than its record");
  }
  const key = roomKey(b64decode(data.key, { size: 32, field: "key" }), department, version, thread);
  checkCommitment(key, record.commitment);
  return key;
}
