// @ts-check
// Passkeys as a second factor (docs/browser.md, "Signing in with a second factor"): the
// server's ceremony options (JSON, binary fields in base64url, as py_webauthn writes
// them) turned into what navigator.credentials takes, and the browser's answer turned
// back into JSON for the server to check. Unlike passkey.js (a PRF output that locks a
// device copy, never seen by the server), here the server keeps the public key and
// checks every signature: the challenge, relying party and user come from it.
import { t } from "./i18n.js";

/**
 * A ceremony that did not give a credential: `passkey_cancelled` (the person cancelled,
 * it timed out, or no passkey here matches: WebAuthn does not tell which), or
 * `passkeys_unsupported` (this browser has no WebAuthn).
 * @typedef {Error & {code: string}} CeremonyError
 */

/** @param {string} code @param {string} message @returns {CeremonyError} */
function ceremonyError(code, message) {
  return Object.assign(new Error(message), { code });
}

/** @param {string} text base64url, padded or not @returns {ArrayBuffer} */
export function fromBase64url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

/** @param {ArrayBuffer | ArrayBufferView} source @returns {string} base64url without padding */
export function toBase64url(source) {
  const bytes = source instanceof ArrayBuffer ? new Uint8Array(source) : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** @param {{id: string, type?: string, transports?: string[]}[] | undefined} list */
function descriptors(list) {
  return (list || []).map((item) => ({
    type: /** @type {PublicKeyCredentialType} */ ("public-key"),
    id: fromBase64url(item.id),
    ...(item.transports ? { transports: /** @type {AuthenticatorTransport[]} */ (item.transports) } : {}),
  }));
}

/**
 * The server's PublicKeyCredentialRequestOptions JSON, decoded for navigator.credentials.get.
 * @param {Record<string, any>} json
 * @returns {PublicKeyCredentialRequestOptions}
 */
export function requestOptions(json) {
  return { ...json, challenge: fromBase64url(json.challenge), allowCredentials: descriptors(json.allowCredentials) };
}

/**
 * The server's PublicKeyCredentialCreationOptions JSON, decoded for navigator.credentials.create.
 * @param {Record<string, any>} json
 * @returns {PublicKeyCredentialCreationOptions}
 */
export function creationOptions(json) {
  return {
    ...json,
    rp: json.rp,
    pubKeyCredParams: json.pubKeyCredParams,
    challenge: fromBase64url(json.challenge),
    user: { ...json.user, id: fromBase64url(json.user.id) },
    excludeCredentials: descriptors(json.excludeCredentials),
  };
}

/** Whether this browser can hold a passkey ceremony at all (the server still decides the name). */
export function webauthnAvailable() {
  return window.isSecureContext && typeof PublicKeyCredential !== "undefined" && Boolean(navigator.credentials);
}

/** @param {unknown} error the ceremony's DOMException */
function failed(error) {
  const name = /** @type {{name?: string} | null} */ (error)?.name;
  if (name === "InvalidStateError") return ceremonyError("passkey_exists", t("This device already holds one of your passkeys."));
  return ceremonyError("passkey_cancelled", t("The passkey did not answer: it was cancelled, or none on this device is yours. You can try again or choose another way."));
}

/** @param {PublicKeyCredential} credential */
function common(credential) {
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    clientExtensionResults: credential.getClientExtensionResults(),
    authenticatorAttachment: credential.authenticatorAttachment ?? null,
  };
}

/**
 * Ask an authenticator to sign the server's challenge; the answer as JSON for POST /login/passkey.
 * @param {Record<string, any>} options PublicKeyCredentialRequestOptions JSON
 * @returns {Promise<Record<string, any>>}
 */
export async function getCredential(options) {
  if (!webauthnAvailable()) throw ceremonyError("passkeys_unsupported", t("This browser cannot use passkeys."));
  let credential;
  try {
    credential = /** @type {PublicKeyCredential | null} */ (await navigator.credentials.get({ publicKey: requestOptions(options) }));
  } catch (error) {
    throw failed(error);
  }
  if (!credential) throw failed(null);
  const response = /** @type {AuthenticatorAssertionResponse} */ (credential.response);
  return {
    ...common(credential),
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      authenticatorData: toBase64url(response.authenticatorData),
      signature: toBase64url(response.signature),
      userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
    },
  };
}

/**
 * Make a passkey for the server's options; the new credential as JSON for the server to keep.
 * @param {Record<string, any>} options PublicKeyCredentialCreationOptions JSON
 * @returns {Promise<Record<string, any>>}
 */
export async function createCredential(options) {
  if (!webauthnAvailable()) throw ceremonyError("passkeys_unsupported", t("This browser cannot use passkeys."));
  let credential;
  try {
    credential = /** @type {PublicKeyCredential | null} */ (await navigator.credentials.create({ publicKey: creationOptions(options) }));
  } catch (error) {
    throw failed(error);
  }
  if (!credential) throw failed(null);
  const response = /** @type {AuthenticatorAttestationResponse} */ (credential.response);
  return {
    ...common(credential),
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      attestationObject: toBase64url(response.attestationObject),
      transports: response.getTransports?.() ?? [],
    },
  };
}
