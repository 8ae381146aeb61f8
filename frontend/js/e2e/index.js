// @ts-check
// `E2E`: end-to-end encryption for the signed-in user, failing closed — the
// browser's client/sdk.py RoundsClient, a small façade over parts with one
// job each, side by side with the Python SDK (docs/crypto.md §9):
//
// - ../pins.js: the institution's pinned fingerprints (confirmed, never trusted on first use);
// - trust.js: what this browser remembers across sessions (heads, versions, envelopes seen);
// - keys.js: what it holds in memory (identity, room keys, verified records);
// - identity.js: the user's identity, its backup and recovery;
// - membership.js: the department's chain, verified; a head's signatures;
// - roomkeys.js: key versions verified, made, shared;
// - consults.js: a consult's thread key, and its guest signed in and out (§14);
// - messages.js: envelopes sealed and opened.
//
// Every refusal is an error with a `code` (errors.js E2EError, or a
// crypto/errors.js CryptoError): views explain it (ui.js explain) and mark it
// (data-code) for whoever tests a hostile server.
import { Consults } from "./consults.js";
import { Identity } from "./identity.js";
import { KeyRing } from "./keys.js";
import { Membership } from "./membership.js";
import { Messages } from "./messages.js";
import { RoomKeys } from "./roomkeys.js";
import { TrustStore } from "./trust.js";

export { E2EError } from "./errors.js";

/** @import { Identity as Keypair } from "../crypto.js" */
/** @import { Pins } from "../pins.js" */

/**
 * The signed-in user as /api/auth/me gives it.
 * @typedef {object} User
 * @property {number} id
 * @property {string} username
 * @property {string} [display_name]
 * @property {boolean} [is_admin]
 * @property {boolean} [is_compliance_officer]
 */
export { verifyListing } from "./membership.js";

export class E2E {
  /**
   * `user` as /api/auth/me gives it; `pins` {admin, compliance} from ../pins.js (null: not confirmed).
   * @param {User} user
   * @param {Pins} pins
   */
  constructor(user, pins) {
    this.user = user;
    this.me = user.id;
    this.pins = pins;
    this.trust = new TrustStore(user.id);
    this.keys = new KeyRing();
    this.identity = new Identity(this);
    this.membership = new Membership(this);
    this.roomKeys = new RoomKeys(this);
    this.consults = new Consults(this);
    this.messages = new Messages(this);
  }

  /** This browser's key fingerprint, or null before set-up. */
  get fingerprint() {
    return this.identity.fingerprint;
  }

  /**
   * A pushed event that changes what was verified: forget it, check again when needed.
   * @param {{type: string, department?: number, key_version?: number, consult?: any}} frame
   */
  observe(frame) {
    const department = frame.department;
    if (typeof department !== "number" || !Number.isInteger(department)) return;
    if (frame.type === "consult.updated" && frame.consult) {
      this.consults.seen(frame.consult); // opened or ended: a guest statement, a thread key version
      this.membership.forget(department);
    } else if (frame.type === "key.rotated" && frame.key_version !== this.keys.current.get(department)) {
      this.keys.forgetCurrent(department); // someone else published a version: check it before the next post
    } else if (["member.admitted", "member.removed", "member.role_changed", "membership.signed"].includes(frame.type)) {
      this.membership.forget(department);
    }
  }

  // --- identity --------------------------------------------------------------------

  keyState() {
    return this.identity.state();
  }

  /** @param {Parameters<Identity["create"]>[0]} [options] */
  create(options) {
    return this.identity.create(options);
  }

  /** @param {string} secret @param {Parameters<Identity["recover"]>[1]} [options] */
  recover(secret, options) {
    return this.identity.recover(secret, options);
  }

  /** @param {string} pin @param {Parameters<Identity["unlock"]>[1]} [options] */
  unlock(pin, options) {
    return this.identity.unlock(pin, options);
  }

  // --- membership (a head's, an administrator's) -----------------------------------

  /** The department's verified chain (see Membership.chain). */
  /** @param {number} department @param {Parameters<Membership["chain"]>[1]} [options] */
  chain(department, options) {
    return this.membership.chain(department, options);
  }

  /** @param {number} department @param {number} user @param {{fingerprint: string}} compared */
  attest(department, user, { fingerprint }) {
    return this.membership.attest(department, user, { fingerprint });
  }

  /**
   * @param {number} department
   * @param {number} user
   * @param {"head" | "member"} role
   * @param {{fingerprint: string | null}} compared
   */
  admit(department, user, role, { fingerprint }) {
    return this.membership.admit(department, user, role, { fingerprint });
  }

  /** @param {number} department @param {number} user @param {"head" | "member"} role */
  setRole(department, user, role) {
    return this.membership.setRole(department, user, role);
  }

  /** @param {number} department @param {number} user @param {{reason?: string}} [options] */
  removeMember(department, user, options) {
    return this.membership.removeMember(department, user, options);
  }

  /**
   * @param {number} department
   * @param {number} user
   * @param {Keypair} adminKey the institution's, from its key file (../adminkey.js)
   * @param {{fingerprint: string}} compared
   */
  appointHead(department, user, adminKey, { fingerprint }) {
    return this.membership.appointHead(department, user, adminKey, { fingerprint });
  }

  // --- room keys and messages ------------------------------------------------------

  /** The key to write with, checked (or made) now: what a conversation prepares on opening. */
  /** @param {number} department @param {number | null} [thread] */
  currentKey(department, thread = null) {
    return this.messages.writingKey(department, thread);
  }

  /**
   * A newcomer's wraps of the room key's earlier versions, then of the department's
   * consults' thread keys (docs/advice.md, "Consults").
   * @param {number} department @param {number} user
   */
  async shareHistory(department, user) {
    const shared = await this.roomKeys.shareHistory(department, user);
    await this.consults.shareHistory(department, user);
    return shared;
  }

  /** Members the server lists whose key the chain does not hold: Map(department → Set(user)). */
  get unattested() {
    return this.roomKeys.unattested;
  }

  /** @param {string} text @param {Parameters<Messages["seal"]>[1]} options */
  seal(text, options) {
    return this.messages.seal(text, options);
  }

  /** @param {string} clientMsgId @param {object} envelope @param {number | null | undefined} messageId */
  sent(clientMsgId, envelope, messageId) {
    return this.messages.sent(clientMsgId, envelope, messageId);
  }

  /** Verify and decrypt: {text, header}, or a refusal with its code (see Messages.open). */
  /** @param {any} message as the server sends it @param {number} department */
  open(message, department) {
    return this.messages.open(message, department);
  }
}
