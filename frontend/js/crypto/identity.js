// @ts-check
// User identities (docs/crypto.md §3), as core/crypto/identity.py: X25519 to
// receive sealed room keys, Ed25519 to sign; every signature covers a
// NUL-terminated context so one made for a purpose never verifies for another.
import sodium from "./sodium.js";
import { b64decode, b64encode, concat, hasExactly, isObject, toHex, utf8 } from "./encoding.js";
import { badSignature, invalidEnvelope, invalidKey } from "./errors.js";

// Format 2 of every signed format (docs/crypto.md §2): a v1 signature never
// verifies as a v2 one, whatever its bytes.
export const CONTEXT_ENVELOPE = utf8("rounds-envelope-v2\0");
export const CONTEXT_WRAP = utf8("rounds-wrap-v2\0");
export const CONTEXT_STATEMENT = utf8("rounds-statement-v2\0");
export const CONTEXT_KEY_VERSION = utf8("rounds-key-version-v2\0");
/** @type {Uint8Array[]} */
const CONTEXTS = [CONTEXT_ENVELOPE, CONTEXT_WRAP, CONTEXT_STATEMENT, CONTEXT_KEY_VERSION];
// Unchanged in format 2: published keys keep their fingerprints.
const FINGERPRINT_DOMAIN = utf8("rounds-identity-v1\0");
// X25519 public keys are u-coordinates below p = 2**255 - 19, little-endian.
// RFC 7748 asks receivers to ignore the top bit and to accept values from p
// up, which gives one point several spellings (and so several fingerprints):
// only the canonical spelling is accepted.
const X25519_P = 2n ** 255n - 19n;
// A clamped scalar: times a low-order point it gives zero, which libsodium refuses.
const PROBE_SCALAR = concat(Uint8Array.of(8), new Uint8Array(30), Uint8Array.of(64));
export const IDENTITY_SIZE = 64;

/** @param {Uint8Array} context */
function checkContext(context) {
  if (!CONTEXTS.includes(context)) throw new TypeError("unknown signature context; use a CONTEXT_* constant");
}

/** @param {Uint8Array} bytes */
function littleEndian(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** @param {Uint8Array} x25519 @param {Uint8Array} ed25519 */
function fingerprintOf(x25519, ed25519) {
  return toHex(sodium.crypto_hash_sha256(concat(FINGERPRINT_DOMAIN, x25519, ed25519)));
}

/** A fingerprint as people compare it: groups of four hex digits. @param {string} fp */
export function groupFingerprint(fp) {
  return (fp.match(/.{4}/g) ?? []).join(" ");
}

// The groups read aloud to compare two fingerprints (a head's card, a colleague's
// profile): the first 96 bits. A server substituting a key would need another key
// whose fingerprint starts with the same 96 bits, a second preimage of SHA-256 out of
// reach; the full fingerprint stays beside it, and it is what a statement signs.
export const COMPARISON_GROUPS = 6;

/** The comparison code: the first COMPARISON_GROUPS groups of a fingerprint. @param {string} fp */
export function comparisonCode(fp) {
  return groupFingerprint(fp).split(" ").slice(0, COMPARISON_GROUPS).join(" ");
}

/**
 * A checked public identity: {x25519, ed25519, fingerprint}. Refuses keys of
 * the wrong size, a non-canonical X25519 key (so one key has one fingerprint),
 * and points that are not usable keys (low-order X25519, Ed25519 encodings
 * non-canonical, off the curve or of small order), so a malicious key cannot
 * make a sealed box or a signature check degenerate.
 * @param {Uint8Array} x25519 (its size and type are checked all the same)
 * @param {Uint8Array} ed25519
 * @returns {Readonly<{x25519: Uint8Array, ed25519: Uint8Array, fingerprint: string}>}
 */
export function publicIdentity(x25519, ed25519) {
  for (const [name, key] of [["x25519", x25519], ["ed25519", ed25519]]) {
    if (!(key instanceof Uint8Array) || key.length !== 32) throw invalidKey(`${name} public key must be 32 bytes`);
  }
  if (littleEndian(x25519) >= X25519_P) {
    throw invalidKey("x25519 public key is not canonical (top bit set, or not below p)");
  }
  try {
    sodium.crypto_scalarmult(PROBE_SCALAR, x25519);
  } catch {
    throw invalidKey("x25519 public key is a low-order point");
  }
  if (!sodium.crypto_core_ed25519_is_valid_point(ed25519)) throw invalidKey("ed25519 public key is not a valid point");
  return Object.freeze({ x25519, ed25519, fingerprint: fingerprintOf(x25519, ed25519) });
}

/** @param {unknown} data {x25519, ed25519} in base64 */
export function publicFromDict(data) {
  if (!isObject(data) || !hasExactly(data, ["x25519", "ed25519"])) {
    throw invalidEnvelope("public identity: expected exactly x25519 and ed25519");
  }
  return publicIdentity(
    b64decode(data.x25519, { size: 32, field: "x25519" }),
    b64decode(data.ed25519, { size: 32, field: "ed25519" }),
  );
}

/** @param {PublicIdentity} pub */
export function publicToDict(pub) {
  return { x25519: b64encode(pub.x25519), ed25519: b64encode(pub.ed25519) };
}

/**
 * Parse a public identity the server sent and check it has the fingerprint it claims.
 * @param {unknown} data
 * @param {string | null | undefined} fingerprint
 * @param {string} whose named in the error
 */
export function checkedPublic(data, fingerprint, whose) {
  const pub = publicFromDict(data);
  if (fingerprint != null && pub.fingerprint !== fingerprint) {
    throw invalidKey(`${whose}: the public key does not have the fingerprint given`);
  }
  return pub;
}

/**
 * A private identity from its 64 bytes: X25519 secret ‖ Ed25519 seed.
 * @param {unknown} bytes
 */
export function identityFromBytes(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== IDENTITY_SIZE) throw invalidKey("identity key pair must be 64 bytes");
  const boxSecret = bytes.slice(0, 32);
  const seed = bytes.slice(32);
  const signing = sodium.crypto_sign_seed_keypair(seed);
  const pub = publicIdentity(sodium.crypto_scalarmult_base(boxSecret), signing.publicKey);
  return Object.freeze({
    boxSecret,
    seed,
    signSecret: signing.privateKey,
    public: pub,
    fingerprint: pub.fingerprint,
    toBytes: () => concat(boxSecret, seed),
  });
}

/** @typedef {ReturnType<typeof publicIdentity>} PublicIdentity */
/** @typedef {ReturnType<typeof identityFromBytes>} Identity */

export function generateIdentity() {
  return identityFromBytes(sodium.randombytes_buf(IDENTITY_SIZE));
}

/**
 * @param {Identity} identity
 * @param {Uint8Array} context a CONTEXT_* constant
 * @param {Uint8Array} message
 */
export function sign(identity, context, message) {
  checkContext(context);
  return sodium.crypto_sign_detached(concat(context, message), identity.signSecret);
}

/**
 * Returns if `signature` is `pub`'s over context ‖ message, or throws bad_signature.
 * @param {PublicIdentity} pub
 * @param {Uint8Array} context a CONTEXT_* constant
 * @param {Uint8Array} message
 * @param {unknown} signature
 */
export function verify(pub, context, message, signature) {
  checkContext(context);
  if (!(signature instanceof Uint8Array) || signature.length !== 64) throw badSignature("signature must be 64 bytes");
  if (!sodium.crypto_sign_verify_detached(signature, concat(context, message), pub.ed25519)) {
    throw badSignature("signature does not verify");
  }
}
