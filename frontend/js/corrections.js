// @ts-check
// Corrections (docs/protocol.md, message.correct): a sender replaces the text of
// their own recent message with a new envelope whose signed header names it
// (`corrects`: its client_msg_id). Readers show the latest version marked
// edited only when it verifies and is bound to the message they hold
// (e2e/messages.js); otherwise the original, flagged. Every version stays on
// the server for compliance.
import * as c from "./crypto.js";
import { readBody } from "./photos/photos.js";

/** @import { App, Entry } from "./app.js" */
/** @import { Corrected, Correction, Refusal } from "./types/api.js" */

/** How long the server lets a sender correct (ROUNDS_CORRECTION_WINDOW_SECONDS' default);
 * the Edit action is offered within it, and the server decides. */
export const CORRECTION_WINDOW_MS = 15 * 60 * 1000;

/**
 * Whether to offer "Edit" on `entry`: mine, stored, a text message, not removed, recent.
 * @param {Entry} entry
 * @param {number} me
 * @param {number} [now]
 */
export function editable(entry, me, now = Date.now()) {
  return entry.sender.id === me && Boolean(entry.id) && !entry.redacted && entry.text !== null && !entry.body
    && !entry.attachments?.length && now - Date.parse(entry.created_at) < CORRECTION_WINDOW_MS;
}

/**
 * A message was corrected (an event, or my own ack): open it again with the correction,
 * which is shown only if it is bound to the message held; else the original, flagged.
 * @param {App} app
 * @param {number} department
 * @param {{thread: number, seq: number}} ref
 * @param {Correction} correction
 */
export async function corrected(app, department, { thread, seq }, correction) {
  const entry = app.session.threadMessages(thread).get(seq);
  // Not loaded (its history page brings the correction), removed, or unreadable anyway.
  if (!entry || entry.redacted || !entry.envelope || entry.text === null || !correction.envelope) return;
  try {
    // The entry keeps the server's fields of the message: opened again, with the correction.
    const opened = await app.endToEnd.open({ ...entry, correction }, department);
    Object.assign(entry, readBody(opened.text, entry.attachments), {
      edited: opened.edited ? opened.version : null, correctionError: opened.correctionError,
    });
  } catch (failure) {
    entry.correctionError = /** @type {Refusal} */ (failure).code ?? "crypto_error";
  }
  app.session.changed("decrypted", { thread, seq });
}

/**
 * Correct one of my messages to read `text`: a new envelope bound to it, sent under an
 * id of its own, so a retry is answered once. The server refuses after the window,
 * once removed, in a closed thread.
 * @param {App} app
 * @param {number} threadId
 * @param {Entry} entry
 * @param {string} text
 * @returns {Promise<Corrected>}
 */
export async function correct(app, threadId, entry, text) {
  const thread = app.session.threads.get(threadId);
  if (!thread) throw new Error("thread not loaded");
  const clientMsgId = c.newClientMsgId();
  const seal = (fresh = false) => app.endToEnd.seal(text, {
    department: thread.department, thread: threadId, clientMsgId, corrects: entry.client_msg_id, fresh,
  });
  let envelope = await seal();
  for (let attempt = 0; ; attempt += 1) {
    await app.live.ready();
    try {
      /** @type {Corrected} */
      const ack = await app.live.request({ type: "message.correct", message: entry.id, client_msg_id: clientMsgId, envelope });
      await app.endToEnd.sent(clientMsgId, envelope, null).catch(() => {});
      await corrected(app, thread.department, entry, {
        id: ack.correction_id, version: ack.version, client_msg_id: clientMsgId, envelope, corrected_at: ack.corrected_at,
      });
      return ack;
    } catch (error) {
      const code = /** @type {Refusal} */ (error).code;
      // The same envelope under the same id again is safe: stored once, answered once.
      if (["closed", "not_connected", "internal_error"].includes(/** @type {string} */ (code)) && attempt < 5) continue;
      if (code === "key_rotation_required" && attempt === 0) {
        envelope = await seal(true); // the refused envelope was not stored: a new one under the same id is safe
        continue;
      }
      throw error;
    }
  }
}
