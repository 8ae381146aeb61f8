// @ts-check
// The one error type of the browser's key policy (client/errors.py
// RoundsClientError): a stable `code` (docs/crypto.md §9, §11) and `data`.
// A refusal of core/crypto's rules stays a crypto/errors.js CryptoError with
// the same kind of code; both are what views explain (ui.js) and what a test
// observes (the data-code attributes).

/**
 * The `code` of anything thrown (E2EError, CryptoError, ../api.js ApiError, a socket's
 * refusal), or undefined: they all carry one, and the caller decides by it.
 * @param {unknown} error
 * @returns {string | undefined}
 */
export function codeOf(error) {
  return /** @type {{code?: string} | null | undefined} */ (error)?.code;
}

export class E2EError extends Error {
  /**
   * @param {string} code stable, machine-readable (docs/crypto.md §9, §11)
   * @param {string} message
   * @param {Record<string, any>} [data]
   */
  constructor(code, message, data = {}) {
    super(message);
    this.name = "E2EError";
    this.code = code;
    this.data = data;
  }
}
