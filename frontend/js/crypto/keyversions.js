// @ts-check
// Key version records (docs/crypto.md §7), as core/crypto/keyversions.py: a
// room key version bound to the membership chain that made it.
//
//   {"record": {"v": 2, "department": 12, "version": 4,
//               "chain_seq": 9, "chain_head": "<64 hex>",
//               "commitment": "<b64 of 32 bytes>",
//               "creator_user": 7, "creator_fingerprint": "<64 hex>"},
//    "sig": "<b64 of 64 bytes>"}
//
// Signed bytes: CONTEXT_KEY_VERSION ‖ canonical_json(record). A version of a
// consult thread's key (docs/crypto.md §14) adds "thread": <id> to the record;
// a room key's record has exactly the keys above.
//
// A client uses a version only if its creator was a member, with that key, at
// the head the record names, and that head is in the chain it verified
// (verifyKeyVersion: a guest never introduces a key); writes under it only if
// no removal or key replacement (nor, for a thread key, unguest of its thread)
// came after that head (checkCurrent); and keeps a key only if it matches the
// record's commitment (checkKeyMatches). So a server can neither hand out a key
// made by a removed member, nor keep members writing under a key the removed
// member holds.
import {
  b64decode, b64encode, canonicalJson, checkFingerprint, checkHash, checkId, checkVersion, hasExactly, isObject,
} from "./encoding.js";
import { invalidEnvelope, keyVersionStale, keyVersionUnauthorized } from "./errors.js";
import { CONTEXT_KEY_VERSION, sign, verify } from "./identity.js";
import { chainHead } from "./chain.js";
import { checkCommitment, COMMITMENT_SIZE } from "./roomkeys.js";

/** @import { Identity } from "./identity.js" */
/** @import { MembershipChain } from "./chain.js" */
/** @import { RoomKey } from "./roomkeys.js" */

/**
 * A parsed key version record.
 * @typedef {object} KeyVersionRecord
 * @property {number} department
 * @property {number} version
 * @property {number} chain_seq
 * @property {string} chain_head
 * @property {Uint8Array} commitment
 * @property {number} creator_user
 * @property {string} creator_fingerprint
 * @property {number | null} thread a thread key's thread, null for the room key
 */

/** @typedef {{record: Readonly<KeyVersionRecord>, signature: Uint8Array}} SignedKeyVersion */

export const KEY_VERSION_FORMAT = 2;
const FIELDS = ["v", "department", "version", "chain_seq", "chain_head", "commitment", "creator_user", "creator_fingerprint"];
const THREAD_FIELDS = [...FIELDS, "thread"];

/**
 * Parse a key version record strictly (KeyVersionRecord.from_dict): exactly
 * the v2 keys (and `thread` for a thread key), its head as any chain head.
 * Returns a frozen {department, version, chain_seq, chain_head, commitment
 * (bytes), creator_user, creator_fingerprint, thread (null for the room key)}.
 * @param {unknown} data
 * @returns {Readonly<KeyVersionRecord>}
 */
export function parseKeyVersionRecord(data) {
  if (!isObject(data)) throw invalidEnvelope("key version record must be an object");
  checkVersion(data, "key version record", KEY_VERSION_FORMAT);
  const expected = Object.hasOwn(data, "thread") ? THREAD_FIELDS : FIELDS;
  if (!hasExactly(data, expected)) throw invalidEnvelope(`key version record: expected exactly the keys ${expected}`);
  const commitment = b64decode(data.commitment, { size: COMMITMENT_SIZE, field: "commitment" });
  checkId(data.department, "department");
  checkId(data.version, "version");
  const thread = Object.hasOwn(data, "thread") ? checkId(data.thread, "thread") : null;
  checkHash(data.chain_head, "chain_head");
  chainHead(data.chain_seq, data.chain_head); // the same rules as any head
  checkId(data.creator_user, "creator_user");
  checkFingerprint(data.creator_fingerprint, "creator_fingerprint");
  return Object.freeze({
    department: data.department,
    version: data.version,
    chain_seq: data.chain_seq,
    chain_head: data.chain_head,
    commitment,
    creator_user: data.creator_user,
    creator_fingerprint: data.creator_fingerprint,
    thread,
  });
}

/**
 * A parsed record as on the wire (Python: KeyVersionRecord.to_dict).
 * @param {KeyVersionRecord} record
 */
export function keyVersionRecordToDict(record) {
  /** @type {Record<string, string | number>} */
  const data = {
    v: KEY_VERSION_FORMAT,
    department: record.department,
    version: record.version,
    chain_seq: record.chain_seq,
    chain_head: record.chain_head,
    commitment: b64encode(record.commitment),
    creator_user: record.creator_user,
    creator_fingerprint: record.creator_fingerprint,
  };
  if (record.thread !== null) data.thread = record.thread;
  return data;
}

/**
 * The bytes a creator signs after CONTEXT_KEY_VERSION (Python: KeyVersionRecord.signed_bytes).
 * @param {KeyVersionRecord} record
 */
export function keyVersionBytes(record) {
  return canonicalJson(keyVersionRecordToDict(record));
}

/**
 * {record, signature}: a parsed record and its creator's 64-byte signature.
 * @param {unknown} data
 * @returns {SignedKeyVersion}
 */
export function parseSignedKeyVersion(data) {
  if (!isObject(data) || !hasExactly(data, ["record", "sig"])) {
    throw invalidEnvelope("signed key version: expected exactly record and sig");
  }
  return { record: parseKeyVersionRecord(data.record), signature: b64decode(data.sig, { size: 64, field: "sig" }) };
}

/**
 * The head a record names: {seq, hash}.
 * @param {KeyVersionRecord} record
 */
export function keyVersionHead(record) {
  return chainHead(record.chain_seq, record.chain_head);
}

/**
 * The signed record of a new version, on the wire ({record, sig}): `roomKey`
 * (roomkeys.js, a thread key too) made at the chain head `head` ({seq, hash},
 * freshly verified) by `creator` (an identity), user `creatorUser`.
 * @param {RoomKey} roomKey
 * @param {{head: {seq: number, hash: string}, creatorUser: number, creator: Identity}} made
 */
export function makeKeyVersion(roomKey, { head, creatorUser, creator }) {
  const { seq, hash } = chainHead(head.seq, head.hash);
  const record = parseKeyVersionRecord({
    v: KEY_VERSION_FORMAT,
    department: roomKey.department,
    version: roomKey.version,
    chain_seq: seq,
    chain_head: hash,
    commitment: b64encode(roomKey.commitment),
    creator_user: creatorUser,
    creator_fingerprint: creator.fingerprint,
    ...(roomKey.thread === null ? {} : { thread: roomKey.thread }),
  });
  return { record: keyVersionRecordToDict(record), sig: b64encode(sign(creator, CONTEXT_KEY_VERSION, keyVersionBytes(record))) };
}

/**
 * Check a parsed signed key version against a verified chain of its
 * department (chain.js); return its record. Refuses another department
 * (invalid_envelope), a head not in the chain (membership_withheld,
 * membership_fork), a creator who was not a member with that key at that head
 * (key_version_unauthorized: a guest never introduces a key), and a bad
 * signature (bad_signature).
 * @param {SignedKeyVersion} signed
 * @param {MembershipChain} chain
 */
export function verifyKeyVersion(signed, chain) {
  const record = signed.record;
  if (chain.department !== null && record.department !== chain.department) {
    throw invalidEnvelope("the key version names another department");
  }
  chain.checkCovers(keyVersionHead(record));
  const member = chain.memberAt(record.creator_user, record.chain_seq);
  if (!member || member.fingerprint !== record.creator_fingerprint) {
    throw keyVersionUnauthorized(
      `key version ${record.version} was made by user ${record.creator_user}, who was not `
      + `a member with that key at statement ${record.chain_seq}`,
    );
  }
  verify(chain.keyOf(record.creator_fingerprint), CONTEXT_KEY_VERSION, keyVersionBytes(record), signed.signature);
  return record;
}

/**
 * Refuse to write under a version made before the chain's latest removal or
 * key replacement (key_version_stale): the member removed, or whoever holds
 * the replaced key, may hold it. For a thread key, the end of a guest of that
 * thread (unguest) counts too.
 * @param {KeyVersionRecord} record
 * @param {MembershipChain} chain
 */
export function checkCurrent(record, chain) {
  const excludedAt = chain.lastExclusionAt(chain.head.seq, record.thread);
  if (record.chain_seq < excludedAt) {
    throw keyVersionStale(
      `key version ${record.version} was made at statement ${record.chain_seq}, before `
      + `the removal or key replacement of statement ${excludedAt}`,
    );
  }
}

/**
 * Refuse a room key (from a wrap) that is not the one this version committed
 * to: invalid_envelope for another department, thread or version,
 * key_commitment_mismatch for another key.
 * @param {KeyVersionRecord} record
 * @param {RoomKey} roomKey
 */
export function checkKeyMatches(record, roomKey) {
  if (roomKey.department !== record.department || roomKey.thread !== record.thread || roomKey.version !== record.version) {
    throw invalidEnvelope("the room key is of another department, thread or version");
  }
  checkCommitment(roomKey, record.commitment);
}
