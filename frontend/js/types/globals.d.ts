// Declarations for the type check only (tsconfig.json); never served or loaded.

// The Shape Detection API: Chromium on Android and ChromeOS, absent elsewhere, and not
// yet in TypeScript's DOM library. views/find.js feature-tests it before use.
interface DetectedBarcode {
  rawValue: string;
  format: string;
}

declare class BarcodeDetector {
  constructor(options?: { formats?: string[] });
  static getSupportedFormats(): Promise<string[]>;
  detect(image: ImageBitmapSource): Promise<DetectedBarcode[]>;
}

interface Window {
  BarcodeDetector?: typeof BarcodeDetector;
  /** The running app, for the browser tests and for support staff in the console (app.js). */
  rounds: import("../app.js").App;
}
