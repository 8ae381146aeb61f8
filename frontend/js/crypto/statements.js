// Membership statements and the chain (docs/crypto.md §6), as
// chat/crypto/statements.py: rooted in the pinned admin key, each later
// statement signed by someone who is a head at that point.
import { b64decode, b64encode, canonicalJson, checkFingerprint, checkId, checkVersion, hasExactly, isObject } from "./encoding.js";
import { CONTEXT_STATEMENT, sign, verify } from "./identity.js";
import { badSignature, CryptoError, invalidEnvelope, invalidKey } from "./errors.js";

const KINDS = ["admit", "remove", "role"];
const ROLES = ["head", "member"];
const FIELDS = ["v", "kind", "department", "subject_user", "subject_fingerprint", "role", "issued_at", "signer_user", "signer_fingerprint"];
const ISSUED_AT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

/** Microseconds since the epoch: Date alone would lose the microseconds Python compares. */
export function issuedMicros(value) {
  const m = typeof value === "string" ? ISSUED_AT.exec(value) : null;
  if (!m) throw invalidEnvelope("issued_at must be RFC 3339 with an offset, e.g. 2025-01-31T08:00:00Z");
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  let offset = 0;
  if (m[8] !== "Z") {
    const sign = m[8][0] === "-" ? -1 : 1;
    const [oh, om] = m[8].slice(1).split(":").map(Number);
    if (oh > 23 || om > 59) throw invalidEnvelope("issued_at is not a valid date and time");
    offset = sign * (oh * 60 + om) * 60000;
  }
  // Date.UTC rolls 2025-02-30 over to March: a valid date reads back the same.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d
    || back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s) {
    throw invalidEnvelope("issued_at is not a valid date and time");
  }
  const micros = m[7] ? Number(m[7].slice(1).padEnd(6, "0")) : 0;
  return (ms - offset) * 1000 + micros;
}

export function parseStatement(data) {
  if (!isObject(data)) throw invalidEnvelope("statement must be an object");
  checkVersion(data, "statement");
  if (!hasExactly(data, FIELDS)) throw invalidEnvelope("statement: expected exactly the v1 keys");
  for (const name of ["kind", "role"]) {
    if (typeof data[name] !== "string") throw invalidEnvelope(`${name} must be a string`);
  }
  if (!KINDS.includes(data.kind)) throw invalidEnvelope(`kind must be one of ${KINDS}`);
  if (!ROLES.includes(data.role)) throw invalidEnvelope(`role must be one of ${ROLES}`);
  checkId(data.department, "department");
  checkId(data.subject_user, "subject_user");
  if (data.signer_user !== null) checkId(data.signer_user, "signer_user");
  checkFingerprint(data.subject_fingerprint, "subject_fingerprint");
  checkFingerprint(data.signer_fingerprint, "signer_fingerprint");
  issuedMicros(data.issued_at);
  return Object.freeze({ ...data });
}

export function parseSignedStatement(data) {
  if (!isObject(data) || !hasExactly(data, ["statement", "sig"])) {
    throw invalidEnvelope("signed statement: expected exactly statement and sig");
  }
  return { statement: parseStatement(data.statement), signature: b64decode(data.sig, { size: 64, field: "sig" }) };
}

export function statementBytes(statement) {
  return canonicalJson(Object.fromEntries(FIELDS.map((k) => [k, statement[k]])));
}

/** A statement signed now by `signer`, on the wire (client/membership.py make_statement). */
export function makeStatement(signer, { kind, department, subject, subjectFingerprint, role, signerUser, issuedAt = null }) {
  const statement = parseStatement({
    v: 1, kind, department, subject_user: subject, subject_fingerprint: subjectFingerprint, role,
    issued_at: issuedAt ?? new Date().toISOString(), signer_user: signerUser, signer_fingerprint: signer.fingerprint,
  });
  return { statement: { ...statement }, sig: b64encode(sign(signer, CONTEXT_STATEMENT, statementBytes(statement))) };
}

export function verifyStatement(signed, signerPublic) {
  const st = signed.statement;
  if (st.signer_fingerprint !== signerPublic.fingerprint) throw badSignature("statement names another signer");
  verify(signerPublic, CONTEXT_STATEMENT, statementBytes(st), signed.signature);
  return st;
}

function describe(st) {
  return `${st.kind} user ${st.subject_user} as ${st.role}`;
}

/**
 * Replay one department's parsed signed statements in order.
 * Returns {members: Map(user → {role, fingerprint}), everAdmitted: Set(fingerprint)}.
 * Throws a CryptoError whose data.statement_index names the statement at fault.
 */
export function replayMembershipChain(statements, { adminKey, keys }) {
  const byFingerprint = new Map(keys.map((k) => [k.fingerprint, k]));
  const members = new Map();
  const everAdmitted = new Set();
  let department = null;
  let lastTime = null;
  statements.forEach((signed, index) => {
    const st = signed.statement;
    try {
      if (department === null) department = st.department;
      else if (st.department !== department) throw invalidEnvelope(`department ${st.department}, not ${department}`);
      const moment = issuedMicros(st.issued_at);
      if (lastTime !== null && moment < lastTime) throw invalidEnvelope("issued_at goes back in time");
      lastTime = moment;
      const hasHead = [...members.values()].some((m) => m.role === "head");
      if (st.signer_user === null) {
        if (st.signer_fingerprint !== adminKey.fingerprint) throw badSignature("signed by neither a user nor the admin key");
        if (hasHead) throw badSignature("the admin key may only appoint a head when there is none");
        if (st.role !== "head" || st.kind === "remove") throw badSignature("the admin key may only appoint a head");
        verifyStatement(signed, adminKey);
      } else {
        const held = members.get(st.signer_user);
        if (!held || held.role !== "head") throw badSignature(`signer ${st.signer_user} is not a head at this point`);
        if (st.signer_fingerprint !== held.fingerprint) throw invalidKey(`signer ${st.signer_user}'s key is not the one admitted`);
        const signerKey = byFingerprint.get(held.fingerprint);
        if (!signerKey) throw invalidKey(`no key for signer ${st.signer_user}`);
        verifyStatement(signed, signerKey);
      }
      const current = members.get(st.subject_user);
      if (st.kind === "admit") {
        if (current) throw invalidEnvelope("subject is already a member");
        members.set(st.subject_user, { role: st.role, fingerprint: st.subject_fingerprint });
        everAdmitted.add(st.subject_fingerprint);
      } else {
        if (!current) throw invalidEnvelope("subject is not a member");
        if (current.fingerprint !== st.subject_fingerprint) throw invalidEnvelope("subject fingerprint is not the one admitted");
        if (st.kind === "role") {
          if (current.role === st.role) throw invalidEnvelope("subject already has this role");
          members.set(st.subject_user, { role: st.role, fingerprint: current.fingerprint });
        } else {
          if (current.role !== st.role) throw invalidEnvelope("remove names another role than the one held");
          members.delete(st.subject_user);
        }
      }
    } catch (error) {
      if (!(error instanceof CryptoError)) throw error;
      error.message = `statement ${index} (${describe(st)}): ${error.message}`;
      error.data = { ...error.data, statement_index: index };
      throw error;
    }
  });
  for (const [user, { fingerprint }] of members) {
    if (!byFingerprint.has(fingerprint)) throw invalidKey(`member ${user}: the key they were admitted with is missing`);
  }
  return { members, everAdmitted };
}
