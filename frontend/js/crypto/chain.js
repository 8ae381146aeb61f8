// @ts-check
// A department's membership chain, replayed (docs/crypto.md §6), as
// core/crypto/chain.py: the root of every trust decision. The client decides
// from it, never from the server's say-so:
//
// - whom to wrap a new room key for (the members at the head);
// - whether a key version may be used (its creator was a member at the head
//   it names, and it is not older than a removal: keyversions.js);
// - which key a sender signs with (the one the chain admitted for them at the
//   head their envelope names: envelope.js);
// - whether the server withholds statements: a head this device verified
//   earlier, or one a sender or key version names, must be in the chain
//   served (checkExtends, checkCovers);
// - who else may read and write one consult thread (its guests, §14: guestAt)
//   and whom its thread key must no longer reach (lastExclusionAt with the thread).
import { checkHash } from "./encoding.js";
import {
  badSignature, CryptoError, invalidEnvelope, invalidKey, membershipFork, membershipRollback, membershipWithheld,
} from "./errors.js";
import { describeStatement, GENESIS, GUEST_KINDS, issuedMicros, statementHash, verifyStatement } from "./statements.js";

/** @import { PublicIdentity } from "./identity.js" */
/** @import { SignedStatement, Statement } from "./statements.js" */
/** @typedef {Readonly<{role: Statement["role"], fingerprint: string}>} Member */
/** @typedef {Readonly<{start: number, end: number | null, member: Member}>} Span */
/** @typedef {Readonly<{seq: number, hash: string}>} ChainHead */

/** Statements after which no one may write under an older room key version. */
export const EXCLUSIONS = ["remove", "replace"];

/**
 * The member a span holds at `seq`, or null.
 * @param {readonly Span[]} spans
 * @param {number} seq
 */
function spanAt(spans, seq) {
  for (const span of spans) {
    if (span.start <= seq && (span.end === null || seq < span.end)) return span.member;
  }
  return null;
}

/**
 * The latest of `positions` (ascending) at or before `seq` (0: none).
 * @param {readonly number[]} positions
 * @param {number} seq
 */
function latestAt(positions, seq) {
  let found = 0;
  for (const at of positions) {
    if (at > seq) break;
    found = at;
  }
  return found;
}

/**
 * {seq, hash}: a point of a department's chain, `seq` statements, the last
 * with hash `hash`. The empty chain is (0, GENESIS), and only it has GENESIS.
 * @param {unknown} seq
 * @param {unknown} hash
 * @returns {ChainHead}
 */
export function chainHead(seq, hash) {
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
    throw invalidEnvelope("chain_seq must be a non-negative integer");
  }
  const checked = checkHash(hash, "chain_head");
  if ((seq === 0) !== (checked === GENESIS)) throw invalidEnvelope("the empty chain's head is the genesis value, and only it");
  return Object.freeze({ seq, hash: checked });
}

export const EMPTY_HEAD = chainHead(0, GENESIS);

/**
 * A verified chain, replayed (Python: MembershipChain).
 *
 * `members`: Map(user → {role, fingerprint}), who is in the department at the head.
 * `everAdmitted`: every fingerprint the chain ever admitted, so a client
 * accepts a room key wrapped by someone who has since left and no one else.
 * `keys`: Map(fingerprint → public identity), the keys the chain names.
 * `guests`: Map(thread → Map(user → {role: "guest", fingerprint})), each
 * consult thread's guests at the head (docs/crypto.md §14).
 */
export class MembershipChain {
  #spans;
  #exclusions;
  #guestSpans;
  #threadExclusions;

  /**
   * @param {object} replayed
   * @param {number | null} replayed.department null for the empty chain
   * @param {string[]} replayed.hashes
   * @param {Map<number, Member>} replayed.members
   * @param {Set<string>} replayed.everAdmitted
   * @param {Map<string, PublicIdentity>} replayed.keys
   * @param {Map<number, readonly Span[]>} replayed.spans
   * @param {number[]} replayed.exclusions
   * @param {Map<number, Map<number, Member>>} [replayed.guests]
   * @param {Map<number, Map<number, readonly Span[]>>} [replayed.guestSpans] by thread, then user
   * @param {Map<number, readonly number[]>} [replayed.threadExclusions] each thread's unguest positions
   */
  constructor({
    department, hashes, members, everAdmitted, keys, spans, exclusions, guests = new Map(), guestSpans = new Map(),
    threadExclusions = new Map(),
  }) {
    this.department = department;
    this.hashes = Object.freeze([...hashes]);
    this.members = members;
    this.everAdmitted = everAdmitted;
    this.keys = keys;
    this.#spans = spans;
    this.#exclusions = Object.freeze([...exclusions]);
    this.guests = guests;
    this.#guestSpans = guestSpans;
    this.#threadExclusions = threadExclusions;
    Object.freeze(this);
  }

  get head() {
    return chainHead(this.hashes.length, this.hashes.length ? this.hashes[this.hashes.length - 1] : GENESIS);
  }

  /** Map(user → role). */
  roles() {
    return new Map([...this.members].map(([user, member]) => [user, member.role]));
  }

  /**
   * The hash of the chain's point `seq`, or null beyond its head.
   * @param {number} seq
   */
  hashAt(seq) {
    if (seq === 0) return GENESIS;
    return Number.isInteger(seq) && seq > 0 && seq <= this.hashes.length ? this.hashes[seq - 1] : null;
  }

  /**
   * `user` as a member once the first `seq` statements applied ({role, fingerprint}), or null.
   * @param {number} user
   * @param {number} seq
   * @returns {Member | null}
   */
  memberAt(user, seq) {
    return spanAt(this.#spans.get(user) ?? [], seq);
  }

  /**
   * `user` as a guest of consult thread `thread` once the first `seq` statements applied, or null.
   * @param {number} thread
   * @param {number} user
   * @param {number} seq
   * @returns {Member | null}
   */
  guestAt(thread, user, seq) {
    return spanAt(this.#guestSpans.get(thread)?.get(user) ?? [], seq);
  }

  /**
   * The guests of consult thread `thread` at the head: a new Map(user → {role, fingerprint}).
   * @param {number} thread
   * @returns {Map<number, Member>}
   */
  guestsOf(thread) {
    return new Map(this.guests.get(thread) ?? []);
  }

  /**
   * The position of the latest removal or key replacement at or before `seq`
   * (0: none). With a `thread`, that thread's unguest statements count too:
   * they end a reader of its thread key, not of the room key.
   * @param {number} seq
   * @param {number | null} [thread]
   */
  lastExclusionAt(seq, thread = null) {
    const latest = latestAt(this.#exclusions, seq);
    if (thread === null) return latest;
    return Math.max(latest, latestAt(this.#threadExclusions.get(thread) ?? [], seq));
  }

  /**
   * The public identity the chain names under `fingerprint` (invalid_key if none).
   * @param {string} fingerprint
   */
  keyOf(fingerprint) {
    const key = this.keys.get(fingerprint);
    if (!key) throw invalidKey(`no key for fingerprint ${String(fingerprint).slice(0, 16)}`);
    return key;
  }

  /**
   * Refuse a chain that does not extend a head this device verified before:
   * membership_rollback if it ends before `known` (statements withheld or
   * taken back), membership_fork if another statement stands at its position.
   * @param {{seq: unknown, hash: unknown}} known
   */
  checkExtends(known) {
    const { seq, hash } = chainHead(known.seq, known.hash);
    const at = this.hashAt(seq);
    if (at === null) {
      throw membershipRollback(
        `the chain served ends at statement ${this.head.seq}; this device verified it up to statement ${seq}`,
        { seq, served: this.head.seq },
      );
    }
    if (at !== hash) throw membershipFork(`statement ${seq} is not the one this device verified`, { seq });
  }

  /**
   * Refuse a chain that lacks a head someone else verified (a sender, a key
   * version): membership_withheld if `named` is beyond the chain served here,
   * membership_fork if another statement stands at its position.
   * @param {{seq: unknown, hash: unknown}} named
   */
  checkCovers(named) {
    const { seq, hash } = chainHead(named.seq, named.hash);
    const at = this.hashAt(seq);
    if (at === null) {
      throw membershipWithheld(
        `statement ${seq} was verified by another member, but the chain served here ends at statement ${this.head.seq}`,
        { seq, served: this.head.seq },
      );
    }
    if (at !== hash) throw membershipFork(`statement ${seq} differs from the one another member verified`, { seq });
  }
}

/**
 * @param {number} index
 * @param {Statement} statement
 * @param {CryptoError} error
 */
function at(index, statement, error) {
  error.message = `statement ${index} (${describeStatement(statement)}): ${error.message}`;
  error.data = { ...error.data, statement_index: index };
  return error;
}

/**
 * `map`'s value under `key`, made and stored first if missing.
 * @template K, V
 * @param {Map<K, V>} map
 * @param {K} key
 * @param {() => V} make
 * @returns {V}
 */
function entry(map, key, make) {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}

/** The membership as statements apply, one at a time (rules in replayMembershipChain). */
class Replay {
  /**
   * @param {PublicIdentity} adminKey
   * @param {Map<string, PublicIdentity>} keys
   */
  constructor(adminKey, keys) {
    this.adminKey = adminKey;
    this.keys = keys;
    /** @type {Map<number, Member>} */
    this.members = new Map();
    /** @type {Set<string>} */
    this.everAdmitted = new Set();
    /** @type {Map<number, Span[]>} member from start (included) to end (excluded, null: now) */
    this.spans = new Map();
    /** @type {number[]} */
    this.exclusions = [];
    /** @type {Map<number, Map<number, Member>>} thread → user → the guest now */
    this.guests = new Map();
    /** @type {Map<number, Map<number, Span[]>>} thread → user → guest from start to end */
    this.guestSpans = new Map();
    /** @type {Map<number, number[]>} thread → the positions of its unguest statements */
    this.threadExclusions = new Map();
    /** @type {string[]} */
    this.hashes = [];
    /** @type {number | null} */
    this.department = null;
    /** @type {bigint | null} */
    this.lastTime = null;
  }

  /** @param {SignedStatement} signed */
  apply(signed) {
    const st = signed.statement;
    this.checkPosition(st);
    this.checkSigner(signed);
    this.change(st);
    this.hashes.push(statementHash(signed));
  }

  /** @param {Statement} st */
  checkPosition(st) {
    if (this.department === null) this.department = st.department;
    else if (st.department !== this.department) throw invalidEnvelope(`department ${st.department}, not ${this.department}`);
    if (st.seq !== this.hashes.length + 1) throw invalidEnvelope(`seq ${st.seq} where ${this.hashes.length + 1} comes next`);
    if (st.prev !== (this.hashes.length ? this.hashes[this.hashes.length - 1] : GENESIS)) {
      throw invalidEnvelope("prev is not the hash of the statement before it");
    }
    const moment = issuedMicros(st.issued_at);
    if (this.lastTime !== null && moment < this.lastTime) throw invalidEnvelope("issued_at goes back in time");
    this.lastTime = moment;
  }

  /** @param {SignedStatement} signed */
  checkSigner(signed) {
    const st = signed.statement;
    if (GUEST_KINDS.includes(st.kind)) {
      this.checkGuestSigner(signed);
      return;
    }
    if (st.signer_user === null) {
      if (st.signer_fingerprint !== this.adminKey.fingerprint) throw badSignature("signed by neither a user nor the admin key");
      const hasHead = [...this.members.values()].some((m) => m.role === "head");
      const subject = this.members.get(st.subject_user);
      const appoints = !hasHead && st.role === "head" && (st.kind === "admit" || st.kind === "role");
      const rekeysHead = st.kind === "replace" && subject !== undefined && subject.role === "head";
      if (!(appoints || rekeysHead)) {
        throw badSignature("the admin key only appoints a head when there is none, or replaces a head's lost key");
      }
      verifyStatement(signed, this.adminKey);
      return;
    }
    const held = this.members.get(st.signer_user);
    if (!held || held.role !== "head") throw badSignature(`signer ${st.signer_user} is not a head at this point`);
    if (st.signer_fingerprint !== held.fingerprint) throw invalidKey(`signer ${st.signer_user}'s key is not the one admitted`);
    const signerKey = this.keys.get(held.fingerprint);
    if (!signerKey) throw invalidKey(`no key for signer ${st.signer_user}`);
    verifyStatement(signed, signerKey);
  }

  /**
   * Any member signs a guest in or out; a guest may sign themselves out.
   * @param {SignedStatement} signed
   */
  checkGuestSigner(signed) {
    const st = signed.statement;
    if (st.signer_user === null) throw badSignature("the admin key does not sign guests in or out");
    let held = this.members.get(st.signer_user);
    if (!held && st.kind === "unguest" && st.signer_user === st.subject_user) {
      held = this.guests.get(/** @type {number} */ (st.thread))?.get(st.subject_user);
    }
    if (!held) throw badSignature(`signer ${st.signer_user} is not a member at this point`);
    if (st.signer_fingerprint !== held.fingerprint) throw invalidKey(`signer ${st.signer_user}'s key is not the one admitted`);
    const signerKey = this.keys.get(held.fingerprint);
    if (!signerKey) throw invalidKey(`no key for signer ${st.signer_user}`);
    verifyStatement(signed, signerKey);
  }

  /** @param {Statement} st */
  changeGuest(st) {
    const thread = /** @type {number} */ (st.thread); // parseStatement requires it for these kinds
    const current = this.guests.get(thread)?.get(st.subject_user);
    if (st.kind === "guest") {
      if (this.members.has(st.subject_user)) throw invalidEnvelope("subject is a member, not a guest");
      if (current) throw invalidEnvelope("subject is already a guest of this thread");
      this.checkUnshared(st.subject_fingerprint);
      const guest = Object.freeze({ role: st.role, fingerprint: st.subject_fingerprint });
      entry(this.guests, thread, () => new Map()).set(st.subject_user, guest);
      this.everAdmitted.add(guest.fingerprint);
      const spans = entry(entry(this.guestSpans, thread, () => new Map()), st.subject_user, () => []);
      spans.push(Object.freeze({ start: st.seq, end: null, member: guest }));
      return;
    }
    if (!current) throw invalidEnvelope("subject is not a guest of this thread");
    if (current.fingerprint !== st.subject_fingerprint) throw invalidEnvelope("subject fingerprint is not the one admitted");
    this.guests.get(thread)?.delete(st.subject_user);
    const spans = /** @type {Span[]} */ (this.guestSpans.get(thread)?.get(st.subject_user));
    spans[spans.length - 1] = Object.freeze({ ...spans[spans.length - 1], end: st.seq });
    entry(this.threadExclusions, thread, () => []).push(st.seq);
  }

  /** @param {Statement} st */
  change(st) {
    if (GUEST_KINDS.includes(st.kind)) {
      this.changeGuest(st);
      return;
    }
    const current = this.members.get(st.subject_user);
    const seq = st.seq;
    if (st.kind === "admit") {
      if (current) throw invalidEnvelope("subject is already a member");
      this.checkUnshared(st.subject_fingerprint);
      this.set(st.subject_user, seq, { role: st.role, fingerprint: st.subject_fingerprint });
      return;
    }
    if (!current) throw invalidEnvelope("subject is not a member");
    const expected = st.kind === "replace" ? st.replaces : st.subject_fingerprint;
    if (current.fingerprint !== expected) throw invalidEnvelope("subject fingerprint is not the one admitted");
    if (st.kind === "role") {
      if (current.role === st.role) throw invalidEnvelope("subject already has this role");
      this.set(st.subject_user, seq, { role: st.role, fingerprint: current.fingerprint });
      return;
    }
    if (current.role !== st.role) throw invalidEnvelope(`${st.kind} names another role than the one held`);
    this.exclusions.push(seq);
    if (st.kind === "remove") {
      this.set(st.subject_user, seq, null);
    } else {
      this.checkUnshared(st.subject_fingerprint);
      this.set(st.subject_user, seq, { role: current.role, fingerprint: st.subject_fingerprint });
    }
  }

  // One key, one member: wraps and signatures are told apart by fingerprint.
  /** @param {string} fingerprint */
  checkUnshared(fingerprint) {
    for (const m of this.members.values()) {
      if (m.fingerprint === fingerprint) throw invalidEnvelope("another member holds this key");
    }
  }

  /**
   * @param {number} user
   * @param {number} seq
   * @param {Member | null} member null: no longer a member
   */
  set(user, seq, member) {
    let spans = this.spans.get(user);
    if (!spans) this.spans.set(user, (spans = []));
    const last = spans[spans.length - 1];
    if (last && last.end === null) spans[spans.length - 1] = Object.freeze({ ...last, end: seq });
    if (member === null) {
      this.members.delete(user);
      return;
    }
    const frozen = Object.freeze(member);
    this.members.set(user, frozen);
    this.everAdmitted.add(frozen.fingerprint);
    spans.push(Object.freeze({ start: seq, end: null, member: frozen }));
  }
}

/**
 * Replay one department's parsed signed statements (parseSignedStatement) in
 * order; return the verified MembershipChain.
 *
 * `keys` are the public identities the chain refers to (signers and members,
 * keys since replaced included), in any order: each is found by its own
 * fingerprint, so a key listed under a wrong name is never used. Rules, for
 * each statement in turn:
 *
 * - All statements are for one department; statement N has `seq` N and names
 *   the hash of statement N-1 as `prev` (GENESIS for the first); `issued_at`
 *   never goes back.
 * - A statement signed by the admin key (`signer_user` null) is accepted only
 *   to make someone head while the department has no head, or to replace a
 *   head's key. Every other statement is signed by a user who is a head at
 *   that point, with the key they were admitted with.
 * - `admit` needs a non-member; `role`, `remove` and `replace` a member whose
 *   fingerprint is the one admitted (`replaces`, for a replacement); `role`
 *   must change the role, `remove` and `replace` name the role held; no two
 *   members hold one key.
 * - `guest` and `unguest` (consults, docs/crypto.md §14) are signed by any
 *   member, or for `unguest` by the guest themselves, never by the admin key;
 *   `guest` needs a non-member not yet a guest of that thread, `unguest` a
 *   guest of that thread with that key.
 *
 * Finally every remaining member's and guest's admitted key must be among
 * `keys`, since that is the key the caller will wrap to. Throws a CryptoError whose
 * data.statement_index names the statement at fault.
 * @param {SignedStatement[]} statements
 * @param {{adminKey: PublicIdentity, keys: Iterable<PublicIdentity>}} trusted
 */
export function replayMembershipChain(statements, { adminKey, keys }) {
  const byFingerprint = new Map([...keys].map((key) => [key.fingerprint, key]));
  const replay = new Replay(adminKey, byFingerprint);
  statements.forEach((signed, index) => {
    try {
      replay.apply(signed);
    } catch (error) {
      if (!(error instanceof CryptoError)) throw error;
      throw at(index, signed.statement, error);
    }
  });
  for (const [user, member] of replay.members) {
    if (!byFingerprint.has(member.fingerprint)) throw invalidKey(`member ${user}: the key they were admitted with is missing`);
  }
  for (const [thread, guests] of replay.guests) {
    for (const [user, guest] of guests) {
      if (!byFingerprint.has(guest.fingerprint)) throw invalidKey(`guest ${user} of thread ${thread}: their key is missing`);
    }
  }
  /** @type {Map<string, PublicIdentity>} */
  const chainKeys = new Map();
  for (const fp of replay.everAdmitted) {
    const key = byFingerprint.get(fp);
    if (key) chainKeys.set(fp, key);
  }
  chainKeys.set(adminKey.fingerprint, adminKey);
  return new MembershipChain({
    department: replay.department,
    hashes: replay.hashes,
    members: new Map(replay.members),
    everAdmitted: new Set(replay.everAdmitted),
    keys: chainKeys,
    spans: new Map([...replay.spans].map(([user, spans]) => [user, Object.freeze([...spans])])),
    exclusions: replay.exclusions,
    guests: new Map([...replay.guests].filter(([, guests]) => guests.size).map(([thread, guests]) => [thread, new Map(guests)])),
    guestSpans: new Map([...replay.guestSpans].map(([thread, byUser]) => [
      thread, new Map([...byUser].map(([user, spans]) => [user, Object.freeze([...spans])])),
    ])),
    threadExclusions: new Map([...replay.threadExclusions].map(([thread, seqs]) => [thread, Object.freeze([...seqs])])),
  });
}
