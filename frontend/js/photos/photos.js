// @ts-check
// Clinical photos in the browser, as client/photo_sdk.py: the encrypted body
// of a photo message (docs/media.md), the check that the server-visible
// `attachments` are what the sender signed, posting, and decrypted images
// shown through blob: URLs that each view revokes when it leaves.
import * as c from "../crypto.js";
import { get } from "../api.js";
import { E2EError } from "../e2e/errors.js";
import { N_, t } from "../i18n.js";
import { downloadBlob, encryptBlob, uploadBlob } from "./transfer.js";

export const MAX_PHOTOS = 10;
export const MAX_KEYWORDS = 16;
// The scopes (the codes signed in a photo's body and sent to the server) and their
// names, translated where they are shown: t(label), or consentLabel(code).
export const CONSENTS = [
  ["care", N_("Care only")],
  ["teaching", N_("Teaching")],
  ["publication", N_("Publication")],
];
const HEX64 = /^[0-9a-f]{64}$/;

/** @import { PreparedPhoto } from "./prepare.js" */
/** @import { E2E } from "../e2e/index.js" */
/** @import { State } from "../state.js" */

// A decrypted photos body and its photos are checked for shape (parsePhotoBody)
// but typed `any`: their fields are docs/media.md's.

/**
 * @param {string} uploadId
 * @param {{key: Uint8Array, sha256: string, size: number}} blob from encryptBlob
 * @param {string} mediaType
 * @param {number} width
 * @param {number} height
 */
function blobEntry(uploadId, blob, mediaType, width, height) {
  return { upload: uploadId, key: c.b64encode(blob.key), sha256: blob.sha256, size: blob.size, media_type: mediaType, width, height };
}

/**
 * What the server may see of a body's photo (the message.post `attachments` item).
 * @param {any} photo
 */
export function attachmentRef(photo) {
  return {
    upload: photo.upload, thumbnail: photo.thumbnail.upload, keywords: photo.keywords,
    consent: photo.consent, captured_at: photo.captured_at, annotates: photo.annotates,
  };
}

/** @param {string} message */
function invalid(message) {
  return new E2EError("invalid_photo_body", message);
}

/** @param {any} entry @param {string} where */
function checkBlob(entry, where) {
  if (!entry || typeof entry !== "object") throw invalid(`${where} is not an object`);
  if (typeof entry.sha256 !== "string" || !HEX64.test(entry.sha256)) throw invalid(`${where}: sha256 is not 64 hex digits`);
  if (!Number.isInteger(entry.size) || entry.size < 1) throw invalid(`${where}: size is not a positive integer`);
  c.b64decode(entry.key, { size: 32, field: "key" });
  if (typeof entry.upload !== "string") throw invalid(`${where}: upload is not an id`);
}

/**
 * A decrypted body that is a photos body, checked for shape; null for a text body.
 * @param {string} text
 * @returns {any}
 */
export function parsePhotoBody(text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  if (!body || typeof body !== "object" || body.type !== "photos") return null;
  if (!Array.isArray(body.photos) || !body.photos.length) throw invalid("the body lists no photos");
  body.photos.forEach((/** @type {any} */ photo, /** @type {number} */ i) => {
    checkBlob(photo, `photo ${i}`);
    checkBlob(photo.thumbnail, `photo ${i}'s thumbnail`);
  });
  if (typeof (body.text ?? "") !== "string") throw invalid("the caption is not text");
  return body;
}

const sorted = (/** @type {string[] | null | undefined} */ list) => JSON.stringify([...(list || [])].sort());

/**
 * The server lists the sender's uploads, in order, with the same keywords and consent, or the message is refused.
 * @param {any} body a checked photos body
 * @param {any[] | null | undefined} attachments as the server lists them
 */
export function checkMatchesAttachments(body, attachments) {
  const seen = attachments || [];
  const same = body.photos.length === seen.length && body.photos.every((/** @type {any} */ photo, /** @type {number} */ i) =>
    String(seen[i].upload) === photo.upload
    && String(seen[i].thumbnail) === photo.thumbnail.upload
    && sorted(seen[i].keywords) === sorted(photo.keywords)
    && seen[i].consent === photo.consent);
  if (!same) {
    throw new E2EError("attachment_mismatch",
      "The server lists other photos, keywords or consent than the sender signed; the message is not shown.");
  }
}

/**
 * A decrypted message's content: {text, body} where body is the checked photos
 * body or null. A message with attachments must carry a photos body, and a
 * photos body must match the attachments (a server that drops or swaps them is refused).
 * @param {string} plaintext
 * @param {any[] | null | undefined} attachments
 * @returns {{text: string, body: any}}
 */
export function readBody(plaintext, attachments) {
  const body = parsePhotoBody(plaintext);
  if (!body && attachments?.length) throw invalid("the server lists photos but the signed body holds none");
  if (!body) return { text: plaintext, body: null };
  checkMatchesAttachments(body, attachments);
  // checkMatchesAttachments found one attachment per photo.
  const listed = /** @type {any[]} */ (attachments);
  body.photos.forEach((/** @type {any} */ photo, /** @type {number} */ i) => (photo.attachment = listed[i].id ?? null));
  return { text: body.text || "", body };
}

// --- decrypted images --------------------------------------------------------------

// upload id → Promise<Blob>: thumbnails (about 20 KB each, the oldest dropped past
// THUMBNAILS_KEPT) and the last few full photos, so scrolling back does not download again.
/** @type {Map<string, Promise<Blob>>} */
const decrypted = new Map();
const THUMBNAILS_KEPT = 600;
const FULL_KEPT = 6;
/** @type {string[]} */
const fullOrder = [];

/**
 * @param {{upload: string, key: string, sha256: string, size: number, media_type?: string}} entry
 * @param {boolean} kept a thumbnail, kept longer
 * @param {number | null} [caseId]
 * @returns {Promise<Blob>}
 */
function decryptedBlob(entry, kept, caseId = null) {
  // Under a case the download is the case's (and audited as such): not shared with another's.
  const id = caseId ? `case ${caseId}:${entry.upload}` : entry.upload;
  let promise = decrypted.get(id);
  if (!promise) {
    promise = downloadBlob(entry, { caseId }).then((bytes) => new Blob([bytes], { type: entry.media_type || "image/jpeg" }));
    promise.catch(() => decrypted.delete(id));
    decrypted.set(id, promise);
    if (!kept) {
      fullOrder.push(id);
      while (fullOrder.length > FULL_KEPT) decrypted.delete(/** @type {string} */ (fullOrder.shift()));
    } else if (decrypted.size > THUMBNAILS_KEPT + FULL_KEPT) {
      const oldest = [...decrypted.keys()].find((key) => !fullOrder.includes(key));
      if (oldest !== undefined) decrypted.delete(oldest);
    }
  }
  return promise;
}

/**
 * The plaintext of a photo this browser just sent: shown without downloading it again.
 * @param {any} photo the body photo
 * @param {PreparedPhoto} prepared
 */
export function rememberSent(photo, prepared) {
  decrypted.set(photo.thumbnail.upload, Promise.resolve(new Blob([prepared.thumbnail], { type: "image/jpeg" })));
}

/** Forget every decrypted image (sign-out). */
export function forgetImages() {
  decrypted.clear();
  fullOrder.length = 0;
}

/**
 * Forget the decrypted images of one message's photos body (a redacted message).
 * @param {any} body
 */
export function forgetBodyImages(body) {
  for (const photo of body?.photos || []) {
    for (const upload of [photo.upload, photo.thumbnail?.upload]) {
      decrypted.delete(upload);
      const at = fullOrder.indexOf(upload);
      if (at >= 0) fullOrder.splice(at, 1);
    }
  }
}

/** blob: URLs of one view; `revoke()` when the view leaves, so decrypted images do not outlive it. */
export class ImageUrls {
  /** @param {{caseId?: number | null}} [options] a compliance officer's view: every download names this case */
  constructor({ caseId = null } = {}) {
    /** @type {Map<string, Promise<string>>} */
    this.urls = new Map();
    this.caseId = caseId;
    this.revoked = false;
  }

  /**
   * @param {any} photo a body photo
   * @param {{thumbnail?: boolean}} [options] true (the default) for its thumbnail
   * @returns {Promise<string>} a blob: URL
   */
  url(photo, { thumbnail = true } = {}) {
    const entry = thumbnail ? photo.thumbnail : photo;
    let promise = this.urls.get(entry.upload);
    if (!promise) {
      promise = decryptedBlob(entry, thumbnail, this.caseId).then((blob) => {
        if (this.revoked) throw new Error("the view has left"); // no URL that nobody would revoke
        return URL.createObjectURL(blob);
      });
      promise.catch(() => this.urls.delete(entry.upload));
      this.urls.set(entry.upload, promise);
    }
    return promise;
  }

  /** @param {Uint8Array<ArrayBuffer>} bytes a JPEG */
  local(bytes) {
    const url = URL.createObjectURL(new Blob([bytes], { type: "image/jpeg" }));
    this.urls.set(`local:${url}`, Promise.resolve(url));
    return url;
  }

  revoke() {
    this.revoked = true;
    for (const promise of this.urls.values()) promise.then((url) => url && URL.revokeObjectURL(url)).catch(() => {});
    this.urls.clear();
  }
}

// --- the nomenclature ----------------------------------------------------------------

/** @typedef {{code: string, label: string, category: string}} Keyword */

/** @type {Promise<Keyword[]> | null} */
let keywordList = null;

/**
 * [{code, label, category}] of GET /api/library/keywords, fetched once.
 * @returns {Promise<Keyword[]>}
 */
export async function keywords() {
  if (!keywordList) keywordList = get("/api/library/keywords").catch((error) => {
    keywordList = null;
    throw error;
  });
  return keywordList;
}

/** @param {Keyword[] | null | undefined} list @param {string} code */
export function keywordLabel(list, code) {
  return list?.find((k) => k.code === code)?.label ?? code;
}

/** A consent scope's name in the language on screen (an unknown code as it is). @param {string} code */
export function consentLabel(code) {
  const label = CONSENTS.find(([value]) => value === code)?.[1];
  return label ? t(label) : code;
}

// --- posting ---------------------------------------------------------------------------

/**
 * Encrypt, upload and post prepared photos in one message.
 * @param {{state: State, send: (threadId: number, text: string, options: object) => Promise<any>}} app
 * @param {number} threadId
 * @param {import("./prepare.js").PreparedPhoto[]} prepared
 * @param {object} [options]
 * @param {string[]} [options.keywords] codes of the nomenclature
 * @param {string} [options.consent]
 * @param {string} [options.text] the caption
 * @param {(done: number, total: number, phase: string) => void} [options.onProgress]
 */
export async function sendPhotos(app, threadId, prepared, { keywords: codes = [], consent = "care", text = "", onProgress = () => {} } = {}) {
  if (prepared.length < 1 || prepared.length > MAX_PHOTOS) throw new E2EError("invalid_request", t("Post 1 to {max} photos.", { max: MAX_PHOTOS }));
  if (codes.length > MAX_KEYWORDS) throw new E2EError("invalid_request", t("At most {max} keywords.", { max: MAX_KEYWORDS }));
  const thread = app.state.threads.get(threadId);
  onProgress(0, 1, "encrypt");
  await new Promise((resolve) => setTimeout(resolve, 0)); // let "Encrypting…" paint
  const encrypted = prepared.map((photo) => [encryptBlob(photo.data), encryptBlob(photo.thumbnail)]);
  const total = encrypted.reduce((n, [full, thumb]) => n + full.size + thumb.size, 0);
  let done = 0;
  const photos = [];
  for (const [i, photo] of prepared.entries()) {
    const [full, thumb] = encrypted[i];
    const ids = [];
    for (const blob of [full, thumb]) {
      const before = done;
      ids.push(await uploadBlob(thread.department, blob, { onProgress: (sent) => onProgress(before + sent, total, "upload") }));
      done = before + blob.size;
    }
    const entry = blobEntry(ids[0], full, photo.media_type, photo.width, photo.height);
    Object.assign(entry, {
      captured_at: photo.captured_at, keywords: [...codes], consent, annotates: null,
      thumbnail: blobEntry(ids[1], thumb, photo.thumbnail_media_type, photo.thumbnail_width, photo.thumbnail_height),
    });
    rememberSent(entry, photo);
    photos.push(entry);
  }
  onProgress(total, total, "post");
  const body = { type: "photos", text, photos };
  return app.send(threadId, text, { body: JSON.stringify(body), attachments: photos.map(attachmentRef), photos: body });
}

// --- library items -----------------------------------------------------------------------

/** @type {Map<number, Promise<any>>} message id → Promise<body> */
const openedMessages = new Map();

/**
 * The photos body of a library item's message (decrypted, verified and matched), or an error.
 * @param {{e2e: E2E}} app
 * @param {any} item as the library lists it
 * @returns {Promise<any>} the checked body: {type: "photos", text, photos}
 */
export function openItemBody(app, item) {
  const message = item.message;
  let opened = openedMessages.get(message.id);
  if (!opened) {
    const promise = (async () => {
      const { text } = await app.e2e.open(message, item.department);
      const { body } = readBody(text, message.attachments);
      if (!body) throw invalid("the message holds no photo");
      return body;
    })();
    promise.catch(() => openedMessages.delete(message.id));
    openedMessages.set(message.id, promise);
    opened = promise;
  }
  return opened;
}

/**
 * The body photo of a library item (its message decrypted, verified and matched), or an error.
 * @param {{e2e: E2E}} app
 * @param {any} item as the library lists it
 */
export async function openItem(app, item) {
  const body = await openItemBody(app, item);
  const photo = body.photos.find((/** @type {any} */ p) => p.upload === item.upload);
  if (!photo) throw new E2EError("attachment_mismatch", "The library lists a photo its message does not hold.");
  return photo;
}
