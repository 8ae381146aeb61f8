// The browser's mirror of chat/crypto/errors.py: one class, a stable `code`.
// Messages name the field at fault, never key material or plaintext.

export class CryptoError extends Error {
  constructor(code, message, data = {}) {
    super(message);
    this.name = "CryptoError";
    this.code = code;
    this.data = data;
  }
}

const make = (code) => (message, data) => new CryptoError(code, message, data);

export const invalidKey = make("invalid_key");
export const badSignature = make("bad_signature");
export const decryptionFailed = make("decryption_failed");
export const truncatedStream = make("truncated_stream");
export const invalidEnvelope = make("invalid_envelope");
export const unsupportedVersion = make("unsupported_version");
export const wrongPassphrase = make("wrong_passphrase");
export const weakPassphrase = make("weak_passphrase");
