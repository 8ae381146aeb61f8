// @ts-check
// Rounds' end-to-end cryptography in the browser: the same bytes as
// core/crypto/ (docs/crypto.md, format 2), proven by tests/vectors/ in
// tests/browser. Await `ready` once before calling anything else.
export { ready } from "./crypto/sodium.js";
export * from "./crypto/errors.js";
export * from "./crypto/encoding.js";
export * from "./crypto/identity.js";
export * from "./crypto/backup.js";
export * from "./crypto/roomkeys.js";
export * from "./crypto/statements.js";
export * from "./crypto/chain.js";
export * from "./crypto/keyversions.js";
export * from "./crypto/envelope.js";
export * from "./crypto/stream.js";
