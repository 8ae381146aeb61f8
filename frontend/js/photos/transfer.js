// @ts-check
// Encrypted blobs over HTTP (docs/media.md), as client/media.py: upload in
// chunks that survive a dropped Wi-Fi (ask the server what it `received`
// and go on from there), download with Range resume, and check the
// ciphertext's SHA-256 against the signed body before decrypting a byte.
import * as c from "../crypto.js";
import { ApiError, caseHeader, getBytes, get, post, putBytes } from "../api.js";
import { E2EError } from "../e2e/errors.js";

// Small enough that a drop on ward Wi-Fi costs little to resend, big enough
// that a 3 MB photo is a dozen requests.
export const CHUNK_SIZE = 256 * 1024;
const MAX_ATTEMPTS = 8;
const FIRST_PAUSE_MS = 250;
const MAX_PAUSE_MS = 8000;

/**
 * A lost connection or a server failure: worth asking again. A refusal is not.
 * @param {unknown} error
 */
export function retryable(error) {
  const e = /** @type {{code?: string, status?: number} | null | undefined} */ (error);
  return e?.code === "network" || (e?.status ?? 0) >= 500;
}

/** @param {number} attempt */
async function pause(attempt) {
  if (navigator.onLine === false) {
    await new Promise((resolve) => addEventListener("online", () => resolve(undefined), { once: true }));
    return;
  }
  await new Promise((resolve) => setTimeout(resolve, Math.min(FIRST_PAUSE_MS * 2 ** attempt, MAX_PAUSE_MS)));
}

/**
 * Encrypt bytes under a fresh file key (stream v1, docs/crypto.md §8).
 * @param {Uint8Array} bytes
 * @returns {{key: Uint8Array, stream: Uint8Array, size: number, sha256: string}}
 */
export function encryptBlob(bytes) {
  const key = c.generateFileKey();
  const out = c.encryptStream(key, bytes);
  return { key, stream: out.stream, size: out.size, sha256: c.toHex(out.sha256) };
}

/**
 * Upload one encrypted blob for a department: create, chunks (resumed after a
 * failure from the server's `received`), complete with the SHA-256.
 * @param {number} department
 * @param {{stream: Uint8Array, size: number, sha256: string}} blob from encryptBlob
 * @param {object} [options]
 * @param {(sent: number) => void} [options.onProgress] bytes of this blob the server holds
 * @param {number} [options.chunkSize]
 * @returns {Promise<string>} the upload id
 */
export async function uploadBlob(department, blob, { onProgress = () => {}, chunkSize = CHUNK_SIZE } = {}) {
  // Creating is not retried: a second upload would only be an orphan (it expires).
  const created = await post("/api/uploads", { department, size: blob.size });
  const id = created.id;
  const size = Math.min(chunkSize, created.chunk_max || chunkSize);
  let received = 0;
  let failures = 0;
  while (received < blob.size) {
    try {
      const piece = blob.stream.subarray(received, received + size);
      received = (await putBytes(`/api/uploads/${id}/chunks?offset=${received}`, piece)).received;
      failures = 0;
      onProgress(received);
    } catch (error) {
      if (error instanceof ApiError && error.code === "wrong_offset" && Number.isInteger(error.data.received)) {
        received = error.data.received; // a retry that had in fact arrived: go on from there
        continue;
      }
      if (!retryable(error) || ++failures >= MAX_ATTEMPTS) throw error;
      await pause(failures);
      try {
        received = (await get(`/api/uploads/${id}`)).received;
        onProgress(received);
      } catch (again) {
        if (!retryable(again)) throw again;
      }
    }
  }
  for (failures = 0; ; ) {
    try {
      await post(`/api/uploads/${id}/complete`, { sha256: blob.sha256 });
      return id;
    } catch (error) {
      // The answer to a completion that went through was lost: completing again says so.
      if (error instanceof ApiError && error.code === "upload_state" && error.data.state === "complete" && error.data.sha256 === blob.sha256) return id;
      if (!retryable(error) || ++failures >= MAX_ATTEMPTS) throw error;
      await pause(failures);
    }
  }
}

/**
 * Download a blob's ciphertext (Range resume), check its size and SHA-256
 * against the body's, then decrypt: the plaintext, or an error and nothing.
 * @param {{upload: string, key: string, sha256: string, size: number}} entry a photo or thumbnail of a body
 * @param {{caseId?: number | null}} [options] a compliance officer's download names the case that covers it
 */
export async function downloadBlob(entry, { caseId = null } = {}) {
  const path = `/api/uploads/${entry.upload}/content`;
  const parts = [];
  let have = 0;
  let failures = 0;
  while (have < entry.size) {
    try {
      const response = await getBytes(path, have, caseHeader(caseId));
      if (have && response.status !== 206) {
        parts.length = 0; // the server ignored the range: start again
        have = 0;
      }
      // A 200 or 206 answer (getBytes refused any other) has a body.
      const reader = /** @type {ReadableStream<Uint8Array>} */ (response.body).getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const part = value.subarray(0, entry.size - have); // never more than the sender signed for
        parts.push(part);
        have += part.length;
        if (have >= entry.size) {
          reader.cancel().catch(() => {});
          break;
        }
      }
      if (have < entry.size) throw new E2EError("hash_mismatch", "The stored photo is shorter than the one the sender signed for.");
    } catch (error) {
      if (error instanceof E2EError || (!retryable(error) && !(error instanceof TypeError)) || ++failures >= MAX_ATTEMPTS) throw error;
      await pause(failures);
    }
  }
  const data = c.concat(...parts);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  if (c.toHex(digest) !== entry.sha256.toLowerCase()) {
    throw new E2EError("hash_mismatch", "The downloaded photo is not the one the sender signed for; it was not decrypted.");
  }
  return c.decryptStream(c.b64decode(entry.key, { size: 32, field: "key" }), data);
}
