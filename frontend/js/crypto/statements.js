// @ts-check
// Membership statements v2 (docs/crypto.md §6), as core/crypto/statements.py:
// one change to a department's membership, signed by a head (the first head
// by the pinned admin key), numbered (`seq`, from 1) and linked to the
// statement before it (`prev`, its hash), so the department's history is one
// chain: a statement left out of the middle breaks it (chain.js). A consult's
// `guest` and `unguest` (§14) carry a `thread`, and only they do, so every
// other statement keeps its exact bytes.
//
// Signed bytes: CONTEXT_STATEMENT ‖ canonical_json(statement).
// Hash: hex SHA-256(CHAIN_DOMAIN ‖ canonical_json({statement, sig})), over the
// statement and its signature as sent.
import sodium from "./sodium.js";
import {
  b64decode, b64encode, canonicalJson, checkFingerprint, checkHash, checkId, checkVersion, concat,
  hasExactly, isObject, parseTimestamp, toHex, utf8,
} from "./encoding.js";
import { CONTEXT_STATEMENT, sign, verify } from "./identity.js";
import { badSignature, invalidEnvelope } from "./errors.js";

export const STATEMENT_VERSION = 2;
export const KINDS = ["admit", "remove", "role", "replace", "guest", "unguest"];
/** A consult's guest reads and writes one thread of the department (docs/crypto.md §14). */
export const GUEST_KINDS = ["guest", "unguest"];
export const ROLES = ["head", "member", "guest"];
/** The `prev` of a department's first statement, and the hash of the empty chain. */
export const GENESIS = "0".repeat(64);
const CHAIN_DOMAIN = utf8("rounds-chain-v2\0");
/** @type {(keyof Statement)[]} */
const FIELDS = [
  "v", "department", "seq", "prev", "kind", "subject_user", "subject_fingerprint", "replaces", "role",
  "issued_at", "signer_user", "signer_fingerprint",
];
/** @type {(keyof Statement)[]} */
const GUEST_FIELDS = [...FIELDS, "thread"];

/**
 * A membership statement v2, as parsed (the wire's field names).
 * @typedef {object} Statement
 * @property {2} v
 * @property {number} department
 * @property {number} seq
 * @property {string} prev
 * @property {"admit" | "remove" | "role" | "replace" | "guest" | "unguest"} kind
 * @property {number} subject_user
 * @property {string} subject_fingerprint
 * @property {string | null} replaces
 * @property {"head" | "member" | "guest"} role
 * @property {string} issued_at
 * @property {number | null} signer_user null when the admin key signs
 * @property {string} signer_fingerprint
 * @property {number} [thread] the consult's thread, in a guest or unguest statement only
 */

/** @typedef {{statement: Readonly<Statement>, signature: Uint8Array}} SignedStatement */

/**
 * Microseconds since the epoch (a BigInt) of a statement's issued_at: encoding.js parseTimestamp.
 * @param {unknown} value
 */
export function issuedMicros(value) {
  return parseTimestamp(value, "issued_at");
}

/**
 * Parse a statement strictly (MembershipStatement.from_dict): exactly the v2
 * keys, `prev` GENESIS exactly for seq 1, `replaces` only (and always) for a
 * replacement, and never the key it replaces; role "guest" and a `thread`
 * exactly in a guest or unguest statement. Returns a frozen copy.
 * @param {unknown} data
 * @returns {Readonly<Statement>}
 */
export function parseStatement(data) {
  if (!isObject(data)) throw invalidEnvelope("statement must be an object");
  checkVersion(data, "statement", STATEMENT_VERSION);
  const expected = fieldsOf(data.kind);
  if (!hasExactly(data, expected)) throw invalidEnvelope(`statement: expected exactly the keys ${[...expected].sort()}`);
  for (const name of ["kind", "role"]) {
    if (typeof data[name] !== "string") throw invalidEnvelope(`${name} must be a string`);
  }
  if (!KINDS.includes(data.kind)) throw invalidEnvelope(`kind must be one of ${KINDS}`);
  if (!ROLES.includes(data.role)) throw invalidEnvelope(`role must be one of ${ROLES}`);
  if (GUEST_KINDS.includes(data.kind) !== (data.role === "guest")) {
    throw invalidEnvelope("role is guest exactly for a guest or unguest statement");
  }
  if (GUEST_KINDS.includes(data.kind)) checkId(data.thread, "thread");
  checkId(data.department, "department");
  checkId(data.seq, "seq");
  checkHash(data.prev, "prev");
  if ((data.seq === 1) !== (data.prev === GENESIS)) {
    throw invalidEnvelope("prev is the genesis value exactly for the first statement");
  }
  checkId(data.subject_user, "subject_user");
  if (data.signer_user !== null) checkId(data.signer_user, "signer_user");
  checkFingerprint(data.subject_fingerprint, "subject_fingerprint");
  checkFingerprint(data.signer_fingerprint, "signer_fingerprint");
  if (data.kind === "replace") {
    checkFingerprint(data.replaces, "replaces");
    if (data.replaces === data.subject_fingerprint) throw invalidEnvelope("a replacement names a new key");
  } else if (data.replaces !== null) {
    throw invalidEnvelope("replaces is only for a replace statement");
  }
  parseTimestamp(data.issued_at, "issued_at");
  return Object.freeze(/** @type {Statement} */ ({ ...data }));
}

/**
 * {statement, signature}: a parsed statement and its 64-byte signature.
 * @param {unknown} data {statement, sig} as on the wire
 * @returns {SignedStatement}
 */
export function parseSignedStatement(data) {
  if (!isObject(data) || !hasExactly(data, ["statement", "sig"])) {
    throw invalidEnvelope("signed statement: expected exactly statement and sig");
  }
  return { statement: parseStatement(data.statement), signature: b64decode(data.sig, { size: 64, field: "sig" }) };
}

/**
 * The keys of a statement of this kind: the guest kinds add `thread`.
 * @param {unknown} kind
 */
function fieldsOf(kind) {
  return GUEST_KINDS.includes(/** @type {string} */ (kind)) ? GUEST_FIELDS : FIELDS;
}

/** @param {Statement} statement */
function statementDict(statement) {
  return Object.fromEntries(fieldsOf(statement.kind).map((k) => [k, statement[k]]));
}

/**
 * The bytes a signer signs after CONTEXT_STATEMENT (Python: MembershipStatement.signed_bytes).
 * @param {Statement} statement
 */
export function statementBytes(statement) {
  return canonicalJson(statementDict(statement));
}

/**
 * A parsed signed statement as on the wire: {statement, sig}.
 * @param {SignedStatement} signed
 */
export function signedStatementToDict(signed) {
  return { statement: statementDict(signed.statement), sig: b64encode(signed.signature) };
}

/** This statement's link, what the next statement names as `prev`: hex SHA-256 over the domain, statement and sig. */
/** @param {SignedStatement} signed */
export function statementHash(signed) {
  return toHex(sodium.crypto_hash_sha256(concat(CHAIN_DOMAIN, canonicalJson(signedStatementToDict(signed)))));
}

/**
 * A statement signed now (or at `issuedAt`) by `signer`, on the wire: at
 * position `seq` of the department's chain, after the statement whose hash is
 * `prev` (a verified chain's head gives both: seq + 1 and its hash).
 * `replaces` is the old key's fingerprint, for a replacement only; `thread`
 * the consult's thread, for a guest or unguest statement only.
 * @param {import("./identity.js").Identity} signer
 * @param {object} fields
 * @param {Statement["kind"]} fields.kind
 * @param {number} fields.department
 * @param {number} fields.seq
 * @param {string} fields.prev
 * @param {number} fields.subject
 * @param {string} fields.subjectFingerprint
 * @param {string | null} [fields.replaces]
 * @param {number | null} [fields.thread]
 * @param {Statement["role"]} fields.role
 * @param {number | null} fields.signerUser
 * @param {string | null} [fields.issuedAt]
 */
export function makeStatement(signer, {
  kind, department, seq, prev, subject, subjectFingerprint, replaces = null, thread = null, role, signerUser,
  issuedAt = null,
}) {
  const statement = parseStatement({
    v: STATEMENT_VERSION, department, seq, prev, kind, subject_user: subject, subject_fingerprint: subjectFingerprint,
    replaces, role, issued_at: issuedAt ?? new Date().toISOString(), signer_user: signerUser,
    signer_fingerprint: signer.fingerprint, ...(thread === null ? {} : { thread }),
  });
  return { statement: statementDict(statement), sig: b64encode(sign(signer, CONTEXT_STATEMENT, statementBytes(statement))) };
}

/**
 * Check that `signerPublic` made this statement; return it.
 * @param {SignedStatement} signed
 * @param {import("./identity.js").PublicIdentity} signerPublic
 */
export function verifyStatement(signed, signerPublic) {
  const st = signed.statement;
  if (st.signer_fingerprint !== signerPublic.fingerprint) throw badSignature("statement names another signer");
  verify(signerPublic, CONTEXT_STATEMENT, statementBytes(st), signed.signature);
  return st;
}

/** @param {Statement} st */
export function describeStatement(st) {
  if (st.thread !== undefined) return `${st.kind} user ${st.subject_user} in thread ${st.thread}`;
  return `${st.kind} user ${st.subject_user} as ${st.role}`;
}
