// @ts-check
// Consults across departments (docs/crypto.md §14): the thread key of one
// department's thread opened to a guest from elsewhere, as this browser
// accepts, makes and uses it, whether a member of the department or its guest.
//
// Every version is taken from its signed record, verified against the
// department's chain (its creator a member at its head, the record of THIS
// thread); a wrap is accepted only from a key the chain admitted and is never
// taken for a room key. A member opens a consult by signing the guest in at
// the chain's head and making version 1 at the head that statement makes,
// wrapped for the members (as a room key version), the guest and the pinned
// compliance key; after the guest is signed out (unguest), the next member
// who writes makes a version without them. A guest never makes a version.
import * as c from "../crypto.js";
import { get, post } from "../api.js";
import { t } from "../i18n.js";
import { codeOf, E2EError } from "./errors.js";
import { isRefusal } from "./roomkeys.js";

/** @import { E2E } from "./index.js" */
/** @import { ChainHead, MembershipChain, PublicIdentity, RoomKey } from "../crypto.js" */
/** @import { WritingKey } from "./roomkeys.js" */

/**
 * A consult as the server gives it (core/protocol.py ConsultOut).
 * @typedef {{thread: number, department: number, patient: number, title: string,
 *   state: "pending" | "open" | "ended", guest: {id: number, username: string},
 *   opened_by: number | null, opened_at: string | null, ended_at: string | null, key_version: number}} Consult
 */

// How often a signature or a version is made again when the chain moved under it.
const ATTEMPTS = 3;

export class Consults {
  /** @param {E2E} e2e */
  constructor(e2e) {
    this.e2e = e2e;
    /** @type {Map<number, Consult | null>} thread → its consult, null when it is none */
    this.known = new Map();
    /** @type {Map<number, number>} thread → version checked as current */
    this.current = new Map();
    /** @type {Map<number, Promise<WritingKey>>} thread → check under way */
    this.checking = new Map();
  }

  get keys() {
    return this.e2e.keys;
  }

  /** @param {Consult} consult as an answer or consult.updated gives it */
  seen(consult) {
    this.known.set(consult.thread, consult);
    if (consult.state !== "open") this.current.delete(consult.thread);
  }

  /**
   * The consult of `thread`, or null when the thread is none (asked once, or again when `fresh`).
   * @param {number} thread
   * @param {{fresh?: boolean}} [options]
   * @returns {Promise<Consult | null>}
   */
  async of(thread, { fresh = false } = {}) {
    if (!fresh && this.known.has(thread)) return this.known.get(thread) ?? null;
    try {
      this.seen(await get(`/api/consults/${thread}`));
    } catch (error) {
      if (codeOf(error) !== "not_found") throw error;
      this.known.set(thread, null);
    }
    return this.known.get(thread) ?? null;
  }

  /**
   * Fetch the thread's versions and this identity's wraps; keep what verifies.
   * Resolves to [the server's answer, Map(version → why refused), the chain].
   * @param {number} thread
   * @returns {Promise<[any, Map<number, Error>, MembershipChain]>}
   */
  async load(thread) {
    const data = await get(`/api/consults/${thread}/keys`);
    const consult = /** @type {Consult} */ (data.consult);
    if (consult.thread !== thread) throw new E2EError("invalid_envelope", "The server answered with another consult's keys.");
    this.seen(consult);
    const department = consult.department;
    const identity = this.e2e.identity.keypair();
    let chain = await this.e2e.membership.chain(department);
    /** @type {Map<number, Error>} */
    const refused = new Map();
    for (const entry of data.versions || []) {
      const version = entry?.version;
      if (!Number.isInteger(version) || this.keys.record(department, version, thread)) continue;
      try {
        let record;
        [record, chain] = await this.e2e.roomKeys.verifiedRecord(department, entry.signed, chain);
        if (record.department !== department || record.thread !== thread || record.version !== version) {
          throw new E2EError("invalid_envelope", "A thread key version record is listed under another thread or number.");
        }
        this.keys.keepRecord(record);
      } catch (error) {
        if (!isRefusal(error)) throw error;
        refused.set(version, error);
      }
    }
    for (const raw of data.my_wraps || []) {
      const version = raw?.record?.version ?? raw?.version;
      if (Number.isInteger(version) && this.keys.roomKey(department, version, thread)) continue;
      try {
        this.keys.addRoomKey(this.e2e.roomKeys.unwrap(department, raw, chain, identity, thread));
      } catch (error) {
        if (!isRefusal(error)) throw error;
        if (Number.isInteger(version) && !refused.has(version)) refused.set(version, error);
      }
    }
    return [data, refused, chain];
  }

  /**
   * @param {number} department
   * @param {number} thread
   * @param {number} version
   * @param {Map<number, Error>} refused
   */
  noKey(department, thread, version, refused) {
    return refused.get(version) ?? new E2EError("no_room_key",
      t("This device has no key for this consult's messages."), { department, thread, key_version: version });
  }

  /**
   * The key and verified record of one thread key version (to read): {key, record}.
   * @param {number} department
   * @param {number} thread
   * @param {number} version
   */
  async version(department, thread, version) {
    let key = this.keys.roomKey(department, version, thread);
    let record = this.keys.record(department, version, thread);
    if (!key || !record) {
      const [, refused] = await this.load(thread);
      key = this.keys.roomKey(department, version, thread);
      record = this.keys.record(department, version, thread);
      if (!key || !record) throw this.noKey(department, thread, version, refused);
    }
    return { key, record };
  }

  /**
   * The thread key to write with and the head to name; `fresh` checks again (the server
   * asked for a new version). A member makes the next version when one is due.
   * @param {number} department
   * @param {number} thread
   * @param {{fresh?: boolean}} [options]
   * @returns {Promise<WritingKey>}
   */
  async writingKey(department, thread, { fresh = false } = {}) {
    if (fresh) this.current.delete(thread);
    const version = this.current.get(thread);
    const key = version === undefined ? null : this.keys.roomKey(department, version, thread);
    const record = version === undefined ? null : this.keys.record(department, version, thread);
    if (key && record) {
      const chain = await this.e2e.membership.chain(department);
      try {
        c.checkCurrent(record, chain); // an unguest or a removal seen since
        return { key, head: chain.head };
      } catch (error) {
        if (!(error instanceof c.CryptoError)) throw error;
        this.current.delete(thread);
      }
    }
    let pending = this.checking.get(thread);
    if (!pending) {
      pending = this.checkCurrent(thread).finally(() => this.checking.delete(thread));
      this.checking.set(thread, pending);
    }
    return pending;
  }

  /**
   * @param {number} thread
   * @returns {Promise<WritingKey>}
   */
  async checkCurrent(thread) {
    /** @type {unknown} */
    let lastError = null;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const known = this.known.get(thread);
      if (known) await this.e2e.membership.chain(known.department, { fresh: true });
      const [data, refused, chain] = await this.load(thread);
      const consult = /** @type {Consult} */ (data.consult);
      const version = consult.key_version;
      if (version && !data.rotation_required) {
        const key = this.keys.roomKey(consult.department, version, thread);
        const record = this.keys.record(consult.department, version, thread);
        if (!key || !record) throw this.noKey(consult.department, thread, version, refused);
        c.checkCurrent(record, chain); // key_version_stale
        this.current.set(thread, version);
        return { key, head: chain.head };
      }
      if (consult.guest.id === this.e2e.me || !version) {
        throw new E2EError("no_room_key", t("This consult has no key to write with yet: the department renews it."), { thread });
      }
      try {
        return await this.publish(consult, chain, version + 1, chain.head, null);
      } catch (error) {
        const code = codeOf(error);
        if (code !== "conflict" && code !== "wraps_incomplete") throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  /**
   * Make version `version` of the thread's key at `head` and post it: with the guest
   * statement that opens the consult when `opening` is given, else on its own.
   * @param {Consult} consult
   * @param {MembershipChain} chain the verified chain the recipients come from
   * @param {number} version
   * @param {ChainHead} head the head the version names
   * @param {{statement: object, guest: PublicIdentity} | null} opening
   * @returns {Promise<WritingKey>}
   */
  async publish(consult, chain, version, head, opening) {
    const { department, thread } = consult;
    const identity = this.e2e.identity.keypair();
    this.e2e.roomKeys.checkMe(chain);
    const listing = await get(`/api/departments/${department}/keys`);
    const recipients = this.e2e.roomKeys.recipients(department, listing, chain);
    if (opening) recipients.set(opening.guest.fingerprint, opening.guest);
    else if (consult.state === "open") {
      for (const guest of chain.guestsOf(thread).values()) recipients.set(guest.fingerprint, chain.keyOf(guest.fingerprint));
    }
    const key = c.generateRoomKey(department, version, thread);
    const signed = c.makeKeyVersion(key, { head, creatorUser: this.e2e.me, creator: identity });
    const wraps = [...recipients.values()].map((recipient) => c.wrapRoomKey(key, recipient, identity));
    if (opening) {
      this.seen(await post(`/api/consults/${thread}/open`, { statement: opening.statement, key_version: signed, wraps }));
      this.e2e.membership.forget(department);
    } else {
      await post(`/api/consults/${thread}/keys`, { key_version: signed, wraps });
    }
    this.keys.addRoomKey(key);
    this.keys.keepRecord(c.parseKeyVersionRecord(signed.record));
    this.current.set(thread, version);
    return { key, head };
  }

  /**
   * As a member the consult was put to (or a head), open it: sign its guest in, for the
   * key they publish now, and make the thread key's first version at that new head.
   * @param {number} thread
   * @returns {Promise<Consult>}
   */
  async open(thread) {
    /** @type {unknown} */
    let lastError = null;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const data = await get(`/api/consults/${thread}/keys`);
      const consult = /** @type {Consult} */ (data.consult);
      this.seen(consult);
      if (consult.state !== "pending") return consult;
      if (!data.guest_identity) {
        throw new E2EError("keys_not_published", t("The colleague who asked has no keys yet: the consult opens once they do."));
      }
      // The key the guest publishes now, as the server serves it: a colleague of another
      // department has compared it with nobody here. The key directory, when it shows it
      // to me at all, must agree.
      const guest = c.checkedPublic(data.guest_identity, undefined, "the guest's key");
      const published = await this.e2e.identity.published(consult.guest.id).catch(() => null);
      if (published && published.fingerprint !== guest.fingerprint) {
        throw new E2EError("fingerprint_mismatch", t("The guest's key is not the one the key directory publishes; nothing was signed."));
      }
      const chain = await this.e2e.membership.chain(consult.department, { fresh: true });
      const statement = c.makeStatement(this.e2e.identity.keypair(), {
        kind: "guest", department: consult.department, seq: chain.head.seq + 1, prev: chain.head.hash,
        subject: consult.guest.id, subjectFingerprint: guest.fingerprint, role: "guest", thread, signerUser: this.e2e.me,
      });
      const head = c.chainHead(chain.head.seq + 1, c.statementHash(c.parseSignedStatement(statement)));
      try {
        await this.publish(consult, chain, 1, head, { statement, guest });
        return /** @type {Consult} */ (this.known.get(thread));
      } catch (error) {
        const code = codeOf(error);
        if (code !== "conflict" && code !== "wraps_incomplete") throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  /**
   * End the consult, as its guest or a member: the guest is signed out of the thread
   * (unguest), and the next member who writes makes a version without them.
   * @param {number} thread
   * @returns {Promise<Consult>}
   */
  async end(thread) {
    /** @type {unknown} */
    let lastError = null;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const consult = await this.of(thread, { fresh: true });
      if (!consult) throw new E2EError("not_found", t("Thread not found."));
      if (consult.state !== "open") return consult;
      const chain = await this.e2e.membership.chain(consult.department, { fresh: true });
      const guest = chain.guestsOf(thread).get(consult.guest.id);
      if (!guest) throw new E2EError("membership_unverified", t("The department's signed membership does not hold this consult's guest."));
      const statement = c.makeStatement(this.e2e.identity.keypair(), {
        kind: "unguest", department: consult.department, seq: chain.head.seq + 1, prev: chain.head.hash,
        subject: consult.guest.id, subjectFingerprint: guest.fingerprint, role: "guest", thread, signerUser: this.e2e.me,
      });
      try {
        this.seen(await post(`/api/consults/${thread}/end`, { statement }));
        this.e2e.membership.forget(consult.department);
        return /** @type {Consult} */ (this.known.get(thread));
      } catch (error) {
        if (codeOf(error) !== "conflict") throw error;
        lastError = error;
      }
    }
    throw lastError;
  }

  /**
   * Wrap every verified version held of the department's consults' thread keys for a
   * member the chain holds (a newcomer reads the consults' history, R8), one per request
   * so one they have already (conflict) is skipped. Resolves to Map(thread → versions shared).
   * @param {number} department
   * @param {number} user
   */
  async shareHistory(department, user) {
    const identity = this.e2e.identity.keypair();
    const { consults } = await get(`/api/consults?department=${department}`);
    const chain = await this.e2e.membership.chain(department, { fresh: true });
    const held = chain.members.get(user);
    if (!held) {
      throw new E2EError("unverified_member",
        `User ${user}'s admission is not in the department's chain; nothing is wrapped.`, { user });
    }
    const recipient = chain.keyOf(held.fingerprint);
    /** @type {Map<number, number[]>} */
    const shared = new Map();
    for (const consult of /** @type {Consult[]} */ (consults)) {
      if (!consult.key_version) continue;
      await this.load(consult.thread);
      for (let version = 1; version <= consult.key_version; version++) {
        const key = this.keys.roomKey(department, version, consult.thread);
        if (!key) continue;
        try {
          await post(`/api/consults/${consult.thread}/keys/wraps`, { wraps: [c.wrapRoomKey(key, recipient, identity)] });
          shared.set(consult.thread, [...(shared.get(consult.thread) ?? []), version]);
        } catch (error) {
          if (codeOf(error) !== "conflict") throw error;
        }
      }
    }
    return shared;
  }
}
