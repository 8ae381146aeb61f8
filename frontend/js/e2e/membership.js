// @ts-check
// A department's membership chain as this browser trusts it, and a head's
// signatures (client/membership.py; docs/crypto.md §6 and §9, R0 to R2, R7).
//
// The server keeps the chain; this browser replays it from the PINNED admin
// key, refuses one that does not extend the head it verified before (kept in
// trust.js across sessions), and takes every trust decision from it: whom to
// wrap a room key for, which key versions to use, which key a sender signs
// with. Heads sign admissions, role changes, removals and key replacements
// here, at the chain's head, always for the key they compared with the
// colleague: a key the server shows that differs from the one compared is
// never signed (fingerprint_mismatch).
import * as c from "../crypto.js";
import { api, get, post } from "../api.js";
import { t } from "../i18n.js";
import { normaliseFingerprint } from "../pins.js";
import { codeOf, E2EError } from "./errors.js";

/** @import { E2E } from "./index.js" */
/** @import { Identity, MembershipChain, PublicIdentity, Statement } from "../crypto.js" */

/**
 * One statement a head (or the admin key) is to sign, in the code's names.
 * @typedef {{kind: Statement["kind"], subject: number, fingerprint: string, role: Statement["role"],
 *   replaces?: string | null}} Change
 */

// How often a head signs again when another head's statement took the position first.
const SIGN_ATTEMPTS = 4;

/**
 * @param {unknown} pub
 * @param {string | null | undefined} fingerprint
 * @param {string} whose
 */
function checked(pub, fingerprint, whose) {
  try {
    return c.checkedPublic(pub, fingerprint, whose);
  } catch (error) {
    throw new E2EError("membership_unverified", `${whose}: ${/** @type {Error} */ (error).message}`);
  }
}

/**
 * The institution's admin key from a statements listing, which must be the pinned one.
 * Throws pins_required, no_admin_key, admin_key_mismatch, membership_unverified.
 * @param {any} listing as the server sends it
 * @param {string | null} pinned
 */
export function adminKeyOf(listing, pinned) {
  if (!pinned) {
    throw new E2EError("pins_required",
      "This browser has not confirmed the institution's admin key: nothing proves who may read a department.",
      { missing: ["admin"] });
  }
  const admin = listing.admin;
  if (!admin) {
    throw new E2EError("no_admin_key",
      "The institution's admin key is not set, so no head is appointed; no room key can be wrapped for anyone yet.");
  }
  const key = checked(admin.public, admin.fingerprint, "admin key");
  if (key.fingerprint !== pinned) {
    throw new E2EError("admin_key_mismatch",
      "The server's institution admin key is not the one pinned for this hospital; the department's membership cannot be trusted.",
      { pinned, server: key.fingerprint });
  }
  return key;
}

/**
 * Replay a listing (GET /api/departments/{id}/statements) from the pinned admin key.
 * Throws membership_unverified (with data.statement_index and data.reason) or a code of adminKeyOf.
 * @param {any} listing as the server sends it
 * @param {string | null} pinnedAdmin
 * @returns {MembershipChain}
 */
export function verifyListing(listing, pinnedAdmin) {
  const adminKey = adminKeyOf(listing, pinnedAdmin);
  const keys = Object.entries(listing.keys || {}).map(([fp, pub]) => checked(pub, fp, `key ${fp.slice(0, 16)}`));
  let statements;
  try {
    statements = listing.statements.map((/** @type {{signed: unknown}} */ item) => c.parseSignedStatement(item.signed));
  } catch (error) {
    const reason = error instanceof c.CryptoError ? error.code : "invalid_envelope";
    throw new E2EError("membership_unverified", "The server's list of statements does not parse.", { reason });
  }
  try {
    return c.replayMembershipChain(statements, { adminKey, keys });
  } catch (error) {
    if (!(error instanceof c.CryptoError)) throw error;
    throw new E2EError("membership_unverified", `The department's signed membership does not verify: ${error.message}`,
      { statement_index: error.data?.statement_index ?? null, reason: error.code });
  }
}

/**
 * The key the server shows now must be the one compared with its holder (R7); fingerprint_mismatch otherwise.
 * @param {string | null | undefined} fingerprint as compared
 * @param {string} shown the published key's
 * @param {string} whose
 */
export function compared(fingerprint, shown, whose) {
  const expected = normaliseFingerprint(fingerprint);
  if (!expected) throw new E2EError("fingerprint_mismatch", `${whose}: no fingerprint was compared; nothing was signed.`);
  if (expected !== shown) {
    throw new E2EError("fingerprint_mismatch",
      `${whose}'s published key is not the fingerprint you compared; nothing was signed.`, { compared: expected, published: shown });
  }
}

/**
 * A statement signed now by `signer` (a head's identity, or the admin key), right after `head`.
 * @param {Identity} signer
 * @param {{seq: number, hash: string}} head
 * @param {Change & {department: number, signerUser: number | null}} change
 */
export function statementAt(signer, head, { kind, department, subject, fingerprint, role, signerUser, replaces = null }) {
  return c.makeStatement(signer, {
    kind, department, seq: head.seq + 1, prev: head.hash, subject, subjectFingerprint: fingerprint,
    replaces, role, signerUser,
  });
}

export class Membership {
  /** @param {E2E} e2e */
  constructor(e2e) {
    this.e2e = e2e;
    /** @type {Map<number, MembershipChain>} department → verified chain */
    this.chains = new Map();
  }

  /**
   * The membership changed (an event said so): verify it again when next needed.
   * @param {number} department
   */
  forget(department) {
    this.chains.delete(department);
  }

  /**
   * The department's chain, verified from the pinned admin key (R1). Fetched when
   * not held, when `fresh`, or when it does not reach `covers` (a head named by a
   * sender or a key version), which must then be in it (R2: membership_withheld,
   * membership_fork). Also throws membership_rollback, membership_fork and the codes
   * of verifyListing.
   * @param {number} department
   * @param {{fresh?: boolean, covers?: {seq: number, hash: string} | null}} [options]
   * @returns {Promise<MembershipChain>}
   */
  async chain(department, { fresh = false, covers = null } = {}) {
    let held = this.chains.get(department);
    if (!held || fresh || (covers && covers.seq > held.head.seq)) held = await this.fetch(department);
    if (covers) held.checkCovers(covers);
    return held;
  }

  /** @param {number} department */
  async fetch(department) {
    const listing = await get(`/api/departments/${department}/statements`);
    const chain = verifyListing(listing, this.e2e.pins.admin);
    if (chain.department !== null && chain.department !== department) {
      throw new E2EError("membership_unverified", "The statements served are another department's.");
    }
    const known = await this.e2e.trust.head(department);
    if (known) chain.checkExtends(known); // membership_rollback, membership_fork
    await this.e2e.trust.keepHead(department, chain.head);
    this.chains.set(department, chain);
    return chain;
  }

  // --- a head's statements ------------------------------------------------------------

  /** @param {number} department @param {object} signed as on the wire */
  async postStatement(department, signed) {
    this.forget(department);
    return post(`/api/departments/${department}/statements`, { signed });
  }

  /**
   * Sign and post what `nextChange(chain)` asks for, one statement at a time, each at
   * the head of a freshly verified chain; it returns {kind, subject, fingerprint, role,
   * replaces} or null once the chain says what it must. Another head's statement
   * taking the position first (409 conflict) means: look at the chain again.
   * @param {number} department
   * @param {(chain: MembershipChain) => Change | null} nextChange
   * @param {{signer?: Identity | null, signerUser?: number | null}} [options] the admin key signs as user null
   */
  async signUntilDone(department, nextChange, { signer = null, signerUser = this.e2e.me } = {}) {
    const key = signer ?? this.e2e.identity.keypair();
    /** @type {Change["kind"][]} */
    const posted = [];
    for (let attempt = 0; attempt < SIGN_ATTEMPTS + 3; attempt++) {
      const chain = await this.chain(department, { fresh: true });
      const change = nextChange(chain);
      if (!change) return posted;
      const signed = statementAt(key, chain.head, { ...change, department, signerUser });
      try {
        await this.postStatement(department, signed);
      } catch (error) {
        if (codeOf(error) !== "conflict") throw error;
        continue;
      }
      posted.push(change.kind);
    }
    throw new E2EError("conflict", "The department's membership kept changing; nothing more was signed.");
  }

  /**
   * A member as the server lists them, with their published key checked: {member, public}.
   * @param {number} department
   * @param {number} user
   * @returns {Promise<{member: any, public: PublicIdentity}>}
   */
  async listedMember(department, user) {
    const data = await get(`/api/departments/${department}/keys`);
    const member = (data.members || []).find((/** @type {{user: number}} */ m) => m.user === user);
    if (!member) throw new E2EError("not_found", `User ${user} is not a member.`);
    if (!member.identity) {
      throw new E2EError("keys_not_published", `User ${user} has not set up keys yet; sign their admission once they have.`, { user });
    }
    return { member, public: c.checkedPublic(member.identity, member.fingerprint, `user ${user}`) };
  }

  /**
   * As a head, sign a member's admission, new key or role as the server lists them,
   * for `fingerprint`: the key as its holder read it to you (R7). A member the chain
   * holds with another key gets a `replace`, one it does not hold an `admit`, one
   * whose role changed a `role`. Resolves to the kinds posted (empty: nothing to sign).
   * @param {number} department
   * @param {number} user
   * @param {{fingerprint: string | null | undefined}} compared
   */
  async attest(department, user, { fingerprint }) {
    const { member, public: pub } = await this.listedMember(department, user);
    compared(fingerprint, pub.fingerprint, `User ${user}`);
    return this.signUntilDone(department, (chain) => {
      const held = chain.members.get(user);
      const base = { subject: user, fingerprint: pub.fingerprint };
      /** @type {Change["role"]} */
      const role = member.role;
      if (!held) return { ...base, kind: "admit", role };
      if (held.fingerprint !== pub.fingerprint) return { ...base, kind: "replace", role: held.role, replaces: held.fingerprint };
      if (held.role !== role) return { ...base, kind: "role", role };
      return null;
    });
  }

  /**
   * As a head, admit a user, and sign the admission for the key compared; with
   * `fingerprint` null, admit only (no keys yet, or not compared yet): they read
   * nothing until a head signs. `signed` lists the statements posted.
   * @param {number} department
   * @param {number} user
   * @param {Change["role"]} role
   * @param {{fingerprint: string | null | undefined}} compared
   */
  async admit(department, user, role = "member", { fingerprint }) {
    const admitted = await post(`/api/departments/${department}/members`, { user_id: user, role });
    admitted.signed = fingerprint == null ? [] : await this.attest(department, user, { fingerprint });
    return admitted;
  }

  /**
   * As a head, change a member's role and sign the change (for the key the chain holds).
   * @param {number} department
   * @param {number} user
   * @param {Change["role"]} role
   */
  async setRole(department, user, role) {
    const changed = await post(`/api/departments/${department}/members/${user}/role`, { role });
    changed.signed = await this.signUntilDone(department, (chain) => {
      const held = chain.members.get(user);
      if (!held || held.role === role) return null;
      return { kind: "role", subject: user, fingerprint: held.fingerprint, role };
    });
    return changed;
  }

  /**
   * As a head, remove a member and sign the removal: no client wraps for them again.
   * @param {number} department
   * @param {number} user
   * @param {{reason?: string}} [options] the head's reason, kept in the audit trail
   */
  async removeMember(department, user, { reason = "" } = {}) {
    const removed = await api("DELETE", `/api/departments/${department}/members/${user}`, reason ? { reason } : undefined);
    removed.signed = await this.signUntilDone(department, (chain) => {
      const held = chain.members.get(user);
      if (!held) return null;
      return { kind: "remove", subject: user, fingerprint: held.fingerprint, role: held.role };
    });
    return removed;
  }

  /**
   * As an administrator holding the institution's admin key (adminkey.js), appoint
   * a head: at the chain's head, an admission as head of the user's published key,
   * a promotion if the chain holds them as a member, or the replacement of a head's
   * lost key; `fingerprint` is their key as they read it to you (R7). Resolves to
   * {signed: [kinds]}, empty when the chain already holds them as head with that key.
   * @param {number} department
   * @param {number} user
   * @param {Identity} adminKey
   * @param {{fingerprint: string | null | undefined}} compared
   */
  async appointHead(department, user, adminKey, { fingerprint }) {
    const pub = await this.e2e.identity.published(user);
    if (!pub) throw new E2EError("keys_not_published", `User ${user} has no keys yet.`, { user });
    compared(fingerprint, pub.fingerprint, `User ${user}`);
    const signed = await this.signUntilDone(department, (chain) => {
      const held = chain.members.get(user);
      const base = { subject: user, fingerprint: pub.fingerprint, role: /** @type {const} */ ("head") };
      if (held && held.role === "head" && held.fingerprint === pub.fingerprint) return null;
      // The admin key only signs while the department has no head, or to replace a head's key.
      if (held && held.fingerprint !== pub.fingerprint) return { ...base, kind: "replace", replaces: held.fingerprint };
      if (![...chain.members.values()].some((m) => m.role === "head")) return { ...base, kind: held ? "role" : "admit" };
      throw new E2EError("head_exists", t("The department already has a signed head: they admit colleagues and other heads."));
    }, { signer: adminKey, signerUser: null });
    return { signed };
  }
}
