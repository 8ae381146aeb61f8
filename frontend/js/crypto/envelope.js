// Message envelope v1 (docs/crypto.md §7), as chat/crypto/envelope.py:
// XChaCha20-Poly1305 under the room key, AD binding room, thread, key
// version, sender and client_msg_id; Ed25519 over context ‖ AD ‖ nonce ‖ ct.
import sodium from "./sodium.js";
import { b64decode, b64encode, canonicalJson, checkId, checkVersion, concat, hasExactly, isObject } from "./encoding.js";
import { CONTEXT_ENVELOPE, sign, verify } from "./identity.js";
import { decryptionFailed, invalidEnvelope } from "./errors.js";

const NONCE_SIZE = 24;
const TAG_SIZE = 16;
export const MAX_PLAINTEXT = 47 * 1024;
const MAX_CIPHERTEXT = MAX_PLAINTEXT + TAG_SIZE;
const CLIENT_MSG_ID = /^[A-Za-z0-9_-]{8,64}$/;
const HEADER_KEYS = ["v", "room", "thread", "key_version", "sender", "client_msg_id", "nonce", "sig"];

function associatedData(room, thread, keyVersion, sender, clientMsgId) {
  return canonicalJson({ v: 1, room, thread, key_version: keyVersion, sender, client_msg_id: clientMsgId });
}

function checkClientMsgId(value) {
  if (typeof value !== "string" || !CLIENT_MSG_ID.test(value)) {
    throw invalidEnvelope("client_msg_id must be 8 to 64 of A-Z a-z 0-9 _ -");
  }
  return value;
}

/** A random client_msg_id: 32 hex digits, like the Python client's uuid4().hex. */
export function newClientMsgId() {
  return sodium.to_hex(sodium.randombytes_buf(16));
}

export function encryptMessage(plaintext, { roomKey, thread, sender, clientMsgId, signer, nonce = null }) {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError("plaintext must be bytes");
  if (plaintext.length > MAX_PLAINTEXT) throw new RangeError(`plaintext over MAX_PLAINTEXT (${MAX_PLAINTEXT} bytes)`);
  nonce = nonce ?? sodium.randombytes_buf(NONCE_SIZE);
  if (nonce.length !== NONCE_SIZE) throw new RangeError("nonce must be 24 bytes");
  checkId(thread, "thread");
  checkId(sender, "sender");
  checkClientMsgId(clientMsgId);
  const ad = associatedData(roomKey.department, thread, roomKey.version, sender, clientMsgId);
  const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, roomKey.key);
  const signature = sign(signer, CONTEXT_ENVELOPE, concat(ad, nonce, ciphertext));
  return {
    header: {
      v: 1, room: roomKey.department, thread, key_version: roomKey.version, sender,
      client_msg_id: clientMsgId, nonce: b64encode(nonce), sig: b64encode(signature),
    },
    ciphertext: b64encode(ciphertext),
  };
}

/** Parse strictly without checking the signature. */
export function parseEnvelope(envelope) {
  if (!isObject(envelope) || !hasExactly(envelope, ["header", "ciphertext"])) {
    throw invalidEnvelope("envelope: expected exactly header and ciphertext");
  }
  const header = envelope.header;
  if (!isObject(header)) throw invalidEnvelope("envelope: header must be an object");
  checkVersion(header, "envelope");
  if (!hasExactly(header, HEADER_KEYS)) throw invalidEnvelope("envelope header: expected exactly the v1 keys");
  const text = envelope.ciphertext;
  if (typeof text !== "string" || text.length > 4 * (Math.floor(MAX_CIPHERTEXT / 3) + 1)) {
    throw invalidEnvelope("ciphertext: expected base64 of at most MAX_CIPHERTEXT bytes");
  }
  const ciphertext = b64decode(text, { field: "ciphertext" });
  if (ciphertext.length < TAG_SIZE || ciphertext.length > MAX_CIPHERTEXT) {
    throw invalidEnvelope(`ciphertext: expected ${TAG_SIZE} to ${MAX_CIPHERTEXT} bytes`);
  }
  const parsed = {
    room: checkId(header.room, "room"),
    thread: checkId(header.thread, "thread"),
    key_version: checkId(header.key_version, "key_version"),
    sender: checkId(header.sender, "sender"),
    client_msg_id: checkClientMsgId(header.client_msg_id),
    nonce: b64decode(header.nonce, { size: NONCE_SIZE, field: "nonce" }),
    signature: b64decode(header.sig, { size: 64, field: "sig" }),
    ciphertext,
  };
  parsed.ad = associatedData(parsed.room, parsed.thread, parsed.key_version, parsed.sender, parsed.client_msg_id);
  return parsed;
}

export function verifyEnvelope(envelope, senderKey) {
  const parsed = parseEnvelope(envelope);
  verify(senderKey, CONTEXT_ENVELOPE, concat(parsed.ad, parsed.nonce, parsed.ciphertext), parsed.signature);
  return parsed;
}

/** Verify, then decrypt: the whole plaintext or an error, never part of it. */
export function decryptMessage(envelope, { roomKey, senderKey }) {
  const parsed = verifyEnvelope(envelope, senderKey);
  if (parsed.room !== roomKey.department || parsed.key_version !== roomKey.version) {
    throw decryptionFailed(`envelope is for room ${parsed.room} key version ${parsed.key_version}`);
  }
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, parsed.ciphertext, parsed.ad, parsed.nonce, roomKey.key);
  } catch {
    throw decryptionFailed("ciphertext does not authenticate under this room key");
  }
}
