// @ts-check
// A passkey as the lock of the copy kept on a shared computer, in place of the PIN
// (devicecopy.js; docs/browser.md, "Signing in again on a shared computer"; the cost
// against a thief in docs/threat-model.md, "A PIN on a shared computer").
//
// WebAuthn's PRF extension gives, for one credential and one salt, 32 bytes that only
// the authenticator can compute, after it verified the user (fingerprint, face,
// device PIN). Those bytes are hashed (HKDF) into the key of the copy's inner layer,
// so opening the copy needs this computer's authenticator and the clinician at it:
// unlike a six-digit PIN there is nothing to search offline. The server plays no part
// (no challenge is checked, no public key kept): the ceremony is used for its PRF
// output only, and the password sign-in to the server is unchanged.
import { utf8 } from "./crypto/encoding.js";
import { E2EError } from "./e2e/errors.js";
import { t } from "./i18n.js";

export const PRF_SALT_SIZE = 32;
const KEY_BITS = 256;
// A person's time to find the fingerprint reader; the ceremony then fails as cancelled.
const TIMEOUT_MS = 120_000;

/**
 * What sealing needs from a new passkey: its id, the salt of this copy and the PRF
 * output for that salt (wiped by whoever derives the key from it).
 * @typedef {{credential: Uint8Array<ArrayBuffer>, salt: Uint8Array<ArrayBuffer>, output: Uint8Array<ArrayBuffer>}} Passkey
 */

/**
 * Whether to offer a passkey: WebAuthn in a secure context on a domain (an IP address
 * is no relying-party id) with a platform authenticator that verifies the user. PRF
 * itself is known only once a credential exists (register()).
 * @returns {Promise<boolean>}
 */
export async function passkeyPossible() {
  if (!window.isSecureContext || typeof PublicKeyCredential === "undefined" || !navigator.credentials) return false;
  if (/^[0-9.]+$/.test(location.hostname) || location.hostname.includes(":")) return false;
  try {
    const capabilities = await PublicKeyCredential.getClientCapabilities?.();
    if (capabilities?.["extension:prf"] === false) return false;
    return await PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable();
  } catch {
    return false;
  }
}

/**
 * Make a passkey on this computer's platform authenticator for `user` and evaluate its
 * PRF: at create() where the authenticator answers it there, otherwise with one get()
 * (a second touch). Refusals: passkey_failed (cancelled, refused, timed out),
 * passkey_no_prf (the authenticator has no PRF: a PIN then; the useless passkey is
 * signalled as unknown where the browser can hear it).
 * @param {{id: number, username: string, display_name?: string | null}} user
 * @returns {Promise<Passkey>}
 */
export async function register(user) {
  const salt = crypto.getRandomValues(new Uint8Array(PRF_SALT_SIZE));
  let created;
  try {
    created = /** @type {PublicKeyCredential | null} */ (await navigator.credentials.create({
      publicKey: {
        rp: { id: location.hostname, name: "Rounds" },
        // The user id, not a random one: a new passkey for the same user here replaces the last.
        user: { id: utf8(`rounds-user/${user.id}`), name: user.username, displayName: user.display_name || user.username },
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        pubKeyCredParams: [{ type: "public-key", alg: -7 }, { type: "public-key", alg: -257 }],
        authenticatorSelection: { authenticatorAttachment: "platform", userVerification: "required", residentKey: "preferred" },
        attestation: "none",
        timeout: TIMEOUT_MS,
        extensions: { prf: { eval: { first: salt } } },
      },
    }));
  } catch (error) {
    throw failed(error);
  }
  if (!created) throw failed(null);
  const credential = new Uint8Array(created.rawId);
  const prf = created.getClientExtensionResults().prf;
  if (!prf?.enabled) {
    forgetPasskey(credential);
    throw noPrf();
  }
  const first = prf.results?.first;
  const output = first ? bytes(first) : await evaluate(credential, salt);
  return { credential, salt, output };
}

/**
 * The passkey's PRF output for `salt`, after the authenticator verified the user.
 * Refusals: passkey_failed (cancelled, timed out, this passkey not on this computer),
 * passkey_no_prf.
 * @param {Uint8Array<ArrayBuffer>} credential
 * @param {Uint8Array<ArrayBuffer>} salt
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
export async function evaluate(credential, salt) {
  let assertion;
  try {
    assertion = /** @type {PublicKeyCredential | null} */ (await navigator.credentials.get({
      publicKey: {
        rpId: location.hostname,
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        allowCredentials: [{ type: "public-key", id: credential, transports: ["internal"] }],
        userVerification: "required",
        timeout: TIMEOUT_MS,
        extensions: { prf: { eval: { first: salt } } },
      },
    }));
  } catch (error) {
    throw failed(error);
  }
  if (!assertion) throw failed(null);
  const first = assertion.getClientExtensionResults().prf?.results?.first;
  if (!first) throw noPrf();
  return bytes(first);
}

/**
 * The inner layer's key from a PRF output (wiped here), bound to the user and the key it locks.
 * @param {Uint8Array<ArrayBuffer>} output
 * @param {number} user
 * @param {string} fingerprint
 * @returns {Promise<Uint8Array>}
 */
export async function passkeyKey(output, user, fingerprint) {
  try {
    const base = await crypto.subtle.importKey("raw", output, "HKDF", false, ["deriveBits"]);
    const info = utf8(`Rounds device copy passkey key/${user}/${fingerprint}`);
    return new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info }, base, KEY_BITS));
  } finally {
    output.fill(0);
  }
}

/**
 * Ask the platform to drop a passkey Rounds no longer uses (a copy erased, no PRF): a
 * hint the browser may ignore (the Signal API, Chromium 132 and later), never awaited.
 * @param {Uint8Array} credential
 */
export function forgetPasskey(credential) {
  const credentialId = btoa(String.fromCharCode(...credential)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  if (typeof PublicKeyCredential === "undefined") return;
  PublicKeyCredential.signalUnknownCredential?.({ rpId: location.hostname, credentialId })?.catch(() => {});
}

/** @param {BufferSource} source */
function bytes(source) {
  return source instanceof ArrayBuffer ? new Uint8Array(source.slice(0)) : new Uint8Array(source.buffer.slice(source.byteOffset, source.byteOffset + source.byteLength));
}

/** @param {unknown} error the ceremony's DOMException (NotAllowedError when cancelled), or null */
function failed(error) {
  return new E2EError("passkey_failed", t("The passkey did not answer (cancelled, or not on this computer)."),
    { name: /** @type {{name?: string} | null} */ (error)?.name ?? null });
}

function noPrf() {
  return new E2EError("passkey_no_prf", t("This computer's passkeys cannot lock your keys: choose a PIN instead."));
}
