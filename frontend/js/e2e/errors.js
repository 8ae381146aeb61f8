// @ts-check
// The one error type of the browser's key policy (client/errors.py
// RoundsClientError): a stable `code` (docs/crypto.md §9, §11) and `data`.
// A refusal of chat/crypto's rules stays a crypto/errors.js CryptoError with
// the same kind of code; both are what views explain (ui.js) and what a test
// observes (the data-code attributes).

export class E2EError extends Error {
  constructor(code, message, data = {}) {
    super(message);
    this.name = "E2EError";
    this.code = code;
    this.data = data;
  }
}
