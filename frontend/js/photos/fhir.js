// @ts-check
// A photo sent to the patient record, from this device straight to the hospital's FHIR
// server (docs/interop-photos.md): never through Rounds' server, which never sees a
// plaintext photo. Rounds gives the metadata (GET /api/library/photos/{id}/record), this
// module builds one FHIR R4 transaction Bundle (a Binary and the DocumentReference that
// points to it) exactly as client/fhir_export.py does, posts it to the FHIR server, then
// tells Rounds the ids it answered (POST …/record), which keeps them and audits them.
import * as c from "../crypto.js";
import { get, post } from "../api.js";
import { t } from "../i18n.js";
import { h, explain } from "../ui.js";
import { downloadBlob } from "./transfer.js";

const FHIR_JSON = "application/fhir+json";
// LOINC 72170-4 "Photographic image": the document type of a clinical photograph.
const PHOTO_TYPE = { system: "http://loinc.org", code: "72170-4", display: "Photographic image" };
const KEYWORD_SYSTEM = "urn:rounds:keyword";
const ATTACHMENT_SYSTEM = "urn:rounds:attachment";
const CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/**
 * GET /api/library/photos/{id}/record, as core/api_schemas/record.py describes it.
 * @typedef {{username: string, display_name: string}} RecordPerson
 * @typedef {{id: number, attachment: number, server: string, document_reference: string, binary: string,
 *   by: {id: number, username: string, display_name: string}, at: string}} PhotoExport
 * @typedef {{attachment: number, fhir_base_url: string | null, ipp_system: string, user_system: string,
 *   patient: {ipp: string, family_name: string, given_name: string, birth_date: string},
 *   encounter: string | null, captured_at: string, consent: string,
 *   keywords: {code: string, label: string}[], author: RecordPerson, authenticator: RecordPerson,
 *   exports: PhotoExport[]}} PhotoRecord
 */

/** A refusal or failure of the FHIR server, said in words. */
export class FhirError extends Error {
  /** @param {string} code @param {string} message translated */
  constructor(code, message) {
    super(message);
    this.name = "FhirError";
    this.code = code;
  }
}

/** A random UUID (v4) for a Bundle entry's `urn:uuid:` fullUrl. */
function uuid4() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = c.toHex(b);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** An instant as Python's isoformat(timespec="seconds") in UTC writes it. @param {Date} when */
function isoSeconds(when) {
  return when.toISOString().replace(/\.\d{3}Z$/, "+00:00");
}

/** @param {RecordPerson} person @param {string} system */
function practitioner(person, system) {
  return { type: "Practitioner", identifier: { system, value: person.username }, display: person.display_name };
}

/**
 * Every clinical photo is restricted; one consented for care only also says so (treatment).
 * @param {string} consent
 */
export function securityLabels(consent) {
  const labels = [{ coding: [{ system: CONFIDENTIALITY, code: "R", display: "restricted" }] }];
  if (consent === "care") labels.push({ coding: [{ system: ACT_REASON, code: "TREAT", display: "treatment" }] });
  return labels;
}

/**
 * The transaction Bundle of one photo: a Binary and a DocumentReference pointing to it.
 * @param {PhotoRecord} record
 * @param {Uint8Array} photo the decrypted photo, the bytes the sender encrypted
 * @param {string} mediaType from the signed body
 * @param {{now?: Date, binaryUrn?: string, documentUrn?: string}} [options]
 */
export async function buildBundle(record, photo, mediaType, { now = new Date(), binaryUrn = `urn:uuid:${uuid4()}`, documentUrn = `urn:uuid:${uuid4()}` } = {}) {
  const p = record.patient;
  const labels = record.keywords.map((k) => k.label);
  // FHIR's Attachment.hash is SHA-1 by definition: integrity, not a seal.
  const sha1 = new Uint8Array(await crypto.subtle.digest("SHA-1", /** @type {Uint8Array<ArrayBuffer>} */ (photo)));
  /** @type {Record<string, unknown>} */
  const document = {
    resourceType: "DocumentReference",
    identifier: [{ system: ATTACHMENT_SYSTEM, value: String(record.attachment) }],
    status: "current",
    type: { coding: [PHOTO_TYPE], text: "Clinical photograph" },
    category: record.keywords.map((k) => ({ coding: [{ system: KEYWORD_SYSTEM, code: k.code, display: k.label }], text: k.label })),
    subject: { type: "Patient", identifier: { system: record.ipp_system, value: p.ipp }, display: `${p.family_name.toUpperCase()} ${p.given_name}` },
    date: isoSeconds(now),
    author: [practitioner(record.author, record.user_system)],
    authenticator: practitioner(record.authenticator, record.user_system),
    description: "Clinical photograph" + (labels.length ? `: ${labels.join(", ")}` : ""),
    securityLabel: securityLabels(record.consent),
    content: [{
      attachment: {
        contentType: mediaType, url: binaryUrn, size: photo.length, hash: c.b64encode(sha1), creation: record.captured_at,
      },
    }],
  };
  if (record.encounter) document.context = { encounter: [{ type: "Encounter", identifier: { value: record.encounter } }] };
  return {
    resourceType: "Bundle",
    type: "transaction",
    entry: [
      { fullUrl: binaryUrn, resource: { resourceType: "Binary", contentType: mediaType, data: c.b64encode(photo) }, request: { method: "POST", url: "Binary" } },
      { fullUrl: documentUrn, resource: document, request: { method: "POST", url: "DocumentReference" } },
    ],
  };
}

/** An OperationOutcome's issues in words. @param {any} body */
export function outcomeText(body) {
  const issues = Array.isArray(body?.issue) ? body.issue : [];
  return issues.map((/** @type {any} */ i) => String(i?.diagnostics || i?.details?.text || i?.code || "error")).join("; ");
}

/**
 * The ids a transaction-response gives (its entries' locations).
 * @param {any} answer
 * @returns {{documentReference: string, binary: string}}
 */
export function createdIds(answer) {
  /** @type {Record<string, string>} */
  const found = {};
  for (const entry of Array.isArray(answer?.entry) ? answer.entry : []) {
    const [kind, id] = String(entry?.response?.location || "").split("/");
    if ((kind === "Binary" || kind === "DocumentReference") && id) found[kind] = id;
  }
  if (!found.Binary || !found.DocumentReference) throw new FhirError("fhir_answer", t("The patient record's answer names no document."));
  return { documentReference: found.DocumentReference, binary: found.Binary };
}

/**
 * POST the transaction to the FHIR server; the ids it created.
 * @param {string} baseUrl
 * @param {object} bundle
 */
export async function postBundle(baseUrl, bundle) {
  let response;
  try {
    // No credentials: the FHIR server's access is the hospital gateway's (docs/interop-photos.md).
    response = await fetch(baseUrl, {
      method: "POST",
      headers: { "Content-Type": FHIR_JSON, Accept: FHIR_JSON, Prefer: "return=minimal" },
      body: JSON.stringify(bundle),
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new FhirError("fhir_unreachable", t("The patient record server cannot be reached."));
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const reason = outcomeText(answer) || `HTTP ${response.status}`;
    throw new FhirError("fhir_refused", t("The patient record refused the photo: {reason}", { reason }));
  }
  return createdIds(answer);
}

/** @param {number} attachmentId @returns {Promise<PhotoRecord>} */
export function photoRecord(attachmentId) {
  return get(`/api/library/photos/${attachmentId}/record`);
}

/**
 * Send one photo of an opened body to the patient record and record it; the export Rounds kept.
 * @param {any} photo a body photo (with its `attachment` id)
 * @param {PhotoRecord} record
 * @returns {Promise<PhotoExport>}
 */
export async function sendToRecord(photo, record) {
  if (!record.fhir_base_url) throw new FhirError("fhir_off", t("Sending photos to the patient record is not set up."));
  // Downloaded and checked against the signed body's SHA-256 before decryption, so
  // the bytes are the sender's, exactly as `rounds fetch` writes them.
  const bytes = await downloadBlob(photo);
  const bundle = await buildBundle(record, bytes, photo.media_type || "image/jpeg");
  const ids = await postBundle(record.fhir_base_url, bundle);
  return post(`/api/library/photos/${record.attachment}/record`, {
    server: record.fhir_base_url, document_reference: ids.documentReference, binary: ids.binary,
  });
}

/**
 * The viewer's "Send to the patient record" action: an element that shows the button once
 * Rounds says the feature is on and the caller may send this photo (empty otherwise).
 * @param {any} photo a body photo; nothing is shown without its `attachment` id
 */
export function recordAction(photo) {
  const box = h("div", { class: "record-action" });
  if (!Number.isInteger(photo?.attachment)) return box;
  photoRecord(photo.attachment).then((record) => {
    if (!record.fhir_base_url) return;
    const status = h("p", { class: "muted", role: "status", id: "record-status" });
    const last = record.exports.at(-1);
    if (last) status.textContent = t("Sent to the patient record (DocumentReference/{id})", { id: last.document_reference });
    const button = h("button", {
      type: "button", id: "send-to-record",
      onclick: async () => {
        button.disabled = true;
        status.className = "muted";
        status.textContent = t("Sending to the patient record…");
        try {
          const done = await sendToRecord(photo, record);
          status.textContent = t("Sent to the patient record (DocumentReference/{id})", { id: done.document_reference });
        } catch (error) {
          status.className = "error";
          status.textContent = explain(error);
          button.disabled = false;
        }
      },
    }, t("Send to the patient record"));
    box.append(button, status);
  }).catch(() => {}); // not a photo this caller may send (a compliance read): no action
  return box;
}
