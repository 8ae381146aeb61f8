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
// - messages.js: envelopes sealed and opened.
//
// Every refusal is an error with a `code` (errors.js E2EError, or a
// crypto/errors.js CryptoError): views explain it (ui.js explain) and mark it
// (data-code) for whoever tests a hostile server.
import { Identity } from "./identity.js";
import { KeyRing } from "./keys.js";
import { Membership } from "./membership.js";
import { Messages } from "./messages.js";
import { RoomKeys } from "./roomkeys.js";
import { TrustStore } from "./trust.js";

export { E2EError } from "./errors.js";
export { verifyListing } from "./membership.js";

export class E2E {
  /** `user` as /api/auth/me gives it; `pins` {admin, compliance} from ../pins.js (null: not confirmed). */
  constructor(user, pins) {
    this.user = user;
    this.me = user.id;
    this.pins = pins;
    this.trust = new TrustStore(user.id);
    this.keys = new KeyRing();
    this.identity = new Identity(this);
    this.membership = new Membership(this);
    this.roomKeys = new RoomKeys(this);
    this.messages = new Messages(this);
  }

  /** This browser's key fingerprint, or null before set-up. */
  get fingerprint() {
    return this.identity.fingerprint;
  }

  /** A pushed event that changes what was verified: forget it, check again when needed. */
  observe(frame) {
    const department = frame.department;
    if (!Number.isInteger(department)) return;
    if (frame.type === "key.rotated" && frame.key_version !== this.keys.current.get(department)) {
      this.keys.forgetCurrent(department); // someone else published a version: check it before the next post
    } else if (["member.admitted", "member.removed", "member.role_changed"].includes(frame.type)) {
      this.membership.forget(department);
    }
  }

  // --- identity --------------------------------------------------------------------

  keyState() {
    return this.identity.state();
  }

  create(options) {
    return this.identity.create(options);
  }

  recover(secret, options) {
    return this.identity.recover(secret, options);
  }

  // --- membership (a head's, an administrator's) -----------------------------------

  /** The department's verified chain (see Membership.chain). */
  chain(department, options) {
    return this.membership.chain(department, options);
  }

  attest(department, user, { fingerprint }) {
    return this.membership.attest(department, user, { fingerprint });
  }

  admit(department, user, role, { fingerprint }) {
    return this.membership.admit(department, user, role, { fingerprint });
  }

  setRole(department, user, role) {
    return this.membership.setRole(department, user, role);
  }

  removeMember(department, user) {
    return this.membership.removeMember(department, user);
  }

  appointHead(department, user, adminKey, { fingerprint }) {
    return this.membership.appointHead(department, user, adminKey, { fingerprint });
  }

  // --- room keys and messages ------------------------------------------------------

  /** The key to write with, checked (or made) now: what a conversation prepares on opening. */
  currentKey(department) {
    return this.messages.writingKey(department);
  }

  shareHistory(department, user) {
    return this.roomKeys.shareHistory(department, user);
  }

  /** Members the server lists whose key the chain does not hold: Map(department → Set(user)). */
  get unattested() {
    return this.roomKeys.unattested;
  }

  seal(text, options) {
    return this.messages.seal(text, options);
  }

  sent(clientMsgId, envelope, messageId) {
    return this.messages.sent(clientMsgId, envelope, messageId);
  }

  /** Verify and decrypt: {text, header}, or a refusal with its code (see Messages.open). */
  open(message, department) {
    return this.messages.open(message, department);
  }
}
