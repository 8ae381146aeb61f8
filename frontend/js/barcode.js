// @ts-check
// Reading a patient label's barcode from camera frames: the browser's
// BarcodeDetector where it has one (Chromium on Android, ChromeOS, macOS;
// Safari 17), else @zxing/library, vendored (frontend/vendor/README.md) and
// imported only then. Both read the same formats from the same <video>.

// What wristbands and labels print: the IPP as Code 128 mostly, Code 39 or a
// 2D code on some printers.
const FORMATS = ["code_128", "code_39", "ean_13", "qr_code", "data_matrix", "pdf417"];
// Frames are scaled down to this width before the JavaScript decoder sees them:
// a label at arm's length keeps its bars, and a 4K frame would take seconds.
const MAX_WIDTH = 1280;

/**
 * @typedef {{engine: "native" | "zxing", detect: (video: HTMLVideoElement) => Promise<string[]>}} BarcodeReader
 */

// The part of @zxing/library's API used here (the vendored UMD sets globalThis.ZXing; untyped).
/**
 * @typedef {{getText: () => string}} ZXingResult
 * @typedef {{
 *   MultiFormatReader: new () => {setHints: (hints: Map<number, unknown>) => void, decodeWithState: (bitmap: unknown) => ZXingResult},
 *   RGBLuminanceSource: new (luminances: Uint8ClampedArray, width: number, height: number) => unknown,
 *   HybridBinarizer: new (source: unknown) => unknown,
 *   BinaryBitmap: new (binarizer: unknown) => unknown,
 *   DecodeHintType: Record<string, number>,
 *   BarcodeFormat: Record<string, number>,
 * }} ZXingLib
 */

/** @returns {Promise<ZXingLib>} */
async function loadZXing() {
  const url = "../vendor/zxing-library.umd.min.js";
  await import(url);
  return /** @type {{ZXing: ZXingLib}} */ (/** @type {unknown} */ (globalThis)).ZXing;
}

/** @returns {Promise<BarcodeReader>} */
async function zxingReader() {
  const ZXing = await loadZXing();
  const reader = new ZXing.MultiFormatReader();
  const F = ZXing.BarcodeFormat;
  reader.setHints(new Map(/** @type {[number, unknown][]} */ ([
    [ZXing.DecodeHintType.POSSIBLE_FORMATS, [F.CODE_128, F.CODE_39, F.EAN_13, F.QR_CODE, F.DATA_MATRIX, F.PDF_417]],
    [ZXing.DecodeHintType.TRY_HARDER, true],
  ])));
  const canvas = document.createElement("canvas");
  const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d", { willReadFrequently: true }));
  return {
    engine: "zxing",
    detect: async (video) => {
      if (!video.videoWidth) return [];
      const scale = Math.min(1, MAX_WIDTH / video.videoWidth);
      const width = (canvas.width = Math.round(video.videoWidth * scale));
      const height = (canvas.height = Math.round(video.videoHeight * scale));
      context.drawImage(video, 0, 0, width, height);
      const rgba = context.getImageData(0, 0, width, height).data;
      const luminance = new Uint8ClampedArray(width * height);
      for (let i = 0, j = 0; j < luminance.length; i += 4, j++) {
        luminance[j] = (rgba[i] * 306 + rgba[i + 1] * 601 + rgba[i + 2] * 117) >> 10;
      }
      const bitmap = new ZXing.BinaryBitmap(new ZXing.HybridBinarizer(new ZXing.RGBLuminanceSource(luminance, width, height)));
      try {
        return [reader.decodeWithState(bitmap).getText()];
      } catch {
        return []; // NotFoundException and its kin: no code in this frame
      }
    },
  };
}

/**
 * The best reader this browser has.
 * @returns {Promise<BarcodeReader>}
 */
export async function barcodeReader() {
  const Detector = window.BarcodeDetector;
  if (Detector) {
    const formats = (await Detector.getSupportedFormats()).filter((f) => FORMATS.includes(f));
    if (formats.length) {
      const detector = new Detector({ formats });
      return { engine: "native", detect: async (video) => (await detector.detect(video)).map((c) => c.rawValue) };
    }
  }
  return zxingReader();
}
