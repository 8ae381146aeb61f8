// @ts-check
// Argon2id off the main thread (docs/browser.md, "Keys in the browser"): a module
// worker with its own instance of the same vendored libsodium, so a 1 GiB
// derivation leaves the page responsive and its memory goes with the worker.
// Protocol: the worker posts {ready: true} once libsodium is loaded; the page then
// posts {password, salt, ops, mem} (bytes transferred) and gets {key} or {error}.
// One derivation per worker: the page terminates it after the answer (or to cancel).
import sodium, { ready } from "../crypto/sodium.js";

self.onmessage = ({ data }) => {
  const { password, salt, ops, mem } = data;
  try {
    const key = sodium.crypto_pwhash(32, password, salt, ops, mem, sodium.crypto_pwhash_ALG_ARGON2ID13);
    self.postMessage({ key }, [key.buffer]);
  } catch (/** @type {any} */ error) {
    self.postMessage({ error: String(error?.message ?? error) });
  } finally {
    password.fill(0);
  }
};

ready.then(
  () => self.postMessage({ ready: true }),
  (error) => self.postMessage({ error: `libsodium did not load: ${error?.message ?? error}` }),
);
