// @ts-check
// A department's room key versions as this browser accepts, makes and shares
// them (client/roomkeys.py; docs/crypto.md §7 and §9, R3, R4, R8).
//
// Every version is taken from its signed record, checked against the
// department's verified chain: made by a member with that key, at a head in
// the chain; a wrap is accepted only from a key the chain ever admitted (or
// this browser's own), carrying the record's commitment, holding the key
// committed to. Writing happens under the version the server names as current
// only if it is not older than what this browser verified (trust.js) nor than
// the chain's latest removal or key replacement; a new version is made at a
// freshly verified head and wrapped for the members the chain holds (and the
// server still lists), with the keys the CHAIN admitted, and for the PINNED
// compliance key. Newcomers get the earlier versions (shareHistory).
import * as c from "../crypto.js";
import { get, post } from "../api.js";
import { codeOf, E2EError } from "./errors.js";

// How often current() tries to publish a new version when others keep changing
// the department (a rotation or an admission) under it.
const ROTATION_ATTEMPTS = 3;

/** @import { E2E } from "./index.js" */
/** @import { ChainHead, Identity, KeyVersionRecord, MembershipChain, PublicIdentity, RoomKey } from "../crypto.js" */
/** @typedef {{key: RoomKey, head: ChainHead}} WritingKey */

/**
 * A refusal of the key policy (kept per version), as opposed to a network or programming error.
 * @param {unknown} error
 * @returns {error is c.CryptoError | E2EError}
 */
export const isRefusal = (error) => error instanceof c.CryptoError || error instanceof E2EError;

export class RoomKeys {
  /** @param {E2E} e2e */
  constructor(e2e) {
    this.e2e = e2e;
    /**
     * Department → members the server lists whose admission the chain does not
     * hold with their key (yet): nothing was wrapped for them.
     * @type {Map<number, Set<number>>}
     */
    this.unattested = new Map();
    /** @type {Map<number, Promise<WritingKey>>} department → current() under way */
    this.checking = new Map();
  }

  get keys() {
    return this.e2e.keys;
  }

  /**
   * A version's record verified against the chain, fetched further when it names a later head: [record, chain].
   * @param {number} department
   * @param {unknown} signed
   * @param {MembershipChain} chain
   * @returns {Promise<[Readonly<KeyVersionRecord>, MembershipChain]>}
   */
  async verifiedRecord(department, signed, chain) {
    const parsed = c.parseSignedKeyVersion(signed);
    if (parsed.record.chain_seq > chain.head.seq) {
      chain = await this.e2e.membership.chain(department, { covers: c.keyVersionHead(parsed.record) });
    }
    return [c.verifyKeyVersion(parsed, chain), chain];
  }

  /**
   * Fetch the department's versions and this identity's wraps; keep what verifies.
   * Resolves to [the server's answer, Map(version → why a version or wrap was refused)].
   * @param {number} department
   * @returns {Promise<[any, Map<number, Error>]>}
   */
  async load(department) {
    const keys = this.keys;
    const identity = this.e2e.identity.keypair();
    const data = await get(`/api/departments/${department}/keys`);
    let chain = await this.e2e.membership.chain(department);
    /** @type {Map<number, Error>} */
    const refused = new Map();
    for (const entry of data.versions || []) {
      const version = entry?.version;
      if (!Number.isInteger(version) || keys.record(department, version)) continue;
      try {
        let record;
        [record, chain] = await this.verifiedRecord(department, entry.signed, chain);
        if (record.department !== department || record.thread !== null || record.version !== version) {
          throw new E2EError("invalid_envelope", "A key version record is listed under another number, or is a consult's thread key.");
        }
        keys.keepRecord(record);
        await this.e2e.trust.keepVersion(department, version);
      } catch (error) {
        if (!isRefusal(error)) throw error;
        refused.set(version, error);
      }
    }
    for (const raw of data.my_wraps || []) {
      const version = raw?.version;
      if (!Number.isInteger(version) || keys.roomKey(department, version)) continue;
      try {
        keys.addRoomKey(this.unwrap(department, raw, chain, identity));
      } catch (error) {
        if (!isRefusal(error)) throw error;
        if (!refused.has(version)) refused.set(version, error);
      }
    }
    return [data, refused];
  }

  /**
   * One wrap for this identity, from a key the chain admitted, with the verified record's commitment (R3);
   * of `thread`'s key for a consult's thread key, of the room key otherwise (never one for the other).
   * @param {number} department
   * @param {unknown} raw
   * @param {MembershipChain} chain
   * @param {Identity} identity
   * @param {number | null} [thread]
   */
  unwrap(department, raw, chain, identity, thread = null) {
    const record = c.parseWrapRecord(raw);
    if (record.department !== department) throw c.invalidEnvelope("the wrap names another department");
    if (record.thread !== thread) throw c.invalidEnvelope("the wrap is of another key than the one asked for");
    const version = this.keys.record(department, record.version, thread);
    if (!version) throw new E2EError("no_room_key", `Key version ${record.version} has no verified record.`);
    let wrapper;
    if (record.wrapper_fp === identity.fingerprint) wrapper = identity.public;
    else if (chain.everAdmitted.has(record.wrapper_fp)) wrapper = chain.keyOf(record.wrapper_fp);
    else {
      throw new E2EError("unverified_member",
        "The wrap was made by a key the department's chain never admitted; it is not used.", { wrapper: record.wrapper_fp });
    }
    if (!c.equalBytes(record.commitment, version.commitment)) {
      throw c.keyCommitmentMismatch(`the wrap of key version ${record.version} commits to another key than its record`);
    }
    const key = c.unwrapRoomKey(record, identity, wrapper);
    c.checkKeyMatches(version, key);
    return key;
  }

  /**
   * @param {number} department
   * @param {number} version
   * @param {Map<number, Error>} refused
   */
  noKey(department, version, refused) {
    const reason = refused.get(version);
    if (reason) return reason;
    return new E2EError("no_room_key",
      "This device has no key for these messages yet: a colleague's device shares it when they next open the department.",
      { department, key_version: version });
  }

  /**
   * The key and verified record of one version, fetched when not held (to read): {key, record}.
   * @param {number} department
   * @param {number} version
   */
  async version(department, version) {
    let key = this.keys.roomKey(department, version);
    let record = this.keys.record(department, version);
    if (!key || !record) {
      const [, refused] = await this.load(department);
      key = this.keys.roomKey(department, version);
      record = this.keys.record(department, version);
      if (!key || !record) throw this.noKey(department, version, refused);
    }
    return { key, record };
  }

  /**
   * The key to write with and the chain head to name ({key, head}), making the next
   * version when due. Throws not_attested, key_version_rollback, key_version_stale,
   * compliance_key_mismatch, pins_required, no_room_key, unverified_member, a
   * membership code, or the server's refusal.
   * @param {number} department
   * @returns {Promise<WritingKey>}
   */
  current(department) {
    // One check at a time per department: a conversation prepares its key when it
    // opens and the first message may ask at once; two would race to publish one version.
    let pending = this.checking.get(department);
    if (!pending) {
      pending = this.checkCurrent(department).finally(() => this.checking.delete(department));
      this.checking.set(department, pending);
    }
    return pending;
  }

  /**
   * @param {number} department
   * @returns {Promise<WritingKey>}
   */
  async checkCurrent(department) {
    const membership = this.e2e.membership;
    /** @type {unknown} */
    let lastError = null;
    for (let attempt = 0; attempt < ROTATION_ATTEMPTS; attempt++) {
      let chain = await membership.chain(department, { fresh: true });
      this.checkMe(chain);
      const [data, refused] = await this.load(department);
      chain = await membership.chain(department);
      const version = data.key_version;
      const highest = await this.e2e.trust.highestVersion(department);
      if (!Number.isInteger(version) || version < highest) {
        throw new E2EError("key_version_rollback",
          `The server names key version ${version || "none"} as current, but this device verified version ${highest}; nothing is written under it.`,
          { server: version, verified: highest });
      }
      if (version && !data.rotation_required) {
        const key = this.keys.roomKey(department, version);
        const record = this.keys.record(department, version);
        if (!key || !record) throw this.noKey(department, version, refused);
        c.checkCurrent(record, chain); // key_version_stale
        this.keys.current.set(department, version);
        return { key, head: chain.head };
      }
      try {
        return await this.publishNext(department, data, chain);
      } catch (error) {
        // Another version came first, or the membership changed: look again.
        const code = codeOf(error);
        if (code !== "conflict" && code !== "wraps_incomplete") throw error;
        this.insist(department, /** @type {{data?: {missing?: unknown[]}}} */ (error));
        lastError = error;
      }
    }
    throw lastError;
  }

  /**
   * not_attested unless the chain holds this user with this browser's key.
   * @param {MembershipChain} chain
   */
  checkMe(chain) {
    const held = chain.members.get(this.e2e.me);
    if (!held || held.fingerprint !== this.e2e.identity.keypair().fingerprint) {
      throw new E2EError("not_attested",
        "The department's signed membership does not hold you with this device's key: a head must sign your admission (or your new key) first.");
    }
  }

  /**
   * A server that requires a wrap for someone the chain does not hold gets none.
   * @param {number} department
   * @param {{data?: {missing?: unknown[]}}} refusal the server's conflict or wraps_incomplete
   */
  insist(department, refusal) {
    const missing = new Set((refusal.data?.missing || []).map(String));
    const unverified = [...(this.unattested.get(department) || [])].map(String).filter((u) => missing.has(u));
    if (unverified.length) {
      throw new E2EError("unverified_member",
        `The server requires a key for members whose admission no head has signed (${unverified.sort().join(", ")}); this device refuses.`,
        { users: unverified });
    }
  }

  /**
   * The server's compliance key, which must be the pinned one (R0).
   * @param {any} data the department's keys, as the server lists them
   */
  complianceKey(data) {
    const pinned = this.e2e.pins.compliance;
    if (!pinned) {
      throw new E2EError("pins_required",
        "This browser has not confirmed the institution's compliance key: no room key is wrapped.", { missing: ["compliance"] });
    }
    const fingerprint = data.compliance?.fingerprint ?? null;
    if (fingerprint !== pinned) {
      throw new E2EError("compliance_key_mismatch",
        "The server's compliance key is not the one pinned for this hospital; no room key was wrapped.",
        { pinned, server: fingerprint });
    }
    return c.checkedPublic(data.compliance.public, pinned, "compliance key");
  }

  /**
   * Whom a new version is wrapped for (R4): this identity, the members the chain holds
   * (and the server still lists) with the key the chain admitted, the pinned compliance key.
   * @param {number} department
   * @param {any} data the department's keys, as the server lists them
   * @param {MembershipChain} chain
   * @returns {Map<string, PublicIdentity>} fingerprint → key
   */
  recipients(department, data, chain) {
    const identity = this.e2e.identity.keypair();
    const compliance = this.complianceKey(data);
    /** @type {Map<string, PublicIdentity>} */
    const recipients = new Map([[identity.fingerprint, identity.public]]);
    /** @type {Set<number>} */
    const unattested = new Set();
    for (const member of data.members || []) {
      if (member.user === this.e2e.me) continue;
      const held = chain.members.get(member.user);
      if (!held || held.fingerprint !== member.fingerprint) {
        if (member.fingerprint != null) unattested.add(member.user); // wrapped for once a head signs their key
        continue;
      }
      recipients.set(held.fingerprint, chain.keyOf(held.fingerprint));
    }
    this.unattested.set(department, unattested);
    recipients.set(compliance.fingerprint, compliance);
    return recipients;
  }

  /**
   * Make the next version at the chain's head and wrap it for the members the chain
   * holds (and the server still lists), this identity and the compliance key (R4).
   * @param {number} department
   * @param {any} data the department's keys, as the server lists them
   * @param {MembershipChain} chain
   * @returns {Promise<WritingKey>}
   */
  async publishNext(department, data, chain) {
    const identity = this.e2e.identity.keypair();
    const me = this.e2e.me;
    const recipients = this.recipients(department, data, chain);
    const key = c.generateRoomKey(department, data.key_version + 1);
    const signed = c.makeKeyVersion(key, { head: chain.head, creatorUser: me, creator: identity });
    const wraps = [...recipients.values()].map((recipient) => c.wrapRoomKey(key, recipient, identity));
    await post(`/api/departments/${department}/keys`, { version: key.version, record: signed, wraps });
    this.keys.addRoomKey(key);
    this.keys.keepRecord(c.parseKeyVersionRecord(signed.record));
    this.keys.current.set(department, key.version);
    await this.e2e.trust.keepVersion(department, key.version);
    return { key, head: chain.head };
  }

  /**
   * Wrap every verified version held for a member the chain holds (R8), with the key
   * the chain admitted for them; one version per request, so one they already have
   * (conflict) is skipped without losing the others. Resolves to {user, fingerprint,
   * shared, skipped}; unverified_member (nothing wrapped) if the chain does not hold them.
   * @param {number} department
   * @param {number} user
   */
  async shareHistory(department, user) {
    const identity = this.e2e.identity.keypair();
    await this.load(department);
    const chain = await this.e2e.membership.chain(department, { fresh: true });
    const held = chain.members.get(user);
    if (!held) {
      throw new E2EError("unverified_member",
        `User ${user}'s admission is not in the department's chain; nothing is wrapped.`, { user });
    }
    const recipient = chain.keyOf(held.fingerprint);
    const shared = [];
    const skipped = [];
    for (const version of this.keys.versions(department)) {
      // versions() lists only the versions whose key is held.
      const wrap = c.wrapRoomKey(/** @type {RoomKey} */ (this.keys.roomKey(department, version)), recipient, identity);
      try {
        await post(`/api/departments/${department}/keys/wraps`, { wraps: [wrap] });
        shared.push(version);
      } catch (error) {
        if (codeOf(error) !== "conflict") throw error;
        skipped.push(version);
      }
    }
    return { user, fingerprint: recipient.fingerprint, shared, skipped };
  }
}
