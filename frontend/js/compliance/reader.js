// @ts-check
// What a compliance officer's browser checks and decrypts under a review case
// (docs/compliance.md, "In the browser"), with the member's crypto modules and
// no new primitive. A case's timeline comes from the server, which is not
// trusted: each department's chain is replayed from the PINNED admin key (and
// must extend the head this browser verified before, trust.js), every key
// version record is verified against it, a compliance wrap is opened only if
// a key the chain admitted made it and it carries the record's commitment,
// and every message is opened as a member's client opens it (openEnvelope:
// the sender's key from the chain at the head the envelope names). A check
// that fails is kept with its code, for the view to show beside the message:
// a review shows what the server holds, it does not hide what fails.
//
// The compliance private key is used by `unwrap` inside withInstitutionKey
// (adminkey.js), which wipes it; only the room keys it opened stay, in memory,
// until sign-out (`forget`), as a member's room keys do.
import * as c from "../crypto.js";
import { verifyListing } from "../e2e/membership.js";
import { E2EError } from "../e2e/errors.js";
import { TrustStore } from "../e2e/trust.js";
import { readBody } from "../photos/photos.js";
import { t } from "../i18n.js";

/** @import { Identity, KeyVersionRecord, MembershipChain, RoomKey } from "../crypto.js" */
/** @import { User } from "../e2e/index.js" */
/** @import { Pins } from "../pins.js" */

/**
 * A key version as released under the case: its record verified, or why not.
 * @typedef {{record: Readonly<KeyVersionRecord>, error?: undefined, entry: any} | {record?: undefined, error: Error, entry: any}} ReleasedVersion
 */

/** @typedef {{id: number, chain: MembershipChain, versions: Map<number, ReleasedVersion>, raw: any}} VerifiedDepartment */

/**
 * @param {unknown} error
 * @returns {error is c.CryptoError | E2EError}
 */
const isRefusal = (error) => error instanceof c.CryptoError || error instanceof E2EError;

/** A department as a case's timeline released it, verified: {id, chain, versions, error}. */
export class Reader {
  /** @param {User} user @param {Pins} pins */
  constructor(user, pins) {
    this.pins = pins;
    this.trust = new TrustStore(user.id);
    /** @type {Map<number, VerifiedDepartment>} */
    this.departments = new Map();
    /** @type {Map<number, Map<number, RoomKey>>} department → Map(version → room key) */
    this.keys = new Map();
    /** @type {Map<number, Map<number, Error>>} department → Map(version → error) */
    this.refusedWraps = new Map();
  }

  /**
   * Verify a timeline page's `department` record: the chain from the pinned admin key
   * (membership_unverified, admin_key_mismatch, pins_required; membership_rollback or
   * membership_fork against the head this browser verified), then each key version.
   * Throws only for the chain; a version that fails is kept with its error.
   * @param {any} record the timeline's `department`
   * @returns {Promise<VerifiedDepartment>}
   */
  async verifyDepartment(record) {
    const id = record.id;
    this.departments.delete(id); // what was verified before is not vouched for by this answer
    const chain = verifyListing(record.chain, this.pins.admin);
    if (chain.department !== null && chain.department !== id) {
      throw new E2EError("membership_unverified", "The statements served are another department's.");
    }
    const known = await this.trust.head(id);
    if (known) chain.checkExtends(known);
    await this.trust.keepHead(id, chain.head);
    /** @type {Map<number, ReleasedVersion>} */
    const versions = new Map();
    for (const entry of record.key_versions || []) {
      try {
        const verified = c.verifyKeyVersion(c.parseSignedKeyVersion(entry.signed), chain);
        if (verified.department !== id || verified.version !== entry.version) {
          throw new E2EError("invalid_envelope", "A key version record is listed under another number.");
        }
        versions.set(entry.version, { record: verified, entry });
      } catch (error) {
        if (!isRefusal(error)) throw error;
        versions.set(entry.version, { error, entry });
      }
    }
    const verified = { id, chain, versions, raw: record };
    this.departments.set(id, verified);
    return verified;
  }

  /**
   * Versions of a verified department whose room key this browser does not hold.
   * @param {VerifiedDepartment} department
   */
  missingKeys(department) {
    const held = this.keys.get(department.id) ?? new Map();
    return [...department.versions].filter(([version, v]) => v.record && !held.has(version)).map(([version]) => version);
  }

  /**
   * Open the compliance wraps of verified departments with `identity` (the compliance key
   * file, already checked against the pin): only a wrap made by a key the chain admitted,
   * for this key, with the record's commitment, holding the key committed to (R3).
   * Returns {opened, refused}: counts.
   * @param {Identity} identity
   * @param {Iterable<VerifiedDepartment>} departments
   */
  unwrap(identity, departments) {
    let opened = 0;
    let refused = 0;
    for (const department of departments) {
      const held = this.keys.get(department.id) ?? new Map();
      const why = this.refusedWraps.get(department.id) ?? new Map();
      for (const [version, { record, entry }] of department.versions) {
        if (!record || held.has(version)) continue;
        const wraps = (entry.compliance_wraps || []).filter((/** @type {any} */ w) => w.recipient_fingerprint === identity.fingerprint);
        if (!wraps.length) {
          why.set(version, new E2EError("no_room_key", "No wrap of this version was made for this compliance key."));
          refused += 1;
          continue;
        }
        try {
          held.set(version, this.openWrap(department, record, wraps[0].record, identity));
          why.delete(version);
          opened += 1;
        } catch (error) {
          if (!isRefusal(error)) throw error;
          why.set(version, error);
          refused += 1;
        }
      }
      this.keys.set(department.id, held);
      this.refusedWraps.set(department.id, why);
    }
    return { opened, refused };
  }

  /**
   * @param {VerifiedDepartment} department
   * @param {KeyVersionRecord} version its verified record
   * @param {unknown} raw the wrap record
   * @param {Identity} identity the compliance key
   */
  openWrap(department, version, raw, identity) {
    const wrap = c.parseWrapRecord(raw);
    if (wrap.department !== department.id || wrap.version !== version.version) {
      throw c.invalidEnvelope("the wrap names another department or version");
    }
    if (!department.chain.everAdmitted.has(wrap.wrapper_fp)) {
      throw new E2EError("unverified_member", "The wrap was made by a key the department's chain never admitted.", { wrapper: wrap.wrapper_fp });
    }
    if (!c.equalBytes(wrap.commitment, version.commitment)) {
      throw c.keyCommitmentMismatch(`the wrap of key version ${version.version} commits to another key than its record`);
    }
    const key = c.unwrapRoomKey(wrap, identity, department.chain.keyOf(wrap.wrapper_fp));
    c.checkKeyMatches(version, key);
    return key;
  }

  /**
   * Check a message of a verified department as a member's client does: the envelope
   * filed where the server says (envelope_mismatch), the sender's signature with the key
   * the chain admitted at the head it names (sender_not_member, bad_signature,
   * membership_withheld…), its key version verified and allowed (key_commitment_mismatch,
   * key_version_stale…), then decrypted when the room key is held, and a photos body
   * matched against the attachments the server lists (attachment_mismatch).
   * Returns {header, text, body} (text null without the key: `keyError` says why) or throws.
   * `corrects`: what the header's `corrects` must be (a correction: openCorrection).
   * @param {any} message as the timeline lists it
   * @param {number} departmentId
   * @param {{corrects?: string | null}} [options]
   * @returns {{header: c.ParsedEnvelope, text: string, body: any, keyError?: undefined}
   *   | {header: c.ParsedEnvelope, text: null, body: null, keyError: Error}}
   */
  open(message, departmentId, { corrects = null } = {}) {
    const department = this.departments.get(departmentId);
    if (!department) throw new E2EError("membership_unverified", "This department's membership was not verified.");
    const envelope = message.envelope;
    // Codes ui.js explain() does not know: their message is the sentence shown.
    if (!envelope) throw new E2EError("no_envelope", t("The server released no envelope for this message."));
    const header = c.parseEnvelope(envelope);
    const sender = message.sender?.id ?? message.sender;
    if (header.thread !== message.thread || header.room !== departmentId || header.sender !== sender
      || header.client_msg_id !== message.client_msg_id) {
      throw new E2EError("envelope_mismatch", "The envelope was made for another thread, department, sender or message id.");
    }
    if (header.corrects !== corrects) {
      throw corrects === null ? new E2EError("envelope_mismatch", "A correction's envelope filed as a message.")
        : new E2EError("correction_mismatch", t("This correction was not made by the message's sender for this message."));
    }
    const { chain } = department;
    const parsed = c.verifyEnvelopeInChain(envelope, chain);
    const version = department.versions.get(header.key_version);
    if (!version) throw new E2EError("no_room_key", `Key version ${header.key_version} was not released.`);
    if (!version.record) throw version.error;
    c.checkKeyVersionOf(parsed, version.record, chain);
    const roomKey = this.keys.get(departmentId)?.get(header.key_version);
    if (!roomKey) {
      const keyError = this.refusedWraps.get(departmentId)?.get(header.key_version)
        ?? new E2EError("no_room_key", "Load the compliance key file to read this message.");
      return { header, text: null, body: null, keyError };
    }
    const { plaintext } = c.openEnvelope(envelope, { chain, record: version.record, roomKey });
    let text;
    try {
      text = c.fromUtf8(plaintext);
    } catch {
      throw c.invalidEnvelope("the message is not UTF-8 text");
    }
    return { header, ...readBody(text, message.attachments) };
  }

  /**
   * One correction of `message` (a version of it), checked as a message is and bound to
   * it: the same sender, thread and department, and `corrects` its client_msg_id.
   * @param {any} message as the timeline lists it
   * @param {any} correction one of its `corrections`
   * @param {number} departmentId
   */
  openCorrection(message, correction, departmentId) {
    const version = { ...message, client_msg_id: correction.client_msg_id, envelope: correction.envelope, attachments: [] };
    return this.open(version, departmentId, { corrects: message.client_msg_id });
  }

  /**
   * The body photo of a library item released under a case, its message checked and
   * decrypted as above; its department must have been verified (the case's review).
   * @param {any} item as the library lists it
   */
  photoOf(item) {
    if (!this.departments.has(item.department)) {
      throw new E2EError("no_room_key", "Open this case's review and load the compliance key file first.");
    }
    const opened = this.open(item.message, item.department);
    if (opened.text === null) throw opened.keyError;
    const photo = opened.body?.photos.find((/** @type {any} */ p) => p.upload === item.upload);
    if (!photo) throw new E2EError("attachment_mismatch", "The library lists a photo its message does not hold.");
    return photo;
  }

  /** Drop every room key (sign-out): zeroed, then forgotten. */
  forget() {
    for (const held of this.keys.values()) for (const key of held.values()) key.key.fill(0);
    this.keys.clear();
    this.departments.clear();
    this.refusedWraps.clear();
  }
}
