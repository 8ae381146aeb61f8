// @ts-check
// The JSON API over HTTP: session cookie + Django's CSRF token on unsafe
// methods (docs/protocol.md, HTTP appendix). Every refusal is an ApiError
// carrying the server's error code.

export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status; 0 when the server could not be reached
   * @param {{message?: string, code?: string, data?: Record<string, any>}} [body] the server's error answer
   * @param {number | null} [retryAfter] seconds, from Retry-After
   */
  constructor(status, body = {}, retryAfter = null) {
    super(body.message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = body.code || (status === 0 ? "network" : "http_error");
    this.data = body.data || {};
    this.retryAfter = retryAfter;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

let onSignedOut = () => {};

/**
 * Called when the server says the login is gone (401), so the app can show sign-in.
 * @param {() => void} handler
 */
export function setSignedOutHandler(handler) {
  onSignedOut = handler;
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body] sent as JSON
 * @param {Record<string, string>} [extraHeaders] such as a compliance officer's X-Rounds-Case
 * @returns {Promise<any>} the server's JSON answer, as the protocol describes it
 */
export async function api(method, path, body = undefined, extraHeaders = {}) {
  /** @type {Record<string, string>} */
  const headers = { ...extraHeaders, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await send(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
  return answer(response);
}

/**
 * @param {string} method
 * @param {string} path
 * @param {Record<string, string>} headers
 * @param {BodyInit | undefined} body
 * @param {RequestInit} [extra]
 * @returns {Promise<Response>}
 */
async function send(method, path, headers, body, extra = {}) {
  if (!["GET", "HEAD"].includes(method)) headers["X-CSRFToken"] = csrfToken();
  try {
    return await fetch(path, { method, headers, body, credentials: "same-origin", cache: "no-store", ...extra });
  } catch {
    throw new ApiError(0, { message: "The server cannot be reached. Check the network and try again." });
  }
}

/**
 * @param {Response} response
 * @returns {Promise<any>}
 */
async function answer(response) {
  const text = await response.text();
  /** @type {any} */
  let data;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data, Number(response.headers.get("Retry-After")) || null);
    // Only a session gone signs the page out: a wrong password, code or passkey is a 401
    // with its own code (docs/protocol.md), answered where it was typed.
    if (response.status === 401 && data?.code === "not_authenticated") onSignedOut();
    throw error;
  }
  return data;
}

/**
 * PUT raw bytes (an upload chunk); the JSON answer.
 * @param {string} path
 * @param {Uint8Array} bytes
 * @returns {Promise<any>}
 */
export async function putBytes(path, bytes) {
  // Chunks are views of ArrayBuffers libsodium returned, never of a SharedArrayBuffer.
  const body = /** @type {Uint8Array<ArrayBuffer>} */ (bytes);
  const response = await send("PUT", path, { Accept: "application/json", "Content-Type": "application/octet-stream" }, body);
  return answer(response);
}

/**
 * GET raw bytes (a blob's ciphertext), starting at `from` with a Range header.
 * Returns the Response once its status is 200/206; refusals are ApiErrors.
 * @param {string} path
 * @param {number} [from]
 * @param {Record<string, string>} [extraHeaders] such as a compliance officer's X-Rounds-Case
 * @returns {Promise<Response>}
 */
export async function getBytes(path, from = 0, extraHeaders = {}) {
  /** @type {Record<string, string>} */
  const headers = { ...extraHeaders, Accept: "application/octet-stream" };
  if (from) headers.Range = `bytes=${from}-`;
  const response = await send("GET", path, headers, undefined);
  if (!response.ok) await answer(response);
  return response;
}

export const get = (/** @type {string} */ path, /** @type {Record<string, string>} */ headers = {}) => api("GET", path, undefined, headers);

/**
 * The header naming a compliance officer's case, the ground of a read: never in a
 * URL, which access logs and proxies keep.
 * @param {number | null | undefined} caseId
 * @returns {Record<string, string>}
 */
export const caseHeader = (caseId) => (caseId ? { "X-Rounds-Case": String(Number(caseId)) } : {});
export const post = (/** @type {string} */ path, /** @type {unknown} */ body = {}) => api("POST", path, body);
export const put = (/** @type {string} */ path, /** @type {unknown} */ body) => api("PUT", path, body);
export const del = (/** @type {string} */ path) => api("DELETE", path);
