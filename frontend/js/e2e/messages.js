// @ts-check
// Messages: sealed under the current version for the chain head verified,
// opened only when the chain, the key version and the replay memory all agree
// (client/messages.py; docs/crypto.md §8 and §9, R4 to R6).
//
// Writing: the envelope names the version roomkeys.js checked as current and
// the chain head this browser verified. Reading: the sender's key is the one
// the chain admitted at the head the envelope names (never the key
// directory's), the version's record must verify and allow it, and an
// envelope seen before under another message id is a `duplicate` (shown as
// such, pointing to the first), another envelope under a seen (sender,
// client_msg_id) a `replay`. The memory of what was seen is trust.js, so both
// hold across reloads and sign-outs.
//
// Corrections: a correction is sealed like a message, its signed header's
// `corrects` naming the corrected message's client_msg_id. It is shown only
// if it opens like a message and is bound to the message held (same sender,
// thread, department, `corrects`); otherwise the original is shown, flagged.
import * as c from "../crypto.js";
import { t } from "../i18n.js";
import { E2EError } from "./errors.js";
import { envelopeHash } from "./trust.js";

/** @import { E2E } from "./index.js" */
/** @import { ChainHead, RoomKey } from "../crypto.js" */

export class Messages {
  /** @param {E2E} e2e */
  constructor(e2e) {
    this.e2e = e2e;
  }

  /**
   * The version checked as current and the chain head to name ({key, head});
   * checked again when an event or a refusal made this browser forget it. In a
   * consult's thread (known as one), the thread key's (consults.js).
   * @param {number} department
   * @param {number | null} [thread]
   * @param {{fresh?: boolean}} [options]
   * @returns {Promise<{key: RoomKey, head: ChainHead}>}
   */
  async writingKey(department, thread = null, { fresh = false } = {}) {
    if (thread !== null && this.e2e.consults.known.get(thread)) {
      return this.e2e.consults.writingKey(department, thread, { fresh });
    }
    const keys = this.e2e.keys;
    const key = keys.currentKey(department);
    const record = key && keys.record(department, key.version);
    if (key && record) {
      const chain = await this.e2e.membership.chain(department);
      try {
        c.checkCurrent(record, chain); // a removal this browser has since seen
        return { key, head: chain.head };
      } catch (error) {
        if (!(error instanceof c.CryptoError)) throw error;
        keys.forgetCurrent(department);
      }
    }
    return this.e2e.roomKeys.current(department);
  }

  /**
   * Encrypt and sign a message body (text) for `thread`; the envelope. `fresh`
   * forgets the version held (the server asked for a new one: key_rotation_required),
   * and asks again whether the thread is a consult's (envelope_mismatch: one written
   * under the room key was refused there).
   * @param {string} text
   * `corrects` (a correction) is the client_msg_id of my message it replaces.
   * @param {{department: number, thread: number, clientMsgId: string, fresh?: boolean, corrects?: string | null}} options
   */
  async seal(text, { department, thread, clientMsgId, fresh = false, corrects = null }) {
    const plaintext = c.utf8(text);
    if (plaintext.length > c.MAX_PLAINTEXT) {
      throw new E2EError("frame_too_large", t("This message is too long."), { max_plaintext: c.MAX_PLAINTEXT });
    }
    if (fresh) {
      this.e2e.keys.forgetCurrent(department);
      await this.e2e.consults.of(thread, { fresh: true });
    }
    const { key, head } = await this.writingKey(department, thread, { fresh });
    return c.encryptMessage(plaintext, {
      roomKey: key, head, thread, sender: this.e2e.me, clientMsgId, signer: this.e2e.identity.keypair(), corrects,
    });
  }

  /**
   * A sent envelope, acknowledged as `messageId`: remembered like one opened.
   * @param {string} clientMsgId
   * @param {object} envelope
   * @param {number | null | undefined} messageId
   */
  sent(clientMsgId, envelope, messageId) {
    return this.e2e.trust.remember(this.e2e.me, clientMsgId, envelopeHash(envelope), messageId ?? null);
  }

  /**
   * Verify and decrypt a message (of message.new, a history page or a library item)
   * of `department`: {text, header, edited, version, correctionError}
   * (header.sent_at: the sender's clock). With a correction, `text` is the
   * latest version's when it verifies and is bound to this message (`edited`
   * true, `version` 2 or more), else the original's with `correctionError`
   * its code (shown flagged: "correction could not be verified"). Throws
   * envelope_mismatch, duplicate (data.message_id: the first), replay, no_room_key,
   * a membership code (membership_withheld, membership_fork, …) or a crypto code
   * (sender_not_member, bad_signature, key_version_stale, key_commitment_mismatch,
   * decryption_failed, …).
   * @param {any} message as the server sends it
   * @param {number} department
   */
  async open(message, department) {
    if (message.redacted) {
      throw new E2EError("redacted", "This message was removed; it is retained for compliance only.", { ...message.redacted });
    }
    const sender = message.sender?.id ?? message.sender;
    const envelope = message.envelope;
    const header = c.parseEnvelope(envelope);
    if (header.thread !== message.thread || header.room !== department || header.sender !== sender
      || header.client_msg_id !== message.client_msg_id || header.corrects !== null) {
      throw new E2EError("envelope_mismatch", "The envelope was made for another thread, department, sender or message id, or is a correction.");
    }
    const text = await this.decrypt(envelope, header, department);
    await this.checkSeen(sender, message.client_msg_id, envelope, message.id ?? null);
    const correction = message.correction;
    if (!correction) return { text, header, edited: false, version: 1, correctionError: null };
    try {
      const corrected = await this.openCorrection(correction, header, department);
      return { text: corrected, header, edited: true, version: correction.version, correctionError: null };
    } catch (error) {
      const code = /** @type {{code?: string}} */ (error).code;
      if (typeof code !== "string") throw error;
      return { text, header, edited: false, version: 1, correctionError: code };
    }
  }

  /**
   * A correction's text, if it opens like a message and is bound to `original`.
   * @param {any} correction as the server sends it
   * @param {c.ParsedEnvelope} original the message's header
   * @param {number} department
   */
  async openCorrection(correction, original, department) {
    const envelope = correction.envelope;
    const header = c.parseEnvelope(envelope);
    if (header.corrects !== original.client_msg_id || header.sender !== original.sender || header.thread !== original.thread
      || header.room !== department || header.client_msg_id !== correction.client_msg_id
      || !(Number.isInteger(correction.version) && correction.version >= 2)) {
      throw new E2EError("correction_mismatch", t("This correction was not made by the message's sender for this message."));
    }
    const text = await this.decrypt(envelope, header, department);
    await this.checkSeen(header.sender, header.client_msg_id, envelope, null);
    return text;
  }

  /**
   * Open an envelope whose header was parsed: the chain, the key version, the AEAD; its text.
   * @param {unknown} envelope
   * @param {c.ParsedEnvelope} header
   * @param {number} department
   */
  async decrypt(envelope, header, department) {
    const membership = this.e2e.membership;
    await membership.chain(department, { covers: header.head });
    const { key, record } = header.key_thread === null ? await this.e2e.roomKeys.version(department, header.key_version)
      : await this.e2e.consults.version(department, header.key_thread, header.key_version);
    if (header.key_thread !== null && !this.e2e.consults.known.get(header.thread)) {
      await this.e2e.consults.of(header.thread).catch(() => null); // written under a thread key: its consult, to write there too
    }
    const chain = await membership.chain(department, { covers: header.head });
    const { plaintext } = c.openEnvelope(envelope, { chain, record, roomKey: key });
    try {
      return c.fromUtf8(plaintext);
    } catch {
      throw c.invalidEnvelope("the message is not UTF-8 text");
    }
  }

  /**
   * Remember a verified envelope; refuse a replay and a duplicate (R6).
   * @param {number} sender
   * @param {string} clientMsgId
   * @param {object} envelope
   * @param {number | null} messageId
   */
  async checkSeen(sender, clientMsgId, envelope, messageId) {
    const trust = this.e2e.trust;
    const digest = envelopeHash(envelope);
    const seen = await trust.seen(sender, clientMsgId);
    if (seen && seen.envelopeHash !== digest) {
      throw new E2EError("replay", "Another message was already opened under this sender and message id.",
        { sender, client_msg_id: clientMsgId, message_id: seen.messageId });
    }
    const kept = await trust.remember(sender, clientMsgId, digest, messageId);
    if (messageId !== null && kept.messageId !== null && kept.messageId !== messageId) {
      throw new E2EError("duplicate", "The server delivered this message again, as another message.",
        { message_id: kept.messageId, sender, client_msg_id: clientMsgId });
    }
  }
}
