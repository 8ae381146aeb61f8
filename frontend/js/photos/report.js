// @ts-check
// The follow-up report in the browser: every photo of a patient in my
// departments, oldest first, in one PDF made here (client/report.py's
// document, the terminal's `rounds report`). Each photo's message is opened
// and its blob downloaded, checked and decrypted on this device as the
// library viewer does (photos.js openItem, transfer.js downloadBlob); the
// PDF is handed to the browser as a Blob URL to save, never uploaded. Only
// then does the server learn that a report was made, for whom and of how
// many photos (POST /api/library/reports, audited report.generated).
//
// Every time is on the institution's clock (the library's `time_zone`),
// named once on the first page, without offsets: a report never mixes zones;
// days and times are written the way of the language on screen (i18n.js), as
// is every fixed word of the document.
// pdf-lib (frontend/vendor/pdf-lib.esm.min.js, about 510 KB) is imported
// only when a report is made.
import { get, post } from "../api.js";
import { keywordLabel, keywords, openItem, openItemBody } from "./photos.js";
import { downloadBlob } from "./transfer.js";
import { formatDay, locale, t, tn } from "../i18n.js";

/** @import { SignedIn } from "../app.js" */
/** @import { LibraryItem, PatientIdentity, PhotoPage } from "../types/api.js" */

// The part of pdf-lib's API used here (the vendored module is loaded by URL, untyped).
/**
 * @typedef {{widthOfTextAtSize: (text: string, size: number) => number, getCharacterSet: () => number[]}} PdfFont
 * @typedef {{width: number, height: number}} PdfImage
 * @typedef {{x: number, y: number}} Point
 * @typedef {{
 *   drawText: (text: string, options: {x: number, y: number, size: number, font: PdfFont}) => void,
 *   drawImage: (image: PdfImage, options: {x: number, y: number, width: number, height: number}) => void,
 *   drawLine: (options: {start: Point, end: Point, thickness: number}) => void,
 * }} PdfPage
 * @typedef {{
 *   addPage: (size: [number, number]) => PdfPage,
 *   embedFont: (name: string) => Promise<PdfFont>,
 *   embedJpg: (bytes: Uint8Array) => Promise<PdfImage>,
 *   embedPng: (bytes: Uint8Array) => Promise<PdfImage>,
 *   setTitle: (title: string) => void, setAuthor: (author: string) => void,
 *   setCreator: (creator: string) => void, setProducer: (producer: string) => void,
 *   save: (options: {useObjectStreams: boolean}) => Promise<Uint8Array<ArrayBuffer>>,
 * }} PdfDocument
 * @typedef {{PDFDocument: {create: () => Promise<PdfDocument>}, StandardFonts: Record<string, string>}} PdfLib
 */

/**
 * One photo as the report prints it.
 * @typedef {{image: Uint8Array<ArrayBuffer>, mediaType: string, capturedAt: string | null, caregiver: string,
 *   department: string, caption: string, keywords: string[], note: string}} ReportPhoto
 */

const A4 = /** @type {[number, number]} */ ([595.28, 841.89]);
const MM = 72 / 25.4;
const MARGIN = 18 * MM;
const HEADER = 16 * MM;
const FOOTER = 12 * MM;
const LINE = 13;
const CAPTION_SPACE = 40 * MM; // room left under an image on its page for its lines

/** @returns {Promise<PdfLib>} */
function loadPdfLib() {
  const url = "../../vendor/pdf-lib.esm.min.js";
  return import(url);
}

/**
 * The patient as every page names them (client/report.py patient_line).
 * @param {PatientIdentity} p
 */
export function patientLine(p) {
  return t("{patient} — born {date} — IPP {ipp}", { patient: `${p.family_name.toUpperCase()} ${p.given_name}`, date: formatDay(p.birth_date), ipp: p.ipp });
}

/**
 * `iso` on the institution's clock the locale's way, "05/10/2026, 12:00" (en-GB) or
 * "05/10/2026 12:00" (fr-FR), without offset (the zone is named once).
 * @param {string} iso
 * @param {string} zone an IANA zone
 */
export function localTime(iso, zone) {
  return new Intl.DateTimeFormat(locale(), {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso));
}

/**
 * Every library item of the patient in my departments, and the institution's zone.
 * @param {number} patientId
 * @returns {Promise<{items: LibraryItem[], zone: string}>}
 */
async function listPhotos(patientId) {
  /** @type {LibraryItem[]} */
  const items = [];
  let cursor = null;
  /** @type {string} */
  let zone;
  do {
    const query = new URLSearchParams({ patient: String(patientId), limit: "200" });
    if (cursor) query.set("cursor", cursor);
    /** @type {PhotoPage} */
    const page = await get(`/api/library/photos?${query}`);
    items.push(...page.items);
    zone = page.time_zone;
    cursor = page.next_cursor;
  } while (cursor);
  return { items, zone };
}

/**
 * Open, download and decrypt each photo here; the first that fails stops the report.
 * @param {SignedIn} app
 * @param {LibraryItem[]} items
 * @param {(done: number, total: number) => void} onProgress
 * @returns {Promise<ReportPhoto[]>}
 */
async function decryptPhotos(app, items, onProgress) {
  const list = await keywords();
  /** @type {ReportPhoto[]} */
  const photos = [];
  for (const item of items) {
    const photo = await openItem(app, item);
    const body = await openItemBody(app, item);
    photos.push({
      image: await downloadBlob(photo),
      mediaType: photo.media_type || "image/jpeg",
      capturedAt: photo.captured_at || item.captured_at || null,
      caregiver: item.sender.display_name || item.sender.username,
      department: item.department_name,
      caption: typeof body?.text === "string" ? body.text : "",
      keywords: (photo.keywords || item.keywords).map((/** @type {string} */ k) => keywordLabel(list, k)),
      note: item.annotates ? t("Annotation of photo {id}.", { id: item.annotates }) : "",
    });
    onProgress(photos.length, items.length);
  }
  return photos;
}

/**
 * A JPEG or PNG as it is; any other image redrawn as a JPEG (the PDF embeds those two).
 * @param {PdfDocument} doc
 * @param {ReportPhoto} photo
 */
async function embedImage(doc, photo) {
  if (photo.mediaType === "image/png") return doc.embedPng(photo.image);
  if (photo.mediaType === "image/jpeg") return doc.embedJpg(photo.image);
  const bitmap = await createImageBitmap(new Blob([photo.image], { type: photo.mediaType }));
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  /** @type {OffscreenCanvasRenderingContext2D} */ (canvas.getContext("2d")).drawImage(bitmap, 0, 0);
  const jpeg = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.92 });
  return doc.embedJpg(new Uint8Array(await jpeg.arrayBuffer()));
}

/**
 * The report as PDF bytes, laid out as client/report.py's: every page names the
 * patient and its number; photos oldest first, undated ones last.
 * @param {PatientIdentity} patient
 * @param {ReportPhoto[]} photos
 * @param {{zone: string, generatedAt?: Date}} options the institution's zone, every time's
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
export async function buildReport(patient, photos, { zone, generatedAt = new Date() }) {
  const { PDFDocument, StandardFonts } = await loadPdfLib();
  const doc = await PDFDocument.create();
  doc.setTitle(t("Follow-up report, IPP {ipp}", { ipp: patient.ipp }));
  doc.setAuthor("Rounds");
  doc.setCreator("Rounds");
  doc.setProducer("Rounds (pdf-lib)");
  const regular = await doc.embedFont(StandardFonts.Helvetica);
  const bold = await doc.embedFont(StandardFonts.HelveticaBold);
  // The standard fonts write WinAnsi only: a character outside it (an emoji in a caption) prints as "?",
  // and pdf-lib would throw on it. French text keeps its no-break spaces (U+00A0 is in WinAnsi; the
  // narrow one Intl writes in French, U+202F, and the figure space become it); other spaces are plain.
  const known = new Set(regular.getCharacterSet());
  const clean = (/** @type {string} */ text) => [...text.replace(/[\u202f\u2007]/g, "\u00a0").replace(/[^\S\u00a0]+/g, " ")]
    .map((ch) => known.has(/** @type {number} */ (ch.codePointAt(0))) ? ch : "?").join("");
  const [width, height] = A4;
  const textWidth = width - 2 * MARGIN;
  const top = height - MARGIN - HEADER;
  const bottom = MARGIN + FOOTER;
  const line = patientLine(patient);
  /** @type {PdfPage[]} */
  const pages = [];
  let page = doc.addPage(A4);
  pages.push(page);
  let y = top;
  const newPage = () => {
    page = doc.addPage(A4);
    pages.push(page);
    y = top;
  };
  /** @param {string} text @param {PdfFont} font @param {number} size */
  const wrap = (text, font, size) => {
    /** @type {string[]} */
    const lines = [];
    let current = "";
    for (const word of clean(text).split(" ")) {
      const next = current ? `${current} ${word}` : word;
      if (current && font.widthOfTextAtSize(next, size) > textWidth) {
        lines.push(current);
        current = word;
      } else current = next;
    }
    if (current) lines.push(current);
    return lines;
  };
  /** @param {string} text @param {PdfFont} [font] @param {number} [size] */
  const write = (text, font = regular, size = 10) => {
    for (const part of wrap(text, font, size)) {
      if (y - size < bottom) newPage();
      y -= size + 3;
      page.drawText(part, { x: MARGIN, y, size, font });
    }
  };

  write(t("Photo follow-up report"), bold, 18);
  y -= 4;
  write(line, bold, 12);
  write(tn(photos.length, "{count} photo, oldest first. Times in {zone}.", "{count} photos, oldest first. Times in {zone}.", { zone }));
  y -= 6 * MM;
  const ordered = [...photos].sort((a, b) => (a.capturedAt === null ? 1 : 0) - (b.capturedAt === null ? 1 : 0)
    || (a.capturedAt && b.capturedAt ? Date.parse(a.capturedAt) - Date.parse(b.capturedAt) : 0));
  for (const [index, photo] of ordered.entries()) {
    const image = await embedImage(doc, photo);
    const small = image.width <= 600;
    const number = index + 1;
    const lines = [
      photo.capturedAt ? t("Photo {number} — taken {time}", { number, time: localTime(photo.capturedAt, zone) })
        : t("Photo {number} — capture date unknown", { number }),
      photo.department ? t("By {name}, {department}", { name: photo.caregiver, department: photo.department }) : t("By {name}", { name: photo.caregiver }),
      ...(photo.caption ? [t("Caption: {caption}", { caption: photo.caption })] : []),
      photo.keywords.length ? t("Keywords: {keywords}", { keywords: photo.keywords.join(", ") }) : t("Keywords: none"),
      ...(photo.note ? [photo.note] : []),
    ];
    const words = 2 * MM + lines.reduce((sum, text) => sum + wrap(text, regular, 10).length * LINE, 0);
    const fit = (/** @type {number} */ room) => Math.min(textWidth / image.width, room / image.height, small ? 2 : 1);
    let scale = fit(top - bottom - CAPTION_SPACE);
    // An image and its lines stay together: smaller on this page if it keeps two thirds of its size, else on the next.
    const here = fit(y - bottom - words);
    if (here < scale) {
      if (here >= (2 / 3) * scale) scale = here;
      else if (y < top) newPage();
    }
    const [w, h] = [image.width * scale, image.height * scale];
    y -= h;
    page.drawImage(image, { x: MARGIN, y, width: w, height: h });
    y -= 2 * MM;
    lines.forEach((text, i) => write(text, i === 0 ? bold : regular));
    y -= 8 * MM;
  }

  const generated = clean(t("Generated {time} by Rounds", { time: localTime(generatedAt.toISOString(), zone) }));
  pages.forEach((each, i) => {
    each.drawText(clean(line), { x: MARGIN, y: height - MARGIN + 4 * MM, size: 10, font: bold });
    each.drawLine({ start: { x: MARGIN, y: height - MARGIN + 2 * MM }, end: { x: width - MARGIN, y: height - MARGIN + 2 * MM }, thickness: 0.5 });
    each.drawText(generated, { x: MARGIN, y: MARGIN - 8 * MM, size: 8, font: regular });
    const number = clean(t("Page {page} of {pages}", { page: i + 1, pages: pages.length }));
    each.drawText(number, { x: width - MARGIN - regular.widthOfTextAtSize(number, 8), y: MARGIN - 8 * MM, size: 8, font: regular });
  });
  return doc.save({ useObjectStreams: false });
}

/**
 * Make the patient's report here, hand it to the browser to save, then let the server audit it.
 * @param {SignedIn} app
 * @param {number} patientId
 * @param {{onProgress?: (done: number, total: number) => void}} [options]
 * @returns {Promise<{url: string, filename: string, photos: number, zone: string}>} a Blob URL the caller revokes
 */
export async function makeReport(app, patientId, { onProgress = () => {} } = {}) {
  const { items, zone } = await listPhotos(patientId);
  if (!items.length) throw new Error(t("No photo of this patient in your departments.")); // shown as it is
  const photos = await decryptPhotos(app, items, onProgress);
  const patient = items[0].patient;
  const pdf = await buildReport(patient, photos, { zone });
  // Audited as the terminal's is, once the document exists; a refusal leaves nothing to save.
  await post("/api/library/reports", { patient: patient.id, photos: photos.length });
  const url = URL.createObjectURL(new Blob([pdf], { type: "application/pdf" }));
  return { url, filename: `follow-up-${patient.ipp}.pdf`, photos: photos.length, zone };
}
