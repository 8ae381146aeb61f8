// @ts-check
// The browser's mirror of core/crypto/errors.py: one class, a stable `code`.
// Messages name the field at fault, never key material or plaintext.

export class CryptoError extends Error {
  /**
   * @param {string} code stable, machine-readable (docs/crypto.md §11)
   * @param {string} message
   * @param {Record<string, any>} [data]
   */
  constructor(code, message, data = {}) {
    super(message);
    this.name = "CryptoError";
    this.code = code;
    this.data = data;
  }
}

/** @param {string} code */
const make = (code) => (/** @type {string} */ message, /** @type {Record<string, any>} */ data = {}) => new CryptoError(code, message, data);

export const invalidKey = make("invalid_key");
export const badSignature = make("bad_signature");
export const decryptionFailed = make("decryption_failed");
export const truncatedStream = make("truncated_stream");
export const invalidEnvelope = make("invalid_envelope");
export const unsupportedVersion = make("unsupported_version");
export const wrongPassphrase = make("wrong_passphrase");
export const weakPassphrase = make("weak_passphrase");

// The membership chain and key versions (docs/crypto.md §6, §7). Each names a
// way a server can lie with data that is correctly signed; named after the
// code, the Python class is given beside it.
export const membershipRollback = make("membership_rollback"); // ChainRollback
export const membershipFork = make("membership_fork"); // ChainFork
export const membershipWithheld = make("membership_withheld"); // ChainWithheld
export const keyVersionUnauthorized = make("key_version_unauthorized"); // KeyVersionUnauthorized
export const keyVersionStale = make("key_version_stale"); // StaleKeyVersion
export const keyCommitmentMismatch = make("key_commitment_mismatch"); // KeyCommitmentMismatch
export const senderNotMember = make("sender_not_member"); // SenderNotMember
