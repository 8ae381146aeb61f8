// @ts-check
// What is read from a photo's bytes before the browser decodes it: its pixel
// size from the JPEG or PNG header (so a decompression bomb is refused
// before it is decoded), and the capture date of a JPEG from its EXIF, kept
// when the photo is re-encoded without any metadata (prepare.js). Only the dates are read:
// DateTimeOriginal with OffsetTimeOriginal, else DateTime with OffsetTime,
// as client/photos.py does. Everything else (GPS, the phone's serial) is
// never parsed and never leaves the browser. A damaged block costs the date,
// not the photo: any inconsistency returns null.

const SOI = 0xffd8;
const APP1 = 0xffe1;
const SOS = 0xffda;
const EXIF_IFD = 0x8769;
const DATETIME = 0x0132;
const DATETIME_ORIGINAL = 0x9003;
const OFFSET_TIME = 0x9010;
const OFFSET_TIME_ORIGINAL = 0x9011;
const ASCII = 2;
const LONG = 4;
const MAX_ENTRIES = 512;

/**
 * The TIFF block of the first Exif APP1 segment, or null.
 * @param {Uint8Array} bytes
 */
function exifBlock(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || view.getUint16(0) !== SOI) return null;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return null;
    const marker = view.getUint16(at);
    if (marker === SOS) return null;
    const length = view.getUint16(at + 2);
    if (length < 2) return null;
    const start = at + 4;
    const end = at + 2 + length;
    if (marker === APP1 && end <= bytes.length && length >= 8
      && String.fromCharCode(...bytes.subarray(start, start + 6)) === "Exif\0\0") {
      return bytes.subarray(start + 6, end);
    }
    at = end;
  }
  return null;
}

/**
 * The tags wanted from one IFD: {tag: value} (ASCII strings and LONG offsets only).
 * @param {Uint8Array} tiff
 * @param {DataView} view
 * @param {boolean} little
 * @param {number} offset
 * @param {number[]} wanted
 */
function readIfd(tiff, view, little, offset, wanted) {
  /** @type {Record<number, string | number>} */
  const found = {};
  if (offset < 8 || offset + 2 > tiff.length) return found;
  const count = view.getUint16(offset, little);
  if (count > MAX_ENTRIES || offset + 2 + count * 12 > tiff.length) return found;
  for (let i = 0; i < count; i++) {
    const entry = offset + 2 + i * 12;
    const tag = view.getUint16(entry, little);
    if (!wanted.includes(tag)) continue;
    const type = view.getUint16(entry + 2, little);
    const n = view.getUint32(entry + 4, little);
    if (type === LONG && n === 1) {
      found[tag] = view.getUint32(entry + 8, little);
    } else if (type === ASCII && n > 0 && n < 64) {
      const at = n <= 4 ? entry + 8 : view.getUint32(entry + 8, little);
      if (at + n > tiff.length) continue;
      found[tag] = String.fromCharCode(...tiff.subarray(at, at + n)).replace(/\0+$/, "").trim();
    }
  }
  return found;
}

/** @param {unknown} text */
function offsetOf(text) {
  return typeof text === "string" && /^[+-]\d\d:\d\d$/.test(text) ? text : null;
}

/**
 * "YYYY-MM-DDTHH:MM:SS±HH:MM" of a local date, with this browser's UTC offset then.
 * @param {Date} date
 */
export function localIso(date) {
  const pad = (/** @type {number} */ n) => String(Math.abs(n)).padStart(2, "0");
  const minutes = -date.getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
    + `${sign}${pad(Math.trunc(minutes / 60))}:${pad(minutes % 60)}`;
}

/**
 * @param {string | number | undefined} text an EXIF date and time, "YYYY:MM:DD HH:MM:SS"
 * @param {string | null} offset
 */
function stamp(text, offset) {
  const match = /^(\d{4}):(\d\d):(\d\d)[ T](\d\d):(\d\d):(\d\d)/.exec(String(text || ""));
  if (!match) return null;
  const [, y, mo, d, h, mi, s] = match.map(Number);
  if (!y || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
  if (offset) return `${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}${offset}`;
  // No offset: the camera's clock is taken as this browser's (the same hospital's) local time.
  return localIso(new Date(y, mo - 1, d, h, mi, s));
}

/**
 * The capture date of a JPEG as an ISO string with a UTC offset, or null.
 * @param {Uint8Array} bytes the start of the file (the EXIF block is within its first 64 KiB)
 */
export function exifCaptureDate(bytes) {
  try {
    const tiff = exifBlock(bytes);
    if (!tiff || tiff.length < 8) return null;
    const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
    const order = String.fromCharCode(tiff[0], tiff[1]);
    if (order !== "II" && order !== "MM") return null;
    const little = order === "II";
    if (view.getUint16(2, little) !== 42) return null;
    const ifd0 = readIfd(tiff, view, little, view.getUint32(4, little), [DATETIME, EXIF_IFD]);
    const exifAt = ifd0[EXIF_IFD];
    const detail = typeof exifAt === "number" ? readIfd(tiff, view, little, exifAt, [DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL, OFFSET_TIME]) : {};
    return stamp(detail[DATETIME_ORIGINAL], offsetOf(detail[OFFSET_TIME_ORIGINAL]))
      ?? stamp(ifd0[DATETIME], offsetOf(detail[OFFSET_TIME]));
  } catch {
    return null;
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * {width, height} from a JPEG's frame header or a PNG's IHDR, or null when not found in `bytes`.
 * @param {Uint8Array} bytes
 */
export function headerSize(bytes) {
  try {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (PNG_SIGNATURE.every((b, i) => bytes[i] === b) && bytes.length >= 24) {
      return { width: view.getUint32(16), height: view.getUint32(20) };
    }
    if (bytes.length < 4 || view.getUint16(0) !== SOI) return null;
    let at = 2;
    while (at + 9 <= bytes.length) {
      if (bytes[at] !== 0xff) return null;
      const marker = bytes[at + 1];
      if (marker === 0xff) {
        at += 1; // fill byte
        continue;
      }
      // SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { height: view.getUint16(at + 5), width: view.getUint16(at + 7) };
      }
      if (marker === 0xda) return null;
      at += 2 + view.getUint16(at + 2);
    }
  } catch {
    // a damaged header: the decoder decides
  }
  return null;
}
