// The JSON API over HTTP: session cookie + Django's CSRF token on unsafe
// methods (docs/protocol.md, HTTP appendix). Every refusal is an ApiError
// carrying the server's error code.

export class ApiError extends Error {
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

/** Called when the server says the login is gone (401), so the app can show sign-in. */
export function setSignedOutHandler(handler) {
  onSignedOut = handler;
}

export async function api(method, path, body = undefined) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await send(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
  return answer(response, path);
}

async function send(method, path, headers, body, extra = {}) {
  if (!["GET", "HEAD"].includes(method)) headers["X-CSRFToken"] = csrfToken();
  try {
    return await fetch(path, { method, headers, body, credentials: "same-origin", cache: "no-store", ...extra });
  } catch {
    throw new ApiError(0, { message: "The server cannot be reached. Check the network and try again." });
  }
}

async function answer(response, path) {
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data, Number(response.headers.get("Retry-After")) || null);
    if (response.status === 401 && path !== "/api/auth/login") onSignedOut();
    throw error;
  }
  return data;
}

/** PUT raw bytes (an upload chunk); the JSON answer. */
export async function putBytes(path, bytes) {
  const response = await send("PUT", path, { Accept: "application/json", "Content-Type": "application/octet-stream" }, bytes);
  return answer(response, path);
}

/**
 * GET raw bytes (a blob's ciphertext), starting at `from` with a Range header.
 * Returns the Response once its status is 200/206; refusals are ApiErrors.
 */
export async function getBytes(path, from = 0) {
  const headers = { Accept: "application/octet-stream" };
  if (from) headers.Range = `bytes=${from}-`;
  const response = await send("GET", path, headers, undefined);
  if (!response.ok) await answer(response, path);
  return response;
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);
