// @ts-check
// A photo made safe to share, in the browser, as client/photos.py does in
// Python: oriented, re-encoded from its pixels alone (no EXIF, no GPS, no
// phone serial, no comment), with a 320 px thumbnail. The capture date is
// the one piece of metadata kept, read before re-encoding.
//
// Re-encoding through a canvas is what strips: a canvas holds pixels only,
// and toBlob writes a bare JPEG. createImageBitmap applies the EXIF
// orientation first, so the pixels are stored the right way up.
import { t } from "../i18n.js";
import { exifCaptureDate, headerSize, localIso } from "./exif.js";

export const THUMBNAIL_SIDE = 320;
const JPEG_QUALITY = 0.9;
const THUMBNAIL_QUALITY = 0.8;
// As client/photos.py: above any phone camera, and what a phone can afford to decode.
export const MAX_PIXELS = 64_000_000;
const MAX_INPUT_BYTES = 100 * 1024 * 1024;
const HEADER_WINDOW = 256 * 1024;

/** A photo this browser will not send; its message is a sentence for the user, in their language. */
export class PhotoRefused extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** @param {Blob} blob */
async function decode(blob) {
  try {
    return await createImageBitmap(blob, { imageOrientation: "from-image" });
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    // Browsers that predate "from-image" apply the EXIF orientation by default.
    return createImageBitmap(blob);
  }
}

/**
 * @param {ImageBitmap} bitmap
 * @param {number} width
 * @param {number} height
 * @param {number} quality
 * @returns {Promise<Blob>}
 */
function encode(bitmap, width, height, quality) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (!ctx) throw new PhotoRefused("unreadable_image", t("The photo could not be encoded."));
  ctx.fillStyle = "#fff"; // transparency (a PNG) over white, as the Python client flattens
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, width, height);
  return new Promise((resolve, reject) => canvas.toBlob(
    (blob) => (blob ? resolve(blob) : reject(new PhotoRefused("unreadable_image", t("The photo could not be encoded.")))),
    "image/jpeg", quality));
}

/**
 * A photo ready to encrypt: JPEG bytes without metadata, and its thumbnail.
 * @typedef {object} PreparedPhoto
 * @property {Uint8Array<ArrayBuffer>} data
 * @property {string} media_type
 * @property {number} width
 * @property {number} height
 * @property {string | null} captured_at local ISO date and time, or null when unknown
 * @property {Uint8Array<ArrayBuffer>} thumbnail
 * @property {string} thumbnail_media_type
 * @property {number} thumbnail_width
 * @property {number} thumbnail_height
 * @property {string} name
 */

/**
 * Prepare a picked file or a camera capture.
 * @param {Blob | File} source
 * @param {{capturedAt?: string | null}} [options] a camera capture passes the moment it was taken
 * @returns {Promise<PreparedPhoto>}
 */
export async function preparePhoto(source, { capturedAt = null } = {}) {
  if (source.size > MAX_INPUT_BYTES) throw new PhotoRefused("image_too_large", t("The file is over 100 MiB."));
  if (source.type && !source.type.startsWith("image/")) throw new PhotoRefused("unsupported_format", t("This file is not an image."));
  const head = new Uint8Array(await source.slice(0, HEADER_WINDOW).arrayBuffer());
  const declared = headerSize(head);
  if (declared && declared.width * declared.height > MAX_PIXELS) {
    throw new PhotoRefused("image_too_large", t("{width} × {height} is more than 64 megapixels.", { width: declared.width, height: declared.height }));
  }
  const fallback = "lastModified" in source && source.lastModified ? localIso(new Date(source.lastModified)) : null;
  const captured = capturedAt ?? exifCaptureDate(head) ?? fallback;
  let bitmap;
  try {
    bitmap = await decode(source);
  } catch {
    throw new PhotoRefused("unreadable_image", t("This browser cannot read this image (a damaged file, or a format such as HEIC it does not decode)."));
  }
  return fromBitmap(bitmap, captured, ("name" in source && source.name) || "photo");
}

/**
 * @param {ImageBitmap} bitmap closed here
 * @param {string | null} captured
 * @param {string} name
 * @returns {Promise<PreparedPhoto>}
 */
async function fromBitmap(bitmap, captured, name) {
  try {
    const { width, height } = bitmap;
    if (width < 1 || height < 1) throw new PhotoRefused("unreadable_image", t("The image has no pixels."));
    if (width * height > MAX_PIXELS) throw new PhotoRefused("image_too_large", t("{width} × {height} is more than 64 megapixels.", { width, height }));
    const full = await encode(bitmap, width, height, JPEG_QUALITY);
    const scale = Math.min(1, THUMBNAIL_SIDE / Math.max(width, height));
    const tw = Math.max(1, Math.round(width * scale));
    const th = Math.max(1, Math.round(height * scale));
    const thumb = await encode(bitmap, tw, th, THUMBNAIL_QUALITY);
    return {
      data: new Uint8Array(await full.arrayBuffer()),
      media_type: "image/jpeg",
      width,
      height,
      captured_at: captured,
      thumbnail: new Uint8Array(await thumb.arrayBuffer()),
      thumbnail_media_type: "image/jpeg",
      thumbnail_width: tw,
      thumbnail_height: th,
      name,
    };
  } finally {
    bitmap.close();
  }
}

/**
 * The current frame of a playing <video> (the camera), prepared: it never touches the gallery.
 * @param {HTMLVideoElement} video
 */
export async function captureFrame(video) {
  if (!video.videoWidth || !video.videoHeight) throw new PhotoRefused("camera_not_ready", t("The camera has not started yet."));
  return fromBitmap(await createImageBitmap(video), localIso(new Date()), "camera");
}
