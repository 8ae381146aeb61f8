// Room keys and signed wrap records (docs/crypto.md §5), as chat/crypto/roomkeys.py.
// The sealed content names its department and version, so a wrap moved to
// another room or version is refused even if a member re-signed it.
import sodium from "./sodium.js";
import {
  b64decode, b64encode, canonicalJson, checkFingerprint, checkId, checkVersion, concat,
  hasExactly, isObject, parseCanonicalJson,
} from "./encoding.js";
import { CONTEXT_WRAP, sign, verify } from "./identity.js";
import { badSignature, decryptionFailed, invalidEnvelope, invalidKey } from "./errors.js";

const SEAL_OVERHEAD = 48;
const MAX_SEALED_SIZE = 512;
const RECORD_KEYS = ["v", "department", "version", "recipient_fp", "wrapper_fp", "sealed", "sig"];

/** {department, version, key}: version `version` of a department's 32-byte key. */
export function roomKey(key, department, version) {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw invalidKey("room key must be 32 bytes");
  checkId(department, "department", (m) => new RangeError(m));
  checkId(version, "version", (m) => new RangeError(m));
  return Object.freeze({ key, department, version });
}

export function generateRoomKey(department, version) {
  return roomKey(sodium.randombytes_buf(32), department, version);
}

export function sameRoomKey(a, b) {
  return a.department === b.department && a.version === b.version && sodium.memcmp(a.key, b.key);
}

function signedBytes(r) {
  const fields = { v: 1, department: r.department, version: r.version, recipient_fp: r.recipient_fp, wrapper_fp: r.wrapper_fp };
  return concat(canonicalJson(fields), r.sealed);
}

/** Parse a wrap record strictly: {department, version, recipient_fp, wrapper_fp, sealed, signature}. */
export function parseWrapRecord(data) {
  if (!isObject(data)) throw invalidEnvelope("wrap record must be an object");
  checkVersion(data, "wrap record");
  if (!hasExactly(data, RECORD_KEYS)) throw invalidEnvelope("wrap record: expected exactly the keys " + RECORD_KEYS.sort());
  const record = {
    department: checkId(data.department, "department"),
    version: checkId(data.version, "version"),
    recipient_fp: checkFingerprint(data.recipient_fp, "recipient_fp"),
    wrapper_fp: checkFingerprint(data.wrapper_fp, "wrapper_fp"),
    sealed: b64decode(data.sealed, { field: "sealed" }),
    signature: b64decode(data.sig, { size: 64, field: "sig" }),
  };
  if (!(record.sealed.length > SEAL_OVERHEAD && record.sealed.length <= MAX_SEALED_SIZE)) {
    throw invalidEnvelope("sealed: wrong size");
  }
  return record;
}

export function wrapSignedBytes(record) {
  return signedBytes(record);
}

/** Seal a room key for `recipient` (a checked public identity) and sign as `wrapper`; the wire dict. */
export function wrapRoomKey(key, recipient, wrapper) {
  const content = canonicalJson({ department: key.department, version: key.version, key: b64encode(key.key) });
  const record = {
    department: key.department,
    version: key.version,
    recipient_fp: recipient.fingerprint,
    wrapper_fp: wrapper.fingerprint,
    sealed: sodium.crypto_box_seal(content, recipient.x25519),
  };
  const signature = sign(wrapper, CONTEXT_WRAP, signedBytes(record));
  return {
    v: 1, department: record.department, version: record.version,
    recipient_fp: record.recipient_fp, wrapper_fp: record.wrapper_fp,
    sealed: b64encode(record.sealed), sig: b64encode(signature),
  };
}

/** Check the wrapper's signature, open the sealed key, check it is this record's. */
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
  if (!isObject(data) || !hasExactly(data, ["department", "version", "key"])) {
    throw invalidEnvelope("sealed room key: expected department, version and key");
  }
  const department = checkId(data.department, "sealed department");
  const version = checkId(data.version, "sealed version");
  if (department !== record.department || version !== record.version) {
    throw invalidEnvelope("sealed room key names another department or version than its record");
  }
  return roomKey(b64decode(data.key, { size: 32, field: "key" }), department, version);
}
